"""Which execution path ranks a batch: the tuning thresholds as one frozen record, and the
pure functions that choose a path from measured costs (sizes of the batch, the
collection, k, what this searcher has searched so far).

Every path gives bit-identical rankings and scores; the thresholds only decide speed.
Tests force a path by passing a :class:`Thresholds` with extreme values to
``Searcher(..., thresholds=...)``, never by patching module state: nothing here changes
at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    """The tuning thresholds of search, with the measurement behind each."""

    #: a block of queries in batch search touches at most this many postings ...
    batch_postings: int = 4_000_000
    #: ... and, when scored densely, holds at most this many (query, document) cells
    dense_cells: int = 500_000
    #: cost model of a block (:func:`dense_is_cheaper`): dense work = this × queries ×
    #: documents ...
    dense_cost_per_cell: float = 1.0
    #: ... sparse work = this × P·log2 P over the block's P postings
    sparse_cost_per_posting: float = 1.5
    #: queries with fewer postings than this are scored exhaustively: blocks of such
    #: queries share one vectorised pass, which beats per-query pruning (measured:
    #: 10k-document corpus)
    prune_min_postings: int = 30_000
    #: ... and in collections smaller than this (dense blocks of ~dense_cells/N queries
    #: are cheaper per query than any per-query work there)
    prune_min_docs: int = 100_000
    #: candidates of the first posting list scored exactly up front for a good threshold
    probe: int = 64
    #: vector element operations per posting of the exhaustive path (pruning's cost
    #: model: pruning gives up once its own work would pass this per posting)
    exhaustive_ops: float = 5.5
    #: pruning is tried only while k ≤ N / this (measured: at k ≳ N/2000 the threshold
    #: stays too low for pruning to pay)
    prune_docs_per_k: int = 2000
    #: collections of at least this many documents are scored one query at a time
    #: (through a persistent document accumulator, or an N-sized bincount and candidate
    #: mark, whichever is cheaper for the query's postings); smaller ones in dense or
    #: sparse blocks of queries
    acc_min_docs: int = 100_000
    #: one query at a time without the kernels: the accumulator for queries with fewer
    #: than this many postings per document ...
    acc_below_fraction: float = 0.17
    #: ... or more than this many; the sorted candidates of the mark in between
    #: (measured, 1M documents)
    acc_above_fraction: float = 0.5
    #: count-only matched weights (Dirichlet) are looked up in a per-term table over the
    #: counts when the largest count in the index is at most this
    table_max_count: int = 4096
    #: collections of at least this many documents (and at least acc_min_docs) score
    #: each query with the compiled per-query kernel when numba is installed (imported
    #: lazily, so smaller indexes never pay numba's import; RETRIEVAL_KERNELS=0 disables)
    kernel_min_docs: int = 100_000
    #: documents per range of the per-query kernel's accumulator (small enough to stay
    #: in cache)
    kernel_range: int = 32768
    #: with the kernel, pruning is tried only for queries of at least this many postings
    #: per document of the collection (measured: 1M documents, k=10, against the
    #: per-query kernel as it was before queries_top_k) ...
    kernel_prune_fraction: float = 0.6
    #: ... and only in collections of at least this many documents. Measured at k=10
    #: (synthetic corpora of make_corpus.py, seed 0, 1,000 queries; CPU µs a query, best
    #: of interleaved runs; results bit-identical): at 100k documents the Python
    #: MaxScore path costs 336 against 196 without it (load 12-14), at 300k 614-709
    #: against 557-626 (two rounds, load 12-14: on par at best), both with the batched
    #: per-query kernel (queries_top_k); at 1M pruning paid (0.6·N rule above) against
    #: the older kernel, not re-measured since
    kernel_prune_min_docs: int = 1_000_000
    #: the per-query kernel skips documents by an upper bound on log α only while
    #: k ≤ N / this (measured, 1M documents: the bound saves ~20% at k=10, costs ~10% at
    #: k=1000)
    kernel_bound_docs_per_k: int = 3000
    #: with the bound on, a query of at least this many postings per document of the
    #: collection finds its candidates by a scan of the range accumulator
    #: (kernels.accumulate_top_scan) instead of a list of first touches
    kernel_scan_postings_per_doc: float = 0.1
    #: collections smaller than acc_min_docs score a batch with the compiled batch kernel
    #: when numba is installed and either the kernels are loaded already or the searcher
    #: has searched at least this many postings (this batch included): loading them
    #: (numba's import and the cached machine code, ~0.45 s) pays for itself only after
    #: that much work (measured, shared collections: the numpy blocks take ~55 ns a
    #: posting, the kernel ~12)
    kernel_batch_min_postings: int = 12_000_000
    #: the batch kernel's per-posting weights are computed by numpy for at most this many
    #: postings at a time (models whose weights depend on the document, not only the count)
    kernel_batch_postings: int = 4_000_000
    #: the kernels keep the top k in a heap up to this k, and above it rank by a partial
    #: bucket sort (measured on the shared collections: the heap is cheaper at k=10, the
    #: bucket selection from k≈30 on)
    kernel_heap_max_k: int = 16
    #: with the kernels, collections from acc_min_docs up to this size also take the
    #: batch kernel when k > kernel_heap_max_k (measured at k=1000: 1.3-2.3x the per-query
    #: kernel's throughput at 100k documents, 1.4x at 300k, on par at 1M)
    kernel_batch_large_k_docs: int = 500_000
    #: count-only models' matched weights are tabulated for the whole vocabulary once per
    #: searcher (every term, counts 0 … its largest) when that takes at most this many
    #: values (32 MB); otherwise per batch, for the batch's terms
    vocab_table_max: int = 4_000_000
    #: the batch kernel lists a query's candidates by one scan of every document's mark,
    #: instead of on first touch, when the query has at least this many postings per
    #: document (measured, NFCorpus's RM3 and divmin queries: 5,900 and 61,000 postings
    #: on 3,162 documents, accumulation and scoring 24 → 18 and 193 → 130 µs a query)
    kernel_dense_postings_per_doc: float = 0.5
    #: models whose matched weight depends on the document (SPUD, JM, two-stage, AD) are
    #: served to the kernels as per-posting float64 impacts, computed once per searcher
    #: for each term queried, while the index's postings × 8 bytes is at most this (2 GiB:
    #: ~270M postings); above it the weights are computed by numpy for every batch
    impact_max_bytes: int = 2 << 30
    #: the token → term id memo of a searcher is cleared when it reaches this size
    token_memo: int = 1_000_000


#: the defaults
DEFAULT_THRESHOLDS = Thresholds()


class Path(NamedTuple):
    """How a batch is ranked: with the compiled kernels or not, one query at a time
    (``per_query``) or in blocks of queries."""
    kernels: bool
    per_query: bool


def wants_kernels(t: Thresholds, *, n_docs: int, k: int, matching: bool, active: bool,
                  compiled, loaded: bool, postings: int) -> bool:
    """Whether a batch should load (and use, when numba is there) the compiled kernels.

    ``compiled`` is the searcher's setting ("auto", True, False), ``loaded`` whether this
    process has loaded the kernels already, ``postings`` what the searcher has searched
    so far, this batch included. True always with ``compiled=True``; under "auto" when
    loaded already, for one-query-at-a-time collections of at least kernel_min_docs
    documents or with k above the heap on mid-size ones, and for block collections once
    kernel_batch_min_postings postings have been searched.
    """
    if compiled is False or not active or not matching:
        return False
    if compiled is True or loaded:
        return True
    if n_docs >= t.acc_min_docs:
        return n_docs >= t.kernel_min_docs or (
            k > t.kernel_heap_max_k and n_docs < t.kernel_batch_large_k_docs)
    return postings >= t.kernel_batch_min_postings


def choose_path(t: Thresholds, *, n_docs: int, k: int, matching: bool,
                kernels: bool) -> Path:
    """The path of a batch, given whether the kernels are available to it.

    One query at a time on collections of at least acc_min_docs documents (blocks of
    queries are cheaper below), except that with the kernels mid-size collections
    (below kernel_batch_large_k_docs) take the batch kernel for k above the heap limit.
    """
    per_query = matching and n_docs >= t.acc_min_docs
    if per_query and kernels and k > t.kernel_heap_max_k \
            and n_docs < t.kernel_batch_large_k_docs:
        per_query = False
    return Path(kernels, per_query)


def dense_is_cheaper(t: Thresholds, n_queries: int, n_docs: int, n_postings: int) -> bool:
    """Cost model of a block: dense work grows with queries × documents, sparse with
    P log P."""
    dense = t.dense_cost_per_cell * n_queries * n_docs
    sparse = t.sparse_cost_per_posting * n_postings * max(1.0, math.log2(max(n_postings, 2)))
    return dense <= sparse


def accumulator_pays(t: Thresholds, postings: int, n_docs: int) -> bool:
    """One query without the kernels: the persistent accumulator (True) or the N-sized
    bincount and mark (False), by the query's postings per document (measured, 1M
    documents: the accumulator is cheaper for sparse and for very dense queries)."""
    frac = postings / n_docs
    return frac < t.acc_below_fraction or frac > t.acc_above_fraction


def skips_by_bound(t: Thresholds, k: int, n_docs: int) -> bool:
    """Whether the per-query kernel skips documents by the log α bound at this k."""
    return k * t.kernel_bound_docs_per_k <= n_docs


def prune_pays(t: Thresholds, n_terms: np.ndarray, postings: np.ndarray, k: int, n_docs: int,
               *, compiled: bool, forced: bool) -> np.ndarray:
    """Which queries (by their numbers of terms and of postings) to try pruning for.

    Cost model: try pruning when the query has several terms, many postings, and k is
    small next to the collection (measured: at k ≳ N/2000 the threshold stays too low
    for pruning to pay). Against the compiled exhaustive kernel (``compiled``) pruning
    pays only for queries of at least kernel_prune_fraction·N postings in collections of
    at least kernel_prune_min_docs documents (measured at 100k, 300k and 1M documents,
    k=10: see the thresholds). ``forced`` (``pruning=True``): every query of several terms.
    Vectorised: on a collection or a k where it cannot pay, no query is looked at."""
    worth = n_terms >= 2
    if forced:
        return worth
    if n_docs < t.prune_min_docs or k * t.prune_docs_per_k > n_docs:
        return np.zeros_like(worth)
    worth &= postings >= t.prune_min_postings
    if compiled:
        if n_docs < t.kernel_prune_min_docs:
            return np.zeros_like(worth)
        worth &= postings >= t.kernel_prune_fraction * n_docs
    return worth
