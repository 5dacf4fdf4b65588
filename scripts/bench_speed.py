#!/usr/bin/env python3
"""Speed side by side: this engine, bm25s, PISA (pyterrier-pisa) and rank_bm25.

One run, one corpus, the same queries and the same k for every system. Each system's
index build and its query phase run in their own subprocess (this script with
``--worker``), so peak memory is the whole process's ``ru_maxrss`` (read with
``os.wait4``); times are measured in-process around the calls themselves.

Analyzers, stated per row:

``common``  every system gets the *same pre-analysed tokens*: this engine's
            ``Analyzer("lucene", "porter")`` is run once over the corpus (its time is
            reported apart as "pre-analysis"); the tokens are given as whitespace-joined
            text (this engine with ``Analyzer("none","none")``; PISA with stemmer and stop
            list ``none``; bm25s through ``bm25s.tokenize`` with a ``\\S+`` pattern, no
            stop words, no stemmer) or as token lists (rank_bm25). Queries likewise.
``default`` each system analyses the raw text itself with its own defaults: this
            engine's Analyzer (lucene stop words, original Porter), bm25s's English stop
            words + PyStemmer English (Snowball) when PyStemmer is installed, PISA's
            tokenizer + Porter2 + Terrier stop list. Build time then includes tokenising.

Methods: this engine ranks by query likelihood with Dirichlet smoothing (μ = 1000).
PISA runs its ``qld`` scorer (μ = 1000; Lucene-style, see anchors) and ``bm25``
(k1 = 0.9, b = 0.4, PISA's defaults), both with block-max WAND, one thread. bm25s has
BM25 only (``method="lucene"``, k1 = 1.5, b = 0.75, its defaults; numpy backend,
``n_threads=0``). rank_bm25 is ``BM25Okapi`` (exhaustive, small corpora only, on a sample of
queries).

Metrics: build time (tokenising / indexing / saving), index size on disk, peak RSS of the
build and of the query process, batch throughput over all queries (queries/s; the best of
``--repeat`` runs after a warm-up), single-query latency p50/p95/p99 over
``--latency-queries`` queries, for each k in ``--k``. A Markdown table (with each peer's
ratio to this engine in the same analyzer mode) is printed and written with a JSON file.

``--sizes 10000,100000,1000000`` sweeps synthetic corpora (``make_corpus.py``) and draws
log–log plots of build time and query time against corpus size, with fitted slopes.

Examples::

    python scripts/bench_speed.py --shared
    python scripts/bench_speed.py --docs 100k
    python scripts/bench_speed.py --sizes 10000,100000,1000000
    python scripts/bench_speed.py --tiny            # CI: a few hundred documents, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = REPO / "results" / "speed"
SYSTEMS = ("ours", "ours-cli", "bm25s", "pisa", "rank_bm25")
MODES = ("common", "default")
THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS")}


# ----------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------
def _maxrss_mb() -> float:
    """This process's peak resident set (MB).

    ``VmHWM`` of /proc/self/status where there is one: it belongs to the process's own
    address space, while ``ru_maxrss`` on Linux also carries the parent's high-water mark
    over fork and exec (a worker started by a 130 MB parent reports at least 130 MB).
    """
    hwm = _vmhwm_mb("self")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _vmhwm_mb(pid) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def _dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _read_jsonl(path: Path) -> list[tuple[str, str]]:
    try:
        import orjson
        loads = orjson.loads
    except ImportError:  # pragma: no cover
        loads = json.loads
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                rec = loads(line)
                out.append((str(rec["id"]), rec["text"]))
    return out


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line:
                key, _, text = line.partition("\t")
                out.append((key, text))
    return out


def available(system: str) -> str | None:
    """None when ``system`` can run here, else why not."""
    import importlib.util
    need = {"bm25s": "bm25s", "pisa": "pyterrier_pisa", "rank_bm25": "rank_bm25"}.get(system)
    if system == "ours-cli":
        return None if shutil.which("retrieval") else "the 'retrieval' command is not on PATH"
    if need and importlib.util.find_spec(need) is None:
        pkg = {"pisa": "pyterrier-pisa"}.get(system, system)
        return f"not installed (pip install {pkg})"
    return None


def percentiles(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64) * 1000.0
    if not len(a):
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(a.mean())}


# ----------------------------------------------------------------------------------
# corpus preparation (parent process)
# ----------------------------------------------------------------------------------
def prepare(corpus: Path, work: Path) -> dict:
    """Pre-analyse documents and queries with this engine's Analyzer, once."""
    from retrieval import Analyzer
    work.mkdir(parents=True, exist_ok=True)
    analyzer = Analyzer("lucene", "porter")
    t0 = time.perf_counter()
    docs = _read_jsonl(corpus / "docs.jsonl")
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_tokens = 0
    with open(work / "tokens.tsv", "w", encoding="utf-8") as fh:
        for docid, text in docs:
            terms = analyzer.analyze(text)
            n_tokens += len(terms)
            fh.write(f"{docid}\t{' '.join(terms)}\n")
    t_analyse = time.perf_counter() - t0
    queries = _read_tsv(corpus / "queries.tsv")
    with open(work / "qtokens.tsv", "w", encoding="utf-8") as fh:
        for qid, text in queries:
            fh.write(f"{qid}\t{' '.join(analyzer.analyze(text))}\n")
    info = {"documents": len(docs), "queries": len(queries), "analysed_tokens": n_tokens,
            "read_s": t_read, "pre_analysis_s": t_analyse,
            "corpus_bytes": (corpus / "docs.jsonl").stat().st_size}
    del docs
    return info


# ----------------------------------------------------------------------------------
# workers (subprocesses)
# ----------------------------------------------------------------------------------
def _load_docs(spec: dict) -> list[tuple[str, str]]:
    if spec["mode"] == "common":
        return _read_tsv(Path(spec["work"]) / "tokens.tsv")
    return _read_jsonl(Path(spec["corpus"]) / "docs.jsonl")


def _load_queries(spec: dict) -> list[tuple[str, str]]:
    if spec["mode"] == "common":
        return _read_tsv(Path(spec["work"]) / "qtokens.tsv")
    return _read_tsv(Path(spec["corpus"]) / "queries.tsv")


def worker_build(spec: dict) -> dict:
    system, mode, index_dir = spec["system"], spec["mode"], Path(spec["index"])
    t0 = time.perf_counter()
    docs = _load_docs(spec)
    res = {"load_input_s": time.perf_counter() - t0, "rss_input_mb": _maxrss_mb()}
    tok_s = 0.0
    if system == "ours":
        from retrieval import Analyzer, Index
        analyzer = Analyzer("none", "none") if mode == "common" else Analyzer("lucene", "porter")
        t0 = time.perf_counter()
        index = Index.build(docs, analyzer=analyzer, store_text=False)
        t1 = time.perf_counter()
        index.save(index_dir)
        t2 = time.perf_counter()
    elif system == "bm25s":
        import bm25s
        texts = [t for _, t in docs]
        del docs
        t0 = time.perf_counter()
        if mode == "common":
            toks = bm25s.tokenize(texts, lower=False, token_pattern=r"(?u)\S+", stopwords=[],
                                  stemmer=None, show_progress=False)
        else:
            toks = bm25s.tokenize(texts, stopwords="en", stemmer=_bm25s_stemmer(),
                                  show_progress=False)
        tok_s = time.perf_counter() - t0
        del texts
        retriever = bm25s.BM25()
        retriever.index(toks, show_progress=False)
        t1 = time.perf_counter()
        retriever.save(str(index_dir), show_progress=False)
        t2 = time.perf_counter()
        res["stemmer"] = type(_bm25s_stemmer()).__name__ if mode == "default" else None
    elif system == "pisa":
        import pyterrier_pisa
        kw = ({"stemmer": "none", "stops": "none"} if mode == "common" else {})
        pidx = pyterrier_pisa.PisaIndex(str(index_dir), threads=1, **kw)
        t0 = time.perf_counter()
        pidx.index({"docno": d, "text": t} for d, t in docs)
        t1 = t2 = time.perf_counter()   # PISA writes its index as it builds
    elif system == "rank_bm25":
        import pickle
        from rank_bm25 import BM25Okapi
        t0 = time.perf_counter()
        toks = [t.split() for _, t in docs]
        tok_s = time.perf_counter() - t0
        model = BM25Okapi(toks)
        t1 = time.perf_counter()
        index_dir.mkdir(parents=True, exist_ok=True)
        with open(index_dir / "bm25okapi.pkl", "wb") as fh:
            pickle.dump((model, [d for d, _ in docs]), fh, protocol=pickle.HIGHEST_PROTOCOL)
        t2 = time.perf_counter()
    else:
        raise SystemExit(f"unknown system {system}")
    if system == "ours":
        res["engine"] = engine_version()
    res.update({"tokenize_s": tok_s, "index_s": t1 - t0 - tok_s, "save_s": t2 - t1,
                "build_s": t2 - t0, "index_bytes": _dir_bytes(index_dir),
                "rss_peak_mb": _maxrss_mb()})
    return res


def _bm25s_stemmer():
    try:
        import Stemmer
        return Stemmer.Stemmer("english")
    except ImportError:
        return None


def worker_query(spec: dict) -> dict:
    system, mode, index_dir = spec["system"], spec["mode"], Path(spec["index"])
    queries = _load_queries(spec)
    texts = [t for _, t in queries]
    ks = spec["k"]
    method = spec.get("method")
    res: dict = {"rss_start_mb": _maxrss_mb()}
    t0 = time.perf_counter()
    n_docs = None
    if system == "ours":
        from retrieval import Dirichlet, Index, Searcher
        index = Index.open(index_dir)
        # a long-running process: the compiled kernels are loaded once (their loading,
        # ~0.45 s, counts in open_s, not in the query times)
        searcher = Searcher(index, Dirichlet(mu=1000), compiled=True)
        try:
            from retrieval import _kernels  # noqa: F401  (numba installed: load now)
        except ImportError:
            pass
        res["kernels"] = "numba" if "retrieval._kernels" in sys.modules else "none"
        n_docs = index.num_docs

        def batch(qs, k):
            return searcher.batch_search_arrays(qs, k)

        def single(q, k):
            return searcher.search(q, k)
    elif system == "bm25s":
        import bm25s
        retriever = bm25s.BM25.load(str(index_dir))
        n_docs = int(retriever.scores["num_docs"])
        stemmer = _bm25s_stemmer() if mode == "default" else None

        def _toks(qs):
            if mode == "common":
                return [q.split() for q in qs]
            return bm25s.tokenize(qs, stopwords="en", stemmer=stemmer, return_ids=False,
                                  show_progress=False)

        def batch(qs, k):
            return retriever.retrieve(_toks(qs), k=min(k, n_docs), n_threads=0,
                                      show_progress=False)

        def single(q, k):
            return retriever.retrieve(_toks([q]), k=min(k, n_docs), n_threads=0,
                                      show_progress=False)
    elif system == "pisa":
        import pandas as pd
        import pyterrier_pisa
        pidx = pyterrier_pisa.PisaIndex(str(index_dir), threads=1)
        n_docs = pidx.num_docs()
        retr = {}
        for k in ks:
            if method == "qld":
                retr[k] = pidx.qld(mu=1000.0, num_results=k, threads=1)
            else:
                retr[k] = pidx.bm25(num_results=k, threads=1)

        def batch(qs, k):
            frame = pd.DataFrame({"qid": [str(i) for i in range(len(qs))], "query": qs})
            return retr[k].transform(frame)

        def single(q, k):
            return retr[k].transform(pd.DataFrame({"qid": ["1"], "query": [q]}))
    elif system == "rank_bm25":
        import pickle
        with open(index_dir / "bm25okapi.pkl", "rb") as fh:
            model, _ids = pickle.load(fh)
        n_docs = len(_ids)
        texts = texts[:spec["rank_bm25_queries"]]

        def single(q, k):
            s = model.get_scores(q.split())
            k = min(k, len(s))
            top = np.argpartition(-s, k - 1)[:k]
            return top[np.argsort(-s[top], kind="stable")]

        def batch(qs, k):
            return [single(q, k) for q in qs]
    else:
        raise SystemExit(f"unknown system {system}")
    res["open_s"] = time.perf_counter() - t0
    res["rss_open_mb"] = _maxrss_mb()
    res["documents"] = n_docs
    res["queries"] = len(texts)
    # warm-up: the first few queries once at each k
    for k in ks:
        batch(texts[:20], k)
    per_k = {}
    lat_n = min(len(texts), spec["latency_queries"])
    for k in ks:
        times = []
        for _ in range(max(1, spec["repeat"])):
            t0 = time.perf_counter()
            batch(texts, k)
            times.append(time.perf_counter() - t0)
        best = min(times)
        lat = []
        for q in texts[:lat_n]:
            t0 = time.perf_counter()
            single(q, k)
            lat.append(time.perf_counter() - t0)
        per_k[str(k)] = {"batch_s": best, "batch_runs_s": times,
                         "qps": len(texts) / best if best > 0 else None,
                         "latency_queries": lat_n, **percentiles(lat)}
    res["k"] = per_k
    res["rss_peak_mb"] = _maxrss_mb()
    if system == "ours":
        res["engine"] = engine_version()
    return res


def worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    fn = worker_build if spec["phase"] == "build" else worker_query
    out = fn(spec)
    with open(spec["result"], "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    return 0


# ----------------------------------------------------------------------------------
# running workers
# ----------------------------------------------------------------------------------
def run_process(cmd: list[str], *, timeout: float | None = None, stdout=None) -> dict:
    """Run ``cmd``; wall time, exit status and peak RSS (MB) of that process.

    The peak is the child's ``VmHWM`` polled every 10 ms until it exits (its own address
    space; see :func:`_maxrss_mb`), with ``ru_maxrss`` from ``os.wait4`` kept for reference.
    """
    env = dict(os.environ, **THREAD_ENV)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout or subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = None if timeout is None else time.monotonic() + timeout
    status = ru = None
    stderr_chunks = []
    # read stderr in a thread so a chatty child cannot block
    import threading
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()),
                              daemon=True)
    reader.start()
    hwm = 0.0
    while True:
        seen = _vmhwm_mb(proc.pid)
        if seen is not None:
            hwm = max(hwm, seen)
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            status = -9
            break
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status) if status != -9 else -9
    reader.join(timeout=5)
    err = (stderr_chunks[0] if stderr_chunks else b"").decode("utf-8", "replace")
    return {"wall_s": wall, "maxrss_mb": hwm or ru.ru_maxrss / 1024.0,
            "ru_maxrss_mb": ru.ru_maxrss / 1024.0, "returncode": proc.returncode,
            "stderr_tail": err[-2000:], "user_s": ru.ru_utime, "sys_s": ru.ru_stime}


def run_worker(spec: dict, timeout: float | None) -> dict:
    result = Path(spec["result"])
    if result.exists():
        result.unlink()
    proc = run_process([sys.executable, str(Path(__file__).resolve()), "--worker",
                        json.dumps(spec)], timeout=timeout)
    out = {"process": proc}
    if proc["returncode"] == 0 and result.exists():
        out.update(json.loads(result.read_text(encoding="utf-8")))
    else:
        out["error"] = (f"exit {proc['returncode']}: "
                        + proc["stderr_tail"].strip().splitlines()[-1:][0]
                        if proc["stderr_tail"].strip() else f"exit {proc['returncode']}")
    return out


def run_cli(corpus: Path, work: Path, ks: list[int], timeout: float | None) -> dict:
    """This engine as a user runs it: ``retrieval index`` then ``retrieval search``."""
    exe = shutil.which("retrieval")
    index_dir = work / "index-ours-cli"
    shutil.rmtree(index_dir, ignore_errors=True)
    b = run_process([exe, "index", str(corpus / "docs.jsonl"), "-o", str(index_dir),
                     "--no-text", "-q"], timeout=timeout)
    out = {"build": {"build_s": b["wall_s"], "rss_peak_mb": b["maxrss_mb"],
                     "index_bytes": _dir_bytes(index_dir) if index_dir.exists() else None,
                     "process": b}}
    if b["returncode"] != 0:
        out["build"]["error"] = b["stderr_tail"].strip().splitlines()[-1:]
        return out
    n_q = sum(1 for line in open(corpus / "queries.tsv", encoding="utf-8") if line.strip())
    q = {"k": {}, "queries": n_q}
    peak = 0.0
    for k in ks:
        with open(os.devnull, "wb") as sink:
            r = run_process([exe, "search", str(index_dir), "--queries",
                             str(corpus / "queries.tsv"), "-k", str(k), "--format", "trec"],
                            timeout=timeout, stdout=sink)
        if r["returncode"] != 0:
            q["error"] = r["stderr_tail"].strip().splitlines()[-1:]
            break
        peak = max(peak, r["maxrss_mb"])
        q["k"][str(k)] = {"batch_s": r["wall_s"], "qps": n_q / r["wall_s"],
                          "note": "whole process: start-up, open, analyse, search, write TREC"}
    q["rss_peak_mb"] = peak
    out["query"] = q
    return out


# ----------------------------------------------------------------------------------
# one corpus
# ----------------------------------------------------------------------------------
def bench_corpus(corpus: Path, label: str, args, work_root: Path) -> dict:
    work = work_root / label
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    log(f"[{label}] pre-analysing {corpus}")
    info = prepare(corpus, work)
    log(f"[{label}] {info['documents']:,} documents, {info['queries']:,} queries, "
        f"pre-analysis {info['pre_analysis_s']:.1f} s")
    ks = args.k
    rows = []
    skipped = {}
    for system in args.systems:
        why = available(system)
        if why:
            skipped[system] = why
            log(f"[{label}] skip {system}: {why}")
            continue
        if system == "rank_bm25" and info["documents"] > args.rank_bm25_max_docs:
            skipped[system] = (f"corpus has {info['documents']:,} documents > "
                               f"--rank-bm25-max-docs {args.rank_bm25_max_docs:,}")
            log(f"[{label}] skip rank_bm25: {skipped[system]}")
            continue
        if system == "ours-cli":
            if "default" not in args.modes:
                continue
            log(f"[{label}] ours-cli: retrieval index / retrieval search")
            r = run_cli(corpus, work, ks, args.timeout)
            rows.append({"system": "ours-cli", "mode": "default", "method": "qld_mu1000",
                         **r})
            continue
        modes = ["common"] if system == "rank_bm25" else args.modes
        for mode in modes:
            index_dir = work / f"index-{system}-{mode}"
            base = {"system": system, "mode": mode, "work": str(work), "corpus": str(corpus),
                    "index": str(index_dir), "k": ks, "repeat": args.repeat,
                    "latency_queries": args.latency_queries,
                    "rank_bm25_queries": args.rank_bm25_queries}
            log(f"[{label}] {system}/{mode}: build")
            build = run_worker({**base, "phase": "build",
                                "result": str(work / f"build-{system}-{mode}.json")},
                               args.timeout)
            if "error" in build:
                log(f"[{label}] {system}/{mode}: build failed: {build['error']}")
            methods = {"ours": ["qld_mu1000"], "bm25s": ["bm25_lucene_k1.5_b0.75"],
                       "pisa": ["qld_mu1000", "bm25_k0.9_b0.4"],
                       "rank_bm25": ["bm25okapi_k1.5_b0.75"]}[system]
            for method in methods:
                row = {"system": system, "mode": mode, "method": method, "build": build}
                if "error" not in build:
                    log(f"[{label}] {system}/{mode}/{method}: queries")
                    row["query"] = run_worker(
                        {**base, "phase": "query", "method": method.split("_")[0],
                         "result": str(work / f"query-{system}-{mode}-{method}.json")},
                        args.timeout)
                    if "error" in row["query"]:
                        log(f"[{label}] {system}/{mode}/{method}: query failed: "
                            f"{row['query']['error']}")
                rows.append(row)
            if not args.keep_indexes:
                shutil.rmtree(index_dir, ignore_errors=True)
    shutil.rmtree(work / "index-ours-cli", ignore_errors=True) if not args.keep_indexes \
        else None
    return {"label": label, "corpus": str(corpus), "info": info, "k": ks, "rows": rows,
            "skipped": skipped, "seconds": time.perf_counter() - t_start}


# ----------------------------------------------------------------------------------
# reporting
# ----------------------------------------------------------------------------------
def _g(d, *keys):
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def _ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def peak_mb(r: dict, phase: str) -> float | None:
    """Peak RSS of a row's build or query process (self-reported VmHWM, else polled)."""
    d = r.get(phase) or {}
    return d.get("rss_peak_mb") or _g(d, "process", "maxrss_mb")


def row_name(r: dict) -> str:
    return f"{r['system']} · {r['mode']} · {r['method']}"


def markdown(res: dict) -> str:
    info, ks = res["info"], res["k"]
    lines = [f"### {res['label']}: {info['documents']:,} documents, {info['queries']:,} queries "
             f"({info['corpus_bytes'] / 1e6:,.0f} MB of JSON Lines)", "",
             f"Pre-analysis with this engine's Analyzer (lucene, porter), shared by every "
             f"`common` row and not in their build times: {info['pre_analysis_s']:.2f} s.", ""]
    head = ["system · analyzer · method", "build s", "tokenise s", "index MB",
            "build RSS MB", "query RSS MB"]
    for k in ks:
        head += [f"q/s k={k}", f"p50/p95/p99 ms k={k}"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in res["rows"]:
        b, q = r.get("build", {}), r.get("query", {})
        cells = [row_name(r), _fmt(_g(b, "build_s")), _fmt(_g(b, "tokenize_s")),
                 _fmt((_g(b, "index_bytes") or 0) / 1e6 if _g(b, "index_bytes") else None),
                 _fmt(peak_mb(r, "build")), _fmt(peak_mb(r, "query"))]
        for k in ks:
            kk = _g(q, "k", str(k)) or {}
            lat = "/".join(_fmt(kk.get(p)) for p in ("p50_ms", "p95_ms", "p99_ms")) \
                if kk.get("p50_ms") is not None else "–"
            cells += [_fmt(kk.get("qps")), lat]
        if "error" in b or "error" in q:
            cells[0] += " (failed: " + str(b.get("error") or q.get("error"))[:80] + ")"
        if r.get("carried_over"):
            cells[0] += " †"
        lines.append("| " + " | ".join(cells) + " |")
    # ratios to ours in the same mode
    ref = {r["mode"]: r for r in res["rows"] if r["system"] == "ours"}
    peers = [r for r in res["rows"] if r["system"] not in ("ours",) and r["mode"] in ref]
    if peers:
        lines += ["", "Each peer ÷ this engine (same analyzer mode). Times and sizes: > 1 means "
                  "the peer takes longer / more; queries/s: > 1 means the peer is faster.", ""]
        head = ["peer", "build time", "index size", "build RSS", "query RSS"]
        for k in ks:
            head += [f"q/s k={k}", f"p50 k={k}"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for r in peers:
            o = ref[r["mode"]]
            cells = [row_name(r)]
            pairs = [(_g(r, "build", "build_s"), _g(o, "build", "build_s")),
                     (_g(r, "build", "index_bytes"), _g(o, "build", "index_bytes")),
                     (peak_mb(r, "build"), peak_mb(o, "build")),
                     (peak_mb(r, "query"), peak_mb(o, "query"))]
            for a, b in pairs:
                rr = _ratio(a, b)
                cells.append(_fmt(rr) + "×" if rr is not None else "–")
            for k in ks:
                for key in ("qps", "p50_ms"):
                    rr = _ratio(_g(r, "query", "k", str(k), key), _g(o, "query", "k", str(k), key))
                    cells.append(_fmt(rr) + "×" if rr is not None else "–")
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    ours_rows = [r for r in res["rows"] if r["system"] == "ours"]
    eng = (_g(ours_rows[0], "build", "engine") if ours_rows else None) \
        or _g(res, "machine", "engine") or {}
    if eng:
        lines.append(f"- this engine: commit {eng.get('commit')}"
                     f"{' with uncommitted changes' if eng.get('uncommitted_changes') else ''}"
                     f", sources sha256 {eng.get('sources_sha256')}")
    lines.append(f"- run started {_g(res, 'machine', 'started')}, load average "
                 f"{', '.join(f'{x:.2f}' for x in _g(res, 'machine', 'loadavg_at_start') or [])}")
    carried = {r["carried_over"] for r in res["rows"] if r.get("carried_over")}
    for c in sorted(carried):
        lines.append(f"- † rows carried over from {c}: measured then, not re-run now")
    if res["skipped"]:
        lines += [f"- skipped {s}: {why}" for s, why in res["skipped"].items()]
    notes = [r for r in res["rows"] if r["system"] == "rank_bm25" and r.get("query")]
    for r in notes:
        lines.append(f"- rank_bm25: queries/s and latency over the first "
                     f"{_g(r, 'query', 'queries')} queries only (exhaustive scoring)")
    if ours_rows:
        kern = sorted({str(_g(r, "query", "kernels")) for r in ours_rows})
        lines.append(f"- ours: in-process, a long-running searcher (`compiled=True`; kernels: "
                     f"{', '.join(kern)}); loading the compiled kernels once is in the open "
                     f"time, not in the query figures")
    if any(r["system"] == "ours-cli" for r in res["rows"]):
        lines.append("- ours-cli: whole processes `retrieval index … --no-text -q` and "
                     "`retrieval search … --format trec` (start-up, reading JSON Lines, "
                     "analysis, writing the run included); no latency percentiles")
    return "\n".join(lines) + "\n"


def engine_version() -> dict:
    """The engine's commit and a digest of its sources as they are now (read-only git)."""
    import hashlib
    try:
        import retrieval
        pkg = Path(retrieval.__file__).resolve().parent
    except ImportError:
        return {}
    digest = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        digest.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes())
    out = {"version": getattr(retrieval, "__version__", None),
           "sources_sha256": digest.hexdigest()[:16]}
    try:
        out["commit"] = subprocess.run(["git", "-C", str(pkg.parent), "rev-parse", "--short",
                                        "HEAD"], capture_output=True, text=True,
                                       timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(pkg.parent), "status", "--porcelain", "--",
                                str(pkg)], capture_output=True, text=True, timeout=10).stdout
        out["uncommitted_changes"] = bool(dirty.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def machine() -> dict:
    info = {"python": sys.version.split()[0], "numpy": np.__version__,
            "platform": platform.platform(), "nproc": os.cpu_count()}
    try:
        info["lscpu"] = subprocess.run(["lscpu"], capture_output=True, text=True,
                                       timeout=10).stdout.splitlines()[:14]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    versions = {}
    for mod in ("retrieval", "scipy", "bm25s", "pyterrier_pisa", "rank_bm25", "Stemmer"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", "?")
        except Exception:
            versions[mod] = None
    info["versions"] = versions
    info["engine"] = engine_version()
    info["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return info


def plots(results: list[dict], out: Path) -> list[str]:
    """Log–log plots of build time and per-query batch time against corpus size."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no plots")
        return []
    series: dict[str, list] = {}
    builds: dict[str, list] = {}     # one build per system and analyzer mode
    for res in results:
        n = res["info"]["documents"]
        seen = set()
        for r in res["rows"]:
            series.setdefault(row_name(r), []).append((n, r))
            key = f"{r['system']} · {r['mode']}"
            if key not in seen:
                seen.add(key)
                builds.setdefault(key, []).append((n, r))
    written = []
    slopes: dict = {}

    def draw(fname, title, ylabel, getter, lines=None):
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for name, pts in sorted((lines or series).items()):
            xy = [(n, getter(r)) for n, r in pts if getter(r)]
            if not xy:
                continue
            x, y = np.asarray(xy, dtype=float).T
            label = name
            if len(x) >= 2:
                slope = float(np.polyfit(np.log10(x), np.log10(y), 1)[0])
                slopes.setdefault(fname, {})[name] = slope
                label += f"  (slope {slope:.2f})"
            ax.plot(x, y, "o-", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("documents")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        written.append(fname)

    draw("build_time.png", "Index build time (tokenising included for 'default')",
         "seconds", lambda r: _g(r, "build", "build_s"), builds)
    ks = results[0]["k"]
    for k in ks:
        draw(f"query_time_k{k}.png", f"Batch query time per query, top {k}",
             "seconds per query (batch)",
             lambda r, k=k: (1.0 / _g(r, "query", "k", str(k), "qps"))
             if _g(r, "query", "k", str(k), "qps") else None)
    (out / "slopes.json").write_text(json.dumps(slopes, indent=1) + "\n", encoding="utf-8")
    return written


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------
def merge_rows(res: dict, path: Path, ran: list[str]) -> None:
    """Append ``path``'s rows for systems not in ``ran`` (same corpus size required)."""
    old = json.loads(Path(path).read_text(encoding="utf-8"))
    if old["info"]["documents"] != res["info"]["documents"] or \
            old["info"]["queries"] != res["info"]["queries"]:
        raise SystemExit(f"{path}: a different corpus ({old['info']['documents']} documents, "
                         f"{old['info']['queries']} queries); not merged")
    when = _g(old, "machine", "started") or "an earlier run"
    for r in old["rows"]:
        if r["system"] not in ran:
            r = dict(r, carried_over=f"{Path(path).name} ({when})")
            res["rows"].append(r)
    for system, why in old.get("skipped", {}).items():
        if system not in ran:
            res["skipped"].setdefault(system, why)
    order = {s: i for i, s in enumerate(SYSTEMS)}
    res["rows"].sort(key=lambda r: order.get(r["system"], 99))
    res["merged_from"] = str(path)


def make_synthetic(n_docs: int, corpus_root: Path, seed: int, n_queries: int) -> Path:
    out = corpus_root / f"syn-{n_docs}-s{seed}-q{n_queries}"
    meta = out / "meta.json"
    if meta.exists() and (out / "docs.jsonl").exists():
        return out
    cmd = [sys.executable, str(HERE / "make_corpus.py"), "--docs", str(n_docs), "--out",
           str(out), "--seed", str(seed), "--queries", str(n_queries), "-q"]
    log(f"generating {n_docs:,} documents → {out}")
    subprocess.run(cmd, check=True)
    return out


def make_shared(corpus_root: Path) -> Path:
    out = corpus_root / "shared"
    if not (out / "meta.json").exists():
        subprocess.run([sys.executable, str(HERE / "make_corpus.py"), "--shared", "--out",
                        str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def _count(text: str) -> int:
    t = text.strip().lower().replace("_", "").replace(",", "")
    mult = 1000 if t.endswith("k") else 1_000_000 if t.endswith("m") else 1
    return int(float(t.rstrip("km")) * mult)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--shared", action="store_true",
                     help="the concatenation of the shared collections")
    src.add_argument("--corpus", type=Path,
                     help="a folder with docs.jsonl and queries.tsv (make_corpus.py output)")
    src.add_argument("--docs", type=_count, help="one synthetic corpus of N documents")
    src.add_argument("--sizes", help="comma-separated synthetic sizes: a sweep with plots")
    src.add_argument("--tiny", action="store_true",
                     help="CI mode: 300 synthetic documents, 30 queries, fast settings")
    src.add_argument("--replot", metavar="LABELS",
                     help="no run: draw the size plots from earlier results "
                          "(comma-separated labels of JSON files in --out)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"results folder (default {DEFAULT_OUT.relative_to(REPO)})")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder for corpora, tokens and indexes (default: a "
                        "temporary folder, removed at the end)")
    p.add_argument("--label", help="name of the result files (default from the corpus)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--modes", default="common,default", help="common, default or both")
    p.add_argument("--k", default="10,1000", help="comma-separated k values (default 10,1000)")
    p.add_argument("--repeat", type=int, default=3,
                   help="timed batch runs per k, best kept (default 3)")
    p.add_argument("--latency-queries", type=int, default=300,
                   help="queries timed one by one for latency percentiles (default 300)")
    p.add_argument("--queries", type=int, default=1000, help="synthetic queries (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rank-bm25-max-docs", type=int, default=30000)
    p.add_argument("--rank-bm25-queries", type=int, default=100)
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per subprocess (default: none)")
    p.add_argument("--keep-indexes", action="store_true")
    p.add_argument("--merge-from", type=Path, metavar="JSON",
                   help="carry over the rows of systems not run now from an earlier result "
                        "file of the same corpus (e.g. re-measure this engine only after a "
                        "change, keep the peers' rows); carried rows are marked")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in args.systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s!r}")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in args.modes):
        p.error("--modes takes common and/or default")
    args.k = sorted({int(k) for k in args.k.split(",")})
    if args.tiny:
        args.queries = min(args.queries, 30)
        args.repeat = 1
        args.latency_queries = min(args.latency_queries, 10)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = [json.loads((args.out / f"{label}.json").read_text(encoding="utf-8"))
                   for label in args.replot.split(",")]
        results.sort(key=lambda r: r["info"]["documents"])
        log(f"plots: {', '.join(plots(results, args.out))}")
        return 0
    tmp = None
    if args.work is None:
        tmp = tempfile.mkdtemp(prefix="bench-speed-")
        work_root = Path(tmp)
    else:
        work_root = args.work
        work_root.mkdir(parents=True, exist_ok=True)
    try:
        corpora: list[tuple[Path, str]] = []
        if args.shared:
            corpora.append((make_shared(work_root / "corpora"), args.label or "shared"))
        elif args.corpus:
            corpora.append((args.corpus, args.label or args.corpus.name))
        elif args.tiny:
            corpora.append((make_synthetic(300, work_root / "corpora", args.seed, args.queries),
                            args.label or "tiny"))
        else:
            sizes = [args.docs] if args.docs else [_count(s) for s in args.sizes.split(",")]
            for n in sizes:
                corpora.append((make_synthetic(n, work_root / "corpora", args.seed,
                                               args.queries),
                                f"{args.label + '-' if args.label else ''}syn{_short(n)}"))
        results = []
        mach = machine()
        for corpus, label in corpora:
            res = bench_corpus(corpus, label, args, work_root)
            res["machine"] = mach
            if args.merge_from:
                merge_rows(res, args.merge_from, args.systems)
            meta = corpus / "meta.json"
            if meta.exists():
                res["corpus_meta"] = json.loads(meta.read_text(encoding="utf-8")).get("stats")
            results.append(res)
            md = markdown(res)
            print(md)
            (args.out / f"{label}.json").write_text(json.dumps(res, indent=1) + "\n",
                                                    encoding="utf-8")
            (args.out / f"{label}.md").write_text(md, encoding="utf-8")
        if len(results) > 1:
            written = plots(results, args.out)
            sweep = args.label or "sweep"
            (args.out / f"{sweep}.json").write_text(
                json.dumps({"labels": [r["label"] for r in results],
                            "plots": written}, indent=1) + "\n", encoding="utf-8")
            log(f"plots: {', '.join(written)}")
        elif args.tiny:
            plots(results, args.out)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


if __name__ == "__main__":
    sys.exit(main())
