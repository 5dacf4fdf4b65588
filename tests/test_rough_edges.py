"""The rough edges of issue 18: documents file names of --format trec, judgments of
documents outside the corpus, SearchResult.text/snippet, Feedback.search, did-you-mean,
which search path ran, and -m taking several measures."""

from __future__ import annotations

import json

import pytest

from retrieval import Index, Searcher
from retrieval.cli import main as cli
from retrieval.cli.info import kernel_status, search_path_text
from retrieval.collections import load_collection
from retrieval.errors import InputError, ParameterError
from retrieval.feedback import make_feedback
from retrieval.paths import SAMPLE_CORPUS

DOCS = [("a", "Glaciers move slowly down the valley."), ("b", "Rivers move water to the sea."),
        ("c", "Ice sheets and glaciers hold most fresh water."), ("d", "Bread needs yeast.")]


def _trio(folder, docs_name="mydocs.jsonl", qrels="1 0 a 1\n1 0 c 1\n2 0 b 1\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / docs_name).write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                                            for i, t in DOCS))
    (folder / "topics.tsv").write_text("1\tglacier\n2\triver water\n")
    (folder / "qrels.txt").write_text(qrels)
    return folder


def test_trec_format_takes_any_documents_file_name(tmp_path):
    folder = _trio(tmp_path / "c")
    by_folder = load_collection(folder, format="trec")
    by_file = load_collection(folder / "mydocs.jsonl", format="trec")
    by_option = load_collection(folder, format="trec", documents="mydocs.jsonl")
    assert by_folder.docids == by_file.docids == by_option.docids == ("a", "b", "c", "d")
    assert "mydocs.jsonl" in by_folder.description
    (folder / "other.jsonl").write_text('{"id": "z", "text": "z"}\n')
    with pytest.raises(InputError, match="several JSON Lines files.*name the documents"):
        load_collection(folder, format="trec")
    assert load_collection(folder / "other.jsonl", format="trec").docids == ("z",)


def test_judgments_outside_the_corpus_are_counted_and_warned(tmp_path, capsys):
    folder = _trio(tmp_path / "c", qrels="1 0 a 1\n1 0 zz 1\n2 0 b 1\n2 0 yy 0\n")
    coll = load_collection(folder, format="trec")
    assert [q.docid for q in coll.unjudged_corpus_judgments()] == ["zz", "yy"]
    code = cli(["benchmark", str(folder / "mydocs.jsonl"), "--format", "trec", "-o",
                str(tmp_path / "out"), "--no-cache", "--no-plots", "-q", "-m", "AP"])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: c: 2 judgments (1 relevant, 2 queries) name documents that are not " \
           "in the corpus, e.g. 'zz'" in err
    code = cli(["tune", str(folder), "--format", "trec", "--grid", "mu=100,200",
                "--folds", "2", "--no-cache"])
    assert code == 0 and "2 judgments" in capsys.readouterr().err


def test_search_result_text_and_snippet_are_lazy():
    index = Index.build(DOCS)
    searcher = Searcher(index)
    top = searcher.search("glacier", k=2)
    assert top[0].text(searcher) == dict(DOCS)[top[0].docid]
    assert top[0].text(index) == top[0].text(searcher)
    snippet = top[0].snippet(searcher, "glacier")
    assert "Glaciers" in snippet or "glaciers" in snippet
    assert top[0].snippet(index, searcher.query_model("glacier")) == snippet
    assert tuple(top[0]) == (top[0].rank, top[0].docid, top[0].score)  # still 3 fields
    with pytest.raises(AttributeError):
        top[0].docid = "x"
    no_text = Index.build(DOCS, store_text=False)
    result = Searcher(no_text).search("glacier", k=1)[0]
    assert result.text(no_text) is None and result.snippet(no_text, "glacier") is None
    with pytest.raises(ParameterError, match="no document"):
        result._replace(docid="nope").text(index)


def test_feedback_search_equals_its_arrays():
    searcher = Searcher(Index.build(DOCS))
    rm3 = make_feedback("rm3", fb_docs=2, fb_terms=5)
    results = rm3.search(searcher, "glacier water", k=3)
    res = rm3.batch_search_arrays(searcher, ["glacier water"], 3)
    assert [r.score for r in results] == res.scores.tolist()
    assert [r.docid for r in results] == searcher.index.docids.many(res.doc_numbers)
    assert [r.rank for r in results] == [1, 2, 3][:len(results)]


@pytest.mark.parametrize("argv, says", [
    (["serch", "x"], "did you mean 'search'?"),
    (["evalute", "q", "r"], "did you mean 'evaluate'?"),
    (["search", "idx", "glacier", "--mux", "500"], "did you mean --mu?"),
    (["search", "idx", "glacier", "--model", "dirichet"], "did you mean 'dirichlet'?"),
    (["evaluate", "q", "r", "--by-qury"], "did you mean --by-query?"),
])
def test_did_you_mean(argv, says, capsys):
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_no_suggestion_when_nothing_is_close(capsys):
    assert cli(["zzzzzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_which_search_path(tmp_path, capsys, monkeypatch):
    idx = tmp_path / "s.idx"
    Index.build(DOCS).save(idx)
    assert cli(["info", str(idx)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("search"))
    assert line.split(None, 1)[1] == search_path_text(4)
    if kernel_status()["available"]:
        assert "compiled numba kernels available" in line
    monkeypatch.setenv("RETRIEVAL_KERNELS", "0")
    assert "disabled by RETRIEVAL_KERNELS=0" in search_path_text(4)
    assert cli(["search", str(idx), "glacier", "--verbose", "--no-snippets"]) == 0
    assert capsys.readouterr().err.startswith("search path: ")


def test_measures_after_one_flag_repeated_or_commas(tmp_path, capsys):
    qrels = tmp_path / "qrels"
    run = tmp_path / "run"
    qrels.write_text("1 0 a 2\n1 0 b 0\n2 0 c 1\n")
    run.write_text("1 Q0 a 1 3.0 r\n1 Q0 b 2 2.0 r\n2 Q0 x 1 1.0 r\n2 Q0 c 2 0.5 r\n")
    outputs = []
    for m in (["-m", "AP", "P@1", "P(rel=2)@1", "ERR@10"],
              ["-m", "AP", "-m", "P@1", "-m", "P(rel=2)@1", "-m", "ERR@10"],
              ["-m", "AP,P@1,P(rel=2)@1", "-m", "ERR@10"]):
        assert cli(["evaluate", str(qrels), str(run), *m, "--by-query"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2]
    names = [line.split("\t")[0].strip() for line in outputs[0].splitlines()
             if "\tall\t" in line]
    assert names == ["AP", "P@1", "P(rel=2)@1", "ERR@10"]


def test_missing_extras_name_the_extra(monkeypatch):
    import importlib
    import sys
    monkeypatch.setitem(sys.modules, "ir_datasets", None)
    with pytest.raises(ParameterError, match=r'pip install "retrieval\[irds\]"'):
        load_collection("irds:cranfield")
    monkeypatch.setitem(sys.modules, "pyterrier", None)
    monkeypatch.delitem(sys.modules, "retrieval.pyterrier", raising=False)
    with pytest.raises(ImportError, match=r'pip install "retrieval\[pyterrier\]"'):
        importlib.import_module("retrieval.pyterrier")


def test_benchmark_measures_like_evaluate(tmp_path, capsys):
    code = cli(["benchmark", "sample", "-m", "AP,P@5", "nDCG@10", "-m", "P(rel=2)@5",
                "ERR@10", "-o", str(tmp_path / "out"), "--no-cache", "--no-plots", "-q",
                "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["measures"] == ["AP", "P@5", "nDCG@10", "P(rel=2)@5", "ERR@10"]
    means = report["collections"][0]["configurations"][0]["mean"]
    assert 0 < means["P(rel=2)@5"] <= means["P@5"] <= 1
