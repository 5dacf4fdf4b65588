"""Issue 14, the index side: damaged arrays give one line (never a crash or a wrong
answer), writers refuse damaged input, the manifest's own checksum and schema, files of
the index opened without following links and never blocking, cleanup after a failed
writer, and ``jobs`` clamped by the builder."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval import Analyzer, Index, IndexFormatError
from retrieval.cli import main as cli
from retrieval.index import MANIFEST, integrity, storage, write_array
from retrieval.index import counting
from retrieval.index.builder import IndexBuilder
from retrieval.index.manifest import sealed
from retrieval.lifecycle import add_documents, check, delete_documents

REPO = Path(__file__).resolve().parent.parent
PLAIN = Analyzer(stopwords="none", stemmer="none")


def corpus(n: int) -> list[tuple[str, str]]:
    return [(f"d{i:04d}", " ".join(f"w{(i * 7 + j * 13) % 300}" for j in range(60)))
            for i in range(n)]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Verified stamps in a cache of this test's own."""
    monkeypatch.setenv("RETRIEVAL_CACHE", str(tmp_path / "cache"))
    integrity.forget_stamps()
    yield
    integrity.forget_stamps()


def forget_all_stamps(tmp_path) -> None:
    import shutil
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    integrity.forget_stamps()


@pytest.fixture
def idx(tmp_path) -> Path:
    path = tmp_path / "x.idx"
    Index.build(corpus(1500), analyzer=PLAIN).save(path)
    return path


def manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text())


def gen(path: Path) -> Path:
    return path / manifest(path)["generation_dir"]


def one_line(capsys, command: str) -> str:
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"retrieval {command}: error: "), err
    return lines[0]


def rewrite(path: Path, name: str, arr: np.ndarray, counts: dict | None = None) -> None:
    """Replace an array and record its checksums in a re-sealed manifest: a crafted
    index whose checksums all match, so only the bounds checks can catch it."""
    m = manifest(path)
    m["arrays"][name] = write_array(gen(path) / f"{name}.npy", arr)
    if counts:
        m["counts"].update(counts)
    (path / MANIFEST).write_text(json.dumps(sealed(m)))


def env():
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run(args, timeout=60, **kw):
    return subprocess.run([sys.executable, "-m", "retrieval", *args], capture_output=True,
                          text=True, env=env(), timeout=timeout, **kw)


# -- item 1: bounds and checksums at open ----------------------------------------------------

@pytest.mark.parametrize("value", [2**31 - 1, -1, 1500])
def test_postings_doc_out_of_range_is_one_line_not_a_segfault(idx, capsys, value):
    docs = np.load(gen(idx) / "postings_docs.npy")
    docs[len(docs) // 2] = value
    rewrite(idx, "postings_docs", docs)
    with pytest.raises(IndexFormatError, match=r"postings_docs.npy holds values outside "
                                               r"\[0, 1500\).*rebuild the index$"):
        Index.open(idx)
    for args in (["search", str(idx), "w5", "-k", "1000"],
                 ["search", str(idx), "w5", "--model", "jm"]):
        assert cli(args) == 2
        assert "damaged" in one_line(capsys, "search")


@pytest.mark.parametrize("name, change", [
    ("postings_indptr", lambda a: a.__setitem__(len(a) // 2, a[len(a) // 2 + 1] + 1)),
    ("forward_terms", lambda a: a.__setitem__(len(a) // 2, 10**6)),
    ("docid_offsets", lambda a: a.__setitem__(len(a) // 2, 10**9)),
    ("docid_rank", lambda a: a.__setitem__(0, a[1])),
])
def test_crafted_inconsistent_arrays_are_refused_at_open(idx, name, change):
    arr = np.load(gen(idx) / f"{name}.npy")
    change(arr)
    rewrite(idx, name, arr)
    with pytest.raises(IndexFormatError, match=f"{name}.npy.*rebuild the index$"):
        Index.open(idx)


def test_doc_lengths_changed_consistently_with_the_counts_is_refused(idx):
    lengths = np.load(gen(idx) / "doc_lengths.npy")
    lengths[7] += 5
    rewrite(idx, "doc_lengths", lengths, {"tokens": int(lengths.sum())})
    with pytest.raises(IndexFormatError, match="(postings_counts.npy does not sum to the "
                                               "token count 90005|doc_lengths.npy is not)"):
        Index.open(idx)


@pytest.mark.parametrize("name, needle", [
    ("docid_bytes", "docid_bytes.npy does not match its checksum"),
    ("postings_counts", "postings_counts.npy does not match its checksum"),
    ("doc_lengths", "is not the sum of the document lengths"),
])
def test_in_range_bit_flip_is_refused_never_searched(idx, capsys, name, needle):
    """A flipped low bit in the middle keeps every value plausible (a docid digit, a
    count): the full checksum (or the counts cross-check) sees it; search and info refuse
    instead of answering with it."""
    f = gen(idx) / f"{name}.npy"
    data = bytearray(f.read_bytes())
    data[len(data) // 2 + (len(data) // 2) % 2] ^= 0x01
    f.write_bytes(bytes(data))
    for command in (["search", str(idx), "w5"], ["info", str(idx)]):
        assert cli(command) == 2
        line = one_line(capsys, command[0])
        assert needle in line and line.endswith("rebuild the index"), line


def test_verified_stamp_skips_hashing_until_a_file_changes(idx, monkeypatch, tmp_path):
    calls = []
    real = integrity.file_checksum
    monkeypatch.setattr(integrity, "file_checksum", lambda f: calls.append(f) or real(f))
    monkeypatch.setattr(integrity, "RECENT_NS", 0)
    Index.open(idx)
    assert calls == []  # the writer stamped what it wrote
    forget_all_stamps(tmp_path)
    Index.open(idx)
    assert len(calls) >= 16  # every array hashed once
    calls.clear()
    Index.open(idx)
    assert calls == []  # unchanged since verified: a stat per file only
    integrity.forget_stamps()
    Index.open(idx)
    assert calls == []  # the stamp on disk (cache_dir()/verified) is used too
    f = gen(idx) / "postings_counts.npy"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x02
    f.write_bytes(bytes(data))  # same size; the write changes mtime and ctime
    with pytest.raises(IndexFormatError, match="postings_counts.npy does not match"):
        Index.open(idx)
    assert [p.name for p in calls] == ["postings_counts.npy"]


def test_writers_verify_even_with_a_stamp(idx, monkeypatch):
    calls = []
    real = integrity.file_checksum
    monkeypatch.setattr(integrity, "file_checksum", lambda f: calls.append(f) or real(f))
    delete_documents(idx, ["d0003"])
    assert len(calls) >= 16


def test_a_file_changed_within_the_timestamp_tick_is_not_stamped(idx, tmp_path, monkeypatch):
    """The racy case: a stamp is only made once a file's ctime is RECENT_NS old."""
    forget_all_stamps(tmp_path)
    monkeypatch.setattr(integrity, "RECENT_NS", 60 * 10**9)
    monkeypatch.setattr(integrity, "RECENT_COARSE_NS", 60 * 10**9)
    f = gen(idx) / "doc_unique.npy"
    f.write_bytes(f.read_bytes())  # same bytes, a fresh ctime
    Index.open(idx)
    assert integrity.load_stamps(integrity.stamp_key(gen(idx), manifest(idx))) == {}
    monkeypatch.setattr(integrity, "RECENT_NS", 0)
    monkeypatch.setattr(integrity, "RECENT_COARSE_NS", 0)
    Index.open(idx)
    assert "doc_unique" in integrity.load_stamps(integrity.stamp_key(gen(idx), manifest(idx)))


# -- item 2: writers refuse damaged input ------------------------------------------------------

@pytest.mark.parametrize("command", ["delete", "add"])
def test_writers_refuse_to_launder_damage(idx, tmp_path, capsys, command):
    before = manifest(idx)
    f = gen(idx) / "text_bytes.npy"
    data = bytearray(f.read_bytes())
    data[len(data) // 2:len(data) // 2 + 8] = b"HACKED!!"
    f.write_bytes(bytes(data))
    if command == "delete":
        args = ["delete", str(idx), "d0001"]
    else:
        (tmp_path / "new.txt").write_text("w1 w2 w3")
        args = ["add", str(idx), str(tmp_path / "new.txt")]
    assert cli(args) == 2
    line = one_line(capsys, command)
    assert "text_bytes.npy does not match its checksum" in line
    assert manifest(idx) == before  # nothing published
    assert any("text_bytes.npy: checksum mismatch" in p for p in check(idx))


# -- item 3: the manifest's checksum and counts ------------------------------------------------

@pytest.mark.parametrize("tokens", [0, 1e300, "x10"])
@pytest.mark.parametrize("reseal", [False, True])
def test_manifest_token_count_is_cross_checked(idx, capsys, tokens, reseal):
    m = manifest(idx)
    m["counts"]["tokens"] = m["counts"]["tokens"] * 10 if tokens == "x10" else tokens
    (idx / MANIFEST).write_text(json.dumps(sealed(m) if reseal else m))
    for command in (["search", str(idx), "w5"], ["info", str(idx)]):
        assert cli(command) == 2
        line = one_line(capsys, command[0])
        assert ("own checksum" in line if not reseal else
                ("token count" in line or "counts are malformed" in line)), line
    with pytest.raises(IndexFormatError):
        add_documents(idx, [("new", "w1 w2")])


def test_writers_seal_the_manifest(idx):
    from retrieval.index.manifest import CHECKSUM, manifest_checksum
    delete_documents(idx, ["d0001"])
    m = manifest(idx)
    assert m[CHECKSUM] == manifest_checksum(m)


# -- item 4: links inside the index ----------------------------------------------------------

def test_symlinked_lock_does_not_truncate_a_file_outside(idx, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (idx / "lock").unlink()
    (idx / "lock").symlink_to(victim)
    before = manifest(idx)
    assert cli(["delete", str(idx), "d0001"]) == 2
    assert "lock is a symbolic link" in one_line(capsys, "delete")
    assert victim.read_text() == "precious\n" and manifest(idx) == before


@pytest.mark.parametrize("which", ["manifest", "generation"])
def test_symlinked_metadata_is_refused(idx, tmp_path, capsys, which):
    file = idx / MANIFEST if which == "manifest" else gen(idx) / "generation.json"
    copy = tmp_path / "copy.json"
    copy.write_bytes(file.read_bytes())
    file.unlink()
    file.symlink_to(copy)
    assert cli(["info", str(idx)]) == 2
    assert "symbolic link" in one_line(capsys, "info")


def test_manifest_temporary_file_is_never_written_through_a_link(idx, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (idx / f".{MANIFEST}.tmp-{os.getpid()}").symlink_to(victim)
    delete_documents(idx, ["d0001"])
    assert victim.read_text() == "precious\n"
    assert Index.open(idx).num_docs == 1499


# -- item 6: a failed writer cleans up ---------------------------------------------------------

def leftovers(path: Path) -> list[str]:
    current = manifest(path)
    keep = {MANIFEST, "lock", current["generation_dir"], current["previous_generation_dir"]}
    return sorted(p.name for p in path.iterdir() if p.name not in keep)


def test_file_size_limit_during_add_leaves_the_index_as_it_was(idx, tmp_path):
    """RLIMIT_FSIZE in the child: writing the new generation fails with EFBIG."""
    before = manifest(idx)
    limit = (gen(idx) / "text_bytes.npy").stat().st_size // 2
    (tmp_path / "new.txt").write_text("w1 w2 w3")
    proc = run(["add", str(idx), str(tmp_path / "new.txt")],
               preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "[EFBIG]" in lines[0] and "the index is unchanged" in lines[0], lines[0]
    assert "ulimit -f" in lines[0]
    assert manifest(idx) == before and leftovers(idx) == []
    assert check(idx) == []
    proc = run(["add", str(idx), str(tmp_path / "new.txt")])  # no limit: it succeeds
    assert proc.returncode == 0, proc.stderr
    assert Index.open(idx).num_docs == 1501


def test_disk_full_at_the_manifest_removes_the_new_generation(idx, monkeypatch, capsys):
    before = manifest(idx)
    real = storage._write_json

    def full(file, obj):
        if file.name.startswith(f".{MANIFEST}.tmp-"):
            file.write_text("{")  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        real(file, obj)

    monkeypatch.setattr(storage, "_write_json", full)
    assert cli(["delete", str(idx), "d0001"]) == 2
    line = one_line(capsys, "delete")
    assert "[ENOSPC]" in line and "free some space" in line and "unchanged" in line
    assert manifest(idx) == before and leftovers(idx) == []
    monkeypatch.setattr(storage, "_write_json", real)
    assert cli(["delete", str(idx), "d0001", "--format", "json"]) == 0


def test_next_writer_removes_dead_writers_leftovers(idx):
    (idx / "g000009-deadbeef").mkdir()
    (idx / "g000009-deadbeef" / "postings_docs.npy").write_bytes(b"x" * 1000)
    (idx / ".tmp-g000010-cafecafe").mkdir()
    (idx / f".{MANIFEST}.tmp-999999").write_text("{")
    delete_documents(idx, ["d0001"])
    assert leftovers(idx) == []


# -- items 9, 10, 11: metadata that is not a file, too deep, or malformed ------------------------

@pytest.mark.parametrize("which", ["manifest", "generation"])
@pytest.mark.parametrize("command", ["search", "info", "check", "add"])
def test_a_fifo_in_place_of_metadata_never_hangs(idx, tmp_path, which, command):
    file = idx / MANIFEST if which == "manifest" else gen(idx) / "generation.json"
    file.unlink()
    os.mkfifo(file)
    (tmp_path / "new.txt").write_text("w1")
    args = {"search": ["search", str(idx), "w1"], "info": ["info", str(idx)],
            "check": ["check", str(idx)], "add": ["add", str(idx), str(tmp_path / "new.txt")]}
    proc = run(args[command], timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    err = proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines()
    assert any("not a regular file" in line for line in err), proc.stderr + proc.stdout


@pytest.mark.parametrize("which", ["manifest", "generation"])
def test_deep_json_is_one_line(idx, capsys, which):
    file = idx / MANIFEST if which == "manifest" else gen(idx) / "generation.json"
    file.write_text("[" * 100_000)
    for command in (["search", str(idx), "w1"], ["info", str(idx)]):
        assert cli(command) == 2
        assert "nested" in one_line(capsys, command[0])


@pytest.mark.parametrize("key, value, needle", [
    ("arrays", {"postings_docs": 5}, "arrays.postings_docs is malformed"),
    ("source_groups", [[1, 2]], "source_groups is not a list of lists of paths"),
    ("estimates", "oops", "estimates is not an object"),
    ("read_stats", [1], "read_stats is not an object"),
    ("generation", "2", "generation is not a whole number"),
    ("store_text", "yes", "store_text is not true or false"),
    ("previous_generation_dir", "../../etc", "previous_generation_dir"),
])
@pytest.mark.parametrize("reseal", [False, True])
def test_malformed_manifest_values_are_one_line(idx, capsys, tmp_path, key, value, needle,
                                                reseal):
    m = manifest(idx)
    m[key] = value
    (idx / MANIFEST).write_text(json.dumps(sealed(m) if reseal else m))
    (tmp_path / "new.txt").write_text("w1")
    for args in (["search", str(idx), "w1", "--mu", "auto"], ["info", str(idx)],
                 ["add", str(idx), str(tmp_path / "new.txt")], ["update", str(idx)]):
        assert cli(args) == 2, args
        line = one_line(capsys, args[0])
        assert (needle if reseal else "own checksum") in line, line
    assert cli(["check", str(idx)]) == 1
    out = capsys.readouterr().out
    assert (needle if reseal else "own checksum") in out


# -- item 12: the builder clamps jobs -----------------------------------------------------------

def test_builder_clamps_jobs_to_the_chunks(monkeypatch):
    monkeypatch.setattr(counting, "CHUNK_DOCS", 100)
    b = IndexBuilder(analyzer=PLAIN)
    b.add_documents(corpus(150), jobs=100_000)  # two chunks
    assert b.jobs_used_ <= 2
    serial = Index.build(corpus(150), analyzer=PLAIN)
    assert np.array_equal(b.finish().arrays["postings_docs"], serial.arrays["postings_docs"])
    b = IndexBuilder(analyzer=PLAIN)
    b.add_documents(corpus(50), jobs=32)
    assert b.jobs_used_ == 1
