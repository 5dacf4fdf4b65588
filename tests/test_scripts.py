"""The benchmark scripts run (tiny sizes) so they cannot rot.

``scripts/make_corpus.py`` and ``scripts/bench_speed.py`` are run as a user runs them,
in subprocesses with ``sys.executable``, inside ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MAKE_CORPUS = SCRIPTS / "make_corpus.py"
BENCH = SCRIPTS / "bench_speed.py"


def _run(*args, timeout=120) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The generator's model, fitted once (from the shared collections when present)."""
    path = tmp_path_factory.mktemp("model") / "model.json"
    _run(MAKE_CORPUS, "--fit-report", "--save-model", path)
    assert json.loads(path.read_text())["zipf_tail_exponent"] > 1
    return path


@pytest.mark.slow
def test_make_corpus_is_deterministic(tmp_path, model):
    outs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out = tmp_path / name
        _run(MAKE_CORPUS, "--docs", 5000, "--queries", 40, "--seed", seed, "--out", out,
             "--model", model, "-q")
        outs.append(out)
    a, b, c = outs
    assert _md5(a / "docs.jsonl") == _md5(b / "docs.jsonl")
    assert _md5(a / "queries.tsv") == _md5(b / "queries.tsv")
    assert _md5(a / "docs.jsonl") != _md5(c / "docs.jsonl")
    lines = (a / "docs.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5000
    ids = [json.loads(line)["id"] for line in lines]
    assert len(set(ids)) == 5000
    queries = (a / "queries.tsv").read_text(encoding="utf-8").splitlines()
    assert len(queries) == 40
    for line in queries:
        qid, text = line.split("\t")
        assert 1 <= len(text.split()) <= 6
    meta = json.loads((a / "meta.json").read_text())
    assert meta["stats"]["documents"] == 5000
    # the vocabulary grows with the corpus (Heaps' law), not saturating
    curve = meta["stats"]["vocabulary_curve"]
    assert curve[-1][1] > curve[0][1]


@pytest.mark.slow
def test_make_corpus_shared(tmp_path, collections_dir):
    out = tmp_path / "shared"
    _run(MAKE_CORPUS, "--shared", "--out", out)
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta["collections"]) == {"cranfield", "cisi", "med", "cacm", "nfcorpus"}
    first = json.loads((out / "docs.jsonl").open(encoding="utf-8").readline())
    assert first["id"].startswith("cranfield/")
    n_docs = sum(1 for _ in (out / "docs.jsonl").open(encoding="utf-8"))
    assert n_docs == meta["stats"]["documents"] == sum(
        c["documents"] for c in meta["collections"].values())


@pytest.mark.slow
def test_bench_speed_tiny(tmp_path):
    out = tmp_path / "results"
    # this engine's rows only (and its CLI): peers are exercised by the full runs, and
    # their imports alone would take most of the time budget here
    proc = _run(BENCH, "--tiny", "--systems", "ours,ours-columnar,ours-arrays,ours-cli",
                "--out", out, "--work", tmp_path / "work", timeout=240)
    for row in ("ours · common", "ours-columnar · common", "ours-arrays · common",
                "ours · default"):
        assert f"| {row} · qld_mu1000 |" in proc.stdout
    # the engine's default model (SPUD) beside Dirichlet, and its budget table; the CLI
    # runs the default model
    for row in ("ours-columnar · default", "ours-cli · default"):
        assert f"| {row} · spud_omega0.8 |" in proc.stdout
    assert "| ours-columnar · default | " in proc.stdout.split("budget: at most 1.5×")[1]
    data = json.loads((out / "tiny.json").read_text())
    assert data["info"]["documents"] == 300
    rows = {(r["system"], r["mode"]): r for r in data["rows"]}
    ours = rows[("ours", "common")]
    assert ours["build"]["build_s"] > 0
    assert ours["build"]["index_bytes"] > 0
    assert ours["build"]["rss_peak_mb"] > 0
    assert "Analyzer(stopwords='lucene', stemmer='snowball')" == \
        rows[("ours", "default")]["build"]["analyzer"]
    # the engine rows share one build per mode
    assert rows[("ours-columnar", "common")]["build"] == ours["build"]
    for k in ("10", "1000"):
        assert ours["query"]["k"][k]["qps"] > 0
        assert ours["query"]["k"][k]["p99_ms"] >= ours["query"]["k"][k]["p50_ms"]
        assert ours["query"]["k"][k]["latency_queries"] == 10
    assert ours["query"]["k"]["10"]["cpu_qps"] > 0
    assert ours["query"]["loadavg_min"] is not None and len(ours["query"]["rounds"]) == 1
    # the latency sample spans the query set, not its first queries
    sample = data["latency_sample"]
    assert len(sample) == len(set(sample)) == 10 and max(sample) >= 15
    assert (out / "tiny.md").read_text().startswith("### tiny")
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "build_time.png").stat().st_size > 0
        assert (out / "query_time_k1000.png").stat().st_size > 0


def test_bench_speed_rounds_and_headline():
    """Rounds → best q/s and median percentiles; the engine ÷ peer table."""
    bench = _load_script("bench_speed")
    rounds = [{"open_s": 1.0, "rss_peak_mb": 10, "loadavg_start": 1.5, "loadavg_end": 2.5,
               "k": {"10": {"batch_s": b, "qps": 100 / b, "latency_queries": 5,
                            "p50_ms": p, "p95_ms": p, "p99_ms": p, "mean_ms": p}}}
              for b, p in ((2.0, 1.0), (1.0, 3.0), (4.0, 2.0))]
    agg = bench._aggregate(rounds + [{"error": "exit 1"}], [10])
    assert agg["k"]["10"]["qps"] == 100 and agg["k"]["10"]["p50_ms"] == 2.0
    assert agg["k"]["10"]["batch_runs_s"] == [2.0, 1.0, 4.0]
    assert (agg["loadavg_min"], agg["loadavg_max"]) == (1.5, 2.5)
    row = {"build": {}, "query": {"k": {"10": {"qps": 300.0}}}}
    res = {"k": [10], "rows": [
        {**row, "system": "ours-columnar", "mode": "default", "method": "qld_mu1000"},
        {**row, "system": "bm25s", "mode": "default", "method": "bm25",
         "query": {"k": {"10": {"qps": 600.0}}}}]}
    lines = bench.headline(res)
    assert any("0.50× (300 vs 600)" in line for line in lines)
    # issue 16's budget: SPUD's query time ÷ Dirichlet's (here 300 vs 200 q/s: 1.5×)
    res["rows"].append({"build": {}, "system": "ours-columnar", "mode": "default",
                        "method": "spud_omega0.8", "query": {"k": {"10": {"qps": 200.0}}}})
    assert bench.headline(res) == lines
    assert any("1.50× (200 vs 300 q/s)" in line for line in bench.budget(res))
    rounds[0]["queries"] = 100
    for r, c in zip(rounds, (0.5, 0.25, 1.0)):
        r["k"]["10"].update(batch_cpu_s=c, cpu={"p50_ms": c, "p95_ms": c, "p99_ms": c})
    agg = bench._aggregate(rounds, [10])
    assert agg["k"]["10"]["cpu_qps"] == 400 and agg["k"]["10"]["cpu"]["p50_ms"] == 0.5


@pytest.mark.slow
def test_bench_update_tiny(tmp_path, model):
    out = tmp_path / "results"
    proc = _run(SCRIPTS / "bench_update.py", "--docs", 800, "--seed", 3, "--out", out,
                "--work", tmp_path / "work", "--model", model, "-q", timeout=180)
    assert "| update (0.5% modified, 0.25% new, 0.25% removed files; median of 3) | 8 |" \
        in proc.stdout
    data = json.loads((out / "docs800.json").read_text())
    assert data["equal_to_fresh_build"] is True and data["check_problems"] == []
    ops = [r["operation"].split(" ")[0] for r in data["rows"]]
    assert ops == ["full", "update", "full", "add_documents", "delete_documents", "check"]
    assert all(r["seconds"] > 0 for r in data["rows"])
    # each round: 4 files modified, 2 removed, 2 new; the other 794 are not read again
    assert data["rows"][1]["unchanged_not_analysed"] == [800 - 4 - 2] * 3
    assert len(data["rows"][1]["rounds_seconds"]) == 3
    assert (out / "docs800.md").read_text().startswith("### Incremental changes, 800")


@pytest.mark.slow
def test_bench_jobs_tiny(tmp_path, model):
    corpus = tmp_path / "corpus"
    _run(MAKE_CORPUS, "--docs", 400, "--queries", 20, "--out", corpus, "--model", model, "-q")
    out = tmp_path / "jobs"
    proc = _run(SCRIPTS / "bench_jobs.py", "--corpus", corpus, "--jobs", "1,2",
                "--repeat", "1", "--out", out)
    assert "| 2 |" in proc.stdout and "bit-identical" in proc.stdout
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [r["jobs"] for r in rows] == [1, 2] and all(r["qps_k10"] > 0 for r in rows)


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_choose_feedback_defaults_rule_and_development_queries(collections_dir):
    """The defaults' protocol: the first configuration in grid order within the
    tolerance of the best; development queries are NFCorpus train + dev, never test."""
    choose = _load_script("choose_feedback_defaults")
    tol = choose.TOLERANCE
    scores = [({"a": 1}, 0.30), ({"a": 2}, 0.31 - tol / 2), ({"a": 3}, 0.31)]
    assert choose.choose(scores) == ({"a": 2}, 0.31 - tol / 2, 0.31)
    assert choose.choose(scores[:1] + scores[2:]) == ({"a": 3}, 0.31, 0.31)
    dev = choose.development_collection(collections_dir / "nfcorpus")
    test_queries = {q.qid: q.text for q in
                    _nfcorpus_test_queries(collections_dir / "nfcorpus")}
    qids = [q.qid for q in dev.queries]
    assert len(qids) == len(set(qids)) == len(dev.judged_qids) == 2846
    assert not set(qids) & set(test_queries)
    assert not {q.text for q in dev.queries} & set(test_queries.values())
    assert len(dev.documents) == 3193
    docids = {d.docid for d in dev.documents}
    assert all(r.docid in docids and r.relevance > 0 for r in dev.qrels)


def _nfcorpus_test_queries(folder: Path):
    from retrieval.collections.nfcorpus import load_nfcorpus
    return load_nfcorpus(folder, split="test").queries


@pytest.mark.slow
def test_bench_scale_tiny(tmp_path, model):
    """--builds (a --memory build in a child, its CPU time and peak RSS, a search check)
    and the search comparison (indexes kept in --work and reused)."""
    corpus = tmp_path / "corpus"
    _run(MAKE_CORPUS, "--docs", 600, "--queries", 30, "--out", corpus, "--model", model, "-q")
    out = tmp_path / "scale"
    _run(SCRIPTS / "bench_scale.py", "--builds", "--memory", "300MB", "--corpus", corpus,
         "--work", tmp_path / "work", "--out", out, "--queries", 30, timeout=300)
    data = json.loads((out / "builds-mem300MB-docs600.json").read_text())
    row = data["builds"][0]
    assert row["documents"] == 600 and 0 < row["peak_rss_bytes"] < 300 * 2**20
    assert row["cpu_seconds"] > 0 and 0 < row["search"]["results"] <= 30 * 10
    args = ("--corpus", corpus, "--work", tmp_path / "work", "--out", out, "--queries", 30,
            "--latency-queries", 5, "--rounds", 1, "--shards", 2, "--workers", 1)
    _run(SCRIPTS / "bench_scale.py", *args, timeout=300)
    built = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert built == ["sh2", "single"]
    stamp = (tmp_path / "work" / "sh2" / "shards.json").stat().st_mtime_ns
    _run(SCRIPTS / "bench_scale.py", *args, timeout=300)   # reuses the indexes
    assert (tmp_path / "work" / "sh2" / "shards.json").stat().st_mtime_ns == stamp
    rows = json.loads((out / "scale-docs600.json").read_text())["search"]
    assert [r["setup"] for r in rows] == ["single index", "sharded, in process",
                                          "Dask LocalCluster"]
