"""The index on disk: immutable generation folders of ``.npy`` arrays behind a small,
atomically replaced ``manifest.json``.

Layout (format version 2)
-------------------------
::

    INDEX/
      manifest.json        the current generation's manifest (small; replaced atomically)
      lock                 writers hold an exclusive flock on it; holds the writer's pid
      g000007-3fa9c2d1/    the current generation: immutable once written
        generation.json    {"index_id", "generation"}: which index and generation this is
        postings_docs.npy  ... one file per array (table below)
      g000006-81be0c47/    the previous generation, kept so slow readers still find it

``N`` documents, ``V`` terms, ``P`` (document, term) pairs:

==========================  ==========  =======================================================
array                       dtype       content
==========================  ==========  =======================================================
``postings_indptr``         int64 V+1   term-major CSR: term ``t``'s postings are
                                        ``[indptr[t], indptr[t+1])``
``postings_docs``           int32 P     document numbers, ascending within a term
``postings_counts``         int32 P     c(w, d)
``forward_indptr``          int64 N+1   document-major CSR of the same counts
``forward_terms``           int32 P     term ids, ascending within a document
``forward_counts``          int32 P     c(w, d)
``doc_lengths``             int64 N     |d| = Σ_w c(w, d)
``doc_unique``              int32 N     |d|_u, distinct terms in d
``term_cf``                 int64 V     collection frequency cf(w); |C| = Σ cf
``term_df``                 int32 V     document frequency
``vocab_offsets``           int64 V+1   UTF-8 bytes of term ``t`` are
``vocab_bytes``             uint8       ``vocab_bytes[offsets[t]:offsets[t+1]]``; terms sorted
                                        by code point, so a term's id is its sorted position;
                                        every term occurs in at least one document
``docid_offsets``           int64 N+1   external document ids (strings), in document-number
``docid_bytes``             uint8       order
``docid_sorted``            int32 N     document numbers in docid string order
``docid_rank``              int32 N     each document's position in that order (tie-breaks)
``text_offsets``            int64 N+1   the documents' text, when stored (snippets)
``text_bytes``              uint8
``doc_hash``                uint8 N×16  BLAKE2b-128 of each document's text (UTF-8), which
                                        ``update`` compares to find changed documents
``doc_group``               int32 N     the source group (``manifest["source_groups"]``) a
                                        document was read from; -1 when added directly
``doc_file_offsets``        int64 N+1   the file each document was read from (``os.fsencode``
``doc_file_bytes``          uint8       bytes of its absolute path; empty when added directly)
``doc_file_stat``           int64 N×2   that file's size and modification time (ns) when it was
                                        read, or -1 -1 when unknown or too recent to trust;
                                        ``update`` does not re-read a file whose size and
                                        time are unchanged
==========================  ==========  =======================================================

The manifest records the format version, the package version, the analyzer configuration
(queries are analysed with it), the counts, the sources, a random ``index_id`` (kept
across generations of one index), the ``generation`` number and folder, and for every
array its dtype, shape, size in bytes, the BLAKE2b checksum of the whole file and a
*sample* checksum of its first and last 64 KiB.

Reading
-------
:meth:`Index.open` reads ``manifest.json`` once and memory-maps that generation's arrays
(``numpy.load(mmap_mode="r")``). Files of a generation are never modified in place, so a
reader keeps a consistent view for as long as it lives, even after writers have moved
on. If the generation folder vanished between reading the manifest and opening the
arrays (two writers finished in between and the older one was removed), the open starts
again once from the new manifest. Opening does the cheap checks: format and version,
existence, size, dtype and shape of every file, the generation's identity and each
file's sample checksum — so truncated, swapped or foreign files (from another index or
another generation) are reported in one line that ends with what to do: rebuild.
The full checksums and the internal consistency are verified by
:func:`retrieval.lifecycle.check` (``retrieval check``).

Writing
-------
One writer at a time holds :class:`WriteLock` (``fcntl.flock`` on ``INDEX/lock``, its pid
written inside); a second writer gets :class:`IndexBusyError` naming that pid. A writer
writes a complete new generation into ``INDEX/.tmp-<name>``, fsyncs every file, renames the
folder to its final name, fsyncs ``INDEX``, then writes the new manifest to a temporary
file, fsyncs it and ``os.replace``-s it onto ``manifest.json`` — the single atomic step that
publishes the new generation. Only then are generations other than the new one and its
predecessor, and the leftovers of killed writers, removed. A process killed at any moment
therefore leaves either the previous index or the new one, both complete.

A brand-new index is written into a temporary sibling folder (``.INDEX.tmp-<pid>-…``) and
renamed onto the target path, so an interrupted build leaves no partial index; the next
writer of that path removes the temporary folders of writers that are no longer alive.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .analysis import Analyzer
from .errors import IndexFormatError, InputError, ParameterError, RetrievalError
from .records import Document

FORMAT = "retrieval-index"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
LOCK = "lock"
GENERATION_INFO = "generation.json"

_ARRAYS = (
    "postings_indptr", "postings_docs", "postings_counts",
    "forward_indptr", "forward_terms", "forward_counts",
    "doc_lengths", "doc_unique", "term_cf", "term_df",
    "vocab_offsets", "vocab_bytes", "docid_offsets", "docid_bytes",
    "docid_sorted", "docid_rank",
)
_TEXT_ARRAYS = ("text_offsets", "text_bytes")
_LIFECYCLE_ARRAYS = ("doc_hash", "doc_group", "doc_file_offsets", "doc_file_bytes",
                     "doc_file_stat")

#: dtype and shape (in terms of N, V, P; None: any length) of every array
ARRAY_SPECS: dict[str, tuple[str, tuple]] = {
    "postings_indptr": ("int64", ("V+1",)), "postings_docs": ("int32", ("P",)),
    "postings_counts": ("int32", ("P",)), "forward_indptr": ("int64", ("N+1",)),
    "forward_terms": ("int32", ("P",)), "forward_counts": ("int32", ("P",)),
    "doc_lengths": ("int64", ("N",)), "doc_unique": ("int32", ("N",)),
    "term_cf": ("int64", ("V",)), "term_df": ("int32", ("V",)),
    "vocab_offsets": ("int64", ("V+1",)), "vocab_bytes": ("uint8", (None,)),
    "docid_offsets": ("int64", ("N+1",)), "docid_bytes": ("uint8", (None,)),
    "docid_sorted": ("int32", ("N",)), "docid_rank": ("int32", ("N",)),
    "text_offsets": ("int64", ("N+1",)), "text_bytes": ("uint8", (None,)),
    "doc_hash": ("uint8", ("N", 16)), "doc_group": ("int32", ("N",)),
    "doc_file_offsets": ("int64", ("N+1",)), "doc_file_bytes": ("uint8", (None,)),
    "doc_file_stat": ("int64", ("N", 2)),
}

HASH_BYTES = 16
_SAMPLE_BYTES = 64 * 1024
_WRITE_CHUNK = 16 * 1024 * 1024
_REBUILD = "rebuild the index"


class IndexBusyError(RetrievalError):
    """Another process holds the index's write lock."""


def text_hash(text: str) -> bytes:
    """The content hash recorded per document: BLAKE2b-128 of the text's UTF-8 bytes."""
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"),
                           digest_size=HASH_BYTES).digest()


class StringTable:
    """A read-only sequence of strings stored as UTF-8 bytes plus offsets."""

    def __init__(self, offsets: np.ndarray, blob: np.ndarray):
        self._offsets = offsets
        self._blob = blob

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        return bytes(self._blob[start:end]).decode("utf-8")

    def many(self, indices: Iterable[int]) -> list[str]:
        """The strings at ``indices`` (one bytes decode for the whole set)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            return []
        starts = np.asarray(self._offsets[idx])
        ends = np.asarray(self._offsets[idx + 1])
        blob = self._blob
        return [bytes(blob[s:e]).decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]

    def all(self) -> list[str]:
        data = bytes(self._blob).decode("utf-8") if len(self._blob) else ""
        # offsets are byte offsets; decode per item when the text is not pure ASCII
        if len(data) == len(self._blob):
            off = self._offsets.tolist()
            return [data[off[i]:off[i + 1]] for i in range(len(off) - 1)]
        return self.many(range(len(self)))


class Index:
    """An index in memory or opened (memory-mapped) from disk.

    Build one with :meth:`build` (from ``(docid, text)`` pairs) or open one with
    :meth:`open`; :meth:`save` writes it atomically. Attributes: ``num_docs``,
    ``num_terms``, ``num_tokens`` (|C|), ``analyzer``, ``manifest``, ``path`` (the index
    folder, or None in memory), ``generation`` (None in memory) and the arrays listed in
    the module docstring (read-only).
    """

    def __init__(self, arrays: dict[str, np.ndarray], manifest: dict, path: Path | None):
        self.arrays = arrays
        self.manifest = manifest
        self.path = path
        self.analyzer = Analyzer.from_config(manifest["analyzer"])
        counts = manifest["counts"]
        self.num_docs = int(counts["documents"])
        self.num_terms = int(counts["terms"])
        self.num_tokens = int(counts["tokens"])
        self.generation = manifest.get("generation") if path is not None else None
        self.vocabulary = StringTable(arrays["vocab_offsets"], arrays["vocab_bytes"])
        self.docids = StringTable(arrays["docid_offsets"], arrays["docid_bytes"])
        self._p_collection: np.ndarray | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, documents: Iterable[Document | tuple[str, str]], *,
              analyzer: Analyzer | None = None, store_text: bool = True) -> "Index":
        """Index ``(docid, text)`` pairs in memory. Ids must be unique non-empty strings."""
        from .builder import IndexBuilder
        builder = IndexBuilder(analyzer=analyzer, store_text=store_text)
        builder.add_documents(documents)
        return builder.finish()

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Index":
        """Open an index folder; arrays are memory-mapped read-only.

        Raises :class:`IndexFormatError` (one line, saying what is wrong and to rebuild)
        when the folder is not an index of this format or its files are damaged.
        """
        path = Path(path)
        for attempt in range(2):
            manifest = read_manifest(path)
            try:
                arrays = _open_generation(path, manifest)
            except _GenerationVanished:
                if attempt == 0:
                    continue  # a writer replaced it meanwhile: read the new manifest
                raise IndexFormatError(
                    f"{path}: the generation folder {manifest['generation_dir']} named by "
                    f"{MANIFEST} is missing; the index is damaged, {_REBUILD}") from None
            return cls(arrays, manifest, path=path)
        raise AssertionError("unreachable")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the index to ``path`` atomically and return the path.

        A new path gets a new index (written beside it, then renamed into place). An
        existing index at ``path`` is replaced only with ``overwrite=True``: under its
        write lock, as a new generation, so readers of the old one are not disturbed.
        An index of an older format (or a damaged one whose manifest names this tool) is
        replaced whole. An existing folder that is not an index is never replaced.
        """
        target = Path(path)
        state = index_state(target)
        arrays, manifest = complete_arrays(self.arrays, self.manifest)
        if state in ("other", "file"):
            kind = "file" if state == "file" else "folder"
            raise InputError(f"{target} exists and is a {kind} that is not an index; "
                             f"choose another output path (nothing was written)")
        if state in ("index", "old", "damaged") and not overwrite:
            what = {"index": "an index", "old": "an index of an older format",
                    "damaged": "a damaged index"}[state]
            raise InputError(f"{target} already holds {what}; pass --force "
                             f"(overwrite=True) to replace it")
        if state == "index":
            with WriteLock(target):
                previous = _read_manifest_or_none(target)
                written = write_generation(target, arrays, manifest, previous=previous,
                                           new_identity=True)
        else:
            written = _write_fresh(target, arrays, manifest, replace=state != "absent")
        self.arrays = arrays
        self.manifest = written
        return target

    # -- lookups -----------------------------------------------------------------------
    def term_id(self, term: str) -> int:
        """The id of an (analysed) index term, or -1 when the collection lacks it."""
        vocab = self.vocabulary
        lo, hi = 0, len(vocab)
        while lo < hi:
            mid = (lo + hi) // 2
            if vocab[mid] < term:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(vocab) and vocab[lo] == term else -1

    def doc_number(self, docid: str) -> int:
        """The internal number of an external document id; KeyError when absent."""
        order = self.arrays["docid_sorted"]
        ids = self.docids
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            if ids[int(order[mid])] < docid:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(order) and ids[int(order[lo])] == docid:
            return int(order[lo])
        raise KeyError(docid)

    def text(self, doc: int) -> str | None:
        """The stored text of document number ``doc`` (None when text is not stored)."""
        if "text_offsets" not in self.arrays:
            return None
        off = self.arrays["text_offsets"]
        raw = bytes(self.arrays["text_bytes"][int(off[doc]):int(off[doc + 1])])
        return raw.decode("utf-8", errors="surrogatepass")

    def source_file(self, doc: int) -> str | None:
        """The file document number ``doc`` was read from (None: added directly)."""
        if "doc_file_offsets" not in self.arrays:
            return None
        off = self.arrays["doc_file_offsets"]
        raw = bytes(self.arrays["doc_file_bytes"][int(off[doc]):int(off[doc + 1])])
        return os.fsdecode(raw) if raw else None

    def document_vector(self, doc: int) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, counts) of document number ``doc``."""
        ptr = self.arrays["forward_indptr"]
        s, e = int(ptr[doc]), int(ptr[doc + 1])
        return self.arrays["forward_terms"][s:e], self.arrays["forward_counts"][s:e]

    @property
    def p_collection(self) -> np.ndarray:
        """p(w|C) = cf(w) / |C| for every term (float64)."""
        if self._p_collection is None:
            total = max(self.num_tokens, 1)
            self._p_collection = np.asarray(self.arrays["term_cf"], dtype=np.float64) / total
        return self._p_collection

    def statistics(self) -> dict:
        lengths = np.asarray(self.arrays["doc_lengths"])
        counts = dict(self.manifest["counts"])
        if self.num_docs:
            counts.update({
                "mean_document_length": float(lengths.mean()),
                "median_document_length": float(np.median(lengths)),
                "max_document_length": int(lengths.max()),
            })
        if self.path is not None:
            size = sum(int(a.get("bytes", 0)) for a in self.manifest.get("arrays", {}).values())
            try:
                size += (self.path / MANIFEST).stat().st_size
            except OSError:
                pass
            counts["bytes_on_disk"] = size
        return counts


# -- manifests ------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict:
    """Read and validate ``manifest.json``; IndexFormatError with a fix otherwise."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise IndexFormatError(f"{path}: a symbolic link that leads nowhere (broken or "
                                   f"a loop); build an index with 'retrieval index'")
        raise IndexFormatError(f"{path}: no such index; build one with 'retrieval index'")
    if not path.is_dir():
        raise IndexFormatError(f"{path}: not an index (an index is a folder); "
                               f"build one with 'retrieval index'")
    file = path / MANIFEST
    if not file.is_file():
        raise IndexFormatError(f"{path}: not an index (no {MANIFEST}); "
                               f"build one with 'retrieval index'")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{file}: unreadable manifest ({exc}); {_REBUILD}") from None
    except OSError as exc:
        raise IndexFormatError(f"{file}: cannot read the manifest ({exc.strerror})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path}: not an index of this tool (manifest format is not "
                               f"{FORMAT!r}); build one with 'retrieval index'")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"{path}: index format version {version}, this version of "
                               f"retrieval reads version {FORMAT_VERSION}; {_REBUILD} "
                               f"(retrieval index ... --force)")
    for key in ("analyzer", "counts", "generation", "generation_dir", "index_id", "arrays"):
        if key not in manifest:
            raise IndexFormatError(f"{file}: manifest lacks {key!r}; {_REBUILD}")
    gen = manifest["generation_dir"]
    if not isinstance(gen, str) or not gen.startswith("g") or "/" in gen or gen in (".", ".."):
        raise IndexFormatError(f"{file}: manifest names no valid generation folder; {_REBUILD}")
    counts = manifest["counts"]
    if not isinstance(counts, dict) or not all(
            isinstance(counts.get(k), int) and counts[k] >= 0
            for k in ("documents", "terms", "tokens")):
        raise IndexFormatError(f"{file}: manifest counts are malformed; {_REBUILD}")
    if not isinstance(manifest["arrays"], dict):
        raise IndexFormatError(f"{file}: manifest arrays are malformed; {_REBUILD}")
    try:
        Analyzer.from_config(manifest["analyzer"])
    except (ParameterError, AttributeError, TypeError) as exc:
        raise IndexFormatError(f"{file}: {exc}") from None
    return manifest


def _read_manifest_or_none(path: Path) -> dict | None:
    try:
        return read_manifest(path)
    except IndexFormatError:
        return None


def index_state(path: Path) -> str:
    """What ``path`` holds: ``absent``, ``empty`` (an empty folder), ``index`` (an index of
    this format), ``old`` (an index of this tool in another format version), ``damaged``
    (a folder whose manifest names this tool, or with this layout, but unreadable),
    ``file`` or ``other`` (a folder that is not an index)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return "absent"
    if not path.is_dir():
        return "file"
    try:
        entries = list(path.iterdir())
    except OSError:
        return "other"
    if not entries:
        return "empty"
    try:
        read_manifest(path)
        return "index"
    except IndexFormatError:
        pass
    try:
        raw = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("format") == FORMAT:
            return "old" if raw.get("format_version") != FORMAT_VERSION else "damaged"
    except (OSError, ValueError):
        pass
    names = {e.name for e in entries}
    ours = {MANIFEST, LOCK}
    if names & ours and all(n in ours or _is_generation_name(n) or n.startswith(".tmp-")
                            or n.startswith(f".{MANIFEST}.tmp") for n in names):
        return "damaged"
    return "other"


def is_index(path: Path) -> bool:
    """True when ``path`` is an index of this format version (its manifest reads)."""
    return index_state(Path(path)) == "index"


def _is_generation_name(name: str) -> bool:
    head, _, tail = name.partition("-")
    return len(head) == 7 and head[0] == "g" and head[1:].isdigit() and len(tail) == 8


# -- opening ------------------------------------------------------------------------------------

class _GenerationVanished(Exception):
    pass


def _damaged(path: Path, what: str) -> IndexFormatError:
    return IndexFormatError(f"{path}: {what}; the index is damaged, {_REBUILD}")


def _open_generation(path: Path, manifest: dict) -> dict[str, np.ndarray]:
    gen_name = manifest["generation_dir"]
    gen = path / gen_name
    if not gen.is_dir():
        raise _GenerationVanished
    _check_identity(path, gen, manifest)
    declared = manifest["arrays"]
    names = list(_ARRAYS) + (list(_TEXT_ARRAYS) if manifest.get("store_text") else [])
    names += [n for n in _LIFECYCLE_ARRAYS if n in declared]
    _check_declared_shapes(path, manifest, names)
    arrays = {}
    for name in names:
        file = gen / f"{name}.npy"
        want = declared[name]
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            if not gen.is_dir():
                raise _GenerationVanished from None
            raise _damaged(path, f"array file {file.name} is missing") from None
        except OSError as exc:
            raise _damaged(path, f"cannot read {file.name} ({exc.strerror})") from None
        if size != want.get("bytes"):
            raise _damaged(path, f"{file.name} has {size} bytes, the manifest says "
                                 f"{want.get('bytes')} (truncated or replaced)")
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
            sample = sample_checksum(file)
        except FileNotFoundError:
            raise _GenerationVanished from None
        except (ValueError, OSError) as exc:
            raise _damaged(path, f"cannot read {file.name} ({exc})") from None
        if list(arr.shape) != want["shape"] or str(arr.dtype) != want["dtype"]:
            raise _damaged(path, f"{file.name} has shape {list(arr.shape)} {arr.dtype}, the "
                                 f"manifest says {want['shape']} {want['dtype']}")
        if sample != want.get("sample"):
            raise _damaged(path, f"{file.name} does not match its checksum (a file from "
                                 f"another index or generation, or changed on disk)")
        arrays[name] = arr
    return arrays


def _check_identity(path: Path, gen: Path, manifest: dict) -> None:
    try:
        info = json.loads((gen / GENERATION_INFO).read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not gen.is_dir():
            raise _GenerationVanished from None
        raise _damaged(path, f"{gen.name}/{GENERATION_INFO} is missing") from None
    except (OSError, ValueError) as exc:
        raise _damaged(path, f"{gen.name}/{GENERATION_INFO} is unreadable ({exc})") from None
    if not isinstance(info, dict) or info.get("index_id") != manifest["index_id"]:
        raise _damaged(path, f"the generation folder {gen.name} belongs to another index")
    if info.get("generation") != manifest["generation"]:
        raise _damaged(path, f"the generation folder {gen.name} holds generation "
                             f"{info.get('generation')}, the manifest says "
                             f"{manifest['generation']}")


def _check_declared_shapes(path: Path, manifest: dict, names: list[str]) -> None:
    """The shapes the manifest declares agree with its counts (no file is read)."""
    counts = manifest["counts"]
    n, v = counts["documents"], counts["terms"]
    declared = manifest["arrays"]
    p = None
    for name in names:
        want = declared.get(name)
        if not isinstance(want, dict) or not isinstance(want.get("shape"), list):
            raise _damaged(path, f"the manifest does not describe array {name}")
        dtype, spec = ARRAY_SPECS[name]
        if want.get("dtype") != dtype:
            raise _damaged(path, f"the manifest gives {name} dtype {want.get('dtype')}, "
                                 f"expected {dtype}")
        shape = want["shape"]
        if len(shape) != len(spec):
            raise _damaged(path, f"the manifest gives {name} shape {shape}")
        for got, dim in zip(shape, spec):
            expect = {"N": n, "N+1": n + 1, "V": v, "V+1": v + 1, 16: 16}.get(dim)
            if dim == "P":
                p = got if p is None else p
                expect = p
            if expect is not None and got != expect:
                raise _damaged(path, f"the manifest gives {name} shape {shape}, which does "
                                     f"not fit {n} documents and {v} terms")


def sample_checksum(file: Path) -> str:
    """BLAKE2b-128 of a file's size, first and last 64 KiB (cheap; checked on open)."""
    h = hashlib.blake2b(digest_size=16)
    with open(file, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        h.update(fh.read(_SAMPLE_BYTES))
        if size > _SAMPLE_BYTES:
            fh.seek(max(_SAMPLE_BYTES, size - _SAMPLE_BYTES))
            h.update(fh.read(_SAMPLE_BYTES))
    return h.hexdigest()


def file_checksum(file: Path) -> str:
    """BLAKE2b-256 of a whole file (recorded per array; verified by ``check``)."""
    h = hashlib.blake2b()
    with open(file, "rb") as fh:
        while chunk := fh.read(_WRITE_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# -- lifecycle arrays ----------------------------------------------------------------------------

def complete_arrays(arrays: dict[str, np.ndarray], manifest: dict
                    ) -> tuple[dict[str, np.ndarray], dict]:
    """``arrays`` plus the lifecycle arrays when absent (an index from :meth:`Index.build`).

    ``doc_hash`` is computed from the stored text (zeros — "unknown", so ``update``
    re-reads such documents once — when no text is stored); ``doc_group`` is 0 when the
    manifest names sources (the documents were read from them), else -1; no files.
    """
    if all(name in arrays for name in _LIFECYCLE_ARRAYS) and "source_groups" in manifest:
        return arrays, manifest
    arrays = dict(arrays)
    manifest = dict(manifest)
    n = int(manifest["counts"]["documents"])
    sources = [str(s) for s in manifest.get("sources", [])]
    manifest.setdefault("source_groups", [sources] if sources else [])
    if "doc_hash" not in arrays:
        hashes = np.zeros((n, HASH_BYTES), dtype=np.uint8)
        if "text_offsets" in arrays and n:
            off = np.asarray(arrays["text_offsets"]).tolist()
            blob = bytes(np.asarray(arrays["text_bytes"]))
            digest = b"".join(hashlib.blake2b(blob[off[i]:off[i + 1]],
                                              digest_size=HASH_BYTES).digest()
                              for i in range(n))
            hashes = np.frombuffer(digest, dtype=np.uint8).reshape(n, HASH_BYTES).copy()
        arrays["doc_hash"] = hashes
    if "doc_group" not in arrays:
        arrays["doc_group"] = np.full(n, 0 if manifest["source_groups"] else -1, np.int32)
    if "doc_file_offsets" not in arrays:
        arrays["doc_file_offsets"] = np.zeros(n + 1, dtype=np.int64)
        arrays["doc_file_bytes"] = np.zeros(0, dtype=np.uint8)
    if "doc_file_stat" not in arrays:  # also indexes written before this array existed
        arrays["doc_file_stat"] = np.full((n, 2), -1, dtype=np.int64)
    return arrays, manifest


# -- writing ----------------------------------------------------------------------------------------

class WriteLock:
    """The exclusive write lock of an index folder (``flock`` on ``INDEX/lock``).

    Non-blocking: when another process holds it, :class:`IndexBusyError` names that
    process's pid. The kernel releases the lock when its holder dies, even by SIGKILL.
    Readers never take it. Use as a context manager.
    """

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path)
        self._fd: int | None = None

    def __enter__(self) -> "WriteLock":
        file = self.path / LOCK
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise IndexFormatError(f"{self.path}: no such index; build one with "
                                   f"'retrieval index'") from None
        except OSError as exc:
            raise InputError(f"cannot lock the index for writing ({exc.strerror}); check "
                             f"its permissions", path=self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            except OSError:
                pass
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"cannot lock the index for writing ({exc.strerror})",
                                 path=self.path) from None
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise IndexBusyError(f"{self.path}: the index is being written by {who}; "
                                 f"wait for it to finish and try again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # releases the flock
            self._fd = None


class _HashingWriter:
    """A write-only file object that checksums what it writes."""

    def __init__(self, fh):
        self._fh = fh
        self.hash = hashlib.blake2b()

    def write(self, data) -> int:
        self.hash.update(data)
        return self._fh.write(data)


class Pieces:
    """A 1-D array given as the concatenation of chunks, made when it is written.

    An incremental change copies most of an index unchanged (the kept documents' text and
    rows); as ``Pieces`` those parts go from the old generation's memory-mapped files to
    the new files chunk by chunk, never held in memory whole. ``make()`` returns an
    iterable of arrays (made afresh at each call); ``length`` is their total size.
    """

    __slots__ = ("dtype", "length", "_make")

    def __init__(self, dtype, length: int, make):
        self.dtype, self.length, self._make = np.dtype(dtype), int(length), make

    def __len__(self) -> int:
        return self.length

    @property
    def shape(self) -> tuple[int]:
        return (self.length,)

    def chunks(self):
        for chunk in self._make():
            yield np.ascontiguousarray(chunk, dtype=self.dtype).reshape(-1)

    def materialize(self) -> np.ndarray:
        out = np.empty(self.length, dtype=self.dtype)
        at = 0
        for chunk in self.chunks():
            out[at:at + len(chunk)] = chunk
            at += len(chunk)
        if at != self.length:
            raise RuntimeError(f"pieces hold {at} items, not {self.length}")
        return out


def _write_array(file: Path, arr: np.ndarray | Pieces) -> dict:
    if isinstance(arr, Pieces):
        chunks, dtype, shape = arr.chunks(), arr.dtype, arr.shape
    else:
        arr = np.ascontiguousarray(arr)
        chunks, dtype, shape = [arr.reshape(-1)], arr.dtype, arr.shape
    with open(file, "wb") as raw:
        fh = _HashingWriter(raw)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
            "shape": tuple(shape)})
        fh.write(header.getvalue())
        items = 0
        for chunk in chunks:
            items += len(chunk)
            data = memoryview(chunk.view(np.uint8)) if chunk.size else memoryview(b"")
            for start in range(0, len(data), _WRITE_CHUNK):
                fh.write(data[start:start + _WRITE_CHUNK])
        if items != int(np.prod(shape)):
            raise RuntimeError(f"{file.name}: wrote {items} items, not {shape}")
        raw.flush()
        os.fsync(raw.fileno())
        size = raw.tell()
    return {"dtype": str(dtype), "shape": list(shape), "bytes": size,
            "blake2b": fh.hash.hexdigest(), "sample": sample_checksum(file)}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(file: Path, obj: dict) -> None:
    with open(file, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_generation(index_dir: Path, arrays: dict[str, np.ndarray], manifest: dict, *,
                     previous: dict | None, new_identity: bool = False) -> dict:
    """Publish ``arrays`` as the next generation of ``index_dir``; return its manifest.

    The caller holds the :class:`WriteLock` (or owns ``index_dir`` exclusively, as a
    fresh temporary folder). ``previous`` is the current manifest (None: none readable).
    ``new_identity`` gives the index a new ``index_id`` (a full rebuild). See the module
    docstring for the order of the steps that makes this crash-safe.
    """
    index_dir = Path(index_dir)
    arrays, manifest = complete_arrays(arrays, manifest)
    number = int(previous["generation"]) + 1 if previous else 1
    index_id = (previous["index_id"] if previous and not new_identity
                else secrets.token_hex(16))
    name = f"g{number:06d}-{secrets.token_hex(4)}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        described = {}
        for key in sorted(arrays):
            described[key] = _write_array(tmp / f"{key}.npy", arrays[key])
        _write_json(tmp / GENERATION_INFO, {"index_id": index_id, "generation": number})
        _fsync_dir(tmp)
        os.rename(tmp, index_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(index_dir)
    out = {k: v for k, v in manifest.items() if k not in ("arrays",)}
    out.update({"format": FORMAT, "format_version": FORMAT_VERSION, "index_id": index_id,
                "generation": number, "generation_dir": name,
                "previous_generation_dir": previous["generation_dir"] if previous else None,
                "arrays": described})
    pointer_tmp = index_dir / f".{MANIFEST}.tmp-{os.getpid()}"
    _write_json(pointer_tmp, out)
    os.replace(pointer_tmp, index_dir / MANIFEST)  # the commit point
    _fsync_dir(index_dir)
    remove_stale_generations(index_dir, keep={name, out["previous_generation_dir"]})
    return out


def remove_stale_generations(index_dir: Path, keep: set) -> None:
    """Remove generations not in ``keep`` and the leftovers of killed writers.

    Called by the lock holder only, so every temporary file found is a dead writer's.
    """
    for entry in index_dir.iterdir():
        name = entry.name
        if name in keep:
            continue
        if _is_generation_name(name) or name.startswith(".tmp-"):
            shutil.rmtree(entry, ignore_errors=True)
        elif name.startswith(f".{MANIFEST}.tmp-"):
            try:
                entry.unlink()
            except OSError:
                pass


def _write_fresh(target: Path, arrays: dict, manifest: dict, *, replace: bool) -> dict:
    """Write a new index into a temporary sibling folder, then rename it onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-",
                                dir=target.parent))
    try:
        os.chmod(tmp, 0o755 & ~_umask())
        (tmp / LOCK).touch()
        written = write_generation(tmp, arrays, manifest, previous=None, new_identity=True)
        if replace:
            _replace_dir(tmp, target)
        else:
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise InputError(f"{target} was created by another process meanwhile; "
                                     f"nothing was written") from None
                raise
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary folders left by writers of ``target`` that were killed."""
    try:
        leftovers = list(target.parent.glob(f".{target.name}.tmp-*-*"))
    except OSError:
        return
    for tmp in leftovers:
        try:
            pid = int(tmp.name[len(f".{target.name}.tmp-"):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` onto ``target`` (replacing an old-format index)."""
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- cached estimates -----------------------------------------------------------------------------

def store_estimate(index: "Index", key: str, entry: dict) -> bool:
    """Record ``entry`` as ``manifest["estimates"][key]`` of the index ``index`` was opened
    from; True when it was written.

    A cache, so best effort and never an error: nothing is written (False) when ``index``
    lives in memory, when another process holds the write lock (no waiting), when the
    index is read-only or its folder unwritable, or when the index has moved on to another
    generation since ``index`` was opened (the estimate describes the old documents).
    Otherwise, under the :class:`WriteLock`, the current manifest is re-read, the entry
    added, and the result written to a temporary file, fsynced and ``os.replace``-d onto
    ``manifest.json`` — the same atomic step that publishes a generation, so a reader sees
    the old manifest or the new one. The arrays and their checksums are untouched; the
    next ``add``/``delete``/``update`` drops the estimates (the documents changed).
    ``index.manifest`` is updated in memory too.
    """
    path = index.path
    if path is None:
        return False
    try:
        with WriteLock(path):
            current = _read_manifest_or_none(path)
            if current is None or any(current.get(k) != index.manifest.get(k) for k in
                                      ("index_id", "generation", "generation_dir")):
                return False
            estimates = dict(current.get("estimates") or {})
            estimates[key] = entry
            current["estimates"] = estimates
            tmp = path / f".{MANIFEST}.tmp-{os.getpid()}"
            try:
                _write_json(tmp, current)
                os.replace(tmp, path / MANIFEST)
            except BaseException:
                try:
                    tmp.unlink()
                except OSError:
                    pass
                raise
            try:
                _fsync_dir(path)
            except OSError:
                pass
    except (RetrievalError, OSError):
        return False
    index.manifest = dict(index.manifest)
    index.manifest["estimates"] = estimates
    return True
