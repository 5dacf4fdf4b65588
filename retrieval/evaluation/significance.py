"""Paired significance tests between runs, with Holm's correction.

Every test pairs the per-query values of two :class:`~.Evaluation` objects over the
queries **common to both** (:func:`paired_values`); queries evaluated in only one of
them are left out (with ``complete=True`` both usually cover every judged query).

* :func:`paired_t_test` - Student's paired t-test (``scipy.stats.ttest_rel``),
  two-sided.
* :func:`randomization_test` - paired randomization (permutation) test by sign
  flipping: under the null hypothesis each per-query difference ``d_q`` is as likely
  to be ``-d_q``; the p-value is the share of random sign assignments whose
  ``|mean|`` reaches the observed ``|mean(d)|`` (two-sided), counted as
  ``(hits + 1) / (permutations + 1)`` so it is never 0. Seeded, vectorised in
  batches.
* :func:`holm` - Holm-Bonferroni step-down adjustment of a family of p-values.
* :func:`compare` - the above for a baseline against several runs on one measure;
  Holm's family is the set of compared runs (per measure and test).

A test with fewer than two common queries, or where every difference is 0, has
p-value 1.0 (no evidence of a difference) rather than NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, check_number
from .measures import Measure, parse_measure

__all__ = ["Comparison", "compare", "holm", "paired_t_test", "paired_values",
           "randomization_test", "TESTS"]

#: test names accepted by :func:`compare`
TESTS = ("t", "randomization")


def paired_values(a, b, measure: str | Measure) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(qids, values_a, values_b)`` of ``measure`` over the queries both evaluated."""
    va, vb = a.values(measure), b.values(measure)
    index_b = {q: i for i, q in enumerate(b.qids)}
    common = [(i, index_b[q]) for i, q in enumerate(a.qids) if q in index_b]
    ia = np.array([i for i, _ in common], dtype=np.intp)
    ib = np.array([j for _, j in common], dtype=np.intp)
    return tuple(a.qids[i] for i in ia.tolist()), va[ia], vb[ib]


def _differences(a, b) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ParameterError(f"paired tests need two 1-D arrays of equal length, got shapes "
                             f"{a.shape} and {b.shape}")
    return b - a


def paired_t_test(a, b) -> tuple[float, float]:
    """Two-sided paired t-test of ``b`` against ``a``: ``(t statistic, p-value)``.

    The statistic is positive when ``b`` is larger on average. ``(0.0, 1.0)`` when
    there are fewer than two pairs or no difference at all.
    """
    from scipy import stats

    d = _differences(a, b)
    if d.size < 2 or not np.any(d != 0):
        return 0.0, 1.0
    if np.all(d == d[0]):  # constant non-zero difference: zero variance, infinite t
        return (float("inf") if d[0] > 0 else float("-inf")), 0.0
    with warnings.catch_warnings():  # nearly constant differences: precision warning
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_rel(b, a)
    return float(result.statistic), float(result.pvalue)


def randomization_test(a, b, *, permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of ``b`` against ``a``; the p-value.

    Draws ``permutations`` random sign vectors (numpy ``default_rng(seed)``), so the
    result is reproducible. Observed and permuted means are compared with a relative
    tolerance of 1e-9 so that ties are not lost to rounding.
    """
    permutations = check_number("permutations", permutations, low=1, integer=True)
    d = _differences(a, b)
    n = d.size
    if n < 1 or not np.any(d != 0):
        return 1.0
    observed = abs(d.mean())
    threshold = observed - 1e-9 * max(observed, np.abs(d).max())
    rng = np.random.default_rng(seed)
    batch = max(1, min(permutations, 4_000_000 // max(n, 1)))
    hits = 0
    done = 0
    while done < permutations:
        size = min(batch, permutations - done)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ d) / n
        hits += int(np.count_nonzero(means >= threshold))
        done += size
    return (hits + 1) / (permutations + 1)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given, monotone, capped at 1).

    With m p-values sorted ascending, ``p_(i)`` becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; reject where adjusted < alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


@dataclass(frozen=True)
class Comparison:
    """One run against the baseline on one measure, by one test."""
    measure: str          # canonical measure name
    test: str             # "t" or "randomization"
    run: str | None       # the compared run's name
    queries: int          # number of common queries the test used
    baseline_mean: float  # means over the common queries
    mean: float
    p_value: float        # raw two-sided p-value
    p_holm: float         # Holm-adjusted over the compared runs

    @property
    def difference(self) -> float:
        return self.mean - self.baseline_mean

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_holm < alpha


def compare(baseline, others: Sequence, measure: str | Measure, *, test: str = "t",
            permutations: int = 10_000, seed: int = 0) -> list[Comparison]:
    """Test each of ``others`` against ``baseline`` (Evaluations) on ``measure``.

    ``test`` is ``"t"`` or ``"randomization"``. p-values are Holm-corrected across
    ``others``. Returns one :class:`Comparison` per run, in the order given.
    """
    if test not in TESTS:
        raise ParameterError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    m = parse_measure(measure)
    rows = []
    for other in others:
        _, a, b = paired_values(baseline, other, m)
        if test == "t":
            p = paired_t_test(a, b)[1]
        else:
            p = randomization_test(a, b, permutations=permutations, seed=seed)
        rows.append((other, a, b, p))
    adjusted = holm([p for *_, p in rows])
    return [Comparison(measure=m.name, test=test, run=other.run_name, queries=int(a.size),
                       baseline_mean=float(a.mean()) if a.size else 0.0,
                       mean=float(b.mean()) if b.size else 0.0, p_value=float(p),
                       p_holm=float(q))
            for (other, a, b, p), q in zip(rows, adjusted)]
