"""Merging index arrays: an index's kept documents plus a part of new ones, vectorised.

Language-model statistics are additive, so a change analyses only the new or changed
documents and merges arrays:

* the new part's sorted vocabulary is located in the old one by binary search (one
  ``bisect`` per *new* term); both parts' term ids go through monotone maps, so rows and
  postings stay sorted (:func:`_vocabulary_map`);
* df and cf are the old ones minus the deleted rows' counts plus the new part's (only the
  deleted and new documents are read); terms no longer occurring anywhere are dropped
  (:func:`_term_statistics`);
* the kept documents' rows and stored text are copied in runs of kept documents (one
  slice per run, not per document), straight from the old generation's memory-mapped
  files into the new files in chunks of :data:`PIECE` items
  (:class:`~retrieval.index.arrays.Pieces`);
* the term-major postings are merged in blocks of terms: per term, the kept old postings
  (documents renumbered by a cumulative sum of the kept mask) and then the new ones
  (:class:`_PostingBlocks`);
* the docid order is merged likewise (one ``bisect`` per new document,
  :func:`_docid_order`).

Nothing loops in Python per posting or per kept document, and no array of the size of the
index is built in memory. The result equals a fresh build on the same documents up to
document numbering (kept documents keep their order, new ones follow).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import IndexFormatError, InputError
from .arrays import Pieces
from .layout import ARRAY_SPECS, StringTable

#: items per chunk when kept rows, text and postings are copied into a new generation
PIECE = 1 << 20


def runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the runs of consecutive numbers in sorted ``rows``."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate(([rows[0]], rows[breaks + 1]))
    ends = np.concatenate((rows[breaks], [rows[-1]])) + 1
    return starts.astype(np.int64), ends.astype(np.int64)


def take_segments(indptr: np.ndarray, arrays: Sequence[np.ndarray], rows: np.ndarray
                  ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The segments ``rows`` of CSR-like ``arrays``: (indptr, parts). Rows that follow one
    another are copied as one slice (few runs: a slice each; many: one fancy index)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    out_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    run_starts, run_ends = runs(rows)
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


def insert_positions(old: Sequence[str], new: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
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


def interleave(n_old: int, pos_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merged positions of ``n_old`` sorted old items and of new items to be inserted at
    the (non-decreasing) ``bisect_left`` positions ``pos_new``."""
    old_to = np.arange(n_old, dtype=np.int64) + np.searchsorted(
        pos_new, np.arange(n_old), side="right")
    new_to = pos_new + np.arange(len(pos_new), dtype=np.int64)
    return old_to, new_to


@dataclass(frozen=True)
class _Kept:
    """Which of the old documents are kept: ``keep`` (mask), ``rows`` (their numbers, or
    None when all are kept) and the runs of consecutive kept rows."""
    keep: np.ndarray | None
    rows: np.ndarray | None
    runs: tuple[np.ndarray, np.ndarray] | None
    count: int

    @classmethod
    def of(cls, keep: np.ndarray | None, n_old: int) -> "_Kept":
        rows = None if keep is None or bool(np.all(keep)) else np.flatnonzero(keep)
        return cls(keep, rows, None if rows is None else runs(rows),
                   n_old if rows is None else len(rows))

    def ranges(self, old: dict, ptr_name: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The kept rows' pointer array and element ranges (one per run of rows)."""
        ptr = np.asarray(old[ptr_name], dtype=np.int64)
        if self.rows is None:
            return ptr - ptr[0], [(int(ptr[0]), int(ptr[-1]))]
        out = np.zeros(len(self.rows) + 1, dtype=np.int64)
        np.cumsum(ptr[self.rows + 1] - ptr[self.rows], out=out[1:])
        return out, list(zip(ptr[self.runs[0]].tolist(), ptr[self.runs[1]].tolist()))

    def segments(self, a: dict, names: Sequence[str], ptr: str, rows=None):
        """(indptr, arrays) of the kept rows (or of ``rows``) of CSR-like arrays."""
        rows = self.rows if rows is None else rows
        if rows is None:
            return np.asarray(a[ptr], dtype=np.int64), [np.asarray(a[n]) for n in names]
        return take_segments(a[ptr], [a[n] for n in names], rows)

    def per_doc(self, old: dict, new: dict, name: str) -> np.ndarray:
        """A per-document array: the kept old values, then the new ones."""
        o = np.asarray(old[name]) if self.rows is None else np.asarray(old[name])[self.rows]
        return np.concatenate([o, np.asarray(new[name])])


def _joined(dtype, source, ranges, tail: np.ndarray, table=None) -> Pieces:
    """``source``'s ``ranges`` (mapped through ``table``), then ``tail``, as Pieces."""
    def make():
        for a, b in ranges:
            for start in range(a, b, PIECE):
                chunk = source[start:min(b, start + PIECE)]
                yield chunk if table is None else np.take(table, chunk)
        yield tail
    return Pieces(dtype, sum(b - a for a, b in ranges) + len(tail), make)


def _concat_csr(old_ptr: np.ndarray, old_blob, new: dict, ptr: str, blob: str):
    """Old segments (pointer, blob) followed by all of ``new``'s."""
    n_off = np.asarray(new[ptr], dtype=np.int64)
    return (np.concatenate([old_ptr, old_ptr[-1] + n_off[1:]]),
            np.concatenate([old_blob, np.asarray(new[blob])]))


@dataclass(frozen=True)
class _Vocabulary:
    """Where each old and new term goes in the merged (sorted) vocabulary."""
    old_to: np.ndarray    # old term id -> merged position
    new_to: np.ndarray    # new term id -> merged position
    fresh: np.ndarray     # per new term: not in the old vocabulary
    fresh_to: np.ndarray  # merged positions of the fresh terms
    n_old: int
    n_terms: int


def _vocabulary_map(old: dict, new: dict) -> _Vocabulary:
    """Locate the new part's terms in the old vocabulary (one bisect per new term)."""
    old_vocab = StringTable(old["vocab_offsets"], old["vocab_bytes"])
    new_vocab = StringTable(new["vocab_offsets"], new["vocab_bytes"]).all()
    pos, found = insert_positions(old_vocab.all() if len(new_vocab) else [], new_vocab)
    fresh = ~found
    old_to, fresh_to = interleave(len(old_vocab), pos[fresh])
    new_to = np.empty(len(new_vocab), dtype=np.int64)
    new_to[found] = old_to[pos[found]]
    new_to[fresh] = fresh_to
    return _Vocabulary(old_to, new_to, fresh, fresh_to, len(old_vocab),
                       len(old_vocab) + int(fresh.sum()))


def _term_statistics(old: dict, new: dict, kept: _Kept, voc: _Vocabulary
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(df, cf) over the merged vocabulary and the kept documents' df per old term: the
    old statistics minus the deleted rows' counts, plus the new part's."""
    o_df = np.asarray(old["term_df"], dtype=np.int64)
    o_cf = np.asarray(old["term_cf"], dtype=np.int64)
    if kept.rows is not None:
        _, (g_terms, g_counts) = kept.segments(old, ("forward_terms", "forward_counts"),
                                               "forward_indptr", np.flatnonzero(~kept.keep))
        o_df = o_df - np.bincount(g_terms, minlength=len(o_df))
        o_cf = o_cf - np.bincount(g_terms, weights=g_counts, minlength=len(o_cf)
                                  ).astype(np.int64)  # float64 sums of ints < 2**53: exact
    df = np.zeros(voc.n_terms, dtype=np.int64)
    cf = np.zeros(voc.n_terms, dtype=np.int64)
    df[voc.old_to], cf[voc.old_to] = o_df, o_cf
    df[voc.new_to] += np.asarray(new["term_df"], dtype=np.int64)
    cf[voc.new_to] += np.asarray(new["term_cf"], dtype=np.int64)
    return df, cf, o_df


@dataclass(frozen=True)
class _PostingBlocks:
    """The merged term-major postings, made in blocks of final terms holding about
    :data:`PIECE` postings each: a term's kept old postings (renumbered, still in
    document order), then its new ones (new documents are numbered after the kept)."""
    old: dict
    new: dict
    keep: np.ndarray | None
    renumber: np.ndarray | None  # old document number -> kept number (None: all kept)
    old_fin: np.ndarray          # old term id -> final term id
    new_fin: np.ndarray          # new term id -> final term id
    n_old_post: np.ndarray       # per final term: kept old postings
    p_ptr: np.ndarray            # the merged postings_indptr
    bounds: list                 # block boundaries (final term ids)
    old_block: list              # the same boundaries as old term ids
    new_block: list              # ... and as new term ids
    shift: np.int32              # number of kept documents
    o_pptr: np.ndarray           # old postings_indptr (int64)
    nn_ptr: np.ndarray           # new postings_indptr (int64)
    n_df: np.ndarray             # new term_df (int64)

    @classmethod
    def plan(cls, old: dict, new: dict, kept: _Kept, old_fin, new_fin, o_df,
             n_live: int) -> "_PostingBlocks":
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
            ([0], np.searchsorted(p_ptr, np.arange(PIECE, total, PIECE)), [n_live]))).tolist()
        renumber = None if kept.rows is None else (
            np.cumsum(kept.keep, dtype=np.int64) - 1).astype(np.int32)
        return cls(old, new, kept.keep, renumber, old_fin, new_fin, n_old_post, p_ptr,
                   bounds, np.searchsorted(old_fin, bounds).tolist(),  # old_fin ascends
                   np.searchsorted(new_fin, bounds).tolist(), np.int32(kept.count),
                   np.asarray(old["postings_indptr"], dtype=np.int64),
                   np.asarray(new["postings_indptr"], dtype=np.int64), n_df)

    def pieces(self, name: str) -> Pieces:
        return Pieces(np.int32, int(self.p_ptr[-1]), lambda: self.chunks(name))

    def chunks(self, name: str):
        """Chunks of the merged ``postings_docs`` or ``postings_counts``."""
        for j in range(len(self.bounds) - 1):
            yield self._block(name, j)

    def _block(self, name: str, j: int) -> np.ndarray:
        docs = name == "postings_docs"
        old, new = self.old, self.new
        o_pptr, nn_ptr, n_df = self.o_pptr, self.nn_ptr, self.n_df
        f0, f1 = self.bounds[j], self.bounds[j + 1]
        ea, eb = int(o_pptr[self.old_block[j]]), int(o_pptr[self.old_block[j + 1]])
        chunk = np.asarray(old[name][ea:eb])
        if self.renumber is not None:
            on = self.keep[np.asarray(old["postings_docs"][ea:eb])]
            chunk = self.renumber[chunk[on]] if docs else chunk[on]
        if len(chunk) != int(self.n_old_post[f0:f1].sum()):
            raise IndexFormatError("the index's postings disagree with its document "
                                   "rows; run 'retrieval check' and rebuild the index")
        ua, ub = self.new_block[j], self.new_block[j + 1]
        if ua == ub:
            return chunk
        local = self.p_ptr[f0:f1 + 1] - self.p_ptr[f0]
        nf = np.asarray(self.new_fin[ua:ub], dtype=np.int64) - f0
        first = local[nf] + self.n_old_post[f0 + nf]  # where each new term's run goes
        at = np.repeat(first - (nn_ptr[ua:ub] - nn_ptr[ua]), n_df[ua:ub]) + np.arange(
            int(nn_ptr[ub] - nn_ptr[ua]))
        out = np.empty(int(local[-1]), dtype=np.int32)
        slot = np.ones(len(out), dtype=bool)
        slot[at] = False
        out[slot] = chunk
        added = np.asarray(new[name][int(nn_ptr[ua]):int(nn_ptr[ub])], dtype=np.int32)
        out[at] = added + self.shift if docs else added
        return out


def _vocabulary_arrays(old: dict, new: dict, voc: _Vocabulary, live: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The merged vocabulary's (offsets, bytes), dead terms dropped."""
    source = np.empty(voc.n_terms, dtype=np.int64)  # merged position -> combined row
    source[voc.old_to] = np.arange(voc.n_old)
    source[voc.fresh_to] = voc.n_old + np.flatnonzero(voc.fresh)
    combined_off = np.concatenate([np.asarray(old["vocab_offsets"], dtype=np.int64),
                                   np.asarray(old["vocab_offsets"][-1], dtype=np.int64)
                                   + np.asarray(new["vocab_offsets"][1:], dtype=np.int64)])
    combined_blob = np.concatenate([np.asarray(old["vocab_bytes"]),
                                    np.asarray(new["vocab_bytes"])])
    offsets, (blob,) = take_segments(combined_off, [combined_blob], source[live])
    return offsets, blob


def _docid_order(old: dict, new: dict, kept: _Kept, ids: StringTable
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``docid_sorted`` and ``docid_rank`` of the merged ids ``ids`` (kept, then new)."""
    old_sorted = np.asarray(old["docid_sorted"], dtype=np.int64)
    if kept.rows is not None:
        renumber = np.cumsum(kept.keep) - 1
        old_sorted = renumber[old_sorted[kept.keep[old_sorted]]]
    new_sorted = np.asarray(new["docid_sorted"], dtype=np.int64) + kept.count
    new_ids = [ids[int(i)] for i in new_sorted]
    dpos, dfound = insert_positions(_Sorted(ids, old_sorted), new_ids)
    if dfound.any():
        raise InputError(f"document id {new_ids[int(np.flatnonzero(dfound)[0])]!r} is "
                         f"already in the index")
    o_to, n_to = interleave(len(old_sorted), dpos)
    order = np.empty(kept.count + len(new_sorted), dtype=np.int32)
    order[o_to] = old_sorted
    order[n_to] = new_sorted
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return order, rank


def _document_arrays(old: dict, new: dict, kept: _Kept, store_text: bool
                     ) -> dict[str, np.ndarray]:
    """Ids, per-document lifecycle data and stored text: kept old rows, then new ones."""
    arrays: dict = {}
    d_off, (d_blob,) = kept.segments(old, ("docid_bytes",), "docid_offsets")
    arrays["docid_offsets"], arrays["docid_bytes"] = _concat_csr(
        d_off, d_blob, new, "docid_offsets", "docid_bytes")
    ids = StringTable(arrays["docid_offsets"], arrays["docid_bytes"])
    arrays["docid_sorted"], arrays["docid_rank"] = _docid_order(old, new, kept, ids)
    for name in ("doc_hash", "doc_group", "doc_file_stat"):
        arrays[name] = kept.per_doc(old, new, name)
    f_off, (f_blob,) = kept.segments(old, ("doc_file_bytes",), "doc_file_offsets")
    arrays["doc_file_offsets"], arrays["doc_file_bytes"] = _concat_csr(
        f_off, f_blob, new, "doc_file_offsets", "doc_file_bytes")
    if store_text:
        t_off, ranges = kept.ranges(old, "text_offsets")
        nt_off = np.asarray(new["text_offsets"], dtype=np.int64)
        arrays["text_offsets"] = np.concatenate([t_off, t_off[-1] + nt_off[1:]])
        arrays["text_bytes"] = _joined(np.uint8, old["text_bytes"], ranges,
                                       np.asarray(new["text_bytes"]))
    return arrays


def merge_arrays(old: dict[str, np.ndarray], keep: np.ndarray | None,
                 new: dict[str, np.ndarray], *, store_text: bool, lazy: bool = False
                 ) -> dict[str, np.ndarray]:
    """The arrays of ``old``'s documents where ``keep`` (all when None) plus ``new``'s.

    Both are complete array sets (lifecycle arrays included); docids must not repeat.
    See the module docstring for the method; the result is what a fresh build gives, up
    to document numbering. With ``lazy`` the document rows, the postings and the stored
    text are :class:`~retrieval.index.arrays.Pieces` that copy the kept parts of ``old``
    when written (``old`` must stay open until then); otherwise every value is an array.
    """
    kept = _Kept.of(keep, len(old["doc_lengths"]))
    voc = _vocabulary_map(old, new)
    df, cf, o_df = _term_statistics(old, new, kept, voc)
    # terms no document holds any more (deletions) are dropped; ids stay in string order
    live = df > 0
    final = np.cumsum(live, dtype=np.int64) - 1
    old_fin = final[voc.old_to].astype(np.int32)  # old term id -> final id (dead: unused)
    new_fin = final[voc.new_to].astype(np.int32)

    # document rows: kept old rows then new rows, term ids mapped (rows stay sorted)
    o_ptr, ranges = kept.ranges(old, "forward_indptr")
    n_ptr = np.asarray(new["forward_indptr"], dtype=np.int64)
    blocks = _PostingBlocks.plan(old, new, kept, old_fin, new_fin, o_df, int(live.sum()))
    arrays = {
        "forward_indptr": np.concatenate([o_ptr, o_ptr[-1] + n_ptr[1:]]),
        "forward_terms": _joined(np.int32, old["forward_terms"], ranges,
                                 np.take(new_fin, np.asarray(new["forward_terms"])),
                                 table=old_fin),
        "forward_counts": _joined(np.int32, old["forward_counts"], ranges,
                                  np.asarray(new["forward_counts"])),
        "postings_indptr": blocks.p_ptr, "postings_docs": blocks.pieces("postings_docs"),
        "postings_counts": blocks.pieces("postings_counts"),
        "doc_lengths": kept.per_doc(old, new, "doc_lengths"),
        "doc_unique": kept.per_doc(old, new, "doc_unique"),
        "term_cf": cf[live], "term_df": df[live].astype(np.int32)}
    arrays["vocab_offsets"], arrays["vocab_bytes"] = _vocabulary_arrays(old, new, voc, live)
    arrays.update(_document_arrays(old, new, kept, store_text))
    for name, arr in arrays.items():
        if isinstance(arr, Pieces):
            if not lazy:
                arrays[name] = arr.materialize()
            continue
        want = ARRAY_SPECS[name][0]
        if str(arr.dtype) != want:
            arrays[name] = arr.astype(want)
    return arrays
