"""The numerical cores of the feedback methods: flat arrays, one group per query.

:func:`mixture_em` fits the mixture model's feedback distribution by EM, and
:func:`divmin_model` is the divergence-minimisation model's closed form (the formulas are
in :mod:`retrieval.feedback`'s docstring). They take plain numpy arrays and are tested
directly.
"""

from __future__ import annotations

import numpy as np


def group_bounds(group: np.ndarray, n_groups: int) -> np.ndarray:
    return np.searchsorted(group, np.arange(n_groups + 1))


def segment_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of consecutive non-empty segments beginning at ``starts``."""
    return np.add.reduceat(values, starts) if len(values) else np.zeros(len(starts))


def mixture_em(group: np.ndarray, counts: np.ndarray, p_collection: np.ndarray,
               n_groups: int, lam: float, max_iter: int = 50, tol: float = 1e-6
               ) -> tuple[np.ndarray, np.ndarray]:
    """EM for the mixture-model feedback θ_F of many queries at once.

    ``group`` (sorted, one entry per (query, term) of the feedback sets), ``counts``
    c(w,F) > 0 and ``p_collection`` p(w|C) > 0 are aligned flat arrays. Returns
    (p(w|θ_F) aligned with the input, EM iterations run per group). Every group's θ_F
    starts uniform over its terms; a group stops when the relative change of its
    log-likelihood Σ_w c(w,F) log[(1−λ)p(w|θ_F) + λp(w|C)] is below ``tol``, or after
    ``max_iter`` iterations (a negative ``tol`` disables the likelihood test). The
    likelihood is flat at its maximum, so a relative change of ε leaves p(w|θ_F) about
    √ε from the fixed point. Converged groups are dropped from the working arrays.
    """
    group = np.asarray(group, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    p_c = np.asarray(p_collection, dtype=np.float64)
    iterations = np.zeros(n_groups, dtype=np.int64)
    if group.size == 0:
        return np.zeros(0), iterations
    sizes = np.bincount(group, minlength=n_groups)
    p = 1.0 / sizes[group]
    if lam == 0.0:  # no noise: θ_F is the maximum-likelihood model of F
        total = np.bincount(group, weights=counts, minlength=n_groups)
        iterations[sizes > 0] = 1
        return counts / total[group], iterations
    keep = 1.0 - lam
    # working set: the entries of the groups still iterating
    sel = np.arange(len(group))
    w_group = np.flatnonzero(sizes)            # group ids in the working set
    w_sizes = sizes[w_group]
    starts = np.cumsum(w_sizes) - w_sizes
    w_p, w_c, w_noise = p, counts, lam * p_c
    ll = None
    for it in range(max_iter + 1):
        denom = w_p * keep
        denom += w_noise                           # (1−λ)p + λp(w|C)
        terms = np.log(denom)
        terms *= w_c
        new_ll = segment_sum(terms, starts)       # log-likelihood of the current p
        if ll is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                converged = np.abs(new_ll - ll) <= tol * np.abs(ll)
            if converged.any():  # freeze them: write back, shrink the working set
                p[sel] = w_p
                alive = ~converged
                entry_alive = np.repeat(alive, w_sizes)
                sel, w_p, w_c, w_noise, denom = (sel[entry_alive], w_p[entry_alive],
                                                 w_c[entry_alive], w_noise[entry_alive],
                                                 denom[entry_alive])
                w_group, w_sizes, new_ll = w_group[alive], w_sizes[alive], new_ll[alive]
                starts = np.cumsum(w_sizes) - w_sizes
        ll = new_ll
        if it == max_iter or not len(w_group):
            break
        # E-step t(w) = (1−λ)p/denom and M-step p ∝ c·t; the factor (1−λ) cancels
        num = w_p / denom
        num *= w_c
        w_p = num / np.repeat(segment_sum(num, starts), w_sizes)
        iterations[w_group] += 1
    p[sel] = w_p
    return p, iterations


def divmin_model(group: np.ndarray, mean_weight: np.ndarray, p_collection: np.ndarray,
                 outside_mass: np.ndarray, lam: float) -> np.ndarray:
    """Closed-form divergence-minimisation θ_F on the feedback terms.

    ``mean_weight`` is m̄(w) = (1/|F|) Σ_{d∈F, w∈d} log[p_s(w|d)/(α_d p(w|C))] per (query,
    term); ``outside_mass`` per query is Σ p(w|C) over the terms in no feedback
    document, which keep weight p(w|C) in the normaliser. Returns p(w|θ_F) on the given
    terms (they sum to 1 − outside share).
    """
    group = np.asarray(group, dtype=np.int64)
    if group.size == 0:
        return np.zeros(0)
    n_groups = len(outside_mass)
    expo = np.asarray(mean_weight, dtype=np.float64) / (1.0 - lam)
    # p(w|C)·exp(expo), scaled per query by exp(−max expo) to stay finite
    bounds = group_bounds(group, n_groups)
    nonempty = bounds[1:] > bounds[:-1]
    top = np.zeros(n_groups)
    top[nonempty] = np.maximum.reduceat(expo, bounds[:-1][nonempty])
    scaled = np.asarray(p_collection, dtype=np.float64) * np.exp(expo - top[group])
    z = np.bincount(group, weights=scaled, minlength=n_groups) + \
        np.asarray(outside_mass, dtype=np.float64) * np.exp(-top)
    return scaled / z[group]


