"""Property tests on arbitrary input (issue 6, item 6): the analyzer, the index builder,
search, evaluation and the TREC readers never fail except with the documented errors,
and what they return is consistent."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.analysis import Analyzer, tokenize
from retrieval.errors import InputError
from retrieval.evaluation import Qrels, Run, evaluate
from retrieval.index import Index
from retrieval.records import Qrel, ScoredDoc
from retrieval.search import Searcher
from retrieval.smoothing import make_model
from retrieval.trec import read_qrels, read_run, read_run_arrays, read_topics

#: examples per property (RETRIEVAL_FUZZ_EXAMPLES=2000 for a long hunt); the default
#: keeps the whole file well under a minute
FUZZ = settings(deadline=None, max_examples=int(os.environ.get("RETRIEVAL_FUZZ_EXAMPLES", "100")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# text that exercises the tokenizer: letters of many scripts, digits, marks (combining
# accents), punctuation, every kind of white space and control character
ALPHABET = st.characters(blacklist_categories=("Cs",))
WORDY = st.sampled_from(list("abcdeé ") + ["glacier", "Ice", "ICE", "straße", "İ", "ﬁ",
                                           "e\u0301", "\u00e9", "the", " ", "\t", "\n",
                                           "\u2028", "\xa0", "日本", "x_y", "٣", "ǅ"])
TEXT = st.one_of(st.text(ALPHABET, max_size=80),
                 st.lists(WORDY, max_size=30).map("".join))
ANALYZERS = [Analyzer(s, m) for s in ("none", "smart") for m in ("none", "snowball", "porter")]


# -- analyzer ---------------------------------------------------------------------------

@pytest.mark.slow
@FUZZ
@given(TEXT)
def test_analyzer_never_raises_and_terms_are_clean(text):
    for analyzer in ANALYZERS:
        terms = analyzer.analyze(text)
        assert terms == analyzer.analyze(text)  # deterministic (memo or not)
        assert terms == Analyzer(analyzer.stopwords, analyzer.stemmer).analyze(text)
        for t in terms:
            assert t and isinstance(t, str)
            assert not any(c.isspace() for c in t), repr(t)
        counts = analyzer.term_counts(text)
        assert sum(counts.values()) == len(terms)
        assert set(counts) == set(terms)
    tokens = tokenize(text)
    for t in tokens:
        assert t.lower() == t, repr(t)  # lowercase-normalised
    # stable: tokenizing the tokens again gives the same tokens, and analysing them
    # gives the same terms as analysing the text
    assert tokenize(" ".join(tokens)) == tokens
    for analyzer in ANALYZERS:
        assert analyzer.analyze(" ".join(tokens)) == analyzer.analyze(text)


# -- index builder ----------------------------------------------------------------------

DOCID = st.text(ALPHABET, min_size=0, max_size=12)
DOCS = st.lists(st.tuples(DOCID, TEXT), max_size=12)


def _check_consistent(index: Index, docs: list[tuple[str, str]]) -> None:
    a = index.arrays
    n, v = index.num_docs, index.num_terms
    assert n == len(docs)
    assert sorted(index.docids.all()) == sorted(d for d, _ in docs)
    lengths = np.asarray(a["doc_lengths"])
    assert int(lengths.sum()) == index.num_tokens
    terms = np.asarray(a["forward_terms"])
    counts = np.asarray(a["forward_counts"])
    assert np.array_equal(np.bincount(terms, weights=counts, minlength=v).astype(np.int64),
                          np.asarray(a["term_cf"]))
    assert np.array_equal(np.bincount(terms, minlength=v), np.asarray(a["term_df"]))
    assert int(np.asarray(a["term_cf"]).sum()) == index.num_tokens
    assert (np.asarray(a["term_cf"]) > 0).all()
    ptr = np.asarray(a["forward_indptr"])
    cumulative = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    assert np.array_equal(cumulative[ptr[1:]] - cumulative[ptr[:-1]], lengths)
    vocab = index.vocabulary.all()
    assert vocab == sorted(vocab) and len(set(vocab)) == v
    analyzer = index.analyzer
    for i, (docid, text) in enumerate(docs):
        doc = index.doc_number(docid)
        assert int(lengths[doc]) == len(analyzer.analyze(text))


@pytest.mark.slow
@FUZZ
@given(DOCS)
def test_index_build_raises_only_documented_errors(docs):
    ids = [d for d, _ in docs]
    try:
        index = Index.build(docs)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message.strip() or "\n" in "".join(ids)
        assert len(set(ids)) < len(ids) or "" in ids, message
        if "" not in ids:
            assert "appears twice" in message
        return
    assert len(set(ids)) == len(ids) and "" not in ids
    _check_consistent(index, docs)


# -- search -----------------------------------------------------------------------------

UNIQUE_DOCS = st.lists(st.tuples(DOCID.filter(bool), TEXT), max_size=12,
                       unique_by=lambda d: d[0])
MODELS = [make_model("dirichlet", mu=1000.0), make_model("dirichlet", mu=0.5),
          make_model("jm", lam=0.5), make_model("jm", lam=1.0), make_model("ad", delta=0.7),
          make_model("two-stage", mu=100.0, lam=0.2)]


@pytest.mark.slow
@FUZZ
@given(UNIQUE_DOCS, st.lists(TEXT, min_size=1, max_size=4), st.integers(1, 15),
       st.sampled_from(range(len(MODELS))), st.sampled_from(["drop", "indri"]),
       st.sampled_from(["matching", "all"]))
def test_search_never_raises_and_ranks_properly(docs, queries, k, model, unknown, candidates):
    index = Index.build(docs, analyzer=Analyzer("smart", "snowball"))
    searcher = Searcher(index, MODELS[model], unknown_terms=unknown, candidates=candidates)
    batch = searcher.batch_search(queries, k=k)
    for query, results in zip(queries, batch):
        assert results == searcher.search(query, k=k)
        assert len(results) <= min(k, index.num_docs)
        assert [r.rank for r in results] == list(range(1, len(results) + 1))
        assert len({r.docid for r in results}) == len(results)
        for a, b in zip(results, results[1:]):
            assert a.score > b.score or (a.score == b.score and a.docid < b.docid), (a, b)
        for r in results:
            assert math.isfinite(r.score)
        if candidates == "all" and searcher.query_model(query).terms:
            assert len(results) == min(k, index.num_docs)


# -- evaluation -------------------------------------------------------------------------

QID = st.sampled_from(["1", "2", "3", "10", "q"])
DOC = st.sampled_from(["a", "b", "c", "d", "e", "f", "B", "é"])
QRELS = st.lists(st.tuples(QID, DOC, st.integers(-2, 3)), max_size=25,
                 unique_by=lambda r: (r[0], r[1]))
RUN = st.lists(st.tuples(QID, DOC, st.sampled_from([0.0, 1.0, 1.0, -1.0, 2.5, 1e-9,
                                                     -math.inf, math.inf, 3.0000001])),
               max_size=30, unique_by=lambda r: (r[0], r[1]))
MEASURES = ("AP", "P@5", "nDCG", "nDCG@10", "R-prec", "RR", "bpref", "R@10", "success@1",
            "iP@0.5", "num_ret", "num_rel", "num_rel_ret")


@pytest.mark.slow
@FUZZ
@given(QRELS, RUN, st.integers(0, 3), st.booleans())
def test_evaluate_never_raises_and_measures_are_in_range(qrels, run, level, complete):
    q = Qrels.from_records(Qrel(*r) for r in qrels)
    r = Run.from_records(ScoredDoc(*x) for x in run)
    shared = {x[0] for x in qrels} & {x[0] for x in run}
    try:
        ev = evaluate(q, r, MEASURES, relevance_level=level, complete=complete)
    except InputError as exc:
        assert not shared and "no query in common" in str(exc)
        return
    assert shared
    for m in ev.measures:
        values = ev.values(m)
        assert np.isfinite(values).all()
        if not m.is_count:
            assert ((values >= 0) & (values <= 1)).all(), (m.name, values)
            assert 0 <= ev.summary[m] <= 1


# -- TREC readers -----------------------------------------------------------------------

LINE_PART = st.one_of(st.sampled_from(["1", "Q0", "0", "d1", "-3", "+2", "1e3", "nan", "inf",
                                       "x", "<top>", "</top>", "<num>", "<title>",
                                       "Number: 5", "\t", " ", "\r", "\x00", "\xa0", "\u2028",
                                       "\x85", "\ufeff", "é", "007", "1_0", "٣"]),
                      st.text(ALPHABET, max_size=6))
LINES = st.lists(st.lists(LINE_PART, max_size=8).map("".join), max_size=8)


def _write(tmp: Path, lines: list[str], raw_bytes: bytes) -> Path:
    path = tmp / "input.txt"
    path.write_bytes("\n".join(lines).encode("utf-8") + raw_bytes)
    return path


@pytest.mark.slow
@FUZZ
@given(LINES, st.sampled_from([b"", b"\n", b"\xff\xfe", b"\n1 0 d \xe9 1\n"]))
def test_trec_readers_parse_or_raise_input_error_at_path_line(lines, raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), lines, raw)
        readers = [read_qrels, read_run, read_run_arrays,
                   lambda p: read_topics(p, "tsv"), lambda p: read_topics(p, "trec"),
                   lambda p: read_topics(p, "trec", ("title", "desc"))]
        outcomes = []
        for reader in readers:
            try:
                outcomes.append(reader(path))
            except InputError as exc:
                message = str(exc)
                assert message.startswith(f"{path}:"), message
                assert exc.line is not None and exc.line >= 1, message
                outcomes.append(None)
        run_records, run_arrays = outcomes[1], outcomes[2]
        assert (run_records is None) == (run_arrays is None)
        if run_records is not None:
            assert [x.qid for x in run_records] == run_arrays.qids.tolist()
            assert [x.docid for x in run_records] == run_arrays.docids.tolist()
            assert [x.score for x in run_records] == run_arrays.scores.tolist()
