"""Pseudo-relevance feedback: updating the query model from a first pass's top documents.

Every method runs a first pass with the searcher, takes the top ``fb_docs`` documents
F of each query, estimates a feedback model from them and returns an updated
:class:`~retrieval.search.QueryModel`, which the same searcher then ranks with (the
KL-divergence model scores any query model; the document term is multiplied by the
model's total mass, so a truncated model needs no renormalisation).

Methods (``FEEDBACK``, :func:`make_feedback`):

``none``
    The query model unchanged.

``mixture`` — model-based feedback, generative mixture (Zhai & Lafferty, CIKM 2001)
    The feedback documents are assumed drawn from (1−λ)·θ_F + λ·p(·|C). θ_F maximises
    Σ_w c(w,F) log[(1−λ) p(w|θ_F) + λ p(w|C)], c(w,F) = Σ_{d∈F} c(w,d), found by EM:

        t(w)       = (1−λ) p(w|θ_F) / ((1−λ) p(w|θ_F) + λ p(w|C))
        p(w|θ_F)  ← c(w,F) t(w) / Σ_w' c(w',F) t(w')

    started from the uniform model over the terms of F (reproducible), stopped for a
    query when the relative change of its log-likelihood falls below ``fb_tol`` or
    after ``fb_iterations`` iterations. θ_F lives on the terms of F and sums to 1.

``divmin`` — divergence minimisation (same paper, closed form)
    θ_F minimises (1/|F|) Σ_{d∈F} D(θ_F‖θ_d) − λ D(θ_F‖θ_C), whose solution is

        p(w|θ_F) ∝ exp( 1/(1−λ) · (1/|F|) Σ_{d∈F} log p(w|θ_d) − λ/(1−λ) · log p(w|C) )

    with θ_d the searcher's own smoothed document models (an unsmoothed θ_d would give
    log 0). Writing log p(w|θ_d) = log α_d + log p(w|C) + [w∈d]·(matched-term weight),
    this is p(w|θ_F) ∝ p(w|C) · exp(m̄(w)/(1−λ)), m̄(w) = (1/|F|) Σ_{d∈F, w∈d} weight(w,d):
    a term in no feedback document keeps its collection probability. The model is
    normalised over the whole vocabulary (exactly: the terms outside F contribute
    1 − Σ_{w∈F} p(w|C) to the normaliser), so it sums to 1; only terms of F can be
    among the top terms.

    For both: θ_q' = (1−α)·θ_q + α·θ_F^(k), where θ_F^(k) keeps the ``fb_terms`` most
    probable terms of θ_F with probability ≥ ``fb_threshold`` **without renormalising**
    (as in Lemur); the original query terms are always kept. At most 50 EM iterations
    (Lemur's cap); no probability threshold (``fb_threshold=0``); EM stops earlier when
    the log-likelihood changes by less than ``fb_tol`` = 1e-6 of itself (θ_F is then
    within about 1e-3 of the 50-iteration model; the likelihood is flat at its maximum).
    Defaults (chosen by leave-one-collection-out, see below): mixture 10 documents, 20
    terms, α = 0.3, λ = 0.9; divmin 5 documents, 20 terms, α = 0.5, λ = 0.3. Lemur's own
    defaults are 10 documents, 50 terms, α = 0.5, λ = 0.5.

``rm3`` — relevance model, interpolated (Lavrenko & Croft 2001; Indri/Anserini "RM3")
    P(w|R) = Σ_{D∈F} P(w|D) · P(D|Q), with P(D|Q) = P(Q|D) / Σ_{D'∈F} P(Q|D') the
    first-pass query likelihoods normalised as posteriors over F (uniform prior).
    P(Q|D) = Π_w p(w|D)^c(w,q) = exp(|q| · score(q, D)), the first-pass score being the
    cross-entropy Σ_w p(w|θ_q) log p(w|D) under the searcher's smoothing; for a query
    given as a QueryModel the weights are taken as the counts (exp(Σ_w weight·log p)).
    The ``fb_terms`` most probable terms are kept and **renormalised** to sum to 1 (as
    Indri's and Anserini's RM3 do), then θ_q' = w·θ_q + (1−w)·P(·|R), w =
    ``fb_orig_weight``. Defaults (chosen by leave-one-collection-out, see below): 20
    documents, 50 terms, original weight 0.3, no document-frequency cut
    (``fb_max_df=1``; 0.1 is the cut Anserini's RM3 applies). Indri's and
    Anserini's defaults are 10 documents, 10 terms, original weight 0.5:
    ``RM3Feedback(fb_docs=10, fb_terms=10, fb_orig_weight=0.5, fb_max_df=1.0)`` (Indri
    has no document-frequency cut; Anserini's is ``fb_max_df=0.1``).

    P(w|D) in the relevance model is the **maximum-likelihood** estimate c(w,D)/|D| by
    default (``fb_mu=0``, like Indri's default ``fbMu=0``; Anserini uses normalised
    term frequencies too). Reason: with Dirichlet smoothing at retrieval-scale μ (≈1000)
    and short documents (35–150 tokens in the shared collections) a smoothed P(w|D) is
    mostly the collection model, and the relevance model would drift towards frequent
    collection terms. ``fb_mu > 0`` gives the Dirichlet-smoothed (c + μ p(w|C))/(|D| + μ)
    instead (exactly, including the terms of no feedback document).

    ``fb_doc_weights`` = ``"likelihood"`` (default, P(Q|D) as above), ``"geometric"``
    (P(Q|D)^(1/|q|) = exp(score), what Indri's exp(#combine score) amounts to) or
    ``"uniform"``; ``fb_max_df`` leaves out of P(·|R) the terms that occur in more than
    that fraction of the documents (1 keeps every term).

How the defaults were chosen: by leave one collection out over the five shared
collections (``scripts/choose_defaults.py``, report in ``results/defaults/``), on top of
the default ranking model: a configuration is chosen on four collections (NFCorpus
represented by its train+dev queries, never its test queries) and scored on the fifth.
The rule favours safety: among the grid's configurations that are ≥ no feedback on every
one of the four, the best mean MAP (the first in grid order within 0.001). The shipped
defaults are that rule applied to all five; ``tests/test_defaults.py`` checks they equal
the record. (They replace the earlier choice on NFCorpus alone,
``scripts/choose_feedback_defaults.py``, which did not carry over to other collections:
its RM3 was below no feedback on four held-out collections of five.)

Vectorisation: one batch first pass for all queries; the forward (document-major) rows
of every (query, feedback document) pair are gathered with one fancy index; per-(query,
term) sums are ``numpy.bincount``/``reduceat`` over sorted keys; EM iterates on one flat
array holding every query's feedback term set (converged queries leave the working
set); truncation is one fast float sort plus an exact sort of the few survivors; the
interpolation merges all queries' terms with one ``numpy.unique``. Python loops run
only over queries, to build the :class:`QueryModel` objects. When the searcher uses the
compiled kernels (``Searcher(compiled=...)``), RM3 with ``fb_mu=0`` skips the gather and
the sorts: :func:`retrieval.search.kernels.relevance_top_terms` accumulates P(w|R) straight
from the feedback documents' rows into a dense scratch array and keeps each query's top
terms (a min-heap of the ``fb_terms`` largest values sets a threshold; only the terms at
or above it are sorted), adding the same numbers in the same order as the numpy path,
so the expanded queries are bit-identical (tested). For the other methods the feedback
set itself is built by :func:`retrieval.search.kernels.feedback_rows`, which lists each
query's distinct terms from a bit set in term order instead of sorting all keys; its
arrays equal the numpy path's (tested).

Ties: terms with equal feedback probability are ordered by term (string order), so the
expanded models are the same on every run.

Layout: this module holds the methods and their registry; :mod:`.cores` the numerical
cores (EM of the mixture model, the divergence-minimisation closed form) and
:mod:`.sets` the feedback sets and the kernels' scratch arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..params import Parameters
from ..errors import ParameterError, check_number
from ..lookup import gather_strings
from ..records import Query, ScoredDoc
from ..results import QueryResults, columnar
from ..search import BatchResult, QueryBatch, QueryModel, Searcher
from ..search import check_k as _check_k
from ..search.compiled import FeedbackRows, RelevanceScratch, TopTerms
from .cores import divmin_model, group_bounds, mixture_em
from .sets import FeedbackSet, feedback_set, first_pass, term_scratch

_Batch = QueryBatch   # the searcher's prepared queries

#: RM3 document weights: P(Q|D) (Lavrenko & Croft), P(Q|D)^(1/|q|) (what Indri's
#: exp(#combine score) gives), or equal weights
DOC_WEIGHTS = ("likelihood", "geometric", "uniform")


# ---------------------------------------------------------------------------------------
# methods

class Feedback(Parameters):
    """Base class: parameters are stored untouched and validated in ``__init__``."""

    name = ""
    params: tuple[str, ...] = ()

    def label(self) -> str:
        """Short text like ``rm3(fb_docs=10,fb_terms=10,fb_orig_weight=0.5)``."""
        if not self.params:
            return self.name
        args = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in self.get_params().items())
        return f"{self.name}({args})"

    def expanded(self, searcher: Searcher, queries: Sequence[str | QueryModel]) -> _Batch:
        """The updated query models of all queries as the searcher's prepared arrays
        (term ids and weights; no strings), computed together."""
        raise NotImplementedError

    def expand(self, searcher: Searcher, queries: Sequence[str | QueryModel]
               ) -> list[QueryModel]:
        """The updated query model of every query (all queries computed together)."""
        _check_searcher(searcher)
        return _models(searcher, self.expanded(searcher, _check_queries(queries)))

    def batch_search_arrays(self, searcher: Searcher, queries: Sequence[str | QueryModel],
                            k: int = 1000, *, jobs: int = 1) -> BatchResult:
        """Expand every query, then rank with the expanded models (flat arrays).

        The expanded models go from the feedback arrays to the second pass as term ids,
        never as strings: the ranking equals :meth:`Searcher.batch_search_arrays` of
        :meth:`expand`'s models. ``jobs`` > 1 runs the second pass in parallel, as
        :meth:`Searcher.batch_search_arrays` does.
        """
        _check_searcher(searcher)
        queries = _check_queries(queries)
        if jobs != 1:
            return searcher.batch_search_arrays(self.expand(searcher, queries), k, jobs=jobs)
        return searcher.rank(self.expanded(searcher, queries), _check_k(k))

    def search(self, searcher: Searcher, query: str | QueryModel, k: int = 10
               ) -> QueryResults:
        """The top ``k`` documents for one query after feedback, best first, as
        :meth:`Searcher.search` gives them (the ranking of :meth:`batch_search_arrays`)."""
        return columnar(self.batch_search_arrays(searcher, [query], k), searcher.index, 1)[0]

    def run(self, searcher: Searcher, queries: Iterable[Query], k: int = 1000
            ) -> list[ScoredDoc]:
        """A TREC-style run of the expanded queries, like :meth:`Searcher.run`."""
        queries = list(queries)
        res = self.batch_search_arrays(searcher, [q.text for q in queries], k)
        ids = searcher.index.docids.many(res.doc_numbers)
        starts = np.searchsorted(res.query_index, res.query_index, side="left")
        ranks = (np.arange(len(res.query_index)) - starts + 1).tolist()
        qids = [queries[i].qid for i in res.query_index.tolist()]
        return [ScoredDoc(q, d, s, r)
                for q, d, s, r in zip(qids, ids, res.scores.tolist(), ranks)]


def _check_searcher(searcher) -> None:
    if not isinstance(searcher, Searcher):
        raise ParameterError(f"searcher must be a retrieval.search.Searcher, got "
                             f"{type(searcher).__name__}")


def _check_queries(queries) -> list:
    if isinstance(queries, (str, QueryModel)):
        raise ParameterError("queries must be a sequence of queries (text or QueryModel), "
                             "not a single query; wrap it in a list")
    return list(queries)


def _check_docs(value) -> int:
    return check_number("fb_docs", value, low=1, integer=True,
                        hint="the number of top documents of the first pass to learn "
                             "from, e.g. 10")


def _check_terms(value) -> int:
    return check_number("fb_terms", value, low=1, integer=True,
                        hint="the number of feedback terms to keep, e.g. 50")


def _truncate(key_query: np.ndarray, key_term: np.ndarray, prob: np.ndarray,
              fb_terms: int, threshold: float):
    """Keep each query's ``fb_terms`` most probable terms with prob ≥ threshold (> 0).

    The input is sorted by (query, term id); the output is sorted by query, then
    probability descending, equal probabilities by term id = term string order.

    Exact, in two steps: a fast unstable sort on the float key ``s·query − prob`` (s >
    max prob, so queries stay apart) finds each query's ``fb_terms``-th probability up
    to the key's rounding error δ; every entry at least that large minus δ is kept (a
    superset of the top terms and their ties), and only those few are sorted exactly.
    """
    keep = prob >= threshold if threshold > 0 else prob > 0
    q, t, p = key_query[keep], key_term[keep], prob[keep]
    if len(q):
        n_groups = int(q[-1]) + 1
        bounds = np.searchsorted(q, np.arange(n_groups + 1))
        sizes = np.diff(bounds)
        big = np.flatnonzero(sizes > fb_terms)
        if len(big):
            scale = 2.0 + float(p.max())
            approx = p[np.argsort(q * scale - p)]  # groups stay in place: q is sorted
            delta = 8.0 * np.finfo(np.float64).eps * scale * n_groups
            cut = np.full(n_groups, -np.inf)
            cut[big] = approx[bounds[big] + fb_terms - 1] - delta
            sel = p >= cut[q]
            q, t, p = q[sel], t[sel], p[sel]
    order = np.lexsort((t, -p, q))
    q, t, p = q[order], t[order], p[order]
    first = np.searchsorted(q, q, side="left")
    keep = (np.arange(len(q)) - first) < fb_terms
    return q[keep], t[keep], p[keep]


def _term_strings(index, ids: np.ndarray) -> list[str]:
    """The vocabulary strings of ``ids`` (each distinct id decoded once)."""
    uniq, inv = np.unique(ids, return_inverse=True)
    strings = gather_strings(index.arrays["vocab_offsets"], index.arrays["vocab_bytes"], uniq)
    return [strings[i] for i in inv.tolist()]


def _interpolate(searcher: Searcher, batch: _Batch, q: np.ndarray, t: np.ndarray,
                 p: np.ndarray, orig_weight: float) -> _Batch:
    """θ' = orig_weight·θ_q + (1 − orig_weight)·(the given feedback entries), all queries
    merged at once (one ``numpy.unique`` over (query, term) keys); terms with weight 0
    are left out. Original terms absent from the index (kept under the indri rule) keep
    orig_weight times their weight. A query with no feedback entry (no feedback
    document, or every candidate term cut by ``fb_max_df``) keeps θ_q unchanged, so its
    scores are those of the first pass rather than a fraction of them."""
    n = len(batch)
    nt = np.int64(max(searcher.index.num_terms, 1))
    orig_q = np.repeat(np.arange(n, dtype=np.int64), np.diff(batch.ptr))
    own = np.where(np.bincount(q, minlength=n) > 0, orig_weight, 1.0)
    keys = np.concatenate([orig_q * nt + batch.term_ids, q * nt + t])
    vals = np.concatenate([own[orig_q] * batch.weights, (1.0 - orig_weight) * p])
    ukeys, inv = np.unique(keys, return_inverse=True)
    weights = np.bincount(inv, weights=vals, minlength=len(ukeys))
    pos = weights > 0
    ukeys, weights = ukeys[pos], weights[pos]
    unknown = tuple(tuple((term, own[j] * w) for term, w in unk if own[j] * w > 0)
                    for j, unk in enumerate(batch.unknown))
    return searcher.batch_from_arrays(n, ukeys // nt, ukeys % nt, weights,
                                      unknown=unknown)


def _models(searcher: Searcher, batch: _Batch) -> list[QueryModel]:
    """The :class:`QueryModel` of every query of a prepared batch (ids are in term string
    order, so each model's terms come out sorted; unknown terms are merged in)."""
    terms = _term_strings(searcher.index, batch.term_ids)
    wl = batch.weights.tolist()
    bounds = batch.ptr.tolist()
    out = []
    for j in range(len(batch)):
        s, e = bounds[j], bounds[j + 1]
        if batch.unknown[j]:
            merged = dict(zip(terms[s:e], wl[s:e]))
            merged.update(batch.unknown[j])
            out.append(QueryModel.from_weights(merged))
        else:
            out.append(QueryModel(tuple(terms[s:e]), tuple(wl[s:e])))
    return out


class NoFeedback(Feedback):
    """The query model unchanged (``--feedback none``)."""

    name = "none"
    params = ()

    def expanded(self, searcher, queries):
        return searcher.prepare(queries)


class _ModelBased(Feedback):
    """Shared parts of the Zhai & Lafferty methods: θ_q' = (1−α)θ_q + α θ_F^(k)."""

    def _check_common(self):
        _check_docs(self.fb_docs)
        _check_terms(self.fb_terms)
        check_number("fb_alpha (α)", self.fb_alpha, low=0.0, high=1.0,
                     hint="α is the weight of the feedback model in the new query model, "
                          "e.g. 0.5")
        check_number("fb_lambda (λ)", self.fb_lambda, low=0.0, high=1.0, high_open=True,
                     hint="λ is the weight of the collection (noise) model, e.g. 0.5")
        check_number("fb_threshold", self.fb_threshold, low=0.0, high=1.0, high_open=True,
                     hint="feedback terms below this probability are dropped; 0 keeps "
                          "the top fb_terms")

    def feedback_model(self, searcher: Searcher, queries: Sequence[str | QueryModel]
                       ) -> tuple[FeedbackSet, np.ndarray]:
        """The feedback set and p(w|θ_F) for each of its (query, term) keys."""
        raise NotImplementedError

    def expanded(self, searcher, queries):
        if float(self.fb_alpha) == 0.0:
            return searcher.prepare(queries)
        fs, prob = self.feedback_model(searcher, queries)
        q, t, p = _truncate(fs.key_query, fs.key_term, prob, int(self.fb_terms),
                            float(self.fb_threshold))
        return _interpolate(searcher, fs.batch, q, t, p, 1.0 - float(self.fb_alpha))


class MixtureFeedback(_ModelBased):
    """Model-based feedback with the generative mixture model (EM); see the module doc.

    Parameters: ``fb_docs`` (10), ``fb_terms`` (20), ``fb_alpha`` α (0.3),
    ``fb_lambda`` λ collection-noise weight (0.9), ``fb_iterations`` EM cap (50),
    ``fb_tol`` relative log-likelihood change that stops EM (1e-6), ``fb_threshold``
    minimum probability of a kept term (0).
    """

    name = "mixture"
    params = ("fb_docs", "fb_terms", "fb_alpha", "fb_lambda", "fb_iterations", "fb_tol",
              "fb_threshold")

    def __init__(self, fb_docs: int = 10, fb_terms: int = 20, fb_alpha: float = 0.3,
                 fb_lambda: float = 0.9, fb_iterations: int = 50, fb_tol: float = 1e-6,
                 fb_threshold: float = 0.0):
        self.fb_docs = fb_docs
        self.fb_terms = fb_terms
        self.fb_alpha = fb_alpha
        self.fb_lambda = fb_lambda
        self.fb_iterations = fb_iterations
        self.fb_tol = fb_tol
        self.fb_threshold = fb_threshold
        self._check_common()
        check_number("fb_iterations", fb_iterations, low=1, integer=True,
                     hint="the cap on EM iterations, e.g. 50")
        check_number("fb_tol", fb_tol, low=0.0,
                     hint="EM stops when the log-likelihood changes by less than this "
                          "fraction, e.g. 1e-6")

    def feedback_model(self, searcher, queries):
        fs = feedback_set(searcher, queries, int(self.fb_docs))
        p_c = searcher.index.p_collection[fs.key_term]
        prob, self.iterations_ = mixture_em(fs.key_query, fs.key_count, p_c, len(queries),
                                            float(self.fb_lambda), int(self.fb_iterations),
                                            float(self.fb_tol))
        return fs, prob


class DivMinFeedback(_ModelBased):
    """Model-based feedback by divergence minimisation (closed form); see the module doc.

    Parameters: ``fb_docs`` (5), ``fb_terms`` (20), ``fb_alpha`` α (0.5), ``fb_lambda``
    λ (0.3), ``fb_threshold`` (0). θ_d are the searcher's smoothed document models.
    """

    name = "divmin"
    params = ("fb_docs", "fb_terms", "fb_alpha", "fb_lambda", "fb_threshold")

    def __init__(self, fb_docs: int = 5, fb_terms: int = 20, fb_alpha: float = 0.5,
                 fb_lambda: float = 0.3, fb_threshold: float = 0.0):
        self.fb_docs = fb_docs
        self.fb_terms = fb_terms
        self.fb_alpha = fb_alpha
        self.fb_lambda = fb_lambda
        self.fb_threshold = fb_threshold
        self._check_common()

    def feedback_model(self, searcher, queries):
        fs = feedback_set(searcher, queries, int(self.fb_docs))
        index = searcher.index
        n = len(queries)
        p_c_all = index.p_collection
        docs = fs.pair_doc[fs.row_pair]
        terms = fs.key_term[fs.row_key]
        mw = searcher.model_.matched_weight(
            fs.row_count, np.asarray(index.arrays["doc_lengths"])[docs],
            np.asarray(index.arrays["doc_unique"])[docs], p_c_all[terms])
        n_docs = np.bincount(fs.pair_query, minlength=n).astype(np.float64)
        mean_w = np.bincount(fs.row_key, weights=mw, minlength=len(fs.key_term)) / \
            np.maximum(n_docs[fs.key_query], 1.0)
        p_c = p_c_all[fs.key_term]
        inside = np.bincount(fs.key_query, weights=p_c, minlength=n)
        outside = np.clip(1.0 - inside, 0.0, None)
        prob = divmin_model(fs.key_query, mean_w, p_c, outside, float(self.fb_lambda))
        return fs, prob


class RM3Feedback(Feedback):
    """RM3: the relevance model interpolated with the original query; see the module doc.

    Parameters: ``fb_docs`` (20), ``fb_terms`` (50), ``fb_orig_weight`` (0.3),
    ``fb_mu`` μ of P(w|D) (0: maximum likelihood), ``fb_doc_weights`` ("likelihood":
    P(Q|D) posteriors; "geometric"; "uniform"), ``fb_max_df`` (1: every term may be a
    feedback term; 0.1: terms in more than 10% of the documents are not).
    """

    name = "rm3"
    params = ("fb_docs", "fb_terms", "fb_orig_weight", "fb_mu", "fb_doc_weights",
              "fb_max_df")

    def __init__(self, fb_docs: int = 20, fb_terms: int = 50, fb_orig_weight: float = 0.3,
                 fb_mu: float = 0.0, fb_doc_weights: str = "likelihood",
                 fb_max_df: float = 1.0):
        self.fb_docs = fb_docs
        self.fb_terms = fb_terms
        self.fb_orig_weight = fb_orig_weight
        self.fb_mu = fb_mu
        self.fb_doc_weights = fb_doc_weights
        self.fb_max_df = fb_max_df
        if fb_doc_weights not in DOC_WEIGHTS:
            raise ParameterError(f"fb_doc_weights must be one of {', '.join(DOC_WEIGHTS)}, "
                                 f"got {fb_doc_weights!r}")
        check_number("fb_max_df", fb_max_df, low=0.0, high=1.0, low_open=True,
                     hint="terms in more than this fraction of the documents are not "
                          "feedback terms; 1 keeps all")
        _check_docs(fb_docs)
        _check_terms(fb_terms)
        check_number("fb_orig_weight", fb_orig_weight, low=0.0, high=1.0,
                     hint="the weight of the original query in the new model, e.g. 0.5")
        check_number("fb_mu", fb_mu, low=0.0,
                     hint="0 uses maximum-likelihood P(w|D); a positive μ smooths it "
                          "with the collection model")

    def relevance_model(self, searcher: Searcher, queries: Sequence[str | QueryModel],
                        first: tuple[_Batch, BatchResult] | None = None
                        ) -> tuple[FeedbackSet, np.ndarray, np.ndarray, np.ndarray]:
        """(feedback set, query, term, P(w|R)) for every candidate (query, term)."""
        fs = feedback_set(searcher, queries, int(self.fb_docs), first)
        index = searcher.index
        n = len(queries)
        w, denom = self._doc_weights(index, fs.batch.length, fs.pair_query, fs.pair_doc,
                                     fs.pair_score)
        mu = float(self.fb_mu)
        prob = np.bincount(fs.row_key, weights=w[fs.row_pair] * fs.row_count /
                           denom[fs.row_pair], minlength=len(fs.key_term))
        q, t = fs.key_query, fs.key_term
        if mu > 0:
            # every term gets β_q·p(w|C), β_q = Σ_D P(D|Q) μ/(|D|+μ); outside F only the
            # fb_terms most frequent terms *of those that may be feedback terms* (the
            # fb_max_df cut) can reach the top fb_terms: any other term outside F has
            # fb_terms candidates at least as probable and earlier in term order (ties
            # by term id, as _truncate breaks them). Taking them before the cut (as
            # before this fix) lost every outside term once the cut removed the most
            # frequent ones.
            beta = np.bincount(fs.pair_query, weights=w * mu / denom, minlength=n)
            order = np.argsort(-index.p_collection, kind="stable")
            ok = self._term_ok(index)
            if ok is not None:
                order = order[ok[order]]
            frequent = order[:min(int(self.fb_terms), len(order))]
            k = len(frequent)
            has = np.flatnonzero(np.bincount(fs.pair_query, minlength=n) > 0)
            extra_q = np.repeat(has, k)
            extra_t = np.tile(frequent, len(has))
            nt = np.int64(max(index.num_terms, 1))
            keys = np.concatenate([q * nt + t, extra_q * nt + extra_t])
            vals = np.concatenate([prob, np.zeros(len(extra_q))])
            ukeys, inv = np.unique(keys, return_inverse=True)
            prob = np.bincount(inv, weights=vals, minlength=len(ukeys))
            q, t = ukeys // nt, ukeys % nt
            prob = prob + beta[q] * index.p_collection[t]
        return fs, q, t, prob

    def _doc_weights(self, index, qlen: np.ndarray, pair_query: np.ndarray,
                     pair_doc: np.ndarray, pair_score: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Per (query, feedback document): the posterior P(D|Q) ∝ exp(|q|·score) (or the
        chosen weights), and |D| + fb_mu."""
        n = len(qlen)
        if self.fb_doc_weights != "likelihood":
            qlen = np.full(n, 1.0 if self.fb_doc_weights == "geometric" else 0.0)
        loglik = qlen[pair_query] * pair_score
        bounds = group_bounds(pair_query, n)
        nonempty = bounds[1:] > bounds[:-1]
        top = np.zeros(n)
        if len(loglik):
            top[nonempty] = np.maximum.reduceat(loglik, bounds[:-1][nonempty])
        w = np.exp(loglik - top[pair_query])
        w /= np.bincount(pair_query, weights=w, minlength=n)[pair_query]
        dl = np.asarray(index.arrays["doc_lengths"], dtype=np.float64)[pair_doc]
        return w, dl + float(self.fb_mu)

    def _term_ok(self, index) -> np.ndarray | None:
        """Which terms may be feedback terms under ``fb_max_df`` (None: all)."""
        if float(self.fb_max_df) >= 1.0:
            return None
        return np.asarray(index.arrays["term_df"]) <= float(self.fb_max_df) * index.collection_documents

    def _expanded_compiled(self, searcher, batch: _Batch, res: BatchResult, kernels
                           ) -> _Batch:
        """:meth:`expanded` by the compiled kernel: the relevance model is accumulated
        straight from the feedback documents' rows, with no (query, term) gather or
        sort; bit-identical to the numpy path (fb_mu = 0 only)."""
        index = searcher.index
        n = len(batch)
        w, denom = self._doc_weights(index, batch.length, res.query_index, res.doc_numbers,
                                     res.scores)
        pair_ptr = group_bounds(res.query_index, n).astype(np.int64)
        n_terms = max(index.num_terms, 1)
        ok = self._term_ok(index)
        term_ok = np.ones(n_terms, dtype=np.bool_) if ok is None else ok
        fb_terms = int(self.fb_terms)
        fwd_ptr = np.asarray(index.arrays["forward_indptr"])
        docs = np.asarray(res.doc_numbers, dtype=np.int64)
        rows = int((fwd_ptr[docs + 1] - fwd_ptr[docs]).sum())  # ≥ the terms kept
        out_ptr = np.zeros(n + 1, dtype=np.int64)
        out_terms = np.empty(min(n * fb_terms, rows), dtype=np.int64)
        out_prob = np.empty(len(out_terms), dtype=np.float64)
        scratch = term_scratch(searcher)
        used = kernels.relevance_top_terms(
            FeedbackRows(pair_ptr, docs, fwd_ptr, np.asarray(index.arrays["forward_terms"]),
                         np.asarray(index.arrays["forward_counts"])),
            w, denom, term_ok, fb_terms,
            RelevanceScratch(scratch.acc, scratch.mark, scratch.ids, scratch.values,
                             scratch.spare),
            TopTerms(out_ptr, out_terms, out_prob))
        q = np.repeat(np.arange(n, dtype=np.int64), np.diff(out_ptr))
        return _interpolate(searcher, batch, q, out_terms[:used], out_prob[:used],
                            float(self.fb_orig_weight))

    def expanded(self, searcher, queries):
        orig = float(self.fb_orig_weight)
        if orig == 1.0:
            return searcher.prepare(queries)
        first = first_pass(searcher, queries, int(self.fb_docs))
        kernels = searcher.kernels()
        if kernels is not None and float(self.fb_mu) == 0.0:
            return self._expanded_compiled(searcher, *first, kernels)
        fs, q, t, prob = self.relevance_model(searcher, queries, first)
        ok = self._term_ok(searcher.index)
        if ok is not None:
            keep = ok[t]
            q, t, prob = q[keep], t[keep], prob[keep]
        q, t, p = _truncate(q, t, prob, int(self.fb_terms), 0.0)
        if len(q):
            total = np.bincount(q, weights=p, minlength=len(queries))
            p = p / total[q]
        return _interpolate(searcher, fs.batch, q, t, p, orig)


FEEDBACK: dict[str, type[Feedback]] = {
    "none": NoFeedback,
    "mixture": MixtureFeedback,
    "divmin": DivMinFeedback,
    "rm3": RM3Feedback,
}


#: feedback applied when none is asked for, chosen by leave-one-collection-out
#: (scripts/choose_defaults.py): RM3 at its defaults was ≥ no feedback on each of the
#: five shared collections when that collection was held out
DEFAULT_FEEDBACK = "rm3"


def default_params(name: str) -> dict:
    """The default parameters of the feedback method ``name``."""
    return make_feedback(name).get_params()


def make_feedback(name: str, **params) -> Feedback:
    """The feedback method called ``name`` with ``params`` (None or unset → default)."""
    try:
        cls = FEEDBACK[name]
    except (KeyError, TypeError):
        raise ParameterError(f"unknown feedback method {name!r}; choose one of "
                             f"{', '.join(FEEDBACK)}") from None
    unknown = set(params) - set(cls.params)
    if unknown:
        takes = ", ".join(cls.params) if cls.params else "no parameters"
        raise ParameterError(f"feedback {name!r} takes {takes}, not "
                             f"{', '.join(sorted(unknown))}")
    return cls(**{k: v for k, v in params.items() if v is not None})
