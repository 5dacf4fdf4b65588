"""Relevance judgments (:class:`Qrels`) and rankings (:class:`Run`) as immutable arrays.

Both keep their data in read-only numpy arrays, validated once at construction, plus
the integer keys the evaluation joins on (see :mod:`retrieval.keys`), so
evaluating many runs against the same qrels, or one run for many measures, repeats
no string work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import InputError, ParameterError
from ..records import Qrel, ScoredDoc
from ..trec import duplicate_error, read_qrels, read_run_columns
from ..keys import as_str_array, combine, factorize, find_duplicate, hash_strings, readonly

__all__ = ["Qrels", "Run"]


class Frozen:
    """Attributes are set once, in the class's own constructors, and never again."""
    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **values) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _check_lengths(**arrays) -> int:
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ParameterError("arrays must have the same length, got "
                             + ", ".join(f"{k}={v}" for k, v in sizes.items()))
    return next(iter(sizes.values()))


def _check_non_empty_ids(values: np.ndarray, name: str) -> None:
    if values.size and int(np.char.str_len(values).min()) == 0:
        row = int(np.flatnonzero(np.char.str_len(values) == 0)[0])
        raise ParameterError(f"{name}[{row}] is an empty string; ids must be non-empty")


class Qrels(Frozen):
    """Relevance judgments: for each judged query, documents and integer relevance.

    Build with :meth:`from_records`, :meth:`from_dict`, :meth:`from_arrays` or
    :meth:`read`. A query is *judged* when it has at least one judgment, whatever its
    value. A document judged twice for a query is an error.
    """

    __slots__ = ("_qids", "_jq", "_jdoc", "_jrel", "_keys", "_collisions")

    def __init__(self, *args, **kwargs):
        raise TypeError("build Qrels with Qrels.from_records, from_dict, from_arrays or read")

    @classmethod
    def from_arrays(cls, qids, docids, relevance) -> "Qrels":
        """From parallel arrays (or lists): query ids, document ids (str), relevance (int)."""
        qids = as_str_array(qids, "qids")
        docids = as_str_array(docids, "docids")
        rel = np.asarray(relevance)
        if rel.ndim != 1:
            raise ParameterError(f"relevance must be one-dimensional, got shape {rel.shape}")
        if rel.size and rel.dtype.kind not in "iub":
            if rel.dtype.kind == "f" and np.all(np.isfinite(rel)) and np.all(rel == np.round(rel)):
                pass
            else:
                raise ParameterError(f"relevance must be integers, got dtype {rel.dtype}")
        rel = rel.astype(np.int64)
        _check_lengths(qids=qids, docids=docids, relevance=rel)
        _check_non_empty_ids(qids, "qids")
        _check_non_empty_ids(docids, "docids")
        names, codes = factorize(qids)
        hashes = hash_strings(docids)
        keys = combine(codes, hashes)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        same = keys[1:] == keys[:-1]
        collisions = bool(same.any())
        if collisions:
            pair = find_duplicate(codes, hashes, docids)
            if pair is not None:
                first, second = pair
                raise InputError(f"document {str(docids[second])!r} is judged twice for query "
                                 f"{str(qids[second])!r} (judgments {first} and {second})")
        self = object.__new__(cls)
        self._set(_qids=readonly(names), _jq=readonly(codes[order]),
                  _jdoc=readonly(docids[order]), _jrel=readonly(rel[order]),
                  _keys=readonly(keys), _collisions=collisions)
        return self

    @classmethod
    def from_records(cls, records: Iterable[Qrel]) -> "Qrels":
        """From :class:`~retrieval.records.Qrel` records (or ``(qid, docid, relevance)``)."""
        qids, docids, rels = [], [], []
        for record in records:
            qid, docid, relevance = record
            qids.append(qid)
            docids.append(docid)
            if isinstance(relevance, bool) or not isinstance(relevance, (int, np.integer)):
                raise ParameterError(f"relevance of ({qid!r}, {docid!r}) must be an integer, "
                                     f"got {relevance!r}")
            rels.append(int(relevance))
        return cls.from_arrays(qids, docids, np.array(rels, dtype=np.int64))

    @classmethod
    def from_dict(cls, judgments: Mapping[str, Mapping[str, int]]) -> "Qrels":
        """From ``{qid: {docid: relevance}}`` (the pytrec_eval shape).

        A query mapped to an empty dict has no judgment and is therefore not judged.
        """
        return cls.from_records((q, d, r) for q, docs in judgments.items()
                                for d, r in docs.items())

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Qrels":
        """Read a TREC qrels file (see :func:`retrieval.trec.read_qrels`)."""
        return cls.from_records(read_qrels(path))

    # -- access ------------------------------------------------------------------------
    @property
    def qids(self) -> tuple[str, ...]:
        """The judged query ids, in string order."""
        return tuple(self._qids.tolist())

    def __len__(self) -> int:
        """The number of judgments."""
        return int(self._jrel.size)

    def __contains__(self, qid: object) -> bool:
        if not isinstance(qid, str):
            return False
        i = int(np.searchsorted(self._qids, qid))
        return i < self._qids.size and str(self._qids[i]) == qid

    def judgments(self, qid: str) -> dict[str, int]:
        """``{docid: relevance}`` of one query (empty when it is not judged)."""
        if qid not in self:
            return {}
        i = int(np.searchsorted(self._qids, qid))
        rows = self._jq == i
        return dict(zip(self._jdoc[rows].tolist(), self._jrel[rows].tolist()))

    def to_dict(self) -> dict[str, dict[str, int]]:
        """``{qid: {docid: relevance}}``."""
        out: dict[str, dict[str, int]] = {q: {} for q in self.qids}
        names = self._qids.tolist()
        for q, d, r in zip(self._jq.tolist(), self._jdoc.tolist(), self._jrel.tolist()):
            out[names[q]][d] = r
        return out

    def __repr__(self) -> str:
        return f"Qrels({self._qids.size} queries, {len(self)} judgments)"

    # -- used by the evaluation --------------------------------------------------------
    def _lookup(self, qidx: np.ndarray, hashes: np.ndarray, docids: np.ndarray) -> np.ndarray:
        """The judgment of each (query index, document) pair; -1 where not judged.

        Candidates are found by integer key, then confirmed on the real strings, so a
        hash collision can never produce a wrong match. (A collision *inside* the qrels
        - two judged documents of one query sharing a key - is handled by checking every
        judgment with that key.)
        """
        n = docids.size
        rel = np.full(n, -1, dtype=np.int64)
        if n == 0 or self._keys.size == 0:
            return rel
        keys = combine(qidx, hashes)
        pos = np.searchsorted(self._keys, keys)
        np.minimum(pos, self._keys.size - 1, out=pos)
        rows = np.flatnonzero(self._keys[pos] == keys)
        at = pos[rows]
        ok = self._jdoc[at] == docids[rows]
        rel[rows[ok]] = self._jrel[at[ok]]
        if self._collisions:
            for row, p in zip(rows[~ok].tolist(), at[~ok].tolist()):
                key, doc = self._keys[p], str(docids[row])
                while p + 1 < self._keys.size and self._keys[p + 1] == key:
                    p += 1
                    if str(self._jdoc[p]) == doc:
                        rel[row] = self._jrel[p]
                        break
        return rel


class Run(Frozen):
    """A ranking: for each query, documents with scores. Immutable.

    Build with :meth:`from_arrays` (fastest; what the engine uses), :meth:`from_records`
    or :meth:`read`. Scores are float64 (NaN refused); a document twice for one query is
    an error. Ranks written in a file are not kept: evaluation orders by score exactly
    as trec_eval does (see :mod:`retrieval.evaluation`). ``name`` labels the run in
    reports (default: the file name for :meth:`read`).
    """

    __slots__ = ("_qnames", "_qcodes", "_docids", "_scores", "_hashes", "name")

    def __init__(self, *args, **kwargs):
        raise TypeError("build a Run with Run.from_arrays, from_records or read")

    @classmethod
    def from_arrays(cls, qids, docids, scores, *, name: str | None = None) -> "Run":
        """From parallel arrays or lists: query ids (str), document ids (str), scores.

        One row per retrieved document; rows of a query need not be contiguous or
        sorted (they are fastest when grouped by query, as engines produce them).
        """
        return cls._build(qids, docids, scores, name=name, source=None)

    @classmethod
    def _build(cls, qids, docids, scores, *, name, source) -> "Run":
        qids = as_str_array(qids, "qids")
        docids = as_str_array(docids, "docids")
        scores = np.asarray(scores)
        if scores.ndim != 1:
            raise ParameterError(f"scores must be one-dimensional, got shape {scores.shape}")
        if scores.size and scores.dtype.kind not in "iuf":
            raise ParameterError(f"scores must be numbers, got dtype {scores.dtype}")
        scores = np.array(scores, dtype=np.float64)  # own copy
        _check_lengths(qids=qids, docids=docids, scores=scores)
        _check_non_empty_ids(qids, "qids")
        _check_non_empty_ids(docids, "docids")
        nan = np.isnan(scores)
        if nan.any():
            row = int(np.flatnonzero(nan)[0])
            raise ParameterError(f"score of document {str(docids[row])!r} for query "
                                 f"{str(qids[row])!r} is NaN (row {row})")
        names, codes = factorize(qids)
        hashes = hash_strings(docids)
        pair = find_duplicate(codes, hashes, docids)
        if pair is not None:
            if source is not None:
                raise duplicate_error(source, qids, docids, pair)
            first, second = pair
            raise InputError(f"document {str(docids[second])!r} appears twice for query "
                             f"{str(qids[second])!r} (rows {first} and {second}); a run must "
                             f"list each document at most once per query")
        if name is not None and not isinstance(name, str):
            raise ParameterError(f"name must be a string, got {name!r}")
        self = object.__new__(cls)
        self._set(_qnames=readonly(names), _qcodes=readonly(codes),
                  _docids=readonly(docids), _scores=readonly(scores),
                  _hashes=readonly(hashes), name=name)
        return self

    @classmethod
    def from_records(cls, records: Iterable[ScoredDoc], *, name: str | None = None) -> "Run":
        """From :class:`~retrieval.records.ScoredDoc` records (rank ignored)."""
        qids, docids, scores = [], [], []
        for r in records:
            qids.append(r.qid)
            docids.append(r.docid)
            scores.append(r.score)
        return cls.from_arrays(qids, docids, np.array(scores, dtype=np.float64), name=name)

    @classmethod
    def from_dict(cls, scores: Mapping[str, Mapping[str, float]], *,
                  name: str | None = None) -> "Run":
        """From ``{qid: {docid: score}}`` (the pytrec_eval shape)."""
        qids, docids, values = [], [], []
        for q, docs in scores.items():
            for d, s in docs.items():
                qids.append(q)
                docids.append(d)
                values.append(s)
        return cls.from_arrays(qids, docids, np.array(values, dtype=np.float64), name=name)

    @classmethod
    def read(cls, path: str | os.PathLike, *, name: str | None = None) -> "Run":
        """Read a TREC run file (:func:`retrieval.trec.read_run_columns`; a document
        twice for a query is reported with both lines)."""
        qids, docids, _, scores = read_run_columns(path)
        if name is None:
            name = os.path.basename(os.fspath(path))
        return cls._build(qids, docids, scores, name=name, source=path)

    # -- access ------------------------------------------------------------------------
    @property
    def qids(self) -> tuple[str, ...]:
        """The distinct query ids of the run, in string order."""
        return tuple(self._qnames.tolist())

    @property
    def query_ids(self) -> np.ndarray:
        """The query id of every row (read-only str array)."""
        return readonly(self._qnames[self._qcodes])

    @property
    def docids(self) -> np.ndarray:
        """The document id of every row (read-only str array)."""
        return self._docids

    @property
    def scores(self) -> np.ndarray:
        """The score of every row (read-only float64 array)."""
        return self._scores

    def __len__(self) -> int:
        """The number of rows (retrieved documents over all queries)."""
        return int(self._scores.size)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{qid: {docid: score}}``."""
        out: dict[str, dict[str, float]] = {q: {} for q in self.qids}
        names = self._qnames.tolist()
        for q, d, s in zip(self._qcodes.tolist(), self._docids.tolist(), self._scores.tolist()):
            out[names[q]][d] = s
        return out

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"Run({label}{self._qnames.size} queries, {len(self)} rows)"
