"""``retrieval tune``: output, JSON report, one-line errors (on the shipped sample corpus)."""

from __future__ import annotations

import json

import pytest

from retrieval.cli import COMMANDS, main
from retrieval.cli.tune import parse_grid


def one_line_error(capsys, code):
    _, err = capsys.readouterr()
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_registered():
    assert COMMANDS["tune"][0] == "retrieval.cli.tune"


def test_table_output(sample_dir, capsys):
    code = main(["tune", "sample", "--model", "dirichlet", "--grid", "mu=1000,500",
                 "--folds", "3", "--no-cache"])
    out = capsys.readouterr().out
    assert code == 0
    assert "31 judged queries, 3 folds (seed 0), measure AP" in out
    assert "mu=1000" in out and "mu=500" in out
    assert "cross-validated" in out and "best on test" in out and "gap" in out
    assert out.count("\n   1 ") + out.count("\n   2 ") + out.count("\n   3 ") == 3


def test_json_report_is_consistent(sample_dir, capsys):
    code = main(["tune", "sample", "--grid", "mu=1000,2000", "--feedback", "rm3",
                 "--grid", "fb_terms=10,5", "--folds", "3", "--seed", "4", "--measure",
                 "P@5", "--no-cache", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["measure"] == "P@5" and report["folds"] == 3 and report["seed"] == 4
    labels = [c["label"] for c in report["configurations"]]
    assert labels == ["mu=1000,fb_terms=10", "mu=1000,fb_terms=5",
                      "mu=2000,fb_terms=10", "mu=2000,fb_terms=5"]
    assert report["configurations"][0]["feedback"].startswith("rm3(fb_docs=20,fb_terms=10,fb_orig_weight=0.3")
    best = max(c["mean"] for c in report["configurations"])
    assert report["best_on_test"] == pytest.approx(best)
    assert report["cross_validated"] <= report["best_on_test"] + 1e-12
    assert sum(f["queries"] for f in report["fold_choices"]) == report["queries"] == 31
    per_query = report["per_query_cross_validated"]
    assert report["cross_validated"] == pytest.approx(sum(per_query.values()) / 31)


def test_mu_auto_in_a_grid(sample_dir, capsys):
    assert main(["tune", "sample", "--grid", "mu=auto,1000", "--folds", "2",
                 "--no-cache", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["configurations"][0]["label"] == "mu=auto"
    assert report["configurations"][0]["model"] != "dirichlet(mu=1000)"


def test_parse_grid():
    model, fb = parse_grid(["mu=500,1000", "fb_docs=5,10", "fb-doc-weights=uniform"],
                           "dirichlet", "rm3")
    assert model == {"mu": [500.0, 1000.0]}
    assert fb == {"fb_docs": [5, 10], "fb_doc_weights": ["uniform"]}


@pytest.mark.parametrize("argv, fragment", [
    (["--grid", "lam=0.5"], "--grid lam does not apply to --model dirichlet"),
    (["--grid", "fb_terms=10"], "--grid fb_terms does not apply"),
    (["--feedback", "rm3", "--grid", "fb_alpha=0.5"], "it takes omega, mass, fb_docs"),
    (["--grid", "mu"], "write NAME=V1,V2"),
    (["--grid", "mu=500,,1000"], "empty value"),
    (["--grid", "mu=abc"], "expected a number or 'auto'"),
    (["--grid", "mu=500", "--grid", "mu=1000"], "given twice"),
    (["--grid", "mu=500,500"], "repeated"),
    (["--grid", "mu=-5"], "mu (μ) must be in (0, inf)"),
    (["--feedback", "rm3", "--grid", "fb_docs=2.5"], "whole number"),
    (["--feedback", "mixture", "--grid", "fb_alpha=1.5"], "fb_alpha"),
    (["--folds", "1"], "--folds must be at least 2"),
    (["--folds", "100"], "at most the number of queries"),
    (["--measure", "NOPE"], "NOPE"),
    (["--seed", "-1"], "--seed"),
])
def test_errors_are_one_line(sample_dir, capsys, argv, fragment):
    code = main(["tune", "sample", "--no-cache"] + argv)
    assert fragment in one_line_error(capsys, code)


def test_unknown_collection_is_one_line(capsys):
    code = main(["tune", "no-such-collection", "--no-cache"])
    assert "unknown collection" in one_line_error(capsys, code)
