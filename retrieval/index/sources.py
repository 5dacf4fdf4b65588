"""New documents for an index: reading sources and analysing documents into a part.

A *part* is the complete array set (lifecycle arrays included) of the documents an
``index``, ``add`` or ``update`` reads; :func:`build_part` makes it and
:func:`~retrieval.index.merge.merge_arrays` merges it into an index.

Large files
-----------
Plain-text and HTML files over :data:`~retrieval.reading.STREAM_BYTES` are streamed (see
:mod:`retrieval.reading`): their tokens are counted piece by piece (pieces are cut after
white space, so no token, NFC composition or final-sigma context is split; a piece
without white space is carried over up to 16 MiB), so memory stays bounded by the piece
size and the vocabulary. Their stored text (for snippets) is their first
:data:`STORED_TEXT_LIMIT` bytes; they are scored on their full text.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis import Analyzer
from ..errors import InputError
from ..fields import TITLE_SUFFIXES, file_title, name_text
from ..reading import FolderReader, StreamedText, decode_bytes
from .arrays import lifecycle_arrays
from .builder import IndexBuilder
from .fields import field_arrays
from .kmerge import repeated_id_error
from .layout import HASH_BYTES, text_hash

#: stored text (for snippets) of a streamed document is cut to this many bytes
STORED_TEXT_LIMIT = 4 * 1024 * 1024
#: a streamed piece without white space is carried into the next up to this many chars
_MAX_CARRY = 16 * 1024 * 1024
_WHITESPACE = (" ", "\n", "\t", "\r", "\f", "\v")


@dataclass
class NewDoc:
    """A document to be indexed: its id, text, source group (-1: none), file and the
    file's (size, mtime ns) when read."""
    docid: str
    text: str | StreamedText
    group: int = -1
    file: bytes = b""
    stat: tuple[int, int] = (-1, -1)
    title: str = ""


def group_base(paths: Sequence[Path]) -> Path:
    """The folder ids are relative to, as :class:`FolderReader` computes it."""
    if len(paths) == 1:
        return paths[0] if paths[0].is_dir() else paths[0].parent
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


#: a file modified less than this long before reading began may change again within the
#: file system's timestamp resolution: its (size, mtime) is not trusted (git's "racy" rule)
RACY_NS = 2_000_000_000
_UNKNOWN_STAT = (-1, -1)


def file_stat(path, since_ns: int) -> tuple[int, int]:
    """``(size, mtime_ns)`` of ``path`` as recorded per document, or ``(-1, -1)`` when it
    cannot be trusted: unreadable, or modified at most :data:`RACY_NS` before ``since_ns``
    (the moment reading began; a file written during the read falls here too)."""
    try:
        st = os.stat(path)
    except OSError:
        return _UNKNOWN_STAT
    if st.st_mtime_ns >= since_ns - RACY_NS:
        return _UNKNOWN_STAT
    return (int(st.st_size), int(st.st_mtime_ns))


def read_docs(reader: FolderReader, group: int, on_file=None, *, check_ids: bool = True):
    """:class:`NewDoc` of every document ``reader`` reads (``check_ids``: as
    :meth:`FolderReader.documents_with_sources`)."""
    since = time.time_ns()  # before any file is read
    last: tuple[object, tuple[int, int], str] = (None, _UNKNOWN_STAT, "")
    for doc, source in reader.documents_with_sources(on_file=on_file, check_ids=check_ids):
        if last[0] is not source:
            last = (source, file_stat(source.file, since), source_title(source.file))
        # a record that carries its own title (a FieldedDocument) keeps it
        title = doc.title if isinstance(getattr(doc, "title", None), str) else last[2]
        yield NewDoc(doc.docid, doc.text, group, os.fsencode(source.file), last[1], title)


#: bytes of a file read to find its title (the title is near the start)
TITLE_HEAD_BYTES = 64 * 1024


def source_title(file) -> str:
    """The title of a file (:func:`retrieval.fields.file_title` of its first
    :data:`TITLE_HEAD_BYTES`; '' for other suffixes or when unreadable)."""
    suffix = Path(file).suffix.lower()
    if suffix not in TITLE_SUFFIXES:
        return ""
    try:
        with open(file, "rb") as fh:
            head = fh.read(TITLE_HEAD_BYTES)
    except OSError:
        return ""
    return file_title(suffix, decode_bytes(head)[0])


def resolve(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            if p.is_symlink():
                raise InputError("a symbolic link that leads nowhere (broken, or a loop); "
                                 "check the path", path=p)
            raise InputError("no such file or folder; check the path", path=p)
        try:
            out.append(p.resolve())
        except (OSError, RuntimeError) as exc:
            raise InputError(f"cannot resolve the path ({exc})", path=p) from None
    if not out:
        raise InputError("no path given; name a folder or file to index")
    return out


def refuse_self_indexing(index_path: Path, paths: Sequence[Path]) -> None:
    try:
        index_real = index_path.resolve()
    except (OSError, RuntimeError):
        return
    for p in paths:
        if p.is_dir() and (index_real == p or p in index_real.parents):
            raise InputError(f"the index {index_path} is inside the folder {p}; an index "
                             f"cannot index itself (keep it outside its sources)")
        if index_real in p.parents or index_real == p:
            raise InputError(f"{p} is inside the index {index_path}; name the documents' "
                             f"folder instead")



def _stream_counts(stream: StreamedText, counter: IndexBuilder
                   ) -> tuple[np.ndarray, np.ndarray, bytes, bytes]:
    """(term ids, counts, text hash, stored text prefix) of a streamed document, its
    pieces counted by :meth:`IndexBuilder.count_pieces` (ids of ``counter``)."""
    digest = hashlib.blake2b(digest_size=HASH_BYTES)
    prefix = bytearray()

    def pieces():
        carry = ""
        for piece in stream.chunks():
            raw = piece.encode("utf-8", errors="surrogatepass")
            digest.update(raw)
            if len(prefix) < STORED_TEXT_LIMIT:
                prefix.extend(raw[:STORED_TEXT_LIMIT - len(prefix)])
            del raw
            text = carry + piece if carry else piece
            cut = max(text.rfind(c) for c in _WHITESPACE)
            if cut < 0 and len(text) > _MAX_CARRY:
                cut = len(text) - 1
            if cut < 0:
                carry = text
                continue
            yield text[:cut + 1]
            carry = text[cut + 1:]
        if carry:
            yield carry

    terms, counts = counter.count_pieces(pieces())
    if len(prefix) >= STORED_TEXT_LIMIT:
        # cut at a character boundary
        end = len(prefix)
        while end > 0 and (prefix[end - 1] & 0xC0) == 0x80:
            end -= 1
        if end > 0 and prefix[end - 1] >= 0xC0:
            end -= 1
        del prefix[end:]
    return terms, counts, digest.digest(), bytes(prefix)


def stream_hash(stream: StreamedText) -> bytes:
    """The text hash of a streamed document (read piece by piece)."""
    digest = hashlib.blake2b(digest_size=HASH_BYTES)
    for piece in stream.chunks():
        digest.update(piece.encode("utf-8", errors="surrogatepass"))
    return digest.digest()


def _checked_id(doc: NewDoc, seen: dict[str, bytes]) -> None:
    if not isinstance(doc.docid, str) or not doc.docid:
        raise InputError(f"document ids must be non-empty strings, got {doc.docid!r}")
    try:
        doc.docid.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"document id {doc.docid!r} holds an unpaired surrogate; "
                         f"ids must be valid Unicode") from None
    if doc.docid in seen:
        raise repeated_id_error(doc.docid, os.fsdecode(seen[doc.docid]),
                                os.fsdecode(doc.file))
    seen[doc.docid] = doc.file


def build_part(docs: Iterable[NewDoc], analyzer: Analyzer, store_text: bool, *,
               jobs: int = 1, fields: bool = False) -> tuple[dict[str, np.ndarray], list[str]]:
    """Analyse new documents; return their arrays (lifecycle arrays included) and ids.

    Texts go through :meth:`DocumentCounts.add_documents` (``jobs`` worker processes);
    streamed documents are counted piece by piece as they come
    (:meth:`IndexBuilder.count_pieces`) and added after the others, in the order read.
    With ``fields`` the arrays of the title and name fields are made too
    (:mod:`retrieval.index.fields`).
    """
    titles: list[str] = []
    streamed_titles: list[str] = []
    counter = IndexBuilder(analyzer=analyzer, store_text=store_text)
    hashes: list[bytes] = []
    groups: list[int] = []
    files: list[bytes] = []
    stats: list[tuple[int, int]] = []
    streamed: list[tuple[NewDoc, np.ndarray, np.ndarray, bytes, bytes]] = []
    seen: dict[str, bytes] = {}  # id -> file, bounded by the part (one segment)

    def pairs():
        for doc in docs:
            _checked_id(doc, seen)
            if isinstance(doc.text, StreamedText):
                streamed.append((doc, *_stream_counts(doc.text, counter)))
                streamed_titles.append(doc.title)
                continue
            titles.append(doc.title)
            hashes.append(text_hash(doc.text))
            groups.append(doc.group)
            files.append(doc.file)
            stats.append(doc.stat)
            yield doc.docid, doc.text

    counter.add_documents(pairs(), jobs=jobs)
    for doc, terms, counts, digest, prefix in streamed:
        counter.add_counted(doc.docid, terms, counts, prefix)
        hashes.append(digest)
        groups.append(doc.group)
        files.append(doc.file)
        stats.append(doc.stat)
    streamed.clear()
    arrays, _ = counter.finish_arrays()
    arrays.update(lifecycle_arrays(hashes, groups, files, stats))
    docids = list(counter.docids)
    if fields:
        arrays.update(field_arrays({"title": titles + streamed_titles,
                                    "name": [name_text(d) for d in docids]}, analyzer))
    return arrays, docids
