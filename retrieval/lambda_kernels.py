"""Compiled (numba) λ̂ of two-stage smoothing: :func:`query_lambdas` runs
:func:`retrieval.lambdas.direct_query_lambda` for every query of a batch in one call,
its rows taken straight from the postings (no N × m matrix).

The result is numpy's to the bit — λ̂, the bisection passes and the log-likelihood
(tested on random cases, the sample corpus and every query of the shared collections).
Every sum that decides it is computed as numpy computes it: a_ij = (c_ij + μ b_j) /
(|d_i| + μ), d_ij = b_j − a_ij, and each row sum in the fixed order j = 0 … m−1,
s = c_0·x_i0 then s = s + c_j·x_ij (:func:`retrieval.lambdas.row_sums`). What the
kernel saves is the sums that cannot decide it:

* one pass over the query's postings gives every matched document's row an
  *approximation* of g_i(0), log L_i(0) and U_i from its entries alone (a column
  without an entry has a_ij = μb_j/(|d|+μ) ≤ b_j, so its terms c_j|d|/μ,
  c_j log(μb_j/(|d|+μ)) and c_j log b_j come from per-query totals), the per-entry
  pieces tabulated per (term, count); the rows of the documents without a query term
  (one per distinct length, as numpy's) are approximated the same way, with no entries;
* each approximation is within a margin (:data:`SCREEN` relative to the magnitudes it
  sums, far above the few units of rounding between two orders of summation) of the
  exact sum, so a decision the margin cannot change — the sign of g_i(0), whether a
  row with g_i(0) ≤ 0 could reach the largest log L_i(0), which side of the pruning
  test U_i falls — is taken from it; any other from the exact sum, the row's counts
  found by binary search of the postings (ascending within a term);
* the rows kept are solved as numpy solves them: g_i(1), the 54 bisection halvings,
  log L_i(λ_i); the largest log L_i wins, ties to the first row in numpy's order
  (matched documents ascending, then the lengths ascending).

Exactness: compiled without ``fastmath`` (no reassociation, no fused multiply-add), so
every operation is the IEEE-754 double operation numpy performs; ``math.log`` is the C
library's ``log``, which is numpy's on x86-64 without AVX-512 (numpy's AVX-512 build has
its own ``log``; there the two could differ in a last bit, which the tests would show).

numba is imported when this module is; :mod:`retrieval.lambdas` imports it lazily
(only when the compiled path is chosen, :func:`retrieval.lambdas.lambda_kernels`), so
small-index command lines never pay numba's import. Compiled code is cached next to
this file (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["query_lambdas"]

#: the bisection halvings of :func:`retrieval.lambdas.direct_query_lambda`
BISECTIONS = 54

#: the screening margin, relative: an approximation and the exact fixed-order sum differ
#: by a few units of rounding (≈ m · 2.2e-16) of the magnitudes summed, far below 1e-9
SCREEN = 1e-9

#: counts below this have their per-entry pieces tabulated per query
TABLE_COUNTS = 64


# -- the exact row sums (numpy's row_sums order) of one row, its counts dense in crow ----
@njit(cache=True, nogil=True)
def _slope(crow, dl, pc, cq, mu, lam):
    """g_i(λ) = Σ_j c_j d_ij / (a_ij + λ d_ij) (λ = 0: numpy's d/a, the same bits since
    a + 0·d = a)."""
    s = 0.0
    for j in range(len(pc)):
        a = (crow[j] + mu * pc[j]) / (dl + mu)
        d = pc[j] - a
        t = d / (a + lam * d) * cq[j]
        s = t if j == 0 else s + t
    return s


@njit(cache=True, nogil=True)
def _log_likelihood(crow, dl, pc, cq, mu, lam):
    """log L_i(λ) = Σ_j c_j log(a_ij + λ d_ij)."""
    s = 0.0
    for j in range(len(pc)):
        a = (crow[j] + mu * pc[j]) / (dl + mu)
        t = math.log(a + lam * (pc[j] - a)) * cq[j]
        s = t if j == 0 else s + t
    return s


@njit(cache=True, nogil=True)
def _bound(crow, dl, pc, cq, mu):
    """U_i = Σ_j c_j max(log a_ij, log b_j)."""
    s = 0.0
    for j in range(len(pc)):
        a = (crow[j] + mu * pc[j]) / (dl + mu)
        t = max(math.log(a), math.log(pc[j])) * cq[j]
        s = t if j == 0 else s + t
    return s


@njit(cache=True, nogil=True)
def _count_of(doc, t, post_ptr, post_docs, post_counts):
    """c(t, doc) by binary search of term t's postings (ascending documents)."""
    lo, hi = post_ptr[t], post_ptr[t + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if post_docs[mid] < doc:
            lo = mid + 1
        else:
            hi = mid
    if lo < post_ptr[t + 1] and post_docs[lo] == doc:
        return float(post_counts[lo])
    return 0.0


@njit(cache=True, nogil=True)
def _dense_row(crow, key, n_docs, tids, post):
    """Row ``key``'s counts into crow: document ``key`` (< n_docs), else zeros (a row
    of documents without a query term)."""
    post_ptr, post_docs, post_counts = post
    for j in range(len(tids)):
        crow[j] = 0.0 if key >= n_docs else _count_of(key, tids[j], post_ptr, post_docs,
                                                     post_counts)


@njit(cache=True, nogil=True)
def _pieces(table, j, count, mu, pc_j, cq_j, log_b, log_mb):
    """An entry's pieces (c_j (b_j/(c + μb_j) − 1/μ), c_j log((c + μb_j)/(μb_j)),
    c_j (log(c + μb_j) − log b_j)) for an integer count c, tabulated for counts below
    TABLE_COUNTS (``table`` NaN until computed)."""
    small = count < TABLE_COUNTS
    if small and table[j, count, 0] == table[j, count, 0]:
        return table[j, count, 0], table[j, count, 1], table[j, count, 2]
    shifted = float(count) + mu * pc_j
    log_c = math.log(shifted)
    h = cq_j * (pc_j / shifted - 1.0 / mu)
    ll, u = cq_j * (log_c - log_mb), cq_j * (log_c - log_b)
    if small:
        table[j, count, 0], table[j, count, 1], table[j, count, 2] = h, ll, u
    return h, ll, u


@njit(cache=True, nogil=True)
def _scan_postings(tids, cq, pc, mu, post, hist, scratch, logs):
    """One pass over the query's postings: each document containing a query term gets a
    row (``mark[doc]``, in order of first sight; ``docs`` its document) and in ``acc``
    its log(|d| + μ) and the sums over its entries of c_j (b_j/(c + μb_j) − 1/μ)
    (g(0) = (|d| + μ)(C/μ + this) − C, C = Σ_j c_j), of c_j log((c + μb_j)/(μb_j))
    (log L(0) less the no-entry terms c_j log(μb_j/(|d|+μ))) and of
    c_j max(log a − log b_j, 0) (U less Σ_j c_j log b_j)."""
    post_ptr, post_docs, post_counts = post
    mark, docs, acc, table = scratch[0], scratch[1], scratch[2], scratch[3]
    slot, log_dlm = hist[2], hist[3]
    log_b, log_mb = logs
    n_match = 0
    for j in range(len(tids)):
        t = tids[j]
        cq_j = cq[j]
        tab = table[j]                   # (a view: the lookups below are the hot path)
        for p in range(post_ptr[t], post_ptr[t + 1]):
            doc = post_docs[p]
            r = mark[doc]
            if r < 0:
                r = n_match
                mark[doc] = r
                docs[r] = doc
                acc[r, 0] = log_dlm[slot[doc]]
                acc[r, 1] = acc[r, 2] = acc[r, 3] = 0.0
                n_match += 1
            count = post_counts[p]
            if count < TABLE_COUNTS and tab[count, 0] == tab[count, 0]:
                h, ll, u = tab[count, 0], tab[count, 1], tab[count, 2]
            else:
                h, ll, u = _pieces(table, j, np.int64(count), mu, pc[j], cq_j, log_b[j],
                                   log_mb[j])
            acc[r, 1] += h
            acc[r, 2] += ll
            acc[r, 3] += max(u - cq_j * acc[r, 0], 0.0)
    return n_match


@njit(cache=True, nogil=True)
def _gather_rows(n_match, scratch, others, hist, lengths):
    """The rows into ``keys`` and ``rows`` (|d|, log(|d|+μ) and the entries' three
    sums): the matched documents (key = the document's number), then the documents of
    each distinct length without a query term (key = N + slot, no entries). Numpy's row
    order is the keys' order."""
    docs, acc, keys, rows = scratch[1], scratch[2], scratch[5], scratch[6]
    distinct, log_dlm = hist[0], hist[3]
    for i in range(n_match):
        doc = docs[i]
        keys[i] = doc
        rows[i, 0] = lengths[doc]
        rows[i, 1], rows[i, 2], rows[i, 3], rows[i, 4] = acc[i, 0], acc[i, 1], acc[i, 2], \
            acc[i, 3]
    for k in range(len(others)):
        s = others[k]
        keys[n_match + k] = len(lengths) + s
        rows[n_match + k, 0], rows[n_match + k, 1] = distinct[s], log_dlm[s]
        rows[n_match + k, 2] = rows[n_match + k, 3] = rows[n_match + k, 4] = 0.0
    return n_match + len(others)


@njit(cache=True, nogil=True)
def _other_slots(n_match, scratch, hist, restore):
    """The slots of the distinct lengths with a document left after the matched ones are
    taken off (``restore``: put them back and clear the marks instead)."""
    docs, mark = scratch[1], scratch[0]
    left, slot = hist[1], hist[2]
    step = 1 if restore else -1
    for r in range(n_match):
        left[slot[docs[r]]] -= step
        if restore:
            mark[docs[r]] = -1
    if restore:
        return np.empty(0, dtype=np.int64)
    n_other = 0
    for s in range(len(left)):
        n_other += left[s] > 0
    others = np.empty(n_other, dtype=np.int64)
    n_other = 0
    for s in range(len(left)):
        if left[s] > 0:
            others[n_other] = s
            n_other += 1
    return others


@njit(cache=True, nogil=True)
def _query_sums(cq, pc, mu):
    """C = Σ c_j, Σ c_j log b_j, Σ c_j |log b_j|, Σ c_j log μb_j, Σ c_j |log μb_j|, and
    the columns' log b_j, log μb_j."""
    m = len(pc)
    log_b, log_mb = np.empty(m), np.empty(m)
    total_c = sum_b = abs_b = sum_mb = abs_mb = 0.0
    for j in range(m):
        log_b[j], log_mb[j] = math.log(pc[j]), math.log(mu * pc[j])
        total_c += cq[j]
        sum_b += cq[j] * log_b[j]
        abs_b += cq[j] * abs(log_b[j])
        sum_mb += cq[j] * log_mb[j]
        abs_mb += cq[j] * abs(log_mb[j])
    return (total_c, sum_b, abs_b, sum_mb, abs_mb), (log_b, log_mb)


@njit(cache=True, nogil=True)
def _solve(tids, cq, pc, mu, post, lengths, hist, scratch):
    """(λ̂, bisection passes, log L) of one query: numpy's direct_query_lambda.

    Each row's approximations (margins ≥ SCREEN × the magnitudes summed, exact and
    approximate alike: g(0)'s terms are at most c_j((|d|+μ)/μ + 1) in size, log L(0)'s
    entry pieces are positive and |log(c + μb)| ≤ |log μb| + the piece, U's likewise)
    decide what they can; the exact sums (numpy's, the row's counts found by binary
    search) decide the rest: g_i(0) when its approximation is within its margin of 0;
    log L_i(0) of the rows with g_i(0) ≤ 0 whose approximation could reach the largest;
    U_i when its approximation could fall either side of the pruning test; g_i(1), the
    bisection and log L_i(λ_i) of the rows kept. So the floor, the rows kept, their λ_i
    and log L_i, and the first row (in numpy's order) of the largest are numpy's."""
    (total_c, sum_b, abs_b, sum_mb, abs_mb), logs = _query_sums(cq, pc, mu)
    scratch[3][:len(tids)] = np.nan
    n_match = _scan_postings(tids, cq, pc, mu, post, hist, scratch, logs)
    others = _other_slots(n_match, scratch, hist, False)
    n, n_docs = _gather_rows(n_match, scratch, others, hist, lengths), len(lengths)
    keys, rows = scratch[5], scratch[6]
    crow = np.empty(len(tids))
    zero = scratch[4]
    floor_z = -np.inf                    # the largest lower end among rows with g(0) ≤ 0
    inv_mu = 1.0 / mu
    c_mu = total_c / mu
    for i in range(n):
        key, dl, ld, h, ll, u = keys[i], rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], \
            rows[i, 4]
        dlm = dl + mu
        g = dlm * (c_mu + h) - total_c
        if abs(g) <= SCREEN * (1.0 + 2.0 * total_c * (dlm * inv_mu + 1.0)):
            _dense_row(crow, key, n_docs, tids, post)    # too close to call: exact
            g = _slope(crow, dl, pc, cq, mu, 0.0)
        zero[i] = g <= 0
        if zero[i]:
            margin = SCREEN * (1.0 + 2.0 * abs_mb + ll + total_c * abs(ld))
            floor_z = max(floor_z, sum_mb - total_c * ld + ll - margin)
    floor = 0.0
    for j in range(len(tids)):
        t = math.log(pc[j]) * cq[j]
        floor = t if j == 0 else floor + t     # Σ c_j log b_j, numpy's order
    best_key, best_lam, best_ll = -1, 0.0, -np.inf
    for i in range(n):
        if not zero[i]:
            continue
        key, dl, ld, h, ll, u = keys[i], rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], \
            rows[i, 4]
        margin = SCREEN * (1.0 + 2.0 * abs_mb + ll + total_c * abs(ld))
        if sum_mb - total_c * ld + ll + margin >= floor_z:   # could be the largest
            _dense_row(crow, key, n_docs, tids, post)
            value = _log_likelihood(crow, dl, pc, cq, mu, 0.0)
            floor = max(floor, value)
            if value > best_ll or (value == best_ll and key < best_key):
                best_key, best_lam, best_ll = key, 0.0, value
    passes = 0
    for i in range(n):
        if zero[i]:
            continue
        key, dl, ld, h, ll, u = keys[i], rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], \
            rows[i, 4]
        bound = sum_b + u
        spread = 2.0 * SCREEN * (1.0 + 2.0 * abs_b + 2.0 * abs_mb + ll + u
                                 + 2.0 * total_c * abs(ld))
        hi_u = bound + spread
        if hi_u + 1e-9 * (1.0 + abs(hi_u) + abs(floor)) < floor:
            continue                            # pruned for certain
        _dense_row(crow, key, n_docs, tids, post)
        lo_u = bound - spread
        if lo_u + 1e-9 * (1.0 + abs(lo_u) + abs(floor)) < floor:
            bound = _bound(crow, dl, pc, cq, mu)
            if bound + 1e-9 * (1.0 + abs(bound) + abs(floor)) < floor:
                continue                        # pruned, by the exact U_i
        lam = 1.0
        if _slope(crow, dl, pc, cq, mu, 1.0) < 0:   # a root in (0, 1)
            passes = BISECTIONS
            lo, hi = 0.0, 1.0
            for _ in range(BISECTIONS):
                mid = 0.5 * (lo + hi)
                if _slope(crow, dl, pc, cq, mu, mid) > 0:
                    lo = mid
                else:
                    hi = mid
            lam = 0.5 * (lo + hi)
        value = _log_likelihood(crow, dl, pc, cq, mu, lam)
        if value > best_ll or (value == best_ll and key < best_key):
            best_key, best_lam, best_ll = key, lam, value
    _other_slots(n_match, scratch, hist, True)
    return best_lam, passes, best_ll


@njit(cache=True, nogil=True)
def query_lambdas(q_ptr, term_ids, weights, p_collection, mu, post_ptr, post_docs,
                  post_counts, lengths, distinct, per_length, slot, lam_out, iter_out,
                  ll_out):
    """λ̂ of every query of a batch (query q: term ids ``term_ids[q_ptr[q]:q_ptr[q+1]]``,
    known terms only, counts ``weights``) into ``lam_out``, ``iter_out``, ``ll_out``;
    a query without terms gets (0.5, 0, 0.0). ``distinct``, ``per_length``, ``slot``:
    the distinct document lengths ascending, the documents of each, each document's
    slot in ``distinct``. Scratch: a mark per document, and rows for the most documents
    any query matches."""
    n_docs = len(lengths)
    most_rows, most_terms = 1, 1
    for q in range(len(q_ptr) - 1):
        total = 0
        for x in range(q_ptr[q], q_ptr[q + 1]):
            total += post_ptr[term_ids[x] + 1] - post_ptr[term_ids[x]]
        most_rows = max(most_rows, min(total, n_docs))
        most_terms = max(most_terms, q_ptr[q + 1] - q_ptr[q])
    scratch = (np.full(n_docs, -1, dtype=np.int64), np.empty(most_rows, dtype=np.int64),
               np.empty((most_rows, 4)), np.empty((most_terms, TABLE_COUNTS, 3)),
               np.empty(most_rows + len(distinct), dtype=np.bool_),
               np.empty(most_rows + len(distinct), dtype=np.int64),
               np.empty((most_rows + len(distinct), 5)))
    log_dlm = np.empty(len(distinct))
    for s in range(len(distinct)):
        log_dlm[s] = math.log(distinct[s] + mu)
    hist = (distinct, per_length.copy(), slot, log_dlm)
    post = (post_ptr, post_docs, post_counts)
    for q in range(len(q_ptr) - 1):
        b, e = q_ptr[q], q_ptr[q + 1]
        if e == b:
            lam_out[q], iter_out[q], ll_out[q] = 0.5, 0, 0.0
            continue
        tids = term_ids[b:e]
        pc = np.empty(e - b)
        for j in range(e - b):
            pc[j] = p_collection[tids[j]]
        lam_out[q], iter_out[q], ll_out[q] = _solve(tids, weights[b:e], pc, mu, post,
                                                    lengths, hist, scratch)
    return lam_out
