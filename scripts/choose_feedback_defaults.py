#!/usr/bin/env python3
"""Choose the feedback methods' default parameters on training queries, never test queries.

The protocol (fixed before any test figure was looked at):

* **Development data**: NFCorpus's *train* and *dev* title queries (2,594 + 325 in the
  distribution), ranked against ``dev.docs`` (3,193 documents) and judged by their own
  ``2-1-0`` qrels restricted to those documents. Queries with no relevant document in
  ``dev.docs`` are left out, and so is any query whose text is also the text of a *test*
  query. None of the test queries of the five shared collections is used.
* **Grids**: ``GRIDS`` below, every combination, first pass and second pass Dirichlet
  μ = 1000 (the engine's default model), top 1000, default analyzer.
* **Measure**: mean AP over the development queries pooled (train and dev together, so
  each query counts once).
* **Rule**: among the configurations within ``TOLERANCE`` (0.001 AP) of the best, the
  first in grid order. Each grid lists its parameters and values cheapest or most
  conservative first (fewer expansion terms, fewer documents, a larger original-query
  weight, no document-frequency cut), so a costlier configuration wins only by more
  than the tolerance.

The chosen configurations are the defaults of ``retrieval.feedback``; a test
(``tests/test_feedback_defaults.py``) checks that the code's defaults equal the ones
recorded in ``results/feedback/defaults.json``.

Prints a Markdown table of the best configurations per method and writes
``results/feedback/defaults.json`` and ``defaults.md``. About 30 minutes for all three
methods on 2 cores (``--methods`` runs some).

    python scripts/choose_feedback_defaults.py [--methods rm3 mixture divmin]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval import __version__
from retrieval.analysis import Analyzer
from retrieval.benchmarking import cached_index
from retrieval.collections.base import Collection
from retrieval.collections.nfcorpus import load_nfcorpus, read_id_text, read_nfcorpus_qrels
from retrieval.evaluation import Qrels, Run, evaluate
from retrieval.feedback import make_feedback
from retrieval.paths import cache_dir, collections_root
from retrieval.records import Query
from retrieval.search import Searcher
from retrieval.smoothing import Dirichlet
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the report helper
from reporting import run_main, write_report  # noqa: E402

K = 1000
MU = 1000.0
TOLERANCE = 0.001

#: parameter order and value order are the tie-break order (cheapest / most conservative
#: first); every combination is run
GRIDS = {
    "rm3": {"fb_terms": [10, 20, 30, 50], "fb_docs": [5, 10, 20],
            "fb_orig_weight": [0.5, 0.3, 0.2, 0.1], "fb_max_df": [1.0, 0.2, 0.1, 0.05],
            "fb_doc_weights": ["likelihood", "uniform"]},
    "mixture": {"fb_terms": [20, 50, 100], "fb_docs": [5, 10, 20],
                "fb_alpha": [0.5, 0.7, 0.9], "fb_lambda": [0.5, 0.7, 0.9]},
    "divmin": {"fb_terms": [20, 50, 100], "fb_docs": [5, 10, 20],
               "fb_alpha": [0.5, 0.7, 0.9], "fb_lambda": [0.3, 0.5, 0.7]},
}


def development_collection(folder: Path) -> Collection:
    """NFCorpus train + dev title queries on dev.docs, test-query texts removed."""
    dev = load_nfcorpus(folder, split="dev")
    docs = {d.docid for d in dev.documents}
    test_texts = {text for _, text in read_id_text(folder / "test.titles.queries", "query")}
    queries, qrels, seen = [], [], set()
    for split in ("train", "dev"):
        qs = [Query(i, t) for i, t in read_id_text(folder / f"{split}.titles.queries",
                                                     "query") if t not in test_texts]
        rel = [r for r in read_nfcorpus_qrels(folder / f"{split}.2-1-0.qrel")
               if r.docid in docs and r.relevance > 0]
        judged = {r.qid for r in rel}
        qs = [q for q in qs if q.qid in judged and q.qid not in seen]
        seen.update(q.qid for q in qs)
        keep = {q.qid for q in qs}
        queries += qs
        qrels += [r for r in rel if r.qid in keep]
    return Collection("nfcorpus-development", dev.documents, tuple(queries), tuple(qrels),
                      "NFCorpus train+dev title queries on dev.docs (test texts removed)")


_STATE: dict = {}


def _init(folder: str) -> None:
    collection = development_collection(Path(folder))
    index, _, _ = cached_index(collection, Analyzer(), cache_dir())
    _STATE.update(collection=collection, index=index,
                  queries=list(collection.queries),
                  qrels=Qrels.from_records(collection.qrels),
                  searcher=Searcher(index, Dirichlet(mu=MU), compiled="auto"))


def _mean_ap(task: tuple[str, dict]) -> float:
    method, params = task
    st = _STATE
    texts = [q.text for q in st["queries"]]
    res = make_feedback(method, **params).batch_search_arrays(st["searcher"], texts, K)
    run = Run.from_arrays([st["queries"][i].qid for i in res.query_index.tolist()],
                          st["index"].docids.many(res.doc_numbers), res.scores)
    per_query = evaluate(st["qrels"], run, ["AP"], complete=True).per_query["AP"]
    return float(np.mean(list(per_query.values())))


def _label(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def choose(scores: list[tuple[dict, float]]) -> tuple[dict, float, float]:
    """(chosen params, its AP, best AP): the first within TOLERANCE of the best."""
    best = max(ap for _, ap in scores)
    params, ap = next((p, v) for p, v in scores if v >= best - TOLERANCE)
    return params, ap, best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--output", default=str(REPO / "results" / "feedback"))
    args = ap.parse_args(argv)
    folder = collections_root() / "nfcorpus"
    _init(str(folder))   # builds (or opens) the cached index once, before the workers
    n_queries = len(_STATE["queries"])
    n_judged = len({r.qid for r in _STATE["collection"].qrels})
    tasks = [(m, dict(zip(GRIDS[m], combo))) for m in args.methods
             for combo in itertools.product(*GRIDS[m].values())]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(str(folder),)) as pool:
        values = list(pool.map(_mean_ap, tasks, chunksize=4))
    seconds = time.perf_counter() - start
    out_path = Path(args.output) / "defaults.json"
    report = json.loads(out_path.read_text()) if out_path.exists() else {}
    report.update({"package_version": __version__, "machine": platform.platform(),
                   "python": platform.python_version(),
                   "development": {"documents": _STATE["index"].num_docs,
                                   "queries": n_queries, "judged_queries": n_judged,
                                   "description": _STATE["collection"].description},
                   "k": K, "mu": MU, "tolerance": TOLERANCE})
    report.setdefault("methods", {})
    for method in args.methods:
        scores = [(p, v) for (m, p), v in zip(tasks, values) if m == method]
        chosen, chosen_ap, best = choose(scores)
        report["methods"][method] = {
            "grid": GRIDS[method], "chosen": chosen, "chosen_ap": chosen_ap,
            "best_ap": best, "run_seconds": seconds,
            "all": [{"params": p, "ap": v} for p, v in scores]}
    md = ["## Feedback defaults chosen on development queries", "",
          f"NFCorpus train+dev title queries on dev.docs: {n_judged} judged queries, "
          f"{_STATE['index'].num_docs} documents; no test query is used. Dirichlet "
          f"μ={MU:g}, top {K}, mean AP. Rule: the first configuration in grid order "
          f"within {TOLERANCE} AP of the best (`scripts/choose_feedback_defaults.py`). "
          "The ten best of each grid, and the chosen one:", "",
          "| method | rank | configuration | dev AP | |", "|---|---:|---|---:|---|"]
    for method, info in report["methods"].items():
        ranked = sorted(info["all"], key=lambda r: -r["ap"])
        place = [r["params"] for r in ranked].index(info["chosen"])
        for rank, r in enumerate(ranked, 1):
            if rank <= 10 or rank == place + 1:
                mark = "**chosen**" if rank == place + 1 else ""
                md.append(f"| {method} | {rank} | {_label(r['params'])} | {r['ap']:.4f} "
                          f"| {mark} |")
        md.append(f"| {method} | | {len(ranked)} configurations | | |")
    text = "\n".join(md)
    print(text)
    write_report(out_path.parent, "defaults", report, text)
    return 0


if __name__ == "__main__":
    run_main(main, "choose_feedback_defaults.py")  # a missing collection: one line
