"""Compiled (numba) λ̂ of two-stage smoothing: :func:`query_lambdas` runs
:func:`retrieval.estimation.direct_query_lambda` for every query of a batch in one call,
its rows built straight from the postings.

It mirrors the numpy path operation for operation, so λ̂, the iterations and the
log-likelihood are the same to the bit (tested):

* the rows (:func:`retrieval.estimation.query_lambdas_of_ids`' ``_query_rows``): the
  documents containing a query term, ascending (a merge of the m posting lists through
  a scratch mark per document, then a sort), then one row per distinct length of the
  other documents, ascending (the length histogram minus the matched documents), with
  counts 0 — no N × m matrix;
* a_ij = (c_ij + μ b_j) / (|d_i| + μ), d_ij = b_j − a_ij, and every row sum in the fixed
  order j = 0 … m−1, s = c_0·x_i0 then s = s + c_j·x_ij (numpy's ``row_sums``);
* g_i(0) and log L_i(0), the floor and the pruning bound U_i with the same margin,
  g_i(1), the 54 bisection halvings of each remaining row with a root, log L_i(λ_i),
  and the first row of the largest log L_i.

Exactness: compiled without ``fastmath`` (no reassociation, no fused multiply-add), so
every operation is the IEEE-754 double operation numpy performs; ``math.log`` is the C
library's ``log``, which is numpy's on x86-64 without AVX-512 (numpy's AVX-512 build has
its own ``log``; there the two could differ in a last bit, which the tests would show).

numba is imported when this module is; :mod:`retrieval.estimation` imports it lazily
(only when the compiled path is chosen), so small-index command lines never pay numba's
import. Compiled code is cached next to this file (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["query_lambdas"]

#: the bisection halvings of :func:`retrieval.estimation.direct_query_lambda`
BISECTIONS = 54


@njit(cache=True, nogil=True)
def _rows_of_query(tids, post_ptr, post_docs, post_counts, lengths, distinct, left,
                   slot, mark):
    """The query's rows: counts (R × m) and lengths; ``left`` (documents per distinct
    length) and ``mark`` (−1 per document) are scratch, restored on return."""
    m = len(tids)
    total = 0
    for j in range(m):
        total += post_ptr[tids[j] + 1] - post_ptr[tids[j]]
    docs = np.empty(total, dtype=np.int64)
    n_match = 0
    for j in range(m):
        t = tids[j]
        for p in range(post_ptr[t], post_ptr[t + 1]):
            doc = post_docs[p]
            if mark[doc] < 0:
                mark[doc] = 0
                docs[n_match] = doc
                n_match += 1
    docs = np.sort(docs[:n_match])
    for r in range(n_match):
        mark[docs[r]] = r
        left[slot[docs[r]]] -= 1
    n_other = 0
    for s in range(len(distinct)):
        if left[s] > 0:
            n_other += 1
    counts = np.zeros((n_match + n_other, m))
    dl = np.empty(n_match + n_other)
    for j in range(m):
        t = tids[j]
        for p in range(post_ptr[t], post_ptr[t + 1]):
            counts[mark[post_docs[p]], j] = post_counts[p]
    for r in range(n_match):
        dl[r] = lengths[docs[r]]
    r = n_match
    for s in range(len(distinct)):
        if left[s] > 0:
            dl[r] = distinct[s]
            r += 1
    for r in range(n_match):
        mark[docs[r]] = -1
        left[slot[docs[r]]] += 1
    return counts, dl


@njit(cache=True, nogil=True)
def _slope(a, d, cq, i, lam):
    """g_i(λ) = Σ_j c_j d_ij / (a_ij + λ d_ij), in the fixed order."""
    s = d[i, 0] / (a[i, 0] + lam * d[i, 0]) * cq[0]
    for j in range(1, a.shape[1]):
        s = s + d[i, j] / (a[i, j] + lam * d[i, j]) * cq[j]
    return s


@njit(cache=True, nogil=True)
def _log_likelihood(a, d, cq, i, lam):
    """log L_i(λ) = Σ_j c_j log(a_ij + λ d_ij), in the fixed order."""
    s = math.log(a[i, 0] + lam * d[i, 0]) * cq[0]
    for j in range(1, a.shape[1]):
        s = s + math.log(a[i, j] + lam * d[i, j]) * cq[j]
    return s


@njit(cache=True, nogil=True)
def _solve(counts, dl, pc, cq, mu):
    """(λ̂, bisection passes, log L) of one query's rows: numpy's direct_query_lambda."""
    n, m = counts.shape
    a = np.empty((n, m))
    d = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            a[i, j] = (counts[i, j] + mu * pc[j]) / (dl[i] + mu)
            d[i, j] = pc[j] - a[i, j]
    ll = np.full(n, -np.inf)
    lam = np.zeros(n)
    rest = np.empty(n, dtype=np.int64)
    n_rest = 0
    n_zero = 0
    top_zero = -np.inf
    for i in range(n):
        g0 = d[i, 0] / a[i, 0] * cq[0]
        for j in range(1, m):
            g0 = g0 + d[i, j] / a[i, j] * cq[j]
        if g0 <= 0:
            ll[i] = _log_likelihood(a, d, cq, i, 0.0)
            n_zero += 1
            top_zero = max(top_zero, ll[i])
        else:
            rest[n_rest] = i
            n_rest += 1
    passes = 0
    if n_rest > 0:
        floor = math.log(pc[0]) * cq[0]
        for j in range(1, m):
            floor = floor + math.log(pc[j]) * cq[j]
        if n_zero > 0 and top_zero > floor:
            floor = top_zero
        for k in range(n_rest):
            i = rest[k]
            bound = max(math.log(a[i, 0]), math.log(pc[0])) * cq[0]
            for j in range(1, m):
                bound = bound + max(math.log(a[i, j]), math.log(pc[j])) * cq[j]
            if not bound + 1e-9 * (1.0 + abs(bound) + abs(floor)) >= floor:
                continue                     # pruned: cannot be (or tie) the maximum
            lam[i] = 1.0
            if _slope(a, d, cq, i, 1.0) < 0:  # a root in (0, 1)
                passes = BISECTIONS
                lo, hi = 0.0, 1.0
                for _ in range(BISECTIONS):
                    mid = 0.5 * (lo + hi)
                    if _slope(a, d, cq, i, mid) > 0:
                        lo = mid
                    else:
                        hi = mid
                lam[i] = 0.5 * (lo + hi)
            ll[i] = _log_likelihood(a, d, cq, i, lam[i])
    best = 0
    for i in range(1, n):
        if ll[i] > ll[best]:
            best = i
    return lam[best], passes, ll[best]


@njit(cache=True, nogil=True)
def query_lambdas(q_ptr, term_ids, weights, p_collection, mu, post_ptr, post_docs,
                  post_counts, lengths, distinct, per_length, slot, lam_out, iter_out,
                  ll_out):
    """λ̂ of every query of a batch (query q: term ids ``term_ids[q_ptr[q]:q_ptr[q+1]]``,
    known terms only, counts ``weights``) into ``lam_out``, ``iter_out``, ``ll_out``;
    a query without terms gets (0.5, 0, 0.0). ``distinct``, ``per_length``, ``slot``:
    the distinct document lengths ascending, the documents of each, each document's
    slot in ``distinct``."""
    mark = np.full(len(lengths), -1, dtype=np.int64)
    left = per_length.copy()
    for q in range(len(q_ptr) - 1):
        b, e = q_ptr[q], q_ptr[q + 1]
        if e == b:
            lam_out[q], iter_out[q], ll_out[q] = 0.5, 0, 0.0
            continue
        tids = term_ids[b:e]
        counts, dl = _rows_of_query(tids, post_ptr, post_docs, post_counts, lengths,
                                    distinct, left, slot, mark)
        pc = np.empty(e - b)
        for j in range(e - b):
            pc[j] = p_collection[tids[j]]
        lam_out[q], iter_out[q], ll_out[q] = _solve(counts, dl, pc, weights[b:e], mu)
    return lam_out
