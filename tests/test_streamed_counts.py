"""A streamed document (a large file read piece by piece) is counted exactly as if it
had been read whole: same arrays, whatever the pieces."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import Analyzer, IndexBuilder
from retrieval.index import builder as builder_module
from retrieval.index.lifecycle import build_index

TEXTS = {
    "a.txt": "Glaciers carve valleys; the glacier's ice moves. " * 40 + "3.14 snake_case",
    "b.txt": "Die alten Häuser am Fluss. Über die Brücke fahren Autos. ΟΔΟΣ σοφός " * 30,
    "c.txt": "信息检索是从大量文档中找到相关信息的技术。 東京 x検索y 中 " * 25 + "ok",
    "d.txt": "cafe\u0301 nai\u0308ve " * 50 + "wombat",
    "e.md": "# Title here\n\nrunning runners ran " * 20,
}


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in TEXTS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _arrays(index):
    return {name: np.asarray(index.arrays[name]) for name in index.arrays}


def test_streamed_documents_give_the_arrays_of_whole_ones(folder, tmp_path, monkeypatch):
    from retrieval import reading
    whole, _ = build_index([folder], tmp_path / "whole.idx", stream_threshold=None)
    monkeypatch.setattr(reading, "_CHUNK_BYTES", 7)       # many small pieces
    monkeypatch.setattr(builder_module, "_PARTS_BEFORE_SUM", 3)
    streamed, _ = build_index([folder], tmp_path / "streamed.idx", stream_threshold=1)
    a, b = _arrays(whole), _arrays(streamed)
    assert sorted(a) == sorted(b)
    for name in a:
        if name == "doc_file_stat":
            continue
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def test_count_pieces_and_add_counted_equal_add():
    texts = [("x", "Running runners ran to the ranch, running."), ("y", "Häuser 检索 3.14")]
    plain = IndexBuilder(analyzer=Analyzer())
    for docid, text in texts:
        plain.add(docid, text)
    pieced = IndexBuilder(analyzer=Analyzer())
    for docid, text in texts:
        words = text.split(" ")
        pieces = [w + " " for w in words[:-1]] + [words[-1]]
        terms, counts = pieced.count_pieces(pieces)
        assert np.all(np.diff(terms) > 0) and np.all(counts > 0)
        pieced.add_counted(docid, terms, counts, text.encode("utf-8"))
    a, b = _arrays(plain.finish()), _arrays(pieced.finish())
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_add_counted_refuses_a_repeated_id():
    from retrieval import InputError
    b = IndexBuilder()
    terms, counts = b.count_pieces(["a glacier"])
    b.add_counted("x", terms, counts)
    with pytest.raises(InputError, match="appears twice"):
        b.add_counted("x", terms, counts)
