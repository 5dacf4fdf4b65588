"""The index: a folder of ``.npy`` arrays plus ``manifest.json``.

Layout (format version 1). ``N`` documents, ``V`` terms, ``P`` (document, term) pairs:

==========================  ==========  =======================================================
file                        dtype       content
==========================  ==========  =======================================================
``postings_indptr.npy``     int64 V+1   term-major CSR: term ``t``'s postings are
                                        ``[indptr[t], indptr[t+1])``
``postings_docs.npy``       int32 P     document numbers, ascending within a term
``postings_counts.npy``     int32 P     c(w, d)
``forward_indptr.npy``      int64 N+1   document-major CSR of the same counts
``forward_terms.npy``       int32 P     term ids, ascending within a document
``forward_counts.npy``      int32 P     c(w, d)
``doc_lengths.npy``         int64 N     |d| = Σ_w c(w, d)
``doc_unique.npy``          int32 N     |d|_u, distinct terms in d
``term_cf.npy``             int64 V     collection frequency cf(w); |C| = Σ cf
``term_df.npy``             int32 V     document frequency
``vocab_offsets.npy``       int64 V+1   UTF-8 bytes of term ``t`` are
``vocab_bytes.npy``         uint8       ``vocab_bytes[offsets[t]:offsets[t+1]]``; terms sorted
                                        by code point, so a term's id is its sorted position
``docid_offsets.npy``       int64 N+1   external document ids (strings), in document-number
``docid_bytes.npy``         uint8       order (the order documents were added)
``docid_sorted.npy``        int32 N     document numbers in docid string order
``docid_rank.npy``          int32 N     each document's position in that order (tie-breaks)
``text_offsets.npy``        int64 N+1   the documents' text, when stored (snippets)
``text_bytes.npy``          uint8
==========================  ==========  =======================================================

The manifest records the format version, the package version, the analyzer configuration
(queries are analysed with it), the counts and every array's dtype and shape. Arrays are
opened with ``numpy.load(mmap_mode="r")``.

Writes are atomic: the index is written to a temporary sibling folder, flushed to disk,
then renamed onto the target path, so an interrupted build never leaves a partial index
there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .analysis import Analyzer
from .errors import IndexFormatError, InputError, ParameterError
from .records import Document

FORMAT = "retrieval-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

_ARRAYS = (
    "postings_indptr", "postings_docs", "postings_counts",
    "forward_indptr", "forward_terms", "forward_counts",
    "doc_lengths", "doc_unique", "term_cf", "term_df",
    "vocab_offsets", "vocab_bytes", "docid_offsets", "docid_bytes",
    "docid_sorted", "docid_rank",
)
_TEXT_ARRAYS = ("text_offsets", "text_bytes")


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
    ``num_terms``, ``num_tokens`` (|C|), ``analyzer``, ``manifest``, ``path`` and the
    arrays listed in the module docstring (read-only).
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
        """Open an index folder; arrays are memory-mapped read-only."""
        path = Path(path)
        manifest = read_manifest(path)
        names = list(_ARRAYS) + (list(_TEXT_ARRAYS) if manifest.get("store_text") else [])
        declared = manifest.get("arrays", {})
        arrays = {}
        for name in names:
            file = path / f"{name}.npy"
            if not file.is_file():
                raise IndexFormatError(f"{path}: array file {file.name} is missing; "
                                       f"the index is damaged, rebuild it")
            try:
                arr = np.load(file, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise IndexFormatError(f"{path}: cannot read {file.name} ({exc}); "
                                       f"the index is damaged, rebuild it") from None
            want = declared.get(name)
            if want is not None and (list(arr.shape) != want["shape"]
                                     or str(arr.dtype) != want["dtype"]):
                raise IndexFormatError(
                    f"{path}: {file.name} has shape {list(arr.shape)} {arr.dtype}, the "
                    f"manifest says {want['shape']} {want['dtype']}; rebuild the index")
            arrays[name] = arr
        return cls(arrays, manifest, path=path)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the index to ``path`` atomically and return the path.

        An existing index at ``path`` is replaced only with ``overwrite=True``; an
        existing folder that is not an index is never replaced.
        """
        target = Path(path)
        if target.exists():
            if not is_index(target):
                raise InputError(f"{target} exists and is not an index; choose another "
                                 f"output path")
            if not overwrite:
                raise InputError(f"{target} already holds an index; pass --force "
                                 f"(overwrite=True) to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-",
                                    dir=target.parent))
        try:
            manifest = dict(self.manifest)
            manifest["arrays"] = {}
            for name, arr in self.arrays.items():
                arr = np.ascontiguousarray(arr)
                with open(tmp / f"{name}.npy", "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
                    fh.flush()
                    os.fsync(fh.fileno())
                manifest["arrays"][name] = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
            with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2, ensure_ascii=False)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest = manifest
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
        size = None
        if self.path is not None:
            size = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
            counts["bytes_on_disk"] = size
        return counts


def read_manifest(path: Path) -> dict:
    """Read and validate ``manifest.json``; IndexFormatError with a fix otherwise."""
    if not path.exists():
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
        raise IndexFormatError(f"{file}: unreadable manifest ({exc}); rebuild the index") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path}: not an index of this tool (manifest format is not "
                               f"{FORMAT!r}); build one with 'retrieval index'")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"{path}: index format version {version}, this version of "
                               f"retrieval reads version {FORMAT_VERSION}; rebuild the index")
    for key in ("analyzer", "counts"):
        if key not in manifest:
            raise IndexFormatError(f"{file}: manifest lacks {key!r}; rebuild the index")
    try:
        Analyzer.from_config(manifest["analyzer"])
    except ParameterError as exc:
        raise IndexFormatError(f"{file}: {exc}") from None
    return manifest


def is_index(path: Path) -> bool:
    try:
        read_manifest(Path(path))
        return True
    except IndexFormatError:
        return False


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary folders left by writers of ``target`` that were killed."""
    for tmp in target.parent.glob(f".{target.name}.tmp-*-*"):
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
    """Move the finished folder ``new`` onto ``target`` (replacing an old index)."""
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
