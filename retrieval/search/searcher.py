"""Ranking by negative cross-entropy (the KL-divergence retrieval model): the
:class:`Searcher` facade.

For a query model θ_q and a smoothed document model θ_d the score is

    score(q, d) = −H(θ_q, θ_d) = Σ_w p(w|θ_q) · log p(w|θ_d)        (nats, ≤ 0)

computed exactly through the sparse form of :mod:`retrieval.smoothing`: matched-term
weights summed over the query terms' postings, plus (Σ_w p(w|θ_q))·log α_d, plus the
query-only constant Σ_w p(w|θ_q) log p(w|C). The printed score is therefore the true
cross-entropy, not only a rank-equivalent number; −D(θ_q‖θ_d) differs from it by the
query entropy H(θ_q), which is the same for every document.

Decisions (query models and unknown terms: :mod:`retrieval.search.queries`):

* **Candidates.** Only documents that contain at least one query term are scored
  (``candidates="matching"``, Lemur's rule); ``candidates="all"`` scores every document.
* **Ties.** Equal scores (equal float64 values) are ordered by document id ascending
  (string order), so rankings are identical across runs, platforms and index builds.
* **Paths.** :meth:`Searcher.rank` chooses an execution path per batch
  (:mod:`retrieval.search.plan`) among the numpy paths
  (:mod:`~retrieval.search.exhaustive`), MaxScore pruning
  (:mod:`~retrieval.search.maxscore`) and the compiled kernels
  (:mod:`~retrieval.search.compiled`); all give bit-identical results.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import ParameterError
from ..index import Index
from ..lookup import VocabularyLookup, gather_strings
from ..records import Query, ScoredDoc
from ..results import QueryResults, Results, columnar
from ..safeio import clamp_jobs
from ..smoothing import SmoothingModel, default_model
from . import compiled as comp
from . import exhaustive, parallel
from .maxscore import pruned
from .plan import DEFAULT_THRESHOLDS, Thresholds, accumulator_pays, choose_path, \
    prune_pays, wants_kernels
from .queries import UNKNOWN_TERM_RULES, LazyPreps, QueryBatch, QueryModel, \
    QueryPreparer, batch_from_arrays, query_model
from .ranking import BatchResult, Explanation, TermContribution, concatenated
from .tables import SearchTables

CANDIDATE_RULES = ("matching", "all")
# smoothing models whose matched weight increases with c(w,d) (pruning's block bounds)


class Searcher:
    """Ranks an index's documents for queries under one smoothing model.

    Parameters
    ----------
    index : Index
    model : SmoothingModel, default :func:`retrieval.smoothing.default_model` (SPUD ω=0.8,
        chosen by ``scripts/choose_defaults.py``), resolved for ``index``
    unknown_terms : {"drop", "indri"}
    candidates : {"matching", "all"}
    pruning : {"auto", True, False}
        Exact dynamic pruning (:mod:`retrieval.search.maxscore`) for
        ``candidates="matching"``: "auto" uses it where a cost model expects a gain, True
        wherever it applies (tests), False never. Results are identical either way.
    compiled : {"auto", True, False}
        The compiled kernels of :mod:`retrieval.search.kernels` (needs numba, the
        optional ``fast`` extra): "auto" uses them where loading them (~0.45 s once per
        process) pays: on collections of at least 100,000 documents, and on smaller ones
        once this searcher has searched ``kernel_batch_min_postings`` (12 million)
        postings or the process has loaded them already; True wherever numba is
        installed (a long-running process that searches a lot); False never. Results are
        bit-identical either way.
    thresholds : Thresholds, default the measured defaults
        The tuning thresholds of :mod:`retrieval.search.plan` (speed only; tests force a
        path with extreme values).

    Attributes
    ----------
    log_alpha_ : the document term log α_d of every document.
    tables_ : :class:`~retrieval.search.tables.SearchTables`, the arrays shared with
        feedback (and its per-thread ``scratch``).
    postings_searched_ : postings of the query terms this searcher has ranked (the
        "auto" kernel rule).
    paths_ : ``collections.Counter`` of the queries each path has ranked ("blocks",
        "accumulator", "dense_one", "query_kernel", "batch_kernel", "pruned").
    """

    def __init__(self, index: Index, model: SmoothingModel | None = None, *,
                 unknown_terms: str = "drop", candidates: str = "matching",
                 pruning: bool | str = "auto", compiled: bool | str = "auto",
                 thresholds: Thresholds | None = None):
        self.index = index
        self.model = model
        self.unknown_terms = unknown_terms
        self.candidates = candidates
        self.pruning = pruning
        self.compiled = compiled
        self.thresholds = thresholds
        self._check_params()
        # a model that depends on collection statistics (SPUD's background mass,
        # Dirichlet with μ from the mean length) is fixed for this index here
        self.model_ = (model if model is not None else default_model()).resolved(index)
        self.thresholds_ = thresholds if thresholds is not None else DEFAULT_THRESHOLDS
        self.tables_ = SearchTables(index, self.model_, self.thresholds_)
        self.log_alpha_ = self.tables_.log_alpha
        self._lookup = VocabularyLookup(index)
        self._preparer = QueryPreparer(index, self._lookup, unknown_terms,
                                       self.thresholds_.token_memo)
        self.postings_searched_ = 0
        self.paths_: Counter = Counter()

    def _check_params(self) -> None:
        if not isinstance(self.index, Index):
            raise ParameterError(f"index must be a retrieval.Index, got "
                                 f"{type(self.index).__name__}")
        model = self.model
        if model is not None and not isinstance(model, SmoothingModel):
            raise ParameterError(f"model must be a smoothing model such as "
                                 f"Dirichlet(mu=1000), got {model!r}")
        if self.unknown_terms not in UNKNOWN_TERM_RULES:
            raise ParameterError(f"unknown_terms must be one of "
                                 f"{', '.join(UNKNOWN_TERM_RULES)}, "
                                 f"got {self.unknown_terms!r}")
        if self.pruning not in ("auto", True, False):
            raise ParameterError(f"pruning must be 'auto', True or False, "
                                 f"got {self.pruning!r}")
        if self.compiled not in ("auto", True, False):
            raise ParameterError(f"compiled must be 'auto', True or False, "
                                 f"got {self.compiled!r}")
        if self.candidates not in CANDIDATE_RULES:
            raise ParameterError(f"candidates must be one of {', '.join(CANDIDATE_RULES)}, "
                                 f"got {self.candidates!r}")
        if self.thresholds is not None and not isinstance(self.thresholds, Thresholds):
            raise ParameterError(f"thresholds must be a retrieval.search.Thresholds, got "
                                 f"{type(self.thresholds).__name__}")

    # -- queries ------------------------------------------------------------------------
    def query_model(self, query: str | QueryModel) -> QueryModel:
        """The query model of ``query`` (text is analysed with the index's analyzer)."""
        return query_model(self.index, self._lookup, self.unknown_terms, query)

    def prepare(self, queries: Sequence[str | QueryModel]) -> QueryBatch:
        """All queries as one :class:`~retrieval.search.QueryBatch` (see
        :meth:`~retrieval.search.queries.QueryPreparer.prepare`)."""
        return self._preparer.prepare(queries)

    def batch_from_arrays(self, n: int, q: np.ndarray, term_ids: np.ndarray,
                          weights: np.ndarray, length: np.ndarray | None = None,
                          unknown=None) -> QueryBatch:
        """A :class:`~retrieval.search.QueryBatch` of ``n`` queries from (query, term id,
        weight) entries sorted by query then term id; ``length`` defaults to each
        query's mass; ``unknown``: each query's (term, weight) pairs kept under the
        indri rule."""
        return batch_from_arrays(self.index, n, q, term_ids, weights, length, unknown)

    def kernels(self):
        """The compiled kernels module when this searcher uses them (for feedback's own
        kernels): always with ``compiled=True`` (numba permitting), never with False,
        and under "auto" once this process has loaded them."""
        if self.compiled is False:
            return None
        if self.compiled is True or comp.kernels_loaded():
            return comp.load_kernels()
        return None

    # -- ranking ------------------------------------------------------------------------
    def search(self, query: str | QueryModel, k: int = 10) -> QueryResults:
        """The top ``k`` documents for ``query``, best first (a sequence of
        :class:`SearchResult`; see :meth:`batch_search`)."""
        return self.batch_search([query], k)[0]

    def batch_search_arrays(self, queries: Sequence[str | QueryModel], k: int = 1000, *,
                            jobs: int = 1) -> BatchResult:
        """Top ``k`` of every query as flat arrays, sorted by (query, rank).

        ``jobs`` > 1 splits the queries into that many contiguous parts searched at once
        (:mod:`retrieval.search.parallel`): by threads when the compiled kernels are
        available (they release the GIL), otherwise by forked worker processes, which
        share the memory-mapped index (without ``fork`` the search runs in this thread).
        Results are identical either way.
        """
        k = check_k(k)
        # more workers than CPUs only add start-up cost; fewer than 2 queries a worker
        # is not worth splitting (results are identical whatever the count)
        jobs = clamp_jobs(check_jobs(jobs)).jobs
        if jobs > 1 and len(queries) >= 2 * jobs:
            def search(part):
                return self.rank(self.prepare(part), k)
            if self.compiled is not False and comp.load_kernels() is not None:
                return parallel.threaded(search, queries, jobs)
            if parallel.can_fork():
                return parallel.forked(search, queries, jobs)
        return self.rank(self.prepare(queries), k)

    def rank(self, batch: QueryBatch, k: int) -> BatchResult:
        """The top ``k`` of every query of a prepared batch (:meth:`prepare`,
        :meth:`batch_from_arrays`), sorted by (query, rank): the path is chosen by
        :mod:`retrieval.search.plan` from the batch's sizes."""
        k = check_k(k)
        t = self.thresholds_
        n_docs = self.index.num_docs
        ptr = self.tables_.post_ptr
        n_terms = np.diff(batch.ptr)
        term_q = np.repeat(np.arange(len(batch), dtype=np.int64), n_terms)
        postings = ptr[batch.term_ids + 1] - ptr[batch.term_ids]
        size_arr = np.bincount(term_q, weights=postings, minlength=len(batch)).astype(np.int64)
        has = n_terms > 0
        if self.candidates == "all":
            has |= np.fromiter(map(bool, batch.unknown), dtype=bool, count=len(batch))
        active = np.flatnonzero(has).tolist()
        matching = self.candidates == "matching"
        if active and matching and self.compiled is not False:
            self.postings_searched_ += int(size_arr.sum())
        kernels = None
        if wants_kernels(t, n_docs=n_docs, k=k, matching=matching, active=bool(active),
                         compiled=self.compiled, loaded=comp.kernels_loaded(),
                         postings=self.postings_searched_):
            kernels = comp.load_kernels()
        path = choose_path(t, n_docs=n_docs, k=k, matching=matching,
                           kernels=kernels is not None)
        preps = LazyPreps(batch)
        out_q, out_d, out_s = [], [], []
        if self.pruning and matching and active and self.model_.monotone_in_count:
            worth = prune_pays(t, n_terms, size_arr, k, n_docs,
                               compiled=path.per_query and kernels is not None,
                               forced=self.pruning is True)
            if worth.any():
                active = self._rank_pruned(preps, active, worth, k, (out_q, out_d, out_s))
        pruned_any = len(out_q) > 0
        if kernels is not None and not path.per_query and active:
            out_q_, out_d_, out_s_ = comp.batch_kernel(
                self.tables_, t, batch, np.asarray(active, dtype=np.int64), size_arr, k,
                kernels)
            self._add(out_q, out_d, out_s, [out_q_], [out_d_], [out_s_], "batch_kernel",
                      len(active))
            active = []
        sizes = dict(zip(active, size_arr[active].tolist()))
        if path.per_query and kernels is not None and active \
                and comp.queries_kernel_fits(self.tables_):
            parts = comp.queries_kernel(self.tables_, t, batch,
                                        np.asarray(active, dtype=np.int64), size_arr, k,
                                        kernels)
            self._add(out_q, out_d, out_s, [parts[0]], [parts[1]], [parts[2]],
                      "query_kernel", len(active))
            active = []
        if path.per_query:
            self._rank_one_by_one(preps, active, sizes, k, kernels, (out_q, out_d, out_s))
            active = []
        if active:
            parts = exhaustive.rank_blocks(self.tables_, t, preps, active, sizes, k,
                                           self.candidates == "all")
            self._add(out_q, out_d, out_s, *parts, "blocks", len(active))
        return concatenated(out_q, out_d, out_s, pruned_any)

    def _add(self, out_q, out_d, out_s, q, d, s, path: str, n: int) -> None:
        out_q.extend(q)
        out_d.extend(d)
        out_s.extend(s)
        self.paths_[path] += n

    def _rank_pruned(self, preps, active, worth, k: int, out) -> list[int]:
        """MaxScore for the queries of ``active`` marked ``worth``; the rest returned."""
        rest = []
        for j in active:
            got = pruned(self.tables_, self.thresholds_, preps[j], k,
                         self.pruning is True) if worth[j] else None
            if got is None:
                rest.append(j)
            else:
                self._add(*out, [np.full(len(got[0]), j, dtype=np.int64)], [got[0]],
                          [got[1]], "pruned", 1)
        return rest

    def _rank_one_by_one(self, preps, active, sizes, k: int, kernels, out) -> None:
        tables, t = self.tables_, self.thresholds_
        for j in active:
            if kernels is not None:
                d, sc = comp.query_kernel(tables, t, preps[j], k, kernels)
                path = "query_kernel"
            elif accumulator_pays(t, sizes[j], tables.n_docs):
                d, sc = exhaustive.accumulated(tables, preps[j], k)
                path = "accumulator"
            else:
                d, sc = exhaustive.dense_one(tables, preps[j], k)
                path = "dense_one"
            self._add(*out, [np.full(len(d), j, dtype=np.int64)], [d], [sc], path, 1)

    # -- results ------------------------------------------------------------------------
    def batch_search(self, queries: Sequence[str | QueryModel], k: int = 10, *,
                     jobs: int = 1) -> Results:
        """:meth:`search` for many queries at once (vectorised; same results).

        Returns columnar :class:`~retrieval.results.Results`: the arrays of
        :meth:`batch_search_arrays` with docids taken from the index's docid table in one
        step; ``results[j]`` is query j's sequence of :class:`SearchResult` records, made
        only when read. It indexes, iterates and compares equal like
        ``list[list[SearchResult]]`` (``to_lists()`` gives real lists)."""
        return columnar(self.batch_search_arrays(queries, k, jobs=jobs), self.index,
                        len(queries))

    def run(self, queries: Iterable[Query], k: int = 1000, *, jobs: int = 1
            ) -> list[ScoredDoc]:
        """A TREC-style run: ``ScoredDoc(qid, docid, score, rank)`` for each query."""
        queries = list(queries)
        res = self.batch_search_arrays([q.text for q in queries], k, jobs=jobs)
        ids = self.docids(res.doc_numbers)
        starts = np.searchsorted(res.query_index, res.query_index, side="left")
        ranks = (np.arange(len(res.query_index)) - starts + 1).tolist()
        qids = [queries[i].qid for i in res.query_index.tolist()]
        return [ScoredDoc(q, d, s, r)
                for q, d, s, r in zip(qids, ids, res.scores.tolist(), ranks)]

    def score(self, query: str | QueryModel, docids: Sequence[str]) -> np.ndarray:
        """The score of each of ``docids`` (any document, matching or not)."""
        nums = np.asarray([self._doc_number(d) for d in docids], dtype=np.int64)
        return exhaustive.score_documents(self.tables_, self.prepare([query]).prep(0), nums)

    def explain(self, query: str | QueryModel, docid: str) -> Explanation:
        """Each query term's contribution p(w|θ_q)·log p(w|d) to ``docid``'s score."""
        doc = self._doc_number(docid)
        prep = self.prepare([query]).prep(0)
        terms_d, counts_d = self.index.document_vector(doc)
        terms_d = np.asarray(terms_d)
        dl = int(self.tables_.doc_len[doc])
        du = int(self.tables_.doc_unique[doc])
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

    def docids(self, doc_numbers) -> list[str]:
        """The docid strings of internal document numbers."""
        arrays = self.index.arrays
        return gather_strings(arrays["docid_offsets"], arrays["docid_bytes"], doc_numbers)

    def _doc_number(self, docid: str) -> int:
        try:
            return self.index.doc_number(docid)
        except KeyError:
            raise ParameterError(f"no document {docid!r} in the index") from None


def check_jobs(jobs) -> int:
    """``jobs`` as an int, or a ParameterError saying what to change."""
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ParameterError(f"jobs must be a whole number >= 1, got {jobs!r}")
    return int(jobs)


def check_k(k) -> int:
    """``k`` as an int, or a ParameterError saying what to change."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a whole number >= 1, got {k!r}")
    return int(k)
