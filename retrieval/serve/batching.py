"""Micro-batching: concurrent single-query search requests ranked in one batch.

A ranking of one query pays fixed costs (preparing the query batch, choosing a path,
entering the kernels, gathering docids) that a batch pays once; under concurrent load the
server spends most of its time on them. :class:`Coalescer` collects the search requests
that arrive while earlier work is in flight and hands them, all at once, to one worker
thread, which ranks each group of requests that share a searcher, feedback method and
depth with **one** :meth:`~retrieval.serve.api.Ranking.rank` call.

Scheduling (group commit, no timer): a request is queued in the event loop; when fewer
than ``slots`` batches are in flight (default one, :data:`SLOTS`), everything queued (at
most ``max_items``) leaves as one batch at the next turn of the loop, so a lone request
waits for nothing and a busy server forms batches of the requests that came in
meanwhile. The window is therefore as long as the work in flight, never longer. (The
batch that first sees a new generation opens and warms it before ranking, so requests
queued behind it wait that long once per update: see the p99 of the load runs.)

Exactness: each request still takes its snapshot (the generation it is answered by) when
its batch starts on the worker thread, as without batching; a batch holds requests of
any number of generations and groups them by snapshot. Every query of a batch is ranked
exactly as alone (every search path gives bit-identical rankings, see
:mod:`retrieval.search.plan`; feedback expands each query from its own first pass).
A group that fails is ranked again one request at a time, so one bad request cannot fail
another. ``tests/test_serve_api.py`` checks answers under concurrency against single
searches; ``scripts/bench_serve.py`` checks every answer of its load runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import anyio.to_thread
from anyio import CapacityLimiter

from ..errors import RetrievalError
from .api import ApiError, Limits, SearchRequest, answer_search, prepare_search
from .generations import ServedIndex

#: batches ranked at once. One: the batch's kernels release the GIL while the event loop
#: parses and answers requests on the other core, and a second batch in flight only
#: contends for the GIL and halves the batches. Measured (100k synthetic corpus, 8
#: clients, single queries, k=10, no update, load 6-8, two runs each): one slot 650 and
#: 501 req/s at 1.09 and 1.23 ms server CPU a request, 3.9 requests a batch; two slots
#: 538 and 356 req/s at 1.52 and 1.58 ms; no batching (4 threads) 294 req/s at 2.06 ms
SLOTS = 1
#: requests in one batch at most (a bound on a batch's latency)
MAX_ITEMS = 256


def encode(content) -> bytes:
    """JSON as Starlette's ``JSONResponse`` renders it (made on the worker thread)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


class _Item:
    __slots__ = ("served", "params", "future", "request", "outcome")

    def __init__(self, served: ServedIndex, params: dict, future: asyncio.Future):
        self.served = served
        self.params = params
        self.future = future
        self.request: SearchRequest | None = None
        self.outcome: bytes | BaseException | None = None


def _rank_group(items: list[_Item]) -> None:
    """Rank the requests of one group (same snapshot, searcher, feedback and depth) in
    one call; each item's outcome is its answer (JSON bytes) or its error."""
    first = items[0].request
    try:
        hits = first.ranking.rank([it.request.text for it in items], first.depth)
    except Exception:
        if len(items) == 1:
            raise
        for it in items:   # one at a time: only a failing request fails
            try:
                _rank_group([it])
            except RetrievalError as exc:
                it.outcome = ApiError(400, str(exc))
            except Exception as exc:   # answered 500; the handler lets the server log it
                it.outcome = exc
        return
    for it, h in zip(items, hits):
        try:
            it.outcome = encode(answer_search(it.request, h))
        except RetrievalError as exc:
            it.outcome = ApiError(400, str(exc))
        except Exception as exc:
            it.outcome = exc


def process(items: list[_Item], limits: Limits) -> None:
    """On a worker thread: each request's snapshot and parameters, then one ranking per
    group of compatible requests. Fills every item's ``outcome``."""
    snapshots = {}
    groups: dict[tuple, list[_Item]] = {}
    for it in items:
        try:
            snap = snapshots.get(id(it.served))
            if snap is None:
                snap = snapshots[id(it.served)] = it.served.current()
            it.request = prepare_search(snap, it.params, limits)
        except ApiError as exc:
            it.outcome = exc
            continue
        except RetrievalError as exc:   # a parameter the engine refused
            it.outcome = ApiError(400, str(exc))
            continue
        except Exception as exc:
            it.outcome = exc
            continue
        groups.setdefault(it.request.group_key(), []).append(it)
    for group in groups.values():
        try:
            _rank_group(group)
        except RetrievalError as exc:
            group[0].outcome = ApiError(400, str(exc))
        except Exception as exc:
            group[0].outcome = exc


class Coalescer:
    """Queues search requests in the event loop and runs them in batches on worker
    threads (see the module docstring). Made per app; used only from its event loop."""

    def __init__(self, limits: Limits, *, slots: int = SLOTS, max_items: int = MAX_ITEMS,
                 work: Callable[[list[_Item], Limits], None] = process):
        self.limits = limits
        self.slots = slots
        self.max_items = max_items
        self.work = work
        self._queue: list[_Item] = []
        self._in_flight = 0
        self._scheduled = False
        self._limiter: CapacityLimiter | None = None
        #: batches run and requests in them (``GET /api/health`` shows them)
        self.batches = 0
        self.requests = 0

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._queue)

    async def search(self, served: ServedIndex, params: dict) -> bytes:
        """The JSON answer of one search request (raises :class:`ApiError`)."""
        loop = asyncio.get_running_loop()
        item = _Item(served, params, loop.create_future())
        self._queue.append(item)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)   # requests parsed in this turn join too
        await item.future
        if isinstance(item.outcome, BaseException):
            raise item.outcome
        return item.outcome

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._queue and self._in_flight < self.slots:
            batch = self._queue[:self.max_items]
            del self._queue[:self.max_items]
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[_Item]) -> None:
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.slots)
        try:
            await anyio.to_thread.run_sync(self.work, batch, self.limits,
                                           limiter=self._limiter)
        except BaseException as exc:   # the batch itself failed: every request learns it
            for it in batch:
                if it.outcome is None:
                    it.outcome = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._in_flight -= 1
            self.batches += 1
            self.requests += len(batch)
            for it in batch:
                if not it.future.done():
                    it.future.set_result(None)
            if self._queue and not self._scheduled:
                self._dispatch()
