"""The life of an index: build, add, delete, update, check — incrementally and safely.

Python API (the ``retrieval index/add/delete/update/check`` commands call these):

* :func:`build_index` ``(paths, output, ...) -> Index`` — read folders/files, write a new
  index (or, with ``overwrite=True``, a new generation of an existing one).
* :func:`add_paths` ``(index, paths, replace=False) -> Change`` — index more files.
* :func:`add_documents` ``(index, docs, replace=False) -> Change`` — ``(docid, text)`` pairs.
* :func:`delete_documents` ``(index, docids, missing_ok=False) -> Change``.
* :func:`update` ``(index, forget_missing=False, dry_run=False) -> Change`` — re-read the
  indexed sources: add new files, re-index changed ones (by content hash), delete removed.
* :func:`check` ``(index) -> list[str]`` — every problem found (empty: the index is sound).
* :func:`apply_changes` ``(index, add=(), delete=(), replace=False) -> Index`` — the same
  merge in memory, without touching the disk.

Incremental, not a rebuild
--------------------------
Language-model statistics are additive, so a change analyses only the new or changed
documents (with :class:`~retrieval.builder.IndexBuilder`) and merges arrays, vectorised:

* the new part's sorted vocabulary is located in the old one by binary search (one
  ``bisect`` per *new* term); both parts' term ids go through monotone maps, so rows and
  postings stay sorted;
* df and cf are the old ones minus the deleted rows' counts plus the new part's (only the
  deleted and new documents are read); terms no longer occurring anywhere are dropped;
* the kept documents' rows and stored text are copied in runs of kept documents (one
  slice per run, not per document), straight from the old generation's memory-mapped
  files into the new files in chunks (:class:`~retrieval.index.Pieces`);
* the term-major postings are merged in blocks of terms: per term, the kept old postings
  (documents renumbered by a cumulative sum of the kept mask) and then the new ones;
* the docid order is merged likewise (one ``bisect`` per new document).

Nothing loops in Python per posting or per kept document, and no array of the size of the
index is built in memory: what a change costs beyond analysing the changed documents is
reading and writing the generation's files once.

The result equals a fresh build on the same documents: the same vocabulary and term ids,
the same per-document counts and lengths, the same cf and |C| — so every score is
bit-identical. Only document *numbers* differ (kept documents keep their order, new ones
follow), and rankings do not depend on them: ties break by docid string.

Sources and ``update``
----------------------
The manifest's ``source_groups`` lists, per ``index``/``add`` command that read paths, the
resolved paths it was given; document ids are computed per group by
:class:`~retrieval.reading.FolderReader`'s rules, so re-reading a group gives the same ids.
A path added *inside* an indexed folder joins that folder's group (ids relative to it,
exactly as a rebuild of the folder would give). Per document the index records the group,
the source file, the BLAKE2b-128 hash of its text, and the file's size and modification
time (ns) when it was read. ``update`` re-lists every group; a file whose size and
modification time are unchanged is not read again: one ``stat`` per file, compared with
the recorded values as arrays (the rule of git and make; a file modified less than
:data:`RACY_NS` before reading began gets no recorded time and is always re-read; JSON
Lines files are always re-read). Of the files read, documents whose
hash is unchanged are not analysed again; new ones are added, changed ones re-indexed,
and a group's documents that are no longer produced are deleted — except those
whose file still exists but could not be read (kept, and reported). A group whose paths
are gone is an error (restore them, or pass ``forget_missing=True`` to delete their
documents). Documents added with :func:`add_documents` belong to no group and ``update``
leaves them alone. A document deleted with :func:`delete_documents` whose file is still
in an indexed folder comes back at the next ``update``: remove the file to drop it for
good. The same id produced by two sources is an error, and nothing is written.

Large files
-----------
Plain-text and HTML files over :data:`STREAM_BYTES` are streamed (see
:mod:`retrieval.reading`): their tokens are counted piece by piece (pieces are cut after
white space, so no token, NFC composition or final-sigma context is split; a piece
without white space is carried over up to 16 MiB), so memory stays bounded by the piece
size and the vocabulary. Their stored text (for snippets) is their first
:data:`STORED_TEXT_LIMIT` bytes; they are scored on their full text.

Safety
------
Every write happens under the index's :class:`~retrieval.index.WriteLock` and publishes a
new immutable generation with one atomic ``os.replace`` (see :mod:`retrieval.index`):
a process killed at any moment leaves the previous index intact; readers that opened the
index before keep their view, readers opening after see the new one, never a mix.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._version import __version__
from .analysis import Analyzer, tokenize
from .builder import IndexBuilder, _segment_sums
from .errors import IndexFormatError, InputError
from .index import (ARRAY_SPECS, GENERATION_INFO, HASH_BYTES, MANIFEST, Index, Pieces,
                    StringTable, WriteLock, _ARRAYS, _LIFECYCLE_ARRAYS, _TEXT_ARRAYS,
                    complete_arrays, file_checksum, read_manifest, text_hash, write_generation)
from .reading import (JSONL_EXTENSIONS, STREAM_BYTES, FolderReader, SourceFile, StreamedText,
                      path_docid)

#: stored text (for snippets) of a streamed document is cut to this many bytes
STORED_TEXT_LIMIT = 4 * 1024 * 1024
#: a streamed piece without white space is carried into the next up to this many chars
_MAX_CARRY = 16 * 1024 * 1024
_WHITESPACE = (" ", "\n", "\t", "\r", "\f", "\v")
#: items per chunk when kept rows and text are copied into a new generation
_PIECE = 1 << 20

__all__ = ["Change", "build_index", "add_paths", "add_documents", "delete_documents",
           "update", "check", "apply_changes", "verify_arrays", "STORED_TEXT_LIMIT"]


@dataclass
class Change:
    """What a write did (or, with ``dry_run``, would do)."""
    index: Path
    operation: str
    added: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    documents: int = 0
    generation: int | None = None
    written: bool = False
    kept_unreadable: list[str] = field(default_factory=list)
    read_stats: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"index": str(self.index), "operation": self.operation, "added": self.added,
                "replaced": self.replaced, "deleted": self.deleted,
                "unchanged": self.unchanged, "documents": self.documents,
                "generation": self.generation, "written": self.written,
                "kept_unreadable": self.kept_unreadable, "read_stats": self.read_stats,
                "seconds": round(self.seconds, 3)}


@dataclass
class _NewDoc:
    docid: str
    text: str | StreamedText
    group: int = -1
    file: bytes = b""
    stat: tuple[int, int] = (-1, -1)


# -- reading sources ------------------------------------------------------------------------

def _group_base(paths: Sequence[Path]) -> Path:
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


def _read_docs(reader: FolderReader, group: int, on_file=None):
    since = time.time_ns()  # before any file is read
    last: tuple[object, tuple[int, int]] = (None, _UNKNOWN_STAT)
    for doc, source in reader.documents_with_sources(on_file=on_file):
        if last[0] is not source:
            last = (source, file_stat(source.file, since))
        yield _NewDoc(doc.docid, doc.text, group, os.fsencode(source.file), last[1])


def _resolve(paths: Iterable[str | os.PathLike]) -> list[Path]:
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


def _refuse_self_indexing(index_path: Path, paths: Sequence[Path]) -> None:
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


# -- analysing new documents ----------------------------------------------------------------

def _stream_counts(stream: StreamedText, analyzer: Analyzer
                   ) -> tuple[dict[str, int], bytes, bytes]:
    """(term counts, text hash, stored text prefix) of a streamed document."""
    digest = hashlib.blake2b(digest_size=HASH_BYTES)
    prefix = bytearray()
    tokens: Counter = Counter()
    carry = ""
    for piece in stream.chunks():
        raw = piece.encode("utf-8", errors="surrogatepass")
        digest.update(raw)
        if len(prefix) < STORED_TEXT_LIMIT:
            prefix += raw[:STORED_TEXT_LIMIT - len(prefix)]
        text = carry + piece if carry else piece
        cut = max(text.rfind(c) for c in _WHITESPACE)
        if cut < 0 and len(text) > _MAX_CARRY:
            cut = len(text) - 1
        if cut < 0:
            carry = text
            continue
        tokens.update(tokenize(text[:cut + 1]))
        carry = text[cut + 1:]
    if carry:
        tokens.update(tokenize(carry))
    if len(prefix) >= STORED_TEXT_LIMIT:
        # cut at a character boundary
        end = len(prefix)
        while end > 0 and (prefix[end - 1] & 0xC0) == 0x80:
            end -= 1
        if end > 0 and prefix[end - 1] >= 0xC0:
            end -= 1
        del prefix[end:]
    counts: dict[str, int] = {}
    for token, n in tokens.items():
        term = analyzer.term(token)
        if term is not None:
            counts[term] = counts.get(term, 0) + n
    return counts, digest.digest(), bytes(prefix)


def _pack(strings: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(strings) + 1, dtype=np.int64)
    if strings:
        np.cumsum(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)),
                  out=offsets[1:])
    blob = np.frombuffer(b"".join(strings), dtype=np.uint8).copy()
    return offsets, blob


def _sorted_order(strings: Sequence[str]) -> np.ndarray:
    order = np.asarray(sorted(range(len(strings)), key=strings.__getitem__), dtype=np.int32)
    return order.reshape(-1)


def _arrays_from_counts(entries: list[tuple[_NewDoc, dict, bytes, bytes]], store_text: bool
                        ) -> dict[str, np.ndarray]:
    """The arrays of a small index made directly from per-document term counts."""
    vocab = sorted({t for _, counts, _, _ in entries for t in counts})
    tid = {t: i for i, t in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for r, (_, counts, _, _) in enumerate(entries):
        for t, n in counts.items():
            rows.append(r)
            cols.append(tid[t])
            vals.append(n)
    n_docs, n_terms = len(entries), len(vocab)
    fwd = sp.csr_matrix((np.asarray(vals, dtype=np.int64),
                         (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                        shape=(n_docs, n_terms))
    fwd.sort_indices()
    arrays = _arrays_from_forward(fwd.indptr, fwd.indices, fwd.data, n_terms)
    arrays["vocab_offsets"], arrays["vocab_bytes"] = _pack([t.encode("utf-8") for t in vocab])
    docids = [d.docid for d, _, _, _ in entries]
    arrays.update(_docid_arrays(docids))
    if store_text:
        arrays["text_offsets"], arrays["text_bytes"] = _pack([p for _, _, _, p in entries])
    arrays["doc_hash"] = _hash_array([h for _, _, h, _ in entries])
    arrays["doc_group"] = np.asarray([d.group for d, _, _, _ in entries], dtype=np.int32)
    arrays["doc_file_offsets"], arrays["doc_file_bytes"] = _pack([d.file for d, _, _, _ in entries])
    arrays["doc_file_stat"] = _stat_array([d.stat for d, _, _, _ in entries])
    return arrays


def _stat_array(stats: Sequence[tuple[int, int]]) -> np.ndarray:
    return np.asarray(stats, dtype=np.int64).reshape(len(stats), 2)


def _hash_array(hashes: Sequence[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), HASH_BYTES).copy()


def _docid_arrays(docids: Sequence[str]) -> dict[str, np.ndarray]:
    offsets, blob = _pack([d.encode("utf-8") for d in docids])
    order = _sorted_order(docids)
    rank = np.empty(len(docids), dtype=np.int32)
    rank[order] = np.arange(len(docids), dtype=np.int32)
    return {"docid_offsets": offsets, "docid_bytes": blob, "docid_sorted": order,
            "docid_rank": rank}


def _arrays_from_forward(indptr, terms, counts, n_terms: int) -> dict[str, np.ndarray]:
    """Forward, postings and count arrays from a document-major CSR (sorted rows)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    terms = np.asarray(terms, dtype=np.int32)
    counts = np.asarray(counts, dtype=np.int32)
    n_docs = len(indptr) - 1
    fwd = sp.csr_matrix((counts, terms, indptr), shape=(n_docs, n_terms))
    post = fwd.tocsc()
    post.sort_indices()
    a = {"forward_indptr": indptr, "forward_terms": terms, "forward_counts": counts,
         "postings_indptr": post.indptr.astype(np.int64),
         "postings_docs": post.indices.astype(np.int32),
         "postings_counts": post.data.astype(np.int32)}
    a["doc_lengths"] = _segment_sums(counts, indptr)
    a["doc_unique"] = np.diff(indptr).astype(np.int32)
    a["term_cf"] = _segment_sums(a["postings_counts"], a["postings_indptr"])
    a["term_df"] = np.diff(a["postings_indptr"]).astype(np.int32)
    return a


def _build_part(docs: Iterable[_NewDoc], analyzer: Analyzer, store_text: bool, *,
                jobs: int = 1) -> tuple[dict[str, np.ndarray], list[str]]:
    """Analyse new documents; return their arrays (lifecycle arrays included) and ids.

    Texts go through :meth:`IndexBuilder.add_documents` (``jobs`` worker processes);
    streamed documents are counted piece by piece and merged in afterwards.
    """
    builder = IndexBuilder(analyzer=analyzer, store_text=store_text)
    hashes: list[bytes] = []
    groups: list[int] = []
    files: list[bytes] = []
    stats: list[tuple[int, int]] = []
    streamed: list[tuple[_NewDoc, dict, bytes, bytes]] = []
    seen: set[str] = set()

    def pairs():
        for doc in docs:
            if not isinstance(doc.docid, str) or not doc.docid:
                raise InputError(f"document ids must be non-empty strings, got "
                                 f"{doc.docid!r}")
            try:
                doc.docid.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"document id {doc.docid!r} holds an unpaired surrogate; "
                                 f"ids must be valid Unicode") from None
            if doc.docid in seen:
                raise InputError(f"document id {doc.docid!r} appears twice; ids must be "
                                 f"unique")
            seen.add(doc.docid)
            if isinstance(doc.text, StreamedText):
                counts, digest, prefix = _stream_counts(doc.text, analyzer)
                streamed.append((doc, counts, digest, prefix))
                continue
            hashes.append(text_hash(doc.text))
            groups.append(doc.group)
            files.append(doc.file)
            stats.append(doc.stat)
            yield doc.docid, doc.text

    builder.add_documents(pairs(), jobs=jobs)
    part = builder.finish()
    arrays = dict(part.arrays)
    arrays["doc_hash"] = _hash_array(hashes)
    arrays["doc_group"] = np.asarray(groups, dtype=np.int32)
    arrays["doc_file_offsets"], arrays["doc_file_bytes"] = _pack(files)
    arrays["doc_file_stat"] = _stat_array(stats)
    docids = part.docids.all()
    if streamed:
        extra = _arrays_from_counts(streamed, store_text)
        arrays = merge_arrays(arrays, None, extra, store_text=store_text)
        docids += [d.docid for d, _, _, _ in streamed]
    return arrays, docids


# -- the vectorised merge ------------------------------------------------------------------

def _runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the runs of consecutive numbers in sorted ``rows``."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate(([rows[0]], rows[breaks + 1]))
    ends = np.concatenate((rows[breaks], [rows[-1]])) + 1
    return starts.astype(np.int64), ends.astype(np.int64)


def _take_segments(indptr: np.ndarray, arrays: Sequence[np.ndarray], rows: np.ndarray
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The segments ``rows`` of CSR-like ``arrays``: (indptr, parts). Rows that follow one
    another are copied as one slice (few runs: a slice each; many: one fancy index)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    out_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    run_starts, run_ends = _runs(rows)
    if len(run_starts) <= max(64, len(rows) // 8):
        lo, hi = indptr[run_starts].tolist(), indptr[run_ends].tolist()
        parts = [np.concatenate([np.asarray(a[s:e]) for s, e in zip(lo, hi)])
                 if lo else np.zeros(0, dtype=a.dtype) for a in arrays]
    else:
        idx = np.arange(int(out_ptr[-1]), dtype=np.int64) + np.repeat(starts - out_ptr[:-1],
                                                                        lengths)
        parts = [np.asarray(a)[idx] if len(idx) else np.zeros(0, dtype=a.dtype)
                 for a in arrays]
    return out_ptr, parts


class _Sorted:
    """A lazily decoded sorted view of a string table (for ``bisect``)."""

    def __init__(self, table: StringTable, order: np.ndarray):
        self.table, self.order = table, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> str:
        return self.table[int(self.order[i])]


def _insert_positions(old: Sequence[str], new: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """For each of the sorted strings ``new``: its ``bisect_left`` position in the sorted
    ``old`` and whether it is there."""
    pos = np.empty(len(new), dtype=np.int64)
    found = np.zeros(len(new), dtype=bool)
    lo, n_old = 0, len(old)
    for i, s in enumerate(new):
        lo = bisect.bisect_left(old, s, lo)
        pos[i] = lo
        found[i] = lo < n_old and old[lo] == s
    return pos, found


def _interleave(n_old: int, pos_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merged positions of ``n_old`` sorted old items and of new items to be inserted at
    the (non-decreasing) ``bisect_left`` positions ``pos_new``."""
    old_to = np.arange(n_old, dtype=np.int64) + np.searchsorted(
        pos_new, np.arange(n_old), side="right")
    new_to = pos_new + np.arange(len(pos_new), dtype=np.int64)
    return old_to, new_to


def merge_arrays(old: dict[str, np.ndarray], keep: np.ndarray | None,
                 new: dict[str, np.ndarray], *, store_text: bool, lazy: bool = False
                 ) -> dict[str, np.ndarray]:
    """The arrays of ``old``'s documents where ``keep`` (all when None) plus ``new``'s.

    Both are complete array sets (lifecycle arrays included); docids must not repeat.
    See the module docstring for the method; the result is what a fresh build gives, up
    to document numbering. With ``lazy`` the document rows and the stored text are
    :class:`~retrieval.index.Pieces` that copy the kept parts of ``old`` when written
    (``old`` must stay open until then); otherwise every value is an array.
    """
    n_old = len(old["doc_lengths"])
    kept = None if keep is None or bool(np.all(keep)) else np.flatnonzero(keep)
    n_kept = n_old if kept is None else len(kept)
    runs = None if kept is None else _runs(kept)

    def kept_ranges(ptr_name: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The kept rows' pointer array and element ranges (one per run of rows)."""
        ptr = np.asarray(old[ptr_name], dtype=np.int64)
        if kept is None:
            return ptr - ptr[0], [(int(ptr[0]), int(ptr[-1]))]
        out = np.zeros(len(kept) + 1, dtype=np.int64)
        np.cumsum(ptr[kept + 1] - ptr[kept], out=out[1:])
        return out, list(zip(ptr[runs[0]].tolist(), ptr[runs[1]].tolist()))

    def joined(dtype, source, ranges, tail: np.ndarray, table=None) -> Pieces:
        """``source``'s ``ranges`` (mapped through ``table``), then ``tail``."""
        def make():
            for a, b in ranges:
                for start in range(a, b, _PIECE):
                    chunk = source[start:min(b, start + _PIECE)]
                    yield chunk if table is None else np.take(table, chunk)
            yield tail
        return Pieces(dtype, sum(b - a for a, b in ranges) + len(tail), make)

    def rows_of(a: dict, names: Sequence[str], ptr: str, rows):
        if rows is None:
            return np.asarray(a[ptr], dtype=np.int64), [np.asarray(a[n]) for n in names]
        return _take_segments(a[ptr], [a[n] for n in names], rows)

    def per_doc(name: str) -> np.ndarray:
        o = np.asarray(old[name]) if kept is None else np.asarray(old[name])[kept]
        return np.concatenate([o, np.asarray(new[name])])

    # -- vocabulary: locate the new part's terms in the old vocabulary
    old_vocab = StringTable(old["vocab_offsets"], old["vocab_bytes"])
    new_vocab = StringTable(new["vocab_offsets"], new["vocab_bytes"]).all()
    pos, found = _insert_positions(old_vocab.all() if len(new_vocab) else [], new_vocab)
    fresh = ~found
    old_to, fresh_to = _interleave(len(old_vocab), pos[fresh])
    new_to = np.empty(len(new_vocab), dtype=np.int64)
    new_to[found] = old_to[pos[found]]
    new_to[fresh] = fresh_to
    n_terms = len(old_vocab) + int(fresh.sum())

    # -- per-term statistics of the kept documents: the old ones minus the deleted rows'
    o_df = np.asarray(old["term_df"], dtype=np.int64)
    o_cf = np.asarray(old["term_cf"], dtype=np.int64)
    if kept is not None:
        _, (g_terms, g_counts) = rows_of(old, ("forward_terms", "forward_counts"),
                                         "forward_indptr", np.flatnonzero(~keep))
        o_df = o_df - np.bincount(g_terms, minlength=len(o_df))
        o_cf = o_cf - np.bincount(g_terms, weights=g_counts, minlength=len(o_cf)
                                  ).astype(np.int64)  # float64 sums of ints < 2**53: exact
    df = np.zeros(n_terms, dtype=np.int64)
    cf = np.zeros(n_terms, dtype=np.int64)
    df[old_to], cf[old_to] = o_df, o_cf
    df[new_to] += np.asarray(new["term_df"], dtype=np.int64)
    cf[new_to] += np.asarray(new["term_cf"], dtype=np.int64)
    # terms no document holds any more (deletions) are dropped; ids stay in string order
    live = df > 0
    final = np.cumsum(live, dtype=np.int64) - 1
    old_fin = final[old_to].astype(np.int32)  # old term id -> final id (dead: unused)
    new_fin = final[new_to].astype(np.int32)
    n_live = int(live.sum())

    # -- document rows: kept old rows then new rows, term ids mapped (rows stay sorted)
    o_ptr, ranges = kept_ranges("forward_indptr")
    n_ptr = np.asarray(new["forward_indptr"], dtype=np.int64)
    indptr = np.concatenate([o_ptr, o_ptr[-1] + n_ptr[1:]])
    terms = joined(np.int32, old["forward_terms"], ranges,
                   np.take(new_fin, np.asarray(new["forward_terms"])), table=old_fin)
    counts = joined(np.int32, old["forward_counts"], ranges,
                    np.asarray(new["forward_counts"]))

    # -- term-major postings, merged: a term's kept old postings (renumbered, still in
    # document order), then its new ones (new documents are numbered after the kept);
    # made in blocks of final terms holding about _PIECE postings each
    n_old_post = np.zeros(n_live, dtype=np.int64)
    has = o_df > 0
    n_old_post[old_fin[has]] = o_df[has]
    n_df = np.asarray(new["term_df"], dtype=np.int64)
    n_post = n_old_post.copy()
    n_post[new_fin] += n_df
    p_ptr = np.zeros(n_live + 1, dtype=np.int64)
    np.cumsum(n_post, out=p_ptr[1:])
    total = int(p_ptr[-1])
    bounds = np.unique(np.concatenate(
        ([0], np.searchsorted(p_ptr, np.arange(_PIECE, total, _PIECE)), [n_live]))).tolist()
    o_pptr = np.asarray(old["postings_indptr"], dtype=np.int64)
    nn_ptr = np.asarray(new["postings_indptr"], dtype=np.int64)
    old_block = np.searchsorted(old_fin, bounds).tolist()  # old_fin does not decrease
    new_block = np.searchsorted(new_fin, bounds).tolist()
    renumber = None if kept is None else (np.cumsum(keep, dtype=np.int64) - 1).astype(np.int32)
    shift = np.int32(n_kept)

    def postings(name: str):
        """Chunks of the merged ``postings_docs`` or ``postings_counts``."""
        docs = name == "postings_docs"
        old_values, new_values = old[name], new[name]
        for j in range(len(bounds) - 1):
            f0, f1 = bounds[j], bounds[j + 1]
            ea, eb = int(o_pptr[old_block[j]]), int(o_pptr[old_block[j + 1]])
            chunk = np.asarray(old_values[ea:eb])
            if renumber is not None:
                on = keep[np.asarray(old["postings_docs"][ea:eb])]
                chunk = renumber[chunk[on]] if docs else chunk[on]
            if len(chunk) != int(n_old_post[f0:f1].sum()):
                raise IndexFormatError("the index's postings disagree with its document "
                                       "rows; run 'retrieval check' and rebuild the index")
            ua, ub = new_block[j], new_block[j + 1]
            if ua == ub:
                yield chunk
                continue
            local = p_ptr[f0:f1 + 1] - p_ptr[f0]
            nf = np.asarray(new_fin[ua:ub], dtype=np.int64) - f0
            first = local[nf] + n_old_post[f0 + nf]  # where each new term's run goes
            at = np.repeat(first - (nn_ptr[ua:ub] - nn_ptr[ua]), n_df[ua:ub]) + np.arange(
                int(nn_ptr[ub] - nn_ptr[ua]))
            out = np.empty(int(local[-1]), dtype=np.int32)
            slot = np.ones(len(out), dtype=bool)
            slot[at] = False
            out[slot] = chunk
            added = np.asarray(new_values[int(nn_ptr[ua]):int(nn_ptr[ub])], dtype=np.int32)
            out[at] = added + shift if docs else added
            yield out

    post_docs = Pieces(np.int32, total, lambda: postings("postings_docs"))
    post_counts = Pieces(np.int32, total, lambda: postings("postings_counts"))

    arrays = {"forward_indptr": indptr, "forward_terms": terms, "forward_counts": counts,
              "postings_indptr": p_ptr, "postings_docs": post_docs,
              "postings_counts": post_counts, "doc_lengths": per_doc("doc_lengths"),
              "doc_unique": per_doc("doc_unique"), "term_cf": cf[live],
              "term_df": df[live].astype(np.int32)}
    source = np.empty(n_terms, dtype=np.int64)  # merged position -> row of combined table
    source[old_to] = np.arange(len(old_vocab))
    source[fresh_to] = len(old_vocab) + np.flatnonzero(fresh)
    combined_off = np.concatenate([np.asarray(old["vocab_offsets"], dtype=np.int64),
                                   np.asarray(old["vocab_offsets"][-1], dtype=np.int64)
                                   + np.asarray(new["vocab_offsets"][1:], dtype=np.int64)])
    combined_blob = np.concatenate([np.asarray(old["vocab_bytes"]),
                                    np.asarray(new["vocab_bytes"])])
    arrays["vocab_offsets"], (arrays["vocab_bytes"],) = _take_segments(
        combined_off, [combined_blob], source[live])

    # -- document ids, merged in string order
    d_off, (d_blob,) = rows_of(old, ("docid_bytes",), "docid_offsets", kept)
    n_off = np.asarray(new["docid_offsets"], dtype=np.int64)
    arrays["docid_offsets"] = np.concatenate([d_off, d_off[-1] + n_off[1:]])
    arrays["docid_bytes"] = np.concatenate([d_blob, np.asarray(new["docid_bytes"])])
    old_sorted = np.asarray(old["docid_sorted"], dtype=np.int64)
    if kept is not None:
        renumber = np.cumsum(keep) - 1
        old_sorted = renumber[old_sorted[keep[old_sorted]]]
    new_sorted = np.asarray(new["docid_sorted"], dtype=np.int64) + n_kept
    ids = StringTable(arrays["docid_offsets"], arrays["docid_bytes"])
    new_ids = [ids[int(i)] for i in new_sorted]
    dpos, dfound = _insert_positions(_Sorted(ids, old_sorted), new_ids)
    if dfound.any():
        raise InputError(f"document id {new_ids[int(np.flatnonzero(dfound)[0])]!r} is "
                         f"already in the index")
    o_to, n_to = _interleave(len(old_sorted), dpos)
    order = np.empty(n_kept + len(new_sorted), dtype=np.int32)
    order[o_to] = old_sorted
    order[n_to] = new_sorted
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    arrays["docid_sorted"], arrays["docid_rank"] = order, rank

    # -- per-document data
    arrays["doc_hash"] = per_doc("doc_hash")
    arrays["doc_group"] = per_doc("doc_group")
    arrays["doc_file_stat"] = per_doc("doc_file_stat")
    f_off, (f_blob,) = rows_of(old, ("doc_file_bytes",), "doc_file_offsets", kept)
    nf_off = np.asarray(new["doc_file_offsets"], dtype=np.int64)
    arrays["doc_file_offsets"] = np.concatenate([f_off, f_off[-1] + nf_off[1:]])
    arrays["doc_file_bytes"] = np.concatenate([f_blob, np.asarray(new["doc_file_bytes"])])
    if store_text:
        t_off, ranges = kept_ranges("text_offsets")
        nt_off = np.asarray(new["text_offsets"], dtype=np.int64)
        arrays["text_offsets"] = np.concatenate([t_off, t_off[-1] + nt_off[1:]])
        arrays["text_bytes"] = joined(np.uint8, old["text_bytes"], ranges,
                                      np.asarray(new["text_bytes"]))
    for name, arr in arrays.items():
        if isinstance(arr, Pieces):
            if not lazy:
                arrays[name] = arr.materialize()
            continue
        want = ARRAY_SPECS[name][0]
        if str(arr.dtype) != want:
            arrays[name] = arr.astype(want)
    return arrays


def _counts(arrays: dict[str, np.ndarray]) -> dict:
    lengths = np.asarray(arrays["doc_lengths"])
    return {"documents": int(len(lengths)), "terms": int(len(arrays["term_cf"])),
            "tokens": int(lengths.sum()), "postings": int(len(arrays["postings_docs"])),
            "empty_documents": int(np.count_nonzero(lengths == 0))}


# -- in-memory changes ------------------------------------------------------------------------

def _as_new_docs(documents, group: int = -1) -> Iterable[_NewDoc]:
    for item in documents:
        if isinstance(item, _NewDoc):
            yield item
            continue
        try:
            docid, text = item
        except (TypeError, ValueError):
            raise InputError(f"expected (docid, text) pairs, got {item!r:.80}") from None
        if not isinstance(text, (str, StreamedText)):
            raise InputError(f"document {docid!r}: text must be a string, got "
                             f"{type(text).__name__}")
        yield _NewDoc(docid, text, group, b"")


def _doc_numbers(index: Index, docids: Iterable[str]) -> tuple[list[int], list[str]]:
    """Document numbers of the ids present, and the ids absent (one binary search each)."""
    found, missing = [], []
    for d in docids:
        try:
            if not isinstance(d, str):
                raise KeyError(d)
            found.append(index.doc_number(d))
        except KeyError:
            missing.append(d)
    return found, missing


def _plan(index: Index, documents, delete: Iterable[str], *, replace: bool,
          missing_ok: bool) -> tuple[dict | None, np.ndarray, int, int, int]:
    """Analyse ``documents`` and decide what to drop; (new arrays, keep, added, replaced,
    deleted)."""
    store_text = bool(index.manifest.get("store_text"))
    delete = list(dict.fromkeys(delete))
    numbers, missing = _doc_numbers(index, delete)
    if missing and not missing_ok:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"no document {missing[0]!r} in the index{more}; nothing was "
                         f"deleted")
    keep = np.ones(index.num_docs, dtype=bool)
    keep[np.asarray(numbers, dtype=np.int64)] = False
    part, ids = _build_part(_as_new_docs(documents), index.analyzer, store_text)
    present, _absent = _doc_numbers(index, ids)
    replaced = 0
    if present:
        if not replace:
            first = next(d for d in ids if _has(index, d))
            more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
            raise InputError(f"document id {first!r} is already in the index{more}; pass "
                             f"--replace to re-index such documents, or use 'retrieval "
                             f"update' for changed files (nothing was written)")
        replaced = int(np.count_nonzero(keep[np.asarray(present)]))
        keep[np.asarray(present, dtype=np.int64)] = False
    added = len(ids) - replaced
    deleted = int(np.count_nonzero(~keep)) - replaced
    return (part if ids else None), keep, added, replaced, deleted


def _has(index: Index, docid: str) -> bool:
    try:
        index.doc_number(docid)
        return True
    except KeyError:
        return False


def _empty_part(store_text: bool) -> dict[str, np.ndarray]:
    return _arrays_from_counts([], store_text)


def _apply(index: Index, part: dict | None, keep: np.ndarray, *, lazy: bool = False
           ) -> dict[str, np.ndarray]:
    store_text = bool(index.manifest.get("store_text"))
    old, _ = complete_arrays(index.arrays, index.manifest)
    return merge_arrays(old, keep, part if part is not None else _empty_part(store_text),
                        store_text=store_text, lazy=lazy)


def _next_manifest(index: Index, arrays: dict, **extra) -> dict:
    keep_keys = ("format", "format_version", "created", "analyzer", "store_text", "sources",
                 "source_groups", "read_stats")
    manifest = {k: index.manifest[k] for k in keep_keys if k in index.manifest}
    manifest.setdefault("source_groups", [])
    manifest.setdefault("sources", [])
    manifest.update(extra)
    manifest["package_version"] = __version__
    manifest["modified"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    manifest["counts"] = _counts(arrays)
    return manifest


def apply_changes(index: Index, add: Iterable = (), delete: Iterable[str] = (), *,
                  replace: bool = False, missing_ok: bool = False) -> Index:
    """A new in-memory :class:`Index`: ``index`` without ``delete`` and with ``add``.

    ``add`` holds ``(docid, text)`` pairs; an id already present is an error unless
    ``replace`` (then the document is re-indexed). Deleting an absent id is an error
    unless ``missing_ok``. ``index`` itself is not modified.
    """
    part, keep, _a, _r, _d = _plan(index, add, delete, replace=replace,
                                   missing_ok=missing_ok)
    arrays = _apply(index, part, keep)
    return Index(arrays, _next_manifest(index, arrays), path=None)


# -- on-disk changes ---------------------------------------------------------------------------

def _write(path: Path, index: Index, arrays: dict, manifest: dict, change: Change) -> None:
    written = write_generation(path, arrays, manifest, previous=index.manifest)
    change.written = True
    change.generation = written["generation"]
    change.documents = written["counts"]["documents"]


def _open_for_write(index_path) -> Path:
    path = Path(index_path)
    read_manifest(path)  # a clear error before touching anything
    return path


def add_documents(index_path: str | os.PathLike, documents: Iterable, *,
                  replace: bool = False) -> Change:
    """Add ``(docid, text)`` pairs to the index at ``index_path`` (crash-safe, locked).

    An id already in the index is an error (nothing is written) unless ``replace``.
    The documents belong to no source group: ``update`` leaves them alone.
    """
    start = time.perf_counter()
    path = _open_for_write(index_path)
    change = Change(path, "add")
    with WriteLock(path):
        index = Index.open(path)
        part, keep, change.added, change.replaced, _ = _plan(
            index, documents, (), replace=replace, missing_ok=False)
        change.documents = index.num_docs
        change.generation = index.generation
        if part is not None:
            arrays = _apply(index, part, keep, lazy=True)
            manifest = _next_manifest(index, arrays, last_change=_last(change))
            _write(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


def _last(change: Change) -> dict:
    return {"operation": change.operation, "added": change.added,
            "replaced": change.replaced, "deleted": change.deleted,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def delete_documents(index_path: str | os.PathLike, docids: Iterable[str], *,
                     missing_ok: bool = False) -> Change:
    """Delete documents by id. An unknown id is an error (nothing is deleted) unless
    ``missing_ok``. Deleted documents never appear in results again (but a document of an
    indexed folder whose file still exists comes back at the next ``update``)."""
    start = time.perf_counter()
    path = _open_for_write(index_path)
    change = Change(path, "delete")
    ids = list(docids)
    with WriteLock(path):
        index = Index.open(path)
        _, keep, _, _, change.deleted = _plan(index, (), ids, replace=False,
                                              missing_ok=missing_ok)
        change.documents = index.num_docs
        change.generation = index.generation
        if change.deleted:
            arrays = _apply(index, None, keep, lazy=True)
            manifest = _next_manifest(index, arrays, last_change=_last(change))
            _write(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


def add_paths(index_path: str | os.PathLike, paths: Iterable[str | os.PathLike], *,
              replace: bool = False, on_file: Callable | None = None,
              stream_threshold: int = STREAM_BYTES) -> Change:
    """Index the files under ``paths`` into an existing index (crash-safe, locked).

    A path inside a folder the index was built from joins that folder's source group
    (ids relative to it); other paths form a new group (ids by the reader's rules).
    """
    start = time.perf_counter()
    path = _open_for_write(index_path)
    resolved = _resolve(paths)
    _refuse_self_indexing(path, resolved)
    change = Change(path, "add")
    with WriteLock(path):
        index = Index.open(path)
        groups = [list(g) for g in index.manifest.get("source_groups", [])]
        readers: list[tuple[FolderReader, int]] = []
        outside: list[Path] = []
        inside: dict[int, list[Path]] = {}
        for p in resolved:
            g = _containing_group(groups, p)
            if g is None:
                outside.append(p)
            else:
                inside.setdefault(g, []).append(p)
        for g, ps in inside.items():
            reader = FolderReader(ps, stream_threshold=stream_threshold)
            base = _group_base([Path(x) for x in groups[g]])
            reader.files_ = [SourceFile(s.file, path_docid(s.path.relative_to(base)))
                             for s in reader.files_]
            readers.append((reader, g))
        if outside:
            groups.append([str(p) for p in outside])
            readers.append((FolderReader(outside, stream_threshold=stream_threshold),
                            len(groups) - 1))
        docs = (d for reader, g in readers for d in _read_docs(reader, g, on_file))
        part, keep, change.added, change.replaced, _ = _plan(
            index, docs, (), replace=replace, missing_ok=False)
        change.read_stats = _merge_stats(r.stats_.as_dict() for r, _ in readers)
        change.documents = index.num_docs
        change.generation = index.generation
        if part is not None or outside:
            arrays = _apply(index, part, keep, lazy=True)
            manifest = _next_manifest(index, arrays, source_groups=groups,
                                      sources=[p for g in groups for p in g],
                                      last_change=_last(change))
            _write(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


def _containing_group(groups: list[list[str]], p: Path) -> int | None:
    for g, members in enumerate(groups):
        for m in members:
            root = Path(m)
            if p == root or (root.is_dir() and root in p.parents):
                return g
    return None


def _merge_stats(stats: Iterable[dict]) -> dict:
    out: dict = {}
    for s in stats:
        for k, v in s.items():
            if isinstance(v, dict):
                inner = out.setdefault(k, {})
                for kk, vv in v.items():
                    inner[kk] = inner.get(kk, 0) + vv
            else:
                out[k] = out.get(k, 0) + v
    return out


def update(index_path: str | os.PathLike, *, forget_missing: bool = False,
           dry_run: bool = False, on_file: Callable | None = None,
           stream_threshold: int = STREAM_BYTES) -> Change:
    """Re-read the index's sources: add new files, re-index changed ones, delete removed
    ones (see the module docstring). Unchanged documents are not analysed again. With
    ``dry_run`` nothing is written; the returned :class:`Change` says what would be."""
    start = time.perf_counter()
    path = _open_for_write(index_path)
    change = Change(path, "update")
    with WriteLock(path):
        index = Index.open(path)
        groups = [list(g) for g in index.manifest.get("source_groups", [])]
        if not groups:
            raise InputError(f"{path}: the index records no source folders (its documents "
                             f"were given directly); use 'retrieval add' and 'retrieval "
                             f"delete' to change it")
        ids = index.docids.all()
        number = {d: i for i, d in enumerate(ids)}
        hashes = np.asarray(index.arrays["doc_hash"])
        hash_bytes = hashes.tobytes()
        owner = np.asarray(index.arrays["doc_group"])
        files, trusted = _recorded_files(index)
        seen = np.zeros(index.num_docs, dtype=bool)
        produced: dict[str, str] = {}
        changed: list[_NewDoc] = []
        replaced: list[int] = []
        unreadable: set[bytes] = set()
        stats = []
        for g, members in enumerate(groups):
            present = [Path(m) for m in members if Path(m).exists()]
            if len(present) < len(members):
                gone = next(m for m in members if not Path(m).exists())
                if not forget_missing:
                    raise InputError(f"{gone}: this indexed source is gone; restore it, or "
                                     f"pass --forget-missing to delete its documents "
                                     f"(nothing was written)")
                groups[g] = [str(p) for p in present]
            if not present:
                continue
            reader = FolderReader(present, stream_threshold=stream_threshold)
            base = _group_base([Path(m) for m in members])
            if _group_base(present) != base:  # keep ids stable when members vanish
                reader.files_ = [SourceFile(s.file, path_docid(s.path.relative_to(base)))
                                 for s in reader.files_]
            since = time.time_ns()
            listed = reader.files_
            at, same = _unchanged(listed, g, number, index, files, trusted, owner, seen,
                                  since)  # unchanged size and mtime: not read again
            seen[same] = True
            skip = np.zeros(len(listed), dtype=bool)
            skip[at] = True
            produced.update((listed[k].docid, listed[k].file) for k in at.tolist())
            change.unchanged += len(at)
            if on_file is not None:
                for k in at.tolist():
                    on_file(listed[k])
            reader.files_ = [s for s, sk in zip(listed, skip.tolist()) if not sk]
            for doc in _read_docs(reader, g, on_file):
                where = os.fsdecode(doc.file)
                if doc.docid in produced:
                    raise InputError(f"document id {doc.docid!r} is read from both "
                                     f"{produced[doc.docid]} and {where}; ids must be "
                                     f"unique (nothing was written)")
                produced[doc.docid] = where
                i = number.get(doc.docid)
                if i is None:
                    changed.append(doc)
                    continue
                if owner[i] != g and owner[i] < 0:
                    raise InputError(f"document id {doc.docid!r} was added directly and is "
                                     f"now also read from {where}; delete it first "
                                     f"(retrieval delete) or rename the file (nothing "
                                     f"was written)")
                seen[i] = True
                digest = (text_hash(doc.text) if isinstance(doc.text, str)
                          else _stream_counts_hash(doc.text))
                if digest == hash_bytes[i * HASH_BYTES:(i + 1) * HASH_BYTES] \
                        and owner[i] == g:
                    change.unchanged += 1
                    continue
                changed.append(doc)
                replaced.append(i)
            unreadable.update(os.fsencode(p) for p, why in reader.skipped_files_
                              if why == "unreadable" and Path(p).exists())
            stats.append(reader.stats_.as_dict())
        change.read_stats = _merge_stats(stats)
        # a group's documents not produced any more are deleted (unless unreadable now)
        in_groups = owner >= 0
        gone = np.flatnonzero(in_groups & ~seen)
        keep = np.ones(index.num_docs, dtype=bool)
        if len(gone) and unreadable:
            for i in gone.tolist():
                file = index.source_file(i)
                if file is not None and os.fsencode(file) in unreadable:
                    seen[i] = True
                    change.kept_unreadable.append(ids[i])
            gone = np.flatnonzero(in_groups & ~seen)
        keep[gone] = False
        keep[np.asarray(replaced, dtype=np.int64)] = False
        change.deleted = len(gone)
        change.replaced = len(replaced)
        change.added = len(changed) - len(replaced)
        change.documents = index.num_docs
        change.generation = index.generation
        if dry_run or not (changed or len(gone) or groups != index.manifest["source_groups"]):
            change.seconds = time.perf_counter() - start
            return change
        store_text = bool(index.manifest.get("store_text"))
        part, _ = _build_part(changed, index.analyzer, store_text)
        arrays = _apply(index, part, keep, lazy=True)
        manifest = _next_manifest(index, arrays, source_groups=groups,
                                  sources=[p for g in groups for p in g],
                                  read_stats=change.read_stats, last_change=_last(change))
        _write(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


def _recorded_files(index: Index) -> tuple[list[str], np.ndarray]:
    """Per document: its recorded source file (as the reader lists it, ``os.fsdecode``;
    "" when none) and whether ``update`` may skip it when the file's size and mtime are
    unchanged: it has a trusted recorded stat and is the only document of a file that is
    not JSON Lines."""
    n = index.num_docs
    if "doc_file_stat" not in index.arrays:
        return [""] * n, np.zeros(n, dtype=bool)
    stat = np.asarray(index.arrays["doc_file_stat"])
    off = np.asarray(index.arrays["doc_file_offsets"], dtype=np.int64).tolist()
    raw = bytes(np.asarray(index.arrays["doc_file_bytes"]))
    if raw.isascii():  # byte offsets are character offsets: slice one decoded string
        text = raw.decode("ascii")
        files = [text[a:b] for a, b in zip(off[:-1], off[1:])]
    else:
        files = [os.fsdecode(raw[a:b]) for a, b in zip(off[:-1], off[1:])]
    jsonl = tuple(JSONL_EXTENSIONS)
    trusted = (stat[:, 0] >= 0) & np.fromiter(
        (bool(f) and not f[-8:].lower().endswith(jsonl) for f in files), bool, n)
    rows = np.flatnonzero(trusted).tolist()
    twice = {f for f, c in Counter(files[i] for i in rows).items() if c > 1}
    if twice:  # a file that gave several documents is always read again
        trusted[[i for i in rows if files[i] in twice]] = False
    return files, trusted


def _unchanged(sources: Sequence[SourceFile], group: int, number: dict[str, int],
               index: Index, files: list[str], trusted: np.ndarray, owner: np.ndarray,
               seen: np.ndarray, since: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``sources``, document numbers) of the listed files ``update`` need
    not read: a trusted document of this group with this id and file, not yet seen,
    whose file's size and mtime equal the recorded ones (the same rule as git's)."""
    doc = np.fromiter((number.get(s.docid, -1) for s in sources), np.int64, len(sources))
    at = np.flatnonzero(doc >= 0)
    d = doc[at]
    ok = trusted[d] & (owner[d] == group) & ~seen[d]
    at, d = at[ok], d[ok]
    same = np.fromiter((files[j] == sources[k].file for k, j in zip(at.tolist(), d.tolist())),
                       bool, len(at))
    at, d = at[same], d[same]
    _, first = np.unique(d, return_index=True)  # a number listed twice: the first only
    first.sort()
    at, d = at[first], d[first]
    now = np.array([file_stat(sources[k].file, since) for k in at.tolist()],
                   dtype=np.int64).reshape(-1, 2)
    ok = np.all(now == np.asarray(index.arrays["doc_file_stat"])[d], axis=1)
    return at[ok], d[ok]


def _stream_counts_hash(stream: StreamedText) -> bytes:
    digest = hashlib.blake2b(digest_size=HASH_BYTES)
    for piece in stream.chunks():
        digest.update(piece.encode("utf-8", errors="surrogatepass"))
    return digest.digest()


def build_index(paths: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                analyzer: Analyzer | None = None, store_text: bool = True,
                overwrite: bool = False, on_file: Callable | None = None,
                stream_threshold: int = STREAM_BYTES, reader: FolderReader | None = None,
                jobs: int = 1) -> tuple[Index, FolderReader]:
    """Read ``paths`` (or use ``reader``, made on them) and write a new index at
    ``output`` (see :meth:`Index.save`).

    Records the source group, per-document files and hashes, so ``update`` works later.
    Returns the in-memory index and the reader (its ``stats_`` say what was read).
    """
    if reader is None:
        reader = FolderReader(paths, stream_threshold=stream_threshold)
    resolved = [str(p.resolve()) for p in reader.paths]
    analyzer = analyzer if analyzer is not None else Analyzer()
    arrays, _ = _build_part(_read_docs(reader, 0, on_file), analyzer, store_text, jobs=jobs)
    manifest = _fresh_manifest(analyzer, store_text, arrays, [resolved],
                               reader.stats_.as_dict())
    index = Index(arrays, manifest, path=None)
    index.save(output, overwrite=overwrite)
    return index, reader


def _fresh_manifest(analyzer: Analyzer, store_text: bool, arrays: dict,
                    groups: list[list[str]], read_stats: dict) -> dict:
    from .index import FORMAT, FORMAT_VERSION
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
            "created": now, "analyzer": analyzer.config(), "counts": _counts(arrays),
            "store_text": store_text, "sources": [p for g in groups for p in g],
            "source_groups": groups, "read_stats": read_stats}


# -- verification --------------------------------------------------------------------------------

def check(index_path: str | os.PathLike) -> list[str]:
    """Verify an index completely; return one line per problem (empty: all is well).

    Checks the manifest, the generation's identity, every array file's existence, size,
    dtype, shape and full BLAKE2b checksum, then the arrays' internal consistency
    (:func:`verify_arrays`). Takes no lock (it is a reader): when problems are found but
    a writer published another generation meanwhile (its files may have been removed
    under the check), the new generation is checked instead, up to three times.
    """
    path = Path(index_path)
    for _ in range(3):
        before = _generation_dir_or_none(path)
        problems = _check_once(path)
        if not problems or before is None or _generation_dir_or_none(path) == before:
            return problems
    return problems


def _generation_dir_or_none(path: Path) -> str | None:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("generation_dir")
    except (OSError, ValueError, AttributeError):
        return None


def _check_once(path: Path) -> list[str]:
    try:
        manifest = read_manifest(path)
    except IndexFormatError as exc:
        return [str(exc)]
    gen = path / manifest["generation_dir"]
    if not gen.is_dir():
        return [f"{path}: the generation folder {gen.name} is missing"]
    problems = []
    try:
        info = json.loads((gen / GENERATION_INFO).read_text(encoding="utf-8"))
        if info.get("index_id") != manifest["index_id"]:
            problems.append(f"{gen.name}: belongs to another index")
        if info.get("generation") != manifest["generation"]:
            problems.append(f"{gen.name}: holds generation {info.get('generation')}, the "
                            f"manifest says {manifest['generation']}")
    except (OSError, ValueError, AttributeError) as exc:
        problems.append(f"{gen.name}/{GENERATION_INFO}: unreadable ({exc})")
    names = list(_ARRAYS) + (list(_TEXT_ARRAYS) if manifest.get("store_text") else []) \
        + list(_LIFECYCLE_ARRAYS)
    arrays = {}
    for name in names:
        want = manifest["arrays"].get(name)
        file = gen / f"{name}.npy"
        if want is None:
            problems.append(f"{name}: not described in the manifest")
            continue
        if not file.is_file():
            problems.append(f"{file.name}: missing")
            continue
        try:
            size = file.stat().st_size
            if size != want.get("bytes"):
                problems.append(f"{file.name}: {size} bytes, the manifest says "
                                f"{want.get('bytes')}")
                continue
            if file_checksum(file) != want.get("blake2b"):
                problems.append(f"{file.name}: checksum mismatch (the file changed on disk)")
                continue
        except OSError as exc:
            problems.append(f"{file.name}: unreadable ({exc.strerror})")
            continue
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            problems.append(f"{file.name}: unreadable ({exc})")
            continue
        if list(arr.shape) != want.get("shape") or str(arr.dtype) != want.get("dtype"):
            problems.append(f"{file.name}: shape {list(arr.shape)} {arr.dtype}, the manifest "
                            f"says {want.get('shape')} {want.get('dtype')}")
            continue
        arrays[name] = arr
    if problems or len(arrays) != len(names):
        return problems
    return verify_arrays(arrays, manifest)


def verify_arrays(arrays: dict[str, np.ndarray], manifest: dict) -> list[str]:
    """Internal consistency of an index's arrays; one line per problem."""
    problems: list[str] = []
    a = {k: np.asarray(v) for k, v in arrays.items()}
    counts = manifest.get("counts", {})
    n, v = counts.get("documents"), counts.get("terms")
    for name, (dtype, shape) in ARRAY_SPECS.items():
        if name not in a:
            if name in _TEXT_ARRAYS and not manifest.get("store_text"):
                continue
            problems.append(f"{name}: missing")
            continue
        if str(a[name].dtype) != dtype:
            problems.append(f"{name}: dtype {a[name].dtype}, expected {dtype}")
    if problems:
        return problems
    p = len(a["forward_terms"])
    want_len = {"N": n, "N+1": None if n is None else n + 1, "V": v,
                "V+1": None if v is None else v + 1, "P": p}
    for name, (_, shape) in ARRAY_SPECS.items():
        if name in a and want_len.get(shape[0]) is not None \
                and a[name].shape[0] != want_len[shape[0]]:
            problems.append(f"{name}: length {a[name].shape[0]}, expected "
                            f"{want_len[shape[0]]} ({shape[0]} with N={n}, V={v}, P={p})")
    if problems:
        return problems

    def offsets_ok(name: str, end: int) -> bool:
        off = a[name]
        if len(off) == 0 or off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] != end:
            problems.append(f"{name}: not a non-decreasing sequence from 0 to {end}")
            return False
        return True

    fwd_ok = offsets_ok("forward_indptr", p)
    post_ok = offsets_ok("postings_indptr", len(a["postings_docs"]))
    if len(a["postings_docs"]) != p:
        problems.append(f"postings_docs: {len(a['postings_docs'])} postings, the forward "
                        f"index has {p}")
        post_ok = False
    if fwd_ok:
        t = a["forward_terms"]
        if p and (t.min() < 0 or t.max() >= v):
            problems.append("forward_terms: term ids out of range")
            fwd_ok = False
        elif not _ascending_within(t, a["forward_indptr"]):
            problems.append("forward_terms: not strictly ascending within a document")
            fwd_ok = False
        if p and a["forward_counts"].min() <= 0:
            problems.append("forward_counts: counts must be positive")
        if not np.array_equal(a["doc_lengths"], _segment_sums(a["forward_counts"],
                                                              a["forward_indptr"])):
            problems.append("doc_lengths: not the sums of the documents' counts")
        if not np.array_equal(a["doc_unique"], np.diff(a["forward_indptr"])):
            problems.append("doc_unique: not the documents' numbers of distinct terms")
    if post_ok:
        d = a["postings_docs"]
        if p and (d.min() < 0 or d.max() >= n):
            problems.append("postings_docs: document numbers out of range")
            post_ok = False
        elif not _ascending_within(d, a["postings_indptr"]):
            problems.append("postings_docs: not strictly ascending within a term")
            post_ok = False
        if not np.array_equal(a["term_cf"], _segment_sums(a["postings_counts"],
                                                          a["postings_indptr"])):
            problems.append("term_cf: not the sums of the terms' postings")
        if not np.array_equal(a["term_df"], np.diff(a["postings_indptr"])):
            problems.append("term_df: not the terms' numbers of postings")
        if v and np.diff(a["postings_indptr"]).min() <= 0:
            problems.append("postings_indptr: a term without postings")
    if fwd_ok and post_ok:
        fwd = sp.csr_matrix((a["forward_counts"], a["forward_terms"], a["forward_indptr"]),
                            shape=(n, v)).tocsc()
        fwd.sort_indices()
        if not (np.array_equal(fwd.indptr, a["postings_indptr"])
                and np.array_equal(fwd.indices, a["postings_docs"])
                and np.array_equal(fwd.data, a["postings_counts"])):
            problems.append("postings: the term-major postings disagree with the "
                            "document-major rows")
    tokens = int(a["doc_lengths"].sum())
    if tokens != counts.get("tokens") or int(a["term_cf"].sum()) != tokens:
        problems.append(f"counts: |C| is {tokens} by documents, {int(a['term_cf'].sum())} by "
                        f"terms, the manifest says {counts.get('tokens')}")
    if counts.get("postings") is not None and counts["postings"] != p:
        problems.append(f"counts: {p} postings, the manifest says {counts['postings']}")
    if offsets_ok("vocab_offsets", len(a["vocab_bytes"])):
        terms = _strings(a["vocab_offsets"], a["vocab_bytes"], "vocabulary", problems)
        if terms is not None:
            if any(x >= y for x, y in zip(terms, terms[1:])):
                problems.append("vocabulary: terms not strictly sorted")
            if any(not t for t in terms):
                problems.append("vocabulary: an empty term")
    if offsets_ok("docid_offsets", len(a["docid_bytes"])):
        ids = _strings(a["docid_offsets"], a["docid_bytes"], "document ids", problems)
        order = a["docid_sorted"]
        if ids is not None:
            if any(not d for d in ids):
                problems.append("document ids: an empty id")
            if not np.array_equal(np.sort(order), np.arange(n)):
                problems.append("docid_sorted: not a permutation of the documents")
            else:
                ordered = [ids[i] for i in order.tolist()]
                if any(x >= y for x, y in zip(ordered, ordered[1:])):
                    problems.append("docid_sorted: ids not in strictly ascending order "
                                    "(or repeated)")
                rank = np.empty(n, dtype=np.int64)
                rank[order] = np.arange(n)
                if not np.array_equal(rank, a["docid_rank"]):
                    problems.append("docid_rank: not the inverse of docid_sorted")
    if "text_offsets" in a:
        offsets_ok("text_offsets", len(a["text_bytes"]))
    offsets_ok("doc_file_offsets", len(a["doc_file_bytes"]))
    groups = manifest.get("source_groups", [])
    if n and (a["doc_group"].min() < -1 or a["doc_group"].max() >= len(groups)):
        problems.append("doc_group: group numbers out of range")
    empty = int(np.count_nonzero(a["doc_lengths"] == 0))
    if counts.get("empty_documents") is not None and counts["empty_documents"] != empty:
        problems.append(f"counts: {empty} empty documents, the manifest says "
                        f"{counts['empty_documents']}")
    return problems


def _ascending_within(values: np.ndarray, indptr: np.ndarray) -> bool:
    """Strictly ascending inside every CSR segment."""
    if len(values) < 2:
        return True
    step_ok = np.diff(values.astype(np.int64)) > 0
    starts = np.asarray(indptr[1:-1], dtype=np.int64)
    starts = starts[(starts > 0) & (starts < len(values))]
    step_ok[starts - 1] = True  # a new segment may start lower
    return bool(step_ok.all())


def _strings(offsets, blob, what: str, problems: list[str]) -> list[str] | None:
    try:
        return StringTable(offsets, blob).all()
    except UnicodeDecodeError:
        problems.append(f"{what}: not valid UTF-8")
        return None

