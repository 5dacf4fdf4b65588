"""PyTerrier's Python core (no Java): the engine as transformers in a ``>>`` pipeline
and in ``pt.Experiment``."""

from __future__ import annotations

import pytest

pd = pytest.importorskip("pandas", reason="pandas (the pandas extra) is not installed")
pt = pytest.importorskip("pyterrier", reason="PyTerrier (the pyterrier extra) is not "
                                             "installed")

from retrieval import Index, Searcher  # noqa: E402
from retrieval.evaluation import Qrels, Run, evaluate  # noqa: E402
from retrieval.feedback import make_feedback  # noqa: E402
from retrieval.frames import qrels_frame, result_docids, search_frame  # noqa: E402
from retrieval.paths import SAMPLE_CORPUS  # noqa: E402
from retrieval.pyterrier import (QueryExpansion, Retriever, format_weighted_query,  # noqa: E402
                                 parse_weighted_query)
from retrieval.trec import read_topics  # noqa: E402


@pytest.fixture(scope="module")
def sample():
    index = Index.build([(p.relative_to(SAMPLE_CORPUS / "docs").as_posix(), p.read_text())
                         for p in sorted((SAMPLE_CORPUS / "docs").rglob("*.txt"))])
    queries = read_topics(SAMPLE_CORPUS / "queries.tsv", format="tsv")
    topics = pd.DataFrame({"qid": [q.qid for q in queries], "query": [q.text for q in queries]})
    qrels = Qrels.read(SAMPLE_CORPUS / "qrels.txt")
    return Searcher(index), topics, qrels


def test_retriever_is_a_transformer(sample):
    searcher, topics, _ = sample
    retriever = Retriever(searcher, k=10)
    assert isinstance(retriever, pt.Transformer)
    out = retriever(topics)
    assert out.equals(search_frame(searcher, topics, k=10))
    assert {"qid", "query", "docno", "score", "rank"} <= set(out.columns)


def test_rm3_pipeline_equals_feedback_search(sample):
    searcher, topics, _ = sample
    rm3 = make_feedback("rm3", fb_docs=5, fb_terms=10)
    retriever = Retriever(searcher, k=50)
    pipeline = retriever >> QueryExpansion(searcher, rm3) >> retriever
    out = pipeline(topics)
    res = rm3.batch_search_arrays(searcher, topics["query"].tolist(), 50)
    assert out.docno.tolist() == list(result_docids(searcher, res))
    assert out.score.tolist() == res.scores.tolist()  # bit-identical through the text
    assert out.query_0.tolist()[:1] == topics["query"].tolist()[:1]
    expanded = out.drop_duplicates("qid")["query"].iloc[0]
    assert parse_weighted_query(expanded) == rm3.expand(searcher, [topics["query"][0]])[0]


def test_weighted_query_text_round_trips():
    from retrieval.search import QueryModel
    model = QueryModel.from_weights({"glacier": 0.1 + 0.2, "ice": 1e-17})
    assert parse_weighted_query(format_weighted_query(model)) == model
    assert parse_weighted_query("how do glaciers move") is None


def test_experiment_reports_our_evaluation(sample):
    searcher, topics, qrels = sample
    rm3 = make_feedback("rm3", fb_docs=5, fb_terms=10)
    retriever = Retriever(searcher, k=100)
    table = pt.Experiment([retriever, retriever >> QueryExpansion(searcher, rm3) >> retriever],
                          topics, qrels_frame(qrels), eval_metrics=["map"],
                          names=["ql", "ql+rm3"])
    ours = evaluate(qrels, Run.from_arrays(*(search_frame(searcher, topics, 100)[c]
                                             for c in ("qid", "docno", "score"))), ["AP"])
    assert table.set_index("name").loc["ql", "map"] == pytest.approx(ours.mean["AP"], abs=1e-6)
    assert 0 < table.set_index("name").loc["ql+rm3", "map"] <= 1
