"""Two-stage smoothing's λ per query (Zhai & Lafferty, SIGIR 2002): the EM of the paper
(:func:`estimate_query_lambda`), the direct maximiser of its likelihood
(:func:`direct_query_lambda`, dense rows), and λ̂ of queries over an index
(:func:`query_lambdas`, :func:`query_lambdas_of_ids`: from the postings, by numpy or by
the compiled kernel of :mod:`retrieval.lambda_kernels`, the same λ̂ to the bit).
:mod:`retrieval.twostage` ranks each query with its λ̂.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from typing import NamedTuple

import numpy as np

from .errors import ParameterError
from .index import Index


class LambdaEstimate(NamedTuple):
    """The EM estimate of the two-stage λ for one query."""
    lam: float
    iterations: int
    log_likelihood: float


def _lambda_inputs(doc_term_counts, doc_len, p_collection, query_counts):
    """The four inputs of the per-query λ estimates as float64 arrays, checked."""
    counts = np.asarray(doc_term_counts, dtype=np.float64)
    dl = np.asarray(doc_len, dtype=np.float64)
    pc = np.asarray(p_collection, dtype=np.float64)
    cq = np.asarray(query_counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape != (len(dl), len(pc)) or cq.shape != pc.shape:
        raise ParameterError("doc_term_counts must be N x m, doc_len N values, "
                             "p_collection and query_counts m values each")
    if len(pc) == 0 or len(dl) == 0:
        raise ParameterError("λ needs at least one known query term and one document")
    if np.any(pc <= 0) or np.any(cq <= 0):
        raise ParameterError("p(w|C) and the query counts must be positive")
    return counts, dl, pc, cq


def estimate_query_lambda(doc_term_counts, doc_len, p_collection, query_counts, mu: float,
                          *, tol: float = 1e-8, max_iter: int = 500,
                          multiplicity=None) -> LambdaEstimate:
    """λ̂ of one query: the second stage of two-stage smoothing (Zhai & Lafferty 2002).

    The query q = (q_1 … q_m, counts c_j) is taken as a sample of a mixture over the N
    documents, each document's first-stage (Dirichlet, μ) model mixed with the
    collection ("user") model:

        p(q | λ, π) = Σ_i π_i Π_j [(1−λ) p_μ(q_j|d_i) + λ p(q_j|C)]^{c_j},
        p_μ(w|d) = (c(w,d) + μ p(w|C)) / (|d| + μ)

    and λ̂, π̂ maximise it. EM, from λ = 0.5 and uniform π (reproducible):

        z_i ∝ π_i Π_j [(1−λ) p_ij + λ p_j]^{c_j}                    (E: document posterior)
        λ ← Σ_i z_i Σ_j c_j λp_j / ((1−λ)p_ij + λp_j) / Σ_j c_j      (M: λ)
        π_i ← z_i                                                    (M: π)

    until λ changes by less than ``tol`` (or ``max_iter``). ``doc_term_counts`` is the
    N × m matrix c(q_j, d_i), ``doc_len`` the N lengths, ``p_collection`` the m values
    p(q_j|C) > 0, ``query_counts`` the m counts c_j > 0. One vectorised N × m pass per
    iteration. Empty documents (|d| = 0) have p_μ = p(w|C) like every model here.

    ``multiplicity`` (N positive whole numbers, default all 1): row i stands for that
    many identical documents (same counts and length). Identical documents keep equal
    posteriors and priors under EM, so a group's π is their sum, starting at
    multiplicity/Σ multiplicity: the result is exactly that of the expanded matrix.
    """
    counts, dl, pc, cq = _lambda_inputs(doc_term_counts, doc_len, p_collection,
                                        query_counts)
    check_mu = float(mu)
    if not check_mu > 0:
        raise ParameterError(f"mu (μ) must be positive, got {mu!r}")
    p_doc = (counts + check_mu * pc) / (dl[:, None] + check_mu)
    lam = 0.5
    if multiplicity is None:
        log_pi = np.full(len(dl), -np.log(len(dl)))
    else:
        mult = np.asarray(multiplicity, dtype=np.float64)
        if mult.shape != dl.shape or np.any(mult < 1):
            raise ParameterError("multiplicity must hold one count >= 1 per document row")
        log_pi = np.log(mult) - np.log(mult.sum())
    total = float(cq.sum())
    ll = -np.inf
    it = 0
    for it in range(1, max_iter + 1):
        mix = (1.0 - lam) * p_doc + lam * pc
        log_l = np.log(mix) @ cq + log_pi
        top = float(log_l.max())
        z = np.exp(log_l - top)
        norm = float(z.sum())
        ll = top + math.log(norm)
        z /= norm
        new = float(z @ ((lam * pc / mix) @ cq)) / total
        log_pi = np.log(np.maximum(z, 1e-300))
        done = abs(new - lam) <= tol
        lam = new
        if done:
            break
    return LambdaEstimate(min(max(lam, 0.0), 1.0), it, ll)


#: bisection steps of :func:`direct_query_lambda`: the bracket [0, 1] shrinks to 2⁻⁵⁴,
#: below float64's spacing near 1
_BISECTIONS = 54


def direct_query_lambda(doc_term_counts, doc_len, p_collection, query_counts, mu: float,
                        *, multiplicity=None) -> LambdaEstimate:
    """The maximiser of :func:`estimate_query_lambda`'s likelihood, computed directly.

    The likelihood p(q | λ, π) = Σ_i π_i L_i(λ), L_i(λ) = Π_j [(1−λ)a_ij + λb_j]^{c_j}
    (a_ij = p_μ(q_j|d_i), b_j = p(q_j|C)), is *linear* in π, so over the simplex its
    maximum puts all of π on one document: max_{λ,π} = max_i max_λ L_i(λ). Each
    log L_i is concave in λ (a sum of logs of affine functions), with derivative

        g_i(λ) = Σ_j c_j (b_j − a_ij) / ((1−λ)a_ij + λb_j)       (decreasing in λ)

    so λ_i = 0 when g_i(0) ≤ 0, 1 when g_i(1) ≥ 0, else the root of g_i, found by
    bisection of [0, 1] (54 halvings: exact to float64). λ̂ is the λ_i of the row with
    the largest log L_i(λ_i) (the first among equals). This is the point EM climbs to
    (its iterates approach the boundary λ = 0 only sublinearly: 500 iterations left
    CISI's queries short of it).

    Exact pruning: a mixture never exceeds its larger part, so
    max_λ log L_i(λ) ≤ U_i = Σ_j c_j log max(a_ij, b_j), while the maximum over rows is
    at least F = max(max_{i: g_i(0) ≤ 0} log L_i(0), Σ_j c_j log b_j) (the value at
    λ = 1 of any row). A row with g_i(0) > 0 and U_i + s < F, s = 1e-9 (1 + |U_i| + |F|)
    (far above float64 rounding of these m-term sums, ~1e-15 relative), can neither be
    the maximum nor tie it, so neither its g_i(1), its bisection nor its log L_i(λ_i) is
    computed. On the shared collections (μ = 1000) this leaves a few rows per query.

    Summation order (the definition, to the bit): every row sum Σ_j c_j x_ij above —
    g_i(0), g_i(1), g_i at each bisection midpoint, log L_i, U_i, and Σ_j c_j log b_j — is
    taken in the fixed order j = 0 … m−1, s = c_0·x_i0, then s = s + c_j·x_ij
    (:func:`row_sums`), not by BLAS (whose ``X @ c`` sums a row in an order that
    depends on the row's position in X). Each row's numbers therefore depend on that row
    alone, so pruning rows changes no remaining row's λ_i or log L_i: λ̂, its row and its
    log-likelihood are those of the unpruned computation to the bit (tested on random
    cases, the sample corpus and every query of the shared collections), and the
    compiled kernel (:mod:`retrieval.lambda_kernels`), which runs the same operations
    in the same order without ``fastmath``, gives them to the bit as well (tested;
    provided numpy's ``log`` is the C library's, as on x86-64 without AVX-512). Against
    the BLAS sums used before this definition, λ̂ moved in the last bits on some queries
    (shared collections: none of 740 at μ = 1000; 62 at μ = 100, by ≤ 2.2e-16; no
    top-1000 ranking changed — ``tests/test_lambda_kernels.py``).

    Screening (speed only): the three sums over all rows — g_i(0), log L_i(0) of the
    rows with g_i(0) ≤ 0, U_i of the others — are first taken by BLAS, within
    1e-9 (1 + Σ_j c_j |x_ij|) of the fixed-order sum (:func:`_screened`); a decision
    that margin cannot change (a sign of g_i(0), a row that cannot reach the largest
    log L_i(0), a side of the pruning test) is taken from it, and the fixed-order sum
    of the other rows decides the rest. The outcome is the fixed-order one to the bit.
    ``multiplicity`` is accepted for symmetry and does not change a maximum over rows.
    ``iterations`` is the number of bisection passes (0 when no remaining row needs one).
    """
    counts, dl, pc, cq = _lambda_inputs(doc_term_counts, doc_len, p_collection,
                                        query_counts)
    if not float(mu) > 0:
        raise ParameterError(f"mu (μ) must be positive, got {mu!r}")
    del multiplicity
    a = (counts + float(mu) * pc) / (dl[:, None] + float(mu))
    d = pc - a
    lam = np.zeros(len(dl))
    terms = d / a
    slope, margin = _screened(terms, cq)            # g_i(0) ≤ 0: λ_i = 0
    unsure = np.flatnonzero(np.abs(slope) <= margin)
    slope[unsure] = row_sums(terms[unsure], cq)
    rest = np.flatnonzero(slope > 0)
    zero_rows = np.flatnonzero(slope <= 0)
    ll = np.full(len(dl), -np.inf)                   # a pruned row: below the floor
    if len(zero_rows):                               # log L_i(0) of the rows that could
        log_a = np.log(a[zero_rows])                 # be the largest
        approx, margin = _screened(log_a, cq)
        top = np.flatnonzero(approx + margin >= np.max(approx - margin))
        ll[zero_rows[top]] = row_sums(log_a[top], cq)
    passes = 0
    if len(rest):
        log_pc = np.log(pc)
        floor = float(row_sums(log_pc[None, :], cq)[0])          # log L_i(1) of any row
        if len(zero_rows):
            floor = max(floor, float(ll[zero_rows].max()))

        def kept(u):
            return u + 1e-9 * (1.0 + np.abs(u) + abs(floor)) >= floor

        terms = np.maximum(np.log(a[rest]), log_pc)          # log max(a, b)
        approx, margin = _screened(terms, cq)
        keep = kept(approx - margin)
        check = np.flatnonzero(kept(approx + margin) & ~keep)
        keep[check] = kept(row_sums(terms[check], cq))
        rest = rest[keep]
    if len(rest):
        a_r, d_r = a[rest], d[rest]
        # g_i(1) < 0: a root in (0, 1); else λ_i = 1
        has_root = row_sums(d_r / (a_r + d_r), cq) < 0
        lam[rest] = 1.0
        if has_root.any():
            passes = _BISECTIONS
            lam[rest[has_root]] = _bisect(a_r[has_root], d_r[has_root], cq)
        ll[rest] = row_sums(np.log(a_r + lam[rest][:, None] * d_r), cq)
    best = int(np.argmax(ll))
    return LambdaEstimate(float(lam[best]), passes, float(ll[best]))


#: the screening margin of :func:`_screened`, relative to the magnitudes summed
SCREEN = 1e-9


def _screened(values, cq):
    """Every row's Σ_j c_j·x_ij by BLAS, and a margin within which it lies of
    :func:`row_sums`' fixed-order sum: each is within m·2⁻⁵³·Σ_j c_j|x_ij| of the exact
    sum whatever the order (c_j > 0), far below SCREEN·(1 + Σ_j c_j|x_ij|) for any m
    below 10⁶. Decisions the margin cannot change are taken from it (a matrix-vector
    product is cheaper than the ordered sum over all rows), the others from
    :func:`row_sums` of those rows."""
    return values @ cq, SCREEN * (1.0 + np.abs(values) @ cq)


def row_sums(values, cq) -> np.ndarray:
    """Σ_j c_j·x_ij of every row of ``values`` in the fixed order j = 0 … m−1:
    s = c_0·x_i0, then s = s + c_j·x_ij (the definition of every row sum of
    :func:`direct_query_lambda`). Computed as the last column of ``np.add.accumulate``
    of the products along the row, whose documented meaning is exactly that loop
    (r_0 = x_0, r_j = r_(j−1) + x_j; tested against the loop, bit for bit), in two
    array operations instead of m."""
    return np.add.accumulate(values * cq, axis=1)[:, -1]


def _bisect(a, d, cq) -> np.ndarray:
    """The roots in (0, 1) of g_i(λ) = Σ_j c_j d_ij / (a_ij + λ d_ij), all rows at once
    (each row's sums in :func:`row_sums`' order)."""
    lo, hi = np.zeros(len(a)), np.ones(len(a))
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        up = row_sums(d / (a + mid[:, None] * d), cq) > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return 0.5 * (lo + hi)


def query_lambdas(index: Index, query_models, mu: float, *, method: str = "direct",
                  **kwargs) -> list[LambdaEstimate]:
    """λ̂ for each query model (``QueryModel``: terms and weights, the weights taken as
    the counts c_j) over all documents of ``index``: ``method="direct"`` (default)
    :func:`direct_query_lambda`, ``"em"`` :func:`estimate_query_lambda` (``kwargs``: its
    ``tol``, ``max_iter``). Queries with no term in the index get λ = 0.5 (the fixed
    default) and 0 iterations.

    The batch API and per-query λ: α_d = (μ + λ|d|)/(|d| + μ) changes with λ, so each
    query is ranked by its own resolved ``TwoStage(mu, lam=λ̂_q)``; a batch is the
    per-query searches (:mod:`retrieval.twostage`).
    """
    terms = []
    for qm in query_models:
        ids = [index.term_id(t) for t in qm.terms]
        keep = [j for j, i in enumerate(ids) if i >= 0]
        terms.append((np.array([ids[j] for j in keep], dtype=np.int64),
                      np.array([qm.weights[j] for j in keep], dtype=np.float64)))
    return query_lambdas_of_ids(index, terms, mu, method=method, **kwargs)


def query_lambdas_of_ids(index: Index, queries, mu: float, *, method: str = "direct",
                         compiled: bool | str = "auto", **kwargs) -> list[LambdaEstimate]:
    """:func:`query_lambdas` for queries given as (term ids, weights) pairs of arrays
    (known terms only, e.g. a prepared :class:`~retrieval.search.QueryBatch`'s).

    ``method="direct"``: :func:`direct_query_lambda`'s λ̂, iterations and log-likelihood
    to the bit, from the postings — by the numba kernel of :mod:`retrieval.lambda_kernels`
    (every query in one call) when :func:`lambda_kernels` chooses it for ``compiled``
    ("auto", True, False) — it computes exactly only the sums that can decide the
    result — else by numpy on each query's collapsed rows (:func:`_query_rows`; measured:
    a numpy twin of the kernel's screening was no faster, its ~100 small array
    operations per query costing what the dense m-column sums save). ``method="em"``:
    :func:`estimate_query_lambda` on the collapsed rows (``kwargs``: its ``tol``,
    ``max_iter``).
    """
    queries = [(np.asarray(t, dtype=np.int64), np.asarray(w, dtype=np.float64))
               for t, w in queries]
    q_ptr = np.cumsum([0] + [len(t) for t, _ in queries]).astype(np.int64)
    cat = [np.concatenate([q[k] for q in queries]) if queries else np.zeros(0)
           for k in (0, 1)]
    return query_lambdas_of_arrays(index, q_ptr, cat[0].astype(np.int64), cat[1], mu,
                                   method=method, compiled=compiled, **kwargs)


def query_lambdas_of_arrays(index: Index, q_ptr, term_ids, weights, mu: float, *,
                            method: str = "direct", compiled: bool | str = "auto",
                            **kwargs) -> list[LambdaEstimate]:
    """:func:`query_lambdas_of_ids` for queries as CSR arrays: query q has the term ids
    ``term_ids[q_ptr[q]:q_ptr[q+1]]`` with counts ``weights[…]`` (a prepared
    :class:`~retrieval.search.QueryBatch`'s ``ptr``, ``term_ids``, ``weights``)."""
    if method not in ("direct", "em"):
        raise ParameterError(f"method must be 'direct' or 'em', got {method!r}")
    if compiled not in ("auto", True, False):
        raise ParameterError(f"compiled must be 'auto', True or False, got {compiled!r}")
    if method == "direct" and kwargs:
        raise ParameterError(f"method='direct' takes no options, got {sorted(kwargs)} "
                             f"(tol and max_iter are the EM's)")
    if not float(mu) > 0:
        raise ParameterError(f"mu (μ) must be positive, got {mu!r}")
    mu = float(mu)
    q_ptr = np.asarray(q_ptr, dtype=np.int64)
    tids = np.asarray(term_ids, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    n_queries = len(q_ptr) - 1
    if n_queries < 1:
        return []
    if np.any(weights <= 0) or np.any(index.p_collection[tids] <= 0):
        raise ParameterError("p(w|C) and the query counts must be positive")
    lengths = np.asarray(index.arrays["doc_lengths"], dtype=np.int64)
    cols = (np.asarray(index.arrays["postings_indptr"]),
            np.asarray(index.arrays["postings_docs"]),
            np.asarray(index.arrays["postings_counts"]), lengths, index.p_collection)
    # the distinct lengths and their documents, once per call (each query subtracts its
    # matched documents instead of sorting the N lengths again)
    distinct, per_length = np.unique(lengths, return_counts=True)
    slot = np.searchsorted(distinct, lengths)
    kernels = lambda_kernels(compiled, index.num_docs, int(
        (cols[0][tids + 1] - cols[0][tids]).sum())) if method == "direct" else None
    if kernels is not None:
        lam, passes, ll = np.zeros(n_queries), np.zeros(n_queries, dtype=np.int64), \
            np.zeros(n_queries)
        kernels.query_lambdas(q_ptr, tids, weights, index.p_collection, mu, *cols[:4],
                              distinct, per_length.astype(np.int64), slot.astype(np.int64),
                              lam, passes, ll)
        return [LambdaEstimate(*v) for v in zip(lam.tolist(), passes.tolist(), ll.tolist())]
    hist = (distinct, per_length, slot)
    solve = direct_query_lambda if method == "direct" else estimate_query_lambda
    out = []
    for b, e in zip(q_ptr[:-1].tolist(), q_ptr[1:].tolist()):
        if e == b:
            out.append(LambdaEstimate(0.5, 0, 0.0))
            continue
        counts, dl, mult = _query_rows(tids[b:e], cols, hist)
        out.append(solve(counts, dl, index.p_collection[tids[b:e]], weights[b:e], mu,
                         multiplicity=mult, **kwargs))
    return out


def lambda_kernels(compiled: bool | str = "auto", n_docs: int = 0, postings: int = 0):
    """:mod:`retrieval.lambda_kernels` when λ̂ should be computed by it, else None.

    Never with ``compiled=False``, without numba, or with the environment variable
    ``RETRIEVAL_KERNELS=0`` (the search's switch); always otherwise with
    ``compiled=True``; under "auto" when this process has imported the kernels already
    (the search's or these), for ``n_docs`` of at least :data:`KERNEL_MIN_DOCS` (where
    the search loads its kernels anyway), or when the batch's queries have at least
    :data:`KERNEL_MIN_POSTINGS` ``postings`` — so a small-index command line never pays
    numba's import for ~0.5 ms of numpy per query.
    """
    if compiled is False or os.environ.get("RETRIEVAL_KERNELS", "1").strip() == "0":
        return None
    if compiled == "auto" and n_docs < KERNEL_MIN_DOCS and postings < KERNEL_MIN_POSTINGS \
            and not any(name in sys.modules for name in ("retrieval.lambda_kernels",
                                                         "retrieval.search.kernels")):
        return None
    return _import_lambda_kernels()


#: :func:`lambda_kernels`' "auto" size: the search's ``Thresholds.kernel_min_docs``
KERNEL_MIN_DOCS = 100_000

#: :func:`lambda_kernels`' "auto" batch size. Measured: the numpy path costs ~0.3 µs per
#: posting of the queries (0.40 s for the 756 shared-collection queries' 1.3M postings,
#: μ = 1000), the kernel ~0.02 µs, and numba's first use in a process ~0.9 s (import
#: 0.3 s, loading the cached kernel 0.6 s): even from about 3M postings
KERNEL_MIN_POSTINGS = 4_000_000


@functools.cache
def _import_lambda_kernels():
    try:
        from . import lambda_kernels as module
    except ImportError:
        return None
    return module


def _query_rows(tids, cols, hist):
    """The EM's rows for query terms ``tids``: one per document containing one of them
    (its counts), then one per distinct length of the other documents (zero counts,
    with the number of such documents as multiplicity): exact (see
    :func:`estimate_query_lambda`) and O(postings + N) instead of O(N × m) memory.
    ``hist`` = (distinct lengths ascending, documents of each, each document's slot in
    the first, …): the rest's lengths are those whose count stays positive after the
    matched documents are taken off (the ascending order of ``np.unique``)."""
    ptr, post_docs, post_counts, lengths, _ = cols
    distinct, per_length, slot = hist[:3]
    parts = [(np.asarray(post_docs[ptr[t]:ptr[t + 1]], dtype=np.int64),
              np.asarray(post_counts[ptr[t]:ptr[t + 1]], dtype=np.float64)) for t in tids]
    hit = np.zeros(len(lengths), dtype=bool)
    for docs, _ in parts:
        hit[docs] = True
    matched = np.flatnonzero(hit)                    # ascending, as np.unique
    row_of = np.cumsum(hit) - 1                      # a matched document's row
    left = per_length - np.bincount(slot[matched], minlength=len(distinct))
    keep = left > 0
    counts = np.zeros((len(matched) + int(keep.sum()), len(tids)))
    for col, (docs, c) in enumerate(parts):
        counts[row_of[docs], col] = c
    dl = np.concatenate([lengths[matched], distinct[keep]]).astype(np.float64)
    return counts, dl, np.concatenate([np.ones(len(matched)), left[keep].astype(np.float64)])
