"""Result records and the ranking rule shared by every path: score descending, equal
scores (equal float64 values) by document id ascending (string order, through the
index's ``docid_rank``), so rankings are identical across runs, platforms and builds."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TermContribution(NamedTuple):
    """One query term's part of a document's score: weight · log p(w|d)."""
    term: str
    query_weight: float     # p(w|θ_q)
    count: int              # c(w, d)
    p_collection: float     # p(w|C)
    p_document: float       # smoothed p(w|d)
    contribution: float     # query_weight · log p_document


class Explanation(NamedTuple):
    """Why a document scored what it did; ``sum(t.contribution for t in terms) == score``."""
    docid: str
    score: float
    document_length: int
    distinct_terms: int
    log_alpha: float
    terms: tuple[TermContribution, ...]


class BatchResult(NamedTuple):
    """Top-k results of many queries as flat arrays, sorted by (query, rank)."""
    query_index: np.ndarray   # int64, index into the queries given
    doc_numbers: np.ndarray   # int64, internal document numbers
    scores: np.ndarray        # float64


def empty_result() -> BatchResult:
    empty = np.zeros(0, dtype=np.int64)
    return BatchResult(empty, empty.copy(), np.zeros(0, dtype=np.float64))


def rank_order(scores: np.ndarray, tie: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by score descending, equal scores by docid ascending.

    A one-key sort is five times cheaper than the two-key ``lexsort``; equal scores are
    rare, so the two-key sort runs only when the sorted scores contain a tie.
    """
    order = np.argsort(-scores)
    ranked = scores[order]
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        order = np.lexsort((tie[docs], -scores))
    return order[:k]


def top_k(docs: np.ndarray, scores: np.ndarray, tie: np.ndarray, k: int):
    """The ranked top ``k`` of distinct ``docs``: (docs, scores). The k-th best score is
    found by ``partition``; every tie at the boundary stays in until the ranking."""
    n = len(docs)
    if n > k:
        kth = np.partition(scores, n - k)[n - k]
        top = scores >= kth
        docs, scores = docs[top], scores[top]
    order = rank_order(scores, tie, docs, k)
    return docs[order], scores[order]


def rank_pairs(rows, cols, scores, tie: np.ndarray, k: int):
    """Sort (query, doc, score) by query, score descending, docid; keep k per query."""
    order = np.lexsort((tie[cols], -scores, rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    first = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(len(rows)) - first) < k
    return rows[keep], cols[keep].astype(np.int64), scores[keep]


def joined(results: list[BatchResult], bounds: list[int]) -> BatchResult:
    """The results of contiguous parts of a batch (part i starts at query bounds[i])."""
    return BatchResult(
        np.concatenate([r.query_index + a for r, a in zip(results, bounds)]),
        np.concatenate([r.doc_numbers for r in results]),
        np.concatenate([r.scores for r in results]))


def concatenated(out_q: list, out_d: list, out_s: list, reorder: bool) -> BatchResult:
    """The parts of a batch's result as one :class:`BatchResult` (stably sorted by query
    when ``reorder``: parts then came from different paths)."""
    if not out_q:
        return empty_result()
    if len(out_q) == 1:
        q, d, sc = out_q[0], out_d[0], out_s[0]
    else:
        q, d, sc = np.concatenate(out_q), np.concatenate(out_d), np.concatenate(out_s)
    if reorder:
        order = np.argsort(q, kind="stable")
        q, d, sc = q[order], d[order], sc[order]
    return BatchResult(q, d, sc)
