"""Compiled (numba) kernels for search: a batch kernel for small and mid-size collections,
a per-query kernel for large ones, and two for :mod:`retrieval.feedback` when the
searcher uses the kernels: RM3's relevance-model accumulation
(:func:`relevance_top_terms`) and the model-based methods' feedback set
(:func:`feedback_rows`).

This module mirrors the numpy paths: :func:`accumulate_top_chunked` is
:func:`retrieval.search.exhaustive.accumulated` (:func:`queries_top_k` runs it for every
query of a batch in one call), :func:`batch_top_k` the block paths of
:mod:`retrieval.search.exhaustive`; their numpy-side drivers, and the named tuples that
group their arguments, are in :mod:`retrieval.search.compiled`. It is longer than the
other modules because numba code cannot call back into numpy: each kernel carries its
own loops, heaps and sorts; for the same reason :func:`accumulate_top_chunked`,
:func:`batch_top_k` and :func:`_top_ranked` run past 80 lines (each is one pass whose
inner loops are the hot path; splitting them into called kernels is a speed change to
measure on its own).

Optional: numba is an optional dependency (``pip install retrieval[fast]``). Without it,
or with the environment variable ``RETRIEVAL_KERNELS=0``, :mod:`retrieval.search` uses
its numpy paths, which give identical results. This module imports numba when it is
itself imported; :func:`retrieval.search.compiled.load_kernels` imports it lazily, only
when the plan (:mod:`retrieval.search.plan`) chooses a compiled path (by default on
collections of at least ``Thresholds.kernel_min_docs`` documents, or after
``kernel_batch_min_postings`` postings), so small indexes (and the command line on them)
never pay numba's import (~0.4 s) or first-compile cost. Compiled code is cached next to this file
(``cache=True``); when that directory is not writable numba compiles in memory.

Exactness: the kernels are compiled without ``fastmath``, so every operation is an
IEEE-754 double operation in the order written. They accumulate each document's
matched-term weights in query-term order starting from 0.0, exactly as the numpy paths'
``bincount`` / ``np.add.at`` do, and compute ``(acc + mass·log α_d) + constant`` as the
numpy paths do, so scores are bit-identical.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["accumulate_top_chunked", "batch_top_k", "feedback_rows", "queries_top_k",
           "relevance_top_terms", "top_ranked"]


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


@njit(cache=True, nogil=True, inline="always")
def _term_offsets(post_docs, starts, ends, direct):
    """Per query term, where its weights start relative to its postings (0 with the
    index-wide impacts, ``direct``; else its place in the concatenated products), and one
    past the largest document any term's postings hold."""
    m = len(starts)
    woff = np.empty(m, dtype=np.int64)
    total = 0
    hi_doc = 0
    for t in range(m):
        woff[t] = 0 if direct else total - starts[t]
        total += ends[t] - starts[t]
        if ends[t] > starts[t] and post_docs[ends[t] - 1] + 1 > hi_doc:
            hi_doc = post_docs[ends[t] - 1] + 1
    return woff, hi_doc


@njit(cache=True, nogil=True, inline="always")
def _posting_weight(use_tables, tables, post_counts, weights, t, i, qs, off):
    """Query term t's weight for its posting i in the range kernels: the count table's
    ``tables[t, c]``, or ``qs · weights[i + off]`` (qs = 1.0, an exact identity, or
    q_w times the impact)."""
    if use_tables:
        return tables[t, post_counts[i]]
    return qs * weights[i + off]


@njit(cache=True, nogil=True)
def accumulate_top_chunked(scratch, columns, terms, score, out):
    """Score one query's matching documents and keep those that can be in its top k.

    Arguments (named tuples of :mod:`retrieval.search.compiled`): ``scratch`` =
    (acc, cand, heap), ``columns`` = (post_ptr, post_docs, post_counts, log_alpha, tie),
    ``terms`` = (starts, ends, weights, tables, use_tables), ``score`` = (bound, mass,
    constant, k), ``out`` = (out_docs, out_scores).

    ``weights`` holds the query terms' per-posting weights q_w·m_w(d), concatenated in
    query-term order over the posting slices ``post_docs[starts[t]:ends[t]]``. The
    documents are taken in ranges of ``len(acc)`` documents (small enough for ``acc``,
    float64, to stay in cache; all −0.0 on entry and again on return); each term's
    cursor advances through its ascending posting list range by range. Within a range
    the terms are added in query-term order, each addition as ``(acc + w) + 0.0``, so
    every document's sum is bit for bit the one ``bincount`` / ``np.add.at`` compute
    from 0.0 (−0.0 + w and 0.0 + w differ only for w = −0.0, which the + 0.0 turns into
    +0.0 as 0.0 + w does; a sum from 0.0 is never −0.0, so the + 0.0 changes nothing
    later). An entry still −0.0 is therefore an untouched document: each document is
    listed in ``cand`` (room for ``len(acc) + 1`` entries) on its first touch, without a
    separate array of marks (measured, synthetic 100k, k=10: 186–205 → 155–181 µs a
    query against a uint8 mark per document), so each posting is read once. Each distinct document of the range is then
    scored once, in order of first touch, ``(acc + mass·log α_d) + constant``, its entries reset,
    and the k best scores so far kept in the min-heap ``heap`` (room for k values).

    Writes the distinct matching documents whose score is ≥ the k-th best score (all of
    them when there are at most k; ties at the boundary included) with their scores to
    the front of ``out_docs`` / ``out_scores`` (room for every posting; unordered) and
    returns how many.

    With ``use_tables`` the weight of term t's posting i is ``tables[t, post_counts[i]]``
    (count-only models: the same values the numpy paths look up) and ``weights`` is not
    read. Otherwise it is ``scale[t] · weights[i + off]``: with ``direct``, ``weights``
    is the index-wide array of per-posting impacts m_w(d) (off = 0) and ``scale`` the
    query weights q_w — the product the numpy paths compute, bit for bit; without it,
    the concatenated products q_w·m_w(d) and ``scale`` all 1.0 (an exact identity).

    ``bound`` ≥ every ``mass·log_alpha[d]`` as computed (``mass·max log_alpha`` with
    ``mass`` > 0, or +inf): rounding is monotone, so ``(acc + bound) + constant`` ≥ the
    document's computed score, and a document whose bound is below the k-th best score
    so far is skipped without reading ``log_alpha[d]`` (for small k most documents: the
    N-sized array is not streamed through the cache).
    """
    acc, cand, heap = scratch
    post_docs, post_counts, log_alpha = columns.post_docs, columns.post_counts, \
        columns.log_alpha
    starts, ends, weights, tables, use_tables, scale, direct = terms
    bound, mass, constant, k = score
    out_docs, out_scores = out
    m = len(starts)
    size = len(acc)
    cur = starts.copy()
    woff, hi_doc = _term_offsets(post_docs, starts, ends, direct)
    n = 0
    h = 0
    lo = 0
    thr = -np.inf   # the k-th best score so far (heap[0] once the heap is full)
    while lo < hi_doc:
        hi = lo + size
        nc = 0
        for t in range(m):
            i = cur[t]
            e = ends[t]
            off = woff[t]
            qs = scale[t]
            while i < e:
                d = post_docs[i]
                if d >= hi:
                    break
                r = d - lo
                old = acc[r]
                w = _posting_weight(use_tables, tables, post_counts, weights, t, i, qs, off)
                # (old + w) + 0.0: the sum bincount computes from 0.0, never −0.0
                acc[r] = (old + w) + 0.0
                # branch-free: r is listed once, on its first touch (old is −0.0)
                cand[nc] = r
                nc += old == 0.0 and math.copysign(1.0, old) < 0.0
                i += 1
            cur[t] = i
        for c in range(nc):
            # each distinct document of the range once, in order of first touch
            r = cand[c]
            a = acc[r]
            acc[r] = -0.0
            if not (a + bound + constant >= thr):
                continue
            d = lo + r
            s = a + mass * log_alpha[d]
            s = s + constant
            if s < thr:
                continue
            h, thr = _heap_keep(heap, h, k, s, thr)
            # (documents below the k-th best so far are never in the top k: skipped)
            out_docs[n] = d
            out_scores[n] = s
            n += 1
        lo = hi
    return _at_least_kth(out_docs, out_scores, n, heap, k)


@njit(cache=True, nogil=True, inline="always")
def _heap_keep(heap, h, k, s, thr):
    """Push score ``s`` (≥ ``thr``) into the min-heap of the k best scores (``h`` held);
    returns the new (h, k-th best so far: −∞ until the heap is full)."""
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
    return h, thr


@njit(cache=True, nogil=True, inline="always")
def _at_least_kth(out_docs, out_scores, n, heap, k):
    """Keep (in place, in order) the ``n`` written documents scoring ≥ the k-th best
    (all when n ≤ k); returns how many."""
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


#: the int64 bit pattern of −0.0 (an untouched accumulator entry) is the smallest int64;
#: every other double's pattern is at least this
TOUCHED_BITS = -(2 ** 63) + 1


@njit(cache=True, nogil=True, inline="always")
def _scan_limit(thr, bound, constant, one, one_bits):
    """The smallest int64 bit pattern an accumulator entry can have and still pass the
    bound test ``(a + bound) + constant ≥ thr`` (see :func:`accumulate_top_scan`): that
    of lim = thr − bound − constant − slack when lim > 0, else TOUCHED_BITS (every
    touched entry)."""
    lim = (thr - bound) - constant
    lim -= 1e-9 * (1.0 + abs(thr) + abs(bound) + abs(constant))
    if not (lim > 0.0):
        return TOUCHED_BITS
    one[0] = lim
    return one_bits[0]


#: entries of the range accumulator tested at once by :func:`accumulate_top_scan`
SCAN_CHUNK = 64


@njit(cache=True, nogil=True)
def accumulate_top_scan(scratch, columns, terms, score, out):
    """:func:`accumulate_top_chunked` for queries whose postings touch a large share of
    the documents, when the log α bound is on (small k): the same documents, the same
    scores bit for bit, found by a scan of the range accumulator instead of a list of
    first touches.

    The postings are added as there (``(acc + w) + 0.0`` in query-term order: an
    untouched entry stays −0.0, a touched one never is). Read as int64, the bit patterns
    of doubles ≥ +0.0 are ordered as the doubles, negative doubles' patterns are
    negative, and −0.0's is the smallest int64. So with L = :func:`_scan_limit` — the
    pattern of lim = θ − bound − constant − slack when lim > 0 (θ the k-th best so far,
    slack = 1e-9·(1 + |θ| + |bound| + |constant|), far above the two roundings of the
    bound test), else TOUCHED_BITS — an entry whose pattern is < L is untouched or fails
    the bound test ``(a + bound) + constant ≥ θ`` (for lim > 0: a < lim whatever its
    sign). Each chunk of SCAN_CHUNK entries is tested by one integer comparison per
    entry (no branch: vectorised); only in a chunk with a pattern ≥ L are the entries
    ≥ L taken one by one through the exact tests of :func:`accumulate_top_chunked`.
    After the range, one fill resets it to −0.0 (a store per entry inside the chunk loop
    is not vectorised: 1.8 against 0.29 ns an entry, measured). The documents are met in
    ascending order instead of first-touch order, which changes neither the set written
    (every document whose score is ≥ the final k-th best) nor the ranking.

    Cost: about 0.3 ns per document of the range (the test and the fill) instead of
    about 4 ns per distinct candidate (the list and the candidate pass): it pays for
    queries whose postings are a large share of the documents
    (Thresholds.kernel_scan_postings_per_doc, measured) and only with the bound on (with
    it off, every touched entry passes the test).
    """
    acc, cand, heap = scratch
    post_docs, post_counts, log_alpha = columns.post_docs, columns.post_counts, \
        columns.log_alpha
    starts, ends, weights, tables, use_tables, scale, direct = terms
    bound, mass, constant, k = score
    out_docs, out_scores = out
    bits = acc.view(np.int64)
    m = len(starts)
    size = len(acc)
    cur = starts.copy()
    woff, hi_doc = _term_offsets(post_docs, starts, ends, direct)
    lim_one = np.zeros(1)
    lim_bits = lim_one.view(np.int64)
    n = 0
    h = 0
    lo = 0
    thr = -np.inf
    limb = _scan_limit(thr, bound, constant, lim_one, lim_bits)
    while lo < hi_doc:
        hi = lo + size
        for t in range(m):
            i = cur[t]
            e = ends[t]
            off = woff[t]
            qs = scale[t]
            while i < e:
                d = post_docs[i]
                if d >= hi:
                    break
                r = d - lo
                w = _posting_weight(use_tables, tables, post_counts, weights, t, i, qs, off)
                acc[r] = (acc[r] + w) + 0.0
                i += 1
            cur[t] = i
        width = min(size, hi_doc - lo)
        for c0 in range(0, width, SCAN_CHUNK):
            c1 = min(c0 + SCAN_CHUNK, width)
            hit = False
            for r in range(c0, c1):
                hit |= bits[r] >= limb
            if hit:
                for r in range(c0, c1):
                    if bits[r] < limb:
                        continue
                    a = acc[r]
                    if not (a + bound + constant >= thr):
                        continue
                    d = lo + r
                    sc = a + mass * log_alpha[d]
                    sc = sc + constant
                    if sc < thr:
                        continue
                    h, thr = _heap_keep(heap, h, k, sc, thr)
                    limb = _scan_limit(thr, bound, constant, lim_one, lim_bits)
                    out_docs[n] = d
                    out_scores[n] = sc
                    n += 1
        acc[:width] = -0.0
        lo = hi
    return _at_least_kth(out_docs, out_scores, n, heap, k)


@njit(cache=True, nogil=True, inline="always")
def _after(s1, t1, s2, t2):
    """Is (score s1, tie rank t1) ranked after (s2, t2)? Score descending, then docid."""
    return s1 < s2 or (s1 == s2 and t1 > t2)


@njit(cache=True, nogil=True)
def _heap_down(hs, ht, hd, n, i):
    """Sift entry i down a heap whose root is the entry ranked last."""
    s, t, d = hs[i], ht[i], hd[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _after(hs[c + 1], ht[c + 1], hs[c], ht[c]):
            c += 1
        if _after(hs[c], ht[c], s, t):
            hs[i], ht[i], hd[i] = hs[c], ht[c], hd[c]
            i = c
        else:
            break
    hs[i], ht[i], hd[i] = s, t, d


@njit(cache=True, nogil=True, inline="always")
def _before(s1, t1, s2, t2):
    """Is (s1, t1) ranked before (s2, t2)? (Keys are distinct: a document occurs once.)"""
    return s1 > s2 or (s1 == s2 and t1 < t2)


@njit(cache=True, nogil=True)
def _insertion_ranked(hs, ht, hd, lo, hi):
    """Insertion sort of entries lo … hi by rank (for short ranges)."""
    for i in range(lo + 1, hi + 1):
        s, t, d = hs[i], ht[i], hd[i]
        j = i - 1
        while j >= lo and _before(s, t, hs[j], ht[j]):
            hs[j + 1], ht[j + 1], hd[j + 1] = hs[j], ht[j], hd[j]
            j -= 1
        hs[j + 1], ht[j + 1], hd[j + 1] = s, t, d


@njit(cache=True, nogil=True)
def _sort_ranked(hs, ht, hd, first, last):
    """Sort entries first … last of the parallel arrays by rank (score descending, tie
    rank ascending): an iterative quicksort (median of three, the smaller side first, so
    the stack stays under 64 ranges) finished by insertion sort on short ranges. A short
    range is insertion-sorted at once, without allocating the stack (most buckets of
    :func:`_top_ranked` are short, and an allocation costs more than sorting them)."""
    if last - first <= 16:
        _insertion_ranked(hs, ht, hd, first, last)
        return
    stack = np.empty(128, dtype=np.int64)
    stack[0] = first
    stack[1] = last
    top = 2
    while top > 0:
        top -= 2
        lo = stack[top]
        hi = stack[top + 1]
        while hi - lo > 16:
            mid = (lo + hi) >> 1
            if _before(hs[mid], ht[mid], hs[lo], ht[lo]):
                hs[mid], hs[lo] = hs[lo], hs[mid]
                ht[mid], ht[lo] = ht[lo], ht[mid]
                hd[mid], hd[lo] = hd[lo], hd[mid]
            if _before(hs[hi], ht[hi], hs[lo], ht[lo]):
                hs[hi], hs[lo] = hs[lo], hs[hi]
                ht[hi], ht[lo] = ht[lo], ht[hi]
                hd[hi], hd[lo] = hd[lo], hd[hi]
            if _before(hs[hi], ht[hi], hs[mid], ht[mid]):
                hs[hi], hs[mid] = hs[mid], hs[hi]
                ht[hi], ht[mid] = ht[mid], ht[hi]
                hd[hi], hd[mid] = hd[mid], hd[hi]
            ps = hs[mid]
            pt = ht[mid]
            i = lo
            j = hi
            while i <= j:
                while _before(hs[i], ht[i], ps, pt):
                    i += 1
                while _before(ps, pt, hs[j], ht[j]):
                    j -= 1
                if i <= j:
                    hs[i], hs[j] = hs[j], hs[i]
                    ht[i], ht[j] = ht[j], ht[i]
                    hd[i], hd[j] = hd[j], hd[i]
                    i += 1
                    j -= 1
            if j - lo < hi - i:
                stack[top] = i
                stack[top + 1] = hi
                hi = j
            else:
                stack[top] = lo
                stack[top + 1] = j
                lo = i
            top += 2
        _insertion_ranked(hs, ht, hd, lo, hi)


#: buckets of the partial bucket sort per candidate (``cnt`` needs room for
#: BUCKETS_PER_CANDIDATE · candidates + 1 entries) ...
BUCKETS_PER_CANDIDATE = 2
#: ... and per kept result, at least MIN_BUCKET_K of them: nb = BUCKETS_PER_CANDIDATE ·
#: min(candidates, max(k, MIN_BUCKET_K)) (see :func:`_top_ranked`)
MIN_BUCKET_K = 256


@njit(cache=True, nogil=True)
def _top_ranked(cs, cand, tie, nc, k, rank):
    """The best min(k, nc) of the candidates ``cand[:nc]`` (scores ``cs``), ranked (score
    descending, tie rank ascending), into the front of ``bs``/``bt``/``bd`` of ``rank`` =
    (bs, bt, bd, cb, cnt) (room for nc + 1 entries; ``cb`` too, ``cnt``
    BUCKETS_PER_CANDIDATE · nc + 1); returns how many.

    A partial bucket sort by value: with nb = BUCKETS_PER_CANDIDATE ·
    min(nc, max(k, MIN_BUCKET_K)) buckets, candidate r goes to bucket
    ⌊(max − s_r)·nb/(max − min)⌋ (clipped to nb − 1).
    Subtraction and multiplication by a positive number are monotone under rounding, so
    a higher score never lands in a later bucket and equal scores share one: the first
    buckets holding at least k candidates hold the top k (ties included), and only their
    candidates are moved and sorted by the exact comparison — buckets of more than 16
    entries by :func:`_sort_ranked`, then all of them by one insertion sort, which only
    moves entries within their (short) bucket. On the nearly continuous scores of a
    ranking most buckets hold zero to two entries, so this costs a few passes over the
    candidates without the branch mispredictions of a comparison sort or selection.
    (Measured on MED's and NFCorpus's rankings, plain and RM3 queries: 4 buckets a
    candidate and the single insertion pass select a top 1000 1.6–3.5× faster than one
    bucket a candidate sorted bucket by bucket.) The number of buckets follows k, not
    the candidates, once there are many more candidates than k: a bucket array of
    4 · nc counts (736 KB for the 23,000 candidates of a 100k-document query) is cleared
    and incremented at random for every query, while about 2·k buckets keep the top k in
    short buckets with a count array in L1/L2. Measured (one thread, best of 3,
    ``top_ranked`` alone on gamma-distributed scores, µs, 4 · nc buckets → 2 ·
    min(nc, max(k, 256))): 3,000 candidates k=1000 37.9 → 27.1; 6,000 k=1000 45.2 →
    23.7; 23,000 k=100 113 → 49; 23,000 k=1000 145 → 64; 150,000 k=1000 897 → 348
    (4 · max(k, 256) buckets or a floor of 1,024: within 10% of these); synthetic 100k
    documents, k=1000, the whole batch kernel: 299–309 → 228–237 µs a query;
    shared concatenation k=1000 56–59 → 52–56 µs; identical rankings.
    """
    bs, bt, bd, cb, cnt = rank
    if nc == 0:
        return 0
    top = cs[0]
    low = cs[0]
    for r in range(1, nc):
        s = cs[r]
        if s > top:
            top = s
        if s < low:
            low = s
    width = top - low
    if not (width > 0.0) or not (width < np.inf):
        for r in range(nc):
            bs[r], bt[r], bd[r] = cs[r], tie[cand[r]], cand[r]
        _sort_ranked(bs, bt, bd, 0, nc - 1)
        return min(nc, k)
    nb = BUCKETS_PER_CANDIDATE * min(nc, max(k, MIN_BUCKET_K))
    scale = nb / width
    for b in range(nb + 1):
        cnt[b] = 0
    for r in range(nc):
        b = int((top - cs[r]) * scale)
        if b > nb - 1:
            b = nb - 1
        cb[r] = b
        cnt[b + 1] += 1
    # the first buckets with at least k candidates; their starts as running offsets
    last = nb - 1
    run = 0
    for b in range(nb):
        run += cnt[b + 1]
        cnt[b + 1] = run
        if run >= k:
            last = b
            break
    # move the candidates of buckets 0 … last to their places; when they are few, with a
    # branch that is mostly predicted (skip), else branch-free: the others all write to
    # the slot after them, cnt[last + 1] = run, which is never advanced
    if 4 * run < nc:
        for r in range(nc):
            b = cb[r]
            if b <= last:
                i = cnt[b]
                cnt[b] = i + 1
                d = cand[r]
                bs[i], bt[i], bd[i] = cs[r], tie[d], d
    else:
        for r in range(nc):
            b = cb[r]
            ok = b <= last
            bb = b if ok else last + 1
            i = cnt[bb]
            cnt[bb] = i + ok
            d = cand[r]
            bs[i], bt[i], bd[i] = cs[r], tie[d], d
    # cnt[b] is now the end of bucket b (= the start of bucket b + 1); the buckets of
    # more than 16 entries are sorted; the entries of the others are out of place only
    # within their bucket (every entry of a bucket ranks before the next bucket's), so
    # one insertion sort over them all finishes with at most 15 moves an entry, and
    # without a branch per bucket on its size
    lo = 0
    for b in range(last + 1):
        hi = cnt[b]
        if hi - lo > 16:
            _sort_ranked(bs, bt, bd, lo, hi - 1)
        lo = hi
    _insertion_ranked(bs, bt, bd, 0, run - 1)
    return min(run, k)


@njit(cache=True, nogil=True)
def batch_top_k(queries, columns, posting_weights, selection, scratch, rank, out):
    """The ranked top ``k`` of every query of a batch, exactly.

    Arguments (named tuples of :mod:`retrieval.search.compiled`): ``queries`` = (q_ptr,
    term_ids, q_weights, mass, constant), ``columns`` = (post_ptr, post_docs,
    post_counts, log_alpha, tie), ``posting_weights`` = (tab_ptr, tab_vals, use_tables, weights,
    w_ptr, scaled), ``selection`` = (k, select, dense_from), ``scratch`` = (acc, seen, cand, cs),
    ``rank`` = (hs, ht, hd, cb, cnt), ``out`` = (out_docs, out_scores, out_n).

    Query j has the terms ``term_ids[q_ptr[j]:q_ptr[j+1]]`` with weights ``q_weights``
    (query-model order). Their postings are added into the accumulator ``acc`` (float64,
    one entry per document, all zeros on entry and again on return) term after term,
    starting from 0.0, exactly as the numpy paths' ``bincount`` adds them; the weight of
    term position p's posting i is ``q_weights[p] * tab_vals[tab_ptr[p] + post_counts[i]]``
    with ``use_tables`` (count-only models: the matched weight of each count, computed by
    numpy) and ``weights[w_ptr[p] + i - post_ptr[term]]`` otherwise (the products
    computed by numpy), or with ``scaled`` ``q_weights[p] * weights[...]`` (``weights``
    the index-wide per-posting impacts m_w(d), ``w_ptr[p]`` = the term's first posting). Each distinct document (flagged in ``seen``; listed in ``cand``
    on first touch, or — for a query with at least ``dense_from`` postings — by one
    scan of the flags after the accumulation) is scored once, ``(acc + mass·log α_d) +
    constant`` like the numpy paths. The order of the candidates does not change the
    result: both selections rank by a total order.

    The k best by (score descending, ``tie`` rank ascending) — ties broken by docid
    exactly — are then chosen either with a heap of k entries (``select`` false: cheap
    for small k, most candidates cost one comparison with the heap's last-ranked entry)
    or by a partial bucket sort (``select`` true, :func:`_top_ranked`: cheaper for large
    k). Either way the result is the same.

    Writes each query's ranked documents and scores contiguously, query after query, to
    ``out_docs``/``out_scores`` and their number to ``out_n[j]``; returns the total.
    ``cs`` (scores of the candidates), ``hs``/``ht``/``hd``, ``cb`` and ``cnt``
    (BUCKETS_PER_CANDIDATE times as many, plus one) are scratch arrays with room for every
    document (with ``select``; the heap uses the first k entries of ``hs``/``ht``/``hd``
    only).
    """
    q_ptr, term_ids, q_weights, mass, constant = queries
    post_ptr, post_docs, post_counts, log_alpha, tie = columns
    tab_ptr, tab_vals, use_tables, weights, w_ptr, scaled = posting_weights
    k, select, dense_from = selection
    acc, seen, cand, cs = scratch
    hs, ht, hd, cb, cnt = rank
    out_docs, out_scores, out_n = out
    n_q = len(q_ptr) - 1
    n_docs = len(acc)
    pos = 0
    for j in range(n_q):
        nc = 0
        postings = 0
        for p in range(q_ptr[j], q_ptr[j + 1]):
            postings += post_ptr[term_ids[p] + 1] - post_ptr[term_ids[p]]
        dense = postings >= dense_from
        for p in range(q_ptr[j], q_ptr[j + 1]):
            t = term_ids[p]
            s = post_ptr[t]
            e = post_ptr[t + 1]
            qw = q_weights[p]
            if use_tables and dense:
                off = tab_ptr[p]
                for i in range(s, e):
                    d = post_docs[i]
                    acc[d] += qw * tab_vals[off + post_counts[i]]
                    seen[d] = 1
            elif use_tables:
                off = tab_ptr[p]
                for i in range(s, e):
                    d = post_docs[i]
                    acc[d] += qw * tab_vals[off + post_counts[i]]
                    # branch-free: d is listed once, on its first touch
                    cand[nc] = d
                    nc += 1 - seen[d]
                    seen[d] = 1
            elif dense:
                off = w_ptr[p] - s
                sw = qw if scaled else 1.0
                for i in range(s, e):
                    d = post_docs[i]
                    acc[d] += sw * weights[off + i]
                    seen[d] = 1
            else:
                off = w_ptr[p] - s
                sw = qw if scaled else 1.0
                for i in range(s, e):
                    d = post_docs[i]
                    acc[d] += sw * weights[off + i]
                    cand[nc] = d
                    nc += 1 - seen[d]
                    seen[d] = 1
        if dense:  # the candidates in document order, listed by one scan of the marks
            for d in range(n_docs):
                cand[nc] = d
                nc += seen[d]
        m = mass[j]
        c0 = constant[j]
        if select:
            for r in range(nc):
                d = cand[r]
                sc = acc[d] + m * log_alpha[d]
                cs[r] = sc + c0
                acc[d] = 0.0
                seen[d] = 0
            h = _top_ranked(cs, cand, tie, nc, k, rank)
            for r in range(h):
                out_docs[pos + r] = hd[r]
                out_scores[pos + r] = hs[r]
            out_n[j] = h
            pos += h
            continue
        h = 0
        for r in range(nc):
            d = cand[r]
            sc = acc[d] + m * log_alpha[d]
            sc = sc + c0
            acc[d] = 0.0
            seen[d] = 0
            td = tie[d]
            if h < k:
                # sift up: the root is the entry ranked last
                i = h
                h += 1
                while i > 0:
                    par = (i - 1) // 2
                    if _after(sc, td, hs[par], ht[par]):
                        hs[i], ht[i], hd[i] = hs[par], ht[par], hd[par]
                        i = par
                    else:
                        break
                hs[i], ht[i], hd[i] = sc, td, d
            elif _after(hs[0], ht[0], sc, td):
                hs[0], ht[0], hd[0] = sc, td, d
                _heap_down(hs, ht, hd, h, 0)
        # heap sort: pop the entry ranked last to the back, h times
        out_n[j] = h
        for r in range(h - 1, -1, -1):
            out_docs[pos + r] = hd[0]
            out_scores[pos + r] = hs[0]
            hs[0], ht[0], hd[0] = hs[r], ht[r], hd[r]
            _heap_down(hs, ht, hd, r, 0)
        pos += h
    return pos


#: the partial bucket sort, for the per-query path's candidates
top_ranked = _top_ranked


@njit(cache=True, nogil=True)
def queries_top_k(queries, counts, impacts, k, columns, bounds, scan_from, scratch, rank,
                  cands, out):
    """The ranked top ``k`` of every query of a batch by the per-query kernel, in one
    call (no Python, and no GIL, between the queries).

    Arguments (named tuples of :mod:`retrieval.search.compiled`): ``queries`` = (q_ptr,
    term_ids, q_weights, mass, constant), ``counts`` = (tab_ptr, tab_vals, tab_max):
    term t's m_w(c) for c = 0 … tab_max[t] at tab_vals[tab_ptr[t] + c] (count-only
    models), ``impacts`` = (values, use): with ``use``, the index-wide per-posting
    impacts m_w(d) (models whose weight depends on the document; ``counts`` is then not
    read) scaled by q_w inside :func:`accumulate_top_chunked`, ``columns`` as for
    :func:`accumulate_top_chunked`, ``bounds`` the log α
    bound of each query (+inf: no skipping), ``scan_from`` the postings from which a
    query with a finite bound is scored by :func:`accumulate_top_scan`, ``scratch`` = (acc, cand) of
    :func:`accumulate_top_chunked`, ``rank`` the scratch of :func:`_top_ranked` and
    ``cands`` = (docs, scores) its candidates (room for the largest query's postings,
    plus one), ``out`` = (out_docs, out_scores, out_n).

    For each query it builds the table q_w·m_w(c) of each term (or, with impacts,
    passes the query weights as the terms' scales) (the product
    :func:`retrieval.search.compiled.count_rows` computes, bit for bit), runs
    :func:`accumulate_top_chunked` with a heap of min(k, postings) scores and ranks its
    candidates by :func:`_top_ranked` — exactly what the one-query driver does — and
    writes the ranked documents and scores query after query, their number to
    ``out_n[j]``; returns the total.
    """
    q_ptr, term_ids, q_weights, mass, constant = queries
    tab_ptr, tab_vals, tab_max = counts
    post_ptr = columns.post_ptr
    acc, cand = scratch
    c_docs, c_scores = cands
    out_docs, out_scores, out_n = out
    hs, ht, hd, cb, cnt = rank
    imp_vals, use_impacts = impacts
    no_weights = np.zeros(0, dtype=np.float64)
    pos = 0
    for j in range(len(q_ptr) - 1):
        a = q_ptr[j]
        m = q_ptr[j + 1] - a
        width = 1
        n_post = 0
        starts = np.empty(m, dtype=np.int64)
        ends = np.empty(m, dtype=np.int64)
        for p in range(m):
            t = term_ids[a + p]
            starts[p] = post_ptr[t]
            ends[p] = post_ptr[t + 1]
            n_post += ends[p] - starts[p]
            if not use_impacts and tab_max[t] + 1 > width:
                width = tab_max[t] + 1
        if use_impacts:
            tabs = np.empty((0, 0), dtype=np.float64)
            weights = imp_vals
            scale = q_weights[a:a + m].copy()
        else:
            tabs = np.empty((m, width), dtype=np.float64)
            weights = no_weights
            scale = np.ones(m, dtype=np.float64)
            for p in range(m):
                t = term_ids[a + p]
                qw = q_weights[a + p]
                top = tab_max[t]
                base = tab_ptr[t]
                for c in range(width):
                    tabs[p, c] = qw * tab_vals[base + min(c, top)]
        kq = min(k, max(n_post, 1))
        heap = np.empty(kq, dtype=np.float64)
        terms = (starts, ends, weights, tabs, not use_impacts, scale, use_impacts)
        score = (bounds[j], mass[j], constant[j], kq)
        if n_post >= scan_from and bounds[j] < np.inf:
            nn = accumulate_top_scan((acc, cand, heap), columns, terms, score,
                                     (c_docs, c_scores))
        else:
            nn = accumulate_top_chunked((acc, cand, heap), columns, terms, score,
                                        (c_docs, c_scores))
        h = _top_ranked(c_scores, c_docs, columns.tie, nn, k, rank)
        for r in range(h):
            out_docs[pos + r] = hd[r]
            out_scores[pos + r] = hs[r]
        out_n[j] = h
        pos += h
    return pos


@njit(cache=True, nogil=True)
def relevance_top_terms(rows, pair_weight, pair_denom, term_ok, fb_terms, scratch, out):
    """RM3's feedback terms for a batch of queries, without gathering the rows.

    Arguments grouped (named tuples of :mod:`retrieval.search.compiled`): ``rows`` =
    (pair_ptr, pair_doc, fwd_ptr, fwd_terms, fwd_counts), ``scratch`` = (acc, mark,
    touched, cand_p, spare), ``out`` = (out_ptr, out_terms, out_prob).

    Query ``j``'s feedback documents are ``pair_doc[pair_ptr[j]:pair_ptr[j+1]]`` (by
    rank), with posterior ``pair_weight`` and ``pair_denom`` = |D| + fb_mu. For every term
    of their forward rows P(w|R) = Σ_D w_D·c(w,D)/denom_D is accumulated in ``acc`` (all
    zeros on entry and again on return; ``mark``/``touched`` list the terms seen;
    ``touched`` has one spare slot; ``cand_p`` and ``spare`` are scratch arrays as long
    as ``touched``) in rank order, then term order within a row — the order of the numpy
    path's ``bincount``, so the sums are bit-identical. The ``fb_terms`` largest P(w|R) > 0 among terms with
    ``term_ok`` are kept, by probability descending then term id (string order), and
    divided by their sum (added in that order): a min-heap of the ``fb_terms`` largest
    values gives the threshold, and only the terms at least that large (ties included)
    are sorted, by :func:`_sort_ranked`. Query ``j``'s terms are
    ``out_terms[out_ptr[j]:out_ptr[j+1]]``; returns the total number written.
    """
    pair_ptr, pair_doc, fwd_ptr, fwd_terms, fwd_counts = rows
    acc, mark, touched, cand_p, spare = scratch
    out_ptr, out_terms, out_prob = out
    heap = np.empty(max(fb_terms, 1), dtype=np.float64)
    o = 0
    out_ptr[0] = 0
    for j in range(len(pair_ptr) - 1):
        nt = 0
        for pi in range(pair_ptr[j], pair_ptr[j + 1]):
            d = pair_doc[pi]
            wd = pair_weight[pi]
            den = pair_denom[pi]
            for x in range(fwd_ptr[d], fwd_ptr[d + 1]):
                t = fwd_terms[x]
                # branch-free: t is listed once, on its first touch (measured, NFCorpus:
                # the accumulation 7.8 → 2.7 µs a query)
                touched[nt] = t
                nt += 1 - mark[t]
                mark[t] = 1
                acc[t] += wd * fwd_counts[x] / den
        # the candidate terms (P(w|R) > 0, allowed), compacted in place into touched and
        # cand_p (branch-free: a rejected term is overwritten by the next one)
        m = 0
        for i in range(nt):
            t = touched[i]
            p = acc[t]
            acc[t] = 0.0
            mark[t] = 0
            touched[m] = t
            cand_p[m] = p
            m += (p > 0.0) & term_ok[t]
        if m > fb_terms:
            # the fb_terms-th largest value, by a min-heap of the fb_terms largest; then
            # only the candidates at least that large (ties included) are kept
            for i in range(fb_terms):
                heap[i] = cand_p[i]
            for i in range(fb_terms // 2 - 1, -1, -1):
                _sift_down(heap, fb_terms, i)
            for i in range(fb_terms, m):
                if cand_p[i] > heap[0]:
                    heap[0] = cand_p[i]
                    _sift_down(heap, fb_terms, 0)
            thr = heap[0]
            c = 0
            for i in range(m):
                keep = cand_p[i] >= thr
                touched[c] = touched[i]
                cand_p[c] = cand_p[i]
                c += keep
            m = c
        # sorted by probability descending, then term id (string order); the first
        # fb_terms are the top terms (spare: the sort's third array, unused)
        if m > 0:
            _sort_ranked(cand_p, touched, spare, 0, m - 1)
        if m > fb_terms:
            m = fb_terms
        total = 0.0
        for i in range(m):
            total += cand_p[i]
        for i in range(m):
            out_terms[o] = touched[i]
            out_prob[o] = cand_p[i] / total
            o += 1
        out_ptr[j + 1] = o
    return o


# 64-bit de Bruijn sequence and its table: the index of the lowest set bit of x is
# _DEBRUIJN_INDEX[((x & −x) · _DEBRUIJN) >> 58] (integer operations only)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, dtype=np.int64)
for _i in range(64):
    _DEBRUIJN_INDEX[((1 << _i) * 0x03F79D71B4CB0A89 % (1 << 64)) >> 58] = _i
del _i


@njit(cache=True, nogil=True)
def feedback_rows(rows, scratch, keys, out_rows):
    """The feedback documents' forward rows, and the distinct (query, term) keys they
    hold, sorted — what :func:`retrieval.feedback.feedback_set` computes with a
    ``numpy.unique`` over all the rows, without a sort.

    Query ``j``'s feedback documents are ``pair_doc[pair_ptr[j]:pair_ptr[j+1]]``. Their
    rows are written in that order (then forward-row order) to ``row_pair`` (the pair's
    position), ``row_count`` and, for now, ``row_key`` (the term). Each term sets its bit
    in the bit set ``bits`` (one uint64 word per 64 term ids) and adds its count to
    ``acc``; one scan of the words touched, lowest set bit first, then lists the query's
    distinct terms in ascending id order, with c(w, F) (sums of integers: exact in any
    order), and ``row_key`` is mapped from terms to key positions. ``acc``, ``bits`` and
    ``key_pos`` are scratch arrays (one entry per term, one word per 64 terms; ``acc`` and
    ``bits`` all zeros on entry and again on return). Returns the number of keys.

    Arguments grouped (named tuples of :mod:`retrieval.search.compiled`): ``rows`` =
    (pair_ptr, pair_doc, fwd_ptr, fwd_terms, fwd_counts), ``scratch`` = (acc, bits,
    key_pos), ``keys`` = (key_query, key_term, key_count), ``out_rows`` = (row_pair,
    row_key, row_count).
    """
    pair_ptr, pair_doc, fwd_ptr, fwd_terms, fwd_counts = rows
    acc, bits, key_pos = scratch
    key_query, key_term, key_count = keys
    row_pair, row_key, row_count = out_rows
    n_keys = 0
    r = 0
    one = np.uint64(1)
    for j in range(len(pair_ptr) - 1):
        r0 = r
        lo_word = len(bits)
        hi_word = -1
        for pi in range(pair_ptr[j], pair_ptr[j + 1]):
            d = pair_doc[pi]
            for x in range(fwd_ptr[d], fwd_ptr[d + 1]):
                t = fwd_terms[x]
                c = fwd_counts[x]
                w = t >> 6
                bits[w] |= one << np.uint64(t & 63)
                if w < lo_word:
                    lo_word = w
                if w > hi_word:
                    hi_word = w
                acc[t] += c
                row_pair[r] = pi
                row_count[r] = c
                row_key[r] = t
                r += 1
        for w in range(lo_word, hi_word + 1):
            word = bits[w]
            if word == 0:
                continue
            bits[w] = 0
            while word != 0:
                low = word & (~word + one)
                t = w * 64 + _DEBRUIJN_INDEX[(low * _DEBRUIJN) >> np.uint64(58)]
                key_pos[t] = n_keys
                key_query[n_keys] = j
                key_term[n_keys] = t
                key_count[n_keys] = acc[t]
                acc[t] = 0.0
                n_keys += 1
                word ^= low
        for x in range(r0, r):
            row_key[x] = key_pos[row_key[x]]
    return n_keys
