"""Two-stage smoothing with λ per query by EM (retrieval.twostage) and the document-length
prior (retrieval.smoothing.LengthPrior): hand calculations, brute force, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from retrieval import Analyzer, Index, Searcher
from retrieval.errors import ParameterError
from retrieval.estimation import estimate_query_lambda
from retrieval.smoothing import (SPUD, Dirichlet, JelinekMercer, LengthPrior, TwoStage,
                                 with_length_prior)
from retrieval.twostage import TwoStageEM

from lambda_oracle import collapsed_rows, unpruned_lambda

PLAIN = Analyzer(stopwords="none", stemmer="none")
DOCS = [("a", "x y y z"), ("b", "y z z z w"), ("c", "x x w v v v"), ("d", "v w"),
        ("e", "u u v w"), ("f", "w w"), ("g", "")]


@pytest.fixture(scope="module")
def index():
    return Index.build(DOCS, analyzer=PLAIN)


def dense(index, terms):
    """c(t, d) for every document (rows in document-number order)."""
    out = np.zeros((index.num_docs, len(terms)))
    for d in range(index.num_docs):
        t_ids, counts = index.document_vector(d)
        for col, t in enumerate(terms):
            tid = index.term_id(t)
            hit = np.flatnonzero(np.asarray(t_ids) == tid)
            if len(hit):
                out[d, col] = counts[hit[0]]
    return out


# -- the EM's λ -------------------------------------------------------------------------

def test_em_fixed_point_by_hand_two_documents():
    # the likelihood Σ_i π_i Π_j mix_ij^{c_j} is linear in π, so its maximum puts π on the
    # best document and λ̂ maximises that document's Σ_j c_j log((1−λ)a_j + λb_j). Two
    # documents, a = (0.5, 0.01) and (0.05, 0.05), b = (0.1, 0.1), c = (1, 1): the first
    # is best (its likelihood at its λ̂ beats the second's best, b·b at λ = 1 → 0.01);
    # its stationarity 0.09(0.5 − 0.4λ) = 0.4(0.01 + 0.09λ) gives λ̂ = 0.041/0.072.
    mu, dl = 10.0, 10.0
    b = np.array([0.1, 0.1])
    a = np.array([[0.5, 0.01], [0.05, 0.05]])
    counts = a * (dl + mu) - mu * b
    est = estimate_query_lambda(counts, [dl, dl], b, [1.0, 1.0], mu, tol=1e-14,
                                max_iter=200_000)
    lam = 0.041 / 0.072
    assert est.lam == pytest.approx(lam, abs=1e-4)
    best = math.log((1 - lam) * 0.5 + lam * 0.1) + math.log((1 - lam) * 0.01 + lam * 0.1)
    assert est.log_likelihood == pytest.approx(best, abs=1e-6)
    from retrieval.estimation import direct_query_lambda
    direct = direct_query_lambda(counts, [dl, dl], b, [1.0, 1.0], mu)
    assert direct.lam == pytest.approx(lam, abs=1e-14)
    assert direct.log_likelihood == pytest.approx(best, abs=1e-14)


def test_direct_lambda_bounds_and_random_cases():
    from retrieval.estimation import direct_query_lambda
    b = np.array([0.1, 0.2])
    # a document below the collection on every term: λ = 1 (a_ij < b_j); above: λ = 0
    assert direct_query_lambda(np.zeros((1, 2)), [50.0], b, [1.0, 1.0], 1.0).lam == 1.0
    assert direct_query_lambda(np.array([[5.0, 5.0]]), [10.0], b, [1.0, 1.0], 1.0).lam == 0.0
    rng = np.random.default_rng(3)
    for _ in range(20):
        n, m, mu = 30, 3, float(rng.uniform(1, 100))
        counts = rng.integers(0, 3, size=(n, m)).astype(float)
        dl = counts.sum(1) + rng.integers(1, 80, size=n)
        pc = rng.uniform(0.001, 0.1, size=m)
        cq = rng.integers(1, 4, size=m).astype(float)
        got = direct_query_lambda(counts, dl, pc, cq, mu)
        em = estimate_query_lambda(counts, dl, pc, cq, mu)
        assert got.log_likelihood >= em.log_likelihood - 1e-12
        a = (counts + mu * pc) / (dl[:, None] + mu)
        grid = np.linspace(0, 1, 4001)
        brute = max(float(np.max(np.log((1 - g) * a + g * pc) @ cq)) for g in grid)
        assert brute - 1e-12 <= got.log_likelihood <= brute + 1e-3
    with pytest.raises(ParameterError):
        direct_query_lambda(counts, dl, pc, -cq, mu)


def test_em_collapsed_rows_equal_the_full_matrix(index):
    # documents without a query term are grouped by length with a multiplicity: exact
    from retrieval.estimation import query_lambdas
    searcher = Searcher(index, TwoStage(3.0))
    for text in ["x z z", "v", "u w w x"]:
        qm = searcher.query_model(text)
        got = query_lambdas(index, [qm], 3.0, method="em", tol=1e-12, max_iter=10_000)[0]
        lengths = np.asarray(index.arrays["doc_lengths"], dtype=float)
        want = estimate_query_lambda(dense(index, qm.terms), lengths,
                                     index.p_collection[[index.term_id(t) for t in qm.terms]],
                                     qm.weights, 3.0, tol=1e-12, max_iter=10_000)
        assert got.lam == pytest.approx(want.lam, abs=1e-9)
        assert got.log_likelihood == pytest.approx(want.log_likelihood, abs=1e-9)


def test_em_reaches_the_brute_force_maximum(index):
    # brute force: max over documents and a fine λ grid of Σ_j c_j log mix_ij(λ)
    mu = 2.0
    qm = Searcher(index, TwoStage(mu)).query_model("x y w")
    tids = [index.term_id(t) for t in qm.terms]
    pc = index.p_collection[tids]
    counts = dense(index, qm.terms)
    dl = np.asarray(index.arrays["doc_lengths"], dtype=float)
    p_doc = (counts + mu * pc) / (dl[:, None] + mu)
    grid = np.linspace(0, 1, 20001)
    ll = np.array([np.log((1 - g) * p_doc + g * pc) @ np.asarray(qm.weights) for g in grid])
    best = ll.max()
    from retrieval.estimation import query_lambdas
    em = query_lambdas(index, [qm], mu, method="em", tol=1e-13, max_iter=100_000)[0]
    assert em.log_likelihood == pytest.approx(best, abs=1e-6)
    assert em.lam == pytest.approx(grid[ll.max(axis=1).argmax()], abs=2e-3)
    direct = TwoStageEM(mu=mu).estimates(index, ["x y w"])[0]
    assert direct.log_likelihood >= best - 1e-12
    assert direct.lam == pytest.approx(grid[ll.max(axis=1).argmax()], abs=1e-4)
    assert direct.lam == pytest.approx(em.lam, abs=1e-4)


# -- ranking with each query's λ̂: brute-force cross-entropy ----------------------------

@pytest.mark.parametrize("compiled", [False, True])
def test_scores_are_the_cross_entropy_under_each_querys_lambda(index, compiled):
    mu = 2.0
    queries = ["x z z", "v w", "u", "nope", "y y x w"]
    model = TwoStageEM(mu=mu)
    lams = [e.lam for e in model.estimates(index, queries)]
    res = model.batch_search_arrays(index, queries, 10, candidates="all", compiled=compiled)
    dl = np.asarray(index.arrays["doc_lengths"], dtype=float)
    for j, text in enumerate(queries):
        qm = Searcher(index).query_model(text)
        rows = res.query_index == j
        if not len(qm):
            assert not rows.any()
            continue
        lam = lams[j]
        want = np.zeros(index.num_docs)
        for t, w in zip(qm.terms, qm.weights):
            p = index.p_collection[index.term_id(t)]
            c = dense(index, [t])[:, 0]
            p_doc = np.where(dl > 0, (1 - lam) * (c + mu * p) / (dl + mu) + lam * p, p)
            want += w * np.log(p_doc)
        got = dict(zip(res.doc_numbers[rows].tolist(), res.scores[rows].tolist()))
        assert len(got) == index.num_docs
        for d, s in got.items():
            assert s == pytest.approx(want[d], abs=1e-12)
        # the ranking is the searcher's with the fixed λ̂
        fixed = Searcher(index, TwoStage(mu, lam=lam), candidates="all").batch_search_arrays(
            [text], 10)
        assert fixed.doc_numbers.tolist() == res.doc_numbers[rows].tolist()


def test_feedback_runs_per_query(index):
    from retrieval.feedback import make_feedback
    fb = make_feedback("rm3", fb_docs=2, fb_terms=3)
    model = TwoStageEM(mu=2.0)
    texts = ["x z", "v w"]
    res = model.batch_search_arrays(index, texts, 5, feedback=fb)
    for j, (text, s) in enumerate(zip(texts, model.searchers(index, texts))):
        one = fb.batch_search_arrays(s, [text], 5)
        assert res.doc_numbers[res.query_index == j].tolist() == one.doc_numbers.tolist()
        assert res.scores[res.query_index == j].tolist() == one.scores.tolist()


def test_two_stage_em_validation(index):
    with pytest.raises(ParameterError, match="mu"):
        TwoStageEM(mu=0)
    with pytest.raises(ParameterError, match="sequence"):
        TwoStageEM().batch_search_arrays(index, "x", 5)
    assert TwoStageEM(500).label() == "two-stage(mu=500,lam=auto)"
    assert len(TwoStageEM().batch_search_arrays(index, [], 5).scores) == 0


# -- the length prior -------------------------------------------------------------------

@pytest.mark.parametrize("base", [Dirichlet(3.0), JelinekMercer(0.4), SPUD(0.8),
                                  TwoStage(5.0, 0.2)])
@pytest.mark.parametrize("beta", [0.3, -0.2])
def test_length_prior_adds_beta_log_length_on_every_path(index, base, beta):
    queries = ["x z z", "v w", "y u x", "w"]
    plain = Searcher(index, base, candidates="all", pruning=False, compiled=False)
    want = plain.batch_search_arrays(queries, 100)
    dl = np.asarray(index.arrays["doc_lengths"], dtype=float)
    prior = beta * np.log(np.maximum(dl, 1.0))
    expect = {(q, d): s + prior[d] for q, d, s in zip(want.query_index.tolist(),
                                                     want.doc_numbers.tolist(),
                                                     want.scores.tolist())}
    for pruning in (False, True):
        for compiled in (False, True):
            got = Searcher(index, LengthPrior(base, beta), candidates="all",
                           pruning=pruning, compiled=compiled).batch_search_arrays(queries, 100)
            assert len(got.scores) == len(expect)
            for q, d, s in zip(got.query_index.tolist(), got.doc_numbers.tolist(),
                               got.scores.tolist()):
                assert s == pytest.approx(expect[(q, d)], abs=1e-12)
    # the top k under pruning (matching candidates) equals the exhaustive ranking
    for k in (1, 2, 3):
        a = Searcher(index, LengthPrior(base, beta), pruning=True).batch_search_arrays(
            queries, k)
        b = Searcher(index, LengthPrior(base, beta), pruning=False,
                     compiled=False).batch_search_arrays(queries, k)
        assert a.doc_numbers.tolist() == b.doc_numbers.tolist()
        assert np.allclose(a.scores, b.scores, rtol=0, atol=1e-12)


def test_length_prior_by_hand():
    # Dirichlet μ=2, one query term x; d1 = "x y" (|d| 2), d2 = "x y y y" (|d| 4);
    # p(x|C) = 2/6: score = log((1 + 2/3)/(|d| + 2)) + β log|d|
    idx = Index.build([("1", "x y"), ("2", "x y y y")], analyzer=PLAIN)
    beta = 0.5
    got = Searcher(idx, LengthPrior(Dirichlet(2.0), beta)).search("x", 2)
    want = {"1": math.log((5 / 3) / 4) + beta * math.log(2),
            "2": math.log((5 / 3) / 6) + beta * math.log(4)}
    assert {r.docid: r.score for r in got} == pytest.approx(want, abs=1e-12)
    # β = 1 reverses the order Dirichlet gives
    assert [r.docid for r in Searcher(idx, Dirichlet(2.0)).search("x", 2)] == ["1", "2"]
    assert [r.docid for r in Searcher(idx, LengthPrior(Dirichlet(2.0), 1.0)).search(
        "x", 2)] == ["2", "1"]


def test_length_prior_model_api(index):
    m = LengthPrior(SPUD(0.8), 0.1)
    assert m.needs_index and m.monotone_in_count and m.uses == SPUD.uses
    r = m.resolved(index)
    assert isinstance(r.base, SPUD) and r.base.mass is not None and r.beta == 0.1
    assert r.label().endswith("+prior(beta=0.1)")
    assert with_length_prior(Dirichlet(), None) == Dirichlet()
    assert with_length_prior(Dirichlet(), 0) == Dirichlet()
    assert with_length_prior(Dirichlet(), 0.2) == LengthPrior(Dirichlet(), 0.2)
    # log_prob is the base model's distribution; the prior is separate
    assert np.allclose(LengthPrior(Dirichlet(3.0), 0.4).log_prob([0, 2], 5, 3, 0.1),
                       Dirichlet(3.0).log_prob([0, 2], 5, 3, 0.1))
    assert LengthPrior(Dirichlet(), 1.0).log_prior([0, 1, np.e]).tolist() == \
        pytest.approx([0.0, 0.0, 1.0])
    with pytest.raises(ParameterError, match="beta"):
        LengthPrior(Dirichlet(), float("nan"))
    with pytest.raises(ParameterError, match="smoothing model"):
        LengthPrior(LengthPrior(Dirichlet(), 0.1), 0.1)
    with pytest.raises(ParameterError, match="smoothing model"):
        LengthPrior("dirichlet", 0.1)


# -- the command line -------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("tsem") / "idx"
    Index.build(DOCS, analyzer=PLAIN).save(path)
    return path


def test_cli_search_lam_auto(saved, capsys):
    from retrieval.cli.search import main
    assert main([str(saved), "--model", "two-stage", "--lam", "auto", "--mu", "2",
                 "--feedback", "none", "--format", "trec", "x", "z"]) == 0
    lines = capsys.readouterr().out.splitlines()
    idx = Index.open(saved)
    res = TwoStageEM(mu=2.0).batch_search_arrays(idx, ["x z"], 10)
    assert [ln.split()[2] for ln in lines] == list(idx.docids.many(res.doc_numbers))
    assert [float(ln.split()[4]) for ln in lines] == res.scores.tolist()
    assert main([str(saved), "--model", "two-stage", "--lam", "auto", "--mu", "2",
                 "--format", "json", "x"]) == 0
    item = json.loads(capsys.readouterr().out)
    lam = TwoStageEM(mu=2.0).estimates(idx, ["x"])[0].lam
    assert item["model"] == TwoStage(2.0, lam).label()


@pytest.mark.parametrize("argv, message", [
    (["--model", "jm", "--lam", "auto"], "--model two-stage"),
    (["--model", "two-stage", "--lam", "auto", "--length-prior", "0.1"], "--length-prior"),
    (["--model", "two-stage", "--lam", "auto", "--collapse"], "--lam auto"),
    (["--model", "two-stage", "--lam", "often"], "number or 'auto'"),
])
def test_cli_search_lam_auto_errors(saved, capsys, argv, message):
    from retrieval.cli.search import main
    assert main([str(saved), *argv, "x"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_search_length_prior(saved, capsys):
    from retrieval.cli.search import main
    assert main([str(saved), "--model", "dirichlet", "--mu", "2", "--length-prior", "0.3",
                 "--feedback", "none", "--format", "trec", "x", "w"]) == 0
    lines = capsys.readouterr().out.splitlines()
    idx = Index.open(saved)
    want = Searcher(idx, LengthPrior(Dirichlet(2.0), 0.3)).batch_search_arrays(["x w"], 10)
    assert [float(ln.split()[4]) for ln in lines] == want.scores.tolist()


def test_cli_benchmark_and_tune_grids():
    from retrieval.cli.benchmark import build_parser, configurations_from_args
    from retrieval.cli.tune import parse_grid
    args = build_parser().parse_args(["med", "--model", "two-stage", "--lam", "auto", "0.5",
                                      "--mu", "500", "--feedback", "none"])
    labels = [c.label for c in configurations_from_args(args)]
    assert labels == ["two-stage(mu=500,lam=0.5)", "two-stage(mu=500,lam=auto)"]
    args = build_parser().parse_args(["med", "--model", "spud", "--length-prior", "0", "0.1",
                                      "--feedback", "none"])
    labels = [c.label for c in configurations_from_args(args)]
    assert labels == ["spud(omega=0.8)", "spud(omega=0.8)+prior(beta=0.1)"]
    args = build_parser().parse_args(["cranfield", "--model", "two-stage", "--lam", "auto",
                                      "--field-weights", "default"])
    with pytest.raises(ParameterError, match="--field-weights"):
        configurations_from_args(args)
    args = build_parser().parse_args(["med", "--model", "jm", "--lam", "auto"])
    with pytest.raises(ParameterError, match="two-stage"):
        configurations_from_args(args)
    model_grid, _ = parse_grid(["lam=auto,0.3", "length_prior=0,0.1"], "two-stage", "none")
    assert model_grid == {"lam": ["auto", 0.3], "length_prior": [0.0, 0.1]}
    with pytest.raises(ParameterError, match="two-stage"):
        parse_grid(["lam=auto"], "jm", "none")


# -- pruned λ̂ equals the unpruned computation, to the bit -----------------------------

def same_bits(x: float, y: float) -> bool:
    return np.float64(x).tobytes() == np.float64(y).tobytes()


def test_pruned_lambda_equals_unpruned_on_random_cases():
    from retrieval.estimation import direct_query_lambda
    rng = np.random.default_rng(16)
    kinds = set()
    for trial in range(400):
        n, m = int(rng.integers(1, 60)), int(rng.integers(1, 9))
        mu = float(rng.choice([0.5, 5.0, 50.0, 1000.0]))
        counts = rng.integers(0, 4, size=(n, m)) * (rng.random((n, m)) < 0.4)
        counts = counts.astype(float)
        if trial % 7 == 0:  # duplicated rows: ties, where the first must win
            counts = np.vstack([counts, counts[::-1]])
        dl = counts.sum(1) + rng.integers(0, 300, size=len(counts))
        pc = rng.uniform(1e-5, 0.05, size=m)
        cq = rng.integers(1, 4, size=m).astype(float)
        got = direct_query_lambda(counts, dl, pc, cq, mu)
        lam, ll, row = unpruned_lambda(counts, dl, pc, cq, mu)
        assert same_bits(got.lam, lam) and same_bits(got.log_likelihood, ll), trial
        kinds.add("zero" if lam == 0 else "one" if lam == 1 else "inner")
    assert kinds == {"zero", "one", "inner"}  # every path was exercised


def test_pruned_lambda_by_hand_prunes_a_dominated_row():
    # b = (0.1, 0.1). Row 0, a = (0.5, 0.001): g(0) = −0.8 + 99 > 0 and
    # g(1) = −4 + 0.99 < 0, an inner root, but its bound log 0.5 + log 0.1 = −3.00 is
    # below row 1's log L(0) = 2 log 0.3 = −2.41 (a = (0.3, 0.3), g(0) < 0): pruned, no
    # bisection (unpruned it would take 54 passes), and λ̂ = 0 from row 1.
    from retrieval.estimation import direct_query_lambda
    mu, dl, b = 10.0, 10.0, np.array([0.1, 0.1])
    a = np.array([[0.5, 0.001], [0.3, 0.3]])
    counts = a * (dl + mu) - mu * b
    est = direct_query_lambda(counts, [dl, dl], b, [1.0, 1.0], mu)
    assert est.lam == 0.0 and est.iterations == 0  # the inner row was pruned
    assert est.log_likelihood == pytest.approx(2 * math.log(0.3), abs=1e-12)


def test_pruned_lambda_equals_unpruned_on_the_sample_corpus(sample_dir):
    from retrieval.estimation import query_lambdas
    sample = Index.build([(p.stem, p.read_text()) for p in sorted(
        (sample_dir / "docs").rglob("*.txt"))], analyzer=Analyzer())
    texts = [line.split("\t", 1)[1] for line in
             (sample_dir / "queries.tsv").read_text().splitlines() if "\t" in line]
    texts += [f"{x} {y}" for x, y in zip(texts, texts[1:])]  # longer queries
    base = Searcher(sample, TwoStage(1000.0))
    models = [qm for qm in map(base.query_model, texts) if len(qm.terms)]
    checked = 0
    for mu in (100.0, 1000.0):
        for qm, est in zip(models, query_lambdas(sample, models, mu)):
            tids = [sample.term_id(t) for t in qm.terms]
            counts, dl = collapsed_rows(sample, tids)
            lam, ll, _ = unpruned_lambda(counts, dl, sample.p_collection[tids],
                                         qm.weights, mu)
            assert same_bits(est.lam, lam) and same_bits(est.log_likelihood, ll)
            checked += 1
    assert checked == 2 * len(models) > 20


@pytest.mark.slow
@pytest.mark.collections
@pytest.mark.parametrize("name", ["cranfield", "cisi", "med", "cacm", "nfcorpus"])
def test_pruned_lambda_equals_unpruned_on_the_shared_collections(name, collections_dir):
    from retrieval.benchmarking import cached_index
    from retrieval.collections import load_collection
    coll = load_collection(name, root=collections_dir)
    shared, _, _ = cached_index(coll, Analyzer(), None)
    texts = [q.text for q in coll.queries]
    base = Searcher(shared, TwoStage(1000.0), compiled=False)
    batch = base.prepare(texts)
    ptr = batch.ptr.tolist()
    estimates = TwoStageEM(1000.0).estimates(shared, texts)
    inner = 0
    for j, est in enumerate(estimates):
        tids = batch.term_ids[ptr[j]:ptr[j + 1]]
        if len(tids) == 0:
            assert est.lam == 0.5
            continue
        counts, dl = collapsed_rows(shared, tids)
        lam, ll, _ = unpruned_lambda(counts, dl, shared.p_collection[tids],
                                     batch.weights[ptr[j]:ptr[j + 1]], 1000.0)
        assert same_bits(est.lam, lam) and same_bits(est.log_likelihood, ll), j
        inner += 0.0 < lam < 1.0
    assert len(estimates) == len(texts)


def test_lambda_zero_is_dirichlet_bit_for_bit():
    # TwoStage(μ, 0) and Dirichlet(μ): the same weights to the bit (model_for's premise)
    rng = np.random.default_rng(5)
    c = rng.integers(1, 50, size=500).astype(float)
    dl = c + rng.integers(0, 3000, size=500)
    p = rng.uniform(1e-7, 0.05, size=500)
    for mu in (1.0, 1000.0, 2500.0):
        two, dirichlet = TwoStage(mu, lam=0.0), Dirichlet(mu)
        assert np.array_equal(two.matched_weight(c, dl, None, p),
                              dirichlet.matched_weight(c, dl, None, p))
        assert np.array_equal(two.log_alpha(dl, None), dirichlet.log_alpha(dl, None))
    assert isinstance(TwoStageEM(10.0).model_for(0.0), Dirichlet)
    assert TwoStageEM(10.0).model_for(0.25) == TwoStage(10.0, lam=0.25)


@pytest.mark.slow
@pytest.mark.collections
@pytest.mark.parametrize("name", ["cranfield", "med"])
@pytest.mark.parametrize("compiled", [False, True])
def test_batch_equals_each_query_under_its_two_stage_model(name, compiled, collections_dir):
    # every query ranked by its own TwoStage(μ, λ̂_q) one at a time: the batch (λ̂ = 0
    # searched as Dirichlet) gives the same documents and scores, bit for bit
    from retrieval.benchmarking import cached_index
    from retrieval.collections import load_collection
    coll = load_collection(name, root=collections_dir)
    shared, _, _ = cached_index(coll, Analyzer(), None)
    texts = [q.text for q in coll.queries]
    model = TwoStageEM(1000.0)
    got = model.batch_search_arrays(shared, texts, 100, compiled=compiled)
    for j, (text, est) in enumerate(zip(texts, model.estimates(shared, texts))):
        want = Searcher(shared, TwoStage(1000.0, lam=est.lam), compiled=compiled
                        ).batch_search_arrays([text], 100)
        rows = got.query_index == j
        assert np.array_equal(got.doc_numbers[rows], want.doc_numbers), j
        assert np.array_equal(got.scores[rows], want.scores), j


def test_lam_auto_queries_without_a_known_term():
    """Queries none of whose terms is indexed keep λ = 0.5 and match nothing: alone they
    give an empty result (not an error), beside others they do not change the others'
    rankings."""
    index = Index.build([("a", "glacier ice moves"), ("b", "rivers flow fast")])
    em = TwoStageEM(1000.0)
    none = em.batch_search_arrays(index, ["qqqzzz", "xxyyzz"], 10)
    assert len(none.query_index) == len(none.doc_numbers) == len(none.scores) == 0
    alone = em.batch_search_arrays(index, ["glacier", "rivers"], 10)
    mixed = em.batch_search_arrays(index, ["glacier", "qqqzzz", "rivers"], 10)
    assert np.array_equal(mixed.query_index, np.where(alone.query_index == 0, 0, 2))
    assert np.array_equal(mixed.doc_numbers, alone.doc_numbers)
    assert np.array_equal(mixed.scores, alone.scores)
