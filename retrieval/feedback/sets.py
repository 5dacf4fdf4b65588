"""Feedback sets: a batch's first pass and the (query, term) counts of its feedback
documents, gathered by numpy or by the compiled :func:`retrieval.search.kernels.feedback_rows`
(identical arrays, tested), and the per-thread scratch arrays of the feedback kernels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..search import BatchResult, QueryBatch, QueryModel, Searcher
from ..search.compiled import FeedbackKeys, FeedbackRows, FeedbackRowsOut, KeyScratch
from .cores import group_bounds

_Batch = QueryBatch   # the searcher's prepared queries


class FeedbackSet(NamedTuple):
    """The first pass and the feedback documents' terms of a batch of queries.

    ``batch``: the prepared original queries (term ids, weights, |q|).
    ``pair_query``/``pair_doc``/``pair_score``: one entry per (query, feedback document),
    sorted by query then rank. ``key_query``/``key_term``: the distinct (query, term)
    pairs of the feedback documents, sorted; ``key_count`` c(w, F) = Σ_{d∈F} c(w, d).
    ``row_pair``/``row_key``/``row_count``: one entry per (pair, term) non-zero.
    """
    batch: _Batch
    pair_query: np.ndarray
    pair_doc: np.ndarray
    pair_score: np.ndarray
    key_query: np.ndarray
    key_term: np.ndarray
    key_count: np.ndarray
    row_pair: np.ndarray
    row_key: np.ndarray
    row_count: np.ndarray


def first_pass(searcher: Searcher, queries: Sequence[str | QueryModel], fb_docs: int
               ) -> tuple[_Batch, BatchResult]:
    """The prepared queries and their top ``fb_docs`` documents."""
    batch = searcher.prepare(queries)
    return batch, searcher.rank(batch, fb_docs)


def feedback_set(searcher: Searcher, queries: Sequence[str | QueryModel],
                 fb_docs: int, first: tuple[_Batch, BatchResult] | None = None
                 ) -> FeedbackSet:
    """First pass (top ``fb_docs``; or ``first``, its result) for all queries and the
    gathered forward rows."""
    batch, res = first if first is not None else first_pass(searcher, queries, fb_docs)
    kernels = searcher.kernels()
    if kernels is not None:
        return feedback_set_compiled(searcher, batch, res, kernels)
    index = searcher.index
    ptr = np.asarray(index.arrays["forward_indptr"])
    starts = ptr[res.doc_numbers]
    lens = ptr[res.doc_numbers + 1] - starts
    total = int(lens.sum())
    row_pair = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    row_start = np.cumsum(lens) - lens  # where each pair's rows begin in the flat arrays
    offsets = np.arange(total, dtype=np.int64) - np.repeat(row_start - starts, lens)
    row_term = np.asarray(index.arrays["forward_terms"][offsets], dtype=np.int64)
    row_count = np.asarray(index.arrays["forward_counts"][offsets], dtype=np.float64)
    keys = res.query_index[row_pair] * np.int64(max(index.num_terms, 1)) + row_term
    ukeys, row_key = np.unique(keys, return_inverse=True)
    key_count = np.bincount(row_key, weights=row_count, minlength=len(ukeys))
    n_terms = np.int64(max(index.num_terms, 1))
    return FeedbackSet(batch, res.query_index, res.doc_numbers, res.scores,
                       ukeys // n_terms, ukeys % n_terms, key_count,
                       row_pair, row_key.astype(np.int64), row_count)


class TermScratch(NamedTuple):
    """Scratch arrays of the feedback kernels, one entry per term (plus a spare slot for
    ``ids``, ``spare``, ``values``); ``acc``, ``mark`` and ``bits`` (a bit a term) are all
    zeros between kernel calls."""
    acc: np.ndarray
    mark: np.ndarray
    bits: np.ndarray
    ids: np.ndarray
    spare: np.ndarray
    values: np.ndarray


def term_scratch(searcher: Searcher) -> TermScratch:
    """The searcher's :class:`TermScratch` for this thread, made on first use."""
    n_terms = max(searcher.index.num_terms, 1)
    local = searcher.tables_.scratch
    scratch = getattr(local, "feedback_scratch", None)
    if scratch is None or len(scratch.acc) != n_terms:
        ids, spare = np.empty((2, n_terms + 1), dtype=np.int64)
        scratch = local.feedback_scratch = TermScratch(
            np.zeros(n_terms), np.zeros(n_terms, dtype=np.uint8),
            np.zeros((n_terms + 63) // 64, dtype=np.uint64), ids, spare,
            np.empty(n_terms + 1))
    return scratch


def feedback_set_compiled(searcher: Searcher, batch: _Batch, res: BatchResult, kernels
                           ) -> FeedbackSet:
    """:func:`feedback_set` by :func:`retrieval.search.kernels.feedback_rows`: the same arrays
    (keys sorted by a bit set per query instead of one ``numpy.unique`` over all rows)."""
    index = searcher.index
    fwd_ptr = np.asarray(index.arrays["forward_indptr"])
    docs = np.asarray(res.doc_numbers, dtype=np.int64)
    total = int((fwd_ptr[docs + 1] - fwd_ptr[docs]).sum())
    pair_ptr = group_bounds(res.query_index, len(batch)).astype(np.int64)
    scratch = term_scratch(searcher)
    key_query, key_term, row_pair, row_key = np.empty((4, total), dtype=np.int64)
    key_count, row_count = np.empty((2, total), dtype=np.float64)
    n_keys = kernels.feedback_rows(
        FeedbackRows(pair_ptr, docs, fwd_ptr, np.asarray(index.arrays["forward_terms"]),
                     np.asarray(index.arrays["forward_counts"])),
        KeyScratch(scratch.acc, scratch.bits, scratch.ids),
        FeedbackKeys(key_query, key_term, key_count),
        FeedbackRowsOut(row_pair, row_key, row_count))
    return FeedbackSet(batch, res.query_index, res.doc_numbers, res.scores,
                       key_query[:n_keys], key_term[:n_keys], key_count[:n_keys],
                       row_pair, row_key, row_count)


