"""The compiled kernels (retrieval.search.kernels, numba): identical rankings and
bit-identical scores to the numpy paths, ties included; lazy import of numba. Paths are
chosen by passing a Thresholds record to the Searcher."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from retrieval import (AbsoluteDiscount, Analyzer, Dirichlet, Index, JelinekMercer,
                       QueryModel, Searcher, TwoStage)
from retrieval.search import Thresholds, load_kernels
from retrieval.search.compiled import RankScratch, import_kernels
from retrieval.smoothing import SPUD, DirichletPlus, default_model

numba = pytest.importorskip("numba", reason="numba is not installed (the optional "
                                             "'fast' extra): the compiled path is unused")
from retrieval.search import kernels as _kernels  # noqa: E402  (needs numba)

DEFAULT = Thresholds()

PLAIN = Analyzer(stopwords="none", stemmer="none")
MODELS = [Dirichlet(mu=1000), Dirichlet(mu=5), JelinekMercer(lam=0.5),
          AbsoluteDiscount(delta=0.7), TwoStage(mu=1000, lam=0.5), TwoStage(mu=50, lam=0.0),
          SPUD(omega=0.8, mass=40.0), SPUD(omega=0.8), DirichletPlus(mu=1000, delta=0.05)]
#: models whose matched weight depends on the document: served as per-posting impacts
DOC_MODELS = [SPUD(omega=0.8), JelinekMercer(lam=0.5), AbsoluteDiscount(delta=0.7),
              TwoStage(mu=1000, lam=0.5)]
KS = (1, 3, 10, 1000)


def corpus(seed: int, n_docs: int = 1500, n_words: int = 80):
    """Zipfian documents with bursts, empty documents, many exact duplicates (score ties)
    and docids whose string order differs from the document order."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n_words)]
    p = 1.0 / np.arange(1, n_words + 1) ** 1.1
    p /= p.sum()
    texts = []
    for _ in range(n_docs):
        if texts and rng.random() < 0.3:
            texts.append(texts[int(rng.integers(len(texts)))])
            continue
        toks = list(rng.choice(words, size=int(rng.integers(0, 40)), p=p))
        if toks and rng.random() < 0.3:
            toks += [toks[0]] * int(rng.integers(1, 8))
        texts.append(" ".join(toks))
    texts += ["w1 w7"] * 40 + ["w30 w31 w30"] * 15
    ids = [f"d{int(x):06d}" for x in rng.permutation(len(texts) * 7)[:len(texts)]]
    return Index.build(list(zip(ids, texts)), analyzer=PLAIN), words, rng


def queries(words, rng, n=25):
    out = ["w1 w7", "w30 w31", "w0", "w0 w1 w2 w3 w4 w5", "w79 nosuchterm w2"]
    for _ in range(n):
        out.append(" ".join(rng.choice(words, size=int(rng.integers(1, 7)))))
        terms = rng.choice(words, size=int(rng.integers(1, 6)), replace=False)
        out.append(QueryModel.from_weights({str(t): float(rng.uniform(0.01, 3.0))
                                            for t in terms}))
    return out


@pytest.fixture(scope="module")
def data():
    return corpus(11)


def like(searcher, *, compiled, **thresholds) -> Searcher:
    """A searcher with ``searcher``'s parameters, ``compiled`` and these thresholds."""
    return Searcher(searcher.index, searcher.model, unknown_terms=searcher.unknown_terms,
                    candidates=searcher.candidates, pruning=searcher.pruning,
                    compiled=compiled, thresholds=Thresholds(**thresholds))


def configured(searcher, *, compiled: bool, per_query: bool = True,
               kernel_range: int | None = None, skip_bound: bool = True,
               scan: bool | None = None, **over):
    """The per-query paths (or, ``per_query=False``, the blocks), compiled or numpy;
    ``scan`` True/False: the per-query kernel finds candidates by scanning the range
    accumulator for every query with the bound on / never (None: the default rule)."""
    if kernel_range is not None:
        over["kernel_range"] = kernel_range
    if scan is not None:
        over["kernel_scan_postings_per_doc"] = 0.0 if scan else 1e12
    return like(searcher, compiled=compiled,
                # 0: the kernel always skips documents by the log-alpha bound; 10**12: never
                kernel_bound_docs_per_k=0 if skip_bound else 10**12,
                acc_min_docs=0 if per_query else 10**12, kernel_min_docs=0,
                kernel_batch_large_k_docs=0,   # per query at every k
                **over)


def run(searcher, qs, k, **kw):
    return configured(searcher, **kw).batch_search_arrays(qs, k)


def untouched(acc) -> bool:
    """The per-query kernel's accumulator between queries: every entry −0.0."""
    return bool(np.all(acc == 0.0) and np.all(np.signbit(acc)))


def assert_same(a, b):
    assert np.array_equal(a.query_index, b.query_index)
    assert np.array_equal(a.doc_numbers, b.doc_numbers)
    # same operations in the same order: bit-identical, not approximately equal
    assert np.array_equal(a.scores, b.scores)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS, ids=repr)
@pytest.mark.parametrize("unknown", ["drop", "indri"])
def test_identical_to_numpy_paths(data, model, unknown):
    index, words, rng = data
    qs = queries(words, np.random.default_rng(5))
    s = Searcher(index, model, unknown_terms=unknown, pruning=False)
    for k in KS:
        blocks = run(s, qs, k, compiled=False, per_query=False)
        numpy_one = run(s, qs, k, compiled=False)
        for rng_size, skip, scan in ((7, True, False), (7, True, True), (256, False, None),
                                     (32768, True, False), (32768, True, True),
                                     (32768, False, None)):
            compiled = configured(s, compiled=True, kernel_range=rng_size, skip_bound=skip,
                                  scan=scan)
            got = compiled.batch_search_arrays(qs, k)
            assert_same(got, numpy_one)
            assert_same(got, blocks)
            assert untouched(compiled.tables_.scratch.kacc)   # reset after every query


@pytest.mark.slow
def test_weights_path_for_count_only_model(data):
    """Dirichlet without the per-term tables (weights computed per posting)."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(6))
    s = Searcher(index, Dirichlet(mu=300), pruning=False)
    ref = {k: run(s, qs, k, compiled=False) for k in KS}
    s2 = Searcher(index, Dirichlet(mu=300), pruning=False)
    for k in KS:
        assert_same(run(s2, qs, k, compiled=True, kernel_range=64, table_max_count=-1),
                    ref[k])


@pytest.mark.parametrize("vocab_max", [0, 10**9], ids=["term-tables", "vocab-tables"])
def test_query_kernel_tables_per_term_or_from_the_vocabulary(data, vocab_max):
    """The per-query kernel's count tables: one numpy call per term, query by query (no
    vocabulary tables), or built from the vocabulary tables inside the batched
    per-query kernel (queries_top_k); bit-identical to the numpy paths."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(19))
    s = Searcher(index, Dirichlet(mu=700), pruning=False)
    for k in (1, 10, 1000):
        expect = run(s, qs, k, compiled=False, per_query=False)
        got = configured(s, compiled=True, kernel_range=97, vocab_table_max=vocab_max)
        assert_same(got.batch_search_arrays(qs, k), expect)
        assert (got.tables_.vocabulary_tables() is None) == (vocab_max == 0)
        assert set(got.paths_) == {"query_kernel"}
        assert untouched(got.tables_.scratch.kacc)   # reset after every query


def test_count_rows_equal_count_table(data):
    """count_rows gathers exactly SearchTables.count_table's values (up to each term's
    largest count; the rest repeat the last value)."""
    from retrieval.search.compiled import count_rows
    index, words, rng = data
    s = Searcher(index, Dirichlet(mu=37), thresholds=Thresholds(vocab_table_max=10**9))
    tables = s.tables_
    ids = np.array([0, 5, 3, 0, index.num_terms - 1], dtype=np.int64)
    qw = np.array([1.0, 0.25, 3.5, 0.1, 2.0])
    rows = count_rows(tables, tables.vocabulary_tables(), ids, qw)
    maxc = tables.max_counts()[ids]
    assert rows.shape == (len(ids), int(maxc.max()) + 1)
    for i, (tid, w) in enumerate(zip(ids, qw)):
        full = tables.count_table(int(tid), float(w))
        m = int(maxc[i])
        assert np.array_equal(rows[i, :m + 1], full[:m + 1])
        assert np.all(rows[i, m + 1:] == full[m])
    assert count_rows(tables, tables.vocabulary_tables(), ids[:0], qw[:0]).shape == (0, 1)


@pytest.mark.parametrize("pruning", ["auto", True])
def test_with_pruning(data, pruning):
    index, words, rng = data
    qs = queries(words, np.random.default_rng(7))
    s = Searcher(index, Dirichlet(mu=1000), pruning=pruning)
    ref = Searcher(index, Dirichlet(mu=1000), pruning=False)
    for k in KS:
        expect = run(ref, qs, k, compiled=False, per_query=False)
        assert_same(run(s, qs, k, compiled=True), expect)


def test_heavy_ties():
    """Hundreds of identical documents: the boundary ties are resolved by docid."""
    rng = np.random.default_rng(3)
    texts = ["a b"] * 300 + ["a"] * 200 + ["b c c"] * 100 + ["c"] * 50
    ids = [f"x{int(i):05d}" for i in rng.permutation(len(texts))]
    index = Index.build(list(zip(ids, texts)), analyzer=PLAIN)
    s = Searcher(index, Dirichlet(mu=100), pruning=False)
    qs = ["a b", "a", "c", "b c", "a b c"]
    for k in (1, 3, 10, 299, 300, 301, 1000):
        expect = run(s, qs, k, compiled=False, per_query=False)
        for skip in (True, False):
            assert_same(run(s, qs, k, compiled=True, kernel_range=100,
                            skip_bound=skip), expect)


def test_env_switch_disables(monkeypatch):
    monkeypatch.setenv("RETRIEVAL_KERNELS", "0")
    assert load_kernels() is None
    monkeypatch.setenv("RETRIEVAL_KERNELS", "1")
    assert load_kernels() is _kernels


@pytest.mark.slow
def test_small_index_does_not_import_numba(tmp_path):
    code = (
        "import sys\n"
        "from retrieval import Index, Searcher, Analyzer\n"
        "ix = Index.build([('a', 'x y z'), ('b', 'y z z')], "
        "analyzer=Analyzer(stopwords='none', stemmer='none'))\n"
        "assert Searcher(ix).search('y z', 5)\n"
        "assert 'numba' not in sys.modules, 'numba imported for a small index'\n")
    env = dict(os.environ)
    env.pop("RETRIEVAL_KERNELS", None)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)


def test_without_numba_falls_back(monkeypatch, data):
    """numba missing (import fails): the numpy paths, same results."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(8))
    s = Searcher(index, Dirichlet(mu=1000), pruning=False)
    expect = run(s, qs, 10, compiled=True)
    monkeypatch.setitem(sys.modules, "numba", None)           # import numba → ImportError
    monkeypatch.delitem(sys.modules, "retrieval.search.kernels")
    import retrieval.search
    monkeypatch.delattr(retrieval.search, "kernels")
    import_kernels.cache_clear()    # this process has not tried to load them yet
    try:
        assert load_kernels() is None
        auto = like(s, compiled="auto", acc_min_docs=0, kernel_min_docs=0)
        assert_same(auto.batch_search_arrays(qs, 10), expect)
    finally:
        import_kernels.cache_clear()


# -- the batch kernel (collections below _ACC_MIN_DOCS) ---------------------------------

def batch_searcher(searcher, *, heap_max_k: int | None = None, **over) -> Searcher:
    """The compiled batch kernel (kernels loaded, no per-query path)."""
    if heap_max_k is not None:
        over["kernel_heap_max_k"] = heap_max_k
    return like(searcher, compiled=True, acc_min_docs=10**12, **over)


def run_batch(searcher, qs, k, **kw):
    return batch_searcher(searcher, **kw).batch_search_arrays(qs, k)


BATCH_KS = (1, 2, 3, 10, 16, 17, 100, 1000, 10**6)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS, ids=repr)
@pytest.mark.parametrize("unknown", ["drop", "indri"])
def test_batch_kernel_identical_to_numpy_blocks(data, model, unknown):
    index, words, rng = data
    qs = queries(words, np.random.default_rng(15))
    s = Searcher(index, model, unknown_terms=unknown, pruning=False)
    for k in BATCH_KS:
        expect = run(s, qs, k, compiled=False, per_query=False)
        # candidates listed on first touch (never dense), by the default rule, always by
        # a scan of the marks
        for dense in (10.0**12, DEFAULT.kernel_dense_postings_per_doc, 0.0):
            for heap_max_k in (0, 10**9):          # bucket selection, heap
                bs = batch_searcher(s, heap_max_k=heap_max_k,
                                    kernel_dense_postings_per_doc=dense)
                got = bs.batch_search_arrays(qs, k)
                assert_same(got, expect)
            acc, seen = bs.tables_.scratch.bacc, bs.tables_.scratch.bseen
            assert not acc.any() and not seen.any()   # reset after every query


def test_batch_kernel_heavy_ties():
    """Hundreds of identical documents (one score): boundary ties resolved by docid,
    also when every candidate has the same score (no value range to bucket)."""
    rng = np.random.default_rng(4)
    texts = ["a b"] * 300 + ["a"] * 200 + ["b c c"] * 100 + ["c"] * 50 + ["d"] * 70
    ids = [f"x{int(i):05d}" for i in rng.permutation(len(texts))]
    index = Index.build(list(zip(ids, texts)), analyzer=PLAIN)
    s = Searcher(index, Dirichlet(mu=100), pruning=False)
    qs = ["a b", "a", "c", "b c", "a b c", "d", "d a"]
    for k in (1, 3, 10, 69, 70, 71, 299, 300, 301, 1000):
        expect = run(s, qs, k, compiled=False, per_query=False)
        for heap_max_k in (0, 10**9):
            assert_same(run_batch(s, qs, k, heap_max_k=heap_max_k), expect)


def test_batch_kernel_without_tables(data):
    """Dirichlet with per-posting weights (tables off), in blocks of few postings."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(16))
    s = Searcher(index, Dirichlet(mu=300), pruning=False)
    ref = {k: run(s, qs, k, compiled=False, per_query=False) for k in KS}
    s2 = Searcher(index, Dirichlet(mu=300), pruning=False)
    for k in KS:
        for dense in (10.0**12, 0.0):
            assert_same(run_batch(s2, qs, k, table_max_count=-1, kernel_batch_postings=50,
                                  kernel_dense_postings_per_doc=dense), ref[k])


@pytest.mark.parametrize("vocab_max", [0, 10**9], ids=["batch-tables", "vocab-tables"])
def test_batch_kernel_tables_per_batch_or_for_the_vocabulary(data, vocab_max):
    """Count-only models' tables of m_w(c): built per batch for its terms, or once for
    the whole vocabulary; the same values either way."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(17))
    s = Searcher(index, Dirichlet(mu=700), pruning=False)
    bs = batch_searcher(s, vocab_table_max=vocab_max)
    for k in (5, 1000):
        expect = run(s, qs, k, compiled=False, per_query=False)
        assert_same(bs.batch_search_arrays(qs, k), expect)
    assert (bs.tables_.vocabulary_tables() is None) == (vocab_max == 0)


def test_batch_kernel_used_for_large_batches_only(data):
    """On a small index the kernels load once the searcher has searched enough postings
    (compiled="auto"); compiled=False never uses them, compiled=True always. (The
    searcher counts the queries each path ranked in ``paths_``.)"""
    index, words, rng = data
    postings = int(np.diff(index.arrays["postings_indptr"])[index.term_id("w1")])
    t = Thresholds(kernel_batch_min_postings=10 * postings)
    s = Searcher(index, Dirichlet(mu=1000), pruning=False, thresholds=t)
    import_kernels.cache_clear()    # as in a process that has not loaded them yet
    s.batch_search_arrays(["w1"] * 9, 10)
    assert not s.paths_["batch_kernel"]
    s.batch_search_arrays(["w1"], 10)    # the searcher has now searched enough
    assert s.paths_["batch_kernel"]
    never = Searcher(index, Dirichlet(mu=1000), pruning=False, compiled=False, thresholds=t)
    never.batch_search_arrays(["w1"] * 20, 10)
    assert not never.paths_["batch_kernel"]
    import_kernels.cache_clear()
    always = Searcher(index, Dirichlet(mu=1000), pruning=False, compiled=True, thresholds=t)
    always.batch_search_arrays(["w1"], 10)
    assert always.paths_["batch_kernel"]


def test_prepared_batch_same_for_text_and_models(data):
    """The vectorised text path and the QueryModel path prepare identical arrays."""
    index, words, rng = data
    s = Searcher(index, Dirichlet(mu=1000))
    texts = ["w1 w7 w1", "w30 nosuchterm", "w0 w0 w0 w5", "", "nosuchterm"]
    models = [s.query_model(t) for t in texts]
    a, b = s.prepare(texts), s.prepare(models)
    mixed = s.prepare([texts[0], models[1], texts[2], models[3], texts[4]])
    for other in (b, mixed):
        for field in ("ptr", "term_ids", "weights", "mass", "constant"):
            assert np.array_equal(getattr(a, field), getattr(other, field)), field
    assert a.length.tolist() == [3.0, 1.0, 4.0, 0.0, 0.0]


def test_large_k_takes_the_batch_kernel_on_mid_size_collections(data):
    """From _ACC_MIN_DOCS to _KERNEL_BATCH_LARGE_K_DOCS documents, k above the heap limit
    goes to the batch kernel (same results as every other path)."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(21))
    s = Searcher(index, Dirichlet(mu=1000), pruning=False)
    expect = run(s, qs, 1000, compiled=False, per_query=False)
    mid = like(s, compiled=True, acc_min_docs=0, kernel_min_docs=0,
               kernel_batch_large_k_docs=10**12)
    calls = mid.paths_     # queries ranked by each path
    assert_same(mid.batch_search_arrays(qs, 1000), expect)
    assert calls["batch_kernel"] and not calls["query_kernel"]
    calls.clear()
    mid.batch_search_arrays(qs, 10)      # small k: per query
    assert calls["query_kernel"] and not calls["batch_kernel"]


@pytest.mark.slow
@pytest.mark.parametrize("params", [{}, {"fb_max_df": 0.2}, {"fb_terms": 3, "fb_docs": 25},
                                    {"fb_doc_weights": "uniform", "fb_orig_weight": 0.0},
                                    {"fb_terms": 200, "fb_doc_weights": "geometric"}],
                         ids=repr)
def test_relevance_model_kernel_identical_to_numpy(data, params):
    """RM3's compiled path (terms accumulated from the feedback rows, top terms by a small
    insertion sort) gives the numpy path's expanded queries bit for bit, ties included
    (the corpus has many duplicate documents, so equal P(w|R) are common)."""
    from retrieval.feedback import RM3Feedback
    index, words, rng = data
    qs = queries(words, rng)
    rm = RM3Feedback(**params)
    want = rm.expanded(Searcher(index, Dirichlet(mu=1000), compiled=False), qs)
    got = rm.expanded(Searcher(index, Dirichlet(mu=1000), compiled=True), qs)
    for field in ("ptr", "term_ids", "weights", "mass", "constant", "length"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field
    assert got.unknown == want.unknown


def test_relevance_model_kernel_ranks_ties_by_term_id():
    """Equal P(w|R) at the cut: the kernel keeps the smaller term ids (string order)."""
    from retrieval.feedback import RM3Feedback
    index = Index.build([("a", "x b c d e f g"), ("b", "x h i j k l m")], analyzer=PLAIN)
    rm = RM3Feedback(fb_terms=3, fb_docs=2, fb_orig_weight=0.0, fb_max_df=1.0)
    got = rm.expanded(Searcher(index, Dirichlet(mu=10), compiled=True), ["x"])
    terms = index.vocabulary.many(got.term_ids)
    # x has P(w|R) = 1/7 in both documents; of the rest (1/14 each) b and c come first
    assert sorted(terms) == ["b", "c", "x"]
    want = rm.expanded(Searcher(index, Dirichlet(mu=10), compiled=False), ["x"])
    assert np.array_equal(got.term_ids, want.term_ids)


@pytest.mark.parametrize("dist", ["normal", "cauchy", "few_values", "equal", "one_outlier",
                                  "exponential"])
def test_bucket_selection_equals_a_full_sort(dist):
    """_top_ranked (bucket partition, quicksort of big buckets, one insertion sort over
    the rest) gives exactly the lexsort order, for score distributions that put many
    candidates in one bucket, many ties, or one far outlier; every k from 1 to all."""
    rng = np.random.default_rng(len(dist))
    n_docs = 3000
    tie = rng.permutation(n_docs).astype(np.int64)
    room = n_docs + 1
    bs, bt, bd, cb = (np.empty(room), np.empty(room, np.int64), np.empty(room, np.int64),
                      np.empty(room, np.int64))
    cnt = np.empty(_kernels.BUCKETS_PER_CANDIDATE * room + 1, dtype=np.int64)
    for nc in (1, 2, 17, 300, 2999):
        cand = rng.permutation(n_docs)[:nc].astype(np.int64)
        cs = {"normal": lambda: rng.normal(-5.0, 1.0, nc),
              "cauchy": lambda: -np.abs(rng.standard_cauchy(nc)),
              "few_values": lambda: rng.integers(0, 5, nc) * 0.25 - 3.0,
              "equal": lambda: np.full(nc, -2.5),
              "one_outlier": lambda: np.r_[1e6, rng.normal(0, 1, nc - 1)][:nc],
              "exponential": lambda: -rng.exponential(1.0, nc)}[dist]()
        want = np.lexsort((tie[cand], -cs))
        for k in sorted({1, 2, 10, 16, 17, nc // 2 + 1, nc, nc + 5}):
            h = _kernels.top_ranked(cs, cand, tie, nc, k, RankScratch(bs, bt, bd, cb, cnt))
            assert h == min(k, nc)
            assert np.array_equal(bd[:h], cand[want[:h]]), (dist, nc, k)
            assert np.array_equal(bs[:h], cs[want[:h]])


@pytest.mark.parametrize("n_words", [80, 700], ids=["80-terms", "700-terms"])
@pytest.mark.parametrize("fb_docs", [1, 7, 40])
def test_feedback_rows_kernel_identical_to_numpy(n_words, fb_docs):
    """The model-based methods' feedback set built by the compiled kernel (distinct
    (query, term) keys listed from a bit set per query) equals the numpy path's
    ``numpy.unique`` arrays, value for value and dtype for dtype; so do the expanded
    queries of both methods. 700 terms: keys in eleven 64-bit words, every bit position."""
    from retrieval.feedback import DivMinFeedback, MixtureFeedback, feedback_set
    index, words, rng = corpus(5, n_docs=600, n_words=n_words)
    qs = queries(words, rng, n=15) + [""]          # one query with no feedback document
    plain = Searcher(index, Dirichlet(mu=500), compiled=False)
    fast = Searcher(index, Dirichlet(mu=500), compiled=True)
    want, got = feedback_set(plain, qs, fb_docs), feedback_set(fast, qs, fb_docs)
    assert len(got.key_term) > 0 and got.key_term.max() >= min(n_words, 640) - 64
    for field in want._fields[1:]:
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), field
    for method in (MixtureFeedback(fb_docs=fb_docs), DivMinFeedback(fb_docs=fb_docs)):
        w, g = method.expanded(plain, qs), method.expanded(fast, qs)
        for field in ("ptr", "term_ids", "weights", "mass", "constant"):
            assert np.array_equal(getattr(g, field), getattr(w, field)), (method, field)
    scratch = fast.tables_.scratch.feedback_scratch
    assert not scratch.acc.any() and not scratch.bits.any()


def test_batched_query_kernel_in_threads_is_identical(data):
    """The batched per-query kernel (queries_top_k, nogil) run from three threads at
    once, each with its own scratch, gives the one-thread results."""
    from retrieval.search import parallel
    index, words, rng = data
    qs = queries(words, np.random.default_rng(23), n=40)
    s = configured(Searcher(index, Dirichlet(mu=1000), pruning=False), compiled=True,
                   kernel_range=128)
    for k in (10, 1000):
        one = s.batch_search_arrays(qs, k)
        three = parallel.threaded(lambda part: s.rank(s.prepare(part), k), qs, 3)
        assert_same(three, one)
    assert set(s.paths_) == {"query_kernel"}


@pytest.mark.parametrize("model", DOC_MODELS, ids=repr)
def test_impacts_paths_identical_to_numpy(data, model):
    """Models whose weight depends on |d| or |d|_u: the per-posting impacts (batched
    per-query kernel, one-query kernel, batch kernel) and the fallback that computes the
    weights by numpy for every query (impact_max_bytes = 0) are bit-identical to the
    numpy paths, ties included."""
    index, words, rng = data
    qs = queries(words, np.random.default_rng(31))
    s = Searcher(index, model, pruning=False)
    for k in (1, 10, 1000):
        expect = run(s, qs, k, compiled=False, per_query=False)
        for scan in (False, True):
            batched = configured(s, compiled=True, kernel_range=97, scan=scan)
            assert_same(batched.batch_search_arrays(qs, k), expect)
            assert batched.tables_.impacts_fit() and set(batched.paths_) == {"query_kernel"}
            assert untouched(batched.tables_.scratch.kacc)
        assert_same(run(s, qs, k, compiled=True, kernel_range=97, impact_max_bytes=0),
                    expect)
        for heap_max_k in (0, 10**9):
            assert_same(run_batch(s, qs, k, heap_max_k=heap_max_k), expect)
            assert_same(run_batch(s, qs, k, heap_max_k=heap_max_k, impact_max_bytes=0),
                        expect)


def test_one_query_kernel_with_impacts(data):
    """The one-query driver (query_kernel) reads the same impacts."""
    from retrieval.search import compiled as comp
    index, words, rng = data
    s = Searcher(index, default_model(index), pruning=False)
    qs = queries(words, np.random.default_rng(32), n=10)
    expect = run(s, qs, 10, compiled=False)
    batch = s.prepare(qs)
    ks = load_kernels()
    for j in range(len(qs)):
        prep = batch.prep(j)
        if not len(prep.term_ids):
            continue
        d, sc = comp.query_kernel(s.tables_, Thresholds(kernel_range=64), prep, 10, ks)
        sel = expect.query_index == j
        assert np.array_equal(d, expect.doc_numbers[sel])
        assert np.array_equal(sc, expect.scores[sel])


def test_impacts_are_the_models_matched_weights_filled_per_term(data):
    """impacts(): bit-identical to matched_weight of each posting, computed only for the
    terms asked for, once (the array is not recomputed for a term already done)."""
    index, words, rng = data
    model = SPUD(omega=0.8, mass=40.0)
    tables = Searcher(index, model).tables_
    ptr, docs = tables.post_ptr, tables.post_docs
    first = np.asarray([3, 1, 3], dtype=np.int64)
    imp = tables.impacts(first)
    assert set(np.flatnonzero(tables.impacts_filled).tolist()) == {1, 3}
    for t in (1, 3):
        s, e = int(ptr[t]), int(ptr[t + 1])
        d = docs[s:e]
        want = model.matched_weight(tables.post_counts[s:e], tables.doc_len[d],
                                    tables.doc_unique[d], tables.p_collection[t])
        assert np.array_equal(imp[s:e], want)
    s1 = int(ptr[1])
    imp[s1] = -1.0      # a term already done is not computed again
    assert tables.impacts(np.asarray([1, 5]))[s1] == -1.0
    assert tables.impacts_filled[5]


def test_impacts_not_used_for_count_tables(data):
    """Dirichlet (count-only, small counts) keeps the count tables; with the tables off
    (table_max_count=-1) its per-posting weights come from the impacts."""
    index, words, rng = data
    assert not Searcher(index, Dirichlet(mu=1000)).tables_.impacts_fit()
    assert Searcher(index, Dirichlet(mu=1000),
                    thresholds=Thresholds(table_max_count=-1)).tables_.impacts_fit()
    assert not Searcher(index, SPUD(omega=0.8),
                        thresholds=Thresholds(impact_max_bytes=0)).tables_.impacts_fit()


def test_batched_query_kernel_with_impacts_in_threads_is_identical(data):
    """Three threads at once fill the impacts of new terms (under the lock) and rank
    with them: the one-thread results."""
    from retrieval.search import parallel
    index, words, rng = data
    qs = queries(words, np.random.default_rng(33), n=40)
    one = configured(Searcher(index, default_model(index), pruning=False), compiled=True,
                     kernel_range=128)
    s = configured(Searcher(index, default_model(index), pruning=False), compiled=True,
                   kernel_range=128)
    for k in (10, 1000):
        three = parallel.threaded(lambda part: s.rank(s.prepare(part), k), qs, 3)
        assert_same(three, one.batch_search_arrays(qs, k))
    assert set(s.paths_) == {"query_kernel"}


def test_negative_zero_weights_are_summed_as_from_zero():
    """The per-query kernel starts each document's sum from −0.0 (its mark of an
    untouched document) and adds (acc + w) + 0.0: a document whose weights are all
    −0.0 or +0.0 is still listed, with the sum bincount computes from 0.0 (+0.0)."""
    ks = load_kernels()
    from retrieval.search.compiled import CandidateOutput, QueryScore, RangeScratch
    post_docs = np.asarray([0, 2, 5, 2, 3], dtype=np.int64)
    post_counts = np.ones(5, dtype=np.int64)
    post_ptr = np.asarray([0, 3, 5], dtype=np.int64)
    log_alpha = np.zeros(6)
    tie = np.arange(6, dtype=np.int64)
    from retrieval.search.compiled import IndexColumns, QueryTerms
    weights = np.asarray([-0.0, 0.0, 1.5, -0.0, -0.0])
    acc = np.full(4, -0.0)
    out_d, out_s = np.empty(5, dtype=np.int64), np.empty(5)
    n = ks.accumulate_top_chunked(
        RangeScratch(acc, np.empty(5, dtype=np.int64), np.empty(5)),
        IndexColumns(post_ptr, post_docs, post_counts, log_alpha, tie),
        QueryTerms(np.asarray([0, 3]), np.asarray([3, 5]), weights, np.zeros((0, 0)),
                   False, np.ones(2), True),
        QueryScore(np.inf, 1.0, 0.0, 5), CandidateOutput(out_d, out_s))
    got = dict(zip(out_d[:n].tolist(), out_s[:n].tolist()))
    assert got == {0: 0.0, 2: 0.0, 3: 0.0, 5: 1.5}
    assert not any(np.signbit(out_s[:n]))          # +0.0, as 0.0 + (−0.0) in numpy
    expect = np.bincount([0, 2, 5, 2, 3], weights=weights, minlength=6)
    assert np.array_equal(np.signbit(expect[[0, 2, 3]]), [False] * 3)
    assert untouched(acc)


@pytest.mark.parametrize("bound", [0.0, -0.5])
def test_scan_kernel_equals_the_list_kernel_for_any_sign(bound):
    """The accumulator scan (accumulate_top_scan) writes the documents and scores the
    first-touch kernel writes, for weights of either sign and ±0.0 (its test reads the
    entries' bit patterns: an entry that is touched but negative, or +0.0, must not be
    taken for untouched), at every k, with the bound test on; the accumulator is left
    all −0.0. (A valid bound is ≥ mass·log α_d of every document: log α_d ≤ −0.5.)"""
    ks = load_kernels()
    from retrieval.search.compiled import (CandidateOutput, IndexColumns, QueryScore,
                                           QueryTerms, RangeScratch)
    rng = np.random.default_rng(7)
    n_docs = 300
    lists = [np.sort(rng.choice(n_docs, size=size, replace=False)) for size in (120, 40, 200)]
    post_docs = np.concatenate(lists).astype(np.int64)
    post_ptr = np.cumsum([0] + [len(x) for x in lists]).astype(np.int64)
    weights = rng.choice([-1.25, -0.0, 0.0, 0.5, 2.0, 3.5], size=len(post_docs))
    log_alpha = -rng.uniform(0.5, 0.8, n_docs)
    columns = IndexColumns(post_ptr, post_docs, np.ones(len(post_docs), dtype=np.int64),
                           log_alpha, np.arange(n_docs, dtype=np.int64))
    terms = QueryTerms(post_ptr[:-1].copy(), post_ptr[1:].copy(), weights, np.zeros((0, 0)),
                       False, np.ones(3), True)
    for k in (1, 5, 40, 400):
        got = []
        for kernel in (ks.accumulate_top_chunked, ks.accumulate_top_scan):
            acc = np.full(64, -0.0)
            out_d = np.empty(len(post_docs), dtype=np.int64)
            out_s = np.empty(len(post_docs))
            n = kernel(RangeScratch(acc, np.empty(65, dtype=np.int64), np.empty(k)),
                       columns, terms, QueryScore(bound, 1.0, -2.0, k),
                       CandidateOutput(out_d, out_s))
            order = np.argsort(out_d[:n])
            got.append((out_d[:n][order], out_s[:n][order]))
            assert untouched(acc)
        assert np.array_equal(got[0][0], got[1][0]), k
        assert np.array_equal(got[0][1], got[1][1]), k
