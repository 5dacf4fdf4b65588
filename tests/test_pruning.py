"""Exact dynamic pruning: identical rankings to the exhaustive path, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import (AbsoluteDiscount, Analyzer, Dirichlet, Index, JelinekMercer,
                       QueryModel, Searcher, TwoStage)
from retrieval.search import Thresholds, rank_order
from retrieval.search.bounds import forget_bounds
from retrieval.search.exhaustive import accumulated
from retrieval.search.maxscore import pruned

PLAIN = Analyzer(stopwords="none", stemmer="none")
MODELS = [Dirichlet(mu=1000), Dirichlet(mu=5), JelinekMercer(lam=0.5), JelinekMercer(lam=0.05),
          AbsoluteDiscount(delta=0.7), TwoStage(mu=1000, lam=0.5), TwoStage(mu=50, lam=0.0)]
KS = (1, 3, 10, 1000)


def random_corpus(seed: int, n_docs: int = 400, n_words: int = 60, dup_fraction=0.3):
    """Zipfian documents with bursts, empty documents, exact duplicates (score ties) and
    docids whose string order differs from the document order."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n_words)]
    p = 1.0 / np.arange(1, n_words + 1) ** 1.1
    p /= p.sum()
    texts = []
    for _ in range(n_docs):
        if texts and rng.random() < dup_fraction:
            texts.append(texts[int(rng.integers(len(texts)))])
            continue
        n = int(rng.integers(0, 40))
        toks = list(rng.choice(words, size=n, p=p))
        if toks and rng.random() < 0.3:
            toks += [toks[0]] * int(rng.integers(1, 8))   # bursts
        texts.append(" ".join(toks))
    # many identical short documents: heavy ties
    texts += ["w1 w7"] * 25 + ["w30 w31 w30"] * 12
    ids = [f"d{int(x):06d}" for x in rng.permutation(len(texts) * 7)[:len(texts)]]
    return Index.build(list(zip(ids, texts)), analyzer=PLAIN), words, rng


def random_queries(words, rng, n=40):
    qs = []
    for _ in range(n):
        m = int(rng.integers(2, 7))
        qs.append(" ".join(rng.choice(words, size=m)))
    qs += ["w1 w7", "w30 w31", "w0 w1 w2 w3 w4 w5", "w59 w58 w0", "w1 w7 unknownword"]
    # query models with many weighted terms (feedback-like)
    for _ in range(4):
        terms = rng.choice(words, size=20, replace=False)
        qs.append(QueryModel.from_weights({t: float(w) for t, w in
                                           zip(terms, rng.random(20) + 0.01)}))
    return qs


def assert_same(a, b):
    np.testing.assert_array_equal(a.query_index, b.query_index)
    np.testing.assert_array_equal(a.doc_numbers, b.doc_numbers)
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_pruned_equals_exhaustive(seed, model):
    index, words, rng = random_corpus(seed)
    queries = random_queries(words, rng)
    for unknown in ("drop", "indri"):
        exhaustive = Searcher(index, model, pruning=False, unknown_terms=unknown)
        forced = Searcher(index, model, pruning=True, unknown_terms=unknown)
        auto = Searcher(index, model, unknown_terms=unknown)
        for k in KS:
            ref = exhaustive.batch_search_arrays(queries, k)
            assert_same(forced.batch_search_arrays(queries, k), ref)
            assert_same(auto.batch_search_arrays(queries, k), ref)


@pytest.mark.parametrize("model", MODELS[:1] + MODELS[2:], ids=repr)
def test_pruned_path_is_taken_and_exact_against_brute_force(model):
    index, words, rng = random_corpus(7, n_docs=300)
    searcher = Searcher(index, model, pruning=True)
    n = index.num_docs
    # every document's full smoothed score, straight from the model's log p(w|d)
    dl = np.asarray(index.arrays["doc_lengths"])
    du = np.asarray(index.arrays["doc_unique"])
    counts = np.zeros((n, index.num_terms))
    fp = np.asarray(index.arrays["forward_indptr"])
    for d in range(n):
        t, c = index.document_vector(d)
        counts[d, np.asarray(t)] = c
    for text in random_queries(words, rng, n=15)[:15]:
        prep = searcher.prepare([text]).prep(0)
        if len(prep.term_ids) < 2:
            continue
        got = pruned(searcher.tables_, searcher.thresholds_, prep, 10, forced=True)
        assert got is not None
        total = np.zeros(n)
        for tid, w in zip(prep.term_ids, prep.weights):
            total += w * model.log_prob(counts[:, tid], dl, du, index.p_collection[tid])
        matching = np.flatnonzero(counts[:, prep.term_ids].sum(axis=1) > 0)
        scores = total[matching]
        tie = np.asarray(index.arrays["docid_rank"])
        order = rank_order(scores, tie, matching, 10)
        np.testing.assert_array_equal(got[0], matching[order])
        np.testing.assert_allclose(got[1], scores[order], rtol=0, atol=1e-9)
    assert fp[-1] == len(index.arrays["forward_terms"])


def test_ties_at_the_cut_are_resolved_by_docid():
    # 30 identical documents: any k cuts through a block of equal scores
    docs = [(f"id{i:03d}", "a b b c") for i in range(30)] + \
        [(f"x{i:03d}", "a " + "z " * (i % 5 + 1)) for i in range(40)] + \
        [(f"y{i:03d}", "b c " + "q " * i) for i in range(40)]
    rng = np.random.default_rng(3)
    docs = [docs[i] for i in rng.permutation(len(docs))]
    index = Index.build(docs, analyzer=PLAIN)
    for model in MODELS:
        for k in (1, 5, 29, 30, 31, 1000):
            a = Searcher(index, model, pruning=False).batch_search_arrays(["a b c", "b c"], k)
            b = Searcher(index, model, pruning=True).batch_search_arrays(["a b c", "b c"], k)
            assert_same(b, a)


def test_bounds_are_the_maxima_over_postings():
    index, _, _ = random_corpus(5, n_docs=200)
    s = Searcher(index, TwoStage(mu=30, lam=0.3), pruning=True)
    tab = s.tables_
    bounds, _, blocks = tab.pruning_bounds()
    ptr = tab.post_ptr
    for t in range(index.num_terms):
        a, e = ptr[t], ptr[t + 1]
        docs = tab.post_docs[a:e]
        mw = s.model_.matched_weight(tab.post_counts[a:e], tab.doc_len[docs],
                                     tab.doc_unique[docs], index.p_collection[t])
        assert bounds.matched[t] == mw.max()
        assert bounds.total[t] == (mw + s.log_alpha_[docs]).max()
        cm = blocks.block_max(t, docs)
        if cm is not None:
            assert np.all(cm >= np.minimum(tab.post_counts[a:e], 255))
    nonempty = tab.doc_len > 0
    assert bounds.alpha_max == s.log_alpha_[nonempty].max()


def test_bounds_cache_lives_outside_the_index(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_CACHE", str(tmp_path / "cache"))
    index, words, rng = random_corpus(11, n_docs=150)
    path = tmp_path / "x.idx"
    index.save(path)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    opened = Index.open(path)
    queries = random_queries(words, rng, n=10)
    ref = Searcher(opened, Dirichlet(mu=300), pruning=False).batch_search_arrays(queries, 10)
    got = Searcher(opened, Dirichlet(mu=300), pruning=True).batch_search_arrays(queries, 10)
    assert_same(got, ref)
    files = sorted((tmp_path / "cache" / "bounds").iterdir())
    assert len(files) == 2 and all(opened.manifest["index_id"] in f.name for f in files)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    # a fresh process-level memo reads the cached files and ranks identically
    forget_bounds()
    again = Searcher(Index.open(path), Dirichlet(mu=300), pruning=True)
    assert_same(again.batch_search_arrays(queries, 10), ref)
    # a corrupt cache file is recomputed, not trusted
    for f in files:
        f.write_bytes(b"garbage")
    forget_bounds()
    again = Searcher(Index.open(path), Dirichlet(mu=300), pruning=True)
    assert_same(again.batch_search_arrays(queries, 10), ref)


def test_pruning_parameter_is_checked():
    index, _, _ = random_corpus(1, n_docs=20)
    with pytest.raises(Exception):
        Searcher(index, pruning="sometimes")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("model", MODELS, ids=repr)
@pytest.mark.parametrize("path", ["accumulated", "dense_one", "mixed"])
def test_one_query_paths_equal_the_block_paths_bit_for_bit(seed, model, path):
    """The per-query paths of large collections (persistent accumulator with the k·m
    cut over the postings; N-sized bincount with candidate mark) rank and score exactly
    like the dense/sparse block paths: same documents, same order, same float64 bits."""
    index, words, rng = random_corpus(seed)
    queries = random_queries(words, rng)
    for unknown in ("drop", "indri"):
        ref_s = Searcher(index, model, pruning=False, unknown_terms=unknown)
        refs = {k: ref_s.batch_search_arrays(queries, k) for k in KS}
        for table_max in (Thresholds().table_max_count, 0):    # 0: no weight table
            t = one_query_thresholds(path, table_max_count=table_max)
            for pr in (False, True):
                s = Searcher(index, model, pruning=pr, unknown_terms=unknown,
                             compiled=False, thresholds=t)
                for k in KS:
                    got = s.batch_search_arrays(queries, k)
                    ref = refs[k]
                    np.testing.assert_array_equal(got.query_index, ref.query_index)
                    np.testing.assert_array_equal(got.doc_numbers, ref.doc_numbers)
                    if pr:
                        np.testing.assert_allclose(got.scores, ref.scores, rtol=0, atol=1e-9)
                    else:
                        np.testing.assert_array_equal(got.scores, ref.scores)


def one_query_thresholds(path: str, **over) -> Thresholds:
    """One query at a time on any collection, by the accumulator, the N-sized bincount
    and mark, or (``mixed``) whichever the default rule picks per query."""
    if path == "accumulated":
        over.update(acc_below_fraction=np.inf)
    elif path == "dense_one":
        over.update(acc_below_fraction=-1.0, acc_above_fraction=np.inf)
    return Thresholds(acc_min_docs=0, **over)


def test_accumulator_is_clean_after_every_query():
    index, words, rng = random_corpus(4)
    s = Searcher(index, Dirichlet(mu=100), pruning=False, compiled=False,
                 thresholds=Thresholds(acc_min_docs=0))
    for q in random_queries(words, rng, n=10):
        prep = s.prepare([q]).prep(0)
        accumulated(s.tables_, prep, 3) if len(prep.term_ids) else None
        assert not s.tables_.scratch.acc.any()


def test_ties_at_the_cut_one_query_paths():
    docs = [(f"id{i:03d}", "a b b c") for i in range(30)] + \
        [(f"x{i:03d}", "a " + "z " * (i % 5 + 1)) for i in range(40)] + \
        [(f"y{i:03d}", "b c " + "q " * i) for i in range(40)]
    rng = np.random.default_rng(5)
    docs = [docs[i] for i in rng.permutation(len(docs))]
    index = Index.build(docs, analyzer=PLAIN)
    for model in MODELS:
        for k in (1, 5, 29, 30, 31, 1000):
            qs = ["a b c", "b c", "a", "c q z"]
            a = Searcher(index, model, pruning=False).batch_search_arrays(qs, k)
            for one in ("accumulated", "dense_one"):
                b = Searcher(index, model, pruning=False, compiled=False,
                             thresholds=one_query_thresholds(one)).batch_search_arrays(qs, k)
                np.testing.assert_array_equal(b.query_index, a.query_index)
                np.testing.assert_array_equal(b.doc_numbers, a.doc_numbers)
                np.testing.assert_array_equal(b.scores, a.scores)


def test_kernel_pruning_only_from_its_collection_size():
    """plan.prune_pays with the kernel: no query below kernel_prune_min_docs documents;
    from there on, the queries with at least kernel_prune_fraction·N postings."""
    from retrieval.search.plan import prune_pays
    n_terms = np.array([1, 3, 3, 4])
    postings = np.array([900_000, 900_000, 100_000, 700_000])
    t = Thresholds(kernel_prune_min_docs=500_000, kernel_prune_fraction=0.6)
    big = prune_pays(t, n_terms, postings, 10, 1_000_000, compiled=True, forced=False)
    assert big.tolist() == [False, True, False, True]
    small = prune_pays(t, n_terms, postings, 10, 400_000, compiled=True, forced=False)
    assert not small.any()
    # without the kernel the size rule does not apply; forced pruning ignores it too
    assert prune_pays(t, n_terms, postings, 10, 400_000, compiled=False,
                      forced=False).tolist() == [False, True, True, True]
    assert prune_pays(t, n_terms, postings, 10, 400_000, compiled=True,
                      forced=True).tolist() == [False, True, True, True]


@pytest.mark.parametrize("model", [Dirichlet(mu=1000), JelinekMercer(lam=0.5)], ids=repr)
def test_kernel_pruning_path_equals_the_kernel(model):
    """Under pruning="auto", the queries the plan sends to MaxScore beside the compiled
    per-query kernel give the kernel's results bit for bit (thresholds chosen so that
    every query of several terms is pruned on this small index)."""
    pytest.importorskip("numba", reason="numba is not installed: no compiled path")
    index, words, rng = random_corpus(9)
    qs = random_queries(words, rng, n=20)
    common = dict(acc_min_docs=0, kernel_min_docs=0, kernel_batch_large_k_docs=0)
    auto = Searcher(index, model, pruning="auto", compiled=True, thresholds=Thresholds(
        prune_min_docs=0, prune_docs_per_k=0, prune_min_postings=0,
        kernel_prune_min_docs=0, kernel_prune_fraction=0.0, **common))
    plain = Searcher(index, model, pruning=False, compiled=True,
                     thresholds=Thresholds(**common))
    for k in (1, 10, 1000):
        a, b = auto.batch_search_arrays(qs, k), plain.batch_search_arrays(qs, k)
        assert np.array_equal(a.query_index, b.query_index)
        assert np.array_equal(a.doc_numbers, b.doc_numbers)
        assert np.array_equal(a.scores, b.scores)
    assert auto.paths_["pruned"] > 0 and auto.paths_["query_kernel"] > 0
