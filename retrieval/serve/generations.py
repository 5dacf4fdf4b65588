"""Served indexes that follow their on-disk generations while requests are in flight.

An index folder publishes a new generation with one atomic ``os.replace`` of
``manifest.json`` (see :mod:`retrieval.index`). :class:`ServedIndex` compares the
manifest's ``stat`` signature (inode, size, modification time in ns) with the one it
opened at the start of every request — one ``os.stat``, about 2 µs — and when it changed,
opens the new generation and swaps it in as the *current* :class:`Snapshot`.

Consistency rule: a request takes the current snapshot once, at its start, and uses only
that snapshot's :class:`~retrieval.Index` and searchers until it answers, so it is
answered entirely by the generation it started on. The old snapshot stays usable for as
long as a request holds it: its arrays are memory-mapped, and on POSIX a mapping stays
valid after the writer removes the generation's files (the writer keeps the previous
generation anyway). Nothing is closed on a switch; the old snapshot is freed when the
last request holding it finishes.

If the new generation cannot be opened (a damaged manifest, the folder removed), the
index keeps serving the last good snapshot and reports the problem in ``health``.

Searchers are built per (snapshot, smoothing model and rules) and kept in a small LRU
(``MAX_SEARCHERS`` per snapshot), with the compiled kernels on (``compiled=True``: a
server is the long-running process they pay for). A new snapshot is warmed with one
query before it becomes current, so the first request after a switch does not pay for
the lazily computed per-generation tables.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from ..errors import RetrievalError
from ..index import Index
from ..results import docid_table
from ..search import Searcher
from ..smoothing import SmoothingModel, default_model

#: searchers kept per snapshot (distinct model/parameter settings asked for)
MAX_SEARCHERS = 8
#: validated request rankings kept per snapshot (distinct parameter texts asked for)
MAX_RANKINGS = 64
MANIFEST = "manifest.json"


class SearcherKey(NamedTuple):
    model: str
    params: tuple
    unknown_terms: str
    candidates: str


def _signature(path: Path):
    try:
        st = os.stat(path / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _compiled_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


class Snapshot:
    """One opened generation of one index and its warm searchers."""

    def __init__(self, index: Index, compiled: bool):
        self.index = index
        self.generation = index.generation
        self._compiled = compiled
        self._searchers: OrderedDict[SearcherKey, Searcher] = OrderedDict()
        self._lock = threading.Lock()
        self.mu_estimate = None   # --mu auto, computed once per snapshot
        #: validated rankings by their request parameters (see api.ranking_of)
        self.rankings: dict[tuple, object] = {}

    def remember_ranking(self, key: tuple, ranking) -> None:
        with self._lock:
            if len(self.rankings) >= MAX_RANKINGS:
                self.rankings.pop(next(iter(self.rankings)))   # the oldest
            self.rankings[key] = ranking

    def searcher(self, model: SmoothingModel, *, unknown_terms: str = "drop",
                 candidates: str = "matching") -> Searcher:
        key = SearcherKey(model.name, tuple(sorted(model.get_params().items())),
                          unknown_terms, candidates)
        with self._lock:
            found = self._searchers.get(key)
            if found is not None:
                self._searchers.move_to_end(key)
                return found
        made = Searcher(self.index, model, unknown_terms=unknown_terms,
                        candidates=candidates, compiled=self._compiled)
        with self._lock:
            self._searchers[key] = made
            while len(self._searchers) > MAX_SEARCHERS:
                self._searchers.popitem(last=False)
        return made

    def warm(self) -> None:
        """Run one query so per-generation tables (and the kernels) are ready."""
        index = self.index
        searcher = self.searcher(default_model(index))
        if index.num_terms:
            searcher.search(index.vocabulary[index.num_terms // 2], k=10)
        docid_table(index)   # results name their documents from it


class ServedIndex:
    """An index served by ``name``: its current snapshot, renewed when a writer publishes
    a new generation."""

    def __init__(self, name: str, path: str | os.PathLike, *, compiled: bool | None = None,
                 warm: bool = True):
        self.name = name
        self.path = Path(path)
        self._compiled = _compiled_available() if compiled is None else compiled
        self._warm = warm
        self._reload_lock = threading.Lock()
        self.error: str | None = None      # last failed reopen, if the index is stale
        self.switches = 0
        sig = _signature(self.path)
        self._snapshot = self._open()       # RetrievalError propagates at start-up
        self._signature = sig

    def _open(self) -> Snapshot:
        snap = Snapshot(Index.open(self.path), self._compiled)
        if self._warm:
            snap.warm()
        return snap

    def current(self) -> Snapshot:
        """The snapshot a new request should use (reopened first if the manifest changed).

        One thread reopens; concurrent requests meanwhile get the previous snapshot
        rather than wait.
        """
        sig = _signature(self.path)
        if sig != self._signature and sig is not None:
            if self._reload_lock.acquire(blocking=False):
                try:
                    if _signature(self.path) == sig and sig != self._signature:
                        self._reload(sig)
                finally:
                    self._reload_lock.release()
        return self._snapshot

    def _reload(self, sig) -> None:
        try:
            snap = self._open()
        except (RetrievalError, OSError) as exc:
            self.error = f"cannot open the new generation: {exc}; serving generation " \
                         f"{self._snapshot.generation}"
            self._signature = sig     # do not retry on every request; a new write retries
            return
        self.error = None
        if snap.generation != self._snapshot.generation:
            self.switches += 1
        self._snapshot = snap
        self._signature = sig
