"""Global collection statistics of a sharded index and the shard *views* that score with
them.

Every smoothing model of :mod:`retrieval.smoothing` reads, besides the document's own
counts c(w,d), |d| and |d|_u, only the collection model p(w|C) = cf(w)/|C|; the query
constant Σ_w p(w|θ_q) log p(w|C) and the drop rule for query terms absent from the
collection need the global vocabulary; feedback's ``fb_max_df`` cut needs df(w) and N.
Shard-local values of any of these would change the scores, so a shard is never searched
as it is. Instead :func:`shard_view` presents it as an :class:`~retrieval.index.Index`
over the *global* vocabulary:

* term ids are global ids (the global vocabulary is sorted by code point, as every
  index's is, so a shard's local ids map to global ids in the same order);
* ``term_cf``, ``term_df``, the vocabulary and ``num_tokens`` (|C|) are the global ones,
  so ``p_collection`` is the same float64 division cf(w)/|C| as in the single index;
* ``postings_indptr`` is re-indexed to global ids (a term absent from the shard has an
  empty postings list); postings, document statistics and ids are the shard's own;
* ``forward_terms`` is mapped to global ids on first use (feedback, explain).

A query is therefore prepared once (same term ids, weights, mass and constant as on the
single index) and every shard computes exactly the single index's score of each of its
documents: same terms summed in the same order, same float operations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..index import Index, StringTable
from ..index.arrays import arrays_from_forward, docid_arrays, pack


class CollectionStats(NamedTuple):
    """The statistics smoothing and feedback need, over the whole (sharded) collection.

    ``vocab_offsets``/``vocab_bytes``: the global vocabulary (sorted by code point; a
    term's id is its position); ``term_cf`` cf(w) (int64), ``term_df`` df(w) (int32);
    ``num_docs`` N and ``num_tokens`` |C| = Σ_w cf(w).
    """
    vocab_offsets: np.ndarray
    vocab_bytes: np.ndarray
    term_cf: np.ndarray
    term_df: np.ndarray
    num_docs: int
    num_tokens: int

    @property
    def num_terms(self) -> int:
        return len(self.term_cf)

    @property
    def vocabulary(self) -> StringTable:
        return StringTable(self.vocab_offsets, self.vocab_bytes)


def merge_statistics(indexes: list[Index]) -> tuple[CollectionStats, list[np.ndarray]]:
    """The global statistics of ``indexes`` (disjoint sets of documents) and, for each,
    the map local term id → global term id (int32, increasing).

    cf and df are exact integer sums; |C| and N are sums of the shards' counts.
    """
    vocabs = [ix.vocabulary.all() for ix in indexes]
    terms = sorted(set().union(*vocabs))
    ids = {t: i for i, t in enumerate(terms)}
    n_terms = len(terms)
    cf = np.zeros(n_terms, dtype=np.int64)
    df = np.zeros(n_terms, dtype=np.int64)
    maps = []
    for ix, vocab in zip(indexes, vocabs):
        m = np.fromiter(map(ids.__getitem__, vocab), dtype=np.int64, count=len(vocab))
        cf[m] += np.asarray(ix.arrays["term_cf"], dtype=np.int64)   # m is one-to-one
        df[m] += np.asarray(ix.arrays["term_df"], dtype=np.int64)
        maps.append(m.astype(np.int32))
    offsets, blob = pack([t.encode("utf-8") for t in terms])
    stats = CollectionStats(offsets, blob, cf, df.astype(np.int32),
                            sum(ix.num_docs for ix in indexes),
                            sum(ix.num_tokens for ix in indexes))
    return stats, maps


class _ViewArrays(dict):
    """A shard's arrays seen through the global vocabulary; ``forward_terms`` is mapped
    to global ids on first use."""

    def __init__(self, base, local_to_global: np.ndarray, **replaced):
        super().__init__({k: base[k] for k in base.keys() if k != "forward_terms"})
        self.update(replaced)
        self._base = base
        self._map = local_to_global

    def __missing__(self, key):
        if key != "forward_terms" or "forward_terms" not in self._base:
            raise KeyError(key)
        local = np.asarray(self._base["forward_terms"])
        value = self._map[local] if len(local) else local.copy()
        self[key] = value
        return value

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or (key == "forward_terms"
                                                and "forward_terms" in self._base)


def global_indptr(local_indptr: np.ndarray, local_to_global: np.ndarray,
                  n_terms: int) -> np.ndarray:
    """A shard's postings_indptr re-indexed by global term id (empty lists for the terms
    the shard lacks): its postings arrays stay as they are."""
    lens = np.zeros(n_terms, dtype=np.int64)
    lens[local_to_global] = np.diff(np.asarray(local_indptr, dtype=np.int64))
    ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    return ptr


def view_manifest(manifest: dict, stats: CollectionStats, tag: str) -> dict:
    """The shard's manifest with the global counts (terms, |C|, N as
    ``collection_documents``); ``index_id`` gets ``tag`` so caches keyed by it (pruning
    bounds, which depend on p(w|C)) never mix the shard alone with the shard in a
    collection."""
    out = dict(manifest)
    counts = dict(manifest["counts"])
    counts.update(terms=stats.num_terms, tokens=int(stats.num_tokens),
                  collection_documents=int(stats.num_docs))
    out["counts"] = counts
    if out.get("index_id"):
        out["index_id"] = f"{out['index_id']}-{tag}"
    return out


def shard_view(index: Index, stats: CollectionStats, local_to_global: np.ndarray,
               tag: str = "global") -> Index:
    """``index`` (one shard) as an :class:`Index` over the global vocabulary and
    statistics (see the module docstring); nothing of the shard is copied but
    ``postings_indptr`` (V+1 int64)."""
    arrays = _ViewArrays(
        index.arrays, local_to_global,
        postings_indptr=global_indptr(index.arrays["postings_indptr"], local_to_global,
                                      stats.num_terms),
        term_cf=stats.term_cf, term_df=stats.term_df,
        vocab_offsets=stats.vocab_offsets, vocab_bytes=stats.vocab_bytes)
    return Index(arrays, view_manifest(index.manifest, stats, tag), path=index.path)


def subset_index(parts: list[tuple[Index, np.ndarray]], stats: CollectionStats,
                 analyzer: dict) -> Index:
    """An in-memory index of chosen documents of shard views (``parts``: view, document
    numbers), over the global vocabulary and statistics: every document scores exactly
    as in the whole collection, so a search of it ranks those documents as the whole
    collection would (``analyzer``: the analyzer configuration; feedback learns from one such index of the first pass's top
    documents)."""
    rows_t, rows_c, lens, docids = [], [], [], []
    for view, docs in parts:
        for d in np.asarray(docs, dtype=np.int64).tolist():
            t, c = view.document_vector(d)
            rows_t.append(np.asarray(t, dtype=np.int32))
            rows_c.append(np.asarray(c, dtype=np.int32))
            lens.append(len(t))
        docids.extend(view.docids.many(docs))
    indptr = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lens, dtype=np.int64), out=indptr[1:])
    cat = (np.concatenate(rows_t) if rows_t else np.zeros(0, np.int32),
           np.concatenate(rows_c) if rows_c else np.zeros(0, np.int32))
    arrays = arrays_from_forward(indptr, cat[0], cat[1], stats.num_terms)
    arrays.update(term_cf=stats.term_cf, term_df=stats.term_df,
                  vocab_offsets=stats.vocab_offsets, vocab_bytes=stats.vocab_bytes)
    arrays.update(docid_arrays(docids))
    manifest = {"analyzer": analyzer,
                "counts": {"documents": len(docids), "terms": stats.num_terms,
                           "tokens": int(stats.num_tokens),
                           "collection_documents": int(stats.num_docs)}}
    return Index(arrays, manifest, path=None)
