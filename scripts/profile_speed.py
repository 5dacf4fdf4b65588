#!/usr/bin/env python3
"""Where the query time goes: this engine against bm25s (numba) and raw PISA, one process.

For one corpus (``make_corpus.py`` output: docs.jsonl, queries.tsv) this builds the three
indexes with the same analyzer (the 33 Lucene stop words, Snowball/Porter2), then:

1. **work per query** — the postings of the query terms (Σ df: what an exhaustive engine
   reads; the physical floor at ~1 ns a posting) and the distinct matching documents
   (candidates), from this engine's index arrays;
2. **throughput** at each k, interleaved rounds in this one process (best kept, the load
   average recorded): this engine's arrays path and its columnar public results
   (``retrieval.results``), bm25s-numba end to end and split into its tokenising and its
   ``retrieve``, and PISA raw (``_pisathon.retrieve``); each as µs a query and ns per
   posting of the query terms;
3. **this engine's breakdown**: the time inside the compiled kernels (each kernel function
   of the loaded kernels module wrapped by a timer) against the whole
   ``batch_search_arrays`` call, and a pyinstrument profile of one pass (frames ≥ 2%);
4. **two threads**: ``batch_search_arrays(jobs=2)`` against ``jobs=1``.

It reads engine internals only to *measure* them (the kernels module is found through
the searcher's module; nothing is changed). Output: a JSON file and a Markdown summary
on stdout; the findings are written up in results/speed/profile.md.

Example::

    python scripts/profile_speed.py --corpus /tmp/syn-100000 --work /tmp/prof100k \\
        --out results/speed/profile-syn100k.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_speed as bench  # noqa: E402  (the same readers and analyzer settings)


def build(corpus: Path, work: Path) -> None:
    """The three indexes under ``work`` (kept: a second run reuses them)."""
    for family in ("ours", "bm25s", "pisa"):
        index_dir = work / f"index-{family}-default"
        if index_dir.exists():
            continue
        t0 = time.perf_counter()
        out = bench.worker_build({"system": family, "mode": "default", "work": str(work),
                                  "corpus": str(corpus), "index": str(index_dir)})
        bench.log(f"{family}: built in {time.perf_counter() - t0:.1f} s "
                  f"({out['index_bytes'] / 1e6:.0f} MB)")


def work_counts(index, texts: list[str]) -> dict:
    """Postings of the query terms and distinct candidates, per query."""
    ptr = np.asarray(index.arrays["postings_indptr"])
    docs = np.asarray(index.arrays["postings_docs"])
    postings, cands, terms = [], [], []
    for text in texts:
        tids = {index.term_id(t) for t in index.analyzer.analyze(text)}
        tids = sorted(t for t in tids if t is not None and t >= 0)
        terms.append(len(tids))
        postings.append(int(sum(ptr[t + 1] - ptr[t] for t in tids)))
        cands.append(len(np.unique(np.concatenate([docs[ptr[t]:ptr[t + 1]] for t in tids])))
                     if tids else 0)
    p, c = np.asarray(postings, float), np.asarray(cands, float)
    return {"terms_mean": float(np.mean(terms)), "postings_mean": float(p.mean()),
            "postings_median": float(np.median(p)), "postings_p99": float(np.percentile(p, 99)),
            "candidates_mean": float(c.mean()), "documents": index.num_docs,
            "candidates_per_posting": float(c.sum() / max(p.sum(), 1))}


class KernelTimer:
    """Wraps every public function of the engine's kernels module with a timer."""

    def __init__(self, module):
        self.module, self.seconds, self.calls, self._saved = module, {}, {}, {}

    def __enter__(self):
        for name in dir(self.module):
            fn = getattr(self.module, name)
            if name.startswith("_") or not callable(fn) or not hasattr(fn, "py_func"):
                continue
            self._saved[name] = fn

            @functools.wraps(fn.py_func)
            def timed(*a, _fn=fn, _name=name, **kw):
                t0 = time.perf_counter()
                try:
                    return _fn(*a, **kw)
                finally:
                    self.seconds[_name] = self.seconds.get(_name, 0.0) + \
                        time.perf_counter() - t0
                    self.calls[_name] = self.calls.get(_name, 0) + 1
            setattr(self.module, name, timed)
        return self

    def __exit__(self, *exc):
        for name, fn in self._saved.items():
            setattr(self.module, name, fn)


def kernels_module(searcher):
    """The compiled kernels module the searcher's paths call (None without numba)."""
    from retrieval.search.compiled import load_kernels
    return load_kernels() if searcher.kernels() is not None else None


def systems(work: Path, ks):
    """name → batch(texts, k) for the timed rows."""
    from retrieval import Dirichlet, Index, Searcher
    from retrieval.results import columnar, docid_table
    from retrieval.smoothing import default_model
    spec = {"mode": "default", "work": str(work), "k": ks}
    index = Index.open(work / "index-ours-default")
    searcher = Searcher(index, Dirichlet(mu=1000), compiled=True)
    searcher.batch_search_arrays(["warm up"], 1)
    docid_table(index)
    # the same results without the MaxScore path (pruning is a public parameter)
    exhaustive = Searcher(index, Dirichlet(mu=1000), compiled=True, pruning=False)
    # the engine's default model (SPUD ω=0.8): issue 16's budget is 1.5× Dirichlet's time
    spud = Searcher(index, default_model(index), compiled=True)
    rows = {"ours arrays (doc numbers)": lambda qs, k: searcher.batch_search_arrays(qs, k),
            "ours arrays pruning=False": lambda qs, k: exhaustive.batch_search_arrays(qs, k),
            "ours columnar + docids": lambda qs, k: columnar(
                searcher.batch_search_arrays(qs, k), index, len(qs)).docids,
            "ours columnar + docids, SPUD (default model)": lambda qs, k: columnar(
                spud.batch_search_arrays(qs, k), index, len(qs)).docids}
    r = {}
    b, _, _ = bench._bm25s({**spec, "system": "bm25s",
                            "index": str(work / "index-bm25s-default")}, r)
    rows["bm25s numba end to end"] = b
    import bm25s
    retriever = bm25s.BM25.load(str(work / "index-bm25s-default"), backend="numba",
                                show_progress=False)
    stemmer = bench._bm25s_stemmer("default")
    rows["bm25s tokenize only"] = lambda qs, k: bench._bm25s_tokens(qs, "default", stemmer,
                                                                    False)
    known = retriever.vocab_dict
    n_docs = int(retriever.scores["num_docs"])

    def retrieve_only(toks, k):
        return retriever.retrieve(toks, k=min(k, n_docs), n_threads=0, show_progress=False)
    for method in ("qld", "bm25"):
        b, _, _ = bench._pisa({**spec, "system": "pisa", "method": method,
                               "index": str(work / "index-pisa-default")}, r)
        rows[f"pisa raw {method}"] = b
    return index, searcher, rows, retrieve_only, known


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True, help="indexes (kept for reruns)")
    p.add_argument("--k", default="10,1000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)
    ks = [int(k) for k in args.k.split(",")]
    os.environ.update(bench.THREAD_ENV)  # before numba starts: one thread
    args.work.mkdir(parents=True, exist_ok=True)
    build(args.corpus, args.work)
    texts = [t for _, t in bench._read_tsv(args.corpus / "queries.tsv")]
    index, searcher, rows, retrieve_only, known = systems(args.work, ks)
    out = {"corpus": str(args.corpus), "queries": len(texts), "k": ks,
           "work": work_counts(index, texts), "loadavg": [], "timing": {}}
    from retrieval import Dirichlet, Searcher
    same = [np.array_equal(a, b) for k in ks for a, b in zip(
        searcher.batch_search_arrays(texts, k),
        Searcher(index, Dirichlet(mu=1000), compiled=True,
                 pruning=False).batch_search_arrays(texts, k))]
    out["pruning_false_identical"] = bool(all(same))
    bench.log(f"work: {out['work']}")
    stemmer = bench._bm25s_stemmer("default")
    toks = [[t for t in q if t in known] for q in
            bench._bm25s_tokens(texts, "default", stemmer, False)]
    toks = [q for q in toks if q]
    for k in ks:                       # warm every cache alike
        for fn in rows.values():
            fn(texts, k)
    best: dict = {}
    cpu_best: dict = {}

    def timed(key, fn, *a, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(*a, **kw)
        best[key] = min(best.get(key, np.inf), time.perf_counter() - t0)
        cpu_best[key] = min(cpu_best.get(key, np.inf), time.process_time() - c0)

    for rnd in range(args.rounds):
        out["loadavg"].append(os.getloadavg()[0])
        for k in ks:
            for name, fn in rows.items():
                timed((name, k), fn, texts, k)
            timed(("bm25s retrieve only", k), retrieve_only, toks, k)
            for jobs in (1, 2):
                timed((f"ours arrays jobs={jobs}", k), searcher.batch_search_arrays, texts,
                      k, jobs=jobs)
    out["loadavg"].append(os.getloadavg()[0])
    post = out["work"]["postings_mean"]
    for (name, k), dt in best.items():
        us = dt / len(texts) * 1e6
        cpu_us = cpu_best[(name, k)] / len(texts) * 1e6
        out["timing"].setdefault(name, {})[str(k)] = {
            "qps": len(texts) / dt, "us_per_query": us, "ns_per_posting": us * 1e3 / post,
            "cpu_us_per_query": cpu_us, "cpu_ns_per_posting": cpu_us * 1e3 / post}
    kern = kernels_module(searcher)
    out["kernels"] = {}
    if kern is not None:
        for k in ks:
            with KernelTimer(kern) as timer:
                t0, c0 = time.perf_counter(), time.process_time()
                searcher.batch_search_arrays(texts, k)
                total, cpu = time.perf_counter() - t0, time.process_time() - c0
            out["kernels"][str(k)] = {"total_s": total, "cpu_s": cpu,
                                      "inside_s": timer.seconds, "calls": timer.calls}
    out["pyinstrument"] = {}
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    if Profiler is not None:
        for k in ks:
            prof = Profiler(interval=0.0005)
            prof.start()
            for _ in range(3):
                searcher.batch_search_arrays(texts, k)
            prof.stop()
            out["pyinstrument"][str(k)] = prof.output_text(unicode=False, color=False,
                                                           show_all=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(summary(out))
    return 0


def summary(out: dict) -> str:
    w = out["work"]
    lines = [f"{w['documents']:,} documents, {out['queries']} queries: {w['terms_mean']:.1f} "
             f"terms, {w['postings_mean']:,.0f} postings (median {w['postings_median']:,.0f}),"
             f" {w['candidates_mean']:,.0f} candidates a query; load average "
             f"{', '.join(f'{x:.1f}' for x in out['loadavg'])}", "",
             "| row | " + " | ".join(f"wall q/s k={k} | CPU µs/q | CPU ns/posting"
                                    for k in out["k"]) + " |",
             "|---|" + "---|---|---|" * len(out["k"])]
    for name, per in out["timing"].items():
        cells = [name]
        for k in out["k"]:
            t = per[str(k)]
            cells += [f"{t['qps']:,.0f}", f"{t['cpu_us_per_query']:,.1f}",
                      f"{t['cpu_ns_per_posting']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for k, kk in out["kernels"].items():
        inside = sum(kk["inside_s"].values())
        lines.append(f"\nk={k}: batch_search_arrays {kk['total_s'] * 1e3:.0f} ms, inside "
                     f"kernels {inside * 1e3:.0f} ms ({inside / kk['total_s']:.0%}): "
                     + ", ".join(f"{n} {s * 1e3:.0f} ms/{kk['calls'][n]} calls"
                                 for n, s in kk["inside_s"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
