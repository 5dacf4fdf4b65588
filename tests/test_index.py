"""The index on disk: round trip, memory mapping, atomic writes, refusing bad folders."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import (Analyzer, Dirichlet, Index, IndexFormatError, InputError,
                       JelinekMercer, Searcher)
from retrieval.index import FORMAT_VERSION, MANIFEST

DOCS = [("geo/glacier.txt", "Glaciers move slowly; a glacier's flow is plastic."),
        ("geo/rivers.txt", "Rivers move water and sediment to the sea."),
        ("food/café.txt", "Café au lait: coffee with hot milk."),
        ("empty.txt", "")]


def test_save_open_roundtrip_identical(tmp_path):
    built = Index.build(DOCS)
    built.save(tmp_path / "x.idx")
    opened = Index.open(tmp_path / "x.idx")
    assert isinstance(opened.arrays["postings_docs"], np.memmap)
    for name, arr in built.arrays.items():
        assert np.array_equal(np.asarray(arr), np.asarray(opened.arrays[name])), name
    assert opened.analyzer == built.analyzer
    assert opened.docids.all() == [d for d, _ in DOCS]
    assert opened.text(2) == DOCS[2][1]
    for model in (Dirichlet(mu=50), JelinekMercer(lam=0.2)):
        for q in ("glaciers move", "café milk", "sea"):
            assert Searcher(built, model).search(q, 5) == Searcher(opened, model).search(q, 5)


def test_manifest_records_analyzer_and_counts(tmp_path):
    Index.build(DOCS, analyzer=Analyzer("smart", "snowball")).save(tmp_path / "x.idx")
    manifest = json.loads((tmp_path / "x.idx" / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["analyzer"]["stopwords"] == "smart"
    assert manifest["analyzer"]["stemmer"] == "snowball"
    assert manifest["counts"]["documents"] == 4
    assert manifest["counts"]["empty_documents"] == 1
    # queries are analysed with the saved analyzer
    assert Index.open(tmp_path / "x.idx").analyzer == Analyzer("smart", "snowball")


def test_statistics_are_consistent():
    index = Index.build(DOCS)
    a = index.arrays
    assert int(a["doc_lengths"].sum()) == int(a["term_cf"].sum()) == index.num_tokens
    assert int(a["term_df"].sum()) == len(a["postings_docs"]) == len(a["forward_terms"])
    assert np.array_equal(a["doc_unique"], np.diff(a["forward_indptr"]))
    vocab = index.vocabulary.all()
    assert vocab == sorted(vocab)
    assert all(index.term_id(t) == i for i, t in enumerate(vocab))
    assert index.term_id("nope") == -1
    assert index.doc_number("food/café.txt") == 2


def test_no_text_option(tmp_path):
    index = Index.build(DOCS, store_text=False)
    index.save(tmp_path / "x.idx")
    assert Index.open(tmp_path / "x.idx").text(0) is None


@pytest.mark.parametrize("break_it,match", [
    (lambda p: (p / MANIFEST).unlink(), "not an index"),
    (lambda p: (p / MANIFEST).write_text("{not json"), "unreadable manifest"),
    (lambda p: _array_file(p, "postings_docs").unlink(), "postings_docs.npy is missing"),
    (lambda p: _set_manifest(p, format_version=99), "format version 99"),
    (lambda p: _set_manifest(p, format="other"), "not an index of this tool"),
    (lambda p: _truncate(_array_file(p, "doc_lengths")), "doc_lengths.npy"),
])
def test_damaged_index_gives_one_line_error(tmp_path, break_it, match):
    Index.build(DOCS).save(tmp_path / "x.idx")
    break_it(tmp_path / "x.idx")
    with pytest.raises(IndexFormatError, match=match) as err:
        Index.open(tmp_path / "x.idx")
    assert "\n" not in str(err.value)


def _set_manifest(path, **changes):
    m = json.loads((path / MANIFEST).read_text())
    m.update(changes)
    (path / MANIFEST).write_text(json.dumps(m))


def _array_file(path, name):
    """An array's file in the index's current generation folder."""
    generation = json.loads((path / MANIFEST).read_text())["generation_dir"]
    return path / generation / f"{name}.npy"


def _truncate(file):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 8])


def test_open_missing_and_non_index(tmp_path):
    with pytest.raises(IndexFormatError, match="no such index"):
        Index.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexFormatError, match="not an index"):
        Index.open(tmp_path / "plain")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(IndexFormatError, match="is a folder"):
        Index.open(tmp_path / "file.txt")


def test_save_refuses_to_clobber(tmp_path):
    Index.build(DOCS).save(tmp_path / "x.idx")
    with pytest.raises(InputError, match="already holds an index"):
        Index.build(DOCS[:1]).save(tmp_path / "x.idx")
    Index.build(DOCS[:1]).save(tmp_path / "x.idx", overwrite=True)
    assert Index.open(tmp_path / "x.idx").num_docs == 1
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("precious")
    with pytest.raises(InputError, match="not an index"):
        Index.build(DOCS).save(tmp_path / "data", overwrite=True)
    assert (tmp_path / "data" / "keep.txt").read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


_BUILD_SCRIPT = """
import sys
from retrieval import Index
words = [f"w{i}" for i in range(3000)]
docs = ((f"d{i}", " ".join(words[(i * 7 + j * 13) % 3000] for j in range(200)))
        for i in range(int(sys.argv[2])))
Index.build(docs).save(sys.argv[1])
"""


@pytest.mark.slow
def test_killed_build_leaves_no_partial_index(tmp_path):
    """SIGKILL a build at random moments: the target is absent or a complete index."""
    rng = random.Random(int(os.environ.get("RETRIEVAL_KILL_SEED", "7")))
    kills = int(os.environ.get("RETRIEVAL_KILL_POINTS", "6"))
    n_docs = 4000
    script = tmp_path / "build.py"
    script.write_text(_BUILD_SCRIPT)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(tmp_path / "ref.idx"), str(n_docs)],
                   check=True)
    duration = time.perf_counter() - start
    for i in range(kills):
        target = tmp_path / f"k{i}.idx"
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(n_docs)])
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if target.exists():
            assert Index.open(target).num_docs == n_docs
        # the next writer cleans up what the killed one left behind
        Index.build([("a", "x")]).save(tmp_path / f"k{i}.idx", overwrite=True)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".k{i}.idx")]
        assert leftovers == []


def test_postings_and_forward_rows_are_sorted_and_merged():
    """Stemming maps several tokens to one term: counts merge; ids ascend within rows."""
    index = Index.build([("a", "moves moving moved move the glacier"), ("b", "glacier glaciers"),
                         ("c", "the of and")])
    a = index.arrays
    for ptr, ids in (("postings_indptr", "postings_docs"), ("forward_indptr", "forward_terms")):
        p, v = np.asarray(a[ptr]), np.asarray(a[ids])
        for s, e in zip(p[:-1], p[1:]):
            assert np.all(np.diff(v[s:e]) > 0)
    terms, counts = index.document_vector(0)
    got = dict(zip(index.vocabulary.many(terms), counts.tolist()))
    assert got == {"move": 4, "glacier": 1}
    assert index.arrays["doc_lengths"].tolist() == [5, 2, 0]


# -- the chunked build path (ASCII bytes tokenizer, one numpy.unique per chunk) -------------

_TEXT = st.text(alphabet=st.sampled_from(list("abcAB01 _-'.,\nthe of éÉ\u0301ǅßΣς\t")),
                max_size=40)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(_TEXT, max_size=12))
def test_chunked_build_equals_one_by_one(texts):
    """add_documents (chunks: ASCII texts tokenised as bytes, counted with numpy.unique)
    builds exactly the index that add() per document builds (str tokens, Counter)."""
    from retrieval.builder import IndexBuilder
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    for analyzer in (Analyzer("none", "none"), Analyzer("smart", "snowball")):
        one = IndexBuilder(analyzer, store_text=True)
        for docid, text in docs:
            one.add(docid, text)
        chunked = IndexBuilder(analyzer, store_text=True)
        chunked.add_documents(docs)
        a, b = one.finish(), chunked.finish()
        assert a.manifest["counts"] == b.manifest["counts"]
        for name in a.arrays:
            assert np.array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name])), name
        for i, text in enumerate(texts):  # the regex tokenizer (str) is the reference
            terms, counts = b.document_vector(i)
            got = {b.vocabulary[int(t)]: int(c) for t, c in zip(terms, counts)}
            assert got == dict(Counter(analyzer.analyze(text)))


# -- the vectorised ASCII path (retrieval.index.bytetokens) -----------------------------------

_WORD = st.text(alphabet=st.sampled_from(list("abcxyzAZ09")), min_size=1, max_size=24)
_ASCII_DOC = st.lists(st.one_of(_WORD, st.sampled_from([" ", "  ", "-", "'", "\n", "!",
                                                        "\x00", "\x7f", "_"])),
                      max_size=30).map("".join)


def _build_both(docs, analyzer):
    from retrieval.index import IndexBuilder
    one = IndexBuilder(analyzer, store_text=False)
    for docid, text in docs:
        one.add(docid, text)
    chunked = IndexBuilder(analyzer, store_text=False)
    chunked.add_documents(docs)
    return one.finish(), chunked.finish()


def _assert_same_index(a, b):
    assert a.manifest["counts"] == b.manifest["counts"]
    for name in a.arrays:
        assert np.array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name])), name


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(st.lists(_ASCII_DOC, max_size=15), st.integers(1, 5))
def test_vectorised_ascii_chunks_equal_one_by_one(texts, chunk):
    """ASCII chunks tokenised by numpy arrays (words of tokens up to 16 bytes, longer
    ones sliced, a memo of sorted keys across chunks) build the index add() builds;
    tokens of exactly 8, 9, 16 and 17 bytes, zero bytes and empty texts included."""
    from retrieval.index import counting
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    docs += [("e8", "abcdefgh abcdefghi"), ("e16", "abcdefghijklmnop abcdefghijklmnopq"),
             ("e0", ""), ("rep", "abcdefgh abcdefgh abcdefghijklmnopq abcdefghijklmnopq")]
    saved = counting.CHUNK_DOCS
    counting.CHUNK_DOCS = chunk      # several chunks: the memo carries across them
    try:
        for analyzer in (Analyzer("none", "none"), Analyzer("lucene", "porter")):
            a, b = _build_both(docs, analyzer)
            _assert_same_index(a, b)
    finally:
        counting.CHUNK_DOCS = saved


def test_vectorised_ascii_key_collisions_fall_back(monkeypatch):
    """With keys that collide on purpose (the second word ignored), tokens that differ
    only after their 8th byte are never merged: the chunk takes the per-token path."""
    from retrieval.index import bytetokens as BT
    monkeypatch.setattr(BT, "K1", np.uint64(0))
    docs = [("a", "abcdefghXX abcdefghYY abcdefgh"), ("b", "abcdefghYY zz"),
            ("c", "abcdefghZZ abcdefghXX"), ("d", "abcdefghQQ")]   # d: against the memo
    memo = BT.ByteTokenMemo()
    assert memo.chunk_terms([t for _, t in docs], lambda t: 0, lambda t: 0) is None
    for chunk in (1, 3):
        from retrieval.index import counting
        monkeypatch.setattr(counting, "CHUNK_DOCS", chunk)
        a, b = _build_both(docs, Analyzer("none", "none"))
        _assert_same_index(a, b)
        assert sorted(b.vocabulary) == ["abcdefgh", "abcdefghqq", "abcdefghxx",
                                        "abcdefghyy", "abcdefghzz", "zz"]


def test_builder_is_spent_after_finish():
    from retrieval.builder import IndexBuilder
    from retrieval.errors import ParameterError
    b = IndexBuilder(Analyzer("none", "none"))
    b.add("a", "x y")
    assert b.finish().num_docs == 1
    for again in (lambda: b.finish(), lambda: b.add("b", "z"),
                  lambda: b.add_documents([("b", "z")])):
        with pytest.raises(ParameterError, match="make a new IndexBuilder"):
            again()


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_pieces_write_the_same_file_as_the_array(tmp_path, dtype):
    """An array written as Pieces (chunks made at write time, empty ones included) is the
    same .npy file, with the same checksums, as the whole array written at once."""
    from retrieval.index import Pieces, write_array
    whole = np.arange(1000, dtype=dtype)
    cuts = [0, 0, 1, 250, 250, 999, 1000]
    pieces = Pieces(dtype, len(whole),
                    lambda: (whole[a:b] for a, b in zip(cuts[:-1], cuts[1:])))
    a = write_array(tmp_path / "a.npy", whole)
    b = write_array(tmp_path / "b.npy", pieces)
    assert a == b
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert np.array_equal(np.load(tmp_path / "b.npy"), whole)
    assert np.array_equal(pieces.materialize(), whole)


def test_pieces_of_the_wrong_length_are_refused(tmp_path):
    from retrieval.index import Pieces, write_array
    short = Pieces(np.int32, 10, lambda: [np.arange(9, dtype=np.int32)])
    with pytest.raises(RuntimeError, match="9 items"):
        write_array(tmp_path / "x.npy", short)
    with pytest.raises(RuntimeError, match="9 items"):
        short.materialize()
