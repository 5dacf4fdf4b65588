"""Reading folders: formats, encodings, skipped files, document ids."""

from __future__ import annotations

import codecs
import os

import pytest

from retrieval import FolderReader, InputError
from retrieval.reading import decode_bytes, html_to_text


def read(*paths):
    reader = FolderReader(paths)
    docs = {d.docid: d.text for d in reader}
    return docs, reader.stats_


def test_folder_docids_are_relative_posix_paths(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.txt").write_text("deep")
    (tmp_path / "top.md").write_text("# Title\n\n*markdown*")
    (tmp_path / "notes.rst").write_text("Heading\n=======\n")
    docs, stats = read(tmp_path)
    assert set(docs) == {"a/b/x.txt", "top.md", "notes.rst"}
    assert stats.documents == 3 and stats.files == 3


def test_html_text_without_tags_scripts_styles(tmp_path):
    (tmp_path / "p.html").write_text(
        "<html><head><title>T</title><style>body{color:red}</style>"
        "<script>alert('x')</script></head><body><p>Fish &amp; chips</p>"
        "<noscript>enable js</noscript></body></html>")
    docs, _ = read(tmp_path)
    text = docs["p.html"]
    assert "Fish & chips" in text and "T" in text
    for gone in ("alert", "color", "enable", "<p>"):
        assert gone not in text


def test_html_to_text_keeps_block_breaks():
    assert html_to_text("<p>one</p><p>two</p>") == "one\ntwo"


def test_jsonl_records(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"id": "x1", "text": "hello"}\n\n{"id": 7, "text": ""}\n')
    docs, stats = read(tmp_path / "d.jsonl")
    assert docs == {"x1": "hello", "7": ""}
    assert stats.empty == 1


@pytest.mark.parametrize("line,match", [
    ("{not json", "not valid JSON"),
    ('{"id": "a"}', 'with "id" and "text"'),
    ('{"id": "", "text": "x"}', '"id" must be'),
    ('{"id": "a", "text": 5}', '"text" must be a string'),
    ('[1, 2]', 'with "id" and "text"'),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, line, match):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(InputError, match=match) as err:
        read(f)
    assert f"{f}:2:" in str(err.value)


def test_duplicate_ids_are_an_error(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(InputError, match="appears twice") as err:
        read(f)
    assert f"{f}:2:" in str(err.value)


def test_binary_files_skipped_and_counted(tmp_path):
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "blob.dat").write_bytes(b"abc\x00def")
    (tmp_path / "ok.txt").write_text("fine")
    docs, stats = read(tmp_path)
    assert set(docs) == {"ok.txt"}
    assert stats.skipped["binary"] == 2


def test_encodings(tmp_path):
    (tmp_path / "latin.txt").write_bytes("café naïve".encode("cp1252"))
    (tmp_path / "utf16.txt").write_bytes(codecs.BOM_UTF16_LE + "über".encode("utf-16-le"))
    (tmp_path / "bom.txt").write_bytes(codecs.BOM_UTF8 + "ok".encode())
    docs, stats = read(tmp_path)
    assert docs["latin.txt"] == "café naïve"
    assert docs["utf16.txt"] == "über"
    assert docs["bom.txt"] == "ok"
    assert stats.fallback_decoded == 1 and stats.utf16 == 1


def test_decode_bytes_undefined_cp1252_bytes_fall_to_latin1():
    text, enc = decode_bytes(b"a\x81b\xe9")
    assert enc == "cp1252" and text == "a\x81bé"


def test_empty_files_are_indexed_and_counted(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("  \n\t ")
    docs, stats = read(tmp_path)
    assert set(docs) == {"empty.txt", "blank.txt"}
    assert stats.empty == 2


def test_hidden_and_linked_folders_skipped(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "loop")           # link to a folder
    os.symlink(tmp_path, tmp_path / "real" / "up")              # a link loop
    os.symlink(tmp_path / "real" / "a.txt", tmp_path / "alias.txt")  # link to a file
    docs, stats = read(tmp_path)
    assert set(docs) == {"real/a.txt", "alias.txt"}
    assert stats.skipped["hidden"] == 2
    assert stats.skipped["link to a folder"] == 2


def test_unreadable_files_skipped(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.txt").write_text("y")
    real = open

    def deny(file, *args, **kwargs):  # the reader opens files by their path string
        if os.path.basename(file) == "b.txt":
            raise PermissionError(13, "Permission denied")
        return real(file, *args, **kwargs)
    monkeypatch.setattr("retrieval.reading.open", deny, raising=False)
    docs, stats = read(tmp_path)
    assert set(docs) == {"a.txt"} and stats.skipped["unreadable"] == 1


def test_several_paths_relative_to_common_parent(tmp_path):
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.txt").write_text(name)
    docs, _ = read(tmp_path / "one", tmp_path / "two")
    assert set(docs) == {"one/x.txt", "two/x.txt"}


def test_single_file_docid_is_its_name(tmp_path):
    (tmp_path / "solo.txt").write_text("x")
    docs, _ = read(tmp_path / "solo.txt")
    assert set(docs) == {"solo.txt"}


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        FolderReader([tmp_path / "nope"])


def test_odd_file_names(tmp_path):
    (tmp_path / "with space.txt").write_text("a")
    (tmp_path / "new\nline.txt").write_text("b")
    docs, _ = read(tmp_path)
    assert set(docs) == {"with space.txt", "new\nline.txt"}


def test_lines_of_pieces_equal_split():
    """JSON Lines read in pieces: the lines are those of the whole text, whatever the
    cuts (a long line is gathered from many pieces)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from retrieval.reading import lines_of_pieces

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet="ab\n", max_size=60), st.lists(st.integers(0, 60), max_size=8))
    def check(text, cuts):
        cuts = sorted(set(c for c in cuts if c <= len(text)))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        assert list(lines_of_pieces(pieces)) == text.split("\n")

    check()


@pytest.mark.parametrize("record,docid,text", [
    ('{"id": "a", "text": "x"}', "a", "x"),
    ('{"id": 3, "contents": "pyserini"}', "3", "pyserini"),
    ('{"_id": "b1", "title": "Title", "text": "body"}', "b1", "Title body"),
    ('{"_id": "b2", "title": "", "text": "body"}', "b2", "body"),
    ('{"docno": "FT-1", "text": "trec"}', "FT-1", "trec"),
    ('{"id": "a", "text": "t", "contents": "c"}', "a", "t"),
])
def test_jsonl_layouts(tmp_path, record, docid, text):
    (tmp_path / "d.jsonl").write_text(record + "\n")
    docs, _ = read(tmp_path / "d.jsonl")
    assert docs == {docid: text}


@pytest.mark.parametrize("record,match", [
    ('{"title": "t", "text": "x"}', r"no id key \(id, _id or docno\) \(its keys: title, text\)"),
    ('{"_id": "a", "title": "t"}', r"no text key \(text or contents\)"),
    ('{"docno": "a", "text": "x", "title": 5}', '"title" must be a string'),
])
def test_jsonl_record_fitting_no_layout_names_file_and_line(tmp_path, record, match):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "ok", "text": "fine"}\n\n' + record + "\n")
    with pytest.raises(InputError, match=match) as err:
        read(f)
    assert f"{f}:3:" in str(err.value)
