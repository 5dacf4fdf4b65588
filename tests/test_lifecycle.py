"""The index lifecycle: add, delete, update, check, the write lock, readers across
generations, the add/delete/update/check commands and the stored ``--mu auto`` estimate.

Incremental changes must give exactly what a fresh build of the resulting documents gives
(vocabulary, per-document counts, cf, |C|, scores) — checked on random change sequences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval import (AbsoluteDiscount, Analyzer, Dirichlet, Index, IndexFormatError,
                       InputError, JelinekMercer, Searcher, TwoStage)
from retrieval import estimation, lifecycle
from retrieval.index import merge, sources
from retrieval.cli import main as cli
from retrieval.index import MANIFEST, IndexBusyError, WriteLock, store_estimate
from retrieval.lifecycle import (add_documents, add_paths, apply_changes, build_index, check,
                                 delete_documents, update)

REPO = Path(__file__).resolve().parent.parent
PLAIN = Analyzer(stopwords="none", stemmer="none")
MODELS = (Dirichlet(mu=7.0), JelinekMercer(lam=0.3), AbsoluteDiscount(delta=0.6),
          TwoStage(mu=5.0, lam=0.2))
WORDS = ("ice", "glacier", "river", "sea", "salt", "flow", "rock", "the")
QUERIES = ("ice glacier", "river sea sea", "salt", "flow rock the ice", "unknownword ice")


# -- helpers ---------------------------------------------------------------------------------

def doc_vectors(index: Index) -> dict[str, dict[str, int]]:
    """Each document's term counts, by docid (independent of document numbering)."""
    out = {}
    for i, docid in enumerate(index.docids.all()):
        terms, counts = index.document_vector(i)
        out[docid] = dict(zip(index.vocabulary.many(terms), counts.tolist()))
    return out


def postings_by_docid(index: Index) -> list[list[tuple[str, int]]]:
    """Each term's postings as (docid, count), checking they ascend by document number."""
    ptr = np.asarray(index.arrays["postings_indptr"])
    docs = np.asarray(index.arrays["postings_docs"])
    counts = np.asarray(index.arrays["postings_counts"])
    out = []
    for t in range(index.num_terms):
        d = docs[ptr[t]:ptr[t + 1]]
        assert np.all(np.diff(d) > 0), "postings must ascend by document number"
        out.append(sorted(zip(index.docids.many(d), counts[ptr[t]:ptr[t + 1]].tolist())))
    return out


def assert_same_index(got: Index, want: Index) -> None:
    """``got`` (changed incrementally) equals ``want`` (built fresh), up to doc numbers."""
    assert got.num_docs == want.num_docs
    assert got.num_tokens == want.num_tokens
    assert got.vocabulary.all() == want.vocabulary.all()
    assert np.array_equal(np.asarray(got.arrays["term_cf"]), np.asarray(want.arrays["term_cf"]))
    assert np.array_equal(np.asarray(got.arrays["term_df"]), np.asarray(want.arrays["term_df"]))
    assert doc_vectors(got) == doc_vectors(want)
    assert sorted(got.docids.all()) == sorted(want.docids.all())
    assert postings_by_docid(got) == postings_by_docid(want)
    for model in MODELS:
        for candidates in ("matching", "all"):
            a = Searcher(got, model, candidates=candidates)
            b = Searcher(want, model, candidates=candidates)
            for q in QUERIES:
                ra, rb = a.search(q, k=1000), b.search(q, k=1000)
                assert [r.docid for r in ra] == [r.docid for r in rb], (model, q)
                np.testing.assert_allclose([r.score for r in ra], [r.score for r in rb],
                                           rtol=0, atol=1e-12)


def run_cli(*args, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# -- random change sequences equal a fresh build ------------------------------------------------

texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=8).map(" ".join)
docids = st.sampled_from([f"d{i}" for i in range(8)])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.tuples(docids, texts), min_size=1, max_size=4,
                                           unique_by=lambda p: p[0]), st.booleans()),
        st.tuples(st.just("delete"), st.lists(docids, min_size=1, max_size=3, unique=True),
                  st.booleans()),
    ),
    min_size=1, max_size=4)


def _apply_model(state: dict[str, str], step) -> bool:
    """Apply a step to the plain dict model; False when the engine must refuse it."""
    kind, items, flag = step
    if kind == "add":
        if not flag and any(d in state for d, _ in items):
            return False
        state.update(items)
    else:
        if not flag and any(d not in state for d in items):
            return False
        for d in items:
            state.pop(d, None)
    return True


@pytest.mark.slow
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(initial=st.lists(st.tuples(docids, texts), max_size=6, unique_by=lambda p: p[0]),
       changes=steps)
def test_random_changes_on_disk_equal_fresh_build(tmp_path_factory, initial, changes):
    path = tmp_path_factory.mktemp("prop") / "x.idx"
    Index.build(initial, analyzer=PLAIN).save(path)
    state = dict(initial)
    for step in changes:
        kind, items, flag = step
        before = Index.open(path).generation
        allowed = _apply_model(state, step)
        if not allowed:
            with pytest.raises(InputError):
                if kind == "add":
                    add_documents(path, items, replace=flag)
                else:
                    delete_documents(path, items, missing_ok=flag)
            assert Index.open(path).generation == before  # nothing was written
            continue
        if kind == "add":
            change = add_documents(path, items, replace=flag)
            assert change.added + change.replaced == len(items)
        else:
            change = delete_documents(path, items, missing_ok=flag)
        assert change.documents == len(state)
    opened = Index.open(path)
    assert check(path) == []
    assert_same_index(opened, Index.build(sorted(state.items()), analyzer=PLAIN))
    # the in-memory merge agrees with the on-disk one
    assert_same_index(apply_changes(opened, add=[("zz", "ice ice rock")], delete=[]),
                      Index.build(sorted(state.items()) + [("zz", "ice ice rock")],
                                  analyzer=PLAIN))


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(initial=st.lists(st.tuples(docids, texts), max_size=8, unique_by=lambda p: p[0]),
       changes=st.lists(steps, min_size=1, max_size=3).map(lambda ls: [s for x in ls for s in x]))
def test_random_changes_in_memory_equal_fresh_build(initial, changes):
    index = Index.build(initial, analyzer=PLAIN)
    state = dict(initial)
    deleted: set[str] = set()
    for step in changes:
        kind, items, flag = step
        if not _apply_model(state, step):
            with pytest.raises(InputError):
                if kind == "add":
                    apply_changes(index, add=items, replace=flag)
                else:
                    apply_changes(index, delete=items, missing_ok=flag)
            continue
        if kind == "add":
            index = apply_changes(index, add=items, replace=flag)
            deleted -= {d for d, _ in items}
        else:
            index = apply_changes(index, delete=items, missing_ok=True)
            deleted |= set(items)
    assert_same_index(index, Index.build(sorted(state.items()), analyzer=PLAIN))
    found = {r.docid for m in MODELS for q in QUERIES
             for r in Searcher(index, m, candidates="all").search(q, k=1000)}
    assert not found & deleted
    assert found <= set(state)


def test_replace_and_readd_deleted(tmp_path):
    path = tmp_path / "x.idx"
    Index.build([("a", "ice ice"), ("b", "sea"), ("e", "")], analyzer=PLAIN).save(path)
    with pytest.raises(InputError, match="'a' is already in the index.*--replace"):
        add_documents(path, [("a", "rock")])
    change = add_documents(path, [("a", "rock"), ("c", "ice")], replace=True)
    assert (change.added, change.replaced) == (1, 1)
    delete_documents(path, ["a", "e"])
    with pytest.raises(InputError, match="no document 'a'"):
        delete_documents(path, ["a"])
    assert delete_documents(path, ["a"], missing_ok=True).written is False
    add_documents(path, [("a", "salt the")])
    assert_same_index(Index.open(path), Index.build(
        [("a", "salt the"), ("b", "sea"), ("c", "ice")], analyzer=PLAIN))
    # deleting everything leaves a valid, empty index
    delete_documents(path, ["a", "b", "c"])
    empty = Index.open(path)
    assert (empty.num_docs, empty.num_terms, empty.num_tokens) == (0, 0, 0)
    assert check(path) == []
    assert Searcher(empty, Dirichlet(mu=10)).search("ice", k=5) == []


# -- update on folders ------------------------------------------------------------------------

@pytest.fixture
def folder_index(tmp_path):
    docs = tmp_path / "docs"
    write_files(docs, {"a.txt": "ice glacier", "b.txt": "river sea", "sub/c.txt": "salt rock",
                       "sub/d.txt": "flow flow", "e.txt": ""})
    path = tmp_path / "x.idx"
    build_index([docs], path, analyzer=PLAIN)
    return docs, path


def _spy_analysed(monkeypatch) -> list[str]:
    """Record the ids of the documents handed to the analyser."""
    seen: list[str] = []
    original = sources.build_part

    def spy(docs, *args, **kwargs):
        docs = list(docs)
        seen.extend(d.docid for d in docs)
        return original(docs, *args, **kwargs)

    monkeypatch.setattr(sources, "build_part", spy)
    return seen


def test_update_new_changed_removed_files(folder_index, monkeypatch):
    docs, path = folder_index
    (docs / "b.txt").write_text("river river delta", encoding="utf-8")   # changed
    (docs / "sub" / "c.txt").unlink()                                     # removed
    write_files(docs, {"sub/new.txt": "glacier sea"})                      # new
    os.utime(docs / "a.txt")  # touched, same content: not re-analysed
    analysed = _spy_analysed(monkeypatch)
    change = update(path)
    assert sorted(analysed) == ["b.txt", "sub/new.txt"]
    assert (change.added, change.replaced, change.deleted, change.unchanged) == (1, 1, 1, 3)
    assert change.written and change.documents == 5
    assert check(path) == []
    fresh = tmp_index(docs, path.parent / "fresh.idx")
    assert_same_index(Index.open(path), fresh)
    # nothing changed since: nothing analysed, nothing written
    analysed.clear()
    generation = Index.open(path).generation
    again = update(path)
    assert analysed == [] and not again.written and again.unchanged == 5
    assert Index.open(path).generation == generation


def test_update_skips_files_with_unchanged_size_and_mtime(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    write_files(docs, {"a.txt": "ice glacier", "b.txt": "river sea", "sub/c.txt": "salt rock",
                       "d.jsonl": '{"id": "j1", "text": "sea ice"}\n'})
    past = time.time() - 100
    for f in docs.rglob("*"):
        os.utime(f, (past, past))
    path = tmp_path / "x.idx"
    build_index([docs], path, analyzer=PLAIN)
    stats = np.asarray(Index.open(path).arrays["doc_file_stat"])
    assert (stats[:, 0] >= 0).all()  # old enough to be trusted
    read: list[str] = []
    original = lifecycle.FolderReader._read

    def spy(self, source, stats):
        read.append(source.path.name)
        return original(self, source, stats)

    monkeypatch.setattr(lifecycle.FolderReader, "_read", spy)
    (docs / "b.txt").write_text("river river delta", encoding="utf-8")
    os.utime(docs / "b.txt", (past + 50, past + 50))
    write_files(docs, {"new.txt": "fresh glacier"})  # new, and too recent to be trusted
    change = update(path)
    # JSON Lines files are always re-read (a record deleted by hand must come back)
    assert sorted(read) == ["b.txt", "d.jsonl", "new.txt"]
    assert (change.added, change.replaced, change.deleted, change.unchanged) == (1, 1, 0, 3)
    assert_same_index(Index.open(path), tmp_index(docs, tmp_path / "fresh.idx"))
    stats = np.asarray(Index.open(path).arrays["doc_file_stat"])
    ids = Index.open(path).docids.all()
    assert stats[ids.index("new.txt")].tolist() == [-1, -1]  # racy: re-read next time
    b = os.stat(docs / "b.txt")
    assert stats[ids.index("b.txt")].tolist() == [b.st_size, b.st_mtime_ns]
    read.clear()
    assert update(path).written is False
    assert sorted(read) == ["d.jsonl", "new.txt"]


def test_update_skips_unchanged_files_with_non_ascii_names(tmp_path, monkeypatch):
    """Recorded files are matched with the listed ones as strings: non-ASCII names and
    names that are not UTF-8 (``os.fsdecode``'s surrogate escapes) are found too."""
    docs = tmp_path / "docs"
    write_files(docs, {"é.txt": "ice glacier", "plain.txt": "river sea"})
    (docs / "sub").mkdir()
    with open(os.fsencode(docs / "sub") + b"/bad\xff.txt", "wb") as fh:
        fh.write(b"salt rock")
    past = time.time() - 100
    for f in os.listdir(os.fsencode(docs)) + [b"sub/bad\xff.txt"]:
        os.utime(os.path.join(os.fsencode(docs), f), (past, past))
    path = tmp_path / "x.idx"
    build_index([docs], path, analyzer=PLAIN)
    read: list[str] = []
    original = lifecycle.FolderReader._read

    def spy(self, source, stats):
        read.append(source.file)
        return original(self, source, stats)

    monkeypatch.setattr(lifecycle.FolderReader, "_read", spy)
    change = update(path, dry_run=True)
    assert read == [] and change.unchanged == 3
    (docs / "é.txt").write_text("ice glacier melt", encoding="utf-8")
    change = update(path)
    assert [os.path.basename(f) for f in read] == ["é.txt"]
    assert (change.replaced, change.unchanged) == (1, 2)


def tmp_index(docs: Path, where: Path) -> Index:
    build_index([docs], where, analyzer=PLAIN)
    return Index.open(where)


def test_update_dry_run_writes_nothing(folder_index):
    docs, path = folder_index
    (docs / "a.txt").write_text("changed text", encoding="utf-8")
    (docs / "e.txt").unlink()
    def files():  # the lock file records each writer's pid: not index content
        return {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.name != "lock"}

    files_before = files()
    manifest_before = (path / MANIFEST).read_bytes()
    change = update(path, dry_run=True)
    assert (change.replaced, change.deleted, change.written) == (1, 1, False)
    assert (path / MANIFEST).read_bytes() == manifest_before
    assert files() == files_before


def test_update_missing_source_needs_forget_missing(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    write_files(one, {"a.txt": "ice"})
    write_files(two, {"b.txt": "sea", "c.txt": "rock"})
    path = tmp_path / "x.idx"
    build_index([one], path, analyzer=PLAIN)
    add_paths(path, [two])
    assert sorted(Index.open(path).docids.all()) == ["a.txt", "b.txt", "c.txt"]
    for f in two.iterdir():
        f.unlink()
    two.rmdir()
    with pytest.raises(InputError, match="two: this indexed source is gone.*--forget-missing"):
        update(path)
    assert Index.open(path).num_docs == 3
    change = update(path, forget_missing=True)
    assert change.deleted == 2
    assert Index.open(path).docids.all() == ["a.txt"]
    # group numbers stay stable (documents refer to them): the forgotten group is empty
    assert Index.open(path).manifest["source_groups"] == [[str(one.resolve())], []]
    assert Index.open(path).manifest["sources"] == [str(one.resolve())]
    assert update(path).written is False
    assert check(path) == []


def test_add_paths_inside_indexed_folder_gets_rebuild_ids(folder_index):
    docs, path = folder_index
    write_files(docs, {"sub/deeper/f.txt": "rock rock ice"})
    change = add_paths(path, [docs / "sub" / "deeper"])
    assert change.added == 1
    assert "sub/deeper/f.txt" in Index.open(path).docids.all()
    # update afterwards sees nothing new: the id matches what re-reading the folder gives
    assert update(path).written is False
    assert_same_index(Index.open(path), tmp_index(docs, path.parent / "fresh.idx"))


# -- the write lock ------------------------------------------------------------------------------

_HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from retrieval.index import WriteLock
    with WriteLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold_lock(path: Path, seconds: float = 60.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True, env=subprocess_env())
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_gets_one_line_error_with_pid(folder_index, capsys):
    docs, path = folder_index
    extra = path.parent / "extra"
    write_files(extra, {"x.txt": "sea salt"})
    holder = hold_lock(path)
    try:
        code, out, err = run_cli("add", path, extra, "-q", capsys=capsys)
        assert code != 0 and out == ""
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"process {holder.pid}" in err and "try again" in err
        for args in (("delete", path, "a.txt"), ("update", path)):
            code, _, err = run_cli(*args, capsys=capsys)
            assert code != 0 and f"process {holder.pid}" in err
        with pytest.raises(IndexBusyError, match=str(holder.pid)):
            delete_documents(path, ["a.txt"])
        # readers are not blocked
        assert Index.open(path).num_docs == 5
        assert run_cli("check", path, capsys=capsys)[0] == 0
    finally:
        holder.kill()
        holder.wait()
    code, out, err = run_cli("add", path, extra, "-q", capsys=capsys)
    assert code == 0, err
    assert "x.txt" in Index.open(path).docids.all()


# -- readers keep their generation ------------------------------------------------------------

def test_reader_keeps_old_generation_after_it_is_removed(folder_index):
    docs, path = folder_index
    old = Index.open(path)
    old_dir = path / old.manifest["generation_dir"]
    model = Dirichlet(mu=5)
    before = Searcher(old, model).search("ice river salt", k=10)
    add_documents(path, [("n1", "ice ice ice")])
    delete_documents(path, ["a.txt", "b.txt"])
    add_documents(path, [("n2", "salt salt river")])
    assert not old_dir.exists()  # two newer generations: the old folder is gone
    assert Searcher(old, model).search("ice river salt", k=10) == before
    assert {"a.txt", "b.txt"} <= set(old.docids.all())
    new = Index.open(path)
    ids = {r.docid for r in Searcher(new, model).search("ice river salt", k=10)}
    assert {"n1", "n2"} <= ids and not ids & {"a.txt", "b.txt"}
    assert len(list(path.glob("g*"))) == 2  # current and previous generations only


# -- command line ------------------------------------------------------------------------------

def test_cli_add_delete_update_check(folder_index, capsys):
    docs, path = folder_index
    extra = path.parent / "extra"
    write_files(extra, {"x.txt": "sea salt", "y.txt": "flow"})
    code, out, err = run_cli("add", path, extra, "-q", "--format", "json", capsys=capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["added"], summary["documents"], summary["generation"]) == (2, 7, 2)
    code, out, _ = run_cli("add", path, extra / "x.txt", "--replace", "-q", capsys=capsys)
    assert code == 0 and "replaced    1" in out
    ids_file = path.parent / "ids.txt"
    ids_file.write_text("y.txt\r\n\nsub/d.txt\n", encoding="utf-8")
    code, out, _ = run_cli("delete", path, "a.txt", "--from-file", ids_file, capsys=capsys)
    assert code == 0 and "deleted     3" in out and "documents   4" in out
    code, _, err = run_cli("delete", path, "a.txt", capsys=capsys)
    assert code == 2 and "no document 'a.txt'" in err and err.count("\n") == 1
    code, out, _ = run_cli("delete", path, "a.txt", "--missing-ok", capsys=capsys)
    assert code == 0 and "nothing to do" in out
    bad = path.parent / "bad.txt"
    bad.write_bytes(b"b.txt\n\xff\xfe\n")
    code, _, err = run_cli("delete", path, "--from-file", bad, capsys=capsys)
    assert code == 2 and f"{bad}:2: not UTF-8" in err
    code, _, err = run_cli("delete", path, "--from-file", path.parent / "none.txt",
                           capsys=capsys)
    assert code == 2 and "none.txt: no such file" in err
    code, out, _ = run_cli("update", path, "--dry-run", capsys=capsys)
    # deleted documents whose files are still there come back with update
    assert code == 0 and "nothing was written" in out and "added       3" in out
    code, out, _ = run_cli("update", path, "--format", "json", capsys=capsys)
    summary = json.loads(out)
    assert summary["added"] == 3 and summary["written"] and summary["documents"] == 7
    assert run_cli("check", path, capsys=capsys)[:2] == (0, "ok\n")
    code, out, _ = run_cli("check", path, "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)["problems"] == []
    code, _, err = run_cli("check", path.parent / "missing.idx", capsys=capsys)
    assert code == 2 and "no such index" in err
    code, _, err = run_cli("add", path.parent / "missing.idx", extra, capsys=capsys)
    assert code == 2 and "no such index" in err and "Traceback" not in err
    code, _, err = run_cli("update", path.parent / "missing.idx", capsys=capsys)
    assert code == 2 and "no such index" in err


def test_cli_delete_reads_stdin(folder_index, capsys, monkeypatch):
    import io
    docs, path = folder_index
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a.txt\nb.txt\n")))
    code, out, err = run_cli("delete", path, "--from-file", "-", capsys=capsys)
    assert code == 0, err
    assert sorted(Index.open(path).docids.all()) == ["e.txt", "sub/c.txt", "sub/d.txt"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n  \n")))
    code, out, err = run_cli("delete", path, "--from-file", "-", capsys=capsys)
    assert code == 2 and err.endswith("<stdin>: no document ids in the file (one per line); "
                                      "nothing was deleted\n")


def test_cli_update_direct_documents_only(tmp_path, capsys):
    path = tmp_path / "x.idx"
    Index.build([("a", "ice")], analyzer=PLAIN).save(path)
    code, _, err = run_cli("update", path, capsys=capsys)
    assert code == 2 and "records no source folders" in err


# -- --mu auto is stored in the manifest ------------------------------------------------------

@pytest.fixture
def sample_index(tmp_path, sample_dir):
    path = tmp_path / "s.idx"
    build_index([sample_dir / "docs"], path)
    return path


def test_mu_auto_is_stored_and_reused(sample_index, capsys, monkeypatch):
    path = sample_index
    assert "estimates" not in json.loads((path / MANIFEST).read_text())
    code, out, err = run_cli("search", path, "glacier ice", "--mu", "auto", "--format", "json",
                             capsys=capsys)
    assert code == 0, err
    manifest = json.loads((path / MANIFEST).read_text())
    entry = manifest["estimates"]["dirichlet_mu_loo"]
    assert entry["mu"] == pytest.approx(estimation.estimate_mu(Index.open(path)).mu, rel=1e-12)
    assert check(path) == []  # the arrays and their checksums are untouched

    def boom(_index, **_kw):
        raise AssertionError("estimate_mu must not be called: the manifest has it")

    monkeypatch.setattr(estimation, "estimate_mu", boom)
    code, out2, err = run_cli("search", path, "glacier ice", "--mu", "auto", "--format",
                              "json", capsys=capsys)
    assert code == 0, err
    assert out2 == out
    # a change to the index drops the stored estimate (the documents changed)
    monkeypatch.undo()
    add_documents(path, [("new", "glacier glacier ice sheet")])
    assert "estimates" not in Index.open(path).manifest


def test_mu_estimate_store_is_skipped_when_busy_moved_or_unwritable(sample_index,
                                                                    monkeypatch, capsys):
    path = sample_index
    entry = {"mu": 1.0, "iterations": 1, "log_likelihood": -1.0}
    # moved on: the estimate was made on an older generation
    stale = Index.open(path)
    add_documents(path, [("new", "glacier")])
    assert store_estimate(stale, "dirichlet_mu_loo", entry) is False
    assert "estimates" not in json.loads((path / MANIFEST).read_text())
    # in memory: nowhere to store
    assert store_estimate(Index.build([("a", "b c")]), "x", entry) is False
    # busy: a writer holds the lock; the search still works
    holder = hold_lock(path)
    try:
        code, _, err = run_cli("search", path, "glacier", "--mu", "auto", capsys=capsys)
        assert code == 0, err
        assert "estimates" not in json.loads((path / MANIFEST).read_text())
    finally:
        holder.kill()
        holder.wait()

    # unwritable (simulated: the tests may run as root, who can write anywhere)
    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(WriteLock, "__enter__", refuse)
    code, _, err = run_cli("search", path, "glacier", "--mu", "auto", capsys=capsys)
    assert code == 0, err
    assert "estimates" not in json.loads((path / MANIFEST).read_text())
    monkeypatch.undo()
    opened = Index.open(path)
    assert store_estimate(opened, "dirichlet_mu_loo", entry) is True
    assert opened.manifest["estimates"]["dirichlet_mu_loo"] == entry
    assert Index.open(path).manifest["estimates"]["dirichlet_mu_loo"] == entry
    assert check(path) == []


def test_damaged_index_write_is_refused_cleanly(folder_index, capsys):
    docs, path = folder_index
    (path / MANIFEST).write_text("{garbage", encoding="utf-8")
    for args in (("add", path, docs), ("delete", path, "a.txt"), ("update", path)):
        code, out, err = run_cli(*args, capsys=capsys)
        assert code == 2 and "unreadable manifest" in err and "rebuild" in err
        assert err.count("\n") == 1
    with pytest.raises(IndexFormatError):
        add_documents(path, [("z", "ice")])


@pytest.mark.slow
@pytest.mark.parametrize("piece", [1, 2, 3, 7])
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.lists(st.tuples(docids, texts), max_size=8, unique_by=lambda p: p[0]),
       changes=steps)
def test_merge_in_small_pieces_equals_fresh_build(monkeypatch, piece, initial, changes):
    """Rows, text and postings are merged chunk by chunk (blocks of terms for postings);
    with tiny chunks every block boundary case occurs and the result must not change."""
    monkeypatch.setattr(merge, "PIECE", piece)
    index = Index.build(initial, analyzer=PLAIN)
    state = dict(initial)
    for kind, items, _flag in changes:
        if kind == "add":
            index = apply_changes(index, add=items, replace=True)
            state.update(items)
        else:
            index = apply_changes(index, delete=items, missing_ok=True)
            for d in items:
                state.pop(d, None)
    want = Index.build(sorted(state.items()), analyzer=PLAIN)
    assert_same_index(index, want)
    assert [index.text(index.doc_number(d)) for d in sorted(state)] == \
        [want.text(want.doc_number(d)) for d in sorted(state)]
