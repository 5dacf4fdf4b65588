"""Ranking by negative cross-entropy (the KL-divergence retrieval model).

For a query model θ_q and a smoothed document model θ_d the score is

    score(q, d) = −H(θ_q, θ_d) = Σ_w p(w|θ_q) · log p(w|θ_d)        (nats, ≤ 0)

computed exactly through the sparse form of :mod:`retrieval.smoothing`: matched-term
weights summed over the query terms' postings, plus (Σ_w p(w|θ_q))·log α_d, plus the
query-only constant Σ_w p(w|θ_q) log p(w|C). The printed score is therefore the true
cross-entropy, not only a rank-equivalent number; −D(θ_q‖θ_d) differs from it by the
query entropy H(θ_q), which is the same for every document.

Decisions:

* **Query model.** A text query is analysed with the index's analyzer; its model is the
  maximum-likelihood p(w|θ_q) = c(w,q)/|q| over the terms that remain. A
  :class:`QueryModel` can also be given directly as term → weight (index terms, after
  analysis), e.g. a feedback model; its weights are used as given (they need not sum
  to 1; the document term is multiplied by their total).
* **Query terms absent from the collection** are dropped before the model is built
  (``unknown_terms="drop"``, Lemur's and Lucene's rule). With ``unknown_terms="indri"``
  they are kept with p(w|C) = 1/(2|C|) (Indri's rule), which adds weight·log α_d to every
  document.
* **Candidates.** Only documents that contain at least one query term are scored
  (``candidates="matching"``, Lemur's rule); ``candidates="all"`` scores every document.
* **Ties.** Equal scores (equal float64 values) are ordered by document id ascending
  (string order), so rankings are identical across runs, platforms and index builds.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .analysis import count_tokens
from .errors import ParameterError
from .index import Index
from .lookup import VocabularyLookup, gather_strings
from .records import Query, ScoredDoc, SearchResult
from .pruning import _SATURATED, BlockMaxima, TermBounds, block_maxima, term_bounds
from .smoothing import AbsoluteDiscount, Dirichlet, JelinekMercer, SmoothingModel, TwoStage

UNKNOWN_TERM_RULES = ("drop", "indri")
# smoothing models whose matched weight increases with c(w,d) (pruning's block bounds)
_MONOTONE_MODELS = (Dirichlet, JelinekMercer, AbsoluteDiscount, TwoStage)
CANDIDATE_RULES = ("matching", "all")

# a block of queries in batch search touches at most this many postings ...
_BATCH_POSTINGS = 4_000_000
# ... and, when scored densely, holds at most this many (query, document) cells
_DENSE_CELLS = 500_000
# queries with fewer postings than this are scored exhaustively: blocks of such queries
# share one vectorised pass, which beats per-query pruning (measured: 10k-document corpus)
_PRUNE_MIN_POSTINGS = 30_000
# ... and in collections smaller than this (dense blocks of ~_DENSE_CELLS/N queries are
# cheaper per query than any per-query work there)
_PRUNE_MIN_DOCS = 100_000
# candidates of the first posting list scored exactly up front for a good threshold
_PROBE = 64
# vector element operations per posting of the exhaustive path (pruning's cost model)
_EXHAUSTIVE_OPS = 5.5
# pruning is tried only while k ≤ N / _PRUNE_DOCS_PER_K
_PRUNE_DOCS_PER_K = 2000
# collections of at least this many documents are scored one query at a time (through a
# persistent document accumulator, or an N-sized bincount and candidate mark, whichever
# is cheaper for the query's postings); smaller ones in dense or sparse blocks of queries
_ACC_MIN_DOCS = 100_000
# count-only matched weights (Dirichlet) are looked up in a per-term table over the counts
# when the largest count in the index is at most this
_TABLE_MAX_COUNT = 4096
# collections of at least this many documents (and at least _ACC_MIN_DOCS) score each
# query with the compiled kernel of retrieval._kernels when numba is installed (imported
# lazily, so smaller indexes never pay numba's import; RETRIEVAL_KERNELS=0 disables it)
_KERNEL_MIN_DOCS = 100_000
# documents per range of the kernel's accumulator (small enough to stay in cache)
_KERNEL_RANGE = 32768
# with the kernel, pruning is tried only for queries of at least this many postings per
# document of the collection (measured: 1M documents, k=10)
_KERNEL_PRUNE_FRACTION = 0.6
# the kernel skips documents by an upper bound on log α only while k ≤ N / this (measured,
# 1M documents: the bound saves ~20% at k=10, costs ~10% at k=1000)
_KERNEL_BOUND_DOCS_PER_K = 3000
# collections smaller than _ACC_MIN_DOCS score a batch of queries with the compiled batch
# kernel when numba is installed and either the kernels are loaded already or the process
# has searched at least this many postings (this batch included): loading them (numba's
# import and the cached machine code, ~0.45 s) pays for itself only after that much work
# (measured, shared collections: the numpy blocks take ~55 ns a posting, the kernel ~12)
_KERNEL_BATCH_MIN_POSTINGS = 12_000_000
# the batch kernel's per-posting weights are computed by numpy for at most this many
# postings at a time (models whose weights depend on the document, not only the count)
_KERNEL_BATCH_POSTINGS = 4_000_000
# the kernels keep the top k in a heap up to this k, and above it rank by a partial
# bucket sort (measured on the shared collections: the heap is cheaper at k=10, the bucket
# selection from k≈30 on)
_KERNEL_HEAP_MAX_K = 16
# with the kernels, collections from _ACC_MIN_DOCS up to this size also take the batch
# kernel when k > _KERNEL_HEAP_MAX_K (measured at k=1000: 1.3-2.3x the per-query kernel's
# throughput at 100k documents, 1.4x at 300k, on par at 1M)
_KERNEL_BATCH_LARGE_K_DOCS = 500_000
# count-only models' matched weights are tabulated for the whole vocabulary once per
# searcher (every term, counts 0 … its largest) when that takes at most this many values
# (32 MB); otherwise per batch, for the batch's terms
_VOCAB_TABLE_MAX = 4_000_000
# the batch kernel lists a query's candidates by one scan of every document's mark,
# instead of on first touch, when the query has at least this many postings per document
# (measured, NFCorpus's RM3 and divmin queries: 5,900 and 61,000 postings on 3,162
# documents, accumulation and scoring 24 → 18 and 193 → 130 µs a query)
_KERNEL_DENSE_POSTINGS_PER_DOC = 0.5
# the token → term id memo of a searcher is cleared when it reaches this size
_TOKEN_MEMO = 1_000_000
_NO_WEIGHTS = np.zeros(0, dtype=np.float64)
_NO_TABLES = np.zeros((0, 0), dtype=np.float64)
# the kernels module once loaded; None: not tried yet; False: disabled or numba missing
_KERNELS = None
# postings of the query terms searched by this process so far (the "auto" kernel rule)
_POSTINGS_SEARCHED = 0


def _load_kernels():
    """retrieval._kernels, or None without numba or with RETRIEVAL_KERNELS=0."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = False
        if os.environ.get("RETRIEVAL_KERNELS", "1").strip() != "0":
            try:
                from . import _kernels as module
            except ImportError:
                pass
            else:
                _KERNELS = module
    return _KERNELS or None


def _dense_is_cheaper(n_queries: int, n_docs: int, n_postings: int) -> bool:
    """Cost model: dense work grows with queries × documents, sparse with P log P."""
    dense = 1.0 * n_queries * n_docs
    sparse = 1.5 * n_postings * max(1.0, math.log2(max(n_postings, 2)))
    return dense <= sparse


@dataclass(frozen=True)
class QueryModel:
    """A query language model: index terms with positive weights p(w|θ_q).

    Build one from text with :meth:`from_text` (maximum likelihood) or from a mapping
    with :meth:`from_weights` (e.g. a feedback model). Terms are kept in sorted order.
    """

    terms: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_weights(cls, weights: Mapping[str, float]) -> "QueryModel":
        items = sorted(weights.items())
        for term, w in items:
            if not isinstance(term, str) or not term:
                raise ParameterError(f"query model terms must be non-empty strings, "
                                     f"got {term!r}")
            if isinstance(w, bool) or not isinstance(w, (int, float, np.floating)) \
                    or not math.isfinite(w) or w <= 0:
                raise ParameterError(f"query model weight of {term!r} must be a positive "
                                     f"finite number, got {w!r}")
        return cls(tuple(t for t, _ in items), tuple(float(w) for _, w in items))

    @classmethod
    def from_text(cls, text: str, analyzer) -> "QueryModel":
        counts = analyzer.term_counts(text)
        total = sum(counts.values())
        return cls.from_weights({t: n / total for t, n in counts.items()}) if total else \
            cls((), ())

    @property
    def mass(self) -> float:
        return float(sum(self.weights))

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.terms, self.weights))

    def __len__(self) -> int:
        return len(self.terms)


class TermContribution(NamedTuple):
    """One query term's part of a document's score: weight · log p(w|d)."""
    term: str
    query_weight: float     # p(w|θ_q)
    count: int              # c(w, d)
    p_collection: float     # p(w|C)
    p_document: float       # smoothed p(w|d)
    contribution: float     # query_weight · log p_document


class Explanation(NamedTuple):
    """Why a document scored what it did; ``sum(t.contribution for t in terms) == score``."""
    docid: str
    score: float
    document_length: int
    distinct_terms: int
    log_alpha: float
    terms: tuple[TermContribution, ...]


class BatchResult(NamedTuple):
    """Top-k results of many queries as flat arrays, sorted by (query, rank)."""
    query_index: np.ndarray   # int64, index into the queries given
    doc_numbers: np.ndarray   # int64, internal document numbers
    scores: np.ndarray        # float64


@dataclass(frozen=True)
class _Prepared:
    term_ids: np.ndarray      # known terms' ids
    weights: np.ndarray       # their query weights
    mass: float               # Σ weights, known and (indri) unknown terms
    constant: float           # Σ weight · log p(w|C)
    unknown: tuple[tuple[str, float], ...]  # unknown terms kept under the indri rule


class _Batch(NamedTuple):
    """Prepared queries as flat arrays: query j has the terms ``term_ids[ptr[j]:ptr[j+1]]``
    (ascending ids = the query model's term order) with query weights ``weights``.

    ``mass[j]`` = Σ weights (with the unknown terms kept under the indri rule) and
    ``constant[j]`` = Σ weight · log p(w|C) are sums in term order starting from 0.0 (one
    ``bincount``), the same for every search path. ``length[j]`` is |q|: the number of
    tokens of a text query that its model keeps, or a given model's mass. ``unknown[j]``
    holds the (term, weight) pairs kept under the indri rule.
    """
    ptr: np.ndarray
    term_ids: np.ndarray
    weights: np.ndarray
    mass: np.ndarray
    constant: np.ndarray
    length: np.ndarray
    unknown: tuple[tuple[tuple[str, float], ...], ...]

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def prep(self, j: int) -> _Prepared:
        s, e = int(self.ptr[j]), int(self.ptr[j + 1])
        return _Prepared(self.term_ids[s:e], self.weights[s:e], float(self.mass[j]),
                         float(self.constant[j]), self.unknown[j])


class Searcher:
    """Ranks an index's documents for queries under one smoothing model.

    Parameters
    ----------
    index : Index
    model : SmoothingModel, default ``Dirichlet(mu=1000)``
    unknown_terms : {"drop", "indri"}
    candidates : {"matching", "all"}
    pruning : {"auto", True, False}
        Exact dynamic pruning (:mod:`retrieval.pruning`) for ``candidates="matching"``:
        "auto" uses it where a cost model expects a gain, True wherever it applies
        (tests), False never. Results are identical either way.
    compiled : {"auto", True, False}
        The compiled kernels of :mod:`retrieval._kernels` (needs numba, the optional
        ``fast`` extra): "auto" uses them where loading them (~0.45 s once per process)
        pays: on collections of at least 100,000 documents, and on smaller ones once
        this process has searched _KERNEL_BATCH_MIN_POSTINGS (12 million) postings;
        True wherever numba is installed (a long-running process that searches a lot);
        False never. Results are bit-identical either way.
    """

    def __init__(self, index: Index, model: SmoothingModel | None = None, *,
                 unknown_terms: str = "drop", candidates: str = "matching",
                 pruning: bool | str = "auto", compiled: bool | str = "auto"):
        self.index = index
        self.model = model
        self.unknown_terms = unknown_terms
        self.candidates = candidates
        self.pruning = pruning
        self.compiled = compiled
        if not isinstance(index, Index):
            raise ParameterError(f"index must be a retrieval.Index, got "
                                 f"{type(index).__name__}")
        if model is not None and not isinstance(model, SmoothingModel):
            raise ParameterError(f"model must be a smoothing model such as "
                                 f"Dirichlet(mu=1000), got {model!r}")
        if unknown_terms not in UNKNOWN_TERM_RULES:
            raise ParameterError(f"unknown_terms must be one of "
                                 f"{', '.join(UNKNOWN_TERM_RULES)}, got {unknown_terms!r}")
        if pruning not in ("auto", True, False):
            raise ParameterError(f"pruning must be 'auto', True or False, got {pruning!r}")
        if compiled not in ("auto", True, False):
            raise ParameterError(f"compiled must be 'auto', True or False, got {compiled!r}")
        if candidates not in CANDIDATE_RULES:
            raise ParameterError(f"candidates must be one of {', '.join(CANDIDATE_RULES)}, "
                                 f"got {candidates!r}")
        self.model_ = model if model is not None else Dirichlet(mu=1000.0)
        arrays = index.arrays
        self._doc_len = np.asarray(arrays["doc_lengths"])
        self._doc_unique = np.asarray(arrays["doc_unique"])
        self._tie = np.asarray(arrays["docid_rank"])
        self._post_ptr = np.asarray(arrays["postings_indptr"])
        # plain ndarray views of the memory maps: slicing them is cheaper than slicing
        # np.memmap objects, and nothing is copied
        self._post_docs = np.asarray(arrays["postings_docs"])
        self._post_counts = np.asarray(arrays["postings_counts"])
        self.log_alpha_ = self.model_.log_alpha(self._doc_len, self._doc_unique)
        self._lookup = VocabularyLookup(index)
        self._token_ids: dict[str | bytes, int] = {}   # token → term id, −1: none
        self._term_max: np.ndarray | None = None
        self._vocab_tables = None   # see _vocabulary_tables
        self._bounds: TermBounds | None = None
        self._gains: np.ndarray | None = None
        self._blocks: BlockMaxima | None = None
        self._max_count: int | None = None
        self._la_max: float | None = None
        self._local = threading.local()     # per-thread accumulator (see _accumulated)

    # -- query models -----------------------------------------------------------------
    def query_model(self, query: str | QueryModel) -> QueryModel:
        """The query model of ``query`` (text is analysed with the index's analyzer)."""
        if isinstance(query, QueryModel):
            return query
        if isinstance(query, str):
            if self.unknown_terms == "drop":
                counts = self.index.analyzer.term_counts(query)
                known = {t: n for t, n in counts.items() if self._lookup.id(t) >= 0}
                total = sum(known.values())
                if not total:
                    return QueryModel((), ())
                return QueryModel.from_weights({t: n / total for t, n in known.items()})
            return QueryModel.from_text(query, self.index.analyzer)
        raise ParameterError(f"a query must be text or a QueryModel, got "
                             f"{type(query).__name__}")

    def _prepare(self, query: str | QueryModel) -> _Prepared:
        return self._prepare_batch([query]).prep(0)

    def _active_kernels(self):
        """The compiled kernels when this searcher uses them: always with
        ``compiled=True`` (numba permitting), never with False, and under "auto" once
        this process has loaded them (see ``compiled``)."""
        if self.compiled is False:
            return None
        if self.compiled is True:
            return _load_kernels()
        return _KERNELS or None

    def _prepare_batch(self, queries: Sequence[str | QueryModel]) -> _Batch:
        """All queries as one :class:`_Batch`.

        Text queries under the drop rule take a vectorised path: every query's tokens
        (:func:`~retrieval.analysis.count_tokens`) are mapped to term ids through a memo
        of token → id (each new token analysed and looked up once), and the (query, term)
        pairs are counted with one ``numpy.unique``; p(w|θ_q) = c(w,q)/|q| is the same
        division as :meth:`QueryModel.from_text`'s. Other queries go through
        :meth:`query_model`. Both give the same arrays for the same query.
        """
        n = len(queries)
        nt = np.int64(max(self.index.num_terms, 1))
        fast = [j for j, q in enumerate(queries)
                if isinstance(q, str) and self.unknown_terms == "drop"]
        fast_set = set(fast)
        keys_parts, w_parts = [], []
        length = np.zeros(n, dtype=np.float64)
        unknown: list[tuple] = [()] * n
        if fast:
            tok_lists = [count_tokens(queries[j]) for j in fast]
            flat = list(chain.from_iterable(tok_lists))
            memo = self._token_ids
            new = set(flat).difference(memo)
            if new:
                if len(memo) + len(new) > _TOKEN_MEMO:
                    memo.clear()
                    new = set(flat)
                analyzer, lookup = self.index.analyzer, self._lookup
                for tok in new:
                    term = analyzer.term(tok.decode("ascii") if isinstance(tok, bytes)
                                         else tok)
                    memo[tok] = -1 if term is None else lookup.id(term)
            tids = np.fromiter(map(memo.__getitem__, flat), dtype=np.int64, count=len(flat))
            lens = np.fromiter(map(len, tok_lists), dtype=np.int64, count=len(fast))
            qidx = np.repeat(np.asarray(fast, dtype=np.int64), lens)
            known = tids >= 0
            keys, counts = np.unique(qidx[known] * nt + tids[known], return_counts=True)
            total = np.bincount(keys // nt, weights=counts, minlength=n)
            keys_parts.append(keys)
            w_parts.append(counts / total[keys // nt])
            length += total
        slow = [j for j in range(n) if j not in fast_set]
        for j in slow:
            query = queries[j]
            qm = self.query_model(query)
            ids = self._lookup.ids(qm.terms) if len(qm) else np.zeros(0, dtype=np.int64)
            w = np.asarray(qm.weights, dtype=np.float64)
            found = ids >= 0
            if self.unknown_terms == "indri" and not found.all():
                unknown[j] = tuple((t, x) for t, x, f in zip(qm.terms, qm.weights,
                                                               found.tolist()) if not f)
            keys_parts.append(j * nt + ids[found])
            w_parts.append(w[found])
            if isinstance(query, str) and len(qm):
                counts = self.index.analyzer.term_counts(query)
                length[j] = float(sum(counts[t] for t in qm.terms))
            else:
                length[j] = qm.mass
        keys = np.concatenate(keys_parts) if keys_parts else np.zeros(0, dtype=np.int64)
        weights = np.concatenate(w_parts) if w_parts else np.zeros(0, dtype=np.float64)
        if fast and slow:
            order = np.argsort(keys, kind="stable")
            keys, weights = keys[order], weights[order]
        return self._batch_from_arrays(n, keys // nt, keys % nt, weights, length, unknown)

    def _batch_from_arrays(self, n: int, q: np.ndarray, term_ids: np.ndarray,
                           weights: np.ndarray, length: np.ndarray | None = None,
                           unknown=None) -> _Batch:
        """A :class:`_Batch` from (query, term id, weight) entries sorted by query then
        term id; ``length`` defaults to each query's mass."""
        q = np.asarray(q, dtype=np.int64)
        term_ids = np.asarray(term_ids, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        unknown = tuple(unknown) if unknown is not None else ((),) * n
        ptr = np.searchsorted(q, np.arange(n + 1, dtype=np.int64))
        # (bincount of no entries is an integer array: the float64 cast is needed)
        mass = np.bincount(q, weights=weights, minlength=n).astype(np.float64)
        log_pc = np.log(self.index.p_collection[term_ids]) if len(term_ids) else weights
        constant = np.bincount(q, weights=weights * log_pc, minlength=n).astype(np.float64)
        if any(unknown):
            log_p_unknown = -math.log(2.0 * max(self.index.num_tokens, 1))
            for j, unk in enumerate(unknown):
                if unk:
                    extra = sum(w for _, w in unk)
                    mass[j] += extra
                    constant[j] += extra * log_p_unknown
        if length is None:
            length = mass.copy()
        return _Batch(ptr, term_ids, weights, mass, constant, length, unknown)

    # -- scoring ----------------------------------------------------------------------
    def _weights(self, tid: int, qw: float, where, docs) -> np.ndarray:
        """qw · m_w(d) of term ``tid`` for its postings ``where`` (documents ``docs``).

        For a model whose matched weight depends on the count only (Dirichlet) the values
        are read from a table qw·m_w(c) over c = 0 … max count, computed by the same
        vector expression, so they are bit-identical to computing them per posting (short
        lists, where the table would cost more than it saves, are computed directly).
        """
        model = self.model_
        uses = model.uses
        counts = self._post_counts[where]
        if not uses and self._table_ok() and len(counts) > 4 * self._max_count + 64:
            c = np.arange(self._max_count + 1, dtype=np.float64)
            table = qw * model.matched_weight(c, None, None, self.index.p_collection[tid])
            return table.take(counts)
        mw = model.matched_weight(counts,
                                  self._doc_len[docs] if "doc_len" in uses else None,
                                  self._doc_unique[docs] if "doc_unique" in uses else None,
                                  self.index.p_collection[tid])
        return qw * mw

    def _table_ok(self) -> bool:
        if self._max_count is None:
            pc = self._post_counts
            self._max_count = int(pc.max()) if len(pc) else 0
            if len(pc) and int(pc.min()) < 0:
                self._max_count = _TABLE_MAX_COUNT + 1
        return self._max_count <= _TABLE_MAX_COUNT

    def _gather(self, prep: _Prepared):
        """Postings of the query's terms: (docs, per-posting weighted matched score)."""
        ptr = self._post_ptr
        docs_parts, w_parts = [], []
        for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
            s, e = int(ptr[tid]), int(ptr[tid + 1])
            docs = self._post_docs[s:e].astype(np.int64)
            docs_parts.append(docs)
            w_parts.append(self._weights(tid, qw, slice(s, e), docs))
        if not docs_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return np.concatenate(docs_parts), np.concatenate(w_parts)

    def search(self, query: str | QueryModel, k: int = 10) -> list[SearchResult]:
        """The top ``k`` documents for ``query``, best first."""
        return self.batch_search([query], k)[0]

    def batch_search_arrays(self, queries: Sequence[str | QueryModel], k: int = 1000, *,
                            jobs: int = 1) -> BatchResult:
        """Top ``k`` of every query as flat arrays, sorted by (query, rank).

        Vectorised over queries: queries are processed in blocks. A block is scored
        either densely (a queries × documents accumulator and candidate mark, then top k
        per query by ``partition`` over its candidates) or sparsely (the block's (query,
        document) pairs sorted once), whichever a cost model expects to be cheaper; both
        give identical results.

        ``jobs`` > 1 splits the queries into that many contiguous parts searched at once:
        by threads when the compiled kernels are available (they release the GIL, and the
        threads share everything), otherwise by forked worker processes, which share the
        memory-mapped index (without ``fork`` the search runs in this thread). Results are
        identical either way.
        """
        k = _check_k(k)
        jobs = _check_jobs(jobs)
        if jobs > 1 and len(queries) >= 2 * jobs:
            if self.compiled is not False and _load_kernels() is not None:
                return self._threaded(queries, k, jobs)
            import multiprocessing as mp   # only here: a plain search does not load it
            if "fork" in mp.get_all_start_methods():
                return self._parallel(queries, k, jobs)
        return self._search_batch(self._prepare_batch(queries), k)

    def _threaded(self, queries, k: int, jobs: int) -> BatchResult:
        from concurrent.futures import ThreadPoolExecutor
        bounds = np.linspace(0, len(queries), jobs + 1).astype(int).tolist()
        parts = [list(queries[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(lambda part: self._search_batch(
                self._prepare_batch(part), k), parts))
        return _joined(results, bounds)

    def _search_batch(self, batch: _Batch, k: int) -> BatchResult:
        """:meth:`batch_search_arrays` of prepared queries (see there)."""
        n_docs = self.index.num_docs
        ptr = self._post_ptr
        n_terms = np.diff(batch.ptr)
        term_q = np.repeat(np.arange(len(batch), dtype=np.int64), n_terms)
        postings = ptr[batch.term_ids + 1] - ptr[batch.term_ids]
        size_arr = np.bincount(term_q, weights=postings, minlength=len(batch)).astype(np.int64)
        has = n_terms > 0
        if self.candidates == "all":
            has |= np.fromiter(map(bool, batch.unknown), dtype=bool, count=len(batch))
        active = np.flatnonzero(has).tolist()
        out_q, out_d, out_s = [], [], []
        matching = self.candidates == "matching"
        per_query = matching and n_docs >= _ACC_MIN_DOCS
        if per_query and k > _KERNEL_HEAP_MAX_K and n_docs < _KERNEL_BATCH_LARGE_K_DOCS \
                and active and self.compiled is not False and _load_kernels() is not None:
            per_query = False   # the batch kernel's selection is cheaper for large k here
        kernels = None
        if active and matching and self.compiled is not False:
            global _POSTINGS_SEARCHED
            _POSTINGS_SEARCHED += int(size_arr.sum())
            if self.compiled is True or _KERNELS:
                kernels = _load_kernels()
            elif per_query:
                kernels = _load_kernels() if n_docs >= _KERNEL_MIN_DOCS else None
            elif _POSTINGS_SEARCHED >= _KERNEL_BATCH_MIN_POSTINGS:
                kernels = _load_kernels()
        preps = _LazyPreps(batch)
        pruned = False
        if self.pruning and matching and active:
            worth = self._prune_pays(n_terms, size_arr, k, n_docs,
                                     per_query and kernels is not None)
            if worth.any():
                rest = []
                for j in active:
                    got = self._pruned(preps[j], k) if worth[j] else None
                    if got is None:
                        rest.append(j)
                    else:
                        out_q.append(np.full(len(got[0]), j, dtype=np.int64))
                        out_d.append(got[0])
                        out_s.append(got[1])
                pruned = len(out_q) > 0
                active = rest
        if kernels is not None and not per_query and active:
            q, d, sc = self._kernel_batch(batch, np.asarray(active, dtype=np.int64),
                                          size_arr, k, kernels)
            out_q.append(q)
            out_d.append(d)
            out_s.append(sc)
            active = []
        sizes = dict(zip(active, size_arr[active].tolist()))
        if per_query:
            for j in active:
                if kernels is not None:
                    d, sc = self._compiled(preps[j], k, kernels)
                else:
                    # measured (1M documents): the accumulator is cheaper for sparse and
                    # for very dense queries, the sorted candidates of the mark in between
                    frac = sizes[j] / n_docs
                    one = self._accumulated if frac < 0.17 or frac > 0.5 else self._dense_one
                    d, sc = one(preps[j], k)
                out_q.append(np.full(len(d), j, dtype=np.int64))
                out_d.append(d)
                out_s.append(sc)
            active = []
        dense_rows = max(1, _DENSE_CELLS // max(n_docs, 1))
        start = 0
        while start < len(active):
            stop, budget = start, 0
            while stop < len(active) and stop - start < dense_rows and (
                    stop == start or budget + sizes[active[stop]] <= _BATCH_POSTINGS):
                budget += sizes[active[stop]]
                stop += 1
            block = active[start:stop]
            dense = self.candidates == "all" or _dense_is_cheaper(len(block), n_docs, budget)
            method = self._dense_block if dense else self._sparse_block
            q, d, sc = method([preps[j] for j in block], k, n_docs)
            out_q.append(np.asarray(block, dtype=np.int64)[q])
            out_d.append(d)
            out_s.append(sc)
            start = stop
        if not out_q:
            empty = np.zeros(0, dtype=np.int64)
            return BatchResult(empty, empty.copy(), np.zeros(0, dtype=np.float64))
        if len(out_q) == 1:
            q, d, sc = out_q[0], out_d[0], out_s[0]
        else:
            q, d, sc = np.concatenate(out_q), np.concatenate(out_d), np.concatenate(out_s)
        if pruned:
            order = np.argsort(q, kind="stable")
            q, d, sc = q[order], d[order], sc[order]
        return BatchResult(q, d, sc)

    def _count_tables(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count-only models: m_w(c) for c = 0 … max c(w,·) of each of ``terms``, flat
        (where each term's table starts, the values), by one vector expression — so a
        value is the same in any table it is computed for."""
        width = self._max_counts()[terms] + 1
        off = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(width, out=off[1:])
        c = np.arange(int(off[-1]), dtype=np.int64) - np.repeat(off[:-1], width)
        values = self.model_.matched_weight(c.astype(np.float64), None, None,
                                            np.repeat(self.index.p_collection[terms], width))
        return off[:-1], values

    def _vocabulary_tables(self) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_count_tables` of every term (starts by term id), computed once per
        searcher, or None when they would hold more than _VOCAB_TABLE_MAX values."""
        if self._vocab_tables is None:
            if int(self._max_counts().sum()) + self.index.num_terms > _VOCAB_TABLE_MAX:
                self._vocab_tables = False
            else:
                self._vocab_tables = self._count_tables(
                    np.arange(self.index.num_terms, dtype=np.int64))
        return self._vocab_tables or None

    def _max_counts(self) -> np.ndarray:
        """The largest c(w,d) of every term (0 for a term without postings)."""
        if self._term_max is None:
            counts = self._post_counts
            ptr = self._post_ptr
            out = np.zeros(len(ptr) - 1, dtype=np.int64)
            has = ptr[1:] > ptr[:-1]
            if has.any():
                out[has] = np.maximum.reduceat(counts, ptr[:-1][has])
            self._term_max = out
        return self._term_max

    def _kernel_batch(self, batch: _Batch, queries: np.ndarray, sizes: np.ndarray, k: int,
                      kernels):
        """The ranked top ``k`` of ``queries`` (positions in ``batch``) by the compiled
        batch kernel (:func:`retrieval._kernels.batch_top_k`): (query, docs, scores).

        The matched weights are the numpy paths' values: for count-only models a table
        of m_w(c) over c = 0 … max c(w,·) per query term (built once for the whole
        vocabulary, :meth:`_vocabulary_tables`, or, for a large vocabulary, by one
        vectorised call for the batch's terms; the kernel multiplies by the query
        weight, as :meth:`_weights` does), for the others the per-posting products q_w·m_w(d),
        computed by numpy for blocks of about _KERNEL_BATCH_POSTINGS postings.
        Scores and rankings are bit-identical to the numpy paths'.
        """
        local = self._local
        n_docs = self.index.num_docs
        if getattr(local, "bacc", None) is None or len(local.bacc) != n_docs:
            local.bacc = np.zeros(n_docs, dtype=np.float64)
            local.bseen = np.zeros(n_docs, dtype=np.uint8)
            local.bcand = np.zeros(n_docs + 1, dtype=np.int64)   # one spare slot
        model = self.model_
        ptr = self._post_ptr
        p_c = self.index.p_collection
        kk = min(k, max(n_docs, 1))
        select = kk > _KERNEL_HEAP_MAX_K
        room = n_docs + 1 if select else kk
        if getattr(local, "bhs", None) is None or len(local.bhs) < room:
            local.bcs = np.empty(n_docs, dtype=np.float64)
            local.bhs = np.empty(room, dtype=np.float64)
            local.bht, local.bhd, local.bcb = np.empty((3, room), dtype=np.int64)
            local.bcnt = np.empty(kernels.BUCKETS_PER_CANDIDATE * room + 1, dtype=np.int64)
        tables = not model.uses and self._table_ok()
        if tables:  # tab_start: where the table of each term position of the batch starts
            vocab = self._vocabulary_tables()
            if vocab is not None:
                tab_start, tab_vals = vocab[0][batch.term_ids], vocab[1]
            else:
                # the batch's distinct terms, unless their tables would be larger than
                # the postings they serve (one block then)
                uniq, inv = np.unique(batch.term_ids, return_inverse=True)
                tables = int(self._max_counts()[uniq].sum()) + len(uniq) <= \
                    max(1 << 20, int(sizes[queries].sum()))
                if tables:
                    u_start, tab_vals = self._count_tables(uniq)
                    tab_start = u_start[inv]
        dense_from = max(1, math.ceil(n_docs * _KERNEL_DENSE_POSTINGS_PER_DOC))
        out_q, out_d, out_s = [], [], []
        start = 0
        while start < len(queries):
            if tables:
                stop = len(queries)
            else:  # blocks of about _KERNEL_BATCH_POSTINGS postings
                csum = np.cumsum(sizes[queries[start:]])
                stop = start + max(1, int(np.searchsorted(csum, _KERNEL_BATCH_POSTINGS,
                                                          side="right")))
            block = queries[start:stop]
            lo, hi = batch.ptr[block], batch.ptr[block + 1]
            counts_t = hi - lo
            sel = np.repeat(lo - np.cumsum(counts_t) + counts_t, counts_t) + \
                np.arange(int(counts_t.sum()), dtype=np.int64)
            q_ptr = np.zeros(len(block) + 1, dtype=np.int64)
            np.cumsum(counts_t, out=q_ptr[1:])
            tids = batch.term_ids[sel]
            qw = batch.weights[sel]
            if tables:
                tab_ptr = tab_start[sel]
                weights, w_ptr = _NO_WEIGHTS, np.zeros(len(tids), dtype=np.int64)
            else:
                starts, ends = ptr[tids], ptr[tids + 1]
                lens = ends - starts
                w_ptr = np.zeros(len(tids), dtype=np.int64)
                np.cumsum(lens[:-1], out=w_ptr[1:])
                pidx = np.repeat(starts - w_ptr, lens) + \
                    np.arange(int(lens.sum()), dtype=np.int64)
                docs = self._post_docs[pidx]
                uses = model.uses
                mw = model.matched_weight(
                    self._post_counts[pidx],
                    self._doc_len[docs] if "doc_len" in uses else None,
                    self._doc_unique[docs] if "doc_unique" in uses else None,
                    np.repeat(p_c[tids], lens))
                weights = np.repeat(qw, lens) * mw
                tab_vals, tab_ptr = _NO_WEIGHTS, w_ptr
            cap = int(np.minimum(sizes[block], kk).sum())
            docs_out = np.empty(cap, dtype=np.int64)
            scores_out = np.empty(cap, dtype=np.float64)
            n_out = np.zeros(len(block), dtype=np.int64)
            kernels.batch_top_k(q_ptr, tids, qw, batch.mass[block], batch.constant[block],
                                ptr, self._post_docs, self._post_counts, tab_ptr, tab_vals,
                                tables, weights, w_ptr, self.log_alpha_, self._tie, kk,
                                select, dense_from, local.bacc, local.bseen, local.bcand,
                                local.bcs, local.bhs, local.bht, local.bhd, local.bcb,
                                local.bcnt, docs_out, scores_out, n_out)
            total = int(n_out.sum())
            out_q.append(np.repeat(block, n_out))
            out_d.append(docs_out[:total])
            out_s.append(scores_out[:total])
            start = stop
        if len(out_q) == 1:   # one block (always with tables): no copy
            return out_q[0], out_d[0], out_s[0]
        return np.concatenate(out_q), np.concatenate(out_d), np.concatenate(out_s)

    def _parallel(self, queries, k: int, jobs: int) -> BatchResult:
        global _FORKED_SEARCHER
        import multiprocessing as mp
        bounds = np.linspace(0, len(queries), jobs + 1).astype(int).tolist()
        parts = [(list(queries[a:b]), k) for a, b in zip(bounds[:-1], bounds[1:])]
        _FORKED_SEARCHER = self
        try:
            with mp.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_search_part, parts)
        finally:
            _FORKED_SEARCHER = None
        return _joined(results, bounds)

    # -- exact dynamic pruning (see retrieval.pruning) ----------------------------------
    def _term_gains(self) -> tuple[np.ndarray, float]:
        """g_t = max(T_t − A, 0) per term and A (computed once, cached on disk)."""
        if self._gains is None:
            bounds = term_bounds(
                self.index, self.model_, post_ptr=self._post_ptr, post_docs=self._post_docs,
                post_counts=self._post_counts, doc_len=self._doc_len,
                doc_unique=self._doc_unique, log_alpha=self.log_alpha_)
            self._blocks = block_maxima(self.index, post_ptr=self._post_ptr,
                                        post_docs=self._post_docs,
                                        post_counts=self._post_counts)
            self._bounds = bounds
            self._gains = bounds.gains()   # last: another thread that sees it sees all
        return self._gains, self._bounds.alpha_max

    def _score_docs(self, prep: _Prepared, starts: np.ndarray, ends: np.ndarray,
                    docs: np.ndarray, own: int = -1) -> np.ndarray:
        """Exact scores of ``docs`` (ascending, unique, postings dtype).

        Each term's postings are found by ``searchsorted`` in its ascending posting list
        (term ``own``'s list *is* ``docs``). Contributions are added term by term in the
        query-model order, exactly as the exhaustive ``bincount`` adds them, so the
        scores are bit-identical to the exhaustive path's.
        """
        acc = np.zeros(len(docs))
        for i, (tid, qw) in enumerate(zip(prep.term_ids.tolist(), prep.weights.tolist())):
            s, e = int(starts[i]), int(ends[i])
            if i == own:
                hit = None
                where = slice(s, e)
                dh = docs
            else:
                plist = self._post_docs[s:e]
                pos = np.searchsorted(plist, docs)
                np.minimum(pos, e - s - 1, out=pos)
                hit = plist[pos] == docs
                if not hit.any():
                    continue
                where = pos[hit] + s
                dh = docs[hit]
            w = self._weights(tid, qw, where, dh)
            if hit is None:
                acc += w
            else:
                acc[hit] += w
        return acc + prep.mass * self.log_alpha_[docs] + prep.constant

    def _term_weights(self, prep: _Prepared, i: int, docs: np.ndarray,
                      where) -> np.ndarray:
        """q_w · m_w(d) of query term ``i`` for its postings ``where`` (docs ``docs``)."""
        return self._weights(int(prep.term_ids[i]), float(prep.weights[i]), where, docs)

    def _pruned(self, prep: _Prepared, k: int):
        """Top ``k`` of one query by MaxScore pruning: (docs, scores), ranked.

        Query terms are taken by gain q_w·g_w descending (rare terms first), t_0 … t_{m−1};
        G_j, the documents whose first query term in that order is t_j, contain only
        t_j … t_{m−1}, so every score in G_j is ≤ K + M·A + Σ_{i≥j} q_{t_i} g_{t_i}
        (see :mod:`retrieval.pruning`). A threshold θ ≤ the true k-th best score is kept
        from lower bounds: matched weights are ≥ 0, so a document scores at least
        LB(d) = K + M·log α_d + Σ (weights of its terms looked up so far), and the k-th
        largest LB over distinct documents is such a θ. For j = 0, 1, …:

        1. stop when K + M·A + Σ_{i≥j} q g < θ − ε: no later group can reach the top k;
        2. G_j's candidates are t_j's postings, with LB(d) = q m_{t_j}(d) + M log α_d + K
           and UB(d) = LB(d) + Σ_{i>j} q_{t_i}·min(M_{t_i}, T_{t_i} − log α_d), where
           M_w is w's largest matched weight (m_w(d) ≤ M_w and m_w(d) + log α_d ≤ T_w);
           candidates with UB < θ − ε are dropped;
        3. the survivors found in an earlier term's postings (they belong to an earlier
           group) are dropped; the later terms are looked up one at a time
           (``searchsorted`` in their ascending posting lists), each step tightening LB,
           UB and θ and dropping candidates with UB < θ − ε;
        4. the survivors are scored exactly (:meth:`_score_docs`).

        Finally all groups' survivors are ranked like the exhaustive path. ε = 1e-9·(1 +
        |θ|) absorbs rounding, so a document tied with the k-th best is never dropped.
        """
        gains_all, alpha_max = self._term_gains()
        bounds = self._bounds
        blocks = self._blocks
        model = self.model_
        uses = model.uses
        ids = prep.term_ids
        ptr = self._post_ptr
        starts, ends = ptr[ids], ptr[ids + 1]
        weights = prep.weights
        gains = weights * gains_all[ids]
        order = np.argsort(-gains, kind="stable").tolist()
        suffix = np.cumsum(gains[order][::-1])[::-1].tolist()
        m_max = bounds.matched[ids].tolist()
        qw = weights.tolist()
        tids = ids.tolist()
        p_c = self.index.p_collection
        la = self.log_alpha_
        mass, const = prep.mass, prep.constant
        base = const + mass * alpha_max
        pool = np.zeros(0)          # the best ≤ k lower bounds of finished groups
        theta = -math.inf
        out_docs, out_scores = [], []
        lists = [self._post_docs[int(starts[i]):int(ends[i])] for i in range(len(ids))]

        def eps(t):
            return 1e-9 * (1.0 + abs(t))

        def raise_theta(theta, lb):
            n = len(pool) + len(lb)
            if n < k:
                return theta
            vals = np.concatenate((pool, lb)) if len(pool) else lb
            return max(theta, float(np.partition(vals, n - k)[n - k]))

        def caps(later, cand):
            """q_i × a bound of m_i(d) for each later term i and candidate d."""
            out = np.empty((len(later), len(cand)))
            for r, i in enumerate(later):
                cm = blocks.block_max(tids[i], cand)
                if cm is None:
                    out[r] = m_max[i]
                elif not uses:
                    # the weight depends on the count only: a table over the 256 values
                    c = np.arange(_SATURATED + 1, dtype=np.float64)
                    table = np.minimum(model.matched_weight(np.maximum(c, 1), None, None,
                                                            p_c[tids[i]]), m_max[i])
                    table[0] = 0.0
                    table[_SATURATED] = m_max[i]
                    out[r] = table[cm]
                else:
                    mw = model.matched_weight(
                        np.maximum(cm, 1), self._doc_len[cand] if "doc_len" in uses else None,
                        self._doc_unique[cand] if "doc_unique" in uses else None,
                        p_c[tids[i]])
                    np.minimum(mw, m_max[i], out=out[r])
                    out[r][cm == 0] = 0.0
                    out[r][cm == _SATURATED] = m_max[i]
                out[r] *= qw[i]
            return out

        # cost model, in "vector element operations": the exhaustive path does about
        # _EXHAUSTIVE_OPS per posting plus a pass over the documents; pruning gives up
        # (returns None) before a group would take its own work past that
        budget = _EXHAUSTIVE_OPS * float((ends - starts).sum()) + 0.25 * len(la)
        work = 0.0
        for j, t in enumerate(order):
            if base + suffix[j] < theta - eps(theta):
                break
            s, e = int(starts[t]), int(ends[t])
            work += (e - s) * (4.0 + 2.0 * (len(order) - j - 1))
            if work > budget and self.pruning is not True:
                return None
            cand = lists[t]
            lb = self._term_weights(prep, t, cand, slice(s, e))
            lb += mass * la[cand]
            lb += const
            later = order[j + 1:]
            cap = caps(later, cand)
            rest = cap.sum(axis=0)
            if j == 0:
                theta = raise_theta(theta, lb)
                n = len(cand)
                n_probe = min(n, max(2 * k, _PROBE))
                if later and n > n_probe:
                    # probe: score the candidates with the best upper bounds exactly, for a
                    # θ close to the final one before anything else is looked up
                    top = np.sort(np.argpartition(lb + rest, n - n_probe)[n - n_probe:])
                    probe = np.ascontiguousarray(cand[top])
                    exact = self._score_docs(prep, starts, ends, probe)
                    out_docs.append(probe)
                    out_scores.append(exact)
                    pool = np.partition(exact, n_probe - k)[n_probe - k:]
                    theta = max(theta, float(pool[0]))
                    keep = np.ones(n, dtype=bool)
                    keep[top] = False
                    cand, lb, rest, cap = cand[keep], lb[keep], rest[keep], cap[:, keep]
            if theta > -math.inf:
                keep = lb + rest >= theta - eps(theta)
                cand, lb, rest, cap = cand[keep], lb[keep], rest[keep], cap[:, keep]
            for i in order[:j]:
                if not len(cand):
                    break
                plist = lists[i]
                pos = np.searchsorted(plist, cand)
                np.minimum(pos, len(plist) - 1, out=pos)
                new = plist[pos] != cand
                if not new.all():
                    cand, lb, rest, cap = cand[new], lb[new], rest[new], cap[:, new]
            if j > 0:
                theta = raise_theta(theta, lb)
            for r, i in enumerate(later):
                if not len(cand):
                    break
                rest -= cap[r]
                work += 6.0 * len(cand)
                plist = lists[i]
                pos = np.searchsorted(plist, cand)
                np.minimum(pos, len(plist) - 1, out=pos)
                hit = plist[pos] == cand
                if hit.any():
                    lb[hit] += self._term_weights(prep, i, cand[hit], pos[hit] + int(starts[i]))
                theta = raise_theta(theta, lb)
                keep = lb + rest >= theta - eps(theta)
                if not keep.all():
                    cand, lb, rest, cap = cand[keep], lb[keep], rest[keep], cap[:, keep]
            if len(cand):
                out_docs.append(cand)
                out_scores.append(self._score_docs(prep, starts, ends,
                                                   np.ascontiguousarray(cand)))
                vals = np.concatenate((pool, lb))
                pool = vals if len(vals) <= k else np.partition(vals, len(vals) - k)[-k:]
        docs = np.concatenate(out_docs).astype(np.int64)
        scores = np.concatenate(out_scores)
        n = len(docs)
        if n > k:
            kth = np.partition(scores, n - k)[n - k]
            top = scores >= kth
            docs, scores = docs[top], scores[top]
        order = _rank_order(scores, self._tie, docs, k)
        return docs[order], scores[order]

    def _prune_pays(self, n_terms: np.ndarray, postings: np.ndarray, k: int, n_docs: int,
                    compiled: bool = False) -> np.ndarray:
        """Which queries (by their numbers of terms and of postings) to try pruning for.

        Cost model: try pruning when the query has several terms, many postings, and k
        is small next to the collection (measured: at k ≳ N/2000 the threshold stays too
        low for pruning to pay). Against the compiled exhaustive kernel (``compiled``)
        pruning pays only for queries of at least _KERNEL_PRUNE_FRACTION·N postings
        (measured, 1M documents, k=10). Vectorised: on a collection or a k where it
        cannot pay, no query is looked at one by one."""
        worth = n_terms >= 2
        if not self._prunable():
            return np.zeros_like(worth)
        if self.pruning is True:
            return worth
        if n_docs < _PRUNE_MIN_DOCS or k * _PRUNE_DOCS_PER_K > n_docs:
            return np.zeros_like(worth)
        worth &= postings >= _PRUNE_MIN_POSTINGS
        if compiled:
            worth &= postings >= _KERNEL_PRUNE_FRACTION * n_docs
        return worth

    def _prunable(self) -> bool:
        """Pruning needs matched weights that grow with c(w,d) (all built-in models)."""
        return type(self.model_) in _MONOTONE_MODELS

    def _has_candidates(self, prep: _Prepared) -> bool:
        if len(prep.term_ids):
            return True
        return self.candidates == "all" and bool(prep.unknown)

    def _accumulated(self, prep: _Prepared, k: int):
        """Top ``k`` of one query through a persistent document accumulator: (docs,
        scores), ranked.

        Within one term's postings every document occurs once, so ``np.add.at`` of the
        term's weights into a zeroed float64 array of N entries adds, per document, the
        same values in the same order (query-model term order, starting from 0.0) as the
        ``bincount`` of the block paths: the scores are bit-identical. Nothing of size N
        is touched afterwards: the scores are gathered at the concatenated postings P
        (a document of m query terms occurs m times there, with one score), the touched
        entries are reset to zero, and since the top k documents occupy at most k·m of
        those P positions, the (k·m)-th largest of the P values is ≤ the k-th best score:
        only the positions at or above it (ties included) are deduplicated and ranked.
        """
        local = self._local
        acc = getattr(local, "acc", None)
        n_docs = self.index.num_docs
        if acc is None or len(acc) != n_docs:
            acc = local.acc = np.zeros(n_docs, dtype=np.float64)
        ptr = self._post_ptr
        parts = []
        try:
            for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
                s, e = int(ptr[tid]), int(ptr[tid + 1])
                docs = self._post_docs[s:e]
                np.add.at(acc, docs, self._weights(tid, qw, slice(s, e), docs))
                parts.append(docs)
            docs = np.concatenate(parts) if len(parts) > 1 else parts[0]
            scores = acc[docs]
        finally:
            for d in parts:
                acc[d] = 0.0
        scores += prep.mass * self.log_alpha_[docs]
        scores += prep.constant
        n, cap = len(docs), k * len(parts)
        if n > cap:
            kth = np.partition(scores, n - cap)[n - cap]
            sel = np.flatnonzero(scores >= kth)
            docs, scores = docs[sel], scores[sel]
        docs, first = np.unique(docs, return_index=True)
        scores = scores[first]
        n = len(docs)
        if n > k:
            kth = np.partition(scores, n - k)[n - k]
            top = scores >= kth  # every tie at the boundary stays in
            docs, scores = docs[top], scores[top]
        order = _rank_order(scores, self._tie, docs, k)
        return docs[order].astype(np.int64), scores[order]

    def _compiled(self, prep: _Prepared, k: int, kernels):
        """Top ``k`` of one query by the compiled kernel (:mod:`retrieval._kernels`):
        (docs, scores), ranked; identical to :meth:`_accumulated`.

        The per-posting weights are computed here by :meth:`_weights`, as on the numpy
        paths; the kernel adds them into a persistent accumulator in query-term order,
        scores each distinct matching document once with the numpy paths' expression,
        resets the accumulator, and keeps the documents scoring at least the k-th best
        (a heap of k scores), which are ranked by the kernels' bucket selection
        (:func:`retrieval._kernels.top_ranked`, the order of :func:`_rank_order`).
        """
        local = self._local
        n_docs = self.index.num_docs
        size = min(n_docs, _KERNEL_RANGE)
        acc = getattr(local, "kacc", None)
        if acc is None or len(acc) != size:
            acc = local.kacc = np.zeros(size, dtype=np.float64)
            local.kseen = np.zeros(size, dtype=np.uint8)
        seen = local.kseen
        ptr = self._post_ptr
        ids = prep.term_ids
        starts, ends = ptr[ids], ptr[ids + 1]
        post_docs = self._post_docs
        model = self.model_
        n = int((ends - starts).sum())
        if not model.uses and self._table_ok():
            # count-only weights: the kernel reads them from per-term tables over the
            # counts, the same values :meth:`_weights` computes (see there)
            c = np.arange(self._max_count + 1, dtype=np.float64)
            p_c = self.index.p_collection
            tables = np.empty((len(ids), len(c)), dtype=np.float64)
            for i, (tid, qw) in enumerate(zip(ids.tolist(), prep.weights.tolist())):
                tables[i] = qw * model.matched_weight(c, None, None, p_c[tid])
            w, use_tables = _NO_WEIGHTS, True
        else:
            w_parts = []
            for tid, qw, s, e in zip(ids.tolist(), prep.weights.tolist(), starts.tolist(),
                                     ends.tolist()):
                w_parts.append(self._weights(tid, qw, slice(s, e), post_docs[s:e]))
            w = np.concatenate(w_parts) if len(w_parts) > 1 else w_parts[0]
            tables, use_tables = _NO_TABLES, False
        out_docs = getattr(local, "out_docs", None)
        if out_docs is None or len(out_docs) < n or out_docs.dtype != post_docs.dtype:
            size = max(n, 1024)
            out_docs = local.out_docs = np.empty(size, dtype=post_docs.dtype)
            local.out_scores = np.empty(size, dtype=np.float64)
        out_scores = local.out_scores
        heap = np.empty(min(k, max(n, 1)), dtype=np.float64)
        if self._la_max is None:
            self._la_max = float(self.log_alpha_.max()) if len(self.log_alpha_) else 0.0
        bound = float(prep.mass) * self._la_max
        if not (prep.mass > 0 and math.isfinite(bound)) or \
                k * _KERNEL_BOUND_DOCS_PER_K > n_docs:
            bound = math.inf    # no skipping
        m = kernels.accumulate_top_chunked(acc, seen, post_docs, starts, ends, w,
                                           self._post_counts, tables, use_tables,
                                           self.log_alpha_, bound, float(prep.mass),
                                           float(prep.constant), len(heap), heap,
                                           out_docs, out_scores)
        # rank them by the batch kernel's bucket selection (same order as _rank_order)
        if getattr(local, "rhs", None) is None or len(local.rhs) < m + 1:
            room = max(m + 1, 1024)
            local.rhs = np.empty(room, dtype=np.float64)
            local.rht, local.rhd, local.rcb = np.empty((3, room), dtype=np.int64)
            local.rcnt = np.empty(kernels.BUCKETS_PER_CANDIDATE * room + 1, dtype=np.int64)
        h = kernels.top_ranked(out_scores, out_docs, self._tie, m, k, local.rhs, local.rht,
                               local.rhd, local.rcb, local.rcnt)
        return local.rhd[:h].copy(), local.rhs[:h].copy()

    def _dense_one(self, prep: _Prepared, k: int):
        """Top ``k`` of one query through an N-sized ``bincount`` and candidate mark."""
        n_docs = self.index.num_docs
        ptr = self._post_ptr
        parts, w_parts = [], []
        for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
            s, e = int(ptr[tid]), int(ptr[tid + 1])
            docs = self._post_docs[s:e]
            parts.append(docs)
            w_parts.append(self._weights(tid, qw, slice(s, e), docs))
        if len(parts) > 1:
            docs, w = np.concatenate(parts), np.concatenate(w_parts)
        else:
            docs, w = parts[0], w_parts[0]
        mark = np.zeros(n_docs, dtype=bool)
        mark[docs] = True
        cand = np.flatnonzero(mark)
        scores = np.bincount(docs, weights=w, minlength=n_docs)[cand]
        scores += prep.mass * self.log_alpha_[cand]
        scores += prep.constant
        n = len(cand)
        if n > k:
            kth = np.partition(scores, n - k)[n - k]
            top = scores >= kth  # every tie at the boundary stays in
            cand, scores = cand[top], scores[top]
        order = _rank_order(scores, self._tie, cand, k)
        return cand[order], scores[order]

    def _block_keys(self, preps: list[_Prepared], n_docs: int):
        keys_parts, w_parts = [], []
        for j, prep in enumerate(preps):
            docs, contrib = self._gather(prep)
            keys_parts.append(docs + j * n_docs)
            w_parts.append(contrib)
        return np.concatenate(keys_parts), np.concatenate(w_parts)

    def _dense_block(self, preps: list[_Prepared], k: int, n_docs: int):
        """Score a block through a (queries × documents) accumulator.

        One ``bincount`` accumulates the matched-term weights of all the block's queries;
        a boolean mark of the same shape, compacted with ``flatnonzero``, lists each
        query's candidates already in (query, document) order, so no sort is needed.
        Only candidates are scored, and each query's k-th best score is found by
        ``partition`` over its own candidates.
        """
        nq = len(preps)
        keys, contrib = self._block_keys(preps, n_docs)
        if self.candidates == "all":
            ckeys = np.arange(nq * n_docs, dtype=np.int64)
        else:
            mark = np.zeros(nq * n_docs, dtype=bool)
            mark[keys] = True
            ckeys = np.flatnonzero(mark)
        acc = np.bincount(keys, weights=contrib, minlength=nq * n_docs).astype(
            np.float64, copy=False)[ckeys]
        bounds = np.searchsorted(ckeys, np.arange(nq + 1, dtype=np.int64) * n_docs).tolist()
        log_alpha = self.log_alpha_
        rows, cols, kept = [], [], []
        for j, prep in enumerate(preps):
            s, e = bounds[j], bounds[j + 1]
            if s == e:
                continue
            docs = ckeys[s:e] - j * n_docs
            seg = acc[s:e] + prep.mass * log_alpha[docs] + prep.constant
            if e - s > k:
                kth = np.partition(seg, e - s - k)[e - s - k]
                top = seg >= kth  # every tie at the boundary stays in
                docs, seg = docs[top], seg[top]
            order = _rank_order(seg, self._tie, docs, k)
            rows.append(np.full(len(order), j, dtype=np.int64))
            cols.append(docs[order])
            kept.append(seg[order])
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(kept)

    def _sparse_block(self, preps: list[_Prepared], k: int, n_docs: int):
        keys, contrib = self._block_keys(preps, n_docs)
        ukeys, inverse = np.unique(keys, return_inverse=True)
        acc = np.bincount(inverse, weights=contrib, minlength=len(ukeys))
        cq = ukeys // n_docs
        cd = ukeys % n_docs
        mass = np.asarray([p.mass for p in preps])
        const = np.asarray([p.constant for p in preps])
        scores = acc + mass[cq] * self.log_alpha_[cd] + const[cq]
        return self._rank_pairs(cq, cd, scores, k)

    def _rank_pairs(self, rows, cols, scores, k: int):
        """Sort (query, doc, score) by query, score descending, docid; keep k per query."""
        order = np.lexsort((self._tie[cols], -scores, rows))
        rows, cols, scores = rows[order], cols[order], scores[order]
        first = np.searchsorted(rows, rows, side="left")
        keep = (np.arange(len(rows)) - first) < k
        return rows[keep], cols[keep].astype(np.int64), scores[keep]

    def batch_search(self, queries: Sequence[str | QueryModel], k: int = 10, *,
                     jobs: int = 1) -> list[list[SearchResult]]:
        """:meth:`search` for many queries at once (vectorised; same results)."""
        res = self.batch_search_arrays(queries, k, jobs=jobs)
        out: list[list[SearchResult]] = [[] for _ in queries]
        ids = self._docids(res.doc_numbers)
        bounds = np.searchsorted(res.query_index, np.arange(len(queries) + 1))
        scores = res.scores.tolist()
        for j in range(len(queries)):
            s, e = int(bounds[j]), int(bounds[j + 1])
            out[j] = [SearchResult(r + 1, ids[i], scores[i]) for r, i in enumerate(range(s, e))]
        return out

    def run(self, queries: Iterable[Query], k: int = 1000, *, jobs: int = 1
            ) -> list[ScoredDoc]:
        """A TREC-style run: ``ScoredDoc(qid, docid, score, rank)`` for each query."""
        queries = list(queries)
        res = self.batch_search_arrays([q.text for q in queries], k, jobs=jobs)
        ids = self._docids(res.doc_numbers)
        starts = np.searchsorted(res.query_index, res.query_index, side="left")
        ranks = (np.arange(len(res.query_index)) - starts + 1).tolist()
        qids = [queries[i].qid for i in res.query_index.tolist()]
        return [ScoredDoc(q, d, s, r)
                for q, d, s, r in zip(qids, ids, res.scores.tolist(), ranks)]

    def score(self, query: str | QueryModel, docids: Sequence[str]) -> np.ndarray:
        """The score of each of ``docids`` (any document, matching or not)."""
        nums = np.asarray([self._doc_number(d) for d in docids], dtype=np.int64)
        prep = self._prepare(query)
        docs, contrib = self._gather(prep)
        acc = np.bincount(docs, weights=contrib, minlength=self.index.num_docs)
        return acc[nums] + prep.mass * self.log_alpha_[nums] + prep.constant

    def explain(self, query: str | QueryModel, docid: str) -> Explanation:
        """Each query term's contribution p(w|θ_q)·log p(w|d) to ``docid``'s score."""
        doc = self._doc_number(docid)
        prep = self._prepare(query)
        terms_d, counts_d = self.index.document_vector(doc)
        terms_d = np.asarray(terms_d)
        dl = int(self._doc_len[doc])
        du = int(self._doc_unique[doc])
        la = float(self.log_alpha_[doc])
        rows: list[TermContribution] = []
        for tid, qw in zip(prep.term_ids.tolist(), prep.weights.tolist()):
            pos = int(np.searchsorted(terms_d, tid))
            c = int(counts_d[pos]) if pos < len(terms_d) and terms_d[pos] == tid else 0
            pc = float(self.index.p_collection[tid])
            lp = float(self.model_.log_prob(np.asarray([c]), dl, du, pc)[0])
            rows.append(TermContribution(self.index.vocabulary[tid], qw, c, pc,
                                         math.exp(lp), qw * lp))
        p_unknown = 1.0 / (2.0 * max(self.index.num_tokens, 1))
        for term, qw in prep.unknown:
            lp = la + math.log(p_unknown)
            rows.append(TermContribution(term, qw, 0, p_unknown, math.exp(lp), qw * lp))
        total = float(self.score(query, [docid])[0]) if rows else 0.0
        return Explanation(docid, total, dl, du, la, tuple(rows))

    def _docids(self, doc_numbers) -> list[str]:
        arrays = self.index.arrays
        return gather_strings(arrays["docid_offsets"], arrays["docid_bytes"], doc_numbers)

    def _doc_number(self, docid: str) -> int:
        try:
            return self.index.doc_number(docid)
        except KeyError:
            raise ParameterError(f"no document {docid!r} in the index") from None


class _LazyPreps:
    """``preps[j]``: the :class:`_Prepared` of query j of a batch, made on first use."""

    def __init__(self, batch: _Batch):
        self._batch = batch
        self._made: dict[int, _Prepared] = {}

    def __getitem__(self, j: int) -> _Prepared:
        prep = self._made.get(j)
        if prep is None:
            prep = self._made[j] = self._batch.prep(j)
        return prep


def _rank_order(scores: np.ndarray, tie: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    """Positions of the best ``k`` by score descending, equal scores by docid ascending.

    A one-key sort is five times cheaper than the two-key ``lexsort``; equal scores are
    rare, so the two-key sort runs only when the sorted scores contain a tie.
    """
    order = np.argsort(-scores)
    ranked = scores[order]
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        order = np.lexsort((tie[docs], -scores))
    return order[:k]


def _joined(results: list[BatchResult], bounds: list[int]) -> BatchResult:
    """The results of contiguous parts of a batch (part i starts at query bounds[i])."""
    return BatchResult(
        np.concatenate([r.query_index + a for r, a in zip(results, bounds)]),
        np.concatenate([r.doc_numbers for r in results]),
        np.concatenate([r.scores for r in results]))


_FORKED_SEARCHER: "Searcher | None" = None


def _search_part(args):
    queries, k = args
    return _FORKED_SEARCHER.batch_search_arrays(queries, k)


def _check_jobs(jobs) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ParameterError(f"jobs must be a whole number >= 1, got {jobs!r}")
    return int(jobs)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a whole number >= 1, got {k!r}")
    return int(k)
