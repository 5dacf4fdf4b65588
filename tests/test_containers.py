"""Compressed files and PDFs: read as the text inside, failures skipped with a counted
reason (never a stop), decompression capped, `update` through the CLI; and the two HTML
parsers giving the same visible text."""

from __future__ import annotations

import bz2
import glob
import gzip
import json
import lzma
import os
import sys
import time

import pytest

from retrieval import containers
from retrieval.cli import main as cli_main
from retrieval.reading import FolderReader, html_to_text

zstandard = pytest.importorskip("zstandard")


def _pdf(path, text: bytes | None = b"wombat glacier", password=None):
    pytest.importorskip("pypdf")
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
    w = PdfWriter()
    page = w.add_blank_page(200, 200)
    if text is not None:
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                 NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica")})
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        stream = DecodedStreamObject()
        stream.set_data(b"BT /F1 12 Tf 20 100 Td (" + text + b") Tj ET")
        page.replace_contents(stream)
    if password is not None:
        w.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as fh:
        w.write(fh)


def _read(path, **kw):
    reader = FolderReader([path], **kw)
    return {d.docid: d.text for d in reader}, reader


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "plain.txt").write_text("plain text about otters")
    (d / "a.txt.gz").write_bytes(gzip.compress("gzip otter notes".encode()))
    (d / "changelog.Debian.gz").write_bytes(gzip.compress(b"bash programmable completion"))
    (d / "b.md.bz2").write_bytes(bz2.compress("# Bzip\nbadger".encode()))
    (d / "c.html.xz").write_bytes(lzma.compress(
        b"<html><head><style>p{}</style></head><body><p>xz</p><p>heron</p></body></html>"))
    (d / "d.txt.zst").write_bytes(zstandard.ZstdCompressor().compress("zstd ünïcode".encode()))
    (d / "e.jsonl.gz").write_bytes(gzip.compress(b'{"id": "rec1", "text": "inside jsonl"}\n'))
    (d / "f.tar.gz").write_bytes(gzip.compress(b"\0" * 100))
    _pdf(d / "paper.pdf")
    return d


def test_compressed_and_pdf_files_are_read_as_the_text_inside(folder):
    docs, reader = _read(folder)
    assert docs["a.txt.gz"] == "gzip otter notes"
    assert docs["changelog.Debian.gz"] == "bash programmable completion"
    assert docs["b.md.bz2"] == "# Bzip\nbadger"
    assert docs["c.html.xz"] == "xz\nheron"          # read as HTML: the style is gone
    assert docs["d.txt.zst"] == "zstd ünïcode"
    assert docs["rec1"] == "inside jsonl"
    assert docs["paper.pdf"] == "wombat glacier"
    assert "f.tar.gz" not in docs
    stats = reader.stats_.as_dict()
    assert stats["compressed"] == {"bz2": 1, "gz": 3, "xz": 1, "zst": 1}
    assert stats["pdf"] == 1
    assert stats["skipped"] == {"binary": 1}


def test_failures_are_skipped_with_their_reason_and_nothing_stops(folder):
    (folder / "trunc.txt.gz").write_bytes(gzip.compress(b"some text " * 1000)[:60])
    (folder / "junk.bz2").write_bytes(b"BZh9 not really")
    _pdf(folder / "secret.pdf", password="pw")
    _pdf(folder / "scan.pdf", text=None)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    docs, reader = _read(folder)
    assert "plain.txt" in docs and "paper.pdf" in docs
    skipped = reader.stats_.skipped
    assert skipped[containers.SKIP_CORRUPT] == 2
    assert skipped[containers.SKIP_PDF_ENCRYPTED] == 1
    assert skipped[containers.SKIP_PDF_NO_TEXT] == 1
    assert skipped[containers.SKIP_PDF_BROKEN] == 1
    reasons = {p.name: r for p, r in reader.skipped_files_}
    assert reasons["trunc.txt.gz"] == containers.SKIP_CORRUPT
    assert reasons["secret.pdf"] == containers.SKIP_PDF_ENCRYPTED


def test_a_pdf_with_an_empty_password_is_read(tmp_path):
    _pdf(tmp_path / "open.pdf", password="")
    assert _read(tmp_path)[0] == {"open.pdf": "wombat glacier"}


@pytest.mark.parametrize("threshold", [None, 1000])
def test_decompression_is_capped(tmp_path, monkeypatch, threshold):
    """A "zip bomb" (2 MiB of text in a few KiB) over the cap is skipped with a clear
    reason, read whole or streamed; under the cap, a streamed file gives its text."""
    monkeypatch.setattr(containers, "DECOMPRESSED_LIMIT", 1 << 20)
    (tmp_path / "bomb.txt.gz").write_bytes(gzip.compress(b"boom " * 400_000))
    (tmp_path / "ok.txt.gz").write_bytes(gzip.compress(b"fine words " * 5000))
    reader = FolderReader([tmp_path], stream_threshold=threshold)
    docs = {d.docid: d.text for d in reader}
    assert set(docs) == {"ok.txt.gz"}
    assert reader.stats_.skipped == {containers.SKIP_TOO_LARGE: 1}
    text = docs["ok.txt.gz"]
    if threshold is not None:
        text = "".join(text.chunks())     # streamed: decompressed again, piece by piece
    assert text == "fine words " * 5000


def test_zst_without_zstandard_is_a_counted_skip(tmp_path, monkeypatch):
    (tmp_path / "d.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(b"zzz"))
    (tmp_path / "e.txt").write_text("eee")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    docs, reader = _read(tmp_path)
    assert docs == {"e.txt": "eee"}
    assert reader.stats_.skipped == {containers.SKIP_NO_ZSTD: 1}


def _cli(*args, capsys=None):
    code = cli_main(list(args))
    return code


def test_index_summary_and_update_through_the_cli(folder, tmp_path, capsys):
    out = tmp_path / "x.idx"
    assert cli_main(["index", str(folder), "-o", str(out), "-q", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["compressed"] == {"bz2": 1, "gz": 3, "xz": 1, "zst": 1}
    assert summary["pdf"] == 1 and summary["skipped"] == {"binary": 1}
    assert cli_main(["search", str(out), "programmable completion", "--format", "json",
                     "-k", "1"]) == 0
    hits = json.loads(capsys.readouterr().out)
    first = hits["results"][0] if isinstance(hits, dict) else hits[0]
    assert first["docid"] == "changelog.Debian.gz"
    # change a .gz, add a PDF, remove a .bz2; mtimes older than the racy window
    (folder / "a.txt.gz").write_bytes(gzip.compress(b"gzip wolverine notes"))
    _pdf(folder / "new.pdf", text=b"platypus")
    (folder / "b.md.bz2").unlink()
    old = time.time() - 10
    for f in folder.iterdir():
        os.utime(f, (old, old))
    assert cli_main(["update", str(out), "-q", "--format", "json"]) == 0
    change = json.loads(capsys.readouterr().out)
    assert (change["added"], change["replaced"], change["deleted"]) == (1, 1, 1)
    for query, want in (("wolverine", "a.txt.gz"), ("platypus", "new.pdf")):
        assert cli_main(["search", str(out), query, "--format", "trec", "-k", "1"]) == 0
        assert capsys.readouterr().out.split()[2] == want
    assert cli_main(["update", str(out), "-q", "--format", "json"]) == 0
    change = json.loads(capsys.readouterr().out)
    assert (change["added"], change["replaced"], change["deleted"]) == (0, 0, 0)


HTML_SAMPLES = [
    "<p>one</p><p>two</p>",
    "<html><head><title>T &amp; x</title><script>var a = '<p>';</script></head>"
    "<body><h1>Head</h1><p>a<b>b</b>c &eacute;&#233;&nbsp;d</p><br>e<ul><li>x</li>"
    "<li>y</li></ul><table><tr><td>1</td><td>2</td></tr></table><noscript>no</noscript>"
    "<template><p>t</p></template><style>s{}</style>tail</body></html>",
    "<div>word<pre>\nline one\n  line two</pre>after</div>",
    "<!-- comment --><p>not <!-- in --> here</p>",
    "plain text, no tags",
    "",
]


@pytest.mark.parametrize("html", HTML_SAMPLES)
def test_both_html_parsers_give_the_same_text(html):
    pytest.importorskip("selectolax")
    assert html_to_text(html, "selectolax") == html_to_text(html, "stdlib")


def test_both_html_parsers_agree_on_the_manuals_of_this_machine():
    pytest.importorskip("selectolax")
    files = sorted(f for f in glob.glob("/usr/share/doc/**/*.htm*", recursive=True)
                   if f.endswith((".html", ".htm")) and os.path.isfile(f))[:60]
    if not files:
        pytest.skip("no HTML manuals under /usr/share/doc on this machine")
    from retrieval.reading import decode_bytes
    for f in files:
        with open(f, "rb") as fh:
            text, _ = decode_bytes(fh.read())
        assert html_to_text(text, "selectolax") == html_to_text(text, "stdlib"), f


def test_a_streamed_html_page_gives_the_same_tokens_whole_or_in_pieces(tmp_path, monkeypatch):
    pytest.importorskip("selectolax")
    from retrieval import reading
    from retrieval.analysis import tokenize
    page = "<html><body>" + "".join(
        f"<h2>Part {i}</h2><p>Glacier <b>ice</b> &amp; rock {i}</p><script>x{i}</script>"
        f"<table><tr><td>a{i}</td><td>b{i}</td></tr></table>" for i in range(3000)) + "</body></html>"
    (tmp_path / "big.html").write_text(page)
    reader = FolderReader([tmp_path], stream_threshold=1000)
    doc = next(iter(reader))
    whole = "".join(doc.text.chunks())
    monkeypatch.setattr(reading, "HTML_WHOLE_BYTES", 0)   # the stdlib parser, piecewise
    pieces = "".join(doc.text.chunks())
    assert tokenize(whole) == tokenize(pieces) == tokenize(html_to_text(page, "stdlib"))
    assert "x1" not in tokenize(whole)
