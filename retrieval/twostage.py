"""Two-stage smoothing with λ estimated per query by EM (Zhai & Lafferty, SIGIR 2002).

Two-stage smoothing (:class:`retrieval.smoothing.TwoStage`) scores with

    p(w|d) = (1−λ) (c(w,d) + μ p(w|C)) / (|d| + μ) + λ p(w|C)

where μ (the first, Dirichlet stage) explains the document's own sampling and λ (the
second stage) the query's noise. Zhai & Lafferty estimate λ *for each query*: the query
is a sample of a mixture, over the documents, of each document's first-stage model
mixed with the collection model, and λ̂_q maximises its likelihood. Zhai & Lafferty climb it by EM
(:func:`retrieval.lambdas.estimate_query_lambda`); the likelihood is linear in the
document weights π, so its maximum is that of the best single document, and
:func:`retrieval.lambdas.direct_query_lambda` computes it directly (concave in λ per
document: a vectorised bisection), which is what is used here. Measured on the
shared collections (μ = 500, all queries): the direct maximum's log-likelihood is ≥
EM's on every query (EM stops short: up to 0.048 nats below), λ agrees to 2e-4 except
on CISI's long queries (up to 0.19 apart, EM not converged after 500 iterations), and
it is 3-15× faster (cranfield 0.73 s vs 2.26 s, CISI 0.67 s vs 10.5 s for all
queries). The N documents are collapsed exactly into the ones containing a query term
plus one row per distinct length of the rest.

Because α_d = (μ + λ|d|)/(|d| + μ) changes with λ, a query is ranked by its own
resolved model ``TwoStage(mu, lam=λ̂_q)``: :class:`TwoStageEM` estimates every query's λ̂
from its (unexpanded) query model, then searches each query with that model. With
pseudo-relevance feedback the feedback runs per query under the query's model (λ̂ is
estimated on the original query and kept for the expanded one). A query without any
known term keeps λ = 0.5 (it retrieves nothing under ``candidates="matching"``).

Speed (issue 16's budget: a model costs at most 1.5× Dirichlet's query time): the
estimate prunes the rows that cannot hold the maximum (an exact bound, see
:func:`~retrieval.lambdas.direct_query_lambda`), the queries are prepared once, queries
with λ̂ = 0 (all 740 shared-collection queries with a known term, at μ = 1000) are
ranked as one batch by ``Dirichlet(mu)``, the same function bit for bit
(:meth:`TwoStageEM.model_for`), the queries sharing any other λ̂ as one batch of
``TwoStage(mu, λ̂)``, and the queries without a known term (λ = 0.5) build no searcher
under matching candidates. λ̂ follows the searcher's ``compiled`` setting: the numba
kernel of :mod:`retrieval.lambda_kernels` (all queries in one call, only the sums that
can decide λ̂ computed exactly; the same λ̂ to the bit) or numpy
(:func:`retrieval.lambdas.lambda_kernels` decides under "auto").
``python scripts/bench_lambda_prior.py --only two-stage [--compiled]`` (756 queries,
k = 1000, CPU time, best of 15 / 5 rounds, quiet machine, load 0.6-0.7, ranges of
repeated runs): with the kernels 1.35-1.45× Dirichlet (0.085-0.103 s vs 0.062-0.076 s),
the λ̂ estimate ~0.025 s of it; on the numpy path 2.2-2.8× (0.72-0.75 s vs 0.26-0.32 s;
the BLAS-summed estimate before the fixed order measured 2.2× on a busy machine), the
estimate ~0.35 s, about 0.5 ms of small-array numpy work per query — the exact
fixed-order sums of the bisection cost more array operations than one BLAS product.

Command line spelling: ``--model two-stage --lam auto`` (``--mu`` sets μ, default 1000).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ParameterError, check_number
from .index.arrays import range_positions
from .lambdas import LambdaEstimate, query_lambdas_of_arrays
from .params import Parameters
from .search import BatchResult, QueryBatch, QueryModel, Searcher
from .search.searcher import check_k
from .smoothing import SMALLEST_PARAMETER, Dirichlet, TwoStage


class TwoStageEM(Parameters):
    """Two-stage smoothing, μ fixed and λ estimated per query by EM.

    Parameters
    ----------
    mu : float, the first-stage Dirichlet μ (default 1000, as ``TwoStage``)

    Use :meth:`batch_search_arrays` (or :meth:`searchers` for one
    :class:`~retrieval.search.Searcher` per query, each with ``TwoStage(mu, λ̂_q)``).
    """

    name = "two-stage"
    params = ("mu",)

    def __init__(self, mu: float = 1000.0):
        self.mu = mu
        check_number("mu (μ)", mu, low=SMALLEST_PARAMETER, hint="typical values are 500-3000")

    def label(self) -> str:
        return f"{self.name}(mu={self.mu:g},lam=auto)"

    def estimates(self, index, queries: Sequence[str | QueryModel], *,
                  unknown_terms: str = "drop", compiled: bool | str = "auto"
                  ) -> list[LambdaEstimate]:
        """λ̂ of each query (text is analysed with the index's analyzer)."""
        base = Searcher(index, TwoStage(float(self.mu)), unknown_terms=unknown_terms,
                        compiled=False)
        return self.estimates_of_batch(index, base.prepare(queries), compiled=compiled)

    def estimates_of_batch(self, index, batch: QueryBatch, *, compiled: bool | str = "auto"
                           ) -> list[LambdaEstimate]:
        """λ̂ of each query of a prepared :class:`~retrieval.search.QueryBatch`; by the
        compiled kernel as the searcher's ``compiled`` setting decides
        (:func:`~retrieval.lambdas.lambda_kernels`: the same λ̂ to the bit)."""
        return query_lambdas_of_arrays(index, batch.ptr, batch.term_ids, batch.weights,
                                       float(self.mu), compiled=compiled)

    def searchers(self, index, queries: Sequence[str | QueryModel], **searcher_kwargs
                  ) -> list[Searcher]:
        """One searcher per query, with ``TwoStage(mu, lam=λ̂_q)`` (queries with equal
        λ̂ share one)."""
        unknown = searcher_kwargs.get("unknown_terms", "drop")
        made: dict[float, Searcher] = {}
        out = []
        for est in self.estimates(index, queries, unknown_terms=unknown):
            if est.lam not in made:
                made[est.lam] = Searcher(index, TwoStage(float(self.mu), lam=est.lam),
                                         **searcher_kwargs)
            out.append(made[est.lam])
        return out

    def model_for(self, lam: float):
        """The model :meth:`batch_search_arrays` ranks a query with λ̂ = ``lam`` by
        (without feedback): ``TwoStage(mu, lam)``, except that λ̂ = 0 (740 of the 756
        shared-collection queries at μ = 1000) is ``Dirichlet(mu)``, the same function
        bit for bit — (1−0)·c = c and μ + 0·|d| = μ exactly, so log1p((1−λ)c/((μ+λ|d|)p))
        and log((μ+λ|d|)/(|d|+μ)) are Dirichlet's log1p(c/(μp)) and log(μ/(|d|+μ)) —
        whose count-only weights the searcher reads from count tables instead of
        computing per-posting impacts (tested: identical documents and scores, both
        paths, on cranfield and med)."""
        if lam == 0.0:
            return Dirichlet(float(self.mu))
        return TwoStage(float(self.mu), lam=lam)

    def batch_search_arrays(self, index, queries: Sequence[str | QueryModel], k: int = 1000,
                            *, feedback=None, **searcher_kwargs) -> BatchResult:
        """Top ``k`` of every query, each ranked by its own ``TwoStage(mu, λ̂_q)``
        (after ``feedback``'s expansion when given), as one
        :class:`~retrieval.search.BatchResult` sorted by (query, rank)."""
        if isinstance(queries, (str, QueryModel)):
            raise ParameterError("queries must be a sequence of queries, not one query")
        queries = list(queries)
        if not queries:
            return BatchResult(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                               np.zeros(0, dtype=np.float64))
        if feedback is not None:
            return self._feedback_search(index, queries, k, feedback, searcher_kwargs)
        # the queries are prepared once; those that share a λ̂ (most of them: λ̂ = 0 is
        # common) are ranked as one batch
        k = check_k(k)
        first = Searcher(index, Dirichlet(float(self.mu)), **searcher_kwargs)
        batch = first.prepare(queries)
        groups: dict[float, list[int]] = {}
        for j, est in enumerate(self.estimates_of_batch(
                index, batch, compiled=searcher_kwargs.get("compiled", "auto"))):
            groups.setdefault(est.lam, []).append(j)
        parts = []
        n_terms = np.diff(batch.ptr)
        if searcher_kwargs.get("candidates", "matching") == "matching":
            # a query without a known term (λ̂ the default 0.5) matches nothing under any
            # λ: no searcher of its own; when one λ̂ is left for all the others, the whole
            # batch is ranked under it (those queries still get no results)
            groups = {lam: members for lam, members in groups.items()
                      if n_terms[members].any()}
            if len(groups) == 1:
                groups = {lam: list(range(len(queries))) for lam in groups}
        for lam, members in groups.items():
            searcher = (first if lam == 0.0 else
                        Searcher(index, self.model_for(lam), **searcher_kwargs))
            if len(members) == len(queries):
                return searcher.rank(batch, k)     # one λ̂ for all: already by query
            res = searcher.rank(_sub_batch(searcher, batch, members), k)
            parts.append(BatchResult(np.asarray(members, dtype=np.int64)[res.query_index],
                                     res.doc_numbers, res.scores))
        return _by_query(parts)

    def _feedback_search(self, index, queries, k, feedback, searcher_kwargs) -> BatchResult:
        """:meth:`batch_search_arrays` with feedback: per λ̂, the feedback's search under
        ``TwoStage(mu, λ̂)``."""
        unknown = searcher_kwargs.get("unknown_terms", "drop")
        groups: dict[float, list[int]] = {}
        for j, est in enumerate(self.estimates(
                index, queries, unknown_terms=unknown,
                compiled=searcher_kwargs.get("compiled", "auto"))):
            groups.setdefault(est.lam, []).append(j)
        parts = []
        for lam, members in groups.items():
            searcher = Searcher(index, TwoStage(float(self.mu), lam=lam), **searcher_kwargs)
            res = feedback.batch_search_arrays(searcher, [queries[j] for j in members], k)
            parts.append(BatchResult(np.asarray(members, dtype=np.int64)[res.query_index],
                                     res.doc_numbers, res.scores))
        return _by_query(parts) if parts else BatchResult(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))


def _sub_batch(searcher: Searcher, batch: QueryBatch, members: list[int]) -> QueryBatch:
    """The queries ``members`` of ``batch`` as a batch of their own (same entries, same
    per-query sums: :meth:`Searcher.batch_from_arrays` sums each query in term order)."""
    ptr = batch.ptr
    rows = np.asarray(members, dtype=np.int64)
    sizes = np.diff(ptr)[rows]
    pick = range_positions(ptr[rows], sizes)
    q = np.repeat(np.arange(len(members)), sizes)
    return searcher.batch_from_arrays(len(members), q, batch.term_ids[pick],
                                      batch.weights[pick], batch.length[members],
                                      [batch.unknown[j] for j in members])


def _by_query(parts: list[BatchResult]) -> BatchResult:
    """The groups' results as one, sorted by query; each query's rows stay ranked.

    A query's rows are one contiguous run (it is in one group, whose result is sorted
    by query), so the order is the runs sorted by query: O(rows) without a sort of the
    rows. No parts (no query has a known term) or no rows: an empty result."""
    q = np.concatenate([p.query_index for p in parts]) if parts else \
        np.zeros(0, dtype=np.int64)
    if len(q) == 0:
        return BatchResult(q, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    starts = np.flatnonzero(np.concatenate([[True], q[1:] != q[:-1]]))
    sizes = np.diff(np.append(starts, len(q)))
    runs = np.argsort(q[starts], kind="stable")
    # row k of the output is row starts[run] + (k − first output row of the run)
    first_out = np.cumsum(sizes[runs]) - sizes[runs]
    order = np.arange(len(q)) + np.repeat(starts[runs] - first_out, sizes[runs])
    return BatchResult(q[order], np.concatenate([p.doc_numbers for p in parts])[order],
                       np.concatenate([p.scores for p in parts])[order])
