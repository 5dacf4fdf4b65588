"""Files whose text is inside another format: compressed files and PDFs.

* **Compressed files** ``.gz`` (gzip), ``.bz2``, ``.xz`` (stdlib) and ``.zst``
  (Zstandard, through the optional ``zstandard`` package: ``pip install
  "retrieval[zstd]"``) are read as the file inside them: ``notes.md.gz`` is read as
  Markdown, ``page.html.bz2`` as HTML, ``docs.jsonl.xz`` as JSON Lines and
  ``changelog.Debian.gz`` as plain text; an inner file with a binary extension
  (``.tar.gz``) is skipped as binary. The document id is the file's own name, suffix
  included (``changelog.Debian.gz``): unique even when ``a.txt`` and ``a.txt.gz`` sit
  side by side, and it names the file ``update`` compares.
* **Decompressed size is capped** at :data:`DECOMPRESSED_LIMIT` (256 MiB) per file: the
  file is decompressed as a stream and skipped (reason ``compressed: larger than 256 MiB
  decompressed``) as soon as it passes the cap, so a small "zip bomb" costs at most the
  cap in time and a bounded buffer in memory, never the whole expansion.
* **PDF** text is extracted with ``pypdf`` (optional: ``pip install "retrieval[pdf]"``),
  page by page, pages joined by line breaks. pypdf rather than pdfminer.six: pure Python
  like pdfminer, but actively maintained with frequent releases, a small dependency
  (no dependencies of its own), and it decrypts PDFs protected by an empty user password
  (common: "no copying" PDFs). Extracted text is capped like decompressed text.
* **Failures are skips, never stops.** A truncated or corrupt compressed file, a missing
  optional package, an encrypted PDF that needs a password, a PDF with no text layer
  (scanned pages: no text on any page) and a PDF pypdf cannot parse are each skipped
  and counted under their own reason (:data:`SKIP_REASONS`).
"""

from __future__ import annotations

import bz2
import gzip
import contextlib
import io
import logging
import lzma
import os
import zlib

#: decompressed bytes (or extracted PDF characters) kept of one file at most
DECOMPRESSED_LIMIT = 256 * 1024 * 1024

COMPRESSED_EXTENSIONS = {".gz": "gz", ".bz2": "bz2", ".xz": "xz", ".zst": "zst"}
PDF_EXTENSIONS = frozenset({".pdf"})

SKIP_CORRUPT = "compressed: truncated or corrupt"
SKIP_TOO_LARGE = f"compressed: larger than {DECOMPRESSED_LIMIT >> 20} MiB decompressed"
SKIP_NO_ZSTD = 'compressed: .zst needs pip install "retrieval[zstd]"'
SKIP_PDF_ENCRYPTED = "pdf: encrypted (needs a password)"
SKIP_PDF_NO_TEXT = "pdf: no text layer (scanned pages?)"
SKIP_PDF_BROKEN = "pdf: cannot be parsed"
SKIP_PDF_TOO_LARGE = f"pdf: more than {DECOMPRESSED_LIMIT >> 20} Mi characters of text"
SKIP_NO_PYPDF = 'pdf: needs pip install "retrieval[pdf]"'
SKIP_REASONS = (SKIP_CORRUPT, SKIP_TOO_LARGE, SKIP_NO_ZSTD, SKIP_PDF_ENCRYPTED,
                SKIP_PDF_NO_TEXT, SKIP_PDF_BROKEN, SKIP_PDF_TOO_LARGE, SKIP_NO_PYPDF)


class Unreadable(Exception):
    """A file that is skipped; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def compression(path: str) -> str | None:
    """``"gz"``, ``"bz2"``, ``"xz"``, ``"zst"`` or None, by the file's last suffix."""
    return COMPRESSED_EXTENSIONS.get(os.path.splitext(path)[1].lower())


def inner_suffix(path: str) -> str:
    """The lowercased suffix of the file inside a compressed file (``a.html.gz`` →
    ``.html``), or the file's own suffix when it is not compressed."""
    stem, suffix = os.path.splitext(path)
    if suffix.lower() in COMPRESSED_EXTENSIONS:
        suffix = os.path.splitext(stem)[1]
    return suffix.lower()


class _Capped(io.RawIOBase):
    """A decompressing stream that raises :class:`Unreadable` past ``limit`` bytes and
    turns decompression errors into :class:`Unreadable` too."""

    def __init__(self, inner, limit: int):
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        try:
            data = self._inner.read(want)
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise Unreadable(SKIP_CORRUPT) from exc
        except Exception as exc:  # zstandard.ZstdError and the like
            if type(exc).__name__ == "ZstdError":
                raise Unreadable(SKIP_CORRUPT) from exc
            raise
        self._left -= len(data)
        if self._left < 0:
            raise Unreadable(SKIP_TOO_LARGE)
        return data

    def readall(self) -> bytes:
        parts = []
        while data := self.read(1 << 20):
            parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def open_raw(path: str | os.PathLike, limit: int | None = None):
    """A binary file object of ``path``'s bytes: decompressed (and capped) when the
    name says it is compressed. Raises :class:`Unreadable` (a missing ``zstandard``)
    or ``OSError``. ``limit`` defaults to :data:`DECOMPRESSED_LIMIT`."""
    limit = DECOMPRESSED_LIMIT if limit is None else limit
    kind = compression(os.fspath(path))
    if kind is None:
        return open(path, "rb")
    if kind == "gz":
        inner = gzip.open(path, "rb")
    elif kind == "bz2":
        inner = bz2.open(path, "rb")
    elif kind == "xz":
        inner = lzma.open(path, "rb")
    else:
        try:
            import zstandard
        except ImportError:
            raise Unreadable(SKIP_NO_ZSTD) from None
        fh = open(path, "rb")
        try:
            inner = zstandard.ZstdDecompressor().stream_reader(fh, closefd=True)
        except BaseException:
            fh.close()
            raise
    return _Capped(inner, limit)


def read_raw(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """All of ``path``'s bytes, decompressed when compressed (see :func:`open_raw`)."""
    with open_raw(path, limit) as fh:
        return fh.read() if compression(os.fspath(path)) is None else fh.readall()


@contextlib.contextmanager
def _quiet_pypdf():
    """pypdf logs what it repairs or cannot read; the reader reports a skip reason
    instead, so none of pypdf's records is emitted while a PDF is read (its
    logger's level is restored afterwards; nothing else changes)."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def pdf_text(path: str | os.PathLike, limit: int | None = None) -> str:
    """The text of a PDF, page by page (see the module docstring); raises
    :class:`Unreadable` with the reason it cannot be read."""
    limit = DECOMPRESSED_LIMIT if limit is None else limit
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise Unreadable(SKIP_NO_PYPDF) from None
    try:
        with _quiet_pypdf():
            return _pdf_pages(PdfReader, path, limit)
    except Unreadable:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, AssertionError, RecursionError, zlib.error) as exc:
        raise Unreadable(SKIP_PDF_BROKEN) from exc


def _pdf_pages(PdfReader, path, limit: int) -> str:
    from pypdf.errors import PyPdfError
    reader = PdfReader(os.fspath(path))
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                raise Unreadable(SKIP_PDF_ENCRYPTED)
        except (PyPdfError, NotImplementedError) as exc:
            raise Unreadable(SKIP_PDF_ENCRYPTED) from exc
    pages, size = [], 0
    for page in reader.pages:
        text = page.extract_text() or ""
        size += len(text) + 1
        if size > limit:
            raise Unreadable(SKIP_PDF_TOO_LARGE)
        pages.append(text)
    text = "\n".join(pages)
    if not text.strip():
        raise Unreadable(SKIP_PDF_NO_TEXT)
    return text
