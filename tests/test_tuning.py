"""k-fold cross-validation over queries (retrieval.tuning)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.errors import ParameterError
from retrieval.tuning import assign_folds, cross_validate

QIDS = [f"q{i:02d}" for i in range(20)]


def test_folds_are_deterministic_balanced_and_order_free():
    a = assign_folds(QIDS, 5, seed=0)
    assert a == assign_folds(list(reversed(QIDS)), 5, seed=0)
    assert sorted(np.bincount(list(a.values())).tolist()) == [4, 4, 4, 4, 4]
    assert assign_folds(QIDS, 5, seed=1) != a
    b = assign_folds(QIDS[:7], 3, seed=0)
    assert sorted(np.bincount(list(b.values())).tolist()) == [2, 2, 3]


def test_spiky_configurations_show_the_gap_between_cv_and_best_on_test():
    # k = 5 folds of 4 queries. "base" scores 0.3 everywhere. "spike_f" scores 1.0 on
    # the queries of fold f and 0.1 elsewhere. Training on all folds but f:
    #   base: 0.3;  spike_f: 0.1;  spike_g (g ≠ f): (4·1.0 + 12·0.1)/16 = 0.325.
    # So every fold chooses a spike_g with g ≠ f (the first listed: spike_0, or spike_1
    # when f = 0), which scores 0.1 on the held-out fold f: CV mean = 0.1 exactly.
    # Over all queries: base 0.3, spike_f (4·1.0 + 16·0.1)/20 = 0.28, so best-on-test
    # is base at 0.3. A procedure that peeked at the held-out fold would pick spike_f
    # (1.0 on fold f) and report 1.0.
    folds = assign_folds(QIDS, 5, seed=3)
    table = {"base": {q: 0.3 for q in QIDS}}
    for f in range(5):
        table[f"spike_{f}"] = {q: (1.0 if folds[q] == f else 0.1) for q in QIDS}
    labels = list(table)
    table = {lab: table[lab] for lab in labels[1:] + labels[:1]}  # spikes listed first
    cv = cross_validate(table, folds=5, seed=3)
    assert cv.mean == pytest.approx(0.1)
    assert cv.best_label == "base" and cv.best_mean == pytest.approx(0.3)
    assert cv.config_means["spike_2"] == pytest.approx(0.28)
    for choice in cv.folds:
        assert choice.label == ("spike_1" if choice.fold == 0 else "spike_0")
        assert choice.train_mean == pytest.approx(0.325)
        assert choice.test_mean == pytest.approx(0.1)
        assert {folds[q] for q in choice.test_qids} == {choice.fold}
    assert set(cv.per_query) == set(QIDS)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 6))
def test_the_choice_on_a_fold_ignores_that_folds_values(seed, k):
    rng = np.random.default_rng(seed)
    table = {f"c{j}": {q: float(v) for q, v in zip(QIDS, rng.random(len(QIDS)))}
             for j in range(4)}
    base = cross_validate(table, folds=k, seed=seed % 100)
    folds = assign_folds(QIDS, k, seed=seed % 100)
    for f in range(k):
        # scramble every configuration's values on the held-out fold only
        changed = {lab: {q: (float(rng.random()) if folds[q] == f else v)
                         for q, v in row.items()} for lab, row in table.items()}
        again = cross_validate(changed, folds=k, seed=seed % 100)
        assert again.folds[f].label == base.folds[f].label
        assert again.folds[f].train_mean == base.folds[f].train_mean


def test_ties_go_to_the_first_listed_configuration():
    same = {q: 0.5 for q in QIDS}
    cv = cross_validate({"default": dict(same), "other": dict(same)}, folds=4)
    assert all(c.label == "default" for c in cv.folds)
    assert cv.best_label == "default"
    cv = cross_validate({"other": dict(same), "default": dict(same)}, folds=4)
    assert all(c.label == "other" for c in cv.folds)


def test_single_configuration_cv_equals_its_mean():
    values = {q: i / 20 for i, q in enumerate(QIDS)}
    cv = cross_validate({"only": values}, folds=5)
    assert cv.mean == pytest.approx(np.mean(list(values.values())))
    assert cv.mean == cv.best_mean
    assert cv.per_query == values


@pytest.mark.parametrize("table, folds, fragment", [
    ({}, 5, "non-empty"),
    ({"a": {}}, 2, "no per-query values"),
    ({"a": {"q1": 1.0, "q2": 0.0}, "b": {"q1": 1.0}}, 2, "same queries"),
    ({"a": {"q1": 1.0, "q2": float("nan")}}, 2, "finite number"),
    ({"a": {"q1": 1.0, "q2": 0.0}}, 3, "at most the number of queries"),
    ({"a": {"q1": 1.0, "q2": 0.0}}, 1, "at least 2 folds"),
])
def test_bad_tables_and_fold_counts(table, folds, fragment):
    with pytest.raises(ParameterError, match=fragment):
        cross_validate(table, folds=folds)


# -- scripts/choose_defaults.py: the leave-one-collection-out rules -------------------------

def _choose_defaults():
    import importlib.util
    from retrieval.paths import REPO_ROOT
    spec = importlib.util.spec_from_file_location(
        "choose_defaults", REPO_ROOT / "scripts" / "choose_defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_choose_defaults_rules_and_leave_one_collection_out(tmp_path):
    cd = _choose_defaults()
    tol = cd.TOLERANCE
    # first in grid order within the tolerance of the best mean
    means = {"a": [0.30, 0.30], "b": [0.31 - tol / 2, 0.31], "c": [0.31, 0.31]}
    assert cd.choose_by_mean(["a", "b", "c"], means) == "b"
    # safety: only configurations >= the base everywhere, unless none is
    base = [0.30, 0.305]
    fb = {"x": [0.40, 0.30], "y": [0.31, 0.306]}
    assert cd.choose_safely(["x", "y"], fb, base) == "y"
    assert cd.choose_safely(["x"], fb, [0.5, 0.5]) == "x"
    # a family of two configurations over the five collections: "good" wins on the
    # choosing collections everywhere except where it is held out
    cache = cd.Cache(tmp_path, enabled=False)
    for name in set(cd.HELD_OUT) | set(cd.CHOOSING.values()):
        cache.table(name)["good"] = {"q1": 0.5, "q2": 0.3}
        cache.table(name)["bad"] = {"q1": 0.2, "q2": 0.2}
    cache.table("med")["good"] = {"q1": 0.1, "q2": 0.1}     # held-out med is hurt
    res = cd.loo(cache, ["bad", "good"], cd.choose_by_mean)
    assert all(f["chosen"] == "good" for f in res["folds"].values())
    assert res["folds"]["med"]["held_out_map"] == pytest.approx(0.1)
    assert res["folds"]["med"]["regret"] == pytest.approx(0.1)   # bad: 0.2 on med
    assert res["worst_regret"] == pytest.approx(0.1)
    assert res["mean_held_out"] == pytest.approx((4 * 0.4 + 0.1) / 5)
    assert res["ship"] == "good"
    # labels round-trip through the parser used for the feedback stage
    label = cd.config_label("spud", {"omega": 0.8})
    assert cd._parse_label(label) == ("spud", {"omega": 0.8})
