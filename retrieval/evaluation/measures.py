"""Evaluation measures: names, parsing, and their trec_eval definitions (vectorised).

Notation, per query: documents ranked as trec_eval ranks them (see
:mod:`retrieval.evaluation`), ``rel_i`` = 1 when the document at rank ``i`` has a
judgment >= the relevance level ``l`` (default 1), else 0; ``R`` = number of judgments
>= ``l`` (relevant documents, retrieved or not); ``N`` = judgments with
``0 <= value < l`` (judged non-relevant); ``n`` = documents retrieved. Negative
judgments count as neither (trec_eval treats them as "in the pool, not judged").
A measure whose denominator is 0 is 0.

========================  =========================================================
name (aliases)            definition
========================  =========================================================
``AP`` (MAP, map)         (1/R) sum_{i: rel_i=1} (sum_{j<=i} rel_j) / i
``P@k`` (P_k)             (sum_{i<=k} rel_i) / k   - divides by k even if n < k
``R-prec`` (Rprec)        (sum_{i<=R} rel_i) / R
``R@k`` (recall@k,        (sum_{i<=k} rel_i) / R
recall_k)
``RR`` (MRR, recip_rank)  1 / (rank of the first relevant document), 0 if none
``success@k``             1 if sum_{i<=k} rel_i > 0, else 0
``nDCG`` / ``nDCG@k``     DCG / ideal DCG with DCG = sum_i g_i / log2(i + 1) over the
(ndcg, ndcg_cut_k)        ranking (cut at k), g_i = the judgment value when positive,
                          else 0 - *whatever the relevance level* (trec_eval's ndcg
                          ignores it); the ideal DCG sorts all positive judgments of
                          the query by value, descending (cut at k)
``bpref``                 (1/R) sum_{i: rel_i=1} (1 - min(m_i, R) / min(N, R)) where
                          m_i = judged non-relevant documents ranked above i (a term
                          is 1 when m_i = 0)
``iP@x``                  interpolated precision at recall x: with
(iprec_at_recall_x)       c = floor(x * R + 0.9) (trec_eval <= 9.0.7's rounding),
                          max over ranks i at or below the c-th relevant retrieved
                          document (the first if c = 0) of precision at i; 0 when
                          fewer than c relevant documents are retrieved.
                          ``iprec_at_recall`` asks for the 11 points x = 0.0 ... 1.0.
``num_ret``               n
``num_rel``               R
``num_rel_ret``           sum_i rel_i
========================  =========================================================

Names are case-insensitive; ``@``, ``_`` and ``.`` all separate a cutoff
(``P@10`` = ``P_10`` = ``p.10``; ``ndcg_cut_10`` = ``nDCG@10``; ``iP@0.5`` =
``iprec_at_recall_0.50``). Each measure has a canonical :attr:`Measure.name`
(``P@10``, ``nDCG@10``, ``iP@0.5``...) and the name trec_eval prints,
:attr:`Measure.trec_name` (``P_10``, ``ndcg_cut_10``, ``iprec_at_recall_0.50``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from .ranking import Ranked, segmented_cumsum

__all__ = ["Measure", "parse_measure", "parse_measures", "IPREC_LEVELS", "MEASURE_HELP"]

#: the 11 standard recall levels of ``iprec_at_recall``
IPREC_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

#: the valid measure names, as shown in error messages and ``--help``
MEASURE_HELP = ("AP (MAP, map), P@k (P_k), R-prec (Rprec), nDCG (ndcg), "
                "nDCG@k (ndcg_cut_k), R@k (recall@k, recall_k), RR (MRR, recip_rank), bpref, "
                "success@k (success_k), iprec_at_recall (the 11 points iP@0.0 ... iP@1.0), "
                "iP@x (iprec_at_recall_x, 0 <= x <= 1), num_ret, num_rel, num_rel_ret")

_COUNTS = ("num_ret", "num_rel", "num_rel_ret")


@dataclass(frozen=True)
class Measure:
    """One measure: a kind (``"AP"``, ``"P"``, ``"nDCG"``...) and its cutoff, if any."""
    kind: str
    cutoff: int | float | None = None

    @property
    def name(self) -> str:
        """Canonical name: ``AP``, ``P@10``, ``R-prec``, ``nDCG@10``, ``iP@0.5``..."""
        if self.kind == "iP":
            return f"iP@{_level_text(self.cutoff)}"
        if self.cutoff is None:
            return self.kind
        return f"{self.kind}@{self.cutoff}"

    @property
    def trec_name(self) -> str:
        """The name trec_eval prints for this measure (``map``, ``P_10``...)."""
        k = self.cutoff
        return {
            "AP": "map", "R-prec": "Rprec", "RR": "recip_rank", "bpref": "bpref",
            "nDCG": "ndcg" if k is None else f"ndcg_cut_{k}", "P": f"P_{k}",
            "R": f"recall_{k}", "success": f"success_{k}",
            "iP": f"iprec_at_recall_{k:.2f}" if k is not None else "",
        }.get(self.kind, self.kind)

    @property
    def is_count(self) -> bool:
        """A count (num_ret, num_rel, num_rel_ret): trec_eval's summary is the sum."""
        return self.kind in _COUNTS

    def __str__(self) -> str:
        return self.name

    def compute(self, ranked: Ranked) -> np.ndarray:
        """The value for each query of ``ranked`` (float64 array)."""
        return _COMPUTE[self.kind](ranked, self.cutoff)


def _level_text(level: float) -> str:
    tenths = level * 10
    if abs(tenths - round(tenths)) < 1e-9:
        return f"{level:.1f}"
    return repr(level)


_CUTOFF = r"(?:@|_|\.)"
_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"(?:ap|map)"), "AP"),
    (re.compile(rf"p{_CUTOFF}(\d+)"), "P"),
    (re.compile(r"r-?prec(?:ision)?"), "R-prec"),
    (re.compile(r"ndcg"), "nDCG"),
    (re.compile(r"ndcg(?:@|_cut_|_cut\.|\.|_)(\d+)"), "nDCG"),
    (re.compile(rf"(?:r|recall){_CUTOFF}(\d+)"), "R"),
    (re.compile(r"(?:rr|mrr|recip_rank)"), "RR"),
    (re.compile(r"bpref"), "bpref"),
    (re.compile(rf"success{_CUTOFF}(\d+)"), "success"),
    (re.compile(rf"(?:ip|iprec_at_recall){_CUTOFF}(\d*\.?\d+)"), "iP"),
    (re.compile(r"num_ret"), "num_ret"),
    (re.compile(r"num_rel"), "num_rel"),
    (re.compile(r"num_rel_ret"), "num_rel_ret"),
]


def parse_measures(names: str | Measure | Iterable[str | Measure]) -> tuple[Measure, ...]:
    """Parse measure names (see the module doc); ``iprec_at_recall`` gives 11 measures.

    Duplicates (also via aliases) are dropped, first occurrence kept. Raises
    :class:`ParameterError` listing the valid names for an unknown one.
    """
    if isinstance(names, (str, Measure)):
        names = [names]
    out: list[Measure] = []
    for name in names:
        if isinstance(name, str) and name.strip().lower() == "iprec_at_recall":
            expanded = [Measure("iP", level) for level in IPREC_LEVELS]
        else:
            expanded = [parse_measure(name)]
        for m in expanded:
            if m not in out:
                out.append(m)
    if not out:
        raise ParameterError(f"no measure given; valid measures: {MEASURE_HELP}")
    return tuple(out)


def parse_measure(name: str | Measure) -> Measure:
    """Parse one measure name (case-insensitive), e.g. ``"MAP"``, ``"P_10"``, ``"iP@0.5"``."""
    if isinstance(name, Measure):
        return name
    if not isinstance(name, str):
        raise ParameterError(f"a measure name must be a string, got {name!r}")
    text = name.strip().lower()
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        if not match.groups():
            return Measure(kind)
        value = match.group(1)
        if kind == "iP":
            level = float(value)
            if not 0.0 <= level <= 1.0:
                raise ParameterError(f"measure {name!r}: the recall level must be between 0 "
                                     f"and 1, got {value}")
            return Measure(kind, level)
        k = int(value)
        if k < 1:
            raise ParameterError(f"measure {name!r}: the cutoff must be >= 1, got {k}")
        return Measure(kind, k)
    raise ParameterError(f"unknown measure {name!r}; valid measures: {MEASURE_HELP}")


# ---------------------------------------------------------------------------------------
# the definitions, one function per kind: (ranked, cutoff) -> value per query

def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _ap(r: Ranked, _) -> np.ndarray:
    """AP = (1/R) sum over relevant retrieved rows of (relevant at or above) / rank."""
    rows = r.rel_rows
    precision = r.cum_rel[rows] / r.rank[rows]
    return _ratio(r.count(weights=precision, rows=rows), r.num_rel)


def _top_k_relevant(r: Ranked, k) -> np.ndarray:
    rows = r.rel_rows
    return r.count(mask=r.rank[rows] <= k, rows=rows)


def _precision(r: Ranked, k: int) -> np.ndarray:
    """P@k = relevant in the top k / k."""
    return _top_k_relevant(r, k) / k


def _recall(r: Ranked, k: int) -> np.ndarray:
    """R@k = relevant in the top k / R."""
    return _ratio(_top_k_relevant(r, k), r.num_rel)


def _success(r: Ranked, k: int) -> np.ndarray:
    """success@k = 1 if a relevant document is in the top k."""
    return (_top_k_relevant(r, k) > 0).astype(np.float64)


def _r_precision(r: Ranked, _) -> np.ndarray:
    """R-prec = relevant in the top R / R."""
    rows = r.rel_rows
    within = r.rank[rows] <= r.num_rel[r.qpos[rows]]
    return _ratio(r.count(mask=within, rows=rows), r.num_rel)


def _reciprocal_rank(r: Ranked, _) -> np.ndarray:
    """RR = 1 / rank of the first relevant document (0 if none retrieved)."""
    rows = r.rel_rows
    out = np.zeros(r.n_queries, dtype=np.float64)
    if rows.size:
        q = r.qpos[rows]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = q[1:] != q[:-1]
        out[q[first]] = 1.0 / r.rank[rows[first]]
    return out


def _ndcg(r: Ranked, k: int | None) -> np.ndarray:
    """nDCG(@k) = sum g_i/log2(i+1) over the ranking / same over the ideal ranking."""
    gain = r.rel > 0
    rows = np.flatnonzero(gain if k is None else gain & (r.rank <= k))
    dcg = r.count(weights=r.rel[rows] / np.log2(r.rank[rows] + 1.0), rows=rows)
    iq, irank, igain = r.ideal
    if k is not None:
        keep = irank <= k
        iq, irank, igain = iq[keep], irank[keep], igain[keep]
    ideal = np.bincount(iq, weights=igain / np.log2(irank + 1.0), minlength=r.n_queries)
    return _ratio(dcg, ideal)


def _bpref(r: Ranked, _) -> np.ndarray:
    """bpref = (1/R) sum over relevant retrieved of 1 - min(m, R)/min(N, R) (1 if m=0)."""
    judged_nonrel = (r.rel >= 0) & (r.rel < r.level)
    above = segmented_cumsum(judged_nonrel, r.starts, r.qpos)
    rows = r.rel_rows
    q = r.qpos[rows]
    m = above[rows]
    big_r = r.num_rel[q]
    denominator = np.minimum(r.num_nonrel[q], big_r)
    term = np.ones(rows.size, dtype=np.float64)
    some = m > 0
    term[some] = 1.0 - np.minimum(m[some], big_r[some]) / denominator[some]
    return _ratio(r.count(weights=term, rows=rows), r.num_rel)


def _iprec(r: Ranked, level: float) -> np.ndarray:
    """iP@x = max precision at or below the c-th relevant retrieved, c = floor(xR + .9)."""
    out = np.zeros(r.n_queries, dtype=np.float64)
    rows = r.rel_rows
    if rows.size == 0:
        return out
    suffix_max = _precision_suffix_max(r)
    # trec_eval (<= 9.0.7, pytrec_eval): cutoff in relevant documents = (long)(x*R + 0.9)
    cut = np.floor(level * r.num_rel.astype(np.float64) + 0.9).astype(np.int64)
    cut = np.maximum(cut, 1)  # 0 behaves as 1: max precision from the first relevant on
    nrr = r.num_rel_ret
    ok = (nrr >= 1) & (cut <= nrr)
    first_rel = np.concatenate(([0], np.cumsum(nrr)[:-1]))
    out[ok] = suffix_max[first_rel[ok] + cut[ok] - 1]
    return out


def _precision_suffix_max(r: Ranked) -> np.ndarray:
    """For each relevant row: the max precision at it or at any relevant row below it.

    (Precision at a non-relevant rank never exceeds that at the relevant rank above
    it, so relevant rows suffice.) A segmented reverse running maximum, done exactly
    on integer keys: value ranks offset by query so queries cannot mix.
    """
    rows = r.rel_rows
    precision = r.cum_rel[rows] / r.rank[rows]
    values, index = np.unique(precision, return_inverse=True)
    index = index.reshape(-1).astype(np.int64)
    segment = (r.n_queries - 1 - r.qpos[rows]).astype(np.int64) * values.size
    running = np.maximum.accumulate((segment + index)[::-1])[::-1]
    return values[running - segment]


def _num_ret(r: Ranked, _) -> np.ndarray:
    return r.num_ret.astype(np.float64)


def _num_rel(r: Ranked, _) -> np.ndarray:
    return r.num_rel.astype(np.float64)


def _num_rel_ret(r: Ranked, _) -> np.ndarray:
    return r.num_rel_ret.astype(np.float64)


_COMPUTE = {
    "AP": _ap, "P": _precision, "R-prec": _r_precision, "R": _recall, "RR": _reciprocal_rank,
    "success": _success, "nDCG": _ndcg, "bpref": _bpref, "iP": _iprec,
    "num_ret": _num_ret, "num_rel": _num_rel, "num_rel_ret": _num_rel_ret,
}
