"""The per-(index, model) arrays that every search path and feedback read: the index's
columns as plain arrays, log α_d, and the tables computed on first use (largest counts,
count-only models' matched-weight tables, pruning bounds), plus per-thread scratch space.

Notation as in :mod:`retrieval.smoothing`: the matched-term weight
m_w(d) = log[p_s(w|d) / (α_d p(w|C))] and the document term log α_d.
"""

from __future__ import annotations

import threading

import numpy as np

from ..index.arrays import range_positions
from .bounds import BlockMaxima, TermBounds, block_maxima, term_bounds
from .plan import Thresholds


class SearchTables:
    """The arrays of one index under one smoothing model (``thresholds`` for the table
    sizes). The lazily computed tables are computed once, by pure functions of the
    index and model; ``scratch`` is a per-thread namespace for reusable work arrays
    (all zeros between uses where a path says so)."""

    def __init__(self, index, model, thresholds: Thresholds):
        self.index = index
        self.model = model
        self.thresholds = thresholds
        arrays = index.arrays
        self.n_docs = index.num_docs
        self.p_collection = index.p_collection
        self.doc_len = np.asarray(arrays["doc_lengths"])
        self.doc_unique = np.asarray(arrays["doc_unique"])
        self.tie = np.asarray(arrays["docid_rank"])
        self.post_ptr = np.asarray(arrays["postings_indptr"])
        # plain ndarray views of the memory maps: slicing them is cheaper than slicing
        # np.memmap objects, and nothing is copied
        self.post_docs = np.asarray(arrays["postings_docs"])
        self.post_counts = np.asarray(arrays["postings_counts"])
        self.log_alpha = model.log_alpha(self.doc_len, self.doc_unique)
        self.scratch = threading.local()
        self._term_max: np.ndarray | None = None
        self._vocab_tables = None
        self._max_count: int | None = None
        self._la_max: float | None = None
        self._bounds: tuple[TermBounds, np.ndarray, BlockMaxima] | None = None
        self._impacts: np.ndarray | None = None
        #: which terms' impacts :meth:`impacts` has computed (None before its first use)
        self.impacts_filled: np.ndarray | None = None
        self._impacts_lock = threading.Lock()

    # -- matched weights ------------------------------------------------------------
    def weights(self, tid: int, qw: float, where, docs) -> np.ndarray:
        """qw · m_w(d) of term ``tid`` for its postings ``where`` (documents ``docs``).

        For a model whose matched weight depends on the count only (Dirichlet) the values
        are read from a table qw·m_w(c) over c = 0 … max count, computed by the same
        vector expression, so they are bit-identical to computing them per posting (short
        lists, where the table would cost more than it saves, are computed directly).
        """
        model = self.model
        uses = model.uses
        counts = self.post_counts[where]
        if not uses and self.table_ok() and len(counts) > 4 * self._max_count + 64:
            c = np.arange(self._max_count + 1, dtype=np.float64)
            table = qw * model.matched_weight(c, None, None, self.p_collection[tid])
            return table.take(counts)
        mw = model.matched_weight(counts,
                                  self.doc_len[docs] if "doc_len" in uses else None,
                                  self.doc_unique[docs] if "doc_unique" in uses else None,
                                  self.p_collection[tid])
        return qw * mw

    def gather(self, prep):
        """Postings of a prepared query's terms: (docs, per-posting weighted matched
        score), in query-term order."""
        ptr = self.post_ptr
        docs_parts, w_parts = [], []
        for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
            s, e = int(ptr[tid]), int(ptr[tid + 1])
            docs = self.post_docs[s:e].astype(np.int64)
            docs_parts.append(docs)
            w_parts.append(self.weights(tid, qw, slice(s, e), docs))
        if not docs_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return np.concatenate(docs_parts), np.concatenate(w_parts)

    # -- per-posting impacts (models whose weight depends on the document) ------------
    def impacts_fit(self) -> bool:
        """Whether this model's matched weights are served as per-posting impacts
        (:meth:`impacts`): models that read |d| or |d|_u (SPUD, JM, two-stage, AD) and
        count-only ones whose counts are too large for the count tables, while the
        impacts take at most impact_max_bytes (8 bytes a posting)."""
        if not self.model.uses and self.table_ok():
            return False
        return 8 * len(self.post_docs) <= self.thresholds.impact_max_bytes

    def impacts(self, term_ids: np.ndarray) -> np.ndarray:
        """m_w(d) of every posting (float64, indexed like ``post_docs``), computed for
        the postings of ``term_ids`` if not yet done; other terms' entries are
        undefined until asked for.

        The values are :meth:`SmoothingModel.matched_weight` of each posting, the vector
        expression every numpy path evaluates (:meth:`weights` multiplies the same
        values by q_w), so a kernel's q_w·impact is bit-identical to those paths'
        per-posting product. Computed once per (index generation, model) — this object
        is both — by one vector call for the batch's new terms (no Python loop per
        term or posting), into an N_postings-long array allocated with ``np.empty``:
        the operating system commits its pages only as terms are filled, so memory
        is 8 bytes a posting of the terms ever queried (at most 8 bytes a posting of
        the index). A lock makes concurrent batches (``jobs=2``) fill each term once.
        """
        done = self.impacts_filled
        if done is not None:
            ids = np.asarray(term_ids, dtype=np.int64)
            if done[ids].all():   # every term filled (flags are set after the values)
                return self._impacts
        with self._impacts_lock:
            if self._impacts is None:
                self._impacts = np.empty(len(self.post_docs), dtype=np.float64)
                self.impacts_filled = np.zeros(len(self.post_ptr) - 1, dtype=bool)
            done = self.impacts_filled
            ids = np.asarray(term_ids, dtype=np.int64)
            need = np.unique(ids[~done[ids]])
            if len(need):
                ptr = self.post_ptr
                starts, ends = ptr[need], ptr[need + 1]
                lens = ends - starts
                pidx = range_positions(starts, lens)
                docs = self.post_docs[pidx]
                uses = self.model.uses
                self._impacts[pidx] = self.model.matched_weight(
                    self.post_counts[pidx],
                    self.doc_len[docs] if "doc_len" in uses else None,
                    self.doc_unique[docs] if "doc_unique" in uses else None,
                    np.repeat(self.p_collection[need], lens))
                done[need] = True
            return self._impacts

    def max_count(self) -> int:
        """The largest c(w,d) of the index (above table_max_count if a count is < 0)."""
        if self._max_count is None:
            pc = self.post_counts
            value = int(pc.max()) if len(pc) else 0
            if len(pc) and int(pc.min()) < 0:
                value = self.thresholds.table_max_count + 1
            self._max_count = value
        return self._max_count

    def table_ok(self) -> bool:
        """Whether count-only weights may be read from per-term tables over the counts."""
        return self.max_count() <= self.thresholds.table_max_count

    def count_table(self, tid: int, qw: float) -> np.ndarray:
        """qw · m_w(c) for c = 0 … the index's largest count (count-only models)."""
        c = np.arange(self.max_count() + 1, dtype=np.float64)
        return qw * self.model.matched_weight(c, None, None, self.p_collection[tid])

    def count_tables(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count-only models: m_w(c) for c = 0 … max c(w,·) of each of ``terms``, flat
        (where each term's table starts, the values), by one vector expression — so a
        value is the same in any table it is computed for."""
        width = self.max_counts()[terms] + 1
        off = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(width, out=off[1:])
        c = np.arange(int(off[-1]), dtype=np.int64) - np.repeat(off[:-1], width)
        values = self.model.matched_weight(c.astype(np.float64), None, None,
                                           np.repeat(self.p_collection[terms], width))
        return off[:-1], values

    def vocabulary_tables(self) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`count_tables` of every term (starts by term id), computed once, or None
        when they would hold more than vocab_table_max values."""
        if self._vocab_tables is None:
            n_terms = self.index.num_terms
            if int(self.max_counts().sum()) + n_terms > self.thresholds.vocab_table_max:
                self._vocab_tables = False
            else:
                self._vocab_tables = self.count_tables(np.arange(n_terms, dtype=np.int64))
        return self._vocab_tables or None

    def max_counts(self) -> np.ndarray:
        """The largest c(w,d) of every term (0 for a term without postings)."""
        if self._term_max is None:
            ptr = self.post_ptr
            out = np.zeros(len(ptr) - 1, dtype=np.int64)
            has = ptr[1:] > ptr[:-1]
            if has.any():
                out[has] = np.maximum.reduceat(self.post_counts, ptr[:-1][has])
            self._term_max = out
        return self._term_max

    def log_alpha_max(self) -> float:
        """max_d log α_d (0.0 for an empty index)."""
        if self._la_max is None:
            la = self.log_alpha
            self._la_max = float(la.max()) if len(la) else 0.0
        return self._la_max

    # -- pruning bounds (see retrieval.search.bounds) --------------------------------
    def pruning_bounds(self) -> tuple[TermBounds, np.ndarray, BlockMaxima]:
        """(bounds, g_t = max(T_t − A, 0) per term, block maxima): computed once, cached
        on disk."""
        if self._bounds is None:
            bounds = term_bounds(
                self.index, self.model, post_ptr=self.post_ptr, post_docs=self.post_docs,
                post_counts=self.post_counts, doc_len=self.doc_len,
                doc_unique=self.doc_unique, log_alpha=self.log_alpha)
            blocks = block_maxima(self.index, post_ptr=self.post_ptr,
                                  post_docs=self.post_docs, post_counts=self.post_counts)
            self._bounds = (bounds, bounds.gains(), blocks)
        return self._bounds
