"""Scores against hand calculations and against a brute-force cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import (AbsoluteDiscount, Analyzer, Dirichlet, Index, JelinekMercer,
                       QueryModel, Searcher, TwoStage)
from retrieval.errors import ParameterError
from retrieval.smoothing import SPUD, DirichletAvgLen, DirichletPlus, make_model

PLAIN = Analyzer(stopwords="none", stemmer="none")

# d1: a:2 b:1 c:1 (|d|=4, |d|_u=3); d2: b:2 d:1 (3, 2); d3: a:1 d:1 e:3 (5, 3)
# |C| = 12; cf: a=3 b=3 c=1 d=2 e=3
DOCS = [("d1", "a b a c"), ("d2", "b b d"), ("d3", "a d e e e")]
P = {"a": 3 / 12, "b": 3 / 12, "c": 1 / 12, "d": 2 / 12, "e": 3 / 12}
QUERY = "a d d"          # p(a|q) = 1/3, p(d|q) = 2/3


@pytest.fixture(scope="module")
def tiny():
    return Index.build(DOCS, analyzer=PLAIN)


def hand_scores(model):
    """Σ_w p(w|q) log p(w|d), written out from the definitions for each document."""
    lg = math.log
    if isinstance(model, Dirichlet):
        mu = model.mu
        return {
            "d1": 1 / 3 * lg((2 + mu * P["a"]) / (4 + mu)) + 2 / 3 * lg((0 + mu * P["d"]) / (4 + mu)),
            "d2": 1 / 3 * lg((0 + mu * P["a"]) / (3 + mu)) + 2 / 3 * lg((1 + mu * P["d"]) / (3 + mu)),
            "d3": 1 / 3 * lg((1 + mu * P["a"]) / (5 + mu)) + 2 / 3 * lg((1 + mu * P["d"]) / (5 + mu)),
        }
    if isinstance(model, JelinekMercer):
        lam = model.lam
        return {
            "d1": 1 / 3 * lg((1 - lam) * 2 / 4 + lam * P["a"]) + 2 / 3 * lg(lam * P["d"]),
            "d2": 1 / 3 * lg(lam * P["a"]) + 2 / 3 * lg((1 - lam) * 1 / 3 + lam * P["d"]),
            "d3": 1 / 3 * lg((1 - lam) * 1 / 5 + lam * P["a"])
            + 2 / 3 * lg((1 - lam) * 1 / 5 + lam * P["d"]),
        }
    if isinstance(model, AbsoluteDiscount):
        dl = model.delta
        return {
            "d1": 1 / 3 * lg((2 - dl) / 4 + dl * 3 * P["a"] / 4) + 2 / 3 * lg(dl * 3 * P["d"] / 4),
            "d2": 1 / 3 * lg(dl * 2 * P["a"] / 3) + 2 / 3 * lg((1 - dl) / 3 + dl * 2 * P["d"] / 3),
            "d3": 1 / 3 * lg((1 - dl) / 5 + dl * 3 * P["a"] / 5)
            + 2 / 3 * lg((1 - dl) / 5 + dl * 3 * P["d"] / 5),
        }
    if isinstance(model, DirichletPlus):
        mu, dl = model.mu, model.delta

        def p(c, n, w):  # Lv & Zhai's Dir+: c > 0 gains log(1 + δ/(μp)) more
            base = (c + mu * P[w]) / (n + mu)
            return base * (1 + dl / (mu * P[w])) if c > 0 else base
        return {
            "d1": 1 / 3 * lg(p(2, 4, "a")) + 2 / 3 * lg(p(0, 4, "d")),
            "d2": 1 / 3 * lg(p(0, 3, "a")) + 2 / 3 * lg(p(1, 3, "d")),
            "d3": 1 / 3 * lg(p(1, 5, "a")) + 2 / 3 * lg(p(1, 5, "d")),
        }
    if isinstance(model, SPUD):
        mu = model.mass * model.omega / (1 - model.omega)

        def p(c, n, nu, w):  # (|d|_u c/|d| + μ' p) / (|d|_u + μ')
            return (nu * c / n + mu * P[w]) / (nu + mu)
        return {
            "d1": 1 / 3 * lg(p(2, 4, 3, "a")) + 2 / 3 * lg(p(0, 4, 3, "d")),
            "d2": 1 / 3 * lg(p(0, 3, 2, "a")) + 2 / 3 * lg(p(1, 3, 2, "d")),
            "d3": 1 / 3 * lg(p(1, 5, 3, "a")) + 2 / 3 * lg(p(1, 5, 3, "d")),
        }
    if isinstance(model, TwoStage):
        mu, lam = model.mu, model.lam

        def p(c, n, w):
            return (1 - lam) * (c + mu * P[w]) / (n + mu) + lam * P[w]
        return {
            "d1": 1 / 3 * lg(p(2, 4, "a")) + 2 / 3 * lg(p(0, 4, "d")),
            "d2": 1 / 3 * lg(p(0, 3, "a")) + 2 / 3 * lg(p(1, 3, "d")),
            "d3": 1 / 3 * lg(p(1, 5, "a")) + 2 / 3 * lg(p(1, 5, "d")),
        }
    raise AssertionError(model)


MODELS = [Dirichlet(mu=2.0), Dirichlet(mu=2500), JelinekMercer(lam=0.3), JelinekMercer(lam=1.0),
          AbsoluteDiscount(delta=0.7), AbsoluteDiscount(delta=1.0),
          TwoStage(mu=2.0, lam=0.4), TwoStage(mu=1000, lam=0.0),
          DirichletPlus(mu=2.0, delta=0.05), DirichletPlus(mu=1000, delta=0.7),
          SPUD(omega=0.8, mass=1.5), SPUD(omega=0.3, mass=250.0)]


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_hand_computed_scores(tiny, model):
    expected = hand_scores(model)
    searcher = Searcher(tiny, model)
    got = {r.docid: r.score for r in searcher.search(QUERY, k=10)}
    assert set(got) == {"d1", "d2", "d3"}  # every document holds a or d
    for docid, value in expected.items():
        assert got[docid] == pytest.approx(value, abs=1e-12, rel=0)
    # score() and explain() agree with the ranking's scores
    assert np.allclose(searcher.score(QUERY, ["d1", "d2", "d3"]),
                       [expected[d] for d in ("d1", "d2", "d3")], atol=1e-12, rtol=0)
    for docid, value in expected.items():
        e = searcher.explain(QUERY, docid)
        assert e.score == pytest.approx(value, abs=1e-12, rel=0)
        assert sum(t.contribution for t in e.terms) == pytest.approx(value, abs=1e-12, rel=0)


def test_ranking_order_follows_scores(tiny):
    res = Searcher(tiny, Dirichlet(mu=2.0)).search(QUERY, k=3)
    assert [r.rank for r in res] == [1, 2, 3]
    assert [r.score for r in res] == sorted((r.score for r in res), reverse=True)


def test_feedback_style_model_uses_its_mass(tiny):
    """A truncated model (mass < 1): the document term is multiplied by the mass."""
    qm = QueryModel.from_weights({"a": 0.2, "d": 0.3})
    model = Dirichlet(mu=2.0)
    got = {r.docid: r.score for r in Searcher(tiny, model).search(qm, k=3)}
    mu = 2.0
    lg = math.log
    want_d2 = 0.2 * lg((0 + mu * P["a"]) / (3 + mu)) + 0.3 * lg((1 + mu * P["d"]) / (3 + mu))
    assert got["d2"] == pytest.approx(want_d2, abs=1e-12, rel=0)


# --- brute force over the whole vocabulary on random corpora ----------------------------

def brute_force_p(model, c, n, n_unique, p):
    """p(w|d) from the definitions (independent of the package's sparse form)."""
    if isinstance(model, Dirichlet):
        return (c + model.mu * p) / (n + model.mu)
    if isinstance(model, TwoStage):
        return (1 - model.lam) * (c + model.mu * p) / (n + model.mu) + model.lam * p
    if isinstance(model, DirichletPlus):  # not normalised (a retrieval function)
        return (c + model.mu * p) / (n + model.mu) * ((1 + model.delta / (model.mu * p))
                                                      if c > 0 else 1.0)
    if n == 0:
        return p  # empty documents use the collection model
    if isinstance(model, SPUD):
        mu = model.mass * model.omega / (1 - model.omega)
        return (n_unique * c / n + mu * p) / (n_unique + mu)
    if n == 0:
        return p  # empty documents use the collection model
    if isinstance(model, JelinekMercer):
        return (1 - model.lam) * c / n + model.lam * p
    if isinstance(model, AbsoluteDiscount):
        return max(c - model.delta, 0) / n + model.delta * n_unique * p / n
    raise AssertionError(model)


WORDS = [f"w{i}" for i in range(12)]
corpus_st = st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=15),
                     min_size=1, max_size=8).filter(lambda docs: any(docs))
model_st = st.one_of(
    st.builds(Dirichlet, mu=st.floats(0.01, 5000)),
    st.builds(JelinekMercer, lam=st.floats(0.01, 1.0)),
    st.builds(AbsoluteDiscount, delta=st.floats(0.01, 1.0)),
    st.builds(TwoStage, mu=st.floats(0.01, 5000), lam=st.floats(0.0, 1.0)),
    st.builds(DirichletPlus, mu=st.floats(0.01, 5000), delta=st.floats(0.0, 2.0)),
    st.builds(SPUD, omega=st.floats(0.01, 0.99), mass=st.floats(0.01, 2000)),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(corpus=corpus_st, query=st.lists(st.sampled_from(WORDS + ["zz"]), min_size=1, max_size=6),
       model=model_st, unknown=st.sampled_from(["drop", "indri"]))
def test_sparse_score_equals_brute_force(corpus, query, model, unknown):
    docs = [(f"doc{i}", " ".join(words)) for i, words in enumerate(corpus)]
    index = Index.build(docs, analyzer=PLAIN)
    vocab = sorted({w for words in corpus for w in words})
    total = sum(len(words) for words in corpus)
    cf = {w: sum(words.count(w) for words in corpus) for w in vocab}
    known = [w for w in query if w in cf]
    if unknown == "drop":
        kept = known
    else:
        kept = list(query)
    if not kept:
        assert Searcher(index, model, unknown_terms=unknown).search(" ".join(query), k=5) == []
        return
    q = {w: kept.count(w) / len(kept) for w in set(kept)}
    p_unknown = 1 / (2 * total)
    expected = {}
    for (docid, _), words in zip(docs, corpus):
        n, n_unique = len(words), len(set(words))
        # Σ over the whole vocabulary (plus unknown query terms); q_w = 0 off the query
        s = 0.0
        mass = 0.0
        for w in vocab + sorted(set(kept) - set(vocab)):
            p = cf[w] / total if w in cf else p_unknown
            pd = brute_force_p(model, words.count(w), n, n_unique, p)
            mass += pd if w in cf else 0.0
            s += q.get(w, 0.0) * math.log(pd)
        if not isinstance(model, DirichletPlus):  # Dir+ is not a distribution
            assert mass == pytest.approx(1.0, abs=1e-9)  # the document model is one
        expected[docid] = s
    searcher = Searcher(index, model, unknown_terms=unknown, candidates="all")
    got = {r.docid: r.score for r in searcher.search(" ".join(query), k=len(docs))}
    if not known:
        assert got == {} or set(got) == set(expected)
    for docid, score in got.items():
        assert score == pytest.approx(expected[docid], rel=1e-9, abs=1e-9)
    # the matching rule: exactly the documents holding a known query term
    matching = Searcher(index, model, unknown_terms=unknown).search(" ".join(query), k=len(docs))
    holders = {d for (d, _), words in zip(docs, corpus) if set(words) & set(known)}
    assert {r.docid for r in matching} == holders
    for r in matching:
        assert r.score == pytest.approx(expected[r.docid], rel=1e-9, abs=1e-9)


# --- models fixed from collection statistics ------------------------------------------

def test_dirichlet_avgdl_resolves_to_dirichlet_at_a_multiple_of_the_mean_length(tiny):
    # |d| = 4, 3, 5: mean 4
    spec = DirichletAvgLen(mu_scale=2.5)
    assert spec.needs_index
    assert spec.resolved(tiny) == Dirichlet(mu=10.0)
    assert make_model("dirichlet-avgdl", index=tiny, mu_scale=0.5) == Dirichlet(mu=2.0)
    # the searcher resolves a specification for its index (model_), keeping model as given
    assert Searcher(tiny, spec).model is spec and Searcher(tiny, spec).model_ == Dirichlet(mu=10.0)
    with pytest.raises(ParameterError, match="resolved"):
        spec.log_alpha(np.array([3.0]), np.array([2.0]))   # unresolved: one line, never a number
    got = {r.docid: r.score for r in Searcher(tiny, spec.resolved(tiny)).search(QUERY)}
    want = hand_scores(Dirichlet(mu=10.0))
    assert got == pytest.approx(want, abs=1e-12)


def test_spud_background_mass_is_the_edcm_fixed_point(tiny):
    from scipy.special import digamma
    from retrieval.estimation import estimate_dcm_mass
    dl, du = np.array([4, 3, 5]), np.array([3, 2, 3])
    m = estimate_dcm_mass(dl, du)
    # the fixed point m = Σ|d|_u / Σ[ψ(m+|d|) − ψ(m)], by hand: 8 / Σ ...
    assert m == pytest.approx(8 / float(np.sum(digamma(m + dl) - digamma(m))), rel=1e-9)
    spud = make_model("spud", index=tiny)
    assert spud == SPUD(omega=0.8, mass=m)
    # no repeated term anywhere (no finite estimate), or no tokens: the cap, no error
    assert estimate_dcm_mass([2, 3], [2, 3]) == estimate_dcm_mass([0], [0]) == 1000.0
    assert estimate_dcm_mass(dl, du, cap=2.0) == 2.0
    assert Searcher(tiny, SPUD()).model_ == SPUD().resolved(tiny)
    with pytest.raises(ParameterError, match="resolved"):
        SPUD().smoothing_mass()


@pytest.mark.parametrize("model", [DirichletPlus(), SPUD(mass=100.0)], ids=repr)
def test_new_models_declare_count_monotone_nonnegative_weights(model):
    c = np.arange(1, 200, dtype=np.float64)
    w = model.matched_weight(c, np.full(199, 250.0), np.full(199, 80.0), np.full(199, 1e-4))
    assert model.monotone_in_count and (w >= 0).all() and (np.diff(w) > 0).all()


# --- the new models on every search path -----------------------------------------------

@pytest.fixture(scope="module")
def random_index():
    rng = np.random.default_rng(11)
    words = [f"t{i}" for i in range(120)]
    probs = 1.0 / np.arange(1, 121) ** 1.05
    probs /= probs.sum()
    docs = [(f"doc{d:03d}", " ".join(rng.choice(words, size=int(rng.integers(1, 80)),
                                                 p=probs)))
            for d in range(300)]
    return Index.build(docs, analyzer=PLAIN)


@pytest.mark.slow
@pytest.mark.parametrize("model", [DirichletPlus(mu=300, delta=0.05),
                                   SPUD(omega=0.8, mass=40.0)], ids=repr)
def test_new_models_rank_identically_on_every_search_path(random_index, model):
    """Exhaustive numpy blocks, compiled kernels, forced pruning and one query at a time
    all give the same documents and scores (the generic matched_weight/log_alpha path)."""
    queries = ["t1 t5 t30", "t7", "t2 t2 t90 t100", "t60 t61 t62 t63 t64", "zz t3"]
    base = Searcher(random_index, model, compiled=False, pruning=False)
    want = base.batch_search(queries, k=25)
    for kwargs in ({"compiled": True}, {"pruning": True, "compiled": False},
                   {"candidates": "all"}):
        got = Searcher(random_index, model, **kwargs).batch_search(queries, k=25)
        for a, b in zip(want, got):
            if kwargs.get("candidates") == "all":  # more candidates, same top scores
                assert [r.score for r in a] == pytest.approx([r.score for r in b][:len(a)],
                                                             abs=1e-12)
                continue
            assert [r.docid for r in a] == [r.docid for r in b]
            assert [r.score for r in a] == pytest.approx([r.score for r in b], abs=1e-12)
    for q, res in zip(queries, want):
        one = base.search(q, k=25)
        assert [r.docid for r in one] == [r.docid for r in res]
        # and every score is Σ_w q_w log p(w|d) of the model's own log_prob
        for r in res[:3]:
            assert r.score == pytest.approx(float(base.score(q, [r.docid])[0]), abs=1e-12)
