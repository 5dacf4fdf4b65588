"""Scores against hand calculations and against a brute-force cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import (AbsoluteDiscount, Analyzer, Dirichlet, Index, JelinekMercer,
                       QueryModel, Searcher, TwoStage)

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
          TwoStage(mu=2.0, lam=0.4), TwoStage(mu=1000, lam=0.0)]


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
        assert mass == pytest.approx(1.0, abs=1e-9)  # the document model is a distribution
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
