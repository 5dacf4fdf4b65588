"""`retrieval benchmark` end to end on the sample corpus, and the engine's runs on the
shared collections evaluated by pytrec_eval (the reference) and by us."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval import Analyzer, Dirichlet, JelinekMercer
from retrieval.benchmarking import (Configuration, PR_MEASURES, cached_index, model_grid,
                                    run_configuration, run_records)
from retrieval.cli import main
from retrieval.collections import load_collection
from retrieval.evaluation import Qrels, evaluate


@pytest.mark.slow
def test_benchmark_cli_sample(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["benchmark", "sample", "--mu", "500", "2000", "-o", str(out), "--cache", str(cache),
            "-q", "-m", "AP", "P@5", "nDCG@10", "--feedback", "none"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "dirichlet(mu=500)" in text and "dirichlet(mu=2000)" in text
    assert "built in" in text
    report = json.loads((out / "report.json").read_text())
    coll = report["collections"][0]
    assert coll["name"] == "sample" and coll["stats"]["documents"] >= 150
    assert [c["params"]["mu"] for c in coll["configurations"]] == [500, 2000]
    assert 0 < coll["configurations"][0]["mean"]["AP"] <= 1
    assert report["analyzer"]["stopwords"] == "smart"
    runs = sorted((out / "runs" / "sample").iterdir())
    assert [p.name for p in runs] == ["dirichlet_mu=2000.trec", "dirichlet_mu=500.trec"]
    first = runs[0].read_text().splitlines()[0].split()
    assert first[1] == "Q0" and first[3] == "1"
    assert (out / "plots" / "pr-sample.png").stat().st_size > 1000
    assert (out / "plots" / "AP-vs-mu.png").stat().st_size > 1000
    # second run: the index comes from the cache
    assert main(argv) == 0
    assert "cached in" in capsys.readouterr().out


def test_benchmark_cli_errors(tmp_path, capsys):
    assert main(["benchmark", "nosuch", "-q", "-o", str(tmp_path)]) == 2
    assert "unknown collection" in capsys.readouterr().err.lower()
    assert main(["benchmark", "sample", "--delta", "0.5", "-q", "-o", str(tmp_path)]) == 2
    assert "--delta does not apply" in capsys.readouterr().err
    assert main(["benchmark", str(tmp_path), "-q", "-o", str(tmp_path)]) == 2
    assert "format" in capsys.readouterr().err


def test_model_grid_is_a_product():
    grid = model_grid("two-stage", {"mu": [100, 200], "lam": [0.1, 0.2, 0.3]})
    assert len(grid) == 6 and {m.mu for m in grid} == {100, 200}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cranfield", "cisi", "med", "cacm", "nfcorpus"])
def test_engine_runs_equal_pytrec_eval(name, collections_dir, tmp_path):
    """Every measure, on the engine's own runs, equals pytrec_eval to 1e-6."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    coll = load_collection(name)
    index, _, _ = cached_index(coll, Analyzer(), None)
    qrels_dict = coll.qrels_dict()
    ours_names = ["AP", "P@5", "P@10", "P@100", "R-prec", "nDCG", "nDCG@10", "R@100", "RR",
                  "bpref", "success@10", "num_ret", "num_rel", "num_rel_ret", *PR_MEASURES]
    theirs = {"map", "P_5", "P_10", "P_100", "Rprec", "ndcg", "ndcg_cut_10", "recall_100",
              "recip_rank", "bpref", "success_10", "num_ret", "num_rel", "num_rel_ret",
              "iprec_at_recall"}
    mapping = dict(zip(ours_names[:14], ["map", "P_5", "P_10", "P_100", "Rprec", "ndcg",
                                         "ndcg_cut_10", "recall_100", "recip_rank", "bpref",
                                         "success_10", "num_ret", "num_rel", "num_rel_ret"]))
    mapping.update({f"iP@{x / 10:.1f}": f"iprec_at_recall_{x / 10:.2f}" for x in range(11)})
    for model in (Dirichlet(mu=1000), JelinekMercer(lam=0.7)):
        run, _ = run_configuration(index, coll.queries, Configuration(model), 1000)
        run_dict = {}
        for r in run_records(run):
            run_dict.setdefault(r.qid, {})[r.docid] = r.score
        ref = pytrec_eval.RelevanceEvaluator(qrels_dict, theirs).evaluate(run_dict)
        ev = evaluate(Qrels.from_records(coll.qrels), run, ours_names)
        for ours, trec in mapping.items():
            got = ev.per_query[ours]
            assert set(got) == set(ref), ours
            diffs = [abs(got[q] - ref[q][trec]) for q in ref]
            assert max(diffs) <= 1e-6, (name, model, ours, max(diffs))
            assert abs(ev.mean[ours] - np.mean([ref[q][trec] for q in ref])) <= 1e-6


def test_benchmark_feedback_grid_and_cross_validation(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["benchmark", "sample", "--mu", "500", "1500", "--feedback", "none", "rm3",
                 "--cv", "3", "-o", str(out), "--cache", str(tmp_path / "c"), "-q",
                 "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "dirichlet(mu=500)+rm3" in text and "CV AP (3 folds)" in text
    report = json.loads((out / "report.json").read_text())
    assert len(report["collections"][0]["configurations"]) == 4
    cv = report["cross_validation"]["sample"]
    assert cv["folds"] == 3 and len(cv["fold_choices"]) == 3
    assert 0 < cv["mean"] <= 1 and 0 < cv["best_on_test"] <= 1
    assert main(["benchmark", "sample", "--cv", "3", "-o", str(out), "-q", "--no-plots"]) == 2
    assert "at least two configurations" in capsys.readouterr().err
