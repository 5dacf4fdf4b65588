"""The compiled λ̂ of two-stage smoothing (retrieval.lambda_kernels) against the numpy
path (retrieval.estimation.direct_query_lambda), bit for bit; the fixed summation order
against the BLAS sums it replaced; when the kernels are chosen."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from retrieval import Analyzer, Index, Searcher
from retrieval.errors import ParameterError
from retrieval.estimation import lambda_kernels, query_lambdas, query_lambdas_of_ids
from retrieval.smoothing import TwoStage
from retrieval.twostage import TwoStageEM

from lambda_oracle import blas_order, collapsed_rows, unpruned_lambda

pytest.importorskip("numba")

PLAIN = Analyzer(stopwords="none", stemmer="none")


def bits(x: float) -> bytes:
    return np.float64(x).tobytes()


def assert_same(numpy_est, compiled_est, where=""):
    assert len(numpy_est) == len(compiled_est)
    for j, (a, b) in enumerate(zip(numpy_est, compiled_est)):
        assert bits(a.lam) == bits(b.lam), (where, j, a, b)
        assert bits(a.log_likelihood) == bits(b.log_likelihood), (where, j, a, b)
        assert a.iterations == b.iterations, (where, j, a, b)


def batch_of(index, texts):
    """(term ids, weights) of each query, known terms only."""
    batch = Searcher(index, TwoStage(1000.0), compiled=False).prepare(texts)
    ptr = batch.ptr.tolist()
    return [(batch.term_ids[ptr[j]:ptr[j + 1]], batch.weights[ptr[j]:ptr[j + 1]])
            for j in range(len(batch))]


def both(index, queries, mu):
    return (query_lambdas_of_ids(index, queries, mu, compiled=False),
            query_lambdas_of_ids(index, queries, mu, compiled=True))


# -- the fixed order ---------------------------------------------------------------------

def test_row_sums_is_the_sequential_loop():
    # s = c_0·x_0, then s = s + c_j·x_j: bit for bit, whatever the layout, signed zeros kept
    from retrieval.lambdas import row_sums
    rng = np.random.default_rng(7)
    for trial in range(200):
        m, n = int(rng.integers(1, 60)), int(rng.integers(1, 500))
        x = rng.standard_normal((n, m)) * 10.0 ** rng.integers(-9, 9, size=(1, m))
        x = np.asfortranarray(x) if trial % 3 == 0 else x[::-1] if trial % 3 == 1 else x
        cq = rng.uniform(0.1, 4.0, size=m)
        want = x[:, 0] * cq[0]
        for j in range(1, m):
            want = want + x[:, j] * cq[j]
        assert row_sums(x, cq).tobytes() == want.tobytes(), trial
    assert row_sums(np.array([[-0.0, -0.0]]), np.ones(2)).tobytes() == \
        np.array([-0.0]).tobytes()
    # 1e16 + 1 − 1e16 in order is 0, while 1 + (1e16 − 1e16) would be 1
    assert row_sums(np.array([[1e16, 1.0, -1e16]]), np.ones(3))[0] == 0.0


# -- numpy and compiled, bit for bit ----------------------------------------------------

def random_index(rng, n_docs, vocab):
    words = [f"w{i}" for i in range(vocab)]
    docs = []
    for d in range(n_docs):
        length = int(rng.integers(0, 40)) if d % 11 else 0       # some empty documents
        zipf = np.minimum(rng.zipf(1.3, size=length), vocab) - 1
        docs.append((f"d{d}", " ".join(words[i] for i in zipf)))
    if n_docs > 3:
        docs.append(("dup", docs[1][1]))                         # a tie: the first wins
    return Index.build(docs, analyzer=PLAIN), words


def test_compiled_equals_numpy_on_random_collections():
    rng = np.random.default_rng(2016)
    kinds = set()
    for trial in range(30):
        index, words = random_index(rng, int(rng.integers(1, 80)), int(rng.integers(2, 30)))
        texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 8))))
                 for _ in range(12)] + ["zzz-not-there"]
        queries = batch_of(index, texts)
        for mu in (0.5, 5.0, 50.0, 1000.0):
            got_numpy, got_compiled = both(index, queries, mu)
            assert_same(got_numpy, got_compiled, (trial, mu))
            kinds |= {"zero" if e.lam == 0 else "one" if e.lam == 1 else "none"
                      if e.iterations == 0 and e.lam == 0.5 else "inner" for e in got_numpy}
    assert kinds >= {"zero", "one", "inner", "none"}  # every outcome was exercised


def test_compiled_equals_numpy_with_weights_and_large_counts():
    # query weights other than 1 (the counts c_j), and counts past the kernel's table
    docs = [("a", "x " * 70 + "y"), ("b", "x y y z"), ("c", "z " * 200), ("d", "y"),
            ("e", ""), ("f", "q r s t")]
    index = Index.build(docs, analyzer=PLAIN)
    ids = {t: index.term_id(t) for t in "xyzq"}
    queries = [(np.array([ids["x"], ids["z"]]), np.array([3.0, 0.5])),
               (np.array([ids["y"]]), np.array([2.0])),
               (np.array([ids["x"], ids["y"], ids["z"], ids["q"]]), np.array([1.0, 1, 4, 1])),
               (np.zeros(0, dtype=np.int64), np.zeros(0))]
    for mu in (0.1, 3.0, 100.0, 5000.0):
        assert_same(*both(index, queries, mu), mu)
    bad = [(np.array([ids["x"]]), np.array([-1.0]))]
    for compiled in (False, True):
        with pytest.raises(ParameterError, match="positive"):
            query_lambdas_of_ids(index, bad, 10.0, compiled=compiled)


def test_compiled_equals_numpy_on_the_sample_corpus(sample_dir):
    sample = Index.build([(p.stem, p.read_text()) for p in sorted(
        (sample_dir / "docs").rglob("*.txt"))], analyzer=Analyzer())
    texts = [line.split("\t", 1)[1] for line in
             (sample_dir / "queries.tsv").read_text().splitlines() if "\t" in line]
    texts += [f"{x} {y}" for x, y in zip(texts, texts[1:])]
    queries = batch_of(sample, texts)
    assert len(queries) > 20
    for mu in (1.0, 10.0, 100.0, 1000.0):
        assert_same(*both(sample, queries, mu), mu)
    # the model's own API takes the same path
    model = TwoStageEM(100.0)
    assert_same(model.estimates(sample, texts, compiled=False),
                model.estimates(sample, texts, compiled=True))


def shared(name, collections_dir):
    from retrieval.benchmarking import cached_index
    from retrieval.collections import load_collection
    coll = load_collection(name, root=collections_dir)
    index, _, _ = cached_index(coll, Analyzer(), None)
    return index, [q.text for q in coll.queries]


@pytest.mark.slow
@pytest.mark.collections
@pytest.mark.parametrize("name", ["cranfield", "cisi", "med", "cacm", "nfcorpus"])
def test_compiled_equals_numpy_on_the_shared_collections(name, collections_dir):
    index, texts = shared(name, collections_dir)
    queries = batch_of(index, texts)
    for mu in (100.0, 1000.0):
        assert_same(*both(index, queries, mu), (name, mu))


# -- the fixed order against the BLAS sums it replaced -----------------------------------

@pytest.mark.slow
@pytest.mark.collections
@pytest.mark.parametrize("name", ["cranfield", "cisi", "med", "cacm", "nfcorpus"])
def test_fixed_order_moves_lambda_only_in_the_last_bits(name, collections_dir):
    # λ̂ under the fixed order against the BLAS sums, every query, μ = 1000 (the default)
    # and 100 (more λ̂ inside (0, 1)); where λ̂ moved (by at most 1e-12), the top 1000
    # under each λ̂ must be the same documents (measured: at μ = 1000 no λ̂ moved, at
    # μ = 100 62 of 740 moved by ≤ 2.2e-16 and no ranking changed)
    index, texts = shared(name, collections_dir)
    queries = batch_of(index, texts)
    moved = changed_rankings = 0
    for mu in (1000.0, 100.0):
        for j, (est, (tids, weights)) in enumerate(
                zip(query_lambdas_of_ids(index, queries, mu), queries)):
            if len(tids) == 0:
                continue
            counts, dl = collapsed_rows(index, tids)
            old = unpruned_lambda(counts, dl, index.p_collection[tids], weights, mu,
                                  sums=blas_order)[0]
            assert abs(est.lam - old) <= 1e-12, (j, mu, est.lam, old)
            if bits(est.lam) != bits(old):
                moved += 1
                a, b = (Searcher(index, TwoStage(mu, lam=x), compiled=False)
                        .batch_search_arrays([texts[j]], 1000) for x in (est.lam, old))
                changed_rankings += not np.array_equal(a.doc_numbers, b.doc_numbers)
    assert changed_rankings == 0, (moved, changed_rankings)


# -- when the kernels are used ----------------------------------------------------------

def test_kernel_choice(monkeypatch):
    assert lambda_kernels(False, 10**9) is None
    assert lambda_kernels(True, 1) is not None
    assert lambda_kernels("auto", 10**6) is not None       # large: the search loads them
    assert lambda_kernels("auto", 10, 10**8) is not None    # many postings in the batch
    monkeypatch.setenv("RETRIEVAL_KERNELS", "0")
    assert lambda_kernels(True, 10**6) is None
    with pytest.raises(ParameterError, match="compiled"):
        query_lambdas(Index.build([("a", "x")], analyzer=PLAIN), [], 10.0, compiled="yes")


def test_small_index_auto_does_not_import_numba():
    # a fresh process: λ̂ on a small index under "auto" stays on the numpy path
    code = ("import sys; from retrieval import Index, Analyzer; "
            "from retrieval.twostage import TwoStageEM; "
            "idx = Index.build([('a', 'x y'), ('b', 'y z')], "
            "analyzer=Analyzer(stopwords='none', stemmer='none')); "
            "TwoStageEM(10.0).batch_search_arrays(idx, ['x', 'y z'], 5); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
