"""The analyzer: tokenisation rules, stop lists, stemmers, memoisation, config."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval import Analyzer, ParameterError
from retrieval.analysis import stopword_set, tokenize


@pytest.mark.parametrize("text,tokens", [
    ("Don't stop", ["don", "t", "stop"]),
    ("state-of-the-art", ["state", "of", "the", "art"]),
    ("snake_case x", ["snake", "case", "x"]),
    ("pi is 3.14", ["pi", "is", "3", "14"]),
    ("Glacier's FLOW", ["glacier", "s", "flow"]),
    ("Müller café naïve", ["müller", "café", "naïve"]),
    ("東京 とうきょう", ["東京", "とう", "うき", "きょ", "ょう"]),
    ("信息检索 x検索y 中", ["信息", "息检", "检索", "x", "検索", "y", "中"]),
    ("Ελληνικά κείμενα", ["ελληνικά", "κείμενα"]),
    ("", []),
])
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_combining_accents_are_normalised():
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    assert tokenize(decomposed) == ["café"]


def test_stop_list_sizes():
    assert len(stopword_set("lucene")) == 33
    assert len(stopword_set("sklearn")) == 318
    smart = stopword_set("smart")
    assert 500 < len(smart) <= 570 and "the" in smart and "ain't" not in smart
    assert stopword_set("none") == frozenset()


def test_shipped_sklearn_list_is_scikit_learns_word_for_word():
    """data/sklearn.txt holds exactly scikit-learn's ENGLISH_STOP_WORDS (the package no
    longer depends on scikit-learn; this compares when it is installed)."""
    from importlib import resources
    sklearn_text = pytest.importorskip(
        "sklearn.feature_extraction.text",
        reason="scikit-learn is not installed: nothing to compare the shipped list with")
    text = resources.files("retrieval").joinpath("data", "sklearn.txt").read_text("utf-8")
    shipped = [w for w in text.split("\n") if w and not w.startswith("#")]
    assert len(shipped) == len(set(shipped)) == 318
    assert set(shipped) == set(sklearn_text.ENGLISH_STOP_WORDS)


def test_porter_is_the_original_algorithm():
    a = Analyzer("none", "porter")
    # NLTK's extended mode gives "die"/"lie"; the original algorithm gives "dy"/"ly"
    assert a.analyze("dying lying") == ["dy", "ly"]
    assert a.analyze("generalizations") == ["gener"]


def test_snowball_and_none():
    assert Analyzer("none", "snowball").analyze("running generously") == ["run", "generous"]
    assert Analyzer("none", "none").analyze("Running") == ["running"]


def test_stop_before_stem():
    a = Analyzer("lucene", "porter")
    assert a.analyze("The glaciers are moving") == ["glacier", "move"]


def test_each_distinct_token_is_stemmed_once(monkeypatch):
    a = Analyzer("none", "porter")
    calls = []
    real = a._stem
    a._stem = lambda t: calls.append(t) or real(t)
    a.analyze("moving moving moved moving")
    a.term_counts("moved moving glaciers")
    assert sorted(calls) == ["glaciers", "moved", "moving"]


def test_config_round_trip_and_validation():
    a = Analyzer("smart", "snowball")
    assert Analyzer.from_config(a.config()) == a
    with pytest.raises(ParameterError, match="choose one of"):
        Analyzer("bogus", "porter")
    with pytest.raises(ParameterError, match="choose one of"):
        Analyzer("none", "lancaster")
    with pytest.raises(ParameterError, match="rebuild the index"):
        Analyzer.from_config({"tokenizer": "old/0", "stopwords": "none", "stemmer": "none"})


@pytest.mark.slow
@given(st.text())
def test_analyzer_never_fails_and_terms_are_clean(text):
    for cfg in (("lucene", "porter"), ("smart", "snowball"), ("none", "none")):
        terms = Analyzer(*cfg).analyze(text)
        assert all(t and not any(ch.isspace() for ch in t) for t in terms)
        counts = Analyzer(*cfg).term_counts(text)
        assert sum(counts.values()) == len(terms)


@pytest.mark.slow
def test_light_nltk_import_gives_the_real_stemmers_and_leaves_nltk_alone():
    import subprocess
    import sys
    code = """
import sys
from retrieval import Analyzer
words = "caresses ponies dying lying generalizations running generously happily relational".split()
ours = [Analyzer("none", s).analyze(" ".join(words)) for s in ("porter", "snowball")]
assert not [m for m in sys.modules if m.startswith("nltk")], "nltk modules left behind"
import nltk
from nltk.stem.porter import PorterStemmer
from nltk.stem.snowball import SnowballStemmer
real = [[PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM).stem(w) for w in words],
        [SnowballStemmer("english").stem(w) for w in words]]
assert ours == real, (ours, real)
assert hasattr(nltk, "word_tokenize")  # the user's nltk is the whole package
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _nltk_english():
    from retrieval.analysis import stemmer_function
    return stemmer_function("snowball", "english").__self__  # NLTK's EnglishStemmer


def test_the_skipped_endings_cover_every_suffix_of_nltks_english_stemmer():
    """ENGLISH_SNOWBALL_SUFFIXES holds every suffix list of NLTK's EnglishStemmer, and
    every special word ends with one of them (so none skips the stemmer)."""
    from retrieval.analysis import ENGLISH_SNOWBALL_SUFFIXES
    stemmer = _nltk_english()
    names = [n for n in dir(stemmer) if n.endswith("_suffixes")]
    assert len(names) >= 7
    for name in names:
        assert set(getattr(stemmer, name)) <= set(ENGLISH_SNOWBALL_SUFFIXES), name
    special = stemmer._EnglishStemmer__special_words
    assert special and all(w.endswith(ENGLISH_SNOWBALL_SUFFIXES) for w in special)


@pytest.mark.parametrize("word", ["test", "bak", "0x1f", "abc123", "deadbeef4", "atlas",
                                  "sky", "ugly", "news", "howe", "proceeds", "yak", "ayo",
                                  "mayhap", "generalization", "communautx", "Test", "ABC",
                                  "x", "ok", "a1b2c3d", "kayak", "yoyo"])
def test_english_snowball_terms_equal_nltk(word):
    assert Analyzer("none", "snowball").term(word) == _nltk_english().stem(word)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzY0123456789'", max_size=14))
def test_english_snowball_terms_equal_nltk_on_random_words(word):
    assert Analyzer("none", "snowball").term(word) == _nltk_english().stem(word)


@given(st.lists(st.text(alphabet="abcdeilnorstuyY0129'äß检", max_size=10), max_size=30))
def test_terms_equals_term_for_each_token(tokens):
    for cfg in (("smart", "snowball", "english"), ("snowball", "snowball", "german"),
                ("lucene", "porter", "english"), ("none", "none", "english")):
        batch, one = Analyzer(*cfg), Analyzer(*cfg)
        assert batch.terms(tokens) == [one.term(t) for t in tokens]
        assert batch.terms(tokens) == [one.term(t) for t in tokens]  # from the memo
