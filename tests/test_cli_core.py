"""The index, search and info subcommands: output formats, messages, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from retrieval.cli import main


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "docs"
    (d / "geo").mkdir(parents=True)
    (d / "geo" / "glacier.txt").write_text(
        "Glaciers move slowly downhill. A glacier moves by internal deformation and "
        "by sliding on meltwater at its bed.")
    (d / "geo" / "river.txt").write_text("Rivers carry sediment to the sea.")
    (d / "food.md").write_text("# Bread\n\nBread rises because yeast makes gas.")
    return d


@pytest.fixture
def index_path(tmp_path, corpus):
    out = tmp_path / "x.idx"
    assert main(["index", str(corpus), "-o", str(out), "-q"]) == 0
    return out


def one_line_error(capsys, code, expected_code=2):
    out, err = capsys.readouterr()
    assert code == expected_code
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_index_summary(tmp_path, corpus, capsys):
    out = tmp_path / "y.idx"
    assert main(["index", str(corpus), "-o", str(out), "-q", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 3
    assert summary["analyzer"]["stemmer"] == "snowball"
    assert summary["tokens"] > 10 and summary["seconds"] >= 0


def test_search_table_json_trec(index_path, capsys):
    assert main(["search", str(index_path), "how", "do", "glaciers", "move"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[2] == "geo/glacier.txt"
    assert "Glaciers move slowly" in out  # snippet
    assert main(["search", str(index_path), "glacier", "--format", "json",
                 "--feedback", "none"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"][0]["docid"] == "geo/glacier.txt"
    assert payload["query_model"] == {"glacier": 1.0}
    assert main(["search", str(index_path), "sediment sea", "--format", "trec", "-k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[:4] == ["1", "Q0", "geo/river.txt", "1"]


def test_search_explain(index_path, capsys):
    assert main(["search", str(index_path), "glacier bread", "--explain", "--model", "jm",
                 "--lam", "0.7", "-k", "2", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    for r, e in zip(payload["results"], payload["explanations"]):
        assert abs(sum(t["contribution"] for t in e["terms"]) - r["score"]) < 1e-12
    assert main(["search", str(index_path), "glacier", "--explain"]) == 0
    assert "contribution" in capsys.readouterr().out


def test_search_queries_file(tmp_path, index_path, capsys):
    qf = tmp_path / "q.tsv"
    qf.write_text("a\tglacier\nb\tbread yeast\n")
    assert main(["search", str(index_path), "--queries", str(qf), "--format", "trec"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {line.split()[0] for line in lines} == {"a", "b"}
    qf.write_text("a\tglacier\nbroken line\n")
    line = one_line_error(capsys, main(["search", str(index_path), "--queries", str(qf)]))
    assert f"{qf}:2:" in line


def test_query_of_stop_words_or_unknown_terms(index_path, capsys):
    assert main(["search", str(index_path), "the", "and"]) == 0
    out, err = capsys.readouterr()
    assert "only stop words" in err and out == ""
    assert main(["search", str(index_path), "zebra"]) == 0
    assert "none of the query terms occur in the index (zebra)" in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["search", "{missing}", "q"], "no such index"),
    (["search", "{corpus}", "q"], "not an index"),
    (["search", "{index}", "q", "--mu", "-1"], "mu (μ) must be in (0, inf)"),
    (["search", "{index}", "q", "--mu", "abc"], "expected a number"),
    (["search", "{index}", "q", "--model", "jm", "--lam", "2"], "lam (λ) must be in (0, 1]"),
    (["search", "{index}", "q", "--delta", "0.5"], "--delta does not apply to --model dirichlet"),
    (["search", "{index}", "q", "-k", "0"], "whole number >= 1"),
    (["search", "{index}"], "no query given"),
    (["search", "{index}", "q", "--model", "bm25"], "invalid choice"),
    (["index", "{missing}", "-o", "{out}"], "no such file or folder"),
    (["index", "{corpus}", "-o", "{corpus}/inside.idx"], "inside the indexed folder"),
    (["index", "{corpus}", "-o", "{index}"], "already holds an index; pass --force"),
    (["index", "{corpus}", "-o", "{corpus}/../docs"], "inside the indexed folder"),
    (["info", "{missing}"], "no such index"),
    (["nonsense"], "unknown command"),
])
def test_user_mistakes_are_one_line_errors(tmp_path, corpus, index_path, capsys, argv, needle):
    subs = {"missing": str(tmp_path / "missing"), "corpus": str(corpus),
            "index": str(index_path), "out": str(tmp_path / "o.idx")}
    argv = [a.format(**subs) for a in argv]
    line = one_line_error(capsys, main(argv))
    assert needle in line


def test_existing_non_index_output_is_refused_and_untouched(tmp_path, corpus, capsys):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    for extra in ([], ["--force"]):
        line = one_line_error(capsys, main(["index", str(corpus), "-o", str(other), "-q"] + extra))
        assert "not an index" in line
    assert (other / "keep.txt").read_text() == "precious"


def test_force_replaces_an_index(tmp_path, corpus, index_path, capsys):
    (corpus / "new.txt").write_text("volcanoes erupt")
    assert main(["index", str(corpus), "-o", str(index_path), "--force", "-q"]) == 0
    capsys.readouterr()
    assert main(["search", str(index_path), "volcano", "--format", "trec"]) == 0
    assert "new.txt" in capsys.readouterr().out


def test_info(index_path, capsys):
    assert main(["info", str(index_path)]) == 0
    out = capsys.readouterr().out
    assert "stopwords=smart" in out and "documents" in out
    assert main(["info", str(index_path), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["statistics"]["documents"] == 3 and "postings_docs" in info["arrays"]


@pytest.mark.slow
def test_python_dash_m_entry_point(index_path):
    proc = subprocess.run([sys.executable, "-m", "retrieval", "search", str(index_path),
                           "bread", "--format", "trec"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "food.md" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "retrieval", "search", str(index_path) + "x",
                           "bread"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
