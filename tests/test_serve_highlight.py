"""Snippets and match offsets of the API (retrieval.serve.highlight) against the
analyzer's own token spans (retrieval.analysis.iter_token_spans) as the oracle."""

from __future__ import annotations

import pytest

from retrieval import Analyzer
from retrieval.analysis import contains_cjk, iter_token_spans
from retrieval.reading import FolderReader
from retrieval.serve.highlight import TOKEN, snippet, term_matches

ANALYZER = Analyzer()


def oracle_matches(text, terms):
    return [[s, e] for s, e, tok in iter_token_spans(text) if ANALYZER.term(tok) in terms]


@pytest.fixture(scope="module")
def sample_texts(sample_dir):
    return [d.text for d in FolderReader([sample_dir / "docs"])]


def test_token_spans_are_the_analyzers(sample_texts):
    extra = ["Ünïcödé naïve café — e\u0301t\u00e9 İstanbul ǅ x_y 3.14 don't", "", "  \n "]
    for text in sample_texts + extra:
        if contains_cjk(text):   # CJK runs are bigrams: term_matches follows the analyzer
            continue
        assert [m.span() for m in TOKEN.finditer(text)] == \
            [(s, e) for s, e, _ in iter_token_spans(text)]


def test_cjk_text_is_matched_by_the_analyzers_bigrams():
    text = "浮世絵は日本の版画です。Ukiyo-e prints"
    terms = set(ANALYZER.analyze("浮世絵"))            # 浮世 and 世絵
    assert term_matches(text, terms, ANALYZER) == [[0, 3]]   # the two bigrams, joined
    snip = snippet(text, terms, ANALYZER)
    assert snip["matches"] and all(ANALYZER.analyze(snip["text"][s:e]) for s, e in
                                   snip["matches"])
    assert snip["text"][snip["matches"][0][0]:snip["matches"][0][1]] == "浮世絵"


@pytest.mark.parametrize("query", ["glaciers move", "ocean water heat", "the", "zzz"])
def test_document_matches_equal_the_oracle(sample_texts, query):
    terms = set(ANALYZER.analyze(query))
    for text in sample_texts:
        assert term_matches(text, terms, ANALYZER) == oracle_matches(text, terms)


def test_snippet_window_offsets_and_length(sample_texts):
    terms = {"glacier", "move"}
    for text in sample_texts:
        for cap in (60, 240):
            snip = snippet(text, terms, ANALYZER, max_chars=cap)
            body = snip["text"]
            assert len(body) <= cap
            assert "\n" not in body and "  " not in body
            for s, e in snip["matches"]:
                assert ANALYZER.term(body[s:e].lower()) in terms
            # every match shown is marked: the oracle over the snippet text agrees
            assert snip["matches"] == oracle_matches(body, terms)


def test_snippet_is_the_densest_window():
    text = ("filler " * 50) + "glacier ice glacier moves " + ("filler " * 50)
    snip = snippet(text, {"glacier", "move"}, ANALYZER)
    assert snip["text"].startswith("… ") and snip["text"].endswith(" …")
    assert [snip["text"][s:e] for s, e in snip["matches"]] == ["glacier", "glacier", "moves"]
    short = snippet("Glaciers  move.\n\nSlowly.", {"glacier"}, ANALYZER)
    assert short == {"text": "Glaciers move. Slowly.", "matches": [[0, 8]]}
    assert snippet("", {"x"}, ANALYZER) == {"text": "", "matches": []}
    assert snippet("!!! ???", {"x"}, ANALYZER)["matches"] == []


def test_stemmers_keep_the_first_letter(sample_texts):
    """The prefilter of matching_forms: an index term starts with its token's letter."""
    tokens = {tok for text in sample_texts for _, _, tok in iter_token_spans(text)}
    tokens |= {"dying", "lying", "tying", "skies", "ies", "ugly", "idly", "news", "yelled"}
    for stemmer in ("snowball", "porter"):
        analyzer = Analyzer(stopwords="none", stemmer=stemmer)
        for tok in tokens:
            assert analyzer.term(tok)[0] == tok[0], (stemmer, tok)


@pytest.mark.parametrize("tail", ["", " café"])
def test_ascii_fast_path_equals_the_general_one(tail):
    # ASCII text takes the lowercase-once path; a non-ASCII word anywhere takes the
    # general one. On a short single-spaced text the snippet is the whole text, so its
    # matches must be every match of the document view
    text = "Glaciers move. The GLACIER melts; glacial ice and a glacier's flow" + tail
    terms = {ANALYZER.term("glacier"), ANALYZER.term("flow")}
    got = snippet(text, terms, ANALYZER)
    assert got["text"] == text
    assert got["matches"] == term_matches(text, terms, ANALYZER) == \
        [[0, 8], [19, 26], [52, 59], [62, 66]]
