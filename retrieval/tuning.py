"""Choosing parameters without looking at the test queries: k-fold cross-validation.

:func:`cross_validate` is a pure function over a table of per-query measure values,
``{config_label: {qid: value}}`` (e.g. AP of every configuration of a grid on every
query). For each fold it chooses the configuration with the best mean on the *other*
folds (the training queries) and records that configuration's values on the held-out
fold; the held-out values of all folds together give the cross-validated score. The
best-on-test score — the best configuration's mean over all queries, chosen by looking
at those very queries — is reported next to it, so the optimism of tuning on the test
queries is visible.

Decisions:

* **Fold assignment.** The query ids are sorted (string order), shuffled with
  ``numpy.random.default_rng(seed).permutation``, and the i-th query of the shuffled
  order goes to fold ``i mod k``. The same ids, ``k`` and ``seed`` always give the same
  folds, whatever the order of the table; fold sizes differ by at most one.
* **Ties.** Training means are computed with :func:`math.fsum` (exactly rounded, so
  equal multisets of values give equal means); among configurations with equal
  training means the one listed first in the table wins. List the default (or the
  simplest) configuration first.
* **Cross-validated mean** = the mean over all queries of their held-out values
  (each query counted once), not the mean of the fold means.
* Every configuration must have a value for exactly the same queries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .errors import ParameterError, check_number


class FoldChoice(NamedTuple):
    """What cross-validation chose on one fold."""
    fold: int
    label: str                  # the configuration chosen on the training queries
    train_mean: float           # its mean on the training queries
    test_mean: float            # its mean on this fold's (held-out) queries
    test_qids: tuple[str, ...]  # the held-out queries, sorted


class CVResult(NamedTuple):
    """The outcome of :func:`cross_validate`."""
    mean: float                     # cross-validated mean over all queries
    per_query: dict[str, float]     # each query's held-out value
    folds: tuple[FoldChoice, ...]
    best_label: str                 # the configuration best on all queries (best-on-test)
    best_mean: float                # its mean over all queries
    config_means: dict[str, float]  # every configuration's mean over all queries
    n_folds: int
    seed: int


def assign_folds(qids, folds: int, seed: int = 0) -> dict[str, int]:
    """``{qid: fold}`` for the given query ids (see the module docstring)."""
    ids = sorted(set(qids))
    k = check_number("folds", folds, low=2, integer=True,
                     hint="cross-validation needs at least 2 folds, e.g. 5")
    if k > len(ids):
        raise ParameterError(f"folds must be at most the number of queries ({len(ids)}), "
                             f"got {folds}; use fewer folds")
    s = check_number("seed", seed, low=0, integer=True, hint="any whole number >= 0")
    order = np.random.default_rng(s).permutation(len(ids))
    return {ids[j]: i % k for i, j in enumerate(order.tolist())}


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values) if values else 0.0


def cross_validate(table: Mapping[str, Mapping[str, float]], folds: int = 5,
                   seed: int = 0) -> CVResult:
    """k-fold cross-validation over queries of the configurations in ``table``.

    ``table`` maps a configuration label to ``{qid: value}`` (higher is better). Returns
    the cross-validated mean, each fold's choice, and the best-on-test mean.
    """
    if not isinstance(table, Mapping) or not table:
        raise ParameterError("table must be a non-empty mapping {config label: {qid: "
                             "value}}")
    labels = list(table)
    first = table[labels[0]]
    if not isinstance(first, Mapping) or not first:
        raise ParameterError(f"configuration {labels[0]!r} has no per-query values")
    qids = sorted(first)
    qset = set(qids)
    values: dict[str, dict[str, float]] = {}
    for label in labels:
        row = table[label]
        if not isinstance(row, Mapping) or set(row) != qset:
            missing = sorted(qset - set(row)) if isinstance(row, Mapping) else qids
            extra = sorted(set(row) - qset) if isinstance(row, Mapping) else []
            raise ParameterError(
                f"configuration {label!r} does not have values for the same queries as "
                f"{labels[0]!r} (missing {missing[:3]}, extra {extra[:3]}); evaluate every "
                f"configuration on the same queries (e.g. complete=True)")
        values[label] = {}
        for q in qids:
            v = row[q]
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(v):
                raise ParameterError(f"value of configuration {label!r} on query {q!r} must "
                                     f"be a finite number, got {v!r}")
            values[label][q] = float(v)
    fold_of = assign_folds(qids, folds, seed)
    k = int(folds)
    choices: list[FoldChoice] = []
    held_out: dict[str, float] = {}
    for f in range(k):
        test = [q for q in qids if fold_of[q] == f]
        train = [q for q in qids if fold_of[q] != f]
        best_label, best_train = None, -math.inf
        for label in labels:  # strict '>' keeps the first listed among equals
            m = _mean(values[label][q] for q in train)
            if m > best_train:
                best_label, best_train = label, m
        chosen = values[best_label]
        for q in test:
            held_out[q] = chosen[q]
        choices.append(FoldChoice(f, best_label, best_train, _mean(chosen[q] for q in test),
                                  tuple(test)))
    config_means = {label: _mean(values[label].values()) for label in labels}
    best_label = labels[0]
    for label in labels:
        if config_means[label] > config_means[best_label]:
            best_label = label
    per_query = {q: held_out[q] for q in qids}
    return CVResult(_mean(per_query.values()), per_query, tuple(choices), best_label,
                    config_means[best_label], config_means, k, int(seed))
