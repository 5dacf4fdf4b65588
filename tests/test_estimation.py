"""Leave-one-out estimation of the Dirichlet prior μ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval import Analyzer, Index
from retrieval.errors import ParameterError
from retrieval.estimation import (
    MuEstimate,
    cached_mu_estimate,
    estimate_mu,
    estimate_mu_from_counts,
    from_manifest,
    manifest_entry,
)

PLAIN = Analyzer(stopwords="none", stemmer="none")


def polya_corpus(mu: float, n_docs: int, vocab: int, seed: int, lo: int = 50, hi: int = 300):
    """Documents drawn from the Dirichlet-smoothed model with prior μ·p(w|C).

    Each document's model is θ_d ~ Dirichlet(μ p_C) and its tokens are drawn from θ_d; the
    same distribution is produced by the Pólya urn used here: the i-th token of a
    document is a fresh draw from p_C with probability μ/(i + μ), otherwise a copy of a
    uniformly chosen earlier token. Under it the probability of a held-out token given
    the rest of its document is exactly (c − 1 + μ p) / (|d| − 1 + μ), the model the
    leave-one-out likelihood fits.
    """
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.05
    p /= p.sum()
    lengths = rng.integers(lo, hi, n_docs)
    width = int(lengths.max())
    tokens = np.zeros((n_docs, width), dtype=np.int64)
    rows = np.arange(n_docs)
    for i in range(width):  # vectorised over documents
        fresh = rng.random(n_docs) < mu / (i + mu)
        new = rng.choice(vocab, size=n_docs, p=p)
        copy = tokens[rows, (rng.random(n_docs) * max(i, 1)).astype(np.int64)]
        tokens[:, i] = np.where(fresh, new, copy)
    return [(f"d{d}", " ".join(f"t{x}" for x in tokens[d, :lengths[d]].tolist()))
            for d in range(n_docs)]


@pytest.mark.slow
@pytest.mark.parametrize("mu", [200.0, 1000.0, 3000.0])
def test_recovers_the_mu_that_generated_the_corpus(mu):
    index = Index.build(polya_corpus(mu, 1200, 3000, seed=int(mu)), analyzer=PLAIN)
    est = estimate_mu(index)
    assert abs(est.mu - mu) <= 0.10 * mu, est
    assert est.iterations < 60
    assert math.isfinite(est.log_likelihood)


def _nonzeros(index):
    ptr = np.asarray(index.arrays["forward_indptr"])
    terms = np.asarray(index.arrays["forward_terms"])
    counts = np.asarray(index.arrays["forward_counts"])
    doc_len = np.repeat(np.asarray(index.arrays["doc_lengths"]), np.diff(ptr))
    return counts, doc_len, index.p_collection[terms]


def _loglik(counts, doc_len, p, mu):
    return sum(c * math.log((c - 1 + mu * q) / (n - 1 + mu))
               for c, n, q in zip(counts.tolist(), doc_len.tolist(), p.tolist()))


def test_is_the_maximum_of_the_leave_one_out_likelihood():
    index = Index.build(polya_corpus(150.0, 80, 300, seed=5), analyzer=PLAIN)
    counts, doc_len, p = _nonzeros(index)
    est = estimate_mu(index)
    # log-likelihood written out term by term (a plain Python sum over the non-zeros)
    assert est.log_likelihood == pytest.approx(_loglik(counts, doc_len, p, est.mu), rel=1e-10)
    for factor in (0.9, 0.99, 1.01, 1.1):
        assert _loglik(counts, doc_len, p, est.mu * factor) < est.log_likelihood
    # and the derivative vanishes there (central difference)
    h = est.mu * 1e-4
    slope = (_loglik(counts, doc_len, p, est.mu + h) - _loglik(counts, doc_len, p, est.mu - h))
    assert abs(slope / (2 * h)) < 1e-6 * abs(est.log_likelihood) / est.mu


def test_from_counts_matches_the_index_function_and_validates():
    index = Index.build(polya_corpus(500.0, 100, 400, seed=2), analyzer=PLAIN)
    counts, doc_len, p = _nonzeros(index)
    assert estimate_mu_from_counts(counts, doc_len, p) == estimate_mu(index)
    with pytest.raises(ParameterError, match="same length"):
        estimate_mu_from_counts(counts, doc_len[:-1], p)
    with pytest.raises(ParameterError, match="empty collection"):
        estimate_mu_from_counts(np.zeros(0), np.zeros(0), np.zeros(0))
    with pytest.raises(ParameterError, match=">= 1"):
        estimate_mu_from_counts(np.array([0]), np.array([3]), np.array([0.5]))


def test_documents_like_the_collection_model_have_no_finite_mu():
    # every document is "a b": the held-out token is best predicted by p(w|C) alone
    index = Index.build([("1", "a b"), ("2", "a b"), ("3", "b a")], analyzer=PLAIN)
    with pytest.raises(ParameterError, match="fixed --mu"):
        estimate_mu(index)


def test_single_token_documents_do_not_move_the_estimate():
    docs = polya_corpus(300.0, 150, 500, seed=9)
    base = estimate_mu(Index.build(docs, analyzer=PLAIN))
    more = estimate_mu(Index.build(docs + [("x1", "t1"), ("x2", "t2"), ("x3", "")],
                                   analyzer=PLAIN))
    # p(w|C) changes very slightly with the extra tokens; the estimate barely moves
    assert more.mu == pytest.approx(base.mu, rel=1e-3)


def test_cache_and_manifest_record():
    index = Index.build(polya_corpus(800.0, 120, 500, seed=4), analyzer=PLAIN)
    first = cached_mu_estimate(index)
    assert cached_mu_estimate(index) is first
    entry = manifest_entry(first)
    assert from_manifest({"estimates": {"dirichlet_mu_loo": entry}}) == first
    assert from_manifest({}) is None
    assert from_manifest({"estimates": {"dirichlet_mu_loo": {"mu": "x"}}}) is None
    other = Index.build([("1", "a a b"), ("2", "c c d")], analyzer=PLAIN)
    other.manifest["estimates"] = {"dirichlet_mu_loo": manifest_entry(MuEstimate(42.0, 3, -1.0))}
    assert cached_mu_estimate(other).mu == 42.0
    with pytest.raises(ParameterError, match="retrieval.Index"):
        estimate_mu("not an index")
