"""DataFrames in PyTerrier's column names: search_frame, runs and qrels to and from
frames, TREC files through frames, and result_docids."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import Index, Searcher
from retrieval.errors import ParameterError
from retrieval.evaluation import Qrels, Run, evaluate
from retrieval.feedback import make_feedback
from retrieval.frames import (qrels_frame, qrels_from_frame, read_qrels_frame, read_run_frame,
                              result_docids, run_frame, run_from_frame, search_frame,
                              write_qrels_frame, write_run_frame)
from retrieval.paths import SAMPLE_CORPUS
from retrieval.trec import read_topics

pd = pytest.importorskip("pandas", reason="pandas (the pandas extra) is not installed")

DOCS = [("a", "glaciers move slowly down the valley"), ("b", "rivers move water to the sea"),
        ("c", "ice sheets and glaciers"), ("d", "nothing relevant here")]


@pytest.fixture(scope="module")
def searcher():
    return Searcher(Index.build(DOCS))


def test_search_frame_matches_batch_search(searcher):
    topics = pd.DataFrame({"qid": ["q1", "q2", "q3"], "query": ["glacier", "move", "zzz"],
                           "extra": [1, 2, 3]})
    frame = search_frame(searcher, topics, k=2)
    assert list(frame.columns[:5]) == ["qid", "query", "docno", "score", "rank"]
    expected = searcher.batch_search(["glacier", "move", "zzz"], k=2)
    for qid, results in zip(["q1", "q2", "q3"], expected):
        rows = frame[frame.qid == qid]
        assert rows.docno.tolist() == [r.docid for r in results]
        assert rows.score.tolist() == [r.score for r in results]
        assert rows["rank"].tolist() == list(range(len(results)))
        assert set(rows.extra) <= {int(qid[1])}
    assert "q3" not in set(frame.qid)  # nothing retrieved: no rows


def test_search_frame_with_feedback_equals_feedback_arrays(searcher):
    topics = pd.DataFrame({"qid": ["1", "2"], "query": ["glacier", "river"]})
    rm3 = make_feedback("rm3", fb_docs=2, fb_terms=5)
    frame = search_frame(searcher, topics, k=3, feedback=rm3)
    res = rm3.batch_search_arrays(searcher, ["glacier", "river"], 3)
    assert frame.docno.tolist() == list(result_docids(searcher, res))
    assert frame.score.tolist() == res.scores.tolist()


def test_bad_topics_say_what_is_missing(searcher):
    with pytest.raises(ParameterError, match="lacks the column.*query"):
        search_frame(searcher, pd.DataFrame({"qid": ["1"]}))
    with pytest.raises(ParameterError, match="pandas DataFrame"):
        search_frame(searcher, [("1", "glacier")])


def test_result_docids_from_the_array_path(searcher):
    res = searcher.batch_search_arrays(["glacier", "move"], k=10)
    ids = result_docids(searcher, res)
    flat = [r.docid for rs in searcher.batch_search(["glacier", "move"], k=10) for r in rs]
    assert list(ids) == flat
    assert list(result_docids(searcher.index, res.doc_numbers)) == flat
    with pytest.raises(ParameterError):
        result_docids(object(), res)


def test_runs_and_qrels_round_trip(tmp_path):
    run = Run.from_dict({"q1": {"a": 1.0, "b": 2.0, "c": 2.0}, "q2": {"x": 0.5}}, name="r")
    frame = run_frame(run)
    assert frame.columns.tolist() == ["qid", "docno", "score", "rank"]
    # trec_eval's order: score descending, ties by docno descending
    assert frame[frame.qid == "q1"].docno.tolist() == ["c", "b", "a"]
    assert frame[frame.qid == "q1"]["rank"].tolist() == [0, 1, 2]
    assert run_from_frame(frame).to_dict() == run.to_dict()
    path = tmp_path / "run.trec"
    assert write_run_frame(frame, path, tag="t") == 4
    assert read_run_frame(path).equals(frame)
    assert path.read_text().splitlines()[0] == "q1 Q0 c 1 2.0 t"

    qrels = Qrels.from_dict({"q1": {"a": 1, "c": 0}, "q2": {"x": 2}})
    qf = qrels_frame(qrels)
    assert qf.columns.tolist() == ["qid", "docno", "label"]
    assert qrels_from_frame(qf).to_dict() == qrels.to_dict()
    irds_style = qf.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"})
    assert qrels_from_frame(irds_style).to_dict() == qrels.to_dict()
    (tmp_path / "qrels").write_text("q1 0 a 1\nq1 0 c 0\nq2 0 x 2\n")
    assert qrels_from_frame(read_qrels_frame(tmp_path / "qrels")).to_dict() == qrels.to_dict()
    with pytest.raises(ParameterError, match="lacks the column.*label"):
        qrels_from_frame(qf.drop(columns="label"))
    twice = pd.concat([qf, qf.iloc[:1]])
    assert qrels_from_frame(twice).to_dict() == qrels.to_dict()
    conflicting = pd.concat([qf, qf.iloc[:1].assign(label=5)])
    with pytest.raises(Exception, match="judged twice"):
        qrels_from_frame(conflicting)
    assert write_qrels_frame(qf, tmp_path / "out.qrels") == 3
    assert (tmp_path / "out.qrels").read_text() == "q1 0 a 1\nq1 0 c 0\nq2 0 x 2\n"
    assert read_qrels_frame(tmp_path / "out.qrels").equals(qf)


def test_missing_pandas_names_the_extra(monkeypatch, searcher):
    import sys
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ParameterError, match=r'pip install "retrieval\[pandas\]"'):
        search_frame(searcher, None)


def test_sample_corpus_evaluation_through_frames():
    index = Index.build([(p.relative_to(SAMPLE_CORPUS / "docs").as_posix(), p.read_text())
                         for p in sorted((SAMPLE_CORPUS / "docs").rglob("*.txt"))])
    searcher = Searcher(index)
    queries = read_topics(SAMPLE_CORPUS / "queries.tsv", format="tsv")
    topics = pd.DataFrame({"qid": [q.qid for q in queries], "query": [q.text for q in queries]})
    frame = search_frame(searcher, topics, k=100)
    qrels = Qrels.read(SAMPLE_CORPUS / "qrels.txt")
    from_frame = evaluate(qrels, run_from_frame(frame), ["AP"]).mean["AP"]
    direct = evaluate(qrels, Run.from_records(searcher.run(queries, k=100)), ["AP"]).mean["AP"]
    assert from_frame == direct and from_frame > 0.5
    assert np.all(frame.groupby("qid")["rank"].min() == 0)
