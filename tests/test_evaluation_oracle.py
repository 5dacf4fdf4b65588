"""Equality with pytrec_eval (trec_eval 9.0.x) on many adversarial runs, to 1e-6.

pytrec_eval has no ``-c``: ``complete=True`` is checked against pytrec_eval's values
plus zeros (and the query's number of relevant documents for ``num_rel``) for judged
queries missing from the run. pytrec_eval crashes on a query whose judgments are all
negative and refuses relevance level 0, so the generators avoid both (those cases are
covered by hand in test_evaluation.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.evaluation import Qrels, Run, evaluate

pytrec_eval = pytest.importorskip("pytrec_eval")

#: our name -> pytrec_eval's name
MEASURES = {
    "AP": "map", "P@1": "P_1", "P@3": "P_3", "P@5": "P_5", "P@10": "P_10", "P@7": "P_7",
    "R-prec": "Rprec", "nDCG": "ndcg", "nDCG@3": "ndcg_cut_3", "nDCG@10": "ndcg_cut_10",
    "R@5": "recall_5", "R@10": "recall_10", "R@100": "recall_100", "RR": "recip_rank",
    "bpref": "bpref", "success@1": "success_1", "success@5": "success_5",
    "success@10": "success_10", "num_ret": "num_ret", "num_rel": "num_rel",
    "num_rel_ret": "num_rel_ret", "iP@0.25": "iprec_at_recall_0.25",
    **{f"iP@{x / 10:.1f}": f"iprec_at_recall_{x / 10:.2f}" for x in range(11)},
}


def oracle(qrels: dict, run: dict, level: int = 1, complete: bool = False) -> dict:
    """pytrec_eval's per-query values {qid: {our name: value}} (``complete`` emulated)."""
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES.values()) - {"P_7"}
                                               | {"P.7"}, relevance_level=level)
    raw = evaluator.evaluate(run)
    out = {q: {ours: values[theirs] for ours, theirs in MEASURES.items()}
           for q, values in raw.items()}
    if complete:
        for q, judged in qrels.items():
            if q not in out and judged:
                out[q] = {ours: 0.0 for ours in MEASURES}
                out[q]["num_rel"] = float(sum(v >= level for v in judged.values()))
    return out


def check(qrels: dict, run: dict, level: int = 1, complete: bool = False) -> None:
    expected = oracle(qrels, run, level, complete)
    ours = evaluate(Qrels.from_dict(qrels), Run.from_dict(run), list(MEASURES),
                    relevance_level=level, complete=complete)
    assert set(ours.qids) == set(expected)
    for m in MEASURES:
        got = ours.per_query[m]
        for q in ours.qids:
            assert got[q] == pytest.approx(expected[q][m], abs=1e-6), (m, q, level)
        mean = sum(expected[q][m] for q in expected) / len(expected)
        assert ours.mean[m] == pytest.approx(mean, abs=1e-6), m


# ---------------------------------------------------------------------------------------
# hand-made adversarial cases

CASES = {
    "float32 ties with different docnos": (
        {"q": {"a": 1, "b": 0, "c": 1, "10": 1, "9": 0}},
        {"q": {"a": 1.0, "b": 1.0 + 1e-9, "c": 1.0 - 1e-9, "10": 0.5, "9": 0.5 + 1e-10}}),
    "all scores equal": (
        {"q": {f"d{i}": i % 3 for i in range(12)}},
        {"q": {f"d{i}": 0.0 for i in range(15)}}),
    "queries missing from run and run queries without qrels": (
        {"q1": {"a": 1, "b": 1}, "q2": {"a": 1}, "q3": {"x": 0}},
        {"q1": {"b": 3.0, "z": 2.0}, "q3": {"x": 1.0}, "q4": {"a": 1.0}}),
    "judged query with no relevant document": (
        {"q": {"a": 0, "b": 0, "c": -1}}, {"q": {"a": 1.0, "c": 2.0, "d": 3.0}}),
    "negative and graded judgments": (
        {"q": {"a": 3, "b": -1, "c": 2, "d": 0, "e": 1, "f": -2}},
        {"q": {"b": 6.0, "f": 5.0, "a": 4.0, "d": 3.0, "e": 2.0, "x": 1.0}}),
    "negative, zero and tiny scores": (
        {"q": {"a": 1, "b": 1, "c": 0}},
        {"q": {"a": -0.0, "b": 0.0, "c": -1e-40, "d": 1e-40, "e": -3.5}}),
    "many relevant, deep ranking": (
        {"q": {f"d{i}": int(i % 4 == 0) * (1 + i % 3) for i in range(300)}},
        {"q": {f"d{i}": float((i * 37) % 101) for i in range(250)}}),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("complete", [False, True])
def test_adversarial_cases(name, level, complete):
    qrels, run = CASES[name]
    check(qrels, run, level, complete)


# ---------------------------------------------------------------------------------------
# random runs

def random_case(rng: np.random.Generator):
    docs = sorted({f"d{i}" for i in range(int(rng.integers(1, 25)))} | {"D", "d", "d10", "d1"})
    qrels, run = {}, {}
    for q in range(int(rng.integers(1, 8))):
        qid = f"q{q}"
        if rng.random() < 0.85:
            judged = rng.choice(docs, size=int(rng.integers(1, len(docs) + 1)), replace=False)
            values = rng.choice([-2, -1, 0, 0, 1, 1, 2, 3], size=judged.size)
            if (values < 0).all():
                values[0] = 0
            qrels[qid] = {str(d): int(v) for d, v in zip(judged, values)}
        if rng.random() < 0.85:
            ret = rng.choice(docs, size=int(rng.integers(1, len(docs) + 1)), replace=False)
            mode = rng.integers(0, 4)
            if mode == 0:
                scores = rng.integers(0, 3, ret.size).astype(float)       # exact ties
            elif mode == 1:
                scores = 1.0 + rng.integers(0, 3, ret.size) * 1e-9        # float32 ties
            elif mode == 2:
                scores = rng.normal(size=ret.size) * 1e3
            else:
                scores = np.round(rng.normal(size=ret.size), 1)
            run[qid] = {str(d): float(s) for d, s in zip(ret, scores)}
    if not set(qrels) & set(run):
        run[next(iter(qrels), "q0")] = {"d": 1.0}
        qrels.setdefault("q0", {"d": 1})
    return qrels, run


@pytest.mark.parametrize("seed", range(40))
def test_random_runs(seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):
        qrels, run = random_case(rng)
        level = int(rng.choice([1, 1, 2, 3]))
        check(qrels, run, level, complete=bool(rng.random() < 0.3))


def test_many_queries_from_arrays():
    """A larger run built with Run.from_arrays: 300 queries x up to 200 documents."""
    rng = np.random.default_rng(99)
    qrels, run = {}, {}
    for q in range(300):
        n = int(rng.integers(1, 200))
        docs = rng.choice(1000, size=n, replace=False)
        run[f"t{q}"] = {f"doc{d}": float(s) for d, s in
                        zip(docs, np.round(rng.normal(size=n), 2))}
        judged = rng.choice(1000, size=int(rng.integers(1, 60)), replace=False)
        qrels[f"t{q}"] = {f"doc{d}": int(v) for d, v in
                          zip(judged, rng.choice([0, 0, 1, 2], size=judged.size))}
    expected = oracle(qrels, run)
    qids = [q for q, docs in run.items() for _ in docs]
    docids = [d for docs in run.values() for d in docs]
    scores = np.array([s for docs in run.values() for s in docs.values()])
    ours = evaluate(Qrels.from_dict(qrels), Run.from_arrays(np.array(qids), np.array(docids),
                                                            scores), list(MEASURES))
    for m in MEASURES:
        want = np.array([expected[q][m] for q in ours.qids])
        np.testing.assert_allclose(ours.values(m), want, atol=1e-6, err_msg=m)


# ---------------------------------------------------------------------------------------
# hypothesis

_DOC = st.sampled_from(["a", "b", "c", "d", "e", "A", "a1", "10", "9", "é"])
_SCORE = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 1.0 + 1e-9, 1.0 - 1e-9, 2.0, -1.0]),
                   st.floats(-1e6, 1e6, allow_nan=False))


@st.composite
def cases(draw):
    qids = draw(st.lists(st.sampled_from(["q1", "q2", "q3", "q10"]), min_size=1, max_size=4,
                         unique=True))
    qrels, run = {}, {}
    for q in qids:
        if draw(st.booleans()) or not qrels:
            judged = draw(st.dictionaries(_DOC, st.integers(-2, 3), min_size=1, max_size=8))
            if all(v < 0 for v in judged.values()):
                judged[next(iter(judged))] = 0
            qrels[q] = judged
        if draw(st.booleans()) or not run:
            run[q] = draw(st.dictionaries(_DOC, _SCORE, min_size=1, max_size=10))
    common = set(qrels) & set(run)
    if not common:
        q = next(iter(run))
        qrels[q] = {next(iter(run[q])): draw(st.integers(0, 2))}
    return qrels, run, draw(st.sampled_from([1, 2, 3])), draw(st.booleans())


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(cases())
def test_hypothesis_against_pytrec_eval(case):
    qrels, run, level, complete = case
    check(qrels, run, level, complete)
