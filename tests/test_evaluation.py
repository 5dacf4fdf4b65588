"""Evaluation measures on hand-computed cases, the data classes, and significance tests."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from retrieval.errors import InputError, ParameterError
from retrieval.evaluation import Measure, Qrels, Run, evaluate, parse_measure, parse_measures
from retrieval import keys
from retrieval.evaluation.significance import (compare, holm, paired_t_test, paired_values,
                                               randomization_test)
from retrieval.records import Qrel, ScoredDoc

L3, L5 = math.log2(3), math.log2(5)

# q1: R = 3 relevant (d1, d3 graded 2, d4), judged non-relevant d2, d6, negative d5.
# Ranking by score: d7 (unjudged), d1, d2, d3, d5, d8 (unjudged).
QRELS = {"q1": {"d1": 1, "d2": 0, "d3": 2, "d4": 1, "d5": -1, "d6": 0}}
RUN = {"q1": {"d7": 5.0, "d1": 4.0, "d2": 3.0, "d3": 2.0, "d5": 1.5, "d8": 1.0}}

EXPECTED = {
    "AP": (1 / 2 + 2 / 4) / 3,
    "P@2": 1 / 2, "P@5": 2 / 5, "P@10": 2 / 10,
    "R-prec": 1 / 3,                                   # d7 d1 d2: one relevant in top R=3
    "RR": 1 / 2,
    "R@2": 1 / 3, "R@4": 2 / 3,
    "success@1": 0.0, "success@2": 1.0,
    "nDCG": (1 / L3 + 2 / L5) / (2 + 1 / L3 + 1 / 2),  # ideal gains 2, 1, 1
    "nDCG@2": (1 / L3) / (2 + 1 / L3),
    "bpref": (1 + (1 - 1 / 2)) / 3,                    # d3 has d2 above it; min(N=2, R=3)
    # precisions at relevant ranks: 1/2, 2/4; cutoffs floor(x*3 + 0.9): 0.8 -> 3 > 2 found
    "iP@0.0": 0.5, "iP@0.1": 0.5, "iP@0.4": 0.5, "iP@0.7": 0.5, "iP@0.8": 0.0, "iP@1.0": 0.0,
    "num_ret": 6, "num_rel": 3, "num_rel_ret": 2,
}


def ev(qrels, run, measures, **kw):
    return evaluate(Qrels.from_dict(qrels), Run.from_dict(run), measures, **kw)


@pytest.mark.parametrize("measure", list(EXPECTED))
def test_each_measure_hand_computed(measure):
    result = ev(QRELS, RUN, [measure])
    assert result.qids == ("q1",)
    assert result.per_query[measure]["q1"] == pytest.approx(EXPECTED[measure], abs=1e-12)
    assert result.mean[measure] == pytest.approx(EXPECTED[measure], abs=1e-12)


def test_relevance_level_two():
    r = ev(QRELS, RUN, ["AP", "bpref", "num_rel", "nDCG", "R-prec", "RR"], relevance_level=2)
    assert r.mean["AP"] == pytest.approx(1 / 4)       # only d3, at rank 4
    assert r.mean["num_rel"] == 1
    # judged non-relevant are now d1, d2, d4, d6 (N=4); two of them above d3
    assert r.mean["bpref"] == 0.0
    assert r.mean["R-prec"] == 0.0 and r.mean["RR"] == pytest.approx(1 / 4)
    # nDCG's gains ignore the relevance level (trec_eval)
    assert r.mean["nDCG"] == pytest.approx(EXPECTED["nDCG"])


def test_relevance_level_zero_makes_every_non_negative_judgment_relevant():
    r = ev(QRELS, RUN, ["AP", "num_rel"], relevance_level=0)
    assert r.mean["num_rel"] == 5                      # d5 (-1) is not
    assert r.mean["AP"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 5)


def test_ties_broken_by_docid_descending():
    qrels = {"q": {"a": 1, "b": 0, "c": 0, "9": 0, "10": 1}}
    r = ev(qrels, {"q": {"a": 1.0, "b": 1.0, "c": 1.0}}, ["AP", "RR"])
    assert r.mean["RR"] == pytest.approx(1 / 3)       # c, b, a
    # string order: "9" > "10", so "9" comes first
    r = ev(qrels, {"q": {"10": 2.0, "9": 2.0}}, ["RR"])
    assert r.mean["RR"] == 0.5


def test_scores_tie_when_equal_as_float32():
    qrels = {"q": {"x": 1, "y": 0}}
    # 1 + 1e-9 == 1 in float32: a tie, broken by docid descending -> y first
    assert ev(qrels, {"q": {"x": 1.0 + 1e-9, "y": 1.0}}, ["RR"]).mean["RR"] == 0.5
    # 1 + 1e-6 is distinct in float32
    assert ev(qrels, {"q": {"x": 1.0 + 1e-6, "y": 1.0}}, ["RR"]).mean["RR"] == 1.0
    # -0.0 and 0.0 are equal scores
    assert ev(qrels, {"q": {"x": -0.0, "y": 0.0}}, ["RR"]).mean["RR"] == 0.5
    # infinities rank at the ends
    assert ev(qrels, {"q": {"x": -math.inf, "y": 0.0}}, ["RR"]).mean["RR"] == 0.5


def test_missing_queries_and_complete():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"a": 0}}
    run = {"q1": {"a": 1.0}, "q3": {"a": 1.0}, "q9": {"a": 1.0}}
    r = ev(qrels, run, ["AP", "num_rel", "num_ret", "P@1"])
    assert r.qids == ("q1", "q3")                      # q9 has no judgments: ignored
    assert r.mean["AP"] == 0.5                         # q3 has no relevant document: 0
    assert r.summary["num_rel"] == 1 and r.summary["num_ret"] == 2
    c = ev(qrels, run, ["AP", "num_rel", "num_ret", "P@1"], complete=True)
    assert c.qids == ("q1", "q2", "q3")
    assert c.per_query["AP"]["q2"] == 0.0 and c.per_query["P@1"]["q2"] == 0.0
    assert c.per_query["num_rel"]["q2"] == 2 and c.per_query["num_ret"]["q2"] == 0
    assert c.mean["AP"] == pytest.approx(1 / 3)
    assert c.summary["num_rel"] == 3 and c.summary["num_ret"] == 2


def test_unjudged_and_negative_documents():
    # unjudged and negative documents are non-relevant; for bpref they are skipped
    qrels = {"q": {"r": 1, "n": 0, "neg": -1}}
    r = ev(qrels, {"q": {"u": 3.0, "neg": 2.0, "r": 1.0}}, ["AP", "bpref", "nDCG"])
    assert r.mean["AP"] == pytest.approx(1 / 3)
    assert r.mean["bpref"] == 1.0
    assert r.mean["nDCG"] == pytest.approx(1 / 2)      # gain 1 at rank 3: 1/log2(4)
    r = ev(qrels, {"q": {"n": 3.0, "r": 1.0}}, ["bpref"])
    assert r.mean["bpref"] == 0.0                      # 1 - min(1,1)/min(1,1)


def test_graded_ndcg_and_negative_gains_ignored():
    qrels = {"q": {"a": 3, "b": 1, "c": -2, "d": 2}}
    r = ev(qrels, {"q": {"c": 9.0, "b": 8.0, "a": 7.0}}, ["nDCG", "nDCG@1", "nDCG@2"])
    ideal = 3 + 2 / L3 + 1 / 2
    assert r.mean["nDCG"] == pytest.approx((1 / L3 + 3 / 2) / ideal)
    assert r.mean["nDCG@1"] == 0.0
    assert r.mean["nDCG@2"] == pytest.approx((1 / L3) / (3 + 2 / L3))


def test_precision_divides_by_k_even_when_fewer_retrieved():
    r = ev({"q": {"a": 1}}, {"q": {"a": 1.0}}, ["P@10", "P@1", "R@10"])
    assert (r.mean["P@10"], r.mean["P@1"], r.mean["R@10"]) == (0.1, 1.0, 1.0)


def test_judged_query_without_relevant_documents_scores_zero_everywhere():
    names = ["AP", "P@5", "R-prec", "RR", "nDCG", "bpref", "R@5", "success@5", "iP@0.0"]
    r = ev({"q": {"a": 0, "b": -1}}, {"q": {"a": 2.0, "b": 1.0}}, names)
    assert all(r.mean[m] == 0.0 for m in names)


def test_interleaved_rows_give_the_same_result():
    rng = np.random.default_rng(3)
    qids = np.repeat([f"q{i}" for i in range(20)], 30)
    docids = np.array([f"d{i}" for i in range(30)] * 20)
    scores = rng.integers(0, 5, qids.size).astype(float)
    qrels = Qrels.from_arrays(qids, docids, rng.integers(-1, 3, qids.size))
    perm = rng.permutation(qids.size)
    a = evaluate(qrels, Run.from_arrays(qids, docids, scores), ["AP", "nDCG@5", "bpref"])
    b = evaluate(qrels, Run.from_arrays(list(qids[perm]), list(docids[perm]), scores[perm]),
                 ["AP", "nDCG@5", "bpref"])
    for m in a.names:
        assert a.values(m).tolist() == b.values(m).tolist()


def test_hash_collisions_cannot_change_results(monkeypatch):
    """With every document hashing alike, the string checks must still find the truth."""
    qrels_d = {"q1": {"a": 1, "b": 0, "c": 2}, "q2": {"a": 0, "z": 1}}
    run_d = {"q1": {"c": 1.0, "a": 2.0, "x": 3.0}, "q2": {"z": 1.0, "a": 1.0}}
    measures = ["AP", "nDCG", "bpref", "num_rel_ret"]
    expected = ev(qrels_d, run_d, measures)
    monkeypatch.setattr("retrieval.evaluation.data.hash_strings",
                        lambda values: np.zeros(values.size, dtype=np.uint64))
    colliding = ev(qrels_d, run_d, measures)
    for m in measures:
        assert colliding.values(m).tolist() == expected.values(m).tolist()
    with pytest.raises(InputError, match="appears twice"):
        Run.from_arrays(["q", "q", "q"], ["a", "b", "a"], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="judged twice"):
        Qrels.from_records([Qrel("q", "a", 1), Qrel("q", "b", 1), Qrel("q", "a", 0)])


def test_hashes_do_not_depend_on_array_width():
    a = np.array(["doc1", "x"])
    b = np.array(["doc1", "a much longer string"])
    assert keys.hash_strings(a)[0] == keys.hash_strings(b)[0]
    assert keys.hash_strings(a)[1] != keys.hash_strings(b)[1]


# ---------------------------------------------------------------------------------------
# measure names

@pytest.mark.parametrize("text, name, trec", [
    ("MAP", "AP", "map"), ("map", "AP", "map"), ("ap", "AP", "map"),
    ("P_10", "P@10", "P_10"), ("p@5", "P@5", "P_5"), ("P.20", "P@20", "P_20"),
    ("Rprec", "R-prec", "Rprec"), ("R-prec", "R-prec", "Rprec"),
    ("ndcg", "nDCG", "ndcg"), ("ndcg_cut_10", "nDCG@10", "ndcg_cut_10"),
    ("NDCG@3", "nDCG@3", "ndcg_cut_3"), ("recall_100", "R@100", "recall_100"),
    ("recall@5", "R@5", "recall_5"), ("R@1000", "R@1000", "recall_1000"),
    ("MRR", "RR", "recip_rank"), ("recip_rank", "RR", "recip_rank"),
    ("bpref", "bpref", "bpref"), ("success_10", "success@10", "success_10"),
    ("iprec_at_recall_0.50", "iP@0.5", "iprec_at_recall_0.50"), ("iP@1.0", "iP@1.0",
                                                                 "iprec_at_recall_1.00"),
    ("iP@0.25", "iP@0.25", "iprec_at_recall_0.25"),
    ("num_ret", "num_ret", "num_ret"), ("NUM_REL", "num_rel", "num_rel"),
    ("num_rel_ret", "num_rel_ret", "num_rel_ret"),
])
def test_measure_names(text, name, trec):
    m = parse_measure(text)
    assert (m.name, m.trec_name) == (name, trec)
    assert parse_measure(m.name) == m


def test_measure_expansion_and_errors():
    ms = parse_measures(["iprec_at_recall", "map", "AP", "iP@0.5"])
    assert [m.name for m in ms] == [f"iP@{x / 10:.1f}" for x in range(11)] + ["AP"]
    for bad in ("foo", "P@0", "P@", "iP@1.5", "ndcg_cut"):
        with pytest.raises(ParameterError) as info:
            parse_measure(bad)
        assert repr(bad) in str(info.value)
    with pytest.raises(ParameterError, match="valid measures: AP"):
        parse_measure("precision")


# ---------------------------------------------------------------------------------------
# data classes and the result object

def test_evaluation_api_and_immutability():
    result = ev(QRELS, RUN, ["map", "P_10", "num_ret"])
    assert result.names == ("AP", "P@10", "num_ret")
    assert list(result.mean) == ["AP", "P@10", "num_ret"]
    assert result.mean["map"] == result.mean["AP"] == result.mean[Measure("AP")]
    assert "MAP" in result.mean and "nDCG" not in result.mean
    with pytest.raises(KeyError):
        result.mean["nDCG"]
    with pytest.raises(AttributeError):
        result.qids = ()
    with pytest.raises(TypeError):
        result.per_query["AP"]["q1"] = 1.0
    with pytest.raises(ValueError):
        result.values("AP")[0] = 1.0
    assert json.loads(json.dumps(result.to_dict()))["mean"]["P@10"] == 0.2


def test_run_and_qrels_construction():
    run = Run.from_records([ScoredDoc("q2", "a", 1.0), ScoredDoc("q1", "b", 2.0)], name="r")
    assert run.qids == ("q1", "q2") and len(run) == 2 and run.name == "r"
    assert run.to_dict() == {"q1": {"b": 2.0}, "q2": {"a": 1.0}}
    assert run.query_ids.tolist() == ["q2", "q1"]
    with pytest.raises(AttributeError):
        run.name = "x"
    with pytest.raises(ValueError):
        run.scores[0] = 5.0
    qrels = Qrels.from_records([Qrel("q1", "b", 1), Qrel("q1", "c", -1)])
    assert "q1" in qrels and "q2" not in qrels and len(qrels) == 2
    assert qrels.judgments("q1") == {"b": 1, "c": -1}
    assert Qrels.from_dict(qrels.to_dict()).to_dict() == qrels.to_dict()
    assert Qrels.from_dict({"q": {}}).qids == ()       # an empty dict is not a judgment


@pytest.mark.parametrize("args, message", [
    ((["q"], ["a", "b"], [1.0, 2.0]), "same length"),
    ((["q", "q"], ["a", "b"], [1.0, math.nan]), "NaN"),
    (([1, 2], ["a", "b"], [1.0, 2.0]), "must be strings"),
    ((["q", "q"], ["a", ""], [1.0, 2.0]), "empty"),
    ((["q"], ["a"], ["high"]), "numbers"),
])
def test_run_from_arrays_errors(args, message):
    with pytest.raises(ParameterError, match=message):
        Run.from_arrays(*args)


def test_evaluate_errors():
    qrels, run = Qrels.from_dict({"q1": {"a": 1}}), Run.from_dict({"q2": {"a": 1.0}})
    with pytest.raises(InputError, match="no query in common"):
        evaluate(qrels, run, ["AP"])
    with pytest.raises(ParameterError, match="relevance_level"):
        evaluate(qrels, Run.from_dict({"q1": {"a": 1.0}}), ["AP"], relevance_level=-1)
    with pytest.raises(ParameterError, match="unknown measure"):
        evaluate(qrels, Run.from_dict({"q1": {"a": 1.0}}), ["APP"])


def test_read_helpers(tmp_path):
    (tmp_path / "q").write_text("1 0 a 1\n1 0 b 0\n")
    (tmp_path / "r").write_text("1 Q0 b 1 2 t\n1 Q0 a 2 1 t\n")
    r = evaluate(Qrels.read(tmp_path / "q"), Run.read(tmp_path / "r"), ["AP"])
    assert r.mean["AP"] == 0.5 and r.run_name == "r"


# ---------------------------------------------------------------------------------------
# significance

def test_paired_t_test_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.random(30), rng.random(30)
    t, p = paired_t_test(a, b)
    expected = stats.ttest_rel(b, a)
    assert (t, p) == pytest.approx((expected.statistic, expected.pvalue))
    assert paired_t_test(a, a) == (0.0, 1.0)
    assert paired_t_test([0.1], [0.9]) == (0.0, 1.0)


def test_randomization_test():
    rng = np.random.default_rng(2)
    a = rng.random(40)
    assert randomization_test(a, a) == 1.0
    better = a + 0.3
    p = randomization_test(a, better, permutations=2000, seed=7)
    assert p == pytest.approx(1 / 2001)
    noise = a + rng.normal(0, 0.01, a.size)
    p1 = randomization_test(a, noise, permutations=3000, seed=7)
    assert p1 == randomization_test(a, noise, permutations=3000, seed=7)  # seeded
    assert p1 > 0.05
    # two equal differences: 2 of the 4 sign patterns reach |mean| = 1
    assert randomization_test([0.0, 0.0], [1.0, 1.0], permutations=4000, seed=0) == \
        pytest.approx(0.5, abs=0.03)


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([]) == []


def test_compare_uses_common_queries():
    qrels = Qrels.from_dict({f"q{i}": {"a": 1, "b": 0} for i in range(12)})
    base = Run.from_dict({f"q{i}": {"b": 2.0, "a": 1.0} for i in range(12)}, name="base")
    good = Run.from_dict({f"q{i}": {"a": 2.0, "b": 1.0} for i in range(10)}, name="good")
    e0, e1 = evaluate(qrels, base, ["AP"]), evaluate(qrels, good, ["AP"])
    qids, x, y = paired_values(e0, e1, "AP")
    assert len(qids) == 10 and x.tolist() == [0.5] * 10 and y.tolist() == [1.0] * 10
    [c] = compare(e0, [e1], "map", test="randomization", permutations=500)
    assert c.queries == 10 and c.difference == 0.5 and c.significant(0.05)
    assert c.run == "good" and c.measure == "AP"
    [t] = compare(e0, [e1], "AP", test="t")
    assert t.p_value == 0.0 and t.p_holm == 0.0
    with pytest.raises(ParameterError):
        compare(e0, [e1], "AP", test="wilcoxon")
