"""Query models and prepared query batches: text or :class:`QueryModel` → term ids and
weights as flat arrays (:class:`QueryBatch`), the input of every search path.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

import numpy as np

from ..analysis import count_tokens
from ..errors import ParameterError

UNKNOWN_TERM_RULES = ("drop", "indri")


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


@dataclass(frozen=True)
class PreparedQuery:
    """One query of a :class:`QueryBatch`."""
    term_ids: np.ndarray      # known terms' ids
    weights: np.ndarray       # their query weights
    mass: float               # Σ weights, known and (indri) unknown terms
    constant: float           # Σ weight · log p(w|C)
    unknown: tuple[tuple[str, float], ...]  # unknown terms kept under the indri rule


class QueryBatch(NamedTuple):
    """Prepared queries as flat arrays: query j has the terms ``term_ids[ptr[j]:ptr[j+1]]``
    (ascending ids = the query model's term order) with query weights ``weights``.

    ``mass[j]`` = Σ weights (with the unknown terms kept under the indri rule) and
    ``constant[j]`` = Σ weight · log p(w|C) are sums in term order starting from 0.0 (one
    ``bincount``), the same for every search path. ``length[j]`` is |q|: the number of
    tokens of a text query that its model keeps, or a given model's mass. ``unknown[j]``
    holds the (term, weight) pairs kept under the indri rule.

    Made by :meth:`retrieval.Searcher.prepare` (from queries) or
    :meth:`retrieval.Searcher.batch_from_arrays` (from term ids and weights) and ranked
    by :meth:`retrieval.Searcher.rank`.
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

    def prep(self, j: int) -> PreparedQuery:
        s, e = int(self.ptr[j]), int(self.ptr[j + 1])
        return PreparedQuery(self.term_ids[s:e], self.weights[s:e], float(self.mass[j]),
                             float(self.constant[j]), self.unknown[j])


class LazyPreps:
    """``preps[j]``: the :class:`PreparedQuery` of query j of a batch, made on first use."""

    def __init__(self, batch: QueryBatch):
        self._batch = batch
        self._made: dict[int, PreparedQuery] = {}

    def __getitem__(self, j: int) -> PreparedQuery:
        prep = self._made.get(j)
        if prep is None:
            prep = self._made[j] = self._batch.prep(j)
        return prep


def query_model(index, lookup, unknown_terms: str, query) -> QueryModel:
    """The query model of ``query`` (text is analysed with the index's analyzer)."""
    if isinstance(query, QueryModel):
        return query
    if isinstance(query, str):
        if unknown_terms == "drop":
            counts = index.analyzer.term_counts(query)
            known = {t: n for t, n in counts.items() if lookup.id(t) >= 0}
            total = sum(known.values())
            if not total:
                return QueryModel((), ())
            return QueryModel.from_weights({t: n / total for t, n in known.items()})
        return QueryModel.from_text(query, index.analyzer)
    raise ParameterError(f"a query must be text or a QueryModel, got "
                         f"{type(query).__name__}")


class QueryPreparer:
    """Turns queries into :class:`QueryBatch` arrays for one index (with a memo of
    token → term id, cleared when it reaches ``memo_max`` entries)."""

    def __init__(self, index, lookup, unknown_terms: str, memo_max: int):
        self.index = index
        self.lookup = lookup
        self.unknown_terms = unknown_terms
        self.memo_max = memo_max
        self.token_ids: dict[str | bytes, int] = {}   # token → term id, −1: none

    def _text_keys(self, queries, fast: list[int], nt):
        """(query, term) keys and weights of the text queries ``fast`` (drop rule), and
        their lengths."""
        tok_lists = [count_tokens(queries[j]) for j in fast]
        flat = list(chain.from_iterable(tok_lists))
        memo = self.token_ids
        new = set(flat).difference(memo)
        if new:
            if len(memo) + len(new) > self.memo_max:
                memo.clear()
                new = set(flat)
            analyzer, lookup = self.index.analyzer, self.lookup
            for tok in new:
                term = analyzer.term(tok.decode("ascii") if isinstance(tok, bytes) else tok)
                memo[tok] = -1 if term is None else lookup.id(term)
        tids = np.fromiter(map(memo.__getitem__, flat), dtype=np.int64, count=len(flat))
        lens = np.fromiter(map(len, tok_lists), dtype=np.int64, count=len(fast))
        qidx = np.repeat(np.asarray(fast, dtype=np.int64), lens)
        known = tids >= 0
        keys, counts = np.unique(qidx[known] * nt + tids[known], return_counts=True)
        total = np.bincount(keys // nt, weights=counts, minlength=len(queries))
        return keys, counts / total[keys // nt], total

    def prepare(self, queries: Sequence) -> QueryBatch:
        """All queries as one :class:`QueryBatch`.

        Text queries under the drop rule take a vectorised path: every query's tokens
        (:func:`~retrieval.analysis.count_tokens`) are mapped to term ids through a memo
        of token → id (each new token analysed and looked up once), and the (query, term)
        pairs are counted with one ``numpy.unique``; p(w|θ_q) = c(w,q)/|q| is the same
        division as :meth:`QueryModel.from_text`'s. Other queries go through
        :func:`query_model`. Both give the same arrays for the same query.
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
            keys, w, total = self._text_keys(queries, fast, nt)
            keys_parts.append(keys)
            w_parts.append(w)
            length += total
        slow = [j for j in range(n) if j not in fast_set]
        for j in slow:
            query = queries[j]
            qm = query_model(self.index, self.lookup, self.unknown_terms, query)
            ids = self.lookup.ids(qm.terms) if len(qm) else np.zeros(0, dtype=np.int64)
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
        return batch_from_arrays(self.index, n, keys // nt, keys % nt, weights, length,
                                 unknown)


def batch_from_arrays(index, n: int, q: np.ndarray, term_ids: np.ndarray,
                      weights: np.ndarray, length: np.ndarray | None = None,
                      unknown=None) -> QueryBatch:
    """A :class:`QueryBatch` of ``n`` queries from (query, term id, weight) entries sorted
    by query then term id; ``length`` defaults to each query's mass."""
    q = np.asarray(q, dtype=np.int64)
    term_ids = np.asarray(term_ids, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    unknown = tuple(unknown) if unknown is not None else ((),) * n
    ptr = np.searchsorted(q, np.arange(n + 1, dtype=np.int64))
    # (bincount of no entries is an integer array: the float64 cast is needed)
    mass = np.bincount(q, weights=weights, minlength=n).astype(np.float64)
    log_pc = np.log(index.p_collection[term_ids]) if len(term_ids) else weights
    constant = np.bincount(q, weights=weights * log_pc, minlength=n).astype(np.float64)
    if any(unknown):
        log_p_unknown = -math.log(2.0 * max(index.num_tokens, 1))
        for j, unk in enumerate(unknown):
            if unk:
                extra = sum(w for _, w in unk)
                mass[j] += extra
                constant[j] += extra * log_p_unknown
    if length is None:
        length = mass.copy()
    return QueryBatch(ptr, term_ids, weights, mass, constant, length, unknown)
