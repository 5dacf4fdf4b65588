"""Damaged indexes: opening reports what is wrong in one line and says to rebuild; the
search/info commands print that line and exit non-zero; ``check`` finds what the cheap
checks on opening cannot (a bit flipped in the middle of a large array file)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval import Analyzer, Index, IndexFormatError
from retrieval.cli import main as cli
from retrieval.index import MANIFEST
from retrieval.index.manifest import sealed
from retrieval.lifecycle import add_documents, check

PLAIN = Analyzer(stopwords="none", stemmer="none")


def corpus(n: int, salt: int = 0) -> list[tuple[str, str]]:
    """``n`` documents over a few hundred words (ids d0000...; texts depend on ``salt``)."""
    return [(f"d{i:04d}", " ".join(f"w{(i * 7 + j * (13 + salt)) % 300}" for j in range(60)))
            for i in range(n)]


@pytest.fixture
def index_path(tmp_path) -> Path:
    path = tmp_path / "x.idx"
    Index.build(corpus(1500), analyzer=PLAIN).save(path)
    return path


def gen_dir(path: Path) -> Path:
    return path / json.loads((path / MANIFEST).read_text())["generation_dir"]


def array_file(path: Path, name: str) -> Path:
    return gen_dir(path) / f"{name}.npy"


# -- each kind of damage --------------------------------------------------------------------

def truncate(path, tmp_path):
    f = array_file(path, "postings_docs")
    f.write_bytes(f.read_bytes()[:-100])
    return "postings_docs.npy has"


def swap_same_size(path, tmp_path):
    a, b = array_file(path, "doc_unique"), array_file(path, "docid_rank")
    assert a.stat().st_size == b.stat().st_size and a.read_bytes() != b.read_bytes()
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    return "does not match its checksum"


def swap_other_size(path, tmp_path):
    a, b = array_file(path, "term_cf"), array_file(path, "doc_lengths")
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    return "truncated or replaced"


def from_other_index(path, tmp_path):
    other = tmp_path / "other.idx"
    Index.build(corpus(1500, salt=1), analyzer=PLAIN).save(other)
    src, dst = array_file(other, "doc_hash"), array_file(path, "doc_hash")
    assert src.stat().st_size == dst.stat().st_size and src.read_bytes() != dst.read_bytes()
    shutil.copyfile(src, dst)
    return "another index or generation"


def from_older_generation(path, tmp_path):
    old = gen_dir(path)
    saved = tmp_path / "old-forward_counts.npy"
    shutil.copyfile(old / "forward_counts.npy", saved)
    # the same number of postings, different counts: "d0000"'s words doubled
    text = dict(corpus(1500))["d0000"]
    add_documents(path, [("d0000", text + " " + text)], replace=True)
    new = array_file(path, "forward_counts")
    assert gen_dir(path) != old and new.stat().st_size == saved.stat().st_size
    shutil.copyfile(saved, new)
    return "another index or generation"


def generation_folder_of_old_generation(path, tmp_path):
    """The manifest points at a generation folder holding another generation."""
    old = gen_dir(path).name
    add_documents(path, [("zzz", "w1 w2")])
    m = json.loads((path / MANIFEST).read_text())
    m["generation_dir"], m["previous_generation_dir"] = old, m["generation_dir"]
    (path / MANIFEST).write_text(json.dumps(sealed(m)))  # a crafted, consistent manifest
    return "holds generation 1, the manifest says 2"


def other_format_version(path, tmp_path):
    m = json.loads((path / MANIFEST).read_text())
    m["format_version"] = 1
    (path / MANIFEST).write_text(json.dumps(m))
    return "index format version 1"


def missing_generation_folder(path, tmp_path):
    shutil.rmtree(gen_dir(path))
    return "generation folder g000001-"


def garbage_manifest(path, tmp_path):
    (path / MANIFEST).write_bytes(b"\x00\xffnot json at all")
    return "unreadable manifest.json"


def manifest_not_an_object(path, tmp_path):
    (path / MANIFEST).write_text("[1, 2, 3]")
    return "not an index of this tool"


def manifest_counts_lie(path, tmp_path):
    m = json.loads((path / MANIFEST).read_text())
    m["counts"]["documents"] += 1
    (path / MANIFEST).write_text(json.dumps(sealed(m)))  # a crafted, consistent manifest
    return "does not fit 1501 documents"


def manifest_edited(path, tmp_path):
    m = json.loads((path / MANIFEST).read_text())
    m["counts"]["tokens"] *= 10
    (path / MANIFEST).write_text(json.dumps(m))
    return "the manifest does not match its own checksum"


def missing_array_file(path, tmp_path):
    array_file(path, "term_df").unlink()
    return "term_df.npy is missing"


DAMAGE = [truncate, swap_same_size, swap_other_size, from_other_index,
          from_older_generation, generation_folder_of_old_generation, other_format_version,
          missing_generation_folder, garbage_manifest, manifest_not_an_object,
          manifest_counts_lie, manifest_edited, missing_array_file]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__ for d in DAMAGE])
def test_open_reports_damage_in_one_line(index_path, tmp_path, damage, capsys):
    expected = damage(index_path, tmp_path)
    with pytest.raises(IndexFormatError) as err:
        Index.open(index_path)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert "rebuild" in message or "build one with 'retrieval index'" in message
    for command in (["search", str(index_path), "w1 w2"], ["info", str(index_path)]):
        capsys.readouterr()
        code = cli(command)
        out, err_text = capsys.readouterr()
        assert code == 2 and out == ""
        assert err_text == f"retrieval {command[0]}: error: {message}\n"
    # check finds it too (exit 1, one line per problem)
    assert check(index_path)
    capsys.readouterr()
    assert cli(["check", str(index_path)]) == 1
    out, _ = capsys.readouterr()
    assert out.strip().splitlines()[-1].endswith("rebuild the index (retrieval index ... --force)")


def test_open_and_check_find_a_bit_flip_the_sample_checksum_misses(index_path, capsys):
    f = array_file(index_path, "postings_docs")
    size = f.stat().st_size
    assert size > 4 * 64 * 1024  # the sample covers the first and last 64 KiB only
    data = bytearray(f.read_bytes())
    data[size // 2] ^= 0x04
    f.write_bytes(bytes(data))
    # opening verifies the full checksum of a file not verified in this state before
    with pytest.raises(IndexFormatError, match="postings_docs.npy does not match its "
                                               "checksum.*rebuild the index$"):
        Index.open(index_path)
    problems = check(index_path)
    assert problems == ["postings_docs.npy: checksum mismatch (the file changed on disk)"]
    assert cli(["check", str(index_path)]) == 1
    out = capsys.readouterr().out
    assert "postings_docs.npy: checksum mismatch" in out and "1 problem found" in out


def test_check_finds_inconsistent_arrays_with_valid_checksums(index_path):
    """Arrays rewritten consistently with the manifest but not with each other."""
    import numpy as np

    from retrieval.index import write_array
    f = array_file(index_path, "doc_lengths")
    lengths = np.load(f)
    lengths[3] += 1
    described = write_array(f, lengths)
    m = json.loads((index_path / MANIFEST).read_text())
    m["arrays"]["doc_lengths"] = described
    (index_path / MANIFEST).write_text(json.dumps(sealed(m)))
    with pytest.raises(IndexFormatError, match="token count 90000 is not the sum of the "
                                               "document lengths"):
        Index.open(index_path)
    problems = check(index_path)
    assert "doc_lengths: not the sums of the documents' counts" in problems
    assert any(p.startswith("counts: |C|") for p in problems)


def test_sound_index_checks_ok(index_path, capsys):
    assert check(index_path) == []
    assert cli(["check", str(index_path)]) == 0
    assert capsys.readouterr().out == "ok\n"
