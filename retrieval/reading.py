"""Reading a folder (or files) of text into documents.

Rules, decided once and applied everywhere:

* **What is read.** Folders are walked recursively in sorted order. Names starting with
  ``.`` (hidden files and folders such as ``.git``) are skipped and counted. Symbolic links
  to files are followed; links to folders are not (so a link loop cannot trap the walk)
  and are counted as skipped.
* **Formats by extension.** ``.html``/``.htm``/``.xhtml``: the text of the page, with tags,
  ``<script>``, ``<style>``, ``<noscript>`` and ``<template>`` removed and entities decoded.
  ``.jsonl``: one document per line, a JSON object with ``"id"`` and ``"text"``
  (``"id"`` may be a string or an integer; other keys are ignored; blank lines are skipped).
  Everything else (``.txt``, ``.md``, ``.rst``, files without extension, …) is read as
  plain text: Markdown and reStructuredText markup is punctuation, which the tokenizer drops.
  Files with a known binary extension (images, archives, PDF, office files, executables)
  and files with a NUL byte in their first 8 KiB are skipped as ``binary``.
* **Encoding.** UTF-8 (a BOM is removed). A UTF-16 BOM selects UTF-16. Otherwise, bytes
  that are not valid UTF-8 are decoded as Windows-1252, or Latin-1 where Windows-1252 has
  no character; such files are indexed and counted as ``decoded with fallback``.
* **Empty files** (no bytes, or only white space) are indexed as empty documents — the
  index lists every file it was given — and counted as ``empty``.
* **Document ids.** One folder given: the path relative to it, with ``/`` separators
  (``geology/glaciers.txt``). One file given: its name. Several paths given: paths relative
  to their common parent folder. JSON Lines records use their ``"id"``. A repeated id is an
  error naming the file (and line).
* **Unreadable files** (permissions, vanished, broken links) are skipped and counted.
"""

from __future__ import annotations

import codecs
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .errors import InputError
from .records import Document

HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
JSONL_EXTENSIONS = frozenset({".jsonl"})
BINARY_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".ico", ".webp", ".svgz",
    ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar",
    ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class", ".pyc", ".whl",
    ".mp3", ".mp4", ".wav", ".flac", ".ogg", ".avi", ".mov", ".mkv", ".webm",
    ".npy", ".npz", ".pkl", ".parquet", ".sqlite", ".db", ".bin", ".woff", ".woff2", ".ttf",
})
_SNIFF_BYTES = 8192

SKIP_BINARY = "binary"
SKIP_HIDDEN = "hidden"
SKIP_UNREADABLE = "unreadable"
SKIP_DIR_LINK = "link to a folder"


@dataclass
class ReadStats:
    """What a read saw. ``skipped`` maps a reason to a number of files."""
    files: int = 0
    documents: int = 0
    empty: int = 0
    fallback_decoded: int = 0
    utf16: int = 0
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "files": self.files, "documents": self.documents, "empty": self.empty,
            "decoded_with_fallback": self.fallback_decoded, "utf16": self.utf16,
            "skipped": dict(sorted(self.skipped.items())),
        }


@dataclass(frozen=True)
class SourceFile:
    path: Path
    docid: str  # for JSON Lines files: a prefix-free marker, ids come from the records


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file contents; return ``(text, encoding)`` following the module's rules."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[3:]
    if raw.startswith(codecs.BOM_UTF16_LE) or raw.startswith(codecs.BOM_UTF16_BE):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _fallback(raw), "cp1252"


def _fallback(raw: bytes) -> str:
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; map each byte through cp1252 or latin-1
        return "".join(_byte_char(b) for b in raw)


def _byte_char(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(b)


def is_binary(raw: bytes) -> bool:
    head = raw[:_SNIFF_BYTES]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in head


class _HTMLText(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template"})
    _BREAK = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4",
                        "h5", "h6", "title", "section", "article", "header", "footer"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML page (tags, scripts and styles removed)."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class FolderReader:
    """Iterate the documents under one or more paths (folders, text files, JSONL files).

    Construction checks that every path exists and lists the files (``files_``); iterating
    reads them and yields :class:`~retrieval.records.Document`. ``stats_`` counts what was
    read and skipped. ``on_file`` (if given) is called once per file, for progress bars.
    """

    def __init__(self, paths: Iterable[str | os.PathLike]):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputError("no path given; name a folder or file to index")
        self.stats_ = ReadStats()
        self.files_ = self._discover()
        self.stats_.files = len(self.files_)

    def _discover(self) -> list[SourceFile]:
        for p in self.paths:
            if not p.exists():
                raise InputError("no such file or folder; check the path", path=p)
        resolved = [p.resolve() for p in self.paths]
        if len(resolved) == 1:
            base = resolved[0] if resolved[0].is_dir() else resolved[0].parent
        else:
            base = Path(os.path.commonpath([str(p.parent) for p in resolved]))
        files: list[SourceFile] = []
        seen: set[Path] = set()
        for given, p in zip(self.paths, resolved):
            if p.is_dir():
                candidates = self._walk(p)
            elif p.is_file():
                candidates = [p]
            else:
                raise InputError("not a regular file or folder", path=given)
            for f in candidates:
                if f in seen:
                    continue
                seen.add(f)
                files.append(SourceFile(f, f.relative_to(base).as_posix()))
        return files

    def _walk(self, root: Path) -> list[Path]:
        out: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False,
                                                    onerror=self._walk_error):
            d = Path(dirpath)
            keep = []
            for name in sorted(dirnames):
                if name.startswith("."):
                    self.stats_.skipped[SKIP_HIDDEN] += 1
                elif (d / name).is_symlink():
                    self.stats_.skipped[SKIP_DIR_LINK] += 1
                else:
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                if name.startswith("."):
                    self.stats_.skipped[SKIP_HIDDEN] += 1
                    continue
                out.append(d / name)
        return out

    def _walk_error(self, exc: OSError) -> None:
        self.stats_.skipped[SKIP_UNREADABLE] += 1

    def __iter__(self) -> Iterator[Document]:
        return self.documents()

    def documents(self, on_file=None) -> Iterator[Document]:
        stats = self.stats_
        seen: set[str] = set()
        for source in self.files_:
            for doc, line in self._read(source, stats):
                if doc.docid in seen:
                    raise InputError(f"document id {doc.docid!r} appears twice; ids must be "
                                     f"unique across all indexed paths",
                                     path=source.path, line=line)
                seen.add(doc.docid)
                yield doc
            if on_file is not None:
                on_file(source)

    def _read(self, source: SourceFile, stats: ReadStats):
        path = source.path
        suffix = path.suffix.lower()
        if suffix in BINARY_EXTENSIONS:
            stats.skipped[SKIP_BINARY] += 1
            return
        try:
            raw = path.read_bytes()
        except OSError:
            stats.skipped[SKIP_UNREADABLE] += 1
            return
        if is_binary(raw):
            stats.skipped[SKIP_BINARY] += 1
            return
        text, encoding = decode_bytes(raw)
        if encoding == "cp1252":
            stats.fallback_decoded += 1
        elif encoding == "utf-16":
            stats.utf16 += 1
        if suffix in JSONL_EXTENSIONS:
            yield from self._read_jsonl(path, text, stats)
            return
        if suffix in HTML_EXTENSIONS:
            text = html_to_text(text)
        if not text.strip():
            stats.empty += 1
        stats.documents += 1
        yield Document(source.docid, text), None

    @staticmethod
    def _read_jsonl(path: Path, text: str, stats: ReadStats):
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg}); each line must be one "
                                 f'object like {{"id": "d1", "text": "..."}}',
                                 path=path, line=lineno) from None
            if not isinstance(record, dict) or "id" not in record or "text" not in record:
                raise InputError('each line must be an object with "id" and "text"',
                                 path=path, line=lineno)
            docid, body = record["id"], record["text"]
            if isinstance(docid, bool) or not isinstance(docid, (str, int)) or docid == "":
                raise InputError('"id" must be a non-empty string or an integer',
                                 path=path, line=lineno)
            if not isinstance(body, str):
                raise InputError('"text" must be a string', path=path, line=lineno)
            if not body.strip():
                stats.empty += 1
            stats.documents += 1
            yield Document(str(docid), body), lineno
