#!/usr/bin/env python3
"""How ``jobs`` scales: index build and batch search with 1 … N worker processes.

On one corpus folder (``docs.jsonl`` + ``queries.tsv``, as written by ``make_corpus.py``)
this builds the index in memory with ``IndexBuilder.add_documents(jobs=j)`` and runs all
queries with ``Searcher.batch_search_arrays(jobs=j)`` at k = 10 and 1000 (best of
``--repeat`` runs after a warm-up; compiled kernels loaded), for each j in ``--jobs``. It
checks that every j gives the same index and the same rankings, and prints a Markdown
table of times and speed-ups (writes it with a JSON file when ``--out`` is given).

    python scripts/bench_jobs.py --corpus /tmp/syn100k --jobs 1,2

With ``--index`` the search runs on that built index (no builds: for 1M documents) and
``--model default`` ranks with the engine's default model (SPUD) instead of Dirichlet
μ=1000. Search times are wall times (threads); the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval import Analyzer, Dirichlet, Index, Searcher  # noqa: E402
from retrieval.smoothing import default_model  # noqa: E402
from retrieval.errors import InputError  # noqa: E402
from retrieval.index import IndexBuilder  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the report helper
from reporting import run_main, write_report  # noqa: E402


def read_corpus(folder: Path):
    """(docs, queries) of a make_corpus.py folder; InputError when it is not one."""
    for name in ("docs.jsonl", "queries.tsv"):
        if not (folder / name).is_file():
            raise InputError(f"no {name} here; make a corpus with scripts/make_corpus.py "
                             f"--docs N --out FOLDER", path=folder)
    with open(folder / "docs.jsonl", encoding="utf-8") as fh:
        docs = [(str(r["id"]), r["text"]) for r in map(json.loads, fh) if r]
    with open(folder / "queries.tsv", encoding="utf-8") as fh:
        queries = [line.rstrip("\n").split("\t", 1)[1] for line in fh if line.strip()]
    return docs, queries


def read_queries(folder: Path) -> list[str]:
    """The query texts of a make_corpus.py folder's queries.tsv."""
    if not (folder / "queries.tsv").is_file():
        raise InputError("no queries.tsv here; make a corpus with scripts/make_corpus.py "
                         "--docs N --out FOLDER", path=folder)
    with open(folder / "queries.tsv", encoding="utf-8") as fh:
        return [line.rstrip("\n").split("\t", 1)[1] for line in fh if line.strip()]


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--jobs", default="1,2", help="comma-separated worker counts")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, help="write <out>.md and <out>.json")
    p.add_argument("--index", type=Path,
                   help="search this built index (the corpus's queries) instead of building")
    p.add_argument("--model", choices=("dirichlet", "default"), default="dirichlet",
                   help="Dirichlet μ=1000 (default) or the engine's default model (SPUD)")
    args = p.parse_args(argv)
    jobs = [int(j) for j in args.jobs.split(",")]
    if args.index is not None:
        docs, queries = None, read_queries(args.corpus)
        opened = Index.open(args.index)
    else:
        docs, queries = read_corpus(args.corpus)
    rows, ref_index, ref_runs = [], None, {}
    for j in jobs:
        def build():
            b = IndexBuilder(Analyzer("lucene", "porter"), store_text=False)
            b.add_documents(docs, jobs=j)
            return b.finish()
        if docs is None:
            build_s, index = None, opened
        else:
            build_s, index = best_of(1, build)
        if ref_index is None:
            ref_index = index
        elif docs is not None:
            for name, arr in ref_index.arrays.items():
                assert np.array_equal(arr, index.arrays[name]), f"jobs={j}: {name} differs"
        model = default_model(index) if args.model == "default" else Dirichlet(mu=1000)
        searcher = Searcher(index, model, compiled=True)
        row = {"jobs": j, "build_s": build_s, "model": model.label(),
               "loadavg": os.getloadavg()[0]}
        for k in (10, 1000):
            searcher.batch_search_arrays(queries[:50], k, jobs=j)       # warm-up
            secs, res = best_of(args.repeat,
                                lambda: searcher.batch_search_arrays(queries, k, jobs=j))
            if k in ref_runs:
                a = ref_runs[k]
                assert np.array_equal(a.doc_numbers, res.doc_numbers) and \
                    np.array_equal(a.scores, res.scores), f"jobs={j}, k={k}: rankings differ"
            else:
                ref_runs[k] = res
            row[f"qps_k{k}"] = len(queries) / secs
        row["loadavg_end"] = os.getloadavg()[0]
        rows.append(row)
        del index, searcher
    base = rows[0]
    lines = [f"### jobs scaling: {ref_index.num_docs:,} documents, {len(queries):,} queries "
             f"({os.cpu_count()} cores), {base['model']}", "",
             "| jobs | build s | speed-up | q/s k=10 | speed-up | q/s k=1000 | speed-up "
             "| load |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        built = (f"{r['build_s']:.1f} | {base['build_s'] / r['build_s']:.2f}×"
                 if r["build_s"] else "– | –")
        lines.append(f"| {r['jobs']} | {built} "
                     f"| {r['qps_k10']:,.0f} | {r['qps_k10'] / base['qps_k10']:.2f}× "
                     f"| {r['qps_k1000']:,.0f} | {r['qps_k1000'] / base['qps_k1000']:.2f}× "
                     f"| {r['loadavg']:.1f}–{r['loadavg_end']:.1f} |")
    lines.append("")
    lines.append("Same index and bit-identical rankings for every jobs value (checked).")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_report(args.out.parent, args.out.stem, rows, text)  # the JSON: the rows
    return 0


if __name__ == "__main__":
    run_main(main, "bench_jobs.py")
