"""Duplicates: identical texts grouped by doc_hash; collapsed search in the API and CLI."""

from __future__ import annotations

import json

import pytest

from retrieval import Index
from retrieval.cli import main
from retrieval.duplicates import DuplicateGroups, collapsed_search
from retrieval.errors import ParameterError
from retrieval.search import Searcher
from retrieval.search.fields import FieldSearcher

COPY = "copyright notice for the wombat package"


def dup_index() -> Index:
    docs = [("a", "wombat care and feeding"), ("c1", COPY), ("c2", COPY), ("c3", COPY),
            ("c4", COPY), ("b", "wombat burrows"), ("z", "unrelated text")]
    return Index.build(docs)


def test_groups_from_hashes():
    g = DuplicateGroups(dup_index())
    assert [g.copies(i) for i in range(7)] == [0, 3, 3, 3, 3, 0, 0]
    assert g.duplicates(2) == ("c1", "c3", "c4")
    assert g.duplicates(0) == ()
    assert g.duplicate_documents_ == 3


def test_unknown_hashes_never_group(tmp_path):
    ix = Index.build([("a", "same"), ("b", "same")], store_text=False)
    ix.save(tmp_path / "ix")
    g = DuplicateGroups(Index.open(tmp_path / "ix"))
    assert g.copies(0) == g.copies(1) == 0


def test_collapsed_search_keeps_one_per_group():
    ix = dup_index()
    full = Searcher(ix).search("wombat copyright", 10)
    assert [r.docid for r in full][:4] == ["c1", "c2", "c3", "c4"]  # equal scores, docid order
    got = collapsed_search(Searcher(ix), "wombat copyright", k=3)
    assert [(r.rank, r.copies) for r in got] == [(1, 3), (2, 0), (3, 0)]
    assert got[0].docid == "c1" and {r.docid for r in got[1:]} == {"a", "b"}
    assert got[0].duplicates == ("c2", "c3", "c4")
    assert got[0].score == full[0].score
    # exactly the distinct groups of the full ranking, in its order
    distinct, seen = [], set()
    g = DuplicateGroups(ix)
    for r in full:
        key = g.group_[ix.doc_number(r.docid)]
        if key not in seen:
            seen.add(key)
            distinct.append(r.docid)
    assert [r.docid for r in got] == distinct[:3]
    # k = 2 needs a second fetch (four copies lead); fewer groups than k is fine
    assert [r.docid for r in collapsed_search(Searcher(ix), "wombat copyright", k=2)] == \
        distinct[:2]
    assert len(collapsed_search(Searcher(ix), "wombat", k=10)) == 3
    with pytest.raises(ParameterError):
        collapsed_search(Searcher(ix), "wombat", k=0)


def test_collapse_with_field_searcher():
    ix = dup_index()
    got = collapsed_search(FieldSearcher(ix, field_weights={"body": 1}), "copyright", k=5)
    assert [(r.docid, r.copies) for r in got] == [("c1", 3)]


def test_cli_collapse_formats(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("COPYING", "LICENSE", "copyright.txt"):
        (folder / name).write_text(COPY + "\n")
    (folder / "readme.txt").write_text("the wombat package reads burrows\n")
    assert main(["index", str(folder), "-o", str(tmp_path / "ix"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicate_documents"] == 2
    assert main(["search", str(tmp_path / "ix"), "wombat", "copyright", "--collapse",
                 "--no-snippets"]) == 0
    out = capsys.readouterr().out
    assert "COPYING (+2 copies)" in out and "LICENSE" not in out
    assert main(["search", str(tmp_path / "ix"), "wombat", "--collapse", "--format",
                 "json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert res[0]["docid"] == "COPYING" and res[0]["copies"] == 2
    assert res[0]["duplicates"] == ["LICENSE", "copyright.txt"]
    assert [r["copies"] for r in res[1:]] == [0]
    assert main(["search", str(tmp_path / "ix"), "wombat", "--collapse", "--format",
                 "trec"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2:4] for line in lines] == [["COPYING", "1"], ["readme.txt", "2"]]
    code = main(["search", str(tmp_path / "ix"), "wombat", "--collapse", "--feedback", "rm3"])
    assert code == 2 and "do not combine" in capsys.readouterr().err


def test_index_summary_duplicate_count_equals_groups(tmp_path):
    """The CLI's cheap count (sorted hash words) equals DuplicateGroups' count."""
    from retrieval.cli.index import duplicate_count
    assert duplicate_count(dup_index()) == DuplicateGroups(dup_index()).duplicate_documents_
    unknown = Index.build([("a", "same"), ("b", "same"), ("c", "x")], store_text=False)
    assert duplicate_count(unknown) == DuplicateGroups(unknown).duplicate_documents_ == 0
    assert duplicate_count(Index.build([("a", "one")])) == 0
    texts = ["p", "q", "p", "r", "q", "p", "s", "", ""]
    ix = Index.build([(f"d{i}", t) for i, t in enumerate(texts)])
    assert duplicate_count(ix) == DuplicateGroups(ix).duplicate_documents_ == 4
