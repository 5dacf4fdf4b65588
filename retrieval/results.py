"""Columnar search results: many queries' top k as numpy arrays, records made on access.

:meth:`Searcher.batch_search_arrays <retrieval.search.Searcher.batch_search_arrays>`
returns a :class:`~retrieval.search.BatchResult` — flat arrays of query index, internal
document number and score, sorted by (query, rank). :func:`columnar` turns one into a
:class:`Results` without a Python object per result:

- ``ptr`` (query j's results are positions ``ptr[j]:ptr[j+1]``) is one ``searchsorted``;
- ``docids`` is one ``take`` from a per-index table of docid strings (:func:`docid_table`:
  the docid blob decoded once per index, in one vectorised step, then reused), so each
  result only references an existing ``str``;
- :class:`SearchResult` records are made only when a query's results are read
  (``results[j][r]``, iteration, :meth:`Results.to_lists`).

Measured on the shared concatenation (10,259 documents, 756 queries, k=1000, 572,779
results; CPU time, machine load 18): the arrays path 77 ms, the docids' ``take`` 5–7 ms
(~92% of the arrays path's throughput from these parts; 79% as the best of 7
interleaved passes), against ~1.3 s for ``Searcher.batch_search`` building 572,779
``SearchResult`` objects (4%). See README "Speed" and results/speed/.

Memory: the docid table holds one ``str`` per document (about 57 bytes plus the docid's
length each: ~75 MB for a million 16-character docids), built on first use
(about 0.1 s per million docids) and kept as long as the index object lives.

:meth:`Searcher.batch_search <retrieval.search.Searcher.batch_search>` and
:meth:`~retrieval.search.Searcher.search` return these types. They are a drop-in for
``list[list[SearchResult]]``: indexing, ``len``, iteration, truthiness and ``==`` against
lists behave the same; ``isinstance(x, list)`` does not (``to_lists()`` gives lists).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import numpy as np

from .lookup import gather_strings
from .records import SearchResult

__all__ = ["Results", "QueryResults", "columnar", "docid_table"]

# index object → (its docid offsets array, the decoded table); weak so a closed index's
# table goes with it; the offsets array's identity tells a reloaded generation apart
_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()
# docids decoded per chunk when the table is built (bounds the temporary byte positions)
_CHUNK = 1 << 18


def docid_table(index) -> np.ndarray:
    """Every docid of ``index`` as an object array of ``str`` (position = doc number).

    Decoded from the index's docid blob (``docid_offsets``/``docid_bytes``) with
    :func:`~retrieval.lookup.gather_strings`, chunk by chunk, once per index object;
    later calls return the same array.
    """
    offsets = index.arrays["docid_offsets"]
    with _TABLES_LOCK:
        hit = _TABLES.get(index)
        if hit is not None and hit[0] is offsets:
            return hit[1]
    blob = index.arrays["docid_bytes"]
    n = len(offsets) - 1
    table = np.empty(n, dtype=object)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        table[a:b] = gather_strings(offsets, blob, np.arange(a, b, dtype=np.int64))
    table.flags.writeable = False
    with _TABLES_LOCK:
        _TABLES[index] = (offsets, table)
    return table


class QueryResults(Sequence):
    """One query's ranked results: a read-only sequence of :class:`SearchResult`.

    Views of the parent :class:`Results` arrays (``doc_numbers``, ``scores``, ``docids``);
    a :class:`SearchResult` is made only for the item read. Equal to a list or tuple of
    the same :class:`SearchResult` records.
    """

    __slots__ = ("doc_numbers", "scores", "docids")

    def __init__(self, doc_numbers: np.ndarray, scores: np.ndarray, docids: np.ndarray):
        self.doc_numbers = doc_numbers
        self.scores = scores
        self.docids = docids

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.to_list()[i]
        n = len(self.scores)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"result {i} out of range for {n} results")
        return SearchResult(j + 1, self.docids[j], float(self.scores[j]))

    def __iter__(self):
        return iter(self.to_list())

    def to_list(self) -> list[SearchResult]:
        """All of this query's results as :class:`SearchResult` records (made now)."""
        return [SearchResult(r, d, s) for r, d, s in
                zip(range(1, len(self.scores) + 1), self.docids.tolist(),
                    self.scores.tolist())]

    def __eq__(self, other) -> bool:
        if isinstance(other, QueryResults):
            other = other.to_list()
        if isinstance(other, (list, tuple)):
            return self.to_list() == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"QueryResults({self.to_list()!r})"


class Results(Sequence):
    """Top-k results of many queries as columns; ``results[j]`` is query j's ranking.

    Attributes (numpy arrays, read-only; results sorted by (query, rank)):

    ``ptr``          int64, length n_queries + 1: query j's results are ``ptr[j]:ptr[j+1]``
    ``query_index``  int64, the query of each result
    ``doc_numbers``  int64, internal document numbers
    ``scores``       float64, in nats (as computed by the searcher; not rounded)
    ``ranks``        int64, 1-based rank within the query (made on first access)
    ``docids``       object array of ``str`` (one ``take`` from :func:`docid_table`, on
                     first access)

    A sequence of :class:`QueryResults` (itself a sequence of :class:`SearchResult`), so
    code written for ``list[list[SearchResult]]`` reads it unchanged; :meth:`to_lists`
    makes that list.
    """

    def __init__(self, ptr: np.ndarray, query_index: np.ndarray, doc_numbers: np.ndarray,
                 scores: np.ndarray, table: np.ndarray):
        self.ptr, self.query_index, self.doc_numbers, self.scores = (
            _read_only(a) for a in (ptr, query_index, doc_numbers, scores))
        self._table = table
        self._docids: np.ndarray | None = None
        self._ranks: np.ndarray | None = None

    @property
    def docids(self) -> np.ndarray:
        if self._docids is None:
            self._docids = _read_only(self._table.take(self.doc_numbers))
        return self._docids

    @property
    def ranks(self) -> np.ndarray:
        if self._ranks is None:
            starts = self.ptr[:-1].repeat(np.diff(self.ptr))
            self._ranks = _read_only(np.arange(1, len(self.scores) + 1, dtype=np.int64)
                                     - starts)
        return self._ranks

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def __getstate__(self) -> dict:
        # pickled with its own docids, not the whole index's docid table
        state = dict(self.__dict__, _docids=self.docids)
        state["_table"] = None
        return state

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        n = len(self)
        i = j + n if j < 0 else j
        if not 0 <= i < n:
            raise IndexError(f"query {j} out of range for {n} queries")
        s, e = int(self.ptr[i]), int(self.ptr[i + 1])
        return QueryResults(self.doc_numbers[s:e], self.scores[s:e], self.docids[s:e])

    def to_lists(self) -> list[list[SearchResult]]:
        """Every query's results as a list of :class:`SearchResult` (made now)."""
        ids, scores, ranks = self.docids.tolist(), self.scores.tolist(), self.ranks.tolist()
        bounds = self.ptr.tolist()
        return [[SearchResult(r, d, s) for r, d, s in
                 zip(ranks[a:b], ids[a:b], scores[a:b])]
                for a, b in zip(bounds[:-1], bounds[1:])]

    def __eq__(self, other) -> bool:
        if isinstance(other, Results):
            other = other.to_lists()
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(self[j] == other[j]
                                                   for j in range(len(self)))
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"Results({len(self)} queries, {len(self.scores)} results)"


def _read_only(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view


def columnar(batch, index, n_queries: int | None = None) -> Results:
    """:class:`Results` of a :class:`~retrieval.search.BatchResult` of ``index``.

    ``n_queries`` is the number of queries searched (default: one more than the largest
    query index present; give it so trailing queries without results are kept).
    """
    qi = np.ascontiguousarray(batch.query_index, dtype=np.int64)
    docs = np.ascontiguousarray(batch.doc_numbers, dtype=np.int64)
    scores = np.ascontiguousarray(batch.scores, dtype=np.float64)
    if not (len(qi) == len(docs) == len(scores)):
        raise ValueError(f"a BatchResult's arrays must have one length, got {len(qi)}, "
                         f"{len(docs)} and {len(scores)}")
    if n_queries is None:
        n_queries = int(qi[-1]) + 1 if len(qi) else 0
    if len(qi) and (int(qi[0]) < 0 or int(qi[-1]) >= n_queries):
        raise ValueError(f"query indices {int(qi[0])}..{int(qi[-1])} do not fit "
                         f"{n_queries} queries")
    ptr = np.searchsorted(qi, np.arange(n_queries + 1, dtype=np.int64)).astype(np.int64)
    return Results(ptr, qi, docs, scores, docid_table(index))
