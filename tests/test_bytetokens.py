"""The vectorised tokenizer of the index builder (retrieval.index.bytetokens) against the
regex tokenizer (retrieval.analysis.tokenize), on random Unicode text."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from retrieval import Analyzer
from retrieval.index import bytetokens as BT
from retrieval.analysis import tokenize
from retrieval.builder import IndexBuilder

# letters of many scripts, CJK of every kind, combining marks, case pairs that change
# length or context when lowercased (İ, Σ/ς), astral letters, lone surrogates, digits
_MIXED = st.text(alphabet=st.sampled_from(list(
    "abcXYZ09 _-'.\n\t\x00éÉ\u0301\u0308ǅßİΣσςДжЖ信息检索東京とうきョウーㇰ々〇한국어"
    "\U00020000\U0001B000\ud800ـ١٢ⅣＡａ①½") + ["\u3000", "\uff01", "\u309b"]), max_size=60)


def _spans_tokens(texts):
    buf, starts, ends, doc = BT._unicode_spans(texts)
    out = [[] for _ in texts]
    for s, e, d in zip(starts.tolist(), ends.tolist(), doc.tolist()):
        out[d].append(buf[s:e].decode("utf-8", "surrogatepass"))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), _MIXED), max_size=6))
def test_unicode_spans_give_the_regex_tokens(texts):
    got = _spans_tokens(texts)
    for text, tokens in zip(texts, got):
        assert Counter(tokens) == Counter(tokenize(text)), text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), _MIXED), max_size=8), st.integers(1, 4))
def test_builder_fast_path_equals_analyze(texts, chunk):
    """The chunked build (per-document ASCII / Unicode paths, tiny slices that cut
    documents) counts exactly the terms Analyzer.analyze gives each text."""
    from retrieval.index import counting as B
    saved_chunk, saved_slice = B.CHUNK_DOCS, BT.SLICE_CHARS
    B.CHUNK_DOCS, BT.SLICE_CHARS = chunk, 7
    try:
        docs = [(f"d{i}", t) for i, t in enumerate(texts)]
        for analyzer in (Analyzer("none", "none"), Analyzer(language="german")):
            b = IndexBuilder(analyzer, store_text=False)
            b.add_documents(docs)
            index = b.finish()
            for i, text in enumerate(texts):
                terms, counts = index.document_vector(i)
                got = {index.vocabulary[int(t)]: int(c) for t, c in zip(terms, counts)}
                assert got == dict(Counter(analyzer.analyze(text))), text
    finally:
        B.CHUNK_DOCS, BT.SLICE_CHARS = saved_chunk, saved_slice


def test_slices_cut_long_documents_at_spaces_only():
    text = "alpha beta\ngamma " * 10
    pieces = list(BT._cut(text, 12))
    assert "".join(pieces) == text
    assert all(p[0] in " \n" for p in pieces[1:])
    assert list(BT._cut("x" * 50, 10)) == ["x" * 50]  # no space: not cut
    docs = [d for d, _ in BT._slices(["é " * 30, "ab", "ü"], limit=10)]
    assert sorted(np.concatenate(docs).tolist())[:2] == [0, 0]


def test_the_class_table_is_the_regex():
    cls = BT.code_point_classes()
    for cp in (ord("a"), ord("_"), ord("é"), 0x301, ord("信"), ord("ー"), 0x3000, ord("١")):
        ch = chr(cp)
        assert (cls[cp] > 0) == ch.isalnum(), hex(cp)
    assert cls[ord("信")] == 2 and cls[ord("a")] == 1
    # the whole table: letters/digits are what str.isalnum says (the regex's [^\W_])
    every = (chr(cp) for cp in range(0x110000))
    alnum = np.fromiter(map(str.isalnum, every), dtype=bool, count=0x110000)
    assert np.array_equal(cls > 0, alnum)


@pytest.mark.parametrize("text", ["ΟΔΟΣ ΟΔΟΣ.", "İstanbul", "e\u0301cole", "한국어 信息检索"])
def test_context_and_length_changing_lowercase(text):
    assert Counter(_spans_tokens([text])[0]) == Counter(tokenize(text))


def test_ascii_lines_of_a_non_ascii_document_count_as_its_tokens():
    """A non-ASCII document's ASCII lines take the ASCII path (_slices); the counts are
    those of the whole text, whatever sits at the line ends."""
    text = ("plain line one\nΟΔΟΣ\n\u0301start combining\ncafé au lait\nİstanbul x\n"
            "plain running line\n信息检索 and more\r\nlast KELVIN \u212a\n\nend")
    plain, other = BT._ascii_lines(text)
    assert plain.isascii() and "plain running line" in plain and "café" in other
    for analyzer in (Analyzer("none", "none"), Analyzer()):
        b = IndexBuilder(analyzer, store_text=False)
        b.add_documents([("d", text), ("e", "only ascii\nlines")])
        index = b.finish()
        for i, t in enumerate((text, "only ascii\nlines")):
            terms, counts = index.document_vector(i)
            got = {index.vocabulary[int(x)]: int(c) for x, c in zip(terms, counts)}
            assert got == dict(Counter(analyzer.analyze(t)))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1).map(lambda v: v * 0x9E3779B97F4A7C15 % 2**64),
                max_size=200), st.integers(0, 5))
def test_grouping_by_sorting_is_numpy_unique_when_the_top_bits_differ(values, repeat):
    keys = np.asarray(values * (1 + repeat), dtype=np.uint64)
    want = np.unique(keys, return_index=True, return_inverse=True)
    got = BT._group_by_sorting(keys)
    assume(len(np.unique(keys >> np.uint64(24))) == len(want[0]))  # else: next test
    for w, g in zip(want, got):
        assert np.array_equal(w.reshape(-1), g.reshape(-1))


def test_keys_merged_by_the_coarse_grouping_are_split_again(monkeypatch):
    """Keys that share their top 40 bits form one group under _group_by_sorting; the
    words check catches it and numpy.unique groups them instead: same counts."""
    keys = np.asarray([5, 6, 5], dtype=np.uint64)
    ukey, first, inv = BT._group_by_sorting(keys)
    assert len(ukey) == 1 and list(inv) == [0, 0, 0]
    calls = []

    def lumped(keys):
        calls.append(len(keys))
        n = len(keys)
        return keys[:1], np.zeros(min(n, 1), dtype=np.intp), np.zeros(n, dtype=np.intp)
    monkeypatch.setattr(BT, "_group_by_sorting", lumped)
    texts = ["glacier ice flows", "ice ice baby"]
    b = IndexBuilder(Analyzer("none", "none"), store_text=False)
    b.add_documents([(str(i), t) for i, t in enumerate(texts)])
    index = b.finish()
    assert calls
    for i, text in enumerate(texts):
        terms, counts = index.document_vector(i)
        got = {index.vocabulary[int(t)]: int(c) for t, c in zip(terms, counts)}
        assert got == dict(Counter(text.split()))


def test_slices_split_mixed_documents_and_keep_large_ones_whole(monkeypatch):
    monkeypatch.setattr(BT, "SPLIT_CHARS", 50)
    small = "ascii line\nnon-ascii é line\nmore ascii"
    large = "é\n" + "x " * 40
    out = list(BT._slices([small, large], limit=1000))
    assert [(list(d), p) for d, p in out] == [
        ([0], ["ascii line\nmore ascii"]), ([0, 1], ["non-ascii é line", large])]
