"""Ranking with fields: a mixture of field language models (:class:`FieldSearcher`).

Model (Ogilvie & Callan 2003, "Combining document representations for known-item
search"): each field f of a document d (``title``, ``name``, ``body``; see
:mod:`retrieval.fields`) has its own smoothed language model θ_{d,f}, smoothed with its
own field collection model p(w|C_f) = cf_f(w) / |C_f|; the document model is their
mixture with fixed weights λ_f (Σ_f λ_f = 1)::

    p(w|d) = Σ_f λ_f p_s(w|θ_{d,f})
    score(q, d) = Σ_w p(w|θ_q) · log p(w|d)                                   (nats)

With Dirichlet smoothing p_s(w|θ_{d,f}) = (c_f(w,d) + μ p(w|C_f)) / (|d_f| + μ); every
smoothing model of :mod:`retrieval.smoothing` applies per field (``log_prob``). A field
a document lacks (no title: |d_f| = 0) contributes λ_f p(w|C_f) (α = 1).

Why not the per-field-smoothed sparse form the body search uses: a term d lacks in every
field has p(w|d) = Σ_f λ_f α_{d,f} p(w|C_f), which depends on d through all the α_{d,f} at
once, so log p(w|d) does not split into a matched weight plus log α_d. This path
therefore scores the candidates directly, vectorised over (candidate, query term) pairs
(blocks of :data:`BLOCK` candidates; a Python loop per field and query term only).

Decisions:

* **Fixed weights, not PRMS.** PRMS (Kim, Xue & Croft 2009) sets per-term weights
  P(F_j|w) ∝ P(w|F_j) P(F_j) from the collection. Here the body holds the whole document
  (titles included), so P(body|w) dominates for nearly every term and PRMS mostly reduces
  to the body model; it was designed for many structured fields (products, e-mail).
  Fixed λ_f are simple, exact and chosen by measurement (``scripts/choose_field_weights.py``).
* **Candidates.** The documents holding at least one query term in a field whose weight
  is positive (as the body search's ``candidates="matching"``).
* **Unknown terms.** A query term with Σ_f λ_f p(w|C_f) = 0 (in no weighted field of
  the collection) is dropped, as the body search's ``unknown_terms="drop"``; otherwise its
  probability is positive in every document.
* **Ties.** Equal scores are ordered by document id ascending, as everywhere.

With weights ``body=1`` the scores equal the body search's to rounding (~1e-15), not
bit for bit; the CLI uses the body search unless ``--field-weights`` is given.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import ParameterError
from ..fields import DEFAULT_FIELD_WEIGHTS, FieldWeights
from ..index import Index
from ..index.fields import index_fields, sub_arrays
from ..index.layout import StringTable
from ..records import Query, ScoredDoc, SearchResult
from ..smoothing import Dirichlet, SmoothingModel, TwoStage
from .queries import QueryModel
from .ranking import top_k

#: candidates scored at once (a block holds BLOCK × query terms float64 per field)
BLOCK = 1 << 15


class FieldTable(NamedTuple):
    """One field's arrays for scoring: postings, lengths, p(w|C_f), vocabulary and its
    smoothing model."""
    name: str
    weight: float
    model: SmoothingModel
    postings_indptr: np.ndarray
    postings_docs: np.ndarray
    postings_counts: np.ndarray
    doc_lengths: np.ndarray
    doc_unique: np.ndarray
    term_cf: np.ndarray
    tokens: int
    vocabulary: StringTable

    @classmethod
    def of(cls, name: str, weight: float, model: SmoothingModel, arrays: dict
           ) -> "FieldTable":
        return cls(name, weight, model, arrays["postings_indptr"], arrays["postings_docs"],
                   arrays["postings_counts"], arrays["doc_lengths"], arrays["doc_unique"],
                   arrays["term_cf"], int(np.asarray(arrays["doc_lengths"]).sum()),
                   StringTable(arrays["vocab_offsets"], arrays["vocab_bytes"]))

    def term_id(self, term: str) -> int:
        """The field's id of ``term`` (-1 when the field's collection lacks it)."""
        i = bisect.bisect_left(self.vocabulary, term)
        return i if i < len(self.vocabulary) and self.vocabulary[i] == term else -1

    def p_collection(self, tid: int) -> float:
        return float(self.term_cf[tid]) / self.tokens if tid >= 0 and self.tokens else 0.0


def field_model(model: SmoothingModel, name: str, field_lengths, body_lengths
                ) -> SmoothingModel:
    """The smoothing model of field ``name`` derived from the body's ``model``.

    Dirichlet's μ is a pseudo-count, comparable to a document's length; a title of 8
    words smoothed with μ = 1000 is almost exactly the collection model, so the title
    field would add a near-constant and blur the body's differences (measured: every
    title weight > 0 lowered MAP on Cranfield, CISI and CACM with one μ, see
    ``results/fields/``). A field therefore gets μ_f = μ · mean|d_f| / mean|d| (means
    over documents; μ_f = μ when either mean is 0), the same prior weight relative to a
    typical field as μ to a typical body; two-stage smoothing scales its μ alike. Other
    models (Jelinek-Mercer, absolute discounting) are relative to the length already
    and apply unchanged. The body keeps ``model``.
    """
    if name == "body" or not isinstance(model, (Dirichlet, TwoStage)):
        return model
    mean_f = float(np.mean(field_lengths)) if len(field_lengths) else 0.0
    mean_b = float(np.mean(body_lengths)) if len(body_lengths) else 0.0
    scale = mean_f / mean_b if mean_f > 0 and mean_b > 0 else 1.0
    mu = max(float(model.mu) * scale, 1e-6)
    if isinstance(model, TwoStage):
        return TwoStage(mu=mu, lam=model.lam)
    return Dirichlet(mu=mu)


class FieldSearcher:
    """Ranks an index's documents by the mixture of field language models (module doc).

    Parameters
    ----------
    index : Index
        Weights on ``title``/``name`` need an index built with fields (folders are,
        by default; ``Index.build(..., fields=True)``).
    model : SmoothingModel, default ``Dirichlet(mu=1000)``
        Applied to each field with that field's collection model.
    field_weights : FieldWeights or mapping, default :data:`DEFAULT_FIELD_WEIGHTS`
        λ_f; normalised to sum 1.
    field_models : mapping of field name to SmoothingModel, optional
        A smoothing model per field; a field not named gets :func:`field_model`.

    Attributes
    ----------
    model_, weights_ : the smoothing model and the normalised weights in use.
    fields_ : the :class:`FieldTable` of every field with a positive weight.
    """

    def __init__(self, index: Index, model: SmoothingModel | None = None,
                 field_weights: FieldWeights | dict | None = None,
                 field_models: dict | None = None):
        self.index = index
        self.model = model
        self.field_weights = field_weights
        self.field_models = field_models
        if not isinstance(index, Index):
            raise ParameterError(f"index must be a retrieval.Index, got "
                                 f"{type(index).__name__}")
        if model is not None and not isinstance(model, SmoothingModel):
            raise ParameterError(f"model must be a smoothing model such as "
                                 f"Dirichlet(mu=1000), got {model!r}")
        self.model_ = model if model is not None else Dirichlet(mu=1000.0)
        self.weights_ = FieldWeights.of(field_weights if field_weights is not None
                                        else DEFAULT_FIELD_WEIGHTS)
        have = index_fields(index.manifest)
        tables = []
        for name, weight in self.weights_._asdict().items():
            if weight <= 0:
                continue
            if name == "body":
                arrays = index.arrays
            elif name in have:
                arrays = sub_arrays(index.arrays, name)
            else:
                raise ParameterError(f"the index has no {name!r} field (it was built "
                                     f"without fields); give {name}=0 in the field weights "
                                     f"or rebuild the index with fields")
            given = (field_models or {}).get(name)
            if given is not None and not isinstance(given, SmoothingModel):
                raise ParameterError(f"field_models[{name!r}] must be a smoothing model, "
                                     f"got {given!r}")
            fmodel = given if given is not None else field_model(
                self.model_, name, arrays["doc_lengths"], index.arrays["doc_lengths"])
            tables.append(FieldTable.of(name, weight, fmodel, arrays))
        self.fields_ = tuple(tables)
        self._tie = np.asarray(index.arrays["docid_rank"])

    def query_model(self, query: str | QueryModel) -> QueryModel:
        if isinstance(query, QueryModel):
            return query
        if not isinstance(query, str):
            raise ParameterError(f"a query must be text or a QueryModel, got "
                                 f"{type(query).__name__}")
        return QueryModel.from_text(query, self.index.analyzer)

    def _terms(self, qm: QueryModel):
        """(query weights, per field: term ids and p(w|C_f)) of the scorable terms."""
        tids = np.array([[f.term_id(t) for t in qm.terms] for f in self.fields_],
                        dtype=np.int64).reshape(len(self.fields_), len(qm.terms))
        pcs = np.array([[f.p_collection(int(i)) for i in row]
                        for f, row in zip(self.fields_, tids)],
                       dtype=np.float64).reshape(tids.shape)
        lam = np.array([f.weight for f in self.fields_], dtype=np.float64)
        keep = (lam @ pcs) > 0
        q = np.asarray(qm.weights, dtype=np.float64)[keep]
        return q, tids[:, keep], pcs[:, keep]

    def _candidates(self, tids: np.ndarray) -> np.ndarray:
        parts = [np.zeros(0, dtype=np.int64)]
        for f, row in zip(self.fields_, tids):
            ptr = f.postings_indptr
            for t in row[row >= 0]:
                parts.append(np.asarray(f.postings_docs[int(ptr[t]):int(ptr[t + 1])]))
        return np.unique(np.concatenate(parts).astype(np.int64))

    def mixture_log_prob(self, docs: np.ndarray, tids: np.ndarray, pcs: np.ndarray
                         ) -> np.ndarray:
        """log p(w|d) = log Σ_f λ_f p_s(w|θ_{d,f}) for documents ``docs`` (sorted) ×
        the query terms (field term ids ``tids``, field collection models ``pcs``)."""
        mix = np.zeros((len(docs), tids.shape[1]), dtype=np.float64)
        for f, row, pc in zip(self.fields_, tids, pcs):
            counts = np.zeros(mix.shape, dtype=np.int64)
            ptr = f.postings_indptr
            for j, t in enumerate(row):
                if t < 0:
                    continue
                pd = np.asarray(f.postings_docs[int(ptr[t]):int(ptr[t + 1])])
                pos = np.searchsorted(docs, pd)
                inside = pos < len(docs)
                inside[inside] = docs[pos[inside]] == pd[inside]
                counts[pos[inside], j] = np.asarray(
                    f.postings_counts[int(ptr[t]):int(ptr[t + 1])])[inside]
            cols = pc > 0
            if not cols.any():
                continue
            dl = np.asarray(f.doc_lengths)[docs][:, None]
            du = np.asarray(f.doc_unique)[docs][:, None]
            logp = f.model.log_prob(counts[:, cols], dl, du, pc[cols][None, :])
            mix[:, cols] += f.weight * np.exp(logp)
        with np.errstate(divide="ignore"):
            return np.log(mix)

    def score_docs(self, query: str | QueryModel, docs: np.ndarray) -> np.ndarray:
        """The scores of document numbers ``docs`` (any order) for ``query``."""
        q, tids, pcs = self._terms(self.query_model(query))
        docs = np.asarray(docs, dtype=np.int64)
        order = np.argsort(docs, kind="stable")
        out = np.empty(len(docs), dtype=np.float64)
        for s in range(0, len(docs), BLOCK):
            block = order[s:s + BLOCK]
            out[block] = self.mixture_log_prob(docs[block], tids, pcs) @ q
        return out

    def rank(self, query: str | QueryModel, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(document numbers, scores) of the best ``k`` candidates, ranked."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ParameterError(f"k must be a whole number >= 1, got {k!r}")
        q, tids, pcs = self._terms(self.query_model(query))
        if not len(q):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        cand = self._candidates(tids)
        best_d, best_s = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.float64)]
        for s in range(0, len(cand), BLOCK):
            docs = cand[s:s + BLOCK]
            scores = self.mixture_log_prob(docs, tids, pcs) @ q
            d, sc = top_k(docs, scores, self._tie, k)
            best_d.append(d)
            best_s.append(sc)
        return top_k(np.concatenate(best_d), np.concatenate(best_s), self._tie, k)

    def search(self, query: str | QueryModel, k: int = 10) -> list[SearchResult]:
        docs, scores = self.rank(query, k)
        ids = self.index.docids.many(docs)
        return [SearchResult(r + 1, d, float(s)) for r, (d, s) in
                enumerate(zip(ids, scores.tolist()))]

    def batch_search(self, queries: Sequence[str | QueryModel], k: int = 10, *,
                     jobs: int = 1) -> list[list[SearchResult]]:
        """:meth:`search` for each query (``jobs`` is accepted for the Searcher's
        signature; queries run one after another)."""
        return [self.search(q, k) for q in queries]

    def run(self, queries: Sequence[Query], k: int = 1000) -> list[ScoredDoc]:
        """A run (as :meth:`Searcher.run`): ScoredDoc per retrieved document."""
        out = []
        for query in queries:
            for r in self.search(query.text, k):
                out.append(ScoredDoc(query.qid, r.docid, r.score, r.rank))
        return out
