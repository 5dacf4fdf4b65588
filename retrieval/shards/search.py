"""Searching a sharded index: every shard ranks with the global statistics and the top k
lists are merged — exactly the single index's ranking.

Why exact: a query is prepared once over the global vocabulary (same term ids, weights,
mass and query constant as on the single index; :mod:`retrieval.shards.stats`), and a
document's score depends only on its own counts and the global p(w|C), so each shard
computes the single index's score of each of its documents bit for bit. A document in
the global top k is in its shard's top k (fewer documents compete there), so the merge
of the shards' top k lists, ordered by score descending and equal scores by docid string
ascending (the engine's tie rule), is the global top k.

Feedback needs the global top documents first: the first pass is merged across shards,
the feedback documents are gathered into one small index over the global statistics
(:func:`~retrieval.shards.stats.subset_index`, where they score exactly as in the whole
collection, so its first pass is the global one), the method expands the queries there
(global p(w|C), df and N), and the expanded query arrays — global term ids — are ranked
on every shard and merged again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import ParameterError
from ..records import SearchResult
from ..search import Searcher
from ..search.queries import QueryBatch, QueryModel
from ..search.searcher import check_k
from ..smoothing import default_model
from .stats import subset_index
from .store import ShardedIndex


class ShardedResult(NamedTuple):
    """Merged top-k results as flat arrays sorted by (query, rank): the shard and the
    document number in it, the score and the docid string of every entry."""
    query_index: np.ndarray   # int64
    shard: np.ndarray         # int64
    doc_numbers: np.ndarray   # int64, numbers within the shard
    scores: np.ndarray        # float64
    docids: list[str]


def merge_top_k(parts: Sequence[tuple[int, object, list[str]]], n_queries: int, k: int
                ) -> ShardedResult:
    """Merge shards' top-k lists: ``parts`` holds (shard, BatchResult, docids) per shard.

    Order: query ascending, score descending, docid string ascending; the first ``k``
    of each query are kept. One ``lexsort`` over at most shards·k entries a query.
    """
    if not parts:
        e = np.zeros(0, dtype=np.int64)
        return ShardedResult(e, e, e, np.zeros(0), [])
    q = np.concatenate([np.asarray(r.query_index, dtype=np.int64) for _, r, _ in parts])
    d = np.concatenate([np.asarray(r.doc_numbers, dtype=np.int64) for _, r, _ in parts])
    s = np.concatenate([np.asarray(r.scores, dtype=np.float64) for _, r, _ in parts])
    sh = np.concatenate([np.full(len(r.query_index), i, dtype=np.int64)
                         for i, r, _ in parts])
    ids = [x for _, _, names in parts for x in names]
    id_arr = np.asarray(ids, dtype=str) if ids else np.zeros(0, dtype="U1")
    order = np.lexsort((id_arr, -s, q))
    q, d, s, sh = q[order], d[order], s[order], sh[order]
    first = np.searchsorted(q, q, side="left")
    keep = (np.arange(len(q)) - first) < k
    order = order[keep]
    return ShardedResult(q[keep], sh[keep], d[keep], s[keep],
                         [ids[i] for i in order.tolist()])


class ShardedSearcher:
    """Ranks a :class:`~retrieval.shards.store.ShardedIndex` (or a path to one) exactly
    as one :class:`~retrieval.search.Searcher` over all its documents would.

    ``model``, ``unknown_terms``, ``candidates``, ``pruning``, ``compiled`` and
    ``thresholds`` are passed to one ``Searcher`` per shard view (``searchers_``).
    ``feedback``: a :class:`~retrieval.feedback.Feedback` method applied to every query
    (global first pass, expansion with global statistics, merged second pass).
    """

    def __init__(self, index, model=None, *, feedback=None, **searcher_params):
        self.index = index
        self.model = model
        self.feedback = feedback
        self.searcher_params = searcher_params
        if not isinstance(index, ShardedIndex):
            raise ParameterError(f"index must be a retrieval.shards.ShardedIndex, got "
                                 f"{type(index).__name__}")
        # a model that depends on collection statistics (SPUD's background mass, μ from
        # the mean length) is fixed once from the whole collection's document lengths,
        # as the single index would fix it; every shard then scores with it
        self.model_ = (model if model is not None else default_model()).resolved(
            index.length_statistics())
        self.searchers_ = [Searcher(v, self.model_, **searcher_params) for v in index.views]

    # -- the steps (also run by retrieval.shards.distributed) ---------------------------
    def prepare(self, queries: Sequence[str | QueryModel]) -> QueryBatch:
        """The queries as global term-id arrays (valid on every shard view)."""
        return self.searchers_[0].prepare(list(queries))

    def rank_shard(self, shard: int, batch: QueryBatch, k: int):
        """Shard ``shard``'s top ``k`` of a prepared batch and their docid strings."""
        searcher = self.searchers_[shard]
        if searcher.candidates == "matching":
            batch = present_terms(batch, searcher.tables_.post_ptr)
        res = searcher.rank(batch, k)
        return res, searcher.docids(res.doc_numbers)

    def rank(self, batch: QueryBatch, k: int) -> ShardedResult:
        """The merged top ``k`` of every query of a prepared batch."""
        parts = [(i, *self.rank_shard(i, batch, k)) for i in range(len(self.searchers_))]
        return merge_top_k(parts, len(batch), k)

    def expand(self, queries: Sequence[str | QueryModel], batch: QueryBatch,
               first: ShardedResult) -> QueryBatch:
        """Feedback's expanded query arrays from the merged first pass ``first``."""
        parts = []
        for i, view in enumerate(self.index.views):
            docs = np.unique(first.doc_numbers[first.shard == i])
            if len(docs):
                parts.append((view, docs))
        sub = subset_index(parts, self.index.stats, self.index.shards[0].manifest["analyzer"])
        params = {k: v for k, v in self.searcher_params.items() if k != "thresholds"}
        return self.feedback.expanded(Searcher(sub, self.model_, **params), list(queries))

    # -- public API ---------------------------------------------------------------------
    def batch_search_arrays(self, queries: Sequence[str | QueryModel], k: int = 1000
                            ) -> ShardedResult:
        """Merged top ``k`` of every query (after feedback when one is set)."""
        k = check_k(k)
        queries = list(queries)
        batch = self.prepare(queries)
        fb_docs = getattr(self.feedback, "fb_docs", None)
        if fb_docs is not None:
            first = self.rank(batch, int(fb_docs))
            batch = self.expand(queries, batch, first)
        return self.rank(batch, k)

    def batch_search(self, queries: Sequence[str | QueryModel], k: int = 10
                     ) -> list[list[SearchResult]]:
        """Like :meth:`retrieval.Searcher.batch_search`."""
        res = self.batch_search_arrays(queries, k)
        return results_lists(res, len(queries))

    def search(self, query: str | QueryModel, k: int = 10) -> list[SearchResult]:
        return self.batch_search([query], k)[0]


def present_terms(batch: QueryBatch, post_ptr: np.ndarray) -> QueryBatch:
    """``batch`` without the query terms that have no postings in this shard: they add
    nothing to any of its documents' matched sums (their part of the score, weight ·
    log α_d and weight · log p(w|C), is in ``mass`` and ``constant``, kept as they are),
    and the pruned path expects every query term to have postings. Only for
    ``candidates="matching"``: under "all" a query must still rank every document of
    a shard that holds none of its terms."""
    t = batch.term_ids
    keep = post_ptr[t + 1] > post_ptr[t]
    if keep.all():
        return batch
    n = len(batch)
    q = np.repeat(np.arange(n, dtype=np.int64), np.diff(batch.ptr))[keep]
    ptr = np.searchsorted(q, np.arange(n + 1, dtype=np.int64))
    return QueryBatch(ptr, t[keep], batch.weights[keep], batch.mass, batch.constant,
                      batch.length, batch.unknown)


def results_lists(res: ShardedResult, n: int) -> list[list[SearchResult]]:
    """Per-query ``SearchResult`` lists of a merged result."""
    out: list[list[SearchResult]] = [[] for _ in range(n)]
    scores = res.scores.tolist()
    for i, (j, docid) in enumerate(zip(res.query_index.tolist(), res.docids)):
        out[j].append(SearchResult(len(out[j]) + 1, docid, scores[i]))
    return out
