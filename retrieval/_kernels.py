"""Compiled (numba) kernels for the per-query search path of large collections.

Optional: numba is an optional dependency (``pip install retrieval[fast]``). Without it,
or with the environment variable ``RETRIEVAL_KERNELS=0``, :mod:`retrieval.search` uses
its numpy paths, which give identical results. This module imports numba when it is
itself imported; :mod:`retrieval.search` imports it lazily, only when a query is about
to be scored on a collection of at least ``retrieval.search._KERNEL_MIN_DOCS``
documents, so small indexes (and the command line on them) never pay numba's import
(~0.4 s) or first-compile cost. Compiled code is cached next to this file
(``cache=True``); when that directory is not writable numba compiles in memory.

Exactness: the kernels are compiled without ``fastmath``, so every operation is an
IEEE-754 double operation in the order written. They accumulate each document's
matched-term weights in query-term order starting from 0.0, exactly as the numpy paths'
``bincount`` / ``np.add.at`` do, and compute ``(acc + mass·log α_d) + constant`` as the
numpy paths do, so scores are bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["accumulate_top_chunked"]


@njit(cache=True, nogil=True)
def _sift_down(heap, n, i):
    x = heap[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and heap[c + 1] < heap[c]:
            c += 1
        if heap[c] < x:
            heap[i] = heap[c]
            i = c
        else:
            break
    heap[i] = x


@njit(cache=True, nogil=True)
def accumulate_top_chunked(acc, seen, post_docs, starts, ends, weights, post_counts,
                           tables, use_tables, log_alpha, bound, mass, constant,
                           k, heap, out_docs, out_scores):
    """Score one query's matching documents and keep those that can be in its top k.

    ``weights`` holds the query terms' per-posting weights q_w·m_w(d), concatenated in
    query-term order over the posting slices ``post_docs[starts[t]:ends[t]]``. The
    documents are taken in ranges of ``len(acc)`` documents (small enough for ``acc``,
    float64, and ``seen``, uint8, to stay in cache; both all zeros on entry and again on
    return); each term's cursor advances through its ascending posting list range by
    range. Within a range the terms are added in query-term order starting from 0.0, so
    every document's sum is the one ``bincount`` / ``np.add.at`` compute. Each distinct
    document is then scored once, ``(acc + mass·log α_d) + constant``, its entries reset,
    and the k best scores so far kept in the min-heap ``heap`` (room for k values).

    Writes the distinct matching documents whose score is ≥ the k-th best score (all of
    them when there are at most k; ties at the boundary included) with their scores to
    the front of ``out_docs`` / ``out_scores`` (room for every posting; unordered) and
    returns how many.

    With ``use_tables`` the weight of term t's posting i is ``tables[t, post_counts[i]]``
    (count-only models: the same values the numpy paths look up) and ``weights`` is not
    read.

    ``bound`` ≥ every ``mass·log_alpha[d]`` as computed (``mass·max log_alpha`` with
    ``mass`` > 0, or +inf): rounding is monotone, so ``(acc + bound) + constant`` ≥ the
    document's computed score, and a document whose bound is below the k-th best score
    so far is skipped without reading ``log_alpha[d]`` (for small k most documents: the
    N-sized array is not streamed through the cache).
    """
    m = len(starts)
    size = len(acc)
    cur = starts.copy()
    first = starts.copy()
    woff = np.empty(m, dtype=np.int64)
    total = 0
    hi_doc = 0
    for t in range(m):
        woff[t] = total - starts[t]
        total += ends[t] - starts[t]
        if ends[t] > starts[t] and post_docs[ends[t] - 1] + 1 > hi_doc:
            hi_doc = post_docs[ends[t] - 1] + 1
    n = 0
    h = 0
    lo = 0
    thr = -np.inf   # the k-th best score so far (heap[0] once the heap is full)
    while lo < hi_doc:
        hi = lo + size
        for t in range(m):
            i = cur[t]
            first[t] = i
            e = ends[t]
            off = woff[t]
            while i < e:
                d = post_docs[i]
                if d >= hi:
                    break
                if use_tables:
                    acc[d - lo] += tables[t, post_counts[i]]
                else:
                    acc[d - lo] += weights[i + off]
                seen[d - lo] = 1
                i += 1
            cur[t] = i
        for t in range(m):
            for i in range(first[t], cur[t]):
                # a document's first occurrence in the range scores it; later ones (flag
                # 0) only recompute a discarded value: no unpredictable branch on flag
                d = post_docs[i]
                r = d - lo
                flag = seen[r]
                seen[r] = 0
                a = acc[r]
                acc[r] = 0.0
                if (flag != 0) & (a + bound + constant >= thr):
                    pass
                else:
                    continue
                s = a + mass * log_alpha[d]
                s = s + constant
                if s < thr:
                    continue
                if h < k:
                    j = h
                    h += 1
                    while j > 0:
                        p = (j - 1) // 2
                        if heap[p] > s:
                            heap[j] = heap[p]
                            j = p
                        else:
                            break
                    heap[j] = s
                    if h == k:
                        thr = heap[0]
                elif s > thr:
                    heap[0] = s
                    _sift_down(heap, h, 0)
                    thr = heap[0]
                # (documents below the k-th best so far are never in the top k: skipped)
                out_docs[n] = d
                out_scores[n] = s
                n += 1
        lo = hi
    if n <= k:
        return n
    kth = heap[0]
    c = 0
    for j in range(n):
        s = out_scores[j]
        if s >= kth:
            out_docs[c] = out_docs[j]
            out_scores[c] = s
            c += 1
    return c
