"""Exhaustive scoring with numpy: blocks of queries (dense or sparse), or one query at a
time (a persistent accumulator, or an N-sized ``bincount`` and candidate mark).

Every path adds each document's matched-term weights in query-term order starting from
0.0 (``bincount`` / ``np.add.at`` over the postings) and computes
``(acc + mass·log α_d) + constant``, so scores are bit-identical across paths.
"""

from __future__ import annotations

import numpy as np

from .plan import Thresholds, dense_is_cheaper
from .ranking import rank_order, rank_pairs, top_k
from .tables import SearchTables


def rank_blocks(tables: SearchTables, t: Thresholds, preps, active: list[int],
                sizes: dict, k: int, candidates_all: bool):
    """The ranked top ``k`` of the queries ``active`` (``sizes``: their postings) in
    blocks of at most dense_cells / N queries and batch_postings postings: (query,
    docs, scores) parts. A block is scored densely or sparsely, whichever
    :func:`~retrieval.search.plan.dense_is_cheaper` expects to be cheaper."""
    n_docs = tables.n_docs
    dense_rows = max(1, t.dense_cells // max(n_docs, 1))
    out_q, out_d, out_s = [], [], []
    start = 0
    while start < len(active):
        stop, budget = start, 0
        while stop < len(active) and stop - start < dense_rows and (
                stop == start or budget + sizes[active[stop]] <= t.batch_postings):
            budget += sizes[active[stop]]
            stop += 1
        block = active[start:stop]
        dense = candidates_all or dense_is_cheaper(t, len(block), n_docs, budget)
        block_preps = [preps[j] for j in block]
        if dense:
            q, d, sc = dense_block(tables, block_preps, k, candidates_all)
        else:
            q, d, sc = sparse_block(tables, block_preps, k)
        out_q.append(np.asarray(block, dtype=np.int64)[q])
        out_d.append(d)
        out_s.append(sc)
        start = stop
    return out_q, out_d, out_s


def _block_keys(tables: SearchTables, preps):
    n_docs = tables.n_docs
    keys_parts, w_parts = [], []
    for j, prep in enumerate(preps):
        docs, contrib = tables.gather(prep)
        keys_parts.append(docs + j * n_docs)
        w_parts.append(contrib)
    return np.concatenate(keys_parts), np.concatenate(w_parts)


def dense_block(tables: SearchTables, preps, k: int, candidates_all: bool):
    """Score a block through a (queries × documents) accumulator.

    One ``bincount`` accumulates the matched-term weights of all the block's queries;
    a boolean mark of the same shape, compacted with ``flatnonzero``, lists each
    query's candidates already in (query, document) order, so no sort is needed.
    Only candidates are scored, and each query's k-th best score is found by
    ``partition`` over its own candidates.
    """
    n_docs = tables.n_docs
    nq = len(preps)
    keys, contrib = _block_keys(tables, preps)
    if candidates_all:
        ckeys = np.arange(nq * n_docs, dtype=np.int64)
    else:
        mark = np.zeros(nq * n_docs, dtype=bool)
        mark[keys] = True
        ckeys = np.flatnonzero(mark)
    acc = np.bincount(keys, weights=contrib, minlength=nq * n_docs).astype(
        np.float64, copy=False)[ckeys]
    bounds = np.searchsorted(ckeys, np.arange(nq + 1, dtype=np.int64) * n_docs).tolist()
    log_alpha = tables.log_alpha
    rows, cols, kept = [], [], []
    for j, prep in enumerate(preps):
        s, e = bounds[j], bounds[j + 1]
        if s == e:
            continue
        docs = ckeys[s:e] - j * n_docs
        seg = acc[s:e] + prep.mass * log_alpha[docs] + prep.constant
        docs, seg = top_k(docs, seg, tables.tie, k)
        rows.append(np.full(len(docs), j, dtype=np.int64))
        cols.append(docs)
        kept.append(seg)
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(kept)


def sparse_block(tables: SearchTables, preps, k: int):
    """Score a block by sorting its (query, document) pairs once (``numpy.unique``)."""
    n_docs = tables.n_docs
    keys, contrib = _block_keys(tables, preps)
    ukeys, inverse = np.unique(keys, return_inverse=True)
    acc = np.bincount(inverse, weights=contrib, minlength=len(ukeys))
    cq = ukeys // n_docs
    cd = ukeys % n_docs
    mass = np.asarray([p.mass for p in preps])
    const = np.asarray([p.constant for p in preps])
    scores = acc + mass[cq] * tables.log_alpha[cd] + const[cq]
    return rank_pairs(cq, cd, scores, tables.tie, k)


def accumulated(tables: SearchTables, prep, k: int):
    """Top ``k`` of one query through a persistent document accumulator: (docs,
    scores), ranked.

    Within one term's postings every document occurs once, so ``np.add.at`` of the
    term's weights into a zeroed float64 array of N entries adds, per document, the
    same values in the same order (query-model term order, starting from 0.0) as the
    ``bincount`` of the block paths: the scores are bit-identical. Nothing of size N
    is touched afterwards: the scores are gathered at the concatenated postings P
    (a document of m query terms occurs m times there, with one score), the touched
    entries are reset to zero, and since the top k documents occupy at most k·m of
    those P positions, the (k·m)-th largest of the P values is ≤ the k-th best score:
    only the positions at or above it (ties included) are deduplicated and ranked.
    """
    local = tables.scratch
    acc = getattr(local, "acc", None)
    n_docs = tables.n_docs
    if acc is None or len(acc) != n_docs:
        acc = local.acc = np.zeros(n_docs, dtype=np.float64)
    ptr = tables.post_ptr
    parts = []
    try:
        for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
            s, e = int(ptr[tid]), int(ptr[tid + 1])
            docs = tables.post_docs[s:e]
            np.add.at(acc, docs, tables.weights(tid, qw, slice(s, e), docs))
            parts.append(docs)
        docs = np.concatenate(parts) if len(parts) > 1 else parts[0]
        scores = acc[docs]
    finally:
        for d in parts:
            acc[d] = 0.0
    scores += prep.mass * tables.log_alpha[docs]
    scores += prep.constant
    n, cap = len(docs), k * len(parts)
    if n > cap:
        kth = np.partition(scores, n - cap)[n - cap]
        sel = np.flatnonzero(scores >= kth)
        docs, scores = docs[sel], scores[sel]
    docs, first = np.unique(docs, return_index=True)
    docs, scores = top_k(docs, scores[first], tables.tie, k)
    return docs.astype(np.int64), scores


def dense_one(tables: SearchTables, prep, k: int):
    """Top ``k`` of one query through an N-sized ``bincount`` and candidate mark."""
    n_docs = tables.n_docs
    ptr = tables.post_ptr
    parts, w_parts = [], []
    for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
        s, e = int(ptr[tid]), int(ptr[tid + 1])
        docs = tables.post_docs[s:e]
        parts.append(docs)
        w_parts.append(tables.weights(tid, qw, slice(s, e), docs))
    if len(parts) > 1:
        docs, w = np.concatenate(parts), np.concatenate(w_parts)
    else:
        docs, w = parts[0], w_parts[0]
    mark = np.zeros(n_docs, dtype=bool)
    mark[docs] = True
    cand = np.flatnonzero(mark)
    scores = np.bincount(docs, weights=w, minlength=n_docs)[cand]
    scores += prep.mass * tables.log_alpha[cand]
    scores += prep.constant
    return top_k(cand, scores, tables.tie, k)


def score_documents(tables: SearchTables, prep, nums: np.ndarray) -> np.ndarray:
    """The scores of the documents ``nums`` (any document, matching or not)."""
    docs, contrib = tables.gather(prep)
    acc = np.bincount(docs, weights=contrib, minlength=tables.n_docs)
    return acc[nums] + prep.mass * tables.log_alpha[nums] + prep.constant


__all__ = ["accumulated", "dense_block", "dense_one", "rank_blocks", "rank_order",
           "score_documents", "sparse_block"]
