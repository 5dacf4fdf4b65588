"""Search a sharded index on a Dask cluster (the optional extra ``distributed``:
``pip install "retrieval[distributed]"``).

Why Dask and not Ray or Spark: the work is numpy/numba over memory-mapped arrays, and
Dask's ``distributed`` is pure Python, pip-installable, runs the same code on a laptop
(``LocalCluster``) and on a cluster (``dask scheduler`` / ``dask worker`` by hand, SSH,
Kubernetes, SLURM, YARN), ships numpy arrays without copies through pickle protocol 5,
lets a task be placed on a chosen worker (shard locality) with fail-over, and reschedules
the tasks of a worker that dies. Ray would do the same with a heavier runtime (its own
object store and a C++ core, not on every platform) and Spark needs a JVM and moves data
as rows, a poor fit for per-shard numpy arrays. Both are bigger dependencies than this
problem needs.

How a search runs (:class:`DaskSearcher`):

1. the client prepares the queries once over the global vocabulary (the query arrays are
   valid on every shard, :mod:`retrieval.shards.stats`), a batch of ``batch_size`` at a
   time, and submits each batch as soon as it is prepared, so the workers search batch
   b while the client prepares batch b+1;
2. one task per (shard, batch) is submitted — never one task per query — preferring the
   worker assigned to the shard (shard i → worker i mod W: each worker keeps its shards'
   files in its page cache);
3. each worker opens the sharded index once (memory-mapped; the folder must be readable
   at the same path on every worker: a shared or replicated file system) and keeps a
   searcher per (index generation, model, options);
4. the client merges the shards' top k exactly (:func:`~retrieval.shards.merge_top_k`).

What travels: a task's arguments are the batch's query arrays (numpy) and the model; its
result is a columnar :class:`~retrieval.search.ranking.BatchResult` (numpy) and the
docid strings of its B·k entries as a list — measured 0.48 ms to pickle and unpickle for
B = 256, k = 10 (0.002 ms a query; a numpy string array would take 0.03 ms but drops
trailing NUL characters, and ids must round-trip exactly). Workers are single-threaded
processes (``threads_per_worker=1``, ``processes=True``): the analyzer and parts of the
search hold the GIL, so threads in one worker would take turns.

A worker that dies mid-query: **retry on another worker** (decision). Every worker can
read every shard (the folder is shared), so every worker is a replica of every shard:
tasks are placed on the shard's worker with ``allow_other_workers=True`` and Dask
reschedules the lost tasks on the workers left, up to the scheduler's
``allowed-failures`` (3 by default). The result is complete or the search raises
:class:`DistributedSearchError` (too many worker deaths, no worker left, or
``timeout`` seconds passed) — never a partial ranking.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import RetrievalError
from ..search.queries import QueryBatch
from ..search.searcher import check_k
from .search import ShardedResult, ShardedSearcher, merge_top_k, results_lists
from .store import ShardedIndex

#: queries per task: large enough that the per-task cost (~1-2 ms of scheduling and
#: pickling) is small next to the search of a batch, small enough to spread the work
DEFAULT_BATCH = 256


class DistributedSearchError(RetrievalError):
    """A distributed search could not finish (workers lost, no workers, timeout)."""


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise RetrievalError('searching on a cluster needs Dask: pip install '
                             '"retrieval[distributed]"') from None
    return distributed


def connect(client=None, scheduler: str | None = None, n_workers: int = 2,
            timeout: float | None = 600.0):
    """(client, cluster): ``client`` itself; else a client of the scheduler at
    ``scheduler``; else a new ``LocalCluster`` of ``n_workers`` single-threaded worker
    processes (processes, not threads: the kernels and the analyzer hold the GIL in
    places) and its client. ``cluster`` is the LocalCluster started here (None when none
    was): close it after the client."""
    if client is not None:
        return client, None
    distributed = _import_distributed()
    if scheduler is not None:
        return distributed.Client(scheduler, timeout="20s"), None
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    client.wait_for_workers(n_workers, timeout=timeout)
    return client, cluster


# -- worker side ------------------------------------------------------------------------
_WORKER_SEARCHERS: dict = {}


def rank_on_worker(path: str, generation: int, shard: int, batch, k: int, model,
                   options: dict):
    """Task body: shard ``shard``'s top ``k`` of a prepared batch, with the searcher of
    this (index, generation, model, options) opened once per worker process."""
    key = (path, generation, repr(model), repr(sorted(options.items())))
    searcher = _WORKER_SEARCHERS.get(key)
    if searcher is None:
        index = ShardedIndex.open(path)
        if int(index.top.get("generation", 0)) != generation:
            raise DistributedSearchError(
                f"{path} changed while searching (generation {generation} → "
                f"{index.top.get('generation')}); search again")
        searcher = ShardedSearcher(index, model, **options)
        if len(_WORKER_SEARCHERS) >= 8:
            _WORKER_SEARCHERS.clear()
        _WORKER_SEARCHERS[key] = searcher
    return searcher.rank_shard(shard, batch, k)


# -- client side ------------------------------------------------------------------------
class DaskSearcher:
    """:class:`~retrieval.shards.ShardedSearcher`'s results, computed on Dask workers.

    Parameters: ``path`` of a sharded index (readable at the same path on every worker);
    ``client`` a ``distributed.Client`` (or ``scheduler``, an address such as
    ``tcp://host:8786``; neither: a ``LocalCluster`` of ``n_workers`` single-threaded
    processes on this machine, closed by :meth:`close`); ``model``, ``feedback`` and the
    searcher options as for :class:`~retrieval.shards.ShardedSearcher`; ``batch_size``
    queries per task; ``timeout`` seconds for a whole search.
    """

    def __init__(self, path, model=None, *, client=None, scheduler: str | None = None,
                 n_workers: int = 2, feedback=None, batch_size: int = DEFAULT_BATCH,
                 timeout: float = 600.0, **options):
        self.path = path
        self.model = model
        self.client = client
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.feedback = feedback
        self.batch_size = batch_size
        self.timeout = timeout
        self.options = options
        client, self.cluster_ = connect(client, scheduler, n_workers, timeout)
        self.client_ = client
        self.path_ = str(Path(os.path.abspath(path)))
        self.local_ = ShardedSearcher(ShardedIndex.open(self.path_), model,
                                      feedback=feedback, **options)
        self.generation_ = int(self.local_.index.top.get("generation", 0))

    def close(self) -> None:
        """Close the client and the LocalCluster this searcher started (if any)."""
        if self.client is None:
            self.client_.close()
        if self.cluster_ is not None:
            self.cluster_.close()

    def __enter__(self) -> "DaskSearcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _workers(self) -> list:
        workers = sorted(self.client_.scheduler_info().get("workers", {}))
        if not workers:
            try:  # a cluster that is still starting its workers
                self.client_.wait_for_workers(1, timeout=min(self.timeout, 10.0))
            except TimeoutError:
                pass
            workers = sorted(self.client_.scheduler_info().get("workers", {}))
        if not workers:
            raise DistributedSearchError(f"the Dask cluster at {self.client_.scheduler.address}"
                                         f" has no workers; start some with 'dask worker "
                                         f"ADDRESS'")
        return workers

    def _submit(self, part, start: int, k: int, workers: list, futures: list, where: list):
        """One task per shard for the prepared queries ``part`` (numbered from ``start``)."""
        model, options = self.local_.model, self.local_.searcher_params
        for shard in range(self.local_.index.num_shards):
            futures.append(self.client_.submit(
                rank_on_worker, self.path_, self.generation_, shard, part, k, model,
                options, workers=[workers[shard % len(workers)]],
                allow_other_workers=True, pure=False))
            where.append((start, shard))

    def _collect(self, futures: list, where: list, n: int, k: int) -> ShardedResult:
        distributed = _import_distributed()
        try:
            got = self.client_.gather(
                futures, errors="raise") if self.timeout is None else \
                _gather_within(self.client_, futures, self.timeout, distributed)
        except distributed.KilledWorker as exc:
            raise DistributedSearchError(f"workers died while searching {self.path_} "
                                         f"(a task was lost {exc}); the search was "
                                         f"abandoned, nothing partial is returned") from None
        parts = []
        for (start, shard), (res, ids) in zip(where, got):
            res = res._replace(query_index=res.query_index + start)
            parts.append((shard, res, ids))
        return merge_top_k(parts, n, k)

    def rank(self, batch, k: int) -> ShardedResult:
        """Merged top ``k`` of a prepared batch: one task per (shard, query batch)."""
        workers = self._workers()
        n = len(batch)
        size = max(int(self.batch_size), 1)
        futures: list = []
        where: list = []
        for start in range(0, n, size):
            self._submit(_slice_batch(batch, start, min(start + size, n), QueryBatch),
                         start, k, workers, futures, where)
        return self._collect(futures, where, n, k)

    def batch_search_arrays(self, queries: Sequence, k: int = 1000) -> ShardedResult:
        """Merged top ``k`` of every query (after feedback when one is set: the first
        pass on the cluster, the expansion here, the second pass on the cluster).

        Without feedback the client prepares the queries a batch at a time and submits
        each batch's tasks at once, so the workers search while the client prepares the
        next batch (the client's work overlaps the workers', instead of adding to it)."""
        k = check_k(k)
        queries = list(queries)
        fb_docs = getattr(self.feedback, "fb_docs", None)
        if fb_docs is not None:
            batch = self.local_.prepare(queries)
            batch = self.local_.expand(queries, batch, self.rank(batch, int(fb_docs)))
            return self.rank(batch, k)
        workers = self._workers()
        size = max(int(self.batch_size), 1)
        futures: list = []
        where: list = []
        for start in range(0, len(queries), size):
            self._submit(self.local_.prepare(queries[start:start + size]), start, k,
                         workers, futures, where)
        return self._collect(futures, where, len(queries), k)

    def batch_search(self, queries: Sequence, k: int = 10):
        return results_lists(self.batch_search_arrays(queries, k), len(queries))

    def search(self, query, k: int = 10):
        return self.batch_search([query], k)[0]


def _gather_within(client, futures, timeout: float, distributed):
    try:
        distributed.wait(futures, timeout=timeout)
    except TimeoutError:
        for f in futures:
            f.cancel()
        raise DistributedSearchError(f"the search did not finish within {timeout:g} s "
                                     f"(workers alive: {len(client.scheduler_info()['workers'])}"
                                     f"); nothing partial is returned") from None
    return client.gather(futures, errors="raise")


def _slice_batch(batch, start: int, end: int, cls):
    """Queries ``start`` … ``end`` − 1 of a QueryBatch as a batch of their own."""
    s, e = int(batch.ptr[start]), int(batch.ptr[end])
    return cls(batch.ptr[start:end + 1] - s, batch.term_ids[s:e], batch.weights[s:e],
               batch.mass[start:end], batch.constant[start:end], batch.length[start:end],
               batch.unknown[start:end])
