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


# -- two-stage λ per query by EM --------------------------------------------------------

def test_query_lambda_one_document_solves_the_stationarity_equation_by_hand():
    from retrieval.estimation import estimate_query_lambda
    # one document: maximise Σ_j c_j log((1−λ)a_j + λb_j); with a = (0.5, 0.01),
    # b = (0.1, 0.1), c = (1, 1) the derivative −0.4/(0.5−0.4λ) + 0.09/(0.01+0.09λ)
    # vanishes at 0.09(0.5 − 0.4λ) = 0.4(0.01 + 0.09λ), λ = 0.041/0.072
    mu, dl = 10.0, 10.0
    b = np.array([0.1, 0.1])
    a = np.array([0.5, 0.01])
    counts = a * (dl + mu) - mu * b   # c(w,d) giving p_μ(w|d) = a
    est = estimate_query_lambda(counts[None, :], [dl], b, [1.0, 1.0], mu, tol=1e-13,
                                max_iter=100_000)
    assert est.lam == pytest.approx(0.041 / 0.072, abs=1e-6)


def test_query_lambda_em_is_a_fixed_point_and_beats_the_start():
    from retrieval.estimation import estimate_query_lambda
    rng = np.random.default_rng(5)
    n, m, mu = 40, 3, 50.0
    counts = rng.integers(0, 4, size=(n, m)).astype(float)
    dl = counts.sum(1) + rng.integers(5, 60, size=n)
    pc = np.array([0.01, 0.002, 0.05])
    cq = np.array([1.0, 2.0, 1.0])
    est = estimate_query_lambda(counts, dl, pc, cq, mu, tol=1e-12, max_iter=100_000)
    assert 0.0 <= est.lam <= 1.0

    def loglik(lam, log_pi):
        p = (counts + mu * pc) / (dl[:, None] + mu)
        v = np.log((1 - lam) * p + lam * pc) @ cq + log_pi
        return float(np.log(np.exp(v - v.max()).sum()) + v.max())
    start = loglik(0.5, np.full(n, -np.log(n)))
    assert est.log_likelihood >= start - 1e-12
    with pytest.raises(ParameterError):
        estimate_query_lambda(counts, dl, pc, -cq, mu)


def test_query_lambdas_on_an_index_match_the_dense_computation():
    from retrieval import Analyzer, Index, Searcher
    from retrieval.estimation import estimate_query_lambda, query_lambdas
    docs = [("a", "x y y z"), ("b", "y z z z w"), ("c", "x x w v v v")]
    index = Index.build(docs, analyzer=Analyzer(stopwords="none", stemmer="none"))
    qm = Searcher(index).query_model("x z z nope")
    got = query_lambdas(index, [qm, Searcher(index).query_model("nope")], mu=3.0,
                        method="em")
    dense = np.array([[1, 1], [0, 3], [2, 0]], dtype=float)   # c(x,d), c(z,d)
    want = estimate_query_lambda(dense, [4, 5, 6], [3 / 15, 4 / 15], [1 / 3, 2 / 3], 3.0)
    assert got[0] == want
    assert got[1].lam == 0.5 and got[1].iterations == 0


def test_numpy_digamma_equals_scipy():
    """The numpy ψ (so that searching with SPUD does not import scipy) against scipy's."""
    from scipy.special import digamma as scipy_digamma
    from retrieval.estimation import digamma
    x = np.concatenate([np.linspace(1e-3, 60, 30001), np.logspace(-2, 9, 3001)])
    want = scipy_digamma(x)
    np.testing.assert_allclose(digamma(x), want, rtol=1e-13, atol=1e-13)
    # one step of the EDCM fixed point: ψ(m + L) − ψ(m) over integer lengths
    lengths = np.arange(1, 5000, dtype=np.float64)
    for m in (0.5, 1.0, 126.7, 5000.0):
        np.testing.assert_allclose(digamma(m + lengths) - digamma(np.float64(m)),
                                   scipy_digamma(m + lengths) - scipy_digamma(m),
                                   rtol=1e-12, atol=1e-13)
