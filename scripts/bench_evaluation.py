#!/usr/bin/env python
"""Benchmark retrieval.evaluation against pytrec_eval on a synthetic run.

Generates deterministically (seed) a run of QUERIES x DEPTH documents (default
10,000 x 1,000 = 10M rows: scores with ties, queries grouped as engines write them)
and qrels of JUDGED documents per query (half of them retrieved, graded 0..2), then
times, in one process:

* ``Run.from_arrays`` (validation, duplicate check, hashing) and ``evaluate`` for
  MAP/P@10/nDCG@10/R-prec and for the CLI's default set;
* ``write_run`` to a temporary file, ``read_run_arrays`` and ``Run.read`` of it;
* pytrec_eval (if installed): building its dict input, ``RelevanceEvaluator`` and
  ``evaluate`` for the same measures, and checks the means agree to 1e-9.

Usage: python scripts/bench_evaluation.py [--queries N] [--depth K] [--judged J]
       [--seed S] [--no-pytrec] [--no-files] [--out FOLDER]

With ``--out`` the table is also written as ``FOLDER/evaluation.json`` and ``.md``
(with the machine and its load average).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.evaluation import DEFAULT_MEASURES, Qrels, Run, evaluate
from retrieval.evaluation.measures import parse_measures
from retrieval.records import ScoredDoc
from retrieval.trec import read_run_arrays, write_run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the report helper
from reporting import machine, run_main, write_report  # noqa: E402

BENCH_MEASURES = ("AP", "P@10", "nDCG@10", "R-prec")


def synthetic(queries: int, depth: int, judged: int, seed: int):
    rng = np.random.default_rng(seed)
    collection = max(10 * depth, 2_000_000)
    qnames = np.array([f"q{i}" for i in range(queries)])
    # distinct documents per query: sorted random draws made strictly increasing
    docs = np.sort(rng.integers(0, collection - depth, size=(queries, depth)), axis=1)
    docs += np.arange(depth)
    docs = rng.permuted(docs, axis=1)
    docids = np.char.add("doc", docs.ravel().astype(str))
    # scores rounded to 3 decimals: plenty of ties, broken by docid
    scores = np.round(-np.sort(-rng.normal(size=(queries, depth)) * 3, axis=1), 3).ravel()
    qids = np.repeat(qnames, depth)
    half = judged // 2
    picked = rng.integers(0, depth, size=(queries, half)) + np.arange(queries)[:, None] * depth
    picked = np.unique(picked)
    extra = np.char.add("unret", rng.integers(0, collection, size=queries * (judged - half))
                        .astype(str))
    jq = np.concatenate([qids[picked], np.repeat(qnames, judged - half)])
    jd = np.concatenate([docids[picked], extra])
    keep = np.unique(np.char.add(np.char.add(jq, " "), jd), return_index=True)[1]
    jq, jd = jq[keep], jd[keep]
    jr = rng.choice([0, 0, 0, 1, 1, 2], size=jq.size)
    return qids, docids, scores, jq, jd, jr


def timed(label, func, rows, table):
    start = time.perf_counter()
    value = func()
    table.append((label, time.perf_counter() - start, rows))
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--depth", type=int, default=1_000)
    p.add_argument("--judged", type=int, default=100, help="judgments per query")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-pytrec", action="store_true")
    p.add_argument("--no-files", action="store_true", help="skip writing/reading the run file")
    p.add_argument("--out", type=Path, help="also write evaluation.json and .md here")
    args = p.parse_args(argv)

    start = time.perf_counter()
    qids, docids, scores, jq, jd, jr = synthetic(args.queries, args.depth, args.judged,
                                                 args.seed)
    n = qids.size
    print(f"synthetic data: {args.queries:,} queries x {args.depth:,} = {n:,} rows, "
          f"{jq.size:,} judgments (generated in {time.perf_counter() - start:.1f} s)")
    table: list[tuple[str, float, int]] = []
    qrels = timed("Qrels.from_arrays", lambda: Qrels.from_arrays(jq, jd, jr), jq.size, table)
    run = timed("Run.from_arrays", lambda: Run.from_arrays(qids, docids, scores), n, table)
    ours = timed(f"evaluate {'/'.join(BENCH_MEASURES)}",
                 lambda: evaluate(qrels, run, BENCH_MEASURES), n, table)
    full = timed(f"evaluate {len(DEFAULT_MEASURES)} default measures",
                 lambda: evaluate(qrels, run, DEFAULT_MEASURES), n, table)

    if not args.no_files:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "bench.run")
            ranks = np.tile(np.arange(1, args.depth + 1), args.queries).tolist()
            timed("write_run (ScoredDoc records)", lambda: write_run(
                path, (ScoredDoc(q, d, s, r) for q, d, s, r in
                       zip(qids.tolist(), docids.tolist(), scores.tolist(), ranks)), "bench"),
                  n, table)
            size = os.path.getsize(path)
            arrays = timed(f"read_run_arrays ({size / 1e6:.0f} MB)",
                           lambda: read_run_arrays(path), n, table)
            assert np.array_equal(arrays.scores, scores) and arrays.docids[-1] == docids[-1]
            del arrays
            from_file = timed("Run.read", lambda: Run.read(path), n, table)
            again = evaluate(qrels, from_file, BENCH_MEASURES)
            assert all(again.mean[m] == ours.mean[m] for m in BENCH_MEASURES)
            del from_file

    if not args.no_pytrec:
        try:
            import pytrec_eval
        except ImportError:
            print("pytrec_eval is not installed: skipping the comparison")
        else:
            names = {m.name: m.trec_name for m in parse_measures(BENCH_MEASURES)}

            def to_dicts():
                run_d: dict[str, dict[str, float]] = {}
                for q, d, s in zip(qids.tolist(), docids.tolist(), scores.tolist()):
                    run_d.setdefault(q, {})[d] = s
                qrels_d: dict[str, dict[str, int]] = {}
                for q, d, r in zip(jq.tolist(), jd.tolist(), jr.tolist()):
                    qrels_d.setdefault(q, {})[d] = r
                return run_d, qrels_d

            run_d, qrels_d = timed("pytrec_eval: build dict input", to_dicts, n, table)
            evaluator = timed("pytrec_eval: RelevanceEvaluator", lambda: pytrec_eval.
                              RelevanceEvaluator(qrels_d, set(names.values())), jq.size, table)
            theirs = timed(f"pytrec_eval: evaluate {'/'.join(BENCH_MEASURES)}",
                           lambda: evaluator.evaluate(run_d), n, table)
            worst = 0.0
            for ours_name, trec_name in names.items():
                mean = float(np.mean([theirs[q][trec_name] for q in ours.qids]))
                worst = max(worst, abs(mean - ours.mean[ours_name]))
                per_query = np.array([theirs[q][trec_name] for q in ours.qids])
                worst = max(worst, float(np.abs(per_query - ours.values(ours_name)).max()))
            assert worst < 1e-9, worst
            print(f"pytrec_eval agreement: max |difference| over per-query values and means "
                  f"= {worst:.2e}")

    width = max(len(label) for label, _, _ in table)
    print(f"\n{'step':<{width}}  {'seconds':>8}  {'rows/s':>12}")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 12}")
    for label, seconds, rows in table:
        print(f"{label:<{width}}  {seconds:8.2f}  {rows / seconds:12,.0f}")
    print("\nmeans: " + ", ".join(f"{m}={ours.mean[m]:.4f}" for m in BENCH_MEASURES)
          + f"  ({len(ours.qids):,} queries; default-set bpref={full.mean['bpref']:.4f})")
    if args.out:
        md = [f"### Evaluation speed: {args.queries:,} queries x {args.depth:,} = {n:,} rows",
              "", "| step | seconds | rows/s |", "|---|---:|---:|"]
        md += [f"| {label} | {seconds:.2f} | {rows / seconds:,.0f} |"
               for label, seconds, rows in table]
        write_report(args.out, "evaluation", {
            "machine": machine(), "queries": args.queries, "depth": args.depth,
            "judged": args.judged, "seed": args.seed,
            "steps": [{"step": label, "seconds": seconds, "rows": rows}
                      for label, seconds, rows in table],
            "means": {m: ours.mean[m] for m in BENCH_MEASURES}}, "\n".join(md))
    return 0


if __name__ == "__main__":
    run_main(main, "bench_evaluation.py")
