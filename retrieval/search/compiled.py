"""The compiled paths: numpy-side drivers of the numba kernels of
:mod:`retrieval.search.kernels` (one query at a time for large collections, a batch at a
time for small and mid-size ones), the named tuples that group the kernels' arguments,
and the lazy loader of the kernels module.

The matched weights are computed by numpy, exactly as on the numpy paths: per-term
tables over the counts for count-only models (Dirichlet), per-posting impacts m_w(d)
(:meth:`~retrieval.search.tables.SearchTables.impacts`, computed once per searcher for
each term queried) for the models whose weight depends on the document (SPUD, JM,
two-stage, AD), or — when the impacts would pass ``impact_max_bytes`` — the products
of :meth:`~retrieval.search.tables.SearchTables.weights` for every query; the kernels
add them in query-term order and score each document with the numpy paths' expression,
so scores are bit-identical.
"""

from __future__ import annotations

import functools
import math
import os
from typing import NamedTuple

import numpy as np

from ..index.arrays import range_positions
from .plan import Thresholds, skips_by_bound
from .tables import SearchTables

_NO_WEIGHTS = np.zeros(0, dtype=np.float64)
_NO_TABLES = np.zeros((0, 0), dtype=np.float64)
_NO_INTS = np.zeros(0, dtype=np.int64)


# -- loading -----------------------------------------------------------------------------
def load_kernels():
    """:mod:`retrieval.search.kernels`, or None without numba or with the environment
    variable ``RETRIEVAL_KERNELS=0``. Imported on first use only (numba's import costs
    ~0.4 s)."""
    if os.environ.get("RETRIEVAL_KERNELS", "1").strip() == "0":
        return None
    return import_kernels()


@functools.cache
def import_kernels():
    """The kernels module, imported once per process (None when numba is missing;
    ``import_kernels.cache_clear()`` forgets the outcome)."""
    try:
        from . import kernels as module
    except ImportError:
        return None
    return module


def kernels_loaded() -> bool:
    """Whether this process has loaded the kernels already (and they are enabled)."""
    return import_kernels.cache_info().currsize > 0 and load_kernels() is not None


def kernels_available() -> bool:
    """Whether the compiled kernels can be used (numba installed, not disabled); loads
    them."""
    return load_kernels() is not None


# -- argument groups (numba compiles named tuples into structs) -------------------------
class IndexColumns(NamedTuple):
    """The index's postings (CSR by term), log α_d and the docid tie ranks."""
    post_ptr: np.ndarray
    post_docs: np.ndarray
    post_counts: np.ndarray
    log_alpha: np.ndarray
    tie: np.ndarray


class BatchQueries(NamedTuple):
    """Queries of a batch: query j has the term positions q_ptr[j] … q_ptr[j+1]."""
    q_ptr: np.ndarray
    term_ids: np.ndarray
    q_weights: np.ndarray
    mass: np.ndarray
    constant: np.ndarray


class PostingWeights(NamedTuple):
    """Per-posting matched weights: tables over the counts (``use_tables``; term
    position p's table starts at tab_ptr[p]), products computed by numpy (term
    position p's start at w_ptr[p]), or (``scaled``) the index-wide impacts m_w(d)
    times q_w (w_ptr[p] = the term's first posting)."""
    tab_ptr: np.ndarray
    tab_vals: np.ndarray
    use_tables: bool
    weights: np.ndarray
    w_ptr: np.ndarray
    scaled: bool


class Selection(NamedTuple):
    """How many to keep, heap (``select`` false) or bucket selection, and from how many
    postings a query's candidates are listed by a scan of the marks."""
    k: int
    select: bool
    dense_from: int


class BatchScratch(NamedTuple):
    """Accumulator, marks, candidate list and candidate scores (one entry a document)."""
    acc: np.ndarray
    seen: np.ndarray
    cand: np.ndarray
    cs: np.ndarray


class RankScratch(NamedTuple):
    """Scratch of the ranked selection: scores, tie ranks, documents, buckets, counts."""
    hs: np.ndarray
    ht: np.ndarray
    hd: np.ndarray
    cb: np.ndarray
    cnt: np.ndarray


class BatchOutput(NamedTuple):
    docs: np.ndarray
    scores: np.ndarray
    n: np.ndarray


class RangeScratch(NamedTuple):
    """The per-query kernel's range accumulator (all −0.0 between queries: untouched),
    candidate list (room for one more entry than the range) and heap of k scores."""
    acc: np.ndarray
    cand: np.ndarray
    heap: np.ndarray


class QueryTerms(NamedTuple):
    """One query's posting slices and their weights: per-term count tables
    (``use_tables``), the concatenated products q_w·m_w(d) (``scale`` all 1.0), or
    (``direct``) the index-wide impacts m_w(d) with ``scale`` = q_w."""
    starts: np.ndarray
    ends: np.ndarray
    weights: np.ndarray
    tables: np.ndarray
    use_tables: bool
    scale: np.ndarray
    direct: bool


class CountTables(NamedTuple):
    """Count-only models: term t's m_w(c), c = 0 … tab_max[t], at tab_vals[tab_ptr[t] + c]."""
    tab_ptr: np.ndarray
    tab_vals: np.ndarray
    tab_max: np.ndarray


class QueryScore(NamedTuple):
    """One query's scoring constants: the log α bound, mass, constant and k."""
    bound: float
    mass: float
    constant: float
    k: int


class CandidateOutput(NamedTuple):
    docs: np.ndarray
    scores: np.ndarray


class FeedbackRows(NamedTuple):
    """Feedback documents by query (query j's are pair_doc[pair_ptr[j]:pair_ptr[j+1]])
    and the index's forward rows (CSR by document)."""
    pair_ptr: np.ndarray
    pair_doc: np.ndarray
    fwd_ptr: np.ndarray
    fwd_terms: np.ndarray
    fwd_counts: np.ndarray


class RelevanceScratch(NamedTuple):
    """Per-term scratch of :func:`~retrieval.search.kernels.relevance_top_terms`."""
    acc: np.ndarray
    mark: np.ndarray
    touched: np.ndarray
    cand_p: np.ndarray
    spare: np.ndarray


class TopTerms(NamedTuple):
    """Each query's feedback terms (query j's at out_ptr[j] … out_ptr[j+1])."""
    out_ptr: np.ndarray
    out_terms: np.ndarray
    out_prob: np.ndarray


class KeyScratch(NamedTuple):
    """Per-term scratch of :func:`~retrieval.search.kernels.feedback_rows`."""
    acc: np.ndarray
    bits: np.ndarray
    key_pos: np.ndarray


class FeedbackKeys(NamedTuple):
    """The distinct (query, term) keys of the feedback rows and c(w, F)."""
    key_query: np.ndarray
    key_term: np.ndarray
    key_count: np.ndarray


class FeedbackRowsOut(NamedTuple):
    """One entry per (feedback document, term): pair position, key position, count."""
    row_pair: np.ndarray
    row_key: np.ndarray
    row_count: np.ndarray


def index_columns(tables: SearchTables) -> IndexColumns:
    return IndexColumns(tables.post_ptr, tables.post_docs, tables.post_counts,
                        tables.log_alpha, tables.tie)


def rank_scratch(room: int, kernels) -> RankScratch:
    hs = np.empty(room, dtype=np.float64)
    ht, hd, cb = np.empty((3, room), dtype=np.int64)
    cnt = np.empty(kernels.BUCKETS_PER_CANDIDATE * room + 1, dtype=np.int64)
    return RankScratch(hs, ht, hd, cb, cnt)


# -- one query ---------------------------------------------------------------------------
def _query_terms(tables: SearchTables, prep) -> QueryTerms:
    ids = prep.term_ids
    starts, ends = tables.post_ptr[ids], tables.post_ptr[ids + 1]
    ones = np.ones(len(ids), dtype=np.float64)
    if tables.impacts_fit():
        return QueryTerms(starts, ends, tables.impacts(ids), _NO_TABLES, False,
                          np.ascontiguousarray(prep.weights, dtype=np.float64), True)
    if not tables.model.uses and tables.table_ok():
        # count-only weights: the kernel reads them from per-term tables over the
        # counts, the same values SearchTables.weights computes (see there)
        vocab = tables.vocabulary_tables()
        if vocab is not None:
            # gathered from the vocabulary-wide m_w(c) tables (computed once per searcher
            # by the same vector expression) and multiplied by q_w in one numpy step: no
            # Python loop per term (measured: see count_rows)
            return QueryTerms(starts, ends, _NO_WEIGHTS,
                              count_rows(tables, vocab, ids, prep.weights), True, ones,
                              False)
        tabs = np.empty((len(ids), tables.max_count() + 1), dtype=np.float64)
        for i, (tid, qw) in enumerate(zip(ids.tolist(), prep.weights.tolist())):
            tabs[i] = tables.count_table(tid, qw)
        return QueryTerms(starts, ends, _NO_WEIGHTS, tabs, True, ones, False)
    w_parts = []
    for tid, qw, s, e in zip(ids.tolist(), prep.weights.tolist(), starts.tolist(),
                             ends.tolist()):
        w_parts.append(tables.weights(tid, qw, slice(s, e), tables.post_docs[s:e]))
    w = np.concatenate(w_parts) if len(w_parts) > 1 else w_parts[0]
    return QueryTerms(starts, ends, w, _NO_TABLES, False, ones, False)


def count_rows(tables: SearchTables, vocab, ids: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """Row i: q_w[i]·m_w(c) of term ``ids[i]`` for c = 0 … the query terms' largest count
    (entries past the term's own largest count repeat its last value and are never
    read), gathered from the vocabulary tables ``vocab`` = (starts, values) of
    :meth:`SearchTables.vocabulary_tables`. The values are those of
    :meth:`SearchTables.count_table` bit for bit (the same m_w(c) expression, the same
    product with q_w), without its Python loop over the terms (measured, synthetic
    100k, k=10: see results/speed/profile.md, "after")."""
    maxc = tables.max_counts()[ids]
    width = int(maxc.max()) + 1 if len(ids) else 1
    col = np.minimum(np.arange(width, dtype=np.int64)[None, :], maxc[:, None])
    return qw[:, None] * vocab[1][vocab[0][ids][:, None] + col]


def _range_scratch(tables: SearchTables, t: Thresholds):
    """This thread's range accumulator (−0.0 = untouched) and candidate list, sized
    min(N, t.kernel_range), kept on ``tables.scratch`` between calls."""
    local = tables.scratch
    size = min(tables.n_docs, t.kernel_range)
    if getattr(local, "kacc", None) is None or len(local.kacc) != size:
        local.kacc = np.full(size, -0.0, dtype=np.float64)
        local.kcand = np.empty(size + 1, dtype=np.int64)
    return local


def query_kernel(tables: SearchTables, t: Thresholds, prep, k: int, kernels):
    """Top ``k`` of one query by the compiled per-query kernel: (docs, scores), ranked;
    identical to :func:`retrieval.search.exhaustive.accumulated`.

    The kernel adds the per-posting weights into a persistent range accumulator in
    query-term order, scores each distinct matching document once with the numpy
    paths' expression, resets the accumulator, and keeps the documents scoring at least
    the k-th best (a heap of k scores), which are ranked by the kernels' bucket
    selection (:func:`retrieval.search.kernels.top_ranked`, the order of
    :func:`retrieval.search.ranking.rank_order`).
    """
    local = _range_scratch(tables, t)
    n_docs = tables.n_docs
    terms = _query_terms(tables, prep)
    post_docs = tables.post_docs
    n = int((terms.ends - terms.starts).sum())
    out_docs = getattr(local, "out_docs", None)
    if out_docs is None or len(out_docs) < n or out_docs.dtype != post_docs.dtype:
        size = max(n, 1024)
        out_docs = local.out_docs = np.empty(size, dtype=post_docs.dtype)
        local.out_scores = np.empty(size, dtype=np.float64)
    heap = np.empty(min(k, max(n, 1)), dtype=np.float64)
    bound = float(prep.mass) * tables.log_alpha_max()
    if not (prep.mass > 0 and math.isfinite(bound)) or not skips_by_bound(t, k, n_docs):
        bound = math.inf    # no skipping
    accumulate = kernels.accumulate_top_chunked
    if bound < math.inf and n >= t.kernel_scan_postings_per_doc * n_docs:
        accumulate = kernels.accumulate_top_scan
    m = accumulate(
        RangeScratch(local.kacc, local.kcand, heap), index_columns(tables), terms,
        QueryScore(bound, float(prep.mass), float(prep.constant), len(heap)),
        CandidateOutput(out_docs, local.out_scores))
    # rank them by the batch kernel's bucket selection (same order as rank_order)
    if getattr(local, "rank", None) is None or len(local.rank.hs) < m + 1:
        local.rank = rank_scratch(max(m + 1, 1024), kernels)
    h = kernels.top_ranked(local.out_scores, out_docs, tables.tie, m, k, local.rank)
    return local.rank.hd[:h].copy(), local.rank.hs[:h].copy()


def queries_kernel_fits(tables: SearchTables) -> bool:
    """Whether :func:`queries_kernel` serves this model and index: count-only weights
    with the vocabulary tables (Dirichlet), or per-posting impacts (the models whose
    weight depends on the document: SPUD, the default, JM, two-stage, AD) within
    impact_max_bytes; others go query by query."""
    if tables.impacts_fit():
        return True
    return (not tables.model.uses and tables.table_ok()
            and tables.vocabulary_tables() is not None)


def queries_kernel(tables: SearchTables, t: Thresholds, batch, queries: np.ndarray,
                   sizes: np.ndarray, k: int, kernels):
    """:func:`query_kernel` for every query of ``queries`` (positions in ``batch``) in
    one compiled call (:func:`retrieval.search.kernels.queries_top_k`): (query, docs,
    scores), ranked within each query; identical to calling :func:`query_kernel` query
    by query (the same tables, bounds, heap sizes and selection), without the Python
    work per query, and holding no GIL for the whole batch (so threads scale).
    ``sizes``: each query's postings. Only when :func:`queries_kernel_fits`."""
    local = _range_scratch(tables, t)
    n_docs = tables.n_docs
    lo, hi = batch.ptr[queries], batch.ptr[queries + 1]
    n_t = hi - lo
    sel = range_positions(lo, n_t)
    q_ptr = np.zeros(len(queries) + 1, dtype=np.int64)
    np.cumsum(n_t, out=q_ptr[1:])
    mass = batch.mass[queries].astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        bounds = mass * tables.log_alpha_max()
    if not skips_by_bound(t, k, n_docs):
        bounds[:] = math.inf
    bounds[~((mass > 0) & np.isfinite(bounds))] = math.inf   # no skipping
    most = int(sizes[queries].max()) if len(queries) else 0
    post_docs = tables.post_docs
    out_docs = getattr(local, "out_docs", None)
    if out_docs is None or len(out_docs) < most or out_docs.dtype != post_docs.dtype:
        room = max(most, 1024)
        out_docs = local.out_docs = np.empty(room, dtype=post_docs.dtype)
        local.out_scores = np.empty(room, dtype=np.float64)
    if getattr(local, "rank", None) is None or len(local.rank.hs) < most + 1:
        local.rank = rank_scratch(max(most + 1, 1024), kernels)
    term_ids = batch.term_ids[sel]
    if tables.impacts_fit():
        counts = CountTables(_NO_INTS, _NO_WEIGHTS, _NO_INTS)
        impacts = (tables.impacts(term_ids), True)
    else:
        vocab = tables.vocabulary_tables()
        counts = CountTables(vocab[0], vocab[1], tables.max_counts())
        impacts = (_NO_WEIGHTS, False)
    cap = int(np.minimum(sizes[queries], k).sum())
    out = BatchOutput(np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.float64),
                      np.zeros(len(queries), dtype=np.int64))
    total = kernels.queries_top_k(
        BatchQueries(q_ptr, term_ids, batch.weights[sel], mass,
                     batch.constant[queries].astype(np.float64)),
        counts, impacts, k, index_columns(tables), bounds,
        t.kernel_scan_postings_per_doc * n_docs, (local.kacc, local.kcand), local.rank,
        (out_docs, local.out_scores), out)
    return np.repeat(queries, out.n), out.docs[:total], out.scores[:total]


# -- a batch -----------------------------------------------------------------------------
def _batch_scratch(tables: SearchTables, room: int, kernels):
    local = tables.scratch
    n_docs = tables.n_docs
    if getattr(local, "bacc", None) is None or len(local.bacc) != n_docs:
        local.bacc = np.zeros(n_docs, dtype=np.float64)
        local.bseen = np.zeros(n_docs, dtype=np.uint8)
        local.bcand = np.zeros(n_docs + 1, dtype=np.int64)   # one spare slot
    if getattr(local, "brank", None) is None or len(local.brank.hs) < room:
        local.bcs = np.empty(n_docs, dtype=np.float64)
        local.brank = rank_scratch(room, kernels)
    return BatchScratch(local.bacc, local.bseen, local.bcand, local.bcs), local.brank


def _count_tables_of(tables: SearchTables, batch, queries, sizes):
    """(tab_start per term position of the batch, values), or None when the tables
    would be larger than the postings they serve (count-only models)."""
    vocab = tables.vocabulary_tables()
    if vocab is not None:
        return vocab[0][batch.term_ids], vocab[1]
    # the batch's distinct terms, unless their tables would be larger than the postings
    uniq, inv = np.unique(batch.term_ids, return_inverse=True)
    if int(tables.max_counts()[uniq].sum()) + len(uniq) > \
            max(1 << 20, int(sizes[queries].sum())):
        return None
    u_start, tab_vals = tables.count_tables(uniq)
    return u_start[inv], tab_vals


def _posting_weights(tables: SearchTables, tids, qw) -> PostingWeights:
    """q_w·m_w(d) of every posting of the term positions ``tids`` (numpy)."""
    model = tables.model
    ptr = tables.post_ptr
    starts, ends = ptr[tids], ptr[tids + 1]
    lens = ends - starts
    w_ptr = np.zeros(len(tids), dtype=np.int64)
    np.cumsum(lens[:-1], out=w_ptr[1:])
    pidx = range_positions(starts, lens)
    docs = tables.post_docs[pidx]
    uses = model.uses
    mw = model.matched_weight(
        tables.post_counts[pidx],
        tables.doc_len[docs] if "doc_len" in uses else None,
        tables.doc_unique[docs] if "doc_unique" in uses else None,
        np.repeat(tables.p_collection[tids], lens))
    return PostingWeights(w_ptr, _NO_WEIGHTS, False, np.repeat(qw, lens) * mw, w_ptr, False)


def batch_kernel(tables: SearchTables, t: Thresholds, batch, queries: np.ndarray,
                 sizes: np.ndarray, k: int, kernels):
    """The ranked top ``k`` of ``queries`` (positions in ``batch``) by the compiled
    batch kernel (:func:`retrieval.search.kernels.batch_top_k`): (query, docs, scores).

    The matched weights are the numpy paths' values: for count-only models a table
    of m_w(c) over c = 0 … max c(w,·) per query term (built once for the whole
    vocabulary, or, for a large vocabulary, by one vectorised call for the batch's
    terms; the kernel multiplies by the query weight, as the numpy paths do), for the
    others the per-posting products q_w·m_w(d), computed by numpy for blocks of about
    kernel_batch_postings postings. Scores and rankings are bit-identical to the numpy
    paths'.
    """
    n_docs = tables.n_docs
    kk = min(k, max(n_docs, 1))
    select = kk > t.kernel_heap_max_k
    scratch, rank = _batch_scratch(tables, n_docs + 1 if select else kk, kernels)
    found = None
    if not tables.model.uses and tables.table_ok():
        found = _count_tables_of(tables, batch, queries, sizes)
    selection = Selection(kk, select,
                          max(1, math.ceil(n_docs * t.kernel_dense_postings_per_doc)))
    impacts = found is None and tables.impacts_fit()
    columns = index_columns(tables)
    out_q, out_d, out_s = [], [], []
    start = 0
    while start < len(queries):
        if found is not None or impacts:
            stop = len(queries)
        else:  # blocks of about kernel_batch_postings postings
            csum = np.cumsum(sizes[queries[start:]])
            stop = start + max(1, int(np.searchsorted(csum, t.kernel_batch_postings,
                                                      side="right")))
        block = queries[start:stop]
        lo, hi = batch.ptr[block], batch.ptr[block + 1]
        counts_t = hi - lo
        sel = range_positions(lo, counts_t)
        q_ptr = np.zeros(len(block) + 1, dtype=np.int64)
        np.cumsum(counts_t, out=q_ptr[1:])
        tids = batch.term_ids[sel]
        qw = batch.weights[sel]
        if found is not None:
            weights = PostingWeights(found[0][sel], found[1], True, _NO_WEIGHTS,
                                     np.zeros(len(tids), dtype=np.int64), False)
        elif impacts:
            weights = PostingWeights(_NO_INTS, _NO_WEIGHTS, False, tables.impacts(tids),
                                     tables.post_ptr[tids].astype(np.int64), True)
        else:
            weights = _posting_weights(tables, tids, qw)
        cap = int(np.minimum(sizes[block], kk).sum())
        out = BatchOutput(np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.float64),
                          np.zeros(len(block), dtype=np.int64))
        kernels.batch_top_k(BatchQueries(q_ptr, tids, qw, batch.mass[block],
                                         batch.constant[block]),
                            columns, weights, selection, scratch, rank, out)
        total = int(out.n.sum())
        out_q.append(np.repeat(block, out.n))
        out_d.append(out.docs[:total])
        out_s.append(out.scores[:total])
        start = stop
    if len(out_q) == 1:   # one block (always with tables): no copy
        return out_q[0], out_d[0], out_s[0]
    return np.concatenate(out_q), np.concatenate(out_d), np.concatenate(out_s)
