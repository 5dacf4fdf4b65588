#!/usr/bin/env python3
"""Query time of each ranking model against Dirichlet's, on the shared collections.

All judged queries of every shared collection, top 1000, one thread, one
``batch_search_arrays`` call per collection per round; rounds interleave the models
(so a load spike hits all of them), and each model's time is its best round's sum over
the collections. Both search engines of the package are measured: the numpy path
(``compiled=False``) and the compiled kernels (``compiled=True``; their JIT is warmed
up by a first untimed round). Collection-dependent models are resolved for the index
before timing (resolution is a once-per-index cost, shown separately). The load
average is printed beside the figures.

    python scripts/bench_models.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.analysis import Analyzer  # noqa: E402
from retrieval.benchmarking import cached_index, default_cache_dir  # noqa: E402
from retrieval.collections import load_collection  # noqa: E402
from retrieval.search import Searcher  # noqa: E402
from retrieval.smoothing import make_model  # noqa: E402

COLLECTIONS = ("cranfield", "cisi", "med", "cacm", "nfcorpus")
MODELS = [("dirichlet", {"mu": 1000}), ("spud", {"omega": 0.8}),
          ("dir+", {"mu": 1000, "delta": 0.05}), ("dirichlet-avgdl", {"mu_scale": 1}),
          ("two-stage", {"mu": 1000, "lam": 0.5})]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    data = []
    for name in COLLECTIONS:
        coll = load_collection(name)
        index, _, _ = cached_index(coll, Analyzer(), default_cache_dir())
        data.append((index, [q.text for q in coll.queries]))
    n_queries = sum(len(q) for _, q in data)
    resolve = {}
    for model, params in MODELS:
        t0 = time.perf_counter()
        for index, _ in data:
            resolve[(model, id(index))] = make_model(model, index=index, **params)
        resolve[model] = time.perf_counter() - t0
    print(f"load before: {open('/proc/loadavg').read().split()[:3]}")
    print(f"{n_queries} queries over {len(data)} collections, k=1000, best of "
          f"{args.rounds} rounds")
    print("| model | numpy s | vs Dirichlet | compiled s | vs Dirichlet | resolve s |")
    print("|---|---:|---:|---:|---:|---:|")
    best = {}
    for compiled in (False, True):
        searchers = {m: [Searcher(index, resolve[(m, id(index))], compiled=compiled)
                         for index, _ in data] for m, _ in MODELS}
        for m, _ in MODELS:  # warm-up (JIT, bound caches)
            for s, (_, queries) in zip(searchers[m], data):
                s.batch_search_arrays(queries, 1000)
        for _ in range(args.rounds):
            for m, _ in MODELS:
                t0 = time.perf_counter()
                for s, (_, queries) in zip(searchers[m], data):
                    s.batch_search_arrays(queries, 1000)
                dt = time.perf_counter() - t0
                key = (m, compiled)
                best[key] = min(best.get(key, float("inf")), dt)
    for m, _ in MODELS:
        a, b = best[(m, False)], best[(m, True)]
        print(f"| {m} | {a:.3f} | {a / best[('dirichlet', False)]:.2f}x | {b:.3f} | "
              f"{b / best[('dirichlet', True)]:.2f}x | {resolve[m]:.3f} |")
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
