"""Segmented builds in bounded memory give the arrays of one build, bit for bit."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from retrieval import Index, Searcher
from retrieval.errors import InputError, ParameterError
from retrieval.index.layout import CORE_ARRAYS, TEXT_ARRAYS
from retrieval.lifecycle import build_index, check
from retrieval.segmented import (build_index_segmented, build_segmented, parse_memory,
                                 segment_bytes)


def corpus(seed, n=230):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(150)] + ["glacier", "ünïcode"]
    return [(f"id{rng.randint(0, 10**6)}-{i}",
             " ".join(rng.choice(words[:rng.randint(3, 152)]) for _ in range(rng.randint(0, 50))))
            for i in range(n)]


def same_arrays(a: Index, b: Index, names=None):
    names = names or sorted(a.arrays)
    assert sorted(a.arrays) == sorted(b.arrays)
    for name in names:
        x, y = np.asarray(a.arrays[name]), np.asarray(b.arrays[name])
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name


@pytest.mark.parametrize("segment_docs", [pytest.param(1000, marks=pytest.mark.slow), 100,
                                          pytest.param(37, marks=pytest.mark.slow), 1])
def test_segmented_arrays_identical_to_one_build(tmp_path, segment_docs):
    docs = corpus(segment_docs, n=230 if segment_docs > 1 else 25)
    one = Index.build(docs).save(tmp_path / "one")
    seg = build_segmented(docs, tmp_path / "seg", segment_docs=segment_docs)
    a, b = Index.open(one), Index.open(seg)
    same_arrays(a, b, CORE_ARRAYS + TEXT_ARRAYS)
    assert a.manifest["counts"] == b.manifest["counts"]
    qs = ["glacier w1 w2", "w7", "ünïcode w100"]
    assert Searcher(a).batch_search(qs, 20) == Searcher(b).batch_search(qs, 20)
    assert check(seg) == []
    assert [p.name for p in tmp_path.iterdir()] and all(
        ".segments-" not in p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("segment_docs", [7, pytest.param(50, marks=pytest.mark.slow)])
def test_segmented_no_text(tmp_path, segment_docs):
    docs = corpus(3, n=120)
    a = Index.open(Index.build(docs, store_text=False).save(tmp_path / "one"))
    b = Index.open(build_segmented(docs, tmp_path / "seg", segment_docs=segment_docs,
                                   store_text=False))
    assert "text_bytes" not in b.arrays
    same_arrays(a, b, CORE_ARRAYS)
    assert Searcher(a).batch_search(["w3 w9", "glacier"], 30) == \
        Searcher(b).batch_search(["w3 w9", "glacier"], 30)


def write_folder(root, docs):
    root.mkdir()
    (root / "sub").mkdir()
    for i, (docid, text) in enumerate(docs):
        where = root / "sub" if i % 3 else root
        (where / f"f{i:03d}.txt").write_text(f"Title {docid}\n\n{text}\n", encoding="utf-8")
    with open(root / "more.jsonl", "w", encoding="utf-8") as fh:
        for docid, text in docs[:40]:
            fh.write(json.dumps({"id": "j" + docid, "text": text}) + "\n")


@pytest.mark.parametrize("segment_docs,store_text", [
    (3, True), (17, False), pytest.param(64, True, marks=pytest.mark.slow),
    pytest.param(10_000, True, marks=pytest.mark.slow)])
def test_segmented_folder_build_identical_to_build_index(tmp_path, segment_docs, store_text):
    """Every array (fields and lifecycle arrays included) equals the ordinary build's."""
    docs = corpus(segment_docs, n=60 if segment_docs < 10 else 150)
    write_folder(tmp_path / "c", docs)
    a, _ = build_index([tmp_path / "c"], tmp_path / "one", store_text=store_text)
    b, _ = build_index_segmented([tmp_path / "c"], tmp_path / "seg",
                                 segment_docs=segment_docs, store_text=store_text)
    a = Index.open(tmp_path / "one")
    names = [n for n in a.arrays if n != "doc_file_stat"]  # stat times may be "too recent"
    same_arrays(a, b, names)
    for key in ("counts", "analyzer", "store_text", "sources", "source_groups", "fields",
                "read_stats"):
        assert a.manifest.get(key) == b.manifest.get(key), key
    qs = ["glacier w1 w2", "title w7", "ünïcode w100"]
    assert Searcher(a).batch_search(qs, 20) == Searcher(b).batch_search(qs, 20)
    assert check(tmp_path / "seg") == []


@pytest.mark.slow
def test_segmented_chars_limit_and_empty(tmp_path):
    docs = corpus(5, n=80)
    a = Index.open(Index.build(docs).save(tmp_path / "one"))
    from retrieval.segmented import build_from_docs
    from retrieval.index.sources import NewDoc
    b = build_from_docs((NewDoc(d, t) for d, t in docs), tmp_path / "seg",
                        segment_docs=None, segment_bytes=20_000, fields=False)
    same_arrays(a, b, CORE_ARRAYS + TEXT_ARRAYS)
    e = Index.open(build_segmented([], tmp_path / "empty", segment_docs=5))
    assert e.num_docs == 0 and e.num_terms == 0


def test_segmented_errors_leave_nothing(tmp_path):
    with pytest.raises(InputError, match="segment_docs"):
        build_segmented([("a", "b")], tmp_path / "x", segment_docs=0)
    # a repeated id in another segment is found by the merge: nothing is written
    with pytest.raises(InputError, match="'a'"):
        build_segmented([("a", "glacier"), ("b", "ice"), ("a", "river")], tmp_path / "y",
                        segment_docs=2)
    assert list(tmp_path.iterdir()) == []

    def interrupted():
        yield from corpus(1, n=50)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        build_segmented(interrupted(), tmp_path / "z", segment_docs=10)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not an index"):
        build_segmented([("a", "b")], tmp_path / "file", segment_docs=5)


@pytest.mark.slow
def test_segmented_replaces_with_overwrite_and_cleans_stale(tmp_path):
    stale = tmp_path / ".seg.segments-999999999-abc"
    stale.mkdir()
    build_segmented(corpus(1, n=20), tmp_path / "seg", segment_docs=5)
    assert not stale.exists()
    with pytest.raises(InputError, match="already holds"):
        build_segmented(corpus(2, n=20), tmp_path / "seg", segment_docs=5)
    build_segmented(corpus(2, n=20), tmp_path / "seg", segment_docs=5, overwrite=True)
    assert Index.open(tmp_path / "seg").num_docs == 20


def test_memory_sizes():
    assert parse_memory("2GB") == 2 * 2**30
    assert parse_memory("1.5g") == int(1.5 * 2**30)
    assert parse_memory("500 MiB") == 500 * 2**20
    assert parse_memory("4096") == 4096
    with pytest.raises(ParameterError, match="2GB"):
        parse_memory("lots")
    room = segment_bytes(2 * 2**30)
    assert 10**9 < room < 2 * 2**30
    assert segment_bytes(4 * 2**30) > room
    with pytest.raises(ParameterError, match="at least"):
        segment_bytes(10 * 2**20)


def test_cli_memory_and_segment_docs(tmp_path, capsys):
    from retrieval.cli.index import main
    docs = corpus(9, n=40)
    write_folder(tmp_path / "c", docs)
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "one"), "-q"]) == 0
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "seg"), "-q",
                 "--segment-docs", "7"]) == 0
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "mem"), "-q",
                 "--memory", "1GB", "--no-text"]) == 0
    a, b = Index.open(tmp_path / "one"), Index.open(tmp_path / "seg")
    same_arrays(a, b, [n for n in a.arrays if n != "doc_file_stat"])
    assert "text_bytes" not in Index.open(tmp_path / "mem").arrays
    capsys.readouterr()
    for bad, message in ((["--memory", "1MB"], "too small"),
                         (["--memory", "lots"], "2GB"),
                         (["--memory", "1GB", "--segment-docs", "5"], "not both"),
                         (["--segment-docs", "5", "--shards", "2"], "--shards")):
        assert main([str(tmp_path / "c"), "-o", str(tmp_path / "bad"), "-q"] + bad) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("segment_docs", [1, 2, 10])
def test_cli_repeated_id_names_id_file_and_line(tmp_path, capsys, segment_docs):
    """A repeated id in another segment (found by the merge) or in the same segment
    (found by the segment build): one line naming the id, the file and line of the
    repeat and the file of the first, status 2, nothing written; the reader keeps no
    set of ids on this path."""
    from retrieval.cli.index import main
    c = tmp_path / "c"
    c.mkdir()
    one, two = c / "one.jsonl", c / "two.jsonl"
    one.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n'
                   '{"id": "c", "text": "z"}\n')
    two.write_text('{"id": "d", "text": "x"}\n{"id": "a", "text": "w"}\n')
    out = tmp_path / "out"
    expected = (f"{two}:2: document id 'a' appears twice (first in {one}); ids must be "
                f"unique across all indexed paths: rename or remove one")
    assert main([str(c), "-o", str(out), "-q", "--segment-docs", str(segment_docs)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    one.unlink()
    two.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n'
                   '{"id": "a", "text": "z"}\n')
    assert main([str(c), "-o", str(out), "-q", "--segment-docs", str(segment_docs)]) == 2
    err = capsys.readouterr().err
    assert f"{two}:3: document id 'a' appears twice (earlier in this file)" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no index, no segments


def test_cli_repeated_id_plain_build_message_unchanged(tmp_path, capsys):
    from retrieval.cli.index import main
    (tmp_path / "c").mkdir()
    f = tmp_path / "c" / "d.jsonl"
    f.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert capsys.readouterr().err == (f"retrieval index: error: {f}:2: document id 'a' "
                                       f"appears twice; ids must be unique across all "
                                       f"indexed paths\n")
    assert not (tmp_path / "out").exists()


def test_segmented_reader_keeps_no_id_set(tmp_path, monkeypatch):
    """The segmented path reads with ``check_ids=False`` (no O(N) set of ids)."""
    from retrieval.reading import FolderReader
    calls = []
    original = FolderReader.documents_with_sources

    def spy(self, on_file=None, *, check_ids=True):
        calls.append(check_ids)
        return original(self, on_file, check_ids=check_ids)
    monkeypatch.setattr(FolderReader, "documents_with_sources", spy)
    write_folder(tmp_path / "c", corpus(3, n=12))
    index, _ = build_index_segmented([tmp_path / "c"], tmp_path / "seg", segment_docs=5)
    assert calls == [False] and index.num_docs == 24  # 12 files + 12 JSON lines
