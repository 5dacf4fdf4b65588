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
``AP@k``, ``RR@k``        AP and RR over the top k only (trec_eval's map_cut_k)
``ERR`` / ``ERR@k``       sum_i (1/i) R_i prod_{j<i} (1 - R_j), R_i = (2^g_i - 1)/2^4,
                          g_i = the judgment when positive, else 0 (gdeval's err,
                          maximum grade 4; Chapelle et al. 2009)
``RBP`` / ``RBP@k``       (1 - p) sum_i g_i p^(i-1), p = 0.8 unless given: g_i = the
(``RBP(p=0.5)``)          judgment when positive, else 0 (graded, as ir_measures);
                          with ``rel=`` given, g_i = rel_i (binary)
========================  =========================================================

**ir_measures syntax** is understood too: ``NAME(param=value,...)@cutoff`` with the
names ``AP``, ``P``, ``Rprec``, ``nDCG``, ``R``, ``RR``, ``Bpref``, ``Success``,
``IPrec``, ``ERR``, ``RBP``, ``NumRet``, ``NumRel``, ``NumRelRet`` and the parameters
``rel=N`` (this measure's relevance level, overriding the evaluation's), ``judged_only``
(or ``judged_only=True``: retrieved documents without a judgment >= 0 are removed
before ranking, trec_eval's ``-J``), ``p=`` (RBP's persistence) and ``dcg=log2``
(nDCG; the only form trec_eval computes). ``P(rel=2)@10``, ``AP(rel=2)``,
``nDCG(judged_only)@10``, ``R@1000``, ``RBP(p=0.5,rel=1)``. A measure's canonical name
prints its non-default parameters as ir_measures does (alphabetical,
``P(judged_only=True,rel=2)@10``). ERR and RBP are checked against ir_measures' own
implementations (gdeval, cwl_eval and trectools) in the tests.

Names are case-insensitive; ``@``, ``_`` and ``.`` all separate a cutoff
(``P@10`` = ``P_10`` = ``p.10``; ``ndcg_cut_10`` = ``nDCG@10``; ``iP@0.5`` =
``iprec_at_recall_0.50``). Each measure has a canonical :attr:`Measure.name`
(``P@10``, ``nDCG@10``, ``iP@0.5``...) and the name trec_eval prints,
:attr:`Measure.trec_name` (``P_10``, ``ndcg_cut_10``, ``iprec_at_recall_0.50``...).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ParameterError
from .ranking import Ranked, segmented_cumsum

__all__ = ["Measure", "parse_measure", "parse_measures", "split_measure_list", "IPREC_LEVELS",
           "MEASURE_HELP"]

#: the 11 standard recall levels of ``iprec_at_recall``
IPREC_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

#: the valid measure names, as shown in error messages and ``--help``
MEASURE_HELP = ("AP (MAP, map), P@k (P_k), R-prec (Rprec), nDCG (ndcg), "
                "nDCG@k (ndcg_cut_k), R@k (recall@k, recall_k), RR (MRR, recip_rank), bpref, "
                "success@k (success_k), iprec_at_recall (the 11 points iP@0.0 ... iP@1.0), "
                "iP@x (iprec_at_recall_x, IPrec@x, 0 <= x <= 1), ERR / ERR@k, RBP / RBP@k, "
                "num_ret (NumRet), num_rel (NumRel), num_rel_ret (NumRelRet); "
                "ir_measures parameters: NAME(rel=N), NAME(judged_only), RBP(p=0.8), "
                "e.g. P(rel=2)@10, AP(rel=2), nDCG(judged_only)@10")

_COUNTS = ("num_ret", "num_rel", "num_rel_ret")

#: RBP's persistence when none is given (ir_measures' default)
RBP_DEFAULT_P = 0.8
#: ERR's maximum grade (gdeval's MAX_JUDGMENT): gain of grade g is (2^g - 1) / 2^4
ERR_MAX_GRADE = 4

#: kind -> the ir_measures parameters it takes (``rel``, ``judged_only``, ``p``)
_PARAMS: dict[str, tuple[str, ...]] = {
    "AP": ("rel", "judged_only"), "P": ("rel", "judged_only"),
    "R-prec": ("rel", "judged_only"), "R": ("rel", "judged_only"),
    "RR": ("rel", "judged_only"), "success": ("rel", "judged_only"),
    "bpref": ("rel",), "nDCG": ("judged_only", "dcg"), "iP": ("rel", "judged_only"),
    "ERR": ("judged_only",), "RBP": ("p", "rel", "judged_only"),
    "num_ret": ("judged_only",), "num_rel": ("rel",), "num_rel_ret": ("rel", "judged_only"),
}
#: kinds whose cutoff is required, optional or not taken
_CUTOFF_REQUIRED = ("P", "R", "success", "iP")
_CUTOFF_NONE = ("R-prec", "bpref", "num_ret", "num_rel", "num_rel_ret")


@dataclass(frozen=True)
class Measure:
    """One measure: a kind (``"AP"``, ``"P"``, ``"nDCG"``...), its cutoff, and the
    ir_measures parameters ``rel`` (relevance level of this measure; None: the
    evaluation's), ``judged_only`` (drop retrieved documents without a judgment >= 0
    before ranking, trec_eval ``-J``) and ``p`` (RBP's persistence)."""
    kind: str
    cutoff: int | float | None = None
    rel: int | None = None
    judged_only: bool = False
    p: float | None = None

    def __post_init__(self) -> None:
        if self.kind == "RBP" and self.p is None:
            object.__setattr__(self, "p", RBP_DEFAULT_P)

    @property
    def params(self) -> dict:
        """The parameters that differ from the defaults, by name (alphabetical)."""
        out: dict = {}
        if self.judged_only:
            out["judged_only"] = True
        if self.p is not None and self.p != RBP_DEFAULT_P:
            out["p"] = self.p
        if self.rel is not None:
            out["rel"] = self.rel
        return out

    @property
    def name(self) -> str:
        """Canonical name: ``AP``, ``P@10``, ``R-prec``, ``nDCG@10``, ``iP@0.5``, and with
        parameters ir_measures' form, ``P(rel=2)@10``, ``nDCG(judged_only=True)@10``."""
        params = self.params
        base = self.kind
        if params:
            base += "(" + ",".join(f"{k}={v!r}" if not isinstance(v, bool) else f"{k}={v}"
                                   for k, v in params.items()) + ")"
        if self.kind == "iP":
            return f"{base}@{_level_text(self.cutoff)}"
        if self.cutoff is None:
            return base
        return f"{base}@{self.cutoff}"

    @property
    def trec_name(self) -> str:
        """The name trec_eval prints for this measure (``map``, ``P_10``...); measures
        trec_eval lacks (parameters, ERR, RBP, AP@k, RR@k) keep :attr:`name`."""
        k = self.cutoff
        if self.params or self.kind in ("ERR", "RBP") or \
                (self.kind in ("AP", "RR") and k is not None):
            return self.name
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
        ranked = _variant(ranked, self.rel, self.judged_only)
        if self.kind == "RBP":
            return _rbp(ranked, self.cutoff, self.p, graded=self.rel is None)
        return _COMPUTE[self.kind](ranked, self.cutoff)


def _level_text(level: float) -> str:
    tenths = level * 10
    if abs(tenths - round(tenths)) < 1e-9:
        return f"{level:.1f}"
    return repr(level)


_CUTOFF = r"(?:@|_|\.)"
#: trec_eval's and the usual short names (no parameters)
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

#: ir_measures' syntax: NAME, NAME(param=value,...), NAME@cutoff, NAME(...)@cutoff
_IRM = re.compile(r"([a-z_-]+)(?:\(([^()]*)\))?(?:@(\d*\.?\d+))?")
#: lower-cased ir_measures (and short) names -> kind
_IRM_NAMES = {
    "ap": "AP", "map": "AP", "p": "P", "rprec": "R-prec", "r-prec": "R-prec",
    "ndcg": "nDCG", "r": "R", "recall": "R", "rr": "RR", "mrr": "RR", "recip_rank": "RR",
    "bpref": "bpref", "success": "success", "iprec": "iP", "ip": "iP", "err": "ERR",
    "rbp": "RBP", "numret": "num_ret", "num_ret": "num_ret", "numrel": "num_rel",
    "num_rel": "num_rel", "numrelret": "num_rel_ret", "num_rel_ret": "num_rel_ret",
}


def parse_measures(names: str | Measure | Iterable[str | Measure]) -> tuple[Measure, ...]:
    """Parse measure names (see the module doc); ``iprec_at_recall`` gives 11 measures.

    A string may hold several names separated by commas or spaces outside parentheses
    (``"AP,P@10 nDCG(judged_only)@10"``). Duplicates (also via aliases) are dropped,
    first occurrence kept. Raises :class:`ParameterError` listing the valid names for
    an unknown one.
    """
    if isinstance(names, (str, Measure)):
        names = [names]
    out: list[Measure] = []
    for item in names:
        parts = split_measure_list(item) if isinstance(item, str) else [item]
        for name in parts:
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


def split_measure_list(text: str) -> list[str]:
    """Measure names in ``text``, split at commas and white space outside parentheses:
    ``"AP, nDCG(dcg=log2,judged_only)@10"`` -> ``["AP", "nDCG(dcg=log2,judged_only)@10"]``."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        if depth == 0 and (ch == "," or ch.isspace()):
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in (x.strip() for x in parts) if p]


def parse_measure(name: str | Measure) -> Measure:
    """Parse one measure name (case-insensitive): trec_eval's (``"map"``, ``"P_10"``,
    ``"ndcg_cut_10"``), the short forms (``"P@10"``, ``"iP@0.5"``) or ir_measures'
    syntax with parameters (``"P(rel=2)@10"``, ``"AP(rel=2)"``, ``"RBP(p=0.5)"``,
    ``"nDCG(judged_only)@10"``)."""
    if isinstance(name, Measure):
        return name
    if not isinstance(name, str):
        raise ParameterError(f"a measure name must be a string, got {name!r}")
    text = name.strip().lower().replace(" ", "")
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        if not match.groups():
            return Measure(kind)
        return _with_cutoff(name, kind, match.group(1), {})
    match = _IRM.fullmatch(text)
    if match is not None and match.group(1) in _IRM_NAMES:
        kind = _IRM_NAMES[match.group(1)]
        params = _parse_params(name, kind, match.group(2))
        return _with_cutoff(name, kind, match.group(3), params)
    raise ParameterError(f"unknown measure {name!r}; valid measures: {MEASURE_HELP}")


def _with_cutoff(name: str, kind: str, value: str | None, params: dict) -> Measure:
    if value is None:
        if kind in _CUTOFF_REQUIRED:
            raise ParameterError(f"measure {name!r}: {kind} needs a cutoff, e.g. {kind}@10")
        return Measure(kind, None, **params)
    if kind in _CUTOFF_NONE:
        raise ParameterError(f"measure {name!r}: {kind} takes no cutoff")
    if kind == "iP":
        level = float(value)
        if not 0.0 <= level <= 1.0:
            raise ParameterError(f"measure {name!r}: the recall level must be between 0 "
                                 f"and 1, got {value}")
        return Measure(kind, level, **params)
    if not value.isdigit():
        raise ParameterError(f"measure {name!r}: the cutoff must be a whole number, "
                             f"got {value}")
    k = int(value)
    if k < 1:
        raise ParameterError(f"measure {name!r}: the cutoff must be >= 1, got {k}")
    return Measure(kind, k, **params)


def _parse_params(name: str, kind: str, text: str | None) -> dict:
    """``rel=2,judged_only=True,p=0.8`` -> keyword arguments of :class:`Measure`."""
    out: dict = {}
    if not text:
        return out
    allowed = _PARAMS[kind]
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if key not in allowed:
            takes = ", ".join(a for a in allowed if a != "dcg") or "no parameter"
            raise ParameterError(f"measure {name!r}: {kind} takes {takes}, not {key!r}")
        if key == "judged_only":
            if sep and value not in ("true", "1", "false", "0"):
                raise ParameterError(f"measure {name!r}: judged_only is True or False, "
                                     f"got {value!r}")
            out["judged_only"] = not sep or value in ("true", "1")
        elif key == "rel":
            if not re.fullmatch(r"-?\d+", value):
                raise ParameterError(f"measure {name!r}: rel must be a whole number, "
                                     f"got {value!r}")
            out["rel"] = int(value)
        elif key == "p":
            try:
                p = float(value)
            except ValueError:
                p = -1.0
            if not 0.0 < p < 1.0:
                raise ParameterError(f"measure {name!r}: RBP's p (persistence) must be "
                                     f"between 0 and 1 exclusive, got {value!r}")
            out["p"] = p
        elif value.strip("'\"") != "log2":  # nDCG's dcg
            raise ParameterError(f"measure {name!r}: only dcg=log2 (trec_eval's nDCG) is "
                                 f"supported, got {value!r}")
    if kind == "RBP" and "p" not in out:
        out["p"] = RBP_DEFAULT_P
    return out


# ---------------------------------------------------------------------------------------
# the definitions, one function per kind: (ranked, cutoff) -> value per query

def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _variant(ranked: Ranked, rel: int | None, judged_only: bool) -> Ranked:
    """``ranked`` at relevance level ``rel`` (None: its own), and with ``judged_only``
    only the rows that have a judgment >= 0 (trec_eval ``-J``; ranks recomputed).
    Variants are made once per ranked object and kept while it lives."""
    level = ranked.level if rel is None else rel
    if level == ranked.level and not judged_only:
        return ranked
    cache = _VARIANTS.setdefault(ranked, {})
    key = (level, judged_only)
    if key not in cache:
        if judged_only:
            keep = ranked.rel >= 0
            qpos = ranked.qpos[keep]
            cache[key] = replace(ranked, qpos=qpos, rel=ranked.rel[keep], level=level,
                                 num_ret=np.bincount(qpos, minlength=ranked.n_queries
                                                     ).astype(np.int64))
        else:
            cache[key] = replace(ranked, level=level)
    return cache[key]


_VARIANTS: "weakref.WeakKeyDictionary[Ranked, dict]" = weakref.WeakKeyDictionary()


def _ap(r: Ranked, k: int | None) -> np.ndarray:
    """AP = (1/R) sum over relevant retrieved rows of (relevant at or above) / rank;
    AP@k (trec_eval's map_cut_k) sums over the relevant rows at rank <= k only."""
    rows = r.rel_rows
    if k is not None:
        rows = rows[r.rank[rows] <= k]
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


def _reciprocal_rank(r: Ranked, k: int | None) -> np.ndarray:
    """RR = 1 / rank of the first relevant document (0 if none retrieved; RR@k: 0 if
    none in the top k)."""
    rows = r.rel_rows
    if k is not None:
        rows = rows[r.rank[rows] <= k]
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


def _segmented_float_cumsum(values: np.ndarray, r: Ranked, rows: np.ndarray) -> np.ndarray:
    """Inclusive running sum of ``values`` (one per row of ``rows``) within each query."""
    total = np.cumsum(values)
    q = r.qpos[rows]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = q[1:] != q[:-1]
    before = np.zeros(r.n_queries, dtype=np.float64)
    at = np.flatnonzero(first)
    before[q[at]] = total[at] - values[at]
    return total - before[q]


def _err(r: Ranked, k: int | None) -> np.ndarray:
    """ERR(@k) = sum_i (1/i) R_i prod_{j<i} (1 - R_j), R_i = (2^g_i - 1) / 2^4 with g_i the
    judgment (negative ones and unjudged: 0); the maximum grade 4 is gdeval's, so
    ``ERR@20`` equals gdeval's err@20 (Chapelle et al. 2009)."""
    gain = np.maximum(r.rel, 0)
    rows = np.flatnonzero(gain > 0 if k is None else (gain > 0) & (r.rank <= k))
    out = np.zeros(r.n_queries, dtype=np.float64)
    if rows.size == 0:
        return out
    stop = (np.exp2(gain[rows].astype(np.float64)) - 1.0) / 2.0 ** ERR_MAX_GRADE
    go_on = 1.0 - stop   # never 0 for integer grades; negative only above grade 4
    log_abs = np.log(np.abs(go_on))
    neg = (go_on < 0).astype(np.float64)
    # prod_{j<i} (1 - R_j) over the earlier gain rows of the query (rows of gain 0 give 1)
    before_log = _segmented_float_cumsum(log_abs, r, rows) - log_abs
    before_neg = _segmented_float_cumsum(neg, r, rows) - neg
    sign = np.where(np.round(before_neg) % 2 == 1, -1.0, 1.0)
    contrib = sign * np.exp(before_log) * stop / r.rank[rows]
    return np.bincount(r.qpos[rows], weights=contrib, minlength=r.n_queries)


def _rbp(r: Ranked, k: int | None, p: float, *, graded: bool) -> np.ndarray:
    """RBP(@k) = (1 - p) sum_{i (<= k)} g_i p^(i-1) (Moffat & Zobel 2008): with ``rel``
    given, g_i = 1 when the judgment >= rel, else 0; without, the graded form, g_i = the
    judgment when positive, else 0 (ir_measures' convention)."""
    gain = np.maximum(r.rel, 0).astype(np.float64) if graded else r.is_rel.astype(np.float64)
    mask = gain > 0 if k is None else (gain > 0) & (r.rank <= k)
    rows = np.flatnonzero(mask)
    weights = gain[rows] * (1.0 - p) * np.power(p, r.rank[rows] - 1.0)
    return np.bincount(r.qpos[rows], weights=weights, minlength=r.n_queries)


def _num_ret(r: Ranked, _) -> np.ndarray:
    return r.num_ret.astype(np.float64)


def _num_rel(r: Ranked, _) -> np.ndarray:
    return r.num_rel.astype(np.float64)


def _num_rel_ret(r: Ranked, _) -> np.ndarray:
    return r.num_rel_ret.astype(np.float64)


_COMPUTE = {
    "AP": _ap, "P": _precision, "R-prec": _r_precision, "R": _recall, "RR": _reciprocal_rank,
    "success": _success, "nDCG": _ndcg, "bpref": _bpref, "iP": _iprec,
    "num_ret": _num_ret, "num_rel": _num_rel, "num_rel_ret": _num_rel_ret, "ERR": _err,
}
