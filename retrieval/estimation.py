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

Two-stage smoothing's λ per query is estimated in :mod:`retrieval.lambdas` (its names
stay importable from here).
"""

from __future__ import annotations

import math
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
# two-stage smoothing's λ per query: in retrieval.lambdas, its names kept here too
from .lambdas import (LambdaEstimate, direct_query_lambda,  # noqa: E402,F401
                      estimate_query_lambda, lambda_kernels, query_lambdas,
                      query_lambdas_of_ids, row_sums)
