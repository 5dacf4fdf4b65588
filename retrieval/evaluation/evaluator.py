"""``evaluate(qrels, run, measures)`` and its immutable result, :class:`Evaluation`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import numpy as np

from ..errors import ParameterError, check_number
from ..keys import readonly
from .ranking import rank
from .data import Qrels, Run, Frozen
from .measures import Measure, parse_measure, parse_measures

__all__ = ["DEFAULT_MEASURES", "Evaluation", "evaluate"]

#: what ``retrieval evaluate`` reports when no measure is asked for
DEFAULT_MEASURES = ("AP", "P@10", "nDCG@10", "R-prec", "RR", "bpref", "R@1000",
                    "num_ret", "num_rel", "num_rel_ret")


def evaluate(qrels: Qrels | Mapping, run: Run | Mapping,
             measures: str | Iterable[str | Measure] = DEFAULT_MEASURES, *,
             relevance_level: int = 1, complete: bool = False) -> "Evaluation":
    """Evaluate ``run`` against ``qrels`` exactly as trec_eval 9.0.x (pytrec_eval) does.

    * Ranking: by score descending, scores compared as float32; equal scores by
      document id descending (string order). Ranks in the run are ignored.
    * Relevant: judgment >= ``relevance_level`` (an integer >= 0). Negative judgments
      are never relevant and do not count as judged non-relevant for ``bpref``.
      nDCG's gains are the positive judgment values, whatever the level.
    * Queries: those of the run that have judgments; run queries without judgments
      are ignored, and a judged query without a relevant document scores 0. With
      ``complete=True`` (trec_eval ``-c``) every judged query is evaluated, those
      missing from the run as an empty ranking: 0 for every measure except
      ``num_rel``, which keeps the query's number of relevant documents (as in
      trec_eval 9.0.8, which evaluates missing queries against an empty ranking).

    ``qrels`` and ``run`` may also be ``{qid: {docid: value}}`` dicts. ``measures``:
    names as in :mod:`retrieval.evaluation.measures`. Raises :class:`InputError` when
    run and qrels share no query, :class:`ParameterError` for a bad measure or level.
    """
    if isinstance(qrels, Mapping):
        qrels = Qrels.from_dict(qrels)
    if isinstance(run, Mapping):
        run = Run.from_dict(run)
    if not isinstance(qrels, Qrels):
        raise ParameterError(f"qrels must be a Qrels, got {type(qrels).__name__}")
    if not isinstance(run, Run):
        raise ParameterError(f"run must be a Run, got {type(run).__name__}")
    level = check_number("relevance_level", relevance_level, low=0, integer=True)
    parsed = parse_measures(measures)
    ranked = rank(qrels, run, level=level, complete=bool(complete))
    values = {m: readonly(m.compute(ranked)) for m in parsed}
    return Evaluation._make(parsed, ranked.qids, values, level=level, complete=bool(complete),
                            run_name=run.name)


class _ByMeasure(Mapping):
    """Read-only ``{measure name: value}``; any alias works as a key (``map``, ``P_10``)."""

    def __init__(self, measures: tuple[Measure, ...], get):
        self._measures = measures
        self._get = get
        self._cache: dict[Measure, object] = {}

    def _measure(self, key) -> Measure:
        try:
            m = parse_measure(key)
        except ParameterError:
            raise KeyError(key) from None
        if m not in self._measures:
            raise KeyError(key)
        return m

    def __getitem__(self, key):
        m = self._measure(key)
        if m not in self._cache:
            self._cache[m] = self._get(m)
        return self._cache[m]

    def __contains__(self, key) -> bool:
        try:
            self._measure(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (m.name for m in self._measures)

    def __len__(self) -> int:
        return len(self._measures)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{m.name!r}: {self[m]!r}" for m in self._measures) + "}"


class Evaluation(Frozen):
    """The result of :func:`evaluate`. Immutable.

    * :attr:`qids` - the evaluated queries, in string order (trec_eval's order).
    * ``values(measure)`` - read-only float64 array aligned with :attr:`qids`.
    * ``per_query[measure]`` - read-only ``{qid: value}``.
    * ``mean[measure]`` - arithmetic mean over :attr:`qids` (what papers report as
      MAP, P@10...; for counts it is the mean count).
    * ``summary[measure]`` - trec_eval's ``all`` line: the mean, except the sum for the
      counts ``num_ret``, ``num_rel``, ``num_rel_ret``.

    Keys may be any alias of a measure that was evaluated (``mean["map"]`` is
    ``mean["AP"]``); iterating gives canonical names in the order requested.
    """

    __slots__ = ("measures", "qids", "relevance_level", "complete", "run_name", "_values",
                 "per_query", "mean", "summary")

    def __init__(self, *args, **kwargs):
        raise TypeError("Evaluation objects are made by evaluate()")

    @classmethod
    def _make(cls, measures, qids, values, *, level, complete, run_name) -> "Evaluation":
        self = object.__new__(cls)
        qid_list = tuple(np.asarray(qids).tolist())

        def per_query(m: Measure):
            return MappingProxyType(dict(zip(qid_list, values[m].tolist())))

        def mean(m: Measure) -> float:
            return float(values[m].mean()) if values[m].size else 0.0

        def summary(m: Measure) -> float:
            return float(values[m].sum()) if m.is_count else mean(m)

        self._set(measures=tuple(measures), qids=qid_list, relevance_level=level,
                  complete=complete, run_name=run_name, _values=values,
                  per_query=_ByMeasure(tuple(measures), per_query),
                  mean=_ByMeasure(tuple(measures), mean),
                  summary=_ByMeasure(tuple(measures), summary))
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical names of the evaluated measures, in the order requested."""
        return tuple(m.name for m in self.measures)

    def values(self, measure: str | Measure) -> np.ndarray:
        """Per-query values of ``measure`` (read-only float64 array, aligned with qids)."""
        m = parse_measure(measure)
        if m not in self._values:
            raise KeyError(measure)
        return self._values[m]

    def to_dict(self, per_query: bool = True) -> dict:
        """A JSON-ready dict: settings, ``mean``, ``summary`` and (optionally) per query."""
        out = {
            "run": self.run_name, "relevance_level": self.relevance_level,
            "complete": self.complete, "num_queries": len(self.qids),
            "measures": list(self.names),
            "mean": dict(self.mean), "summary": dict(self.summary),
        }
        if per_query:
            out["per_query"] = {name: dict(self.per_query[name]) for name in self.names}
        return out

    def __repr__(self) -> str:
        shown = ", ".join(f"{m.name}={self.mean[m]:.4f}" for m in self.measures[:4])
        more = ", ..." if len(self.measures) > 4 else ""
        return f"Evaluation({len(self.qids)} queries: {shown}{more})"
