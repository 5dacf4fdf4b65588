#!/usr/bin/env python3
"""Query time of two-stage with λ per query (``--lam auto``) and of the length prior,
against Dirichlet μ = 1000, on the shared collections.

All judged queries of the five shared collections, top 1000, the numpy path
(``compiled=False``; with ``--compiled`` every search and the λ̂ of two-stage use the
compiled kernels, ``compiled=True``, loaded and compiled before the timing), one thread; one call per collection per round, rounds interleave
the configurations (a load spike hits all of them), each configuration's figure is its
best round (wall and CPU = user + sys of this process). Models are resolved for the index
inside the timing (SPUD's background mass is computed once per index and cached on it,
so only the first round pays it). Prints a markdown table and the load average before and
after.

    python scripts/bench_lambda_prior.py [--rounds 3] [--only two-stage] [--compiled]

``--only`` keeps the configurations whose label starts with one of the given prefixes
(Dirichlet is always kept: it is the reference of the last column).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.analysis import Analyzer  # noqa: E402
from retrieval.benchmarking import cached_index, default_cache_dir  # noqa: E402
from retrieval.collections import load_collection  # noqa: E402
from retrieval.search import Searcher  # noqa: E402
from retrieval.smoothing import SPUD, Dirichlet, LengthPrior  # noqa: E402
from retrieval.twostage import TwoStageEM  # noqa: E402

COLLECTIONS = ("cranfield", "cisi", "med", "cacm", "nfcorpus")
CONFIGS = {
    "dirichlet(mu=1000)": Dirichlet(1000.0),
    "spud(omega=0.8)": SPUD(0.8),
    "spud(omega=0.8)+prior(beta=0.05)": LengthPrior(SPUD(0.8), 0.05),
    "dirichlet(mu=1000)+prior(beta=0.05)": LengthPrior(Dirichlet(1000.0), 0.05),
    "two-stage(mu=1000,lam=auto)": TwoStageEM(1000.0),
}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def search(model, index, texts, compiled):
    if isinstance(model, TwoStageEM):
        return model.batch_search_arrays(index, texts, 1000, compiled=compiled)
    return Searcher(index, model.resolved(index), compiled=compiled).batch_search_arrays(
        texts, 1000)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated label prefixes to run")
    ap.add_argument("--compiled", action="store_true",
                    help="every search (and λ̂) with the compiled kernels (compiled=True), "
                         "the kernels compiled and loaded before the timing")
    args = ap.parse_args(argv)
    prefixes = tuple(p for p in args.only.split(",") if p)
    configs = {label: model for label, model in CONFIGS.items()
               if label == "dirichlet(mu=1000)" or not prefixes or label.startswith(prefixes)}
    data = []
    for name in COLLECTIONS:
        coll = load_collection(name)
        index, _, _ = cached_index(coll, Analyzer(), default_cache_dir())
        data.append((index, [q.text for q in coll.queries]))
    if args.compiled:  # numba's import and the first compilation stay out of the timing
        for model in configs.values():
            search(model, data[0][0], data[0][1][:2], True)
    print(f"load before: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    best = {label: (float("inf"), float("inf")) for label in configs}
    for _ in range(args.rounds):
        for label, model in configs.items():
            wall, used = time.perf_counter(), cpu()
            for index, texts in data:
                search(model, index, texts, args.compiled)
            best[label] = min(best[label], (time.perf_counter() - wall, cpu() - used))
    base = best["dirichlet(mu=1000)"][1]
    n = sum(len(t) for _, t in data)
    path = "compiled kernels (compiled=True)" if args.compiled else "numpy path"
    print(f"{n} queries, k=1000, {path}, best of {args.rounds} rounds")
    print("| model | wall s | CPU s | CPU vs Dirichlet |\n|---|---:|---:|---:|")
    for label, (wall, used) in best.items():
        print(f"| {label} | {wall:.3f} | {used:.3f} | {used / base:.2f}x |")
    print(f"load after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
