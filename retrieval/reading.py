"""Reading a folder (or files) of text into documents.

Rules, decided once and applied everywhere:

* **What is read.** Folders are walked recursively in sorted order. Names starting with
  ``.`` (hidden files and folders such as ``.git``) are skipped and counted. Symbolic links
  to files are followed; links to folders are not (so a link loop cannot trap the walk)
  and are counted as skipped.
* **Formats by extension.** ``.html``/``.htm``/``.xhtml``: the text of the page, with tags,
  ``<script>``, ``<style>``, ``<noscript>`` and ``<template>`` removed and entities decoded.
  ``.jsonl``: one document per line, a JSON object (blank lines are skipped), read by
  the rules of :func:`jsonl_document` below.
  ``.pdf``: the text of its pages, and ``.gz``/``.bz2``/``.xz``/``.zst``: the file inside,
  read by the rules of its own name (:mod:`retrieval.containers`); the document id keeps
  the file's real name (``changelog.Debian.gz``).
  Everything else (``.txt``, ``.md``, ``.rst``, files without extension, …) is read as
  plain text: Markdown and reStructuredText markup is punctuation, which the tokenizer drops.
  Files with a known binary extension (images, archives, office files, executables)
  and files with a NUL byte in their first 8 KiB (unless they look like UTF-16, below) are
  skipped as ``binary``.
* **Encoding.** UTF-8 (a BOM is removed). A UTF-16 BOM selects UTF-16; UTF-16 without a
  BOM is recognised when, in the first 8 KiB, nearly every other byte is NUL and the
  others are not (and the file decodes). Otherwise, bytes that are not valid UTF-8 are
  decoded as Windows-1252, or Latin-1 where Windows-1252 has no character; such files are
  indexed and counted as ``decoded with fallback``.
* **Large files are streamed.** A JSON Lines file larger than ``STREAM_BYTES`` (8 MiB) is
  read record by record. When the reader is made with ``stream_threshold``, a plain-text
  or HTML file larger than that is yielded as a :class:`StreamedText` (its text comes in
  pieces from :meth:`StreamedText.chunks`, re-reading the file each time) instead of a
  string, so memory stays bounded whatever the file's size. The encoding is decided over
  the whole file as above (a first pass checks that it decodes). JSON Lines lines end at
  ``\\n`` (a ``\\r`` before it is removed), streamed or not.
* **Empty files** (no bytes, or only white space) are indexed as empty documents — the
  index lists every file it was given — and counted as ``empty``.
* **Document ids.** One folder given: the path relative to it, with ``/`` separators
  (``geology/glaciers.txt``). Bytes of a file name that are not UTF-8 appear in its id as
  ``\\xNN`` escapes (``caf\\xe9.txt``). One file given: its name. Several paths given:
  paths relative to their common parent folder. JSON Lines records use their id (``"id"``, ``"_id"`` or
  ``"docno"``).
  A repeated id is an error naming the file (and line).
* **Unreadable files** (permissions, vanished, broken links, link loops) are skipped and
  counted; so are compressed files that do not decompress or pass the size cap, and
  PDFs that are encrypted, have no text layer or cannot be parsed, each under its own
  reason (:data:`retrieval.containers.SKIP_REASONS`). None of them stops the read. A path *given* that is a broken link or a link loop is an error.
* **Special files** met in a folder (named pipes, sockets, devices) are skipped and
  counted as ``not a regular file`` (reading a pipe could wait forever); a special file
  given as a path is an error.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .containers import (PDF_EXTENSIONS, Unreadable, compression, inner_suffix, open_raw,
                         pdf_text)
from .errors import InputError
from .formats import (HTML_PARSERS, HTMLText, html_to_text, jsonl_document,  # noqa: F401
                      selectolax_installed)
from .records import Document

HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
JSONL_EXTENSIONS = frozenset({".jsonl"})
BINARY_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".ico", ".webp", ".svgz",
    ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp",
    ".zip", ".tgz", ".tbz2", ".txz", ".7z", ".rar", ".tar", ".jar", ".deb", ".rpm",
    ".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class", ".pyc", ".whl",
    ".mp3", ".mp4", ".wav", ".flac", ".ogg", ".avi", ".mov", ".mkv", ".webm",
    ".npy", ".npz", ".pkl", ".parquet", ".sqlite", ".db", ".bin", ".woff", ".woff2", ".ttf",
})
_SNIFF_BYTES = 8192
#: JSON Lines files above this size are read record by record; the default threshold
#: for streaming plain-text and HTML files (when the reader is asked to)
STREAM_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
#: a streamed HTML file up to this size is parsed whole (see :class:`StreamedText`)
HTML_WHOLE_BYTES = 32 * 1024 * 1024

SKIP_BINARY = "binary"
SKIP_HIDDEN = "hidden"
SKIP_UNREADABLE = "unreadable"
SKIP_DIR_LINK = "link to a folder"
SKIP_SPECIAL = "not a regular file"


@dataclass
class ReadStats:
    """What a read saw. ``skipped`` maps a reason to a number of files."""
    files: int = 0
    documents: int = 0
    empty: int = 0
    fallback_decoded: int = 0
    utf16: int = 0
    skipped: Counter = field(default_factory=Counter)
    compressed: Counter = field(default_factory=Counter)  # read, by kind ("gz", ...)
    pdf: int = 0                                            # PDFs read

    def as_dict(self) -> dict:
        return {
            "files": self.files, "documents": self.documents, "empty": self.empty,
            "decoded_with_fallback": self.fallback_decoded, "utf16": self.utf16,
            "compressed": dict(sorted(self.compressed.items())), "pdf": self.pdf,
            "skipped": dict(sorted(self.skipped.items())),
        }


class SourceFile(NamedTuple):
    """One file to read: its path as a string (``file``; a :class:`~pathlib.Path` per file
    costs more than listing it) and the document id it gives (for JSON Lines files: a
    prefix-free marker, the ids come from the records)."""

    file: str
    docid: str

    @property
    def path(self) -> Path:
        return Path(self.file)


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode file contents; return ``(text, encoding)`` following the module's rules."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[3:]
    utf16 = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
        else sniff_utf16(raw)
    if utf16:
        try:
            return raw.decode(utf16), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _fallback(raw), "cp1252"


def _cp1252_table() -> dict[int, str]:
    table = {}
    for b in range(256):
        try:
            ch = bytes([b]).decode("cp1252")
        except UnicodeDecodeError:
            continue
        if ch != chr(b):
            table[b] = ch
    return table


_CP1252 = _cp1252_table()


def _fallback(raw: bytes) -> str:
    """Windows-1252, with Latin-1 for the five bytes Windows-1252 leaves undefined."""
    return raw.decode("latin-1").translate(_CP1252)


def sniff_utf16(head: bytes) -> str | None:
    """``"utf-16-le"``/``"utf-16-be"`` when ``head`` looks like BOM-less UTF-16 text."""
    head = head[:_SNIFF_BYTES]
    if len(head) < 4 or b"\x00" not in head:
        return None
    n = len(head) // 2
    even, odd = head[0:2 * n:2], head[1:2 * n:2]
    zeros_even, zeros_odd = even.count(0), odd.count(0)
    if zeros_odd >= 0.9 * n and zeros_even <= 0.1 * n:
        codec = "utf-16-le"
    elif zeros_even >= 0.9 * n and zeros_odd <= 0.1 * n:
        codec = "utf-16-be"
    else:
        return None
    try:
        head[:2 * n].decode(codec)
    except UnicodeDecodeError:
        # a cut surrogate pair at the end is fine; anything else is not UTF-16
        try:
            head[:2 * n - 2].decode(codec)
        except UnicodeDecodeError:
            return None
    return codec


def is_binary(raw: bytes) -> bool:
    head = raw[:_SNIFF_BYTES]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in head and sniff_utf16(head) is None


class StreamedText:
    """The text of a large file, read in pieces (see "Large files are streamed").

    :meth:`chunks` re-opens the file and yields decoded text pieces of about 1 MiB; for an
    HTML file, the pieces of its visible text. Joined, the pieces are the file's text
    (for HTML: its visible text, with the white space of the page rather than
    :func:`html_to_text`'s tidied lines — the same tokens). Errors while reading raise
    :class:`~retrieval.errors.InputError` naming the file.

    An HTML file of at most :data:`HTML_WHOLE_BYTES` (32 MiB) is parsed whole by
    :func:`html_to_text` when selectolax is installed (one piece): the stdlib parser,
    fed piece by piece, took 10x longer — most of the build time of a documentation
    folder with one 8 MB page (Node.js's ``api/all.html``). Larger pages are parsed
    piece by piece, as their tree could need many times their size.
    """

    def __init__(self, path: Path, encoding: str, html: bool, size: int):
        self.path = path
        self.encoding = encoding
        self.html = html
        self.size = size

    def __repr__(self) -> str:
        return f"StreamedText({str(self.path)!r}, {self.encoding!r}, {self.size} bytes)"

    def chunks(self) -> Iterator[str]:
        pieces = _decoded_chunks(self.path, self.encoding)
        if not self.html:
            yield from pieces
            return
        if self.size <= HTML_WHOLE_BYTES and selectolax_installed():
            yield html_to_text("".join(pieces), "selectolax")
            return
        parser = HTMLText()
        for piece in pieces:
            parser.feed(piece)
            if parser.parts:
                yield "".join(parser.parts)
                parser.parts.clear()
        parser.close()
        if parser.parts:
            yield "".join(parser.parts)


def _decoder(encoding: str):
    if encoding.startswith("cp1252"):
        class _Fallback:
            def decode(self, data: bytes, final: bool = False) -> str:
                return _fallback(data)
        return _Fallback()
    return codecs.getincrementaldecoder(encoding)(errors="strict")


def _decoded_chunks(path: Path, encoding: str) -> Iterator[str]:
    decoder = _decoder(encoding)
    try:
        with open_raw(path) as fh:
            if encoding == "cp1252-sig":
                fh.read(len(codecs.BOM_UTF8))
            while True:
                data = fh.read(_CHUNK_BYTES)
                text = decoder.decode(data, final=not data)
                if text:
                    yield text
                if not data:
                    return
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror}); the file changed or became "
                         f"unreadable while it was read", path=path) from None
    except Unreadable as exc:
        raise InputError(f"cannot read ({exc.reason}); the file changed while it was "
                         f"read", path=path) from None
    except UnicodeDecodeError:
        raise InputError(f"no longer decodes as {encoding}; the file changed while it "
                         f"was read", path=path) from None


def _decodes_as(path: Path, encoding: str) -> int | None:
    """The size in bytes of ``path`` (decompressed) when it decodes as ``encoding``."""
    decoder = _decoder(encoding)
    size = 0
    with open_raw(path) as fh:
        try:
            while data := fh.read(_CHUNK_BYTES):
                size += len(data)
                decoder.decode(data)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return None
    return size


def _read_upto(fh, n: int | None) -> bytes:
    """Up to ``n`` bytes of ``fh`` (all when None), however short its reads are."""
    parts, got = [], 0
    while n is None or got < n:
        data = fh.read(_CHUNK_BYTES if n is None else min(_CHUNK_BYTES, n - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def stream_encoding(path: Path, head: bytes) -> tuple[str, int]:
    """The encoding of a large file by the module's rules, checked over the whole file,
    and the file's (decompressed) size."""
    if head.startswith(codecs.BOM_UTF8):
        size = _decodes_as(path, "utf-8-sig")
        if size is not None:
            return "utf-8-sig", size
        return "cp1252-sig", _decodes_as(path, "cp1252-sig")
    candidates = []
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates.append("utf-16")
    elif (codec := sniff_utf16(head)) is not None:
        candidates.append(codec)
    candidates.append("utf-8")
    for encoding in candidates:
        size = _decodes_as(path, encoding)
        if size is not None:
            return encoding, size
    return "cp1252", _decodes_as(path, "cp1252")


def path_docid(relative: Path) -> str:
    """The document id of a relative path: ``/`` separators, non-UTF-8 bytes as ``\\xNN``."""
    return _utf8_docid(relative.as_posix())


def _utf8_docid(text: str) -> str:
    """``text`` (a path with ``/`` separators) with non-UTF-8 bytes written as ``\\xNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", errors="backslashreplace")
    return text


class FolderReader:
    """Iterate the documents under one or more paths (folders, text files, JSONL files).

    Construction checks that every path exists and lists the files (``files_``); iterating
    reads them and yields :class:`~retrieval.records.Document`. ``stats_`` counts what was
    read and skipped. ``on_file`` (if given) is called once per file, for progress bars.
    """

    def __init__(self, paths: Iterable[str | os.PathLike], *,
                 stream_threshold: int | None = None):
        self.paths = [Path(p) for p in paths]
        self.stream_threshold = stream_threshold
        if not self.paths:
            raise InputError("no path given; name a folder or file to index")
        self.stats_ = ReadStats()
        self.skipped_files_: list[tuple[Path, str]] = []
        self._last_skip: str | None = None
        self.files_ = self._discover()
        self.stats_.files = len(self.files_)

    def _discover(self) -> list[SourceFile]:
        for p in self.paths:
            if not p.exists():
                if p.is_symlink():
                    raise InputError("a symbolic link that leads nowhere (broken, or a "
                                     "loop); check the path", path=p)
                raise InputError("no such file or folder; check the path", path=p)
        try:
            resolved = [p.resolve() for p in self.paths]
        except (OSError, RuntimeError) as exc:
            raise InputError(f"cannot resolve the path ({exc}); check it",
                             path=self.paths[0]) from None
        if len(resolved) == 1:
            base = resolved[0] if resolved[0].is_dir() else resolved[0].parent
        else:
            base = Path(os.path.commonpath([str(p.parent) for p in resolved]))
        found: dict[str, str] = {}  # file -> relative path, first path first
        for given, p in zip(self.paths, resolved):
            if p.is_dir():
                # ids from strings (a Path per file costs more than the walk itself):
                # the path below p, with the part from base to p in front
                prefix = p.relative_to(base).as_posix()
                prefix = "" if prefix == "." else prefix + "/"
                cut = len(os.path.join(str(p), ""))
                files = self._walk(p)
                rels = [prefix + f[cut:] for f in files]
                if os.sep != "/":
                    rels = [r.replace(os.sep, "/") for r in rels]
            elif p.is_file():
                files, rels = [str(p)], [p.relative_to(base).as_posix()]
            else:
                raise InputError("not a regular file or folder (a pipe, socket or device); "
                                 "give a folder or a text file", path=given)
            for f, rel in zip(files, rels):
                found.setdefault(f, rel)
        rels = list(found.values())
        try:  # one check for all ids; per id only when some name is not UTF-8
            "\n".join(rels).encode("utf-8")
        except UnicodeEncodeError:
            rels = [_utf8_docid(r) for r in rels]
        return list(map(SourceFile, found, rels))

    def _walk(self, root: Path) -> list[str]:
        """The files below ``root`` (sorted walk, hidden entries and links to folders
        skipped and counted), as path strings."""
        out: list[str] = []
        join, islink = os.path.join, os.path.islink
        skipped = self.stats_.skipped
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False,
                                                    onerror=self._walk_error):
            keep = []
            for name in sorted(dirnames):
                if name.startswith("."):
                    skipped[SKIP_HIDDEN] += 1
                elif islink(join(dirpath, name)):
                    skipped[SKIP_DIR_LINK] += 1
                else:
                    keep.append(name)
            dirnames[:] = keep
            head = join(dirpath, "")
            names = [head + name for name in sorted(filenames) if not name.startswith(".")]
            if len(names) < len(filenames):
                skipped[SKIP_HIDDEN] += len(filenames) - len(names)
            out += names
        return out

    def _walk_error(self, exc: OSError) -> None:
        self.stats_.skipped[SKIP_UNREADABLE] += 1

    def __iter__(self) -> Iterator[Document]:
        return self.documents()

    def documents(self, on_file=None) -> Iterator[Document]:
        for doc, _source in self.documents_with_sources(on_file=on_file):
            yield doc

    def documents_with_sources(self, on_file=None, *, check_ids: bool = True
                               ) -> Iterator[tuple[Document, SourceFile]]:
        """Like :meth:`documents`, with the :class:`SourceFile` each document came from.

        Files skipped while reading are listed in ``skipped_files_`` as (path, reason).
        ``check_ids``: a repeated id is an :class:`InputError` naming the file and line of
        its second occurrence; this keeps every id read in a set (about 100 bytes per
        document), so a caller that checks ids itself in bounded memory (a segmented
        build, :mod:`retrieval.segmented`) passes ``False``.
        """
        stats = self.stats_
        seen: set[str] = set()
        for source in self.files_:
            for doc, line in self._read(source, stats):
                if not check_ids:
                    yield doc, source
                    continue
                if doc.docid in seen:
                    raise InputError(f"document id {doc.docid!r} appears twice; ids must be "
                                     f"unique across all indexed paths",
                                     path=source.path, line=line)
                seen.add(doc.docid)
                yield doc, source
            if self._last_skip is not None:
                self.skipped_files_.append((source.path, self._last_skip))
                self._last_skip = None
            if on_file is not None:
                on_file(source)

    def id_line(self, file: str, docid: str, nth: int = 1) -> int | None:
        """The line of the ``nth`` document with id ``docid`` in ``file`` (one of
        ``files_``), reading that file again; None when not found or when the file's
        documents have no lines. For error messages of callers that do not keep ids."""
        source = next((s for s in self.files_ if s.file == file), None)
        if source is None:
            return None
        last_skip, found = self._last_skip, 0
        try:
            for doc, line in self._read(source, ReadStats()):
                found += doc.docid == docid
                if found == nth:
                    return line
        except InputError:  # the file changed since: no line to give
            return None
        finally:
            self._last_skip = last_skip
        return None

    def _read(self, source: SourceFile, stats: ReadStats):
        path = source.file  # strings, not Path: this runs once per file
        kind = compression(path)
        suffix = inner_suffix(path) if kind else os.path.splitext(path)[1].lower()
        if suffix in BINARY_EXTENSIONS or (kind and suffix in PDF_EXTENSIONS):
            self._skip(stats, SKIP_BINARY)
            return
        try:
            st = os.stat(path)
        except OSError:
            self._skip(stats, SKIP_UNREADABLE)
            return
        if not stat.S_ISREG(st.st_mode):
            self._skip(stats, SKIP_SPECIAL)  # opening a named pipe could block for ever
            return
        if suffix in PDF_EXTENSIONS:
            yield from self._read_pdf(source, stats)
            return
        limit = STREAM_BYTES if suffix in JSONL_EXTENSIONS else self.stream_threshold
        if kind is None and limit is not None and st.st_size > limit:
            yield from self._read_streamed(source, stats)
            return
        try:
            if kind is None:
                with open(path, "rb") as fh:
                    raw = fh.read()
            else:  # the decompressed size is known only by decompressing
                with open_raw(path) as fh:
                    raw = _read_upto(fh, None if limit is None else limit + 1)
                if limit is not None and len(raw) > limit:
                    del raw
                    yield from self._read_streamed(source, stats)
                    return
        except Unreadable as exc:
            self._skip(stats, exc.reason)
            return
        except OSError:
            self._skip(stats, SKIP_UNREADABLE)
            return
        if is_binary(raw):
            self._skip(stats, SKIP_BINARY)
            return
        text, encoding = decode_bytes(raw)
        del raw
        self._count_encoding(stats, encoding)
        if kind:
            stats.compressed[kind] += 1
        if suffix in JSONL_EXTENSIONS:
            yield from self._read_jsonl(path, text.split("\n"), stats)
            return
        if suffix in HTML_EXTENSIONS:
            text = html_to_text(text)
        if not text.strip():
            stats.empty += 1
        stats.documents += 1
        yield Document(source.docid, text), None

    def _read_pdf(self, source: SourceFile, stats: ReadStats):
        try:
            text = pdf_text(source.file)
        except Unreadable as exc:
            self._skip(stats, exc.reason)
            return
        stats.pdf += 1
        stats.documents += 1
        yield Document(source.docid, text), None

    def _skip(self, stats: ReadStats, reason: str) -> None:
        stats.skipped[reason] += 1
        self._last_skip = reason

    @staticmethod
    def _count_encoding(stats: ReadStats, encoding: str) -> None:
        if encoding.startswith("cp1252"):
            stats.fallback_decoded += 1
        elif encoding.startswith("utf-16"):
            stats.utf16 += 1

    def _read_streamed(self, source: SourceFile, stats: ReadStats):
        path = source.path
        kind = compression(source.file)
        try:
            with open_raw(path) as fh:
                head = _read_upto(fh, _SNIFF_BYTES)
            if is_binary(head):
                self._skip(stats, SKIP_BINARY)
                return
            encoding, size = stream_encoding(path, head)
        except Unreadable as exc:
            self._skip(stats, exc.reason)
            return
        except OSError:
            self._skip(stats, SKIP_UNREADABLE)
            return
        self._count_encoding(stats, encoding)
        if kind:
            stats.compressed[kind] += 1
        suffix = inner_suffix(source.file)
        if suffix in JSONL_EXTENSIONS:
            yield from self._read_jsonl(path, lines_of_pieces(_decoded_chunks(path, encoding)), stats)
            return
        stats.documents += 1
        yield Document(source.docid, StreamedText(path, encoding,
                                                  suffix in HTML_EXTENSIONS, size)), None

    @staticmethod
    def _read_jsonl(path: str | os.PathLike, lines: Iterable[str], stats: ReadStats):
        for lineno, line in enumerate(lines, start=1):
            if line.endswith("\r"):
                line = line[:-1]
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else \
                    "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                raise InputError(f"not valid JSON ({reason}); each line must be one "
                                 f'object like {{"id": "d1", "text": "..."}}',
                                 path=path, line=lineno) from None
            line = ""  # a huge record: do not keep its JSON source while it is indexed
            docid, body = jsonl_document(record, path, lineno)
            del record
            if not body.strip():
                stats.empty += 1
            stats.documents += 1
            yield Document(docid, body), lineno


def lines_of_pieces(chunks: Iterable[str]) -> Iterator[str]:
    """Lines (split at ``\\n``) of text given in pieces; memory: one line plus one piece
    (a long line is gathered as a list of pieces and joined once)."""
    pending: list[str] = []
    for chunk in chunks:
        parts = chunk.split("\n")
        if len(parts) == 1:
            pending.append(chunk)
            continue
        pending.append(parts[0])
        parts[0] = _join_and_clear(pending)
        pending.append(parts.pop())
        parts.reverse()
        while parts:  # hand each line over without keeping it here
            yield parts.pop()
    yield _join_and_clear(pending)


def _join_and_clear(pieces: list[str]) -> str:
    text = "".join(pieces)
    pieces.clear()
    return text
