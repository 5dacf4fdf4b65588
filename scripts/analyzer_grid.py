"""MAP of every analyzer configuration on the shared collections (Dirichlet μ=1000).

    python scripts/analyzer_grid.py [--mu 1000] [--collections cranfield cisi med cacm nfcorpus]

Prints a Markdown table: one row per (stop list, stemmer), one column per collection,
plus the mean over collections. This is how the package's default analyzer was chosen.
"""

from __future__ import annotations

import argparse
import itertools
import time

from retrieval import Analyzer, Dirichlet
from retrieval.analysis import STEMMERS, STOPLISTS
from retrieval.benchmarking import Configuration, benchmark_collection
from retrieval.collections import load_collection


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mu", type=float, default=1000.0)
    p.add_argument("--collections", nargs="+",
                   default=["cranfield", "cisi", "med", "cacm", "nfcorpus"])
    p.add_argument("--measure", default="AP")
    args = p.parse_args()
    collections = [load_collection(name) for name in args.collections]
    config = Configuration(Dirichlet(mu=args.mu))
    start = time.perf_counter()
    rows = []
    for stop, stem in itertools.product(STOPLISTS, STEMMERS):
        analyzer = Analyzer(stop, stem)
        values = [benchmark_collection(c, [config], analyzer=analyzer, k=1000,
                                       measures=[args.measure]).results[0].mean[args.measure]
                  for c in collections]
        rows.append((stop, stem, values, sum(values) / len(values)))
    best = max(rows, key=lambda r: r[3])
    print(f"{args.measure}, Dirichlet μ={args.mu:g}, top 1000, judged queries missing from "
          f"a run count 0\n")
    print("| stop list | stemmer | " + " | ".join(args.collections) + " | mean |")
    print("|---|---|" + "---:|" * (len(args.collections) + 1))
    for stop, stem, values, mean in rows:
        mark = "**" if (stop, stem) == best[:2] else ""
        cells = " | ".join(f"{v:.4f}" for v in values)
        print(f"| {stop} | {stem} | {cells} | {mark}{mean:.4f}{mark} |")
    print(f"\nbest mean: stopwords={best[0]} stemmer={best[1]}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
