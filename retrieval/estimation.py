"""Estimating the Dirichlet prior μ from the collection alone (no relevance judgments).

Leave-one-out maximum likelihood (Zhai & Lafferty, SIGIR 2002). Each token of a
document is predicted from the rest of the document smoothed with the collection model:

    ℓ(μ) = Σ_d Σ_{w∈d} c(w,d) · log[(c(w,d) − 1 + μ p(w|C)) / (|d| − 1 + μ)]

and μ̂ = argmax_{μ>0} ℓ(μ). With A = c − 1 + μp and B = |d| − 1 + μ,

    ℓ′(μ) = Σ c · (|d|p − p − c + 1) / (A · B)
    ℓ″(μ) = Σ c · (1/B² − p²/A²)
          = −Σ c · (|d|p − p − c + 1) · (A + pB) / (A² B²)

All three are sums over the non-zeros of the document-term matrix (the forward CSR
arrays), evaluated as one numpy expression each; the non-zeros are first collapsed
into distinct (c, |d|, p) triples with multiplicities, which does not change a sum.

Note on ℓ″: the closed form sometimes quoted, −Σ c(|d|p − p − c + 1)² / (A² B²), is
not the derivative of ℓ′ (it equals it only when A + pB = |d|p − p − c + 1, which
never holds); we use the exact second derivative above. ℓ is a sum of concave
(c·log A) and convex (−c·log B) parts, so concavity is not guaranteed everywhere,
and Newton's method is run **safeguarded**: the maximiser is first bracketed by a
sign change of ℓ′ on a geometric grid, every Newton step that leaves the bracket, or
meets ℓ″ ≥ 0, is replaced by a bisection of the bracket in log μ, and the bracket
shrinks with every evaluation, so μ stays positive and the iteration converges.

Single-token documents carry no information about μ: their term is
log[(μp)/μ] = log p(w|C), constant in μ, and contributes 0 to ℓ′ and ℓ″.

The estimate is cached on the :class:`~retrieval.index.Index` object and, for an index
on disk, stored in its manifest under ``manifest["estimates"]["dirichlet_mu_loo"]``
(:func:`cached_mu_estimate`; :func:`manifest_entry` / :func:`from_manifest` give and read
the record). Changing the index (add, delete, update) drops the stored estimate.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from typing import NamedTuple

import numpy as np

from .errors import ParameterError
from .index import Index, store_estimate

#: where the estimate lives in an index manifest
MANIFEST_KEY = "dirichlet_mu_loo"
_CACHE_ATTR = "_mu_estimate_loo"

_MU_LOW = 1e-6
_MU_HIGH = 1e12


class MuEstimate(NamedTuple):
    """The leave-one-out estimate of μ.

    ``iterations`` counts evaluations of ℓ′ (bracketing and Newton/bisection steps);
    ``log_likelihood`` is ℓ(μ̂) in nats.
    """
    mu: float
    iterations: int
    log_likelihood: float


def _collapse(counts: np.ndarray, doc_len: np.ndarray, p: np.ndarray):
    """Distinct (c, |d|, p) triples and their multiplicities."""
    keys = np.stack([counts, doc_len, p.view(np.int64) if p.dtype == np.float64 else p])
    uniq, mult = np.unique(keys, axis=1, return_counts=True)
    return (uniq[0].astype(np.float64), uniq[1].astype(np.float64),
            uniq[2].view(np.float64).astype(np.float64), mult.astype(np.float64))


class _LeaveOneOut:
    """ℓ, ℓ′, ℓ″ over the collapsed non-zeros."""

    def __init__(self, counts, doc_len, p):
        c, dl, pc, m = _collapse(np.asarray(counts, dtype=np.int64),
                                 np.asarray(doc_len, dtype=np.int64),
                                 np.asarray(p, dtype=np.float64))
        self.c, self.dl, self.p = c, dl, pc
        self.mc = m * c                           # multiplicity × c(w,d)
        self.num = dl * pc - pc - c + 1.0         # |d|p − p − c + 1

    def value(self, mu: float) -> float:
        a = self.c - 1.0 + mu * self.p
        b = self.dl - 1.0 + mu
        return float(np.dot(self.mc, np.log(a) - np.log(b)))

    def derivatives(self, mu: float) -> tuple[float, float]:
        a = self.c - 1.0 + mu * self.p
        b = self.dl - 1.0 + mu
        d1 = float(np.dot(self.mc, self.num / (a * b)))
        d2 = float(np.dot(self.mc, 1.0 / (b * b) - (self.p * self.p) / (a * a)))
        return d1, d2


def estimate_mu_from_counts(counts, doc_len, p_collection, *, tol: float = 1e-9,
                            max_iter: int = 200) -> MuEstimate:
    """μ̂ from the non-zeros: ``counts`` c(w,d), ``doc_len`` |d| and ``p_collection``
    p(w|C), three aligned arrays with one entry per (document, term) pair."""
    counts = np.asarray(counts)
    doc_len = np.asarray(doc_len)
    p_collection = np.asarray(p_collection, dtype=np.float64)
    if not (counts.shape == doc_len.shape == p_collection.shape) or counts.ndim != 1:
        raise ParameterError("counts, doc_len and p_collection must be 1-d arrays of the "
                             "same length (one entry per document-term pair)")
    if counts.size == 0:
        raise ParameterError("cannot estimate μ from an empty collection; index some "
                             "documents first")
    if np.any(counts < 1) or np.any(doc_len < counts) or np.any(p_collection <= 0):
        raise ParameterError("counts must be >= 1, no larger than their document's length, "
                             "and p(w|C) must be positive")
    f = _LeaveOneOut(counts, doc_len, p_collection)
    evals = 0

    def grad(mu):
        nonlocal evals
        evals += 1
        return f.derivatives(mu)

    # bracket the maximiser: ℓ′(lo) > 0 > ℓ′(hi), on a geometric grid around 1000
    lo, hi = 1000.0, 1000.0
    g_lo, _ = grad(lo)
    if g_lo > 0:
        g = g_lo
        while g > 0:
            lo, hi = hi, hi * 4.0
            if hi > _MU_HIGH:
                raise ParameterError(
                    "the leave-one-out likelihood keeps increasing with μ (the documents "
                    "look like samples of the collection model); no finite μ fits — use "
                    "a fixed --mu instead")
            g, h = grad(hi)
        mu, d1, d2 = (lo, *grad(lo))
    else:
        g = g_lo
        while g <= 0:
            hi, lo = lo, lo / 4.0
            if lo < _MU_LOW:
                raise ParameterError(
                    "the leave-one-out likelihood is maximal at μ → 0 (no term occurs "
                    "once in a document); no positive μ fits — use a fixed --mu instead")
            g, h = grad(lo)
        mu, d1, d2 = lo, g, h
    # safeguarded Newton inside [lo, hi]
    for _ in range(max_iter):
        if d1 == 0.0:
            break
        step_ok = d2 < 0.0
        if step_ok:
            new = mu - d1 / d2
            step_ok = lo < new < hi
        if not step_ok:
            new = math.sqrt(lo * hi)  # bisection in log μ
        done = abs(new - mu) <= tol * mu
        mu = new
        d1, d2 = grad(mu)
        if d1 > 0:
            lo = mu
        else:
            hi = mu
        if done or (hi - lo) <= tol * lo:
            break
    return MuEstimate(float(mu), evals, f.value(mu))


def estimate_mu(index: Index, *, tol: float = 1e-9, max_iter: int = 200) -> MuEstimate:
    """The leave-one-out maximum-likelihood μ of ``index`` (see the module docstring).

    Vectorised over the non-zeros of the forward (document-major) arrays. Cost: one
    pass to collapse the non-zeros, then a few dozen array evaluations.
    """
    if not isinstance(index, Index):
        raise ParameterError(f"index must be a retrieval.Index, got {type(index).__name__}")
    ptr = np.asarray(index.arrays["forward_indptr"])
    terms = np.asarray(index.arrays["forward_terms"])
    counts = np.asarray(index.arrays["forward_counts"])
    lengths = np.asarray(index.arrays["doc_lengths"])
    per_doc = np.diff(ptr)
    doc_len = np.repeat(lengths, per_doc)
    return estimate_mu_from_counts(counts, doc_len, index.p_collection[terms],
                                   tol=tol, max_iter=max_iter)


def cached_mu_estimate(index: Index, *, store: bool = True) -> MuEstimate:
    """:func:`estimate_mu` computed once per index: read from the manifest when an entry
    written by :func:`manifest_entry` is there, else computed and remembered on the
    Index object.

    Decision: with ``store`` (the default) an estimate computed for an index opened from
    disk is also written into that index's manifest
    (:func:`retrieval.index.store_estimate`), so later processes — every
    ``retrieval search --mu auto`` — read it instead of recomputing. That write is a
    best-effort cache: it is skipped silently when the index is read-only, locked by a
    writer, or has moved on to another generation, so reading an index never fails
    because of it. ``store=False`` never touches the disk.
    """
    cached = getattr(index, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    est = from_manifest(index.manifest)
    if est is None:
        est = estimate_mu(index)
        if store and index.path is not None:
            store_estimate(index, MANIFEST_KEY, manifest_entry(est))
    setattr(index, _CACHE_ATTR, est)
    return est


def manifest_entry(estimate: MuEstimate) -> dict:
    """The JSON record to store as ``manifest["estimates"]["dirichlet_mu_loo"]``."""
    return {"method": "leave-one-out maximum likelihood (Zhai & Lafferty 2002), Newton",
            "mu": estimate.mu, "iterations": estimate.iterations,
            "log_likelihood": estimate.log_likelihood}


def from_manifest(manifest: dict) -> MuEstimate | None:
    """The estimate stored in ``manifest``, or None when there is none."""
    entry = (manifest.get("estimates") or {}).get(MANIFEST_KEY) if isinstance(
        manifest, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        return MuEstimate(float(entry["mu"]), int(entry["iterations"]),
                          float(entry["log_likelihood"]))
    except (KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------
# SPUD's background mass (Elkan's EDCM estimate)

_DCM_CACHE_ATTR = "_dcm_mass_edcm"


#: the background DCM mass is capped here (a collection whose documents repeat almost no
#: term has no finite estimate: the likelihood grows with m, the DCM tending to the
#: multinomial). The shared collections' estimates are 59-88 tokens, far below it.
DCM_MASS_CAP = 1000.0


def estimate_dcm_mass(doc_len, doc_unique, *, tol: float = 1e-10, max_iter: int = 1000,
                      cap: float = DCM_MASS_CAP) -> float:
    """The mass m of the background Dirichlet-compound-multinomial, by the fixed point of
    the EDCM likelihood (Elkan, ICML 2006; used by SPUD, Cummins et al. 2015):

        m ← Σ_d |d|_u / Σ_d [ψ(m + |d|) − ψ(m)]

    over the non-empty documents (ψ = digamma; |d|_u distinct terms, |d| tokens), from
    m = 1; each iteration is one vectorised pass over the distinct (|d|, |d|_u) pairs.
    The map is increasing, so the iterates rise monotonically to the smallest fixed
    point above 1. When they pass ``cap`` — or no document repeats a term (then there is
    no finite maximiser) or there are no tokens at all — ``cap`` is returned: a default
    model must rank any collection, never fail on one.
    """
    dl = np.asarray(doc_len, dtype=np.int64)
    du = np.asarray(doc_unique, dtype=np.int64)
    keep = dl > 0
    if not keep.any():
        return float(cap)
    pairs, mult = np.unique(np.stack([dl[keep], du[keep]]), axis=1, return_counts=True)
    lengths = pairs[0].astype(np.float64)
    mult = mult.astype(np.float64)
    numerator = float(np.dot(mult, pairs[1].astype(np.float64)))
    if numerator >= float(np.dot(mult, lengths)):
        return float(cap)  # no repeated term anywhere: the likelihood grows without bound
    m = 1.0
    for _ in range(max_iter):
        new = numerator / float(np.dot(mult, digamma(m + lengths) - digamma(np.float64(m))))
        if new >= cap:
            return float(cap)
        done = abs(new - m) <= tol * new
        m = new
        if done:
            break
    return float(m)


def digamma(x) -> np.ndarray:
    """ψ(x) for x > 0 (float64 arrays), in numpy, so that a search with the default model
    does not import scipy (about 30 ms of start-up).

    The recurrence ψ(x) = ψ(x + 1) − 1/x moves every x to at least 16, where the
    asymptotic series ψ(x) ≈ ln x − 1/(2x) − Σ_k B_2k / (2k x^2k), k = 1…5 (B_2k the
    Bernoulli numbers 1/6, −1/30, 1/42, −1/30, 5/66), has a first omitted term of
    691/(32760 x¹²) ≤ 7.5e-17. Agrees with ``scipy.special.digamma`` to about 1e-15
    relative (tested).
    """
    x = np.array(x, dtype=np.float64, copy=True)
    shift = np.zeros_like(x)
    for _ in range(16):
        small = x < 16.0
        if not small.any():
            break
        shift[small] += 1.0 / x[small]
        x[small] += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (
        1 / 240 - inv2 * (1 / 132)))))
    return np.log(x) - 0.5 / x - series - shift


def cached_dcm_mass(index: Index) -> float:
    """:func:`estimate_dcm_mass` of ``index``, computed once per Index object (kept in
    memory only: it costs one pass over the N documents' lengths, and a search must not
    write to the index it reads)."""
    cached = getattr(index, _DCM_CACHE_ATTR, None)
    if cached is None:
        cached = estimate_dcm_mass(index.arrays["doc_lengths"], index.arrays["doc_unique"])
        setattr(index, _DCM_CACHE_ATTR, cached)
    return cached


# ---------------------------------------------------------------------------------------
# two-stage smoothing: λ per query by EM (Zhai & Lafferty, SIGIR 2002)

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
    (:func:`row_sums`), never by BLAS (whose ``X @ c`` sums a row in an order that
    depends on the row's position in X). Each row's numbers therefore depend on that row
    alone, so pruning rows changes no remaining row's λ_i or log L_i: λ̂, its row and its
    log-likelihood are those of the unpruned computation to the bit (tested on random
    cases, the sample corpus and every query of the shared collections), and the
    compiled kernel (:mod:`retrieval.lambda_kernels`), which runs the same operations
    in the same order without ``fastmath``, gives them to the bit as well (tested;
    provided numpy's ``log`` is the C library's, as on x86-64 without AVX-512). Against
    the BLAS sums used before this definition, λ̂ moved in the last bits on a few
    queries (measured on the shared collections: see ``tests/test_lambda_kernels.py``).
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
    at_zero = row_sums(d / a, cq) <= 0               # g_i(0) ≤ 0: λ_i = 0
    rest = np.flatnonzero(~at_zero)
    zero_rows = np.flatnonzero(at_zero)
    ll = np.full(len(dl), -np.inf)                   # a pruned row: below the floor
    if len(zero_rows):
        ll[zero_rows] = row_sums(np.log(a[zero_rows]), cq)       # log L_i(0)
    passes = 0
    if len(rest):
        log_pc = np.log(pc)
        floor = float(row_sums(log_pc[None, :], cq)[0])          # log L_i(1) of any row
        if len(zero_rows):
            floor = max(floor, float(ll[zero_rows].max()))
        bound = row_sums(np.maximum(np.log(a[rest]), log_pc), cq)  # log max(a, b)
        rest = rest[bound + 1e-9 * (1.0 + np.abs(bound) + abs(floor)) >= floor]
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


def row_sums(values, cq) -> np.ndarray:
    """Σ_j c_j·x_ij of every row of ``values`` in the fixed order j = 0 … m−1:
    s = c_0·x_i0, then s = s + c_j·x_ij (the definition of every row sum of
    :func:`direct_query_lambda`; one vectorised column at a time)."""
    s = values[:, 0] * cq[0]
    for j in range(1, values.shape[1]):
        s = s + values[:, j] * cq[j]
    return s


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

    ``compiled`` ("auto", True, False): ``method="direct"`` by the numba kernel of
    :mod:`retrieval.lambda_kernels`, every query in one call, the same λ̂ to the bit
    (:func:`lambda_kernels` decides; without numba or with ``RETRIEVAL_KERNELS=0`` the
    numpy path runs).
    """
    solvers = {"direct": direct_query_lambda, "em": estimate_query_lambda}
    if method not in solvers:
        raise ParameterError(f"method must be 'direct' or 'em', got {method!r}")
    if compiled not in ("auto", True, False):
        raise ParameterError(f"compiled must be 'auto', True or False, got {compiled!r}")
    solve = solvers[method]
    queries = [(np.asarray(t, dtype=np.int64), np.asarray(w, dtype=np.float64))
               for t, w in queries]
    lengths = np.asarray(index.arrays["doc_lengths"], dtype=np.int64)
    ptr = np.asarray(index.arrays["postings_indptr"])
    post_docs = np.asarray(index.arrays["postings_docs"])
    post_counts = np.asarray(index.arrays["postings_counts"])
    # the distinct lengths and their documents, once per call (each query subtracts its
    # matched documents instead of sorting the N lengths again)
    distinct, per_length = np.unique(lengths, return_counts=True)
    slot = np.searchsorted(distinct, lengths)
    kernels = lambda_kernels(compiled, index.num_docs) if method == "direct" else None
    if kernels is not None and queries and float(mu) > 0 and not kwargs:
        q_ptr = np.cumsum([0] + [len(t) for t, _ in queries]).astype(np.int64)
        tids = np.concatenate([t for t, _ in queries])
        weights = np.concatenate([w for _, w in queries])
        if np.any(weights <= 0) or np.any(index.p_collection[tids] <= 0):
            raise ParameterError("p(w|C) and the query counts must be positive")
        lam, passes, ll = (np.zeros(len(queries)), np.zeros(len(queries), dtype=np.int64),
                           np.zeros(len(queries)))
        kernels.query_lambdas(q_ptr, tids, weights,
                              index.p_collection, float(mu), ptr, post_docs, post_counts,
                              lengths, distinct, per_length.astype(np.int64),
                              slot.astype(np.int64), lam, passes, ll)
        return [LambdaEstimate(*v) for v in zip(lam.tolist(), passes.tolist(), ll.tolist())]
    out = []
    for tids, weights in queries:
        if len(tids) == 0:
            out.append(LambdaEstimate(0.5, 0, 0.0))
            continue
        counts, dl, mult = _query_rows(tids, ptr, post_docs, post_counts, lengths,
                                       (distinct, per_length, slot))
        out.append(solve(counts, dl, index.p_collection[tids], weights, mu,
                         multiplicity=mult, **kwargs))
    return out


def lambda_kernels(compiled: bool | str = "auto", n_docs: int = 0):
    """:mod:`retrieval.lambda_kernels` when λ̂ should be computed by it, else None.

    Never with ``compiled=False``, without numba, or with the environment variable
    ``RETRIEVAL_KERNELS=0`` (the search's switch); always otherwise with
    ``compiled=True``; under "auto" when this process has imported numba already (the
    search's kernels or these), or for ``n_docs`` of at least
    :data:`KERNEL_MIN_DOCS`, where the search loads its kernels anyway — so a
    small-index command line never pays numba's import (~0.4 s) for ~0.3 ms of numpy
    per query.
    """
    if compiled is False or os.environ.get("RETRIEVAL_KERNELS", "1").strip() == "0":
        return None
    if compiled == "auto" and n_docs < KERNEL_MIN_DOCS and not any(
            name in sys.modules for name in ("retrieval.lambda_kernels",
                                             "retrieval.search.kernels")):
        return None
    return _import_lambda_kernels()


#: :func:`lambda_kernels`' "auto" size: the search's ``Thresholds.kernel_min_docs``
KERNEL_MIN_DOCS = 100_000


@functools.cache
def _import_lambda_kernels():
    try:
        from . import lambda_kernels as module
    except ImportError:
        return None
    return module


def _query_rows(tids, ptr, post_docs, post_counts, lengths, histogram):
    """The EM's rows for query terms ``tids``: one per document containing one of them
    (its counts), then one per distinct length of the other documents (zero counts,
    with the number of such documents as multiplicity): exact (see
    :func:`estimate_query_lambda`) and O(postings + N) instead of O(N × m) memory.
    ``histogram`` = (distinct lengths ascending, documents of each, each document's
    slot in the first): the rest's lengths are those whose count stays positive after
    the matched documents are taken off (the ascending order of ``np.unique``)."""
    distinct, per_length, slot = histogram
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
