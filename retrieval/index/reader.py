"""An index in memory or opened (memory-mapped) from disk: :class:`Index`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..analysis import Analyzer
from ..errors import IndexFormatError, InputError, ParameterError
from ..records import Document
from .arrays import complete_arrays
from .counting import DocumentCounts
from .layout import MANIFEST, REBUILD, StringTable
from .manifest import index_state, read_manifest, read_manifest_or_none
from .storage import GenerationVanished, WriteLock, open_generation, write_fresh, write_generation


class Index:
    """An index in memory or opened (memory-mapped) from disk.

    Build one with :meth:`build` (from ``(docid, text)`` pairs) or open one with
    :meth:`open`; :meth:`save` writes it atomically. Attributes: ``num_docs``,
    ``num_terms``, ``num_tokens`` (|C|), ``analyzer``, ``manifest``, ``path`` (the index
    folder, or None in memory), ``generation`` (None in memory) and the arrays listed in
    :mod:`retrieval.index.layout` (read-only).
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
        # N of the whole collection when this is one shard's view (retrieval.shards)
        self.collection_documents = int(counts.get("collection_documents", self.num_docs))
        self.generation = manifest.get("generation") if path is not None else None
        self.vocabulary = StringTable(arrays["vocab_offsets"], arrays["vocab_bytes"])
        self.docids = StringTable(arrays["docid_offsets"], arrays["docid_bytes"])
        self._p_collection: np.ndarray | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, documents: Iterable[Document | tuple[str, str]], *,
              analyzer: Analyzer | None = None, store_text: bool = True,
              fields: bool | None = None) -> "Index":
        """Index ``(docid, text)`` pairs in memory. Ids must be unique non-empty strings.

        ``(docid, text, title)`` triples (:class:`~retrieval.fields.FieldedDocument`)
        give titles; ``fields`` stores the title and name fields (True), not (False), or
        when some document has a title (None)."""
        counts = DocumentCounts(analyzer=analyzer, store_text=store_text, fields=fields)
        counts.add_documents(documents)
        return cls(*counts.finish_arrays(), path=None)

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: str = "once") -> "Index":
        """Open an index folder; arrays are memory-mapped read-only.

        Raises :class:`IndexFormatError` (one line, saying what is wrong and to rebuild)
        when the folder is not an index of this format or its files are damaged.
        ``verify="once"`` verifies every file's full checksum and the arrays' bounds and
        consistency once per file state (a verified stamp, see
        :mod:`retrieval.index.integrity`); ``verify="full"`` every time (the writers).
        """
        if verify not in ("once", "full"):
            raise ParameterError(f"verify must be 'once' or 'full', got {verify!r}")
        path = Path(path)
        for attempt in range(2):
            manifest = read_manifest(path)
            try:
                arrays = open_generation(path, manifest, full=verify == "full")
            except GenerationVanished:
                if attempt == 0:
                    continue  # a writer replaced it meanwhile: read the new manifest
                raise IndexFormatError(
                    f"{path}: the generation folder {manifest['generation_dir']} named by "
                    f"{MANIFEST} is missing; the index is damaged, {REBUILD}") from None
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
                previous = read_manifest_or_none(target)
                written = write_generation(target, arrays, manifest, previous=previous,
                                           new_identity=True)
        else:
            written = write_fresh(target, arrays, manifest, replace=state != "absent")
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


