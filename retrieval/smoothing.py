"""Smoothing methods for document language models.

Notation: c = c(w,d), |d| = document length, |d|_u = distinct terms in d, p = p(w|C).
Every method has the form

    p(w|d) = p_s(w|d)          if c(w,d) > 0
           = α_d · p(w|C)      otherwise

so the negative cross-entropy of a query model θ_q against θ_d splits into a sparse
sum over the query terms the document contains plus one term per document:

    Σ_w p(w|θ_q) log p(w|θ_d)
      = Σ_{w∈q∩d} p(w|θ_q) · log[p_s(w|d) / (α_d p(w|C))]     (matched-term weights, ≥ 0)
      + (Σ_w p(w|θ_q)) · log α_d                               (document term)
      + Σ_w p(w|θ_q) · log p(w|C)                              (query-only constant)

Each model below supplies ``matched_weight`` = log[p_s/(α_d p)] and ``log_alpha`` =
log α_d, both vectorised over numpy arrays. An empty document (|d| = 0) has no maximum-
likelihood model; every method then uses the collection model (α_d = 1).

=============  ====================================  ==========================
method         matched-term weight                   α_d
=============  ====================================  ==========================
Jelinek-Mercer log(1 + (1−λ)c / (λ|d|p))              λ
Dirichlet      log(1 + c / (μp))                      μ / (|d| + μ)
Abs. discount  log(1 + (c−δ) / (δ|d|_u p))            δ|d|_u / |d|
Two-stage      log(1 + (1−λ)c / ((μ + λ|d|)p))        (μ + λ|d|) / (|d| + μ)
=============  ====================================  ==========================
"""

from __future__ import annotations

import numpy as np

from .errors import ParameterError, check_floor, check_number

#: the smallest μ, λ (Jelinek-Mercer) or δ accepted. Below it the matched weight
#: log(1 + c/(μp)) (and its analogues) overflows to +inf for μp ≲ c/1.8e308 (μ = 1e-308
#: scores +inf, μ = 5e-324 gives NaN), and before that the score Σ log p(w|d) ≈ −μ(1−p)
#: of a document made only of the query term sinks below the rounding error
#: (~1e-16 × |log α_d| + |log p|, about 1e-14) and can come out positive (λ = 1e-300 did).
#: At 1e-6 every weight is finite for any count, length and p ≥ 2⁻⁶³ (c/(μp) < 1e45) and
#: that score is still 1e8 times the rounding error. The leave-one-out μ estimate searches
#: the same range (``retrieval.estimation``).
SMALLEST_PARAMETER = 1e-6


class SmoothingModel:
    """Base class: parameters are stored untouched and validated in ``__init__``."""

    name = ""
    #: parameter names in display order
    params: tuple[str, ...] = ()
    #: per-document statistics ``matched_weight`` reads ("doc_len", "doc_unique");
    #: the searcher gathers only these for each posting
    uses: tuple[str, ...] = ("doc_len", "doc_unique")

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params() == self.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.get_params().items())))

    def label(self) -> str:
        """Short text like ``dirichlet(mu=1000)`` for tables and run tags."""
        args = ",".join(f"{k}={v:g}" for k, v in self.get_params().items())
        return f"{self.name}({args})"

    def matched_weight(self, counts, doc_len, doc_unique, p_coll) -> np.ndarray:
        """log[p_s(w|d) / (α_d p(w|C))] for matched (c ≥ 1) postings."""
        raise NotImplementedError

    def log_alpha(self, doc_len, doc_unique) -> np.ndarray:
        """log α_d per document (0 for empty documents)."""
        raise NotImplementedError

    def log_prob(self, counts, doc_len, doc_unique, p_coll) -> np.ndarray:
        """log p(w|d) for any count (0 included): the full smoothed model, for checks."""
        counts = np.asarray(counts, dtype=np.float64)
        la = self.log_alpha(doc_len, doc_unique) + np.log(p_coll)
        matched = counts > 0
        out = np.array(np.broadcast_to(la, np.broadcast(counts, la).shape), dtype=np.float64)
        if np.any(matched):
            c = np.broadcast_to(counts, out.shape)[matched]
            dl = np.broadcast_to(doc_len, out.shape)[matched]
            du = np.broadcast_to(doc_unique, out.shape)[matched]
            pc = np.broadcast_to(p_coll, out.shape)[matched]
            out[matched] += self.matched_weight(c, dl, du, pc)
        return out


def _lengths(doc_len):
    return np.asarray(doc_len, dtype=np.float64)


class JelinekMercer(SmoothingModel):
    """Jelinek-Mercer: p(w|d) = (1−λ) c/|d| + λ p(w|C); ``lam`` is the collection weight."""

    name = "jm"
    params = ("lam",)
    uses = ("doc_len",)

    def __init__(self, lam: float = 0.5):
        self.lam = lam
        check_number("lam (λ)", lam, low=0.0, high=1.0, low_open=True,
                     hint="λ is the weight of the collection model, e.g. 0.1 for short "
                          "queries, 0.7 for long ones")
        check_floor("lam (λ)", lam, SMALLEST_PARAMETER, "use λ ≥ 1e-06 (1e-06 is almost no smoothing)")

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        lam = float(self.lam)
        c = np.asarray(counts, dtype=np.float64)
        return np.log1p((1.0 - lam) * c / (lam * _lengths(doc_len) * p_coll))

    def log_alpha(self, doc_len, doc_unique):
        dl = _lengths(doc_len)
        return np.where(dl > 0, np.log(float(self.lam)), 0.0)


class Dirichlet(SmoothingModel):
    """Dirichlet prior: p(w|d) = (c + μ p(w|C)) / (|d| + μ)."""

    name = "dirichlet"
    params = ("mu",)
    uses = ()

    def __init__(self, mu: float = 1000.0):
        self.mu = mu
        check_number("mu (μ)", mu, low=0.0, low_open=True,
                     hint="typical values are 500-3000")
        check_floor("mu (μ)", mu, SMALLEST_PARAMETER, "use μ ≥ 1e-06 (1e-06 is almost no smoothing)")

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        c = np.asarray(counts, dtype=np.float64)
        return np.log1p(c / (float(self.mu) * p_coll))

    def log_alpha(self, doc_len, doc_unique):
        mu = float(self.mu)
        return np.log(mu / (_lengths(doc_len) + mu))


class AbsoluteDiscount(SmoothingModel):
    """Absolute discounting: p(w|d) = max(c−δ, 0)/|d| + δ |d|_u p(w|C) / |d|."""

    name = "ad"
    params = ("delta",)
    uses = ("doc_unique",)

    def __init__(self, delta: float = 0.7):
        self.delta = delta
        check_number("delta (δ)", delta, low=0.0, high=1.0, low_open=True,
                     hint="the discount subtracted from each count, e.g. 0.7")
        check_floor("delta (δ)", delta, SMALLEST_PARAMETER, "use δ ≥ 1e-06 (1e-06 is almost no "
                                                   "smoothing)")

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        d = float(self.delta)
        c = np.asarray(counts, dtype=np.float64)
        return np.log1p((c - d) / (d * np.asarray(doc_unique, dtype=np.float64) * p_coll))

    def log_alpha(self, doc_len, doc_unique):
        dl = _lengths(doc_len)
        du = np.asarray(doc_unique, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            la = np.log(float(self.delta) * du / dl)
        return np.where(dl > 0, la, 0.0)


class TwoStage(SmoothingModel):
    """Two-stage: p(w|d) = (1−λ) (c + μ p(w|C)) / (|d| + μ) + λ p(w|C)."""

    name = "two-stage"
    params = ("mu", "lam")
    uses = ("doc_len",)

    def __init__(self, mu: float = 1000.0, lam: float = 0.5):
        self.mu = mu
        self.lam = lam
        check_number("mu (μ)", mu, low=0.0, low_open=True, hint="typical values are 500-3000")
        check_floor("mu (μ)", mu, SMALLEST_PARAMETER, "use μ ≥ 1e-06 (1e-06 is almost no smoothing)")
        check_number("lam (λ)", lam, low=0.0, high=1.0,
                     hint="λ is the second-stage collection weight")

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        mu, lam = float(self.mu), float(self.lam)
        c = np.asarray(counts, dtype=np.float64)
        return np.log1p((1.0 - lam) * c / ((mu + lam * _lengths(doc_len)) * p_coll))

    def log_alpha(self, doc_len, doc_unique):
        mu, lam = float(self.mu), float(self.lam)
        dl = _lengths(doc_len)
        return np.log((mu + lam * dl) / (dl + mu))


MODELS: dict[str, type[SmoothingModel]] = {
    "dirichlet": Dirichlet,
    "jm": JelinekMercer,
    "ad": AbsoluteDiscount,
    "two-stage": TwoStage,
}


def make_model(name: str, **params) -> SmoothingModel:
    """The smoothing model called ``name`` with ``params`` (unset ones take defaults)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown model {name!r}; choose one of "
                             f"{', '.join(MODELS)}") from None
    unknown = set(params) - set(cls.params)
    if unknown:
        raise ParameterError(f"model {name!r} takes {', '.join(cls.params)}, not "
                             f"{', '.join(sorted(unknown))}")
    return cls(**{k: v for k, v in params.items() if v is not None})
