"""``retrieval evaluate``: output formats, significance markers, options and errors."""

from __future__ import annotations

import json

import pytest

from retrieval.cli.evaluate import main

QRELS = "q1 0 d1 1\nq1 0 d2 0\nq1 0 d3 2\nq2 0 d1 1\nq3 0 d9 1\n"
RUN_A = "q1 Q0 d1 1 3.0 a\nq1 Q0 d2 2 2.0 a\nq1 Q0 d4 3 1.0 a\nq2 Q0 d5 1 1 a\nq2 Q0 d1 2 0.5 a\n"
RUN_B = "q1 Q0 d3 1 3.0 b\nq1 Q0 d1 2 2.0 b\nq2 Q0 d1 1 1 b\nq4 Q0 d1 1 1 b\n"


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in (("qrels.txt", QRELS), ("a.run", RUN_A), ("b.run", RUN_B)):
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    return {k: str(v) for k, v in paths.items()}


def lines_of(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("\t")] for line in text.splitlines()]


def test_single_run_trec_lines(files, capsys):
    assert main([files["qrels.txt"], files["a.run"], "-m", "AP", "-m", "P@2,num_ret"]) == 0
    out = capsys.readouterr().out
    assert lines_of(out) == [["AP", "all", "0.5000"], ["P@2", "all", "0.5000"],
                             ["num_ret", "all", "5"]]


def test_single_run_by_query_and_trec_names(files, capsys):
    assert main([files["qrels.txt"], files["a.run"], "-m", "map,ndcg_cut_10", "--by-query",
                 "--trec-names"]) == 0
    rows = lines_of(capsys.readouterr().out)
    assert rows == [["map", "q1", "0.5000"], ["ndcg_cut_10", "q1", "0.3801"],
                    ["map", "q2", "0.5000"], ["ndcg_cut_10", "q2", "0.6309"],
                    ["map", "all", "0.5000"], ["ndcg_cut_10", "all", "0.5055"]]


def test_default_measures(files, capsys):
    assert main([files["qrels.txt"], files["a.run"]]) == 0
    names = [row[0] for row in lines_of(capsys.readouterr().out)]
    assert names == ["AP", "P@10", "nDCG@10", "R-prec", "RR", "bpref", "R@1000", "num_ret",
                     "num_rel", "num_rel_ret"]


def test_complete_and_relevance_level(files, capsys):
    main([files["qrels.txt"], files["a.run"], "-m", "AP,num_rel", "-c", "-q"])
    rows = lines_of(capsys.readouterr().out)
    assert ["AP", "q3", "0.0000"] in rows and ["num_rel", "q3", "1"] in rows
    assert ["AP", "all", "0.3333"] in rows and ["num_rel", "all", "4"] in rows
    main([files["qrels.txt"], files["a.run"], "-m", "AP,num_rel", "-l", "2"])
    rows = lines_of(capsys.readouterr().out)
    # q1 only d3 relevant (not retrieved); q2 nothing relevant at level 2
    assert rows == [["AP", "all", "0.0000"], ["num_rel", "all", "1"]]


def test_several_runs_table_with_markers(tmp_path, files, capsys):
    qrels = tmp_path / "many.qrels"
    base = tmp_path / "base.run"
    good = tmp_path / "good.run"
    qrels.write_text("".join(f"q{i} 0 r 1\nq{i} 0 n 0\n" for i in range(30)))
    base.write_text("".join(f"q{i} Q0 n 1 2 x\nq{i} Q0 r 2 1 x\n" for i in range(30)))
    good.write_text("".join(f"q{i} Q0 r 1 2 x\nq{i} Q0 n 2 1 x\n" for i in range(29)) +
                    "q29 Q0 n 1 2 x\nq29 Q0 r 2 1 x\n")
    for test in ("t", "randomization", "both"):
        assert main([str(qrels), str(base), str(good), str(base), "-m", "AP,num_ret",
                     "--test", test]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert lines[0].split() == ["measure", "base.run", "good.run", "base.run#2"]
        ap = lines[2].split()
        assert ap[0] == "AP" and ap[1] == "0.5000" and ap[2] == "0.9833"
        assert ap[3] in ("\u25b2", "+") and ap[4] == "0.5000" and len(ap) == 5
        assert lines[3].split() == ["num_ret", "60", "60", "60"]
        assert "Holm-corrected over 2 run(s)" in out and "p < 0.05" in out
    # --alpha so small that nothing is significant
    main([str(qrels), str(base), str(good), "-m", "AP", "--alpha", "1e-300"])
    assert capsys.readouterr().out.splitlines()[2].split() == ["AP", "0.5000", "0.9833"]


def test_tsv_and_json(files, capsys):
    assert main([files["qrels.txt"], files["a.run"], files["b.run"], "-m", "AP",
                 "--format", "tsv", "--by-query"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["run", "measure", "qid", "value", "p_t", "p_t_holm"]
    assert ["a.run", "AP", "q1", "0.5", "", ""] in rows
    all_b = next(r for r in rows if r[0] == "b.run" and r[2] == "all")
    assert all_b[3] == "1.0" and float(all_b[4]) >= 0.0
    assert main([files["qrels.txt"], files["a.run"], files["b.run"], "-m", "AP,num_ret",
                 "--format", "json", "--test", "both"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"] == "a.run" and data["tests"] == ["t", "randomization"]
    a, b = data["runs"]
    assert a["summary"] == {"AP": 0.5, "num_ret": 5.0} and b["summary"]["AP"] == 1.0
    sig = b["significance_vs_baseline"]["AP"]
    assert set(sig) == {"t", "randomization"} and sig["t"]["queries"] == 2
    assert "num_ret" not in b["significance_vs_baseline"]
    assert main([files["qrels.txt"], files["a.run"], "--format", "json", "-q", "-m", "RR"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"][0]["per_query"] == {"RR": {"q1": 1.0, "q2": 0.5}}


def test_table_for_one_run_by_query(files, capsys):
    assert main([files["qrels.txt"], files["a.run"], "--format", "table", "-q",
                 "-m", "AP,num_rel"]) == 0
    out = capsys.readouterr().out
    assert "a.run" in out and out.count("all") == 1
    assert any(line.split() == ["q2", "0.5000", "1"] for line in out.splitlines())


def error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_errors(tmp_path, files, capsys):
    assert main([files["qrels.txt"], str(tmp_path / "missing.run")]) == 2
    line = error_line(capsys)
    assert line.startswith("retrieval evaluate: error: ") and "missing.run: no such file" in line

    assert main([str(tmp_path / "none.qrels"), files["a.run"]]) == 2
    assert "none.qrels" in error_line(capsys)

    other = tmp_path / "other.run"
    other.write_text("x1 Q0 d1 1 1 t\n")
    assert main([files["qrels.txt"], str(other)]) == 2
    line = error_line(capsys)
    assert "other.run" in line and "no query in common" in line

    assert main([files["qrels.txt"], files["a.run"], "-m", "MAPP"]) == 2
    assert "unknown measure 'MAPP'" in error_line(capsys)

    bad = tmp_path / "bad.run"
    bad.write_text("q1 Q0 d1 1 1 t\nq1 Q0 d2 1 t\n")
    assert main([files["qrels.txt"], str(bad)]) == 2
    assert f"{bad}:2: expected 6 columns" in error_line(capsys)

    dup = tmp_path / "dup.run"
    dup.write_text("q1 Q0 d1 1 1 t\nq1 Q0 d1 2 0 t\n")
    assert main([files["qrels.txt"], str(dup)]) == 2
    assert f"{dup}:2:" in error_line(capsys)

    assert main([files["qrels.txt"], files["a.run"], "--alpha", "2"]) == 2
    assert "--alpha" in error_line(capsys)
    assert main([files["qrels.txt"], files["a.run"], "--test", "wilcoxon"]) == 2
    assert "invalid choice" in error_line(capsys)
    assert main([files["qrels.txt"]]) == 2
    capsys.readouterr()
    assert main(["--help"]) == 0
    assert "iprec_at_recall" in capsys.readouterr().out
