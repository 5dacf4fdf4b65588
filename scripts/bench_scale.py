#!/usr/bin/env python3
"""Scale measurements of issue 20, side by side in one run.

1. Search: one index vs. S shards searched in this process (``ShardedSearcher``) and on a
   Dask ``LocalCluster`` of W single-threaded worker processes (``DaskSearcher``):
   batch throughput (queries/s), one-query latency p50/p99, and the per-query cost of
   the exact distributed merge (``merge_top_k``, timed alone).
2. Builds: time and peak RSS (of a child process per build, ``ru_maxrss``) of one build
   and of a segmented build (``retrieval.segmented``) for each corpus prefix size.
3. The cost model (on paper, in the Markdown), checked against the 1- and 2-worker runs.
4. ``--builds``: whole-corpus builds with ``retrieval index --memory`` (a child process
   per corpus: wall time, CPU time user+sys and peak RSS from ``wait4``), each followed
   by a search check over the built index (the corpus's queries, batch throughput).

Usage::

    python scripts/make_corpus.py --docs 1000000 --queries 1000 --seed 0 --out /tmp/syn-1000000
    # search side by side at 1M (indexes kept in --work and reused when present)
    python scripts/bench_scale.py --corpus /tmp/syn-1000000 --work /tmp/scale-work \\
        --shards 2,4 --workers 1,2
    # builds within a memory budget, 1M and 3M documents
    nice -n 10 python scripts/bench_scale.py --builds --memory 2GB \\
        --corpus /tmp/syn-1000000,/tmp/syn-3000000 --work /tmp/scale-work

Every figure is written with the load average beside it (``reporting.machine``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np

from reporting import machine, run_main, write_report

from retrieval import Index, Searcher
from retrieval.errors import InputError
from retrieval.index import index_state
from retrieval.shards import ShardedIndex, ShardedSearcher, merge_top_k
from retrieval.shards.store import is_sharded


def read_docs(corpus: Path, n: int | None = None):
    with open(corpus / "docs.jsonl", encoding="utf-8") as fh:
        for line in islice(fh, n):
            rec = json.loads(line)
            yield rec["id"], rec["text"]


def read_queries(corpus: Path, n: int) -> list[str]:
    lines = (corpus / "queries.tsv").read_text(encoding="utf-8").splitlines()
    return [line.partition("\t")[2] for line in lines if line.strip()][:n]


def child_build(corpus: str, n: int, out: str, segment_docs: int) -> None:
    """Run in a child process: build, then print time and this process's peak RSS."""
    from retrieval.segmented import build_segmented
    start = time.perf_counter()
    if segment_docs:
        build_segmented(read_docs(Path(corpus), n), out, segment_docs=segment_docs)
    else:
        Index.build(read_docs(Path(corpus), n)).save(out)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": rss}))


def measure_build(corpus: Path, n: int, segment_docs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, __file__, "--child-build", str(corpus), str(n),
             str(Path(tmp) / "ix"), str(segment_docs)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InputError(f"the build of {n} documents failed: "
                             f"{proc.stderr.strip().splitlines()[-1:]}")
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    got.update(documents=n, segment_docs=segment_docs, load_average=os.getloadavg()[0])
    return got


def timed_batch(fn, queries, rounds: int) -> dict:
    """Best of ``rounds`` wall times of ``fn(queries)``: queries/s, and this process's
    CPU time per query in that round (the client's share when the work is on Dask)."""
    best, best_cpu = float("inf"), 0.0
    for _ in range(rounds):
        cpu, t = time.process_time(), time.perf_counter()
        fn(queries)
        wall = time.perf_counter() - t
        if wall < best:
            best, best_cpu = wall, time.process_time() - cpu
    return {"qps": len(queries) / best,
            "client_cpu_ms_per_query": best_cpu / len(queries) * 1000}


def latencies(fn, queries) -> dict:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn([q])
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def merge_cost(sharded: ShardedSearcher, queries: list[str], k: int) -> float:
    """Milliseconds per query of the exact merge alone (shard results precomputed)."""
    batch = sharded.prepare(queries)
    parts = [(i, *sharded.rank_shard(i, batch, k)) for i in range(len(sharded.searchers_))]
    t = time.perf_counter()
    for _ in range(5):
        merge_top_k(parts, len(queries), k)
    return (time.perf_counter() - t) / 5 / len(queries) * 1000


def single_index(args, corpus: Path, work: Path) -> Index:
    """The corpus's single index: ``--index`` or ``WORK/single`` when they hold an index
    of the corpus, else built into ``WORK/single`` (in segments of ``--memory``)."""
    from retrieval.segmented import build_index_segmented, parse_memory, segment_bytes
    n_docs = corpus_docs(corpus)
    for path in [args.index, work / "single"]:
        if path is not None and index_state(path) == "index":
            index = Index.open(path)
            if index.num_docs == n_docs:
                return index
    index, _ = build_index_segmented([corpus / "docs.jsonl"], work / "single",
                                     segment_docs=None, overwrite=True,
                                     segment_bytes=segment_bytes(parse_memory(args.memory)))
    return index


def sharded_index(corpus: Path, path: Path, n_shards: int, client) -> Path:
    """``path`` holding the corpus in ``n_shards`` shards (reused when present), built on
    the Dask ``client`` (one task per shard)."""
    from retrieval.shards.build import build_sharded
    if is_sharded(path):
        ix = ShardedIndex.open(path)
        if ix.num_shards == n_shards and ix.num_docs == corpus_docs(corpus):
            return path
    build_sharded([corpus / "docs.jsonl"], path, n_shards, client=client, overwrite=True)
    return path


def corpus_docs(corpus: Path) -> int:
    return int(json.loads((corpus / "meta.json").read_text())["stats"]["documents"])


def search_rows(args, corpus: Path, work: Path) -> list[dict]:
    from retrieval.shards.distributed import DaskSearcher, connect
    queries = read_queries(corpus, args.queries)
    lat_q = queries[:args.latency_queries]
    single = single_index(args, corpus, work)
    rows = []
    s1 = Searcher(single)
    s1.batch_search_arrays(queries[:50], args.k)  # warm (kernels, tables)
    rows.append({"setup": "single index", "shards": 1, "workers": 0,
                 **timed_batch(lambda q: s1.batch_search_arrays(q, args.k), queries,
                               args.rounds),
                 **latencies(lambda q: s1.batch_search_arrays(q, args.k), lat_q),
                 "load_average": os.getloadavg()[0]})
    s1 = single = None  # free the single index before the shards
    client, cluster = connect(n_workers=max(args.workers))
    try:
        paths = {n: sharded_index(corpus, work / f"sh{n}", n, client) for n in args.shards}
    finally:
        client.close()
        cluster.close()
    for n_shards, path in paths.items():
        local = ShardedSearcher(ShardedIndex.open(path))
        local.batch_search_arrays(queries[:50], args.k)
        rows.append({"setup": "sharded, in process", "shards": n_shards, "workers": 0,
                     **timed_batch(lambda q: local.batch_search_arrays(q, args.k),
                                   queries, args.rounds),
                     **latencies(lambda q: local.batch_search_arrays(q, args.k), lat_q),
                     "merge_ms_per_query": merge_cost(local, queries, args.k),
                     "load_average": os.getloadavg()[0]})
        local = None
        for workers in args.workers:
            with DaskSearcher(path, n_workers=workers, batch_size=args.batch_size) as ds:
                ds.batch_search_arrays(queries[:200], args.k)   # workers open the index
                rows.append({
                    "setup": "Dask LocalCluster", "shards": n_shards, "workers": workers,
                    **timed_batch(lambda q: ds.batch_search_arrays(q, args.k),
                                  queries, args.rounds),
                    **latencies(lambda q: ds.batch_search_arrays(q, args.k), lat_q),
                    "load_average": os.getloadavg()[0]})
    return rows


# -- whole-corpus builds in bounded memory ----------------------------------------------
def build_row(corpus: Path, out: Path, memory: str, no_text: bool) -> dict:
    """``retrieval index CORPUS/docs.jsonl --memory M`` in a child process: wall time,
    CPU time (user+sys) and peak RSS of the child (``os.wait4``)."""
    cmd = [sys.executable, "-m", "retrieval", "index", str(corpus / "docs.jsonl"), "-o",
           str(out), "--memory", memory, "--force", "-q", "--format", "json"]
    if no_text:
        cmd.append("--no-text")
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True)
        _, status, usage = os.wait4(proc.pid, 0)   # reaped here: its own rusage
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        stdout, stderr = out_f.read(), err_f.read()
    if proc.returncode != 0:
        raise InputError(f"the build of {corpus} failed: {stderr.strip()[-300:]}")
    summary = json.loads(stdout)
    return {"corpus": str(corpus), "documents": summary["documents"],
            "terms": summary["distinct_terms"], "tokens": summary["tokens"],
            "memory": memory, "text": not no_text, "seconds": wall,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_bytes": usage.ru_maxrss * 1024,
            "index_bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
            "load_average": [load, os.getloadavg()[0]]}


def search_check(corpus: Path, index_path: Path, n_queries: int, k: int) -> dict:
    """Batch search of the corpus's first ``n_queries`` queries over the built index."""
    index = Index.open(index_path)
    s = Searcher(index)
    queries = read_queries(corpus, n_queries)
    s.batch_search_arrays(queries[:20], k)
    cpu, t = time.process_time(), time.perf_counter()
    res = s.batch_search_arrays(queries, k)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    first = s.docids(res.doc_numbers[res.query_index == 0])
    return {"queries": len(queries), "qps": len(queries) / wall,
            "cpu_ms_per_query": cpu / len(queries) * 1000, "results": len(res.scores),
            "first_query": queries[0], "first_results": first[:3],
            "load_average": os.getloadavg()[0]}


def builds_main(args) -> int:
    rows = []
    for corpus in args.corpora:
        out = args.work / f"{corpus.name}-mem{args.memory}"
        row = build_row(corpus, out, args.memory, args.no_text)
        row["search"] = search_check(corpus, out, args.queries, args.k)
        rows.append(row)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    report = {"machine": machine(), "builds": rows}
    sizes = "-".join(str(corpus_docs(c)) for c in args.corpora)
    write_report(args.out, f"builds-mem{args.memory}-docs{sizes}", report,
                 builds_markdown(report))
    return 0


def builds_markdown(report: dict) -> str:
    lines = ["# Builds in bounded memory (`retrieval index --memory`)", "",
             f"Machine: {report['machine']}", "",
             "| documents | terms | text | --memory | wall s | CPU s | peak RSS MB | "
             "index GB | search q/s | CPU ms/query | load (start, end) |",
             "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for b in report["builds"]:
        q = b["search"]
        lines.append(
            f"| {b['documents']:,} | {b['terms']:,} | {'yes' if b['text'] else 'no'} | "
            f"{b['memory']} | {b['seconds']:.0f} | {b['cpu_seconds']:.0f} | "
            f"{b['peak_rss_bytes'] / 2**20:.0f} | {b['index_bytes'] / 2**30:.2f} | "
            f"{q['qps']:.0f} | {q['cpu_ms_per_query']:.2f} | "
            f"{b['load_average'][0]:.2f}, {b['load_average'][1]:.2f} |")
    lines += ["", "Search check: the corpus's queries (batch, k=10) over the built index; "
              "first query's top 3 per build in the JSON file."]
    return "\n".join(lines)


COST_MODEL = """\
## Cost model (M machines, S shards, B queries per batch, k results)

Per batch of B queries, with P the postings of the query terms over the whole collection:

    T(M, S) ≈ T_prep(B)                       client: analyse, map to global term ids
            + ceil(S / M) · T_shard(P / S)     each worker searches its S/M shards in turn
            + S · (t_task + t_net(B, k))       one task per (shard, batch): scheduling,
                                               pickling B·k results back
            + T_merge(B · S · k)               client: one lexsort of S·k entries a query

What shrinks with S and M: the postings a worker scans (P/S per shard, S/M shards per
worker: P/M per worker), and with it memory per worker. What grows with S: tasks (S per
batch, ~1–2 ms each on Dask), result traffic (S·k entries per query), and the merge
(a sort of S·k entries per query, measured below as ms/query). A single query also pays
the task round trip (~several ms on Dask), so latency, unlike throughput, does not improve
with more workers.

Check: the 2-worker throughput predicted from the 1-worker run is
qps₂ = B / (T₁/2 + overhead), T₁ = B / qps₁ with the per-task overhead taken as the
difference between the 1-worker Dask run and the in-process sharded run.
"""


def markdown(report: dict) -> str:
    lines = ["# Scale: sharded search on Dask and segmented builds", "",
             f"Machine: {report['machine']}", "",
             f"Corpus: {report['corpus']} ({report['documents']} documents), "
             f"{report['queries']} queries, k={report['k']}, best of {report['rounds']}.", "",
             "| setup | shards | workers | queries/s | client CPU ms/query | p50 ms | "
             "p99 ms | merge ms/query | load |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["search"]:
        merge = f"{r['merge_ms_per_query']:.4f}" if "merge_ms_per_query" in r else ""
        lines.append(f"| {r['setup']} | {r['shards']} | {r['workers'] or ''} | "
                     f"{r['qps']:.0f} | {r['client_cpu_ms_per_query']:.3f} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {merge} | "
                     f"{r['load_average']:.2f} |")
    lines += ["", "| documents | build | segment docs | seconds | peak RSS MB | load |",
              "|---:|---|---:|---:|---:|---:|"]
    for b in report["builds"]:
        kind = "segmented" if b["segment_docs"] else "one build"
        lines.append(f"| {b['documents']} | {kind} | {b['segment_docs'] or ''} | "
                     f"{b['seconds']:.1f} | {b['peak_rss_bytes'] / 2**20:.0f} | "
                     f"{b['load_average']:.2f} |")
    lines += ["", COST_MODEL]
    check = report.get("model_check")
    if check:
        lines.append(f"Measured ({check['shards']} shards): 1 worker {check['qps_1']:.0f} q/s, "
                     f"2 workers {check['qps_2']:.0f} q/s (×{check['speedup']:.2f}); the "
                     f"model predicts {check['predicted_qps_2']:.0f} q/s.")
    return "\n".join(lines)


def model_check(rows: list[dict], batch: int) -> dict | None:
    for n_shards in sorted({r["shards"] for r in rows if r["workers"]}):
        one = [r for r in rows if r["shards"] == n_shards and r["workers"] == 1]
        two = [r for r in rows if r["shards"] == n_shards and r["workers"] == 2]
        local = [r for r in rows if r["shards"] == n_shards and r["setup"].startswith("sharded")]
        if one and two and local:
            t1 = batch / one[0]["qps"]
            t_local = batch / local[0]["qps"]
            overhead = max(t1 - t_local, 0.0)
            predicted = batch / (t_local / 2 + overhead)
            return {"shards": n_shards, "qps_1": one[0]["qps"], "qps_2": two[0]["qps"],
                    "speedup": two[0]["qps"] / one[0]["qps"], "predicted_qps_2": predicted}
    return None


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench_scale.py", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True,
                   help="a folder made by scripts/make_corpus.py (docs.jsonl, queries.tsv, "
                        "meta.json); with --builds, a comma-separated list of them")
    p.add_argument("--out", type=Path, default=Path("results/scale"))
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the indexes, kept and reused when they hold the "
                        "corpus (default: a temporary folder)")
    p.add_argument("--index", type=Path, default=None,
                   help="a single index of the corpus to reuse (else WORK/single)")
    p.add_argument("--memory", default="2GB",
                   help="--memory of the builds (default 2GB)")
    p.add_argument("--builds", action="store_true",
                   help="measure whole-corpus builds with --memory (and a search check) "
                        "instead of the search comparison")
    p.add_argument("--no-text", action="store_true", help="builds: --no-text")
    p.add_argument("--keep", action="store_true", help="builds: keep the built indexes")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--shards", default="2,4")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--build-sizes", default="", help="corpus prefixes to build, e.g. 100000")
    p.add_argument("--segment-docs", type=int, default=0,
                   help="also build each size in segments of this many documents")
    args = p.parse_args(argv)
    args.corpora = [Path(c) for c in args.corpus.split(",") if c]
    for c in args.corpora:
        if not (c / "docs.jsonl").is_file() or not (c / "meta.json").is_file():
            raise InputError(f"{c} has no docs.jsonl and meta.json; make them with "
                             f"scripts/make_corpus.py --docs N --out {c}")
    args.corpus = args.corpora[0]
    args.shards = [int(x) for x in args.shards.split(",") if x]
    args.workers = [int(x) for x in args.workers.split(",") if x]
    args.build_sizes = [int(x) for x in args.build_sizes.split(",") if x]
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child-build":
        child_build(argv[1], int(argv[2]), argv[3], int(argv[4]))
        return 0
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.work is None:
            args.work = Path(tmp)
        args.work.mkdir(parents=True, exist_ok=True)
        if args.builds:
            return builds_main(args)
        builds = []
        for n in args.build_sizes:
            builds.append(measure_build(args.corpus, n, 0))
            if args.segment_docs:
                builds.append(measure_build(args.corpus, n, args.segment_docs))
        rows = search_rows(args, args.corpus, args.work)
    n_docs = corpus_docs(args.corpus)
    report = {"machine": machine(), "corpus": str(args.corpus), "documents": n_docs,
              "queries": args.queries, "k": args.k, "rounds": args.rounds,
              "batch_size": args.batch_size, "search": rows, "builds": builds,
              "model_check": model_check(rows, args.batch_size)}
    write_report(args.out, f"scale-docs{n_docs}", report, markdown(report))
    return 0


if __name__ == "__main__":
    run_main(main, "bench_scale.py")
