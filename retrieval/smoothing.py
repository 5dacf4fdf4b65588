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
Dir+           log(1 + c/(μp)) + log(1 + δ/(μp))      μ / (|d| + μ)
SPUD           log(1 + |d|_u c / (|d| μ' p))          μ' / (|d|_u + μ'),  μ' = m ω/(1−ω)
=============  ====================================  ==========================

Any model can carry a document-length prior log p(d) = β·log|d| (:class:`LengthPrior`,
folded into log α_d). Two-stage smoothing with λ estimated per query is
:mod:`retrieval.twostage` (a model per query, not a single model).

Models that need collection statistics to fix a parameter (``needs_index``: Dirichlet with
μ = s·avg|d|, SPUD with the background mass m estimated from the collection) are
*specifications*: :meth:`SmoothingModel.resolved` turns them, given the index, into an
ordinary model with every parameter fixed (a plain :class:`Dirichlet`, a :class:`SPUD`
with ``mass`` set), which is what a :class:`~retrieval.search.Searcher` scores with.
Using an unresolved specification raises a one-line :class:`ParameterError`.

``monotone_in_count`` declares that, for fixed document statistics, the matched weight
increases with c(w,d) and is ≥ 0 — what exact dynamic pruning's block bounds need.
"""

from __future__ import annotations

import numpy as np

from .params import Parameters
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


class SmoothingModel(Parameters):
    """Base class: parameters are stored untouched and validated in ``__init__``."""

    name = ""
    #: parameter names in display order
    params: tuple[str, ...] = ()
    #: per-document statistics ``matched_weight`` reads ("doc_len", "doc_unique");
    #: the searcher gathers only these for each posting
    uses: tuple[str, ...] = ("doc_len", "doc_unique")
    #: the matched weight is ≥ 0 and increases with c(w,d) for fixed |d|, |d|_u
    #: (pruning's per-block bounds are valid); False unless a model declares it
    monotone_in_count: bool = False
    #: parameters are fixed from the index by :meth:`resolved` before scoring
    needs_index: bool = False

    def resolved(self, index) -> "SmoothingModel":
        """The model with every parameter fixed for ``index`` (itself, for models
        that need no collection statistics)."""
        return self

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
    monotone_in_count = True

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
    monotone_in_count = True

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
    monotone_in_count = True

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
    monotone_in_count = True

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


class DirichletPlus(SmoothingModel):
    """Dir+: Dirichlet prior with a lower-bounded term-frequency normalisation
    (Lv & Zhai, CIKM 2011, "Lower-bounding term frequency normalization").

    The paper's retrieval function adds, for every query term the document contains, a
    pseudo-count δ's gain log(1 + δ/(μ p(w|C))), so that a matched occurrence in a very
    long document is never worth less than an absent one plus that floor:

        s(q,d) = Σ_{w∈q∩d} q_w [log(1 + c/(μp)) + log(1 + δ/(μp))] + M·log(μ/(|d| + μ))

    i.e. matched weight log(1 + c/(μp)) + log(1 + δ/(μp)) and α_d = μ/(|d|+μ), the
    Dirichlet document term. The implied "p_s(w|d)" = (c + μp)(μp + δ) / ((|d|+μ) μp)
    is not normalised: Dir+ is a retrieval function derived from a constraint, not a
    distribution, so scores are not cross-entropies (:meth:`log_prob` returns that
    unnormalised value, which is what the engine sums). δ = 0.05 is the paper's
    recommended setting (stable across its collections); δ = 0 is Dirichlet.
    """

    name = "dir+"
    params = ("mu", "delta")
    uses = ()
    monotone_in_count = True

    def __init__(self, mu: float = 1000.0, delta: float = 0.05):
        self.mu = mu
        self.delta = delta
        check_number("mu (μ)", mu, low=0.0, low_open=True, hint="typical values are 500-3000")
        check_number("delta (δ)", delta, low=0.0,
                     hint="Dir+'s lower bound pseudo-count, e.g. 0.05 (0 is Dirichlet)")

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        c = np.asarray(counts, dtype=np.float64)
        mp = float(self.mu) * np.asarray(p_coll, dtype=np.float64)
        return np.log1p(c / mp) + np.log1p(float(self.delta) / mp)

    def log_alpha(self, doc_len, doc_unique):
        mu = float(self.mu)
        return np.log(mu / (_lengths(doc_len) + mu))


class DirichletAvgLen(SmoothingModel):
    """Dirichlet with μ = ``mu_scale`` × the collection's average document length.

    A specification (``needs_index``): :meth:`resolved` gives ``Dirichlet(mu=s·avg|d|)``
    with avg|d| = (Σ_d |d|) / N over the index's documents (empty ones included, as
    in BM25's avgdl). Rationale: μ is a pseudo-count of collection tokens added to each
    document; measured in document lengths it carries across collections whose
    documents are 50 or 5,000 tokens long, which a fixed μ does not.
    """

    name = "dirichlet-avgdl"
    params = ("mu_scale",)
    uses = ()
    needs_index = True

    def __init__(self, mu_scale: float = 1.0):
        self.mu_scale = mu_scale
        check_number("mu_scale", mu_scale, low=0.0, low_open=True,
                     hint="μ as a multiple of the average document length, e.g. 1")

    def resolved(self, index) -> Dirichlet:
        lengths = np.asarray(index.arrays["doc_lengths"], dtype=np.int64)
        # the exact integer total over n (one rounding), so the mean does not depend on
        # the order of the documents (a sharded index resolves it from its shards)
        avg = int(lengths.sum()) / len(lengths) if len(lengths) else 0.0
        if avg <= 0:
            raise ParameterError("--model dirichlet-avgdl needs documents with text; the "
                                 "index has none — use a fixed --mu")
        return Dirichlet(mu=float(self.mu_scale) * avg)

    def _unresolved(self):
        raise ParameterError(f"{self.label()} depends on the collection: use "
                             f"model.resolved(index) (or make_model(..., index=index))")

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        self._unresolved()

    def log_alpha(self, doc_len, doc_unique):
        self._unresolved()


class SPUD(SmoothingModel):
    """SPUD: the smoothed Pólya-urn (Dirichlet-compound-multinomial) document model
    (Cummins, Paik & Lv, ACM TOIS 2015, "A Pólya urn document language model for
    improved information retrieval"), their SPUD_dir retrieval function.

    Under a Pólya urn a document's |d| tokens carry only about |d|_u (its number of
    distinct terms) independent draws of the topic: a repeated term reinforces itself.
    The document's DCM has mass |d|_u and expectation c/|d|; smoothing it with the
    background as a Dirichlet prior of mass μ' gives

        p(w|d) = (|d|_u · c/|d| + μ' p(w|C)) / (|d|_u + μ'),   μ' = m · ω / (1 − ω)

    so the matched weight is log(1 + |d|_u c / (|d| μ' p)) and α_d = μ'/(|d|_u + μ')
    (a distribution: it sums to 1). ω is the paper's parameter (0.8 "needs no
    tuning"); m is the background DCM's mass, estimated from the collection
    (:func:`retrieval.estimation.estimate_dcm_mass`: Elkan's EDCM fixed point
    m = Σ_d |d|_u / Σ_d [ψ(m + |d|) − ψ(m)]) when ``mass`` is not given — then the
    model is a specification fixed by :meth:`resolved`.

    Deviation from the paper, stated: its background is the DCM's expectation
    β_w = df_w / Σ_v df_v; here the background is p(w|C) (collection frequencies),
    because the engine's generic scoring passes p(w|C), not df, to every model.
    """

    name = "spud"
    params = ("omega", "mass")
    uses = ("doc_len", "doc_unique")
    monotone_in_count = True

    def __init__(self, omega: float = 0.8, mass: float | None = None):
        self.omega = omega
        self.mass = mass
        check_number("omega (ω)", omega, low=0.0, high=1.0, low_open=True, high_open=True,
                     hint="SPUD's background weight, e.g. 0.8")
        if mass is not None:
            check_number("mass", mass, low=0.0, low_open=True,
                         hint="the background DCM mass; leave it unset to estimate it")

    @property
    def needs_index(self) -> bool:  # type: ignore[override]
        return self.mass is None

    def label(self) -> str:
        if self.mass is None:
            return f"{self.name}(omega={self.omega:g})"
        return f"{self.name}(omega={self.omega:g},mass={self.mass:g})"

    def resolved(self, index) -> "SPUD":
        if self.mass is not None:
            return self
        from .estimation import cached_dcm_mass
        return SPUD(omega=self.omega, mass=cached_dcm_mass(index))

    def smoothing_mass(self) -> float:
        """μ' = m ω / (1 − ω)."""
        if self.mass is None:
            raise ParameterError(f"{self.label()} has no background mass yet: use "
                                 f"model.resolved(index) (or make_model(..., index=index))")
        w = float(self.omega)
        return float(self.mass) * w / (1.0 - w)

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        # in place on one temporary: this runs per posting on the search paths
        x = np.multiply(counts, doc_unique, dtype=np.float64)
        x /= doc_len
        scale = self.smoothing_mass() * np.asarray(p_coll, dtype=np.float64)
        if scale.ndim == 0 or scale.shape == x.shape:
            x /= scale
        else:
            x = x / scale
        return np.log1p(x, out=x) if x.ndim else np.log1p(x)

    def log_alpha(self, doc_len, doc_unique):
        mu = self.smoothing_mass()
        return np.log(mu / (np.asarray(doc_unique, dtype=np.float64) + mu))


class LengthPrior(SmoothingModel):
    """Any model with a document-length prior (Kraaij, Westerveld & Hiemstra, SIGIR 2002;
    Losada & Azzopardi, Inf. Retr. 2008): the posterior log p(d|q) adds log p(d) to the
    document's score, and with p(d) ∝ |d|^β that is β·log|d|, one per-document constant:

        s(q,d) = Σ_w p(w|θ_q) log p(w|θ_d) + M·β·log|d|,   M = Σ_w p(w|θ_q)

    so it is folded into the document term: log α'_d = log α_d + β·log|d| (the base
    model's matched weights unchanged), which every search path, the pruning bounds
    (maxima of m_w(d) + log α'_d) and the compiled paths read from
    ``SearchTables.log_alpha`` as they are. Units, stated: the prior is per unit of
    query mass (M = 1 for a text query's maximum-likelihood model), i.e. it is β·|q|·
    log|d| against the query *likelihood* log p(q|d) = |q|·(the score above); β = 1 is
    not Kraaij's linear prior on short queries. β > 0 favours long documents. An empty
    document gets no prior (log|d| taken as 0, like α_d = 1). :meth:`log_prob` is the
    base model's (a distribution), :meth:`log_prior` the added term.
    """

    name = "length-prior"
    params = ("base", "beta")

    def __init__(self, base: SmoothingModel, beta: float = 0.0):
        self.base = base
        self.beta = beta
        if not isinstance(base, SmoothingModel) or isinstance(base, LengthPrior):
            raise ParameterError(f"base must be a smoothing model such as "
                                 f"Dirichlet(mu=1000) (without a prior), got {base!r}")
        check_number("beta (β)", beta, hint="the length prior's exponent, e.g. 0.1; "
                                            "0 is no prior")

    uses = property(lambda self: self.base.uses)  # type: ignore[assignment]
    monotone_in_count = property(lambda self: self.base.monotone_in_count)  # type: ignore
    needs_index = property(lambda self: self.base.needs_index)  # type: ignore

    def resolved(self, index) -> "LengthPrior":
        base = self.base.resolved(index)
        return self if base is self.base else LengthPrior(base, self.beta)

    def label(self) -> str:
        return f"{self.base.label()}+prior(beta={self.beta:g})"

    def matched_weight(self, counts, doc_len, doc_unique, p_coll):
        return self.base.matched_weight(counts, doc_len, doc_unique, p_coll)

    def log_prior(self, doc_len) -> np.ndarray:
        """β·log|d| (0 for an empty document)."""
        return float(self.beta) * np.log(np.maximum(_lengths(doc_len), 1.0))

    def log_alpha(self, doc_len, doc_unique):
        return self.base.log_alpha(doc_len, doc_unique) + self.log_prior(doc_len)

    def log_prob(self, counts, doc_len, doc_unique, p_coll):
        return self.base.log_prob(counts, doc_len, doc_unique, p_coll)


def with_length_prior(model: SmoothingModel, beta: float | None) -> SmoothingModel:
    """``model`` with the length prior β·log|d| (:class:`LengthPrior`); itself when
    ``beta`` is None or 0."""
    if beta is None or (not isinstance(beta, bool) and beta == 0):
        return model
    return LengthPrior(model, beta)


MODELS: dict[str, type[SmoothingModel]] = {
    "dirichlet": Dirichlet,
    "jm": JelinekMercer,
    "ad": AbsoluteDiscount,
    "two-stage": TwoStage,
    "dir+": DirichletPlus,
    "dirichlet-avgdl": DirichletAvgLen,
    "spud": SPUD,
}


#: the default ranking model and its parameters, chosen by leave-one-collection-out
#: (scripts/choose_defaults.py; recorded in results/defaults/defaults.json, which
#: tests/test_defaults.py checks against these): SPUD at the paper's ω = 0.8 had the best
#: mean held-out MAP of the eight model families (0.3078; Dirichlet μ=500: 0.3066,
#: μ=1000 was the previous default)
DEFAULT_MODEL = "spud"
DEFAULT_PARAMS: dict = {"omega": 0.8}


def model_name_for(name: str | None, given_params) -> str:
    """The model a command line means: ``name`` when given; else the default model,
    unless parameters it does not take are given without ``--model``: then Dirichlet,
    so ``--mu 500`` keeps the meaning it had before the default changed."""
    if name is not None:
        return name
    given = set(given_params)
    return DEFAULT_MODEL if given <= set(MODELS[DEFAULT_MODEL].params) else "dirichlet"


def default_model(index=None) -> SmoothingModel:
    """The default ranking model (resolved for ``index`` when given)."""
    return make_model(DEFAULT_MODEL, index=index, **DEFAULT_PARAMS)


def make_model(name: str, index=None, **params) -> SmoothingModel:
    """The smoothing model called ``name`` with ``params`` (unset ones take defaults);
    with ``index``, resolved for it (:meth:`SmoothingModel.resolved`)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown model {name!r}; choose one of "
                             f"{', '.join(MODELS)}") from None
    unknown = set(params) - set(cls.params)
    if unknown:
        raise ParameterError(f"model {name!r} takes {', '.join(cls.params)}, not "
                             f"{', '.join(sorted(unknown))}")
    model = cls(**{k: v for k, v in params.items() if v is not None})
    return model.resolved(index) if index is not None else model
