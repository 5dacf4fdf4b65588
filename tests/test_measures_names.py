"""ir_measures' measure syntax, ERR and RBP, and the CLI's -m: names parsed, values
checked against ir_measures' own implementations (pytrec_eval, gdeval, cwl_eval,
trectools) as test-only oracles."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from retrieval.errors import ParameterError
from retrieval.evaluation import Measure, evaluate, parse_measure, parse_measures

# ---------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize("text, kind, cutoff, rel, judged_only, p, name", [
    ("P(rel=2)@10", "P", 10, 2, False, None, "P(rel=2)@10"),
    ("nDCG@10", "nDCG", 10, None, False, None, "nDCG@10"),
    ("R@1000", "R", 1000, None, False, None, "R@1000"),
    ("AP(rel=2)", "AP", None, 2, False, None, "AP(rel=2)"),
    ("nDCG(judged_only)@10", "nDCG", 10, None, True, None, "nDCG(judged_only=True)@10"),
    ("nDCG(judged_only=True)@10", "nDCG", 10, None, True, None, "nDCG(judged_only=True)@10"),
    ("nDCG(dcg=log2)", "nDCG", None, None, False, None, "nDCG"),
    ("P(judged_only=True,rel=2)@5", "P", 5, 2, True, None, "P(judged_only=True,rel=2)@5"),
    ("ERR@20", "ERR", 20, None, False, None, "ERR@20"),
    ("RBP", "RBP", None, None, False, 0.8, "RBP"),
    ("RBP(p=0.8)", "RBP", None, None, False, 0.8, "RBP"),
    ("RBP(p=0.5,rel=1)@10", "RBP", 10, 1, False, 0.5, "RBP(p=0.5,rel=1)@10"),
    ("Rprec", "R-prec", None, None, False, None, "R-prec"),
    ("Bpref(rel=2)", "bpref", None, 2, False, None, "bpref(rel=2)"),
    ("Success@5", "success", 5, None, False, None, "success@5"),
    ("IPrec@0.5", "iP", 0.5, None, False, None, "iP@0.5"),
    ("NumRet", "num_ret", None, None, False, None, "num_ret"),
    ("NumRelRet(rel=2)", "num_rel_ret", None, 2, False, None, "num_rel_ret(rel=2)"),
    ("RR@10", "RR", 10, None, False, None, "RR@10"),
    ("AP@100", "AP", 100, None, False, None, "AP@100"),
    ("map", "AP", None, None, False, None, "AP"),
    ("P_10", "P", 10, None, False, None, "P@10"),
])
def test_ir_measures_syntax(text, kind, cutoff, rel, judged_only, p, name):
    m = parse_measure(text)
    assert (m.kind, m.cutoff, m.rel, m.judged_only) == (kind, cutoff, rel, judged_only)
    if p is not None:
        assert m.p == p
    assert m.name == name
    assert parse_measure(m.name) == m


def test_canonical_names_match_ir_measures():
    ir_measures = pytest.importorskip("ir_measures", reason="ir_measures (test extra) absent")
    for text in ("P(rel=2)@10", "nDCG@10", "AP(rel=2)", "nDCG(judged_only=True)@10",
                 "ERR@20", "RBP(p=0.5,rel=1)", "R@1000", "RR@10"):
        assert parse_measure(text).name == str(ir_measures.parse_measure(text))


@pytest.mark.parametrize("bad, says", [
    ("P", "needs a cutoff"), ("P(rel=x)@10", "rel must be a whole number"),
    ("RBP(p=1.5)", "between 0 and 1"), ("nDCG(rel=2)@10", "nDCG takes judged_only"),
    ("nDCG(dcg=exp-log2)", "only dcg=log2"), ("Bpref@10", "takes no cutoff"),
    ("AP(judged_only=maybe)", "True or False"), ("Foo@10", "unknown measure"),
    ("P@2.5", "whole number"),
])
def test_bad_names_say_what_to_change(bad, says):
    with pytest.raises(ParameterError) as info:
        parse_measure(bad)
    assert says in str(info.value) and repr(bad) in str(info.value)


def test_lists_split_outside_parentheses():
    ms = parse_measures(["AP,P@10 nDCG(judged_only=True,dcg=log2)@10", "map"])
    assert [m.name for m in ms] == ["AP", "P@10", "nDCG(judged_only=True)@10"]
    assert Measure("RBP") == parse_measure("RBP(p=0.8)")


# ---------------------------------------------------------------------------------------
# hand-computed values

QRELS = {"1": {"a": 2, "b": 0, "c": 1, "d": -1}, "2": {"x": 1}}
RUN = {"1": {"a": 1.0, "b": 2.0, "c": 0.5, "e": 0.7, "d": 0.6}, "2": {"y": 0.7, "x": 0.7}}


def test_err_and_rbp_by_hand():
    # query 1 ranks b(0) a(2) e(unjudged) d(-1) c(1); query 2 ranks y, x (tie: docid desc)
    e = evaluate(QRELS, RUN, ["ERR@10", "ERR@2", "RBP", "RBP(rel=2)", "RBP(p=0.5)@2",
                              "P(rel=2)@2", "AP(rel=2)", "P(judged_only)@2", "RR@1"])
    r1, r2 = 3 / 16, 1 / 16
    assert e.per_query["ERR@10"]["1"] == pytest.approx(r1 / 2 + (1 - r1) * r2 / 5)
    assert e.per_query["ERR@2"]["1"] == pytest.approx(r1 / 2)
    assert e.per_query["ERR@10"]["2"] == pytest.approx(r2 / 2)
    assert e.per_query["RBP"]["1"] == pytest.approx(0.2 * (2 * 0.8 + 1 * 0.8 ** 4))
    assert e.per_query["RBP(rel=2)"]["1"] == pytest.approx(0.2 * 0.8)
    assert e.per_query["RBP(p=0.5)@2"]["1"] == pytest.approx(0.5 * 2 * 0.5)
    assert e.per_query["P(rel=2)@2"]["1"] == 0.5
    assert e.per_query["AP(rel=2)"] == {"1": 0.5, "2": 0.0}
    # judged only: e (unjudged) and d (-1) leave; query 1 becomes b a c, query 2 x
    assert e.per_query["P(judged_only=True)@2"] == {"1": 0.5, "2": 0.5}
    assert e.per_query["RR@1"] == {"1": 0.0, "2": 0.0}


def test_measure_rel_overrides_the_evaluation_level():
    e = evaluate(QRELS, RUN, ["P@5", "P(rel=1)@5"], relevance_level=2)
    assert e.per_query["P@5"]["1"] == 0.2
    assert e.per_query["P(rel=1)@5"]["1"] == 0.4


# ---------------------------------------------------------------------------------------
# ir_measures as the oracle


def _random_case(seed: int, ties: bool, negatives: bool):
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(12):
        qid = str(q + 1)  # numeric: gdeval reads query ids as numbers
        docs = [f"d{i}" for i in rng.choice(60, size=30, replace=False)]
        judged = docs[:20] + [f"j{i}" for i in range(rng.integers(0, 4))]
        low = -1 if negatives else 0
        qrels[qid] = {d: int(rng.integers(low, 4)) for d in judged}
        if q == 3:
            qrels[qid] = {d: 0 for d in judged}  # judged, nothing relevant
        retrieved = docs[5:] + [f"u{i}" for i in range(rng.integers(0, 6))]
        rng.shuffle(retrieved)
        scores = (rng.integers(0, 6, size=len(retrieved)).astype(float) if ties
                  else rng.permutation(len(retrieved)).astype(float) + 0.5)
        run[qid] = dict(zip(retrieved, scores.tolist()))
    run["99"] = {"d1": 1.0}  # not judged: not evaluated
    return qrels, run


def _oracle(provider_name: str, names: list[str], qrels, run):
    ir_measures = pytest.importorskip("ir_measures", reason="ir_measures (test extra) absent")
    provider = ir_measures.providers.registry[provider_name]
    if not provider.is_available():
        pytest.skip(f"ir_measures provider {provider_name} is not installed")
    measures = [ir_measures.parse_measure(n) for n in names]
    out: dict[str, dict[str, float]] = {str(m): {} for m in measures}
    for metric in provider.iter_calc(measures, qrels, run):
        out[str(metric.measure)][metric.query_id] = float(metric.value)
    return [out[str(m)] for m in measures]


def _check(names, qrels, run, oracle, tol):
    ours = evaluate(qrels, run, names)
    checked = 0
    for name, theirs in zip(names, oracle):
        key = parse_measure(name).name
        assert theirs, f"the oracle returned nothing for {name}"
        for qid, value in ours.per_query[key].items():
            if qid in theirs:
                assert value == pytest.approx(theirs[qid], abs=tol), (name, qid)
                checked += 1
    assert checked >= len(names) * 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parameters_against_pytrec_eval(seed):
    qrels, run = _random_case(seed, ties=True, negatives=True)
    names = ["P(rel=2)@10", "AP(rel=2)", "R(rel=2)@20", "Rprec(rel=3)", "RR(rel=2)",
             "nDCG(judged_only=True)@10", "P(judged_only=True)@10", "AP(judged_only=True)",
             "nDCG(judged_only=True)", "Bpref(rel=2)", "Success(rel=3)@5"]
    _check(names, qrels, run, _oracle("pytrec_eval", names, qrels, run), 1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_err_against_gdeval(seed):
    if shutil.which("perl") is None:
        pytest.skip("gdeval (ir_measures' ERR) needs perl")
    qrels, run = _random_case(seed, ties=True, negatives=True)
    names = ["ERR@20", "ERR@5", "ERR@1000"]
    _check(names, qrels, run, _oracle("gdeval", names, qrels, run), 1e-5)  # gdeval: 5 dp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_rbp_against_cwl_eval(seed):
    if importlib.util.find_spec("cwl") is None:
        pytest.skip("cwl_eval (ir_measures' RBP(rel=...)) is not installed")
    # cwl_eval keeps tied documents in file order, not trec_eval's: no ties here
    qrels, run = _random_case(seed, ties=False, negatives=True)
    names = ["RBP(rel=1)", "RBP(p=0.5,rel=2)", "RBP(p=0.95,rel=1)"]
    _check(names, qrels, run, _oracle("cwl_eval", names, qrels, run), 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_graded_rbp_against_trectools(seed):
    if importlib.util.find_spec("trectools") is None:
        pytest.skip("trectools (ir_measures' graded RBP) is not installed")
    # trectools averages tied scores, counts negative grades as gains and, given several
    # queries at once, mixes their ranks up: compared query by query, on runs without
    # ties or negative judgments, one measure at a time (ir_measures 0.4's trectools
    # provider binds every measure of one call to the last one's parameters)
    qrels, run = _random_case(seed, ties=False, negatives=False)
    names = ["RBP", "RBP(p=0.5)", "RBP@10"]
    oracle = [{} for _ in names]
    for qid in list(qrels)[:5]:
        if qid in run:
            for name, merged in zip(names, oracle):
                merged.update(_oracle("trectools", [name], {qid: qrels[qid]},
                                      {qid: run[qid]})[0])
    _check(names, qrels, run, oracle, 1e-9)


# ---------------------------------------------------------------------------------------
# duplicate judgments


def test_identical_duplicate_qrels_lines_count_once(tmp_path):
    from retrieval.errors import InputError
    from retrieval.evaluation import Qrels
    path = tmp_path / "qrels"
    path.write_text("1 0 a 1\n1 0 b 0\n1 0 a 1\n")
    assert Qrels.read(path).to_dict() == {"1": {"a": 1, "b": 0}}
    path.write_text("1 0 a 1\n1 0 b 0\n1 0 a 2\n")
    with pytest.raises(InputError) as info:
        Qrels.read(path)
    text = str(info.value)
    assert text.startswith(f"{path}:3: ") and "first at line 1" in text
    assert "2 here, 1" in text


def test_identical_duplicate_cranfield_judgments_count_once(tmp_path):
    from retrieval.collections.smart import read_cranfield_qrels
    from retrieval.errors import InputError
    path = tmp_path / "cranqrel"
    path.write_text("1 1 2\n1 2 3\n1 1 2\n")
    assert len(read_cranfield_qrels(path)) == 2
    path.write_text("1 1 2\n1 1 3\n")
    with pytest.raises(InputError, match=r"cranqrel:2: .*judged twice.*on line 1"):
        read_cranfield_qrels(path)
