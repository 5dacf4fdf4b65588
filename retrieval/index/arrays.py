"""The one place that makes index arrays and manifests.

:class:`~retrieval.index.builder.IndexBuilder` (a build from documents), the lifecycle
commands (the part holding the new documents of an ``add``/``update``, see
:mod:`retrieval.index.lifecycle`) and :func:`~retrieval.index.merge.merge_arrays` (their
merged result) all end here:

* :func:`assemble` — every core array (forward and term-major CSR, lengths, cf, df,
  vocabulary, document ids and their string order, stored text) from a document-major CSR
  of counts whose rows are sorted by term id;
* :func:`lifecycle_arrays` — the per-document hash, source group, file and file stat;
* :func:`complete_arrays` — those lifecycle arrays for an index that lacks them;
* :func:`new_manifest` / :func:`next_manifest` / :func:`counts` — the manifest of a fresh
  index, of the next generation of an existing one, and the counts both record.

The layout of every array is in :mod:`retrieval.index.layout`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np

from .._version import __version__
from ..analysis import Analyzer
from .layout import FORMAT, FORMAT_VERSION, HASH_BYTES, LIFECYCLE_ARRAYS


def segment_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Exact int64 sums of ``values`` over the CSR segments ``indptr`` (``reduceat`` in
    int64 over the non-empty segments: no array of the size of ``values`` is made)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    out = np.zeros(len(indptr) - 1, dtype=np.int64)
    has = indptr[1:] > indptr[:-1]
    if has.any():
        out[has] = np.add.reduceat(values, indptr[:-1][has], dtype=np.int64)
    return out


def range_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions of the ranges [starts[i], starts[i] + lengths[i]) one after another
    (int64), e.g. the postings of several terms from their CSR offsets: one ``repeat``
    and one ``arange``, no Python loop per range."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + \
        np.arange(int(lengths.sum()), dtype=np.int64)


def pack(strings: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, blob) of byte strings: string ``i`` is ``blob[offsets[i]:offsets[i+1]]``."""
    offsets = np.zeros(len(strings) + 1, dtype=np.int64)
    if len(strings):
        np.cumsum(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)),
                  out=offsets[1:])
    blob = np.frombuffer(b"".join(strings), dtype=np.uint8).copy()
    return offsets, blob


def sorted_order(strings: Sequence[str]) -> np.ndarray:
    """The positions of ``strings`` in code-point order (int32)."""
    order = np.asarray(sorted(range(len(strings)), key=strings.__getitem__), dtype=np.int32)
    return order.reshape(-1)


def docid_arrays(docids: Sequence[str]) -> dict[str, np.ndarray]:
    """The document-id arrays: the ids, their string order and each id's rank in it."""
    offsets, blob = pack([d.encode("utf-8") for d in docids])
    order = sorted_order(docids)
    rank = np.empty(len(docids), dtype=np.int32)
    rank[order] = np.arange(len(docids), dtype=np.int32)
    return {"docid_offsets": offsets, "docid_bytes": blob, "docid_sorted": order,
            "docid_rank": rank}


def arrays_from_forward(indptr, terms, counts, n_terms: int) -> dict[str, np.ndarray]:
    """Forward, postings and count arrays from a document-major CSR (sorted rows).

    The term-major postings are its transpose (scipy's linear-time ``tocsc``; rows come
    out ascending within a term); ``doc_lengths`` |d| and ``term_cf`` are exact int64 sums.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    terms = np.asarray(terms, dtype=np.int32)
    counts = np.asarray(counts, dtype=np.int32)
    n_docs = len(indptr) - 1
    import scipy.sparse as sp   # here only: searching needs no scipy
    fwd = sp.csr_matrix((counts, terms, indptr), shape=(n_docs, n_terms))
    post = fwd.tocsc()
    del fwd
    post.sort_indices()
    a = {"forward_indptr": indptr, "forward_terms": terms, "forward_counts": counts,
         "postings_indptr": post.indptr.astype(np.int64),
         "postings_docs": post.indices.astype(np.int32),
         "postings_counts": post.data.astype(np.int32)}
    del post
    a["doc_lengths"] = segment_sums(counts, indptr)
    a["doc_unique"] = np.diff(indptr).astype(np.int32)
    a["term_cf"] = segment_sums(a["postings_counts"], a["postings_indptr"])
    a["term_df"] = np.diff(a["postings_indptr"]).astype(np.int32)
    return a


def assemble(indptr, terms, counts, vocab: Sequence[str], docids: Sequence[str],
             texts: Sequence[bytes] | None) -> dict[str, np.ndarray]:
    """Every core array of an index (and the stored text unless ``texts`` is None).

    ``indptr``/``terms``/``counts``: the document-major CSR of c(w, d), term ids ascending
    within a document; ``vocab``: the terms, sorted by code point (a term's id is its
    position); ``docids``: the ids in document-number order; ``texts``: each document's
    stored UTF-8 text.
    """
    arrays = arrays_from_forward(indptr, terms, counts, len(vocab))
    arrays["vocab_offsets"], arrays["vocab_bytes"] = pack([t.encode("utf-8") for t in vocab])
    arrays.update(docid_arrays(docids))
    if texts is not None:
        arrays["text_offsets"], arrays["text_bytes"] = pack(texts)
    return arrays


def lifecycle_arrays(hashes: Sequence[bytes], groups: Sequence[int], files: Sequence[bytes],
                     stats: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """The per-document arrays ``update`` relies on: text hash, source group, source file
    (``os.fsencode`` bytes; empty: none) and that file's (size, mtime ns)."""
    out = {"doc_hash": np.frombuffer(b"".join(hashes), dtype=np.uint8)
           .reshape(len(hashes), HASH_BYTES).copy(),
           "doc_group": np.asarray(groups, dtype=np.int32)}
    out["doc_file_offsets"], out["doc_file_bytes"] = pack(files)
    out["doc_file_stat"] = np.asarray(stats, dtype=np.int64).reshape(len(stats), 2)
    return out


def arrays_from_counts(docids: Sequence[str], term_counts: Sequence[dict[str, int]],
                       texts: Sequence[bytes] | None, lifecycle: dict[str, np.ndarray]
                       ) -> dict[str, np.ndarray]:
    """The arrays of a small index made directly from per-document term counts (the
    streamed documents of a build; an empty part)."""
    vocab = sorted({t for counts in term_counts for t in counts})
    tid = {t: i for i, t in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for r, counts in enumerate(term_counts):
        for t, n in counts.items():
            rows.append(r)
            cols.append(tid[t])
            vals.append(n)
    import scipy.sparse as sp   # here only: searching needs no scipy
    fwd = sp.csr_matrix((np.asarray(vals, dtype=np.int64),
                         (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                        shape=(len(term_counts), len(vocab)))
    fwd.sort_indices()
    arrays = assemble(fwd.indptr, fwd.indices, fwd.data, vocab, docids, texts)
    arrays.update(lifecycle)
    return arrays


def empty_arrays(store_text: bool) -> dict[str, np.ndarray]:
    """The complete arrays of an index of no documents."""
    return arrays_from_counts([], [], [] if store_text else None,
                              lifecycle_arrays([], [], [], []))


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


def complete_arrays(arrays: dict[str, np.ndarray], manifest: dict
                    ) -> tuple[dict[str, np.ndarray], dict]:
    """``arrays`` plus the lifecycle arrays when absent (an index from :meth:`Index.build`).

    ``doc_hash`` is computed from the stored text (zeros — "unknown", so ``update``
    re-reads such documents once — when no text is stored); ``doc_group`` is 0 when the
    manifest names sources (the documents were read from them), else -1; no files.
    """
    if all(name in arrays for name in LIFECYCLE_ARRAYS) and "source_groups" in manifest:
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


def counts(arrays: dict[str, np.ndarray]) -> dict:
    """The manifest's ``counts``: documents, terms, tokens |C|, postings, empty documents."""
    lengths = np.asarray(arrays["doc_lengths"])
    return {"documents": int(len(lengths)), "terms": int(len(arrays["term_cf"])),
            "tokens": int(lengths.sum()), "postings": int(len(arrays["postings_docs"])),
            "empty_documents": int(np.count_nonzero(lengths == 0))}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_manifest(analyzer: Analyzer, store_text: bool, arrays: dict, *, sources=(),
                 read_stats: dict | None = None,
                 source_groups: list[list[str]] | None = None, fields=()) -> dict:
    """The manifest of a fresh index (the storage adds identity, generation and the
    per-array descriptions when it is written). ``source_groups`` is recorded when given
    (a build from paths); :func:`complete_arrays` derives it otherwise."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "package_version": __version__, "created": _now(),
                "analyzer": analyzer.config(), "counts": counts(arrays),
                "store_text": store_text, "sources": [str(s) for s in sources]}
    if source_groups is not None:
        manifest["source_groups"] = source_groups
    if fields:
        manifest["fields"] = list(fields)  # the extra fields (retrieval.index.fields)
    manifest["read_stats"] = read_stats or {}
    return manifest


def next_manifest(previous: dict, arrays: dict, **extra) -> dict:
    """The manifest of the generation after ``previous`` holding ``arrays``: what
    describes the index is kept, ``extra`` overrides, the counts are recounted and
    cached estimates dropped (the documents changed)."""
    keep_keys = ("format", "format_version", "created", "analyzer", "store_text", "sources",
                 "source_groups", "read_stats", "fields")
    manifest = {k: previous[k] for k in keep_keys if k in previous}
    manifest.setdefault("source_groups", [])
    manifest.setdefault("sources", [])
    manifest.update(extra)
    manifest["package_version"] = __version__
    manifest["modified"] = _now()
    manifest["counts"] = counts(arrays)
    return manifest
