#!/usr/bin/env python3
"""Choose the engine's defaults by leave-one-collection-out, and measure how they carry.

The protocol (fixed before any held-out figure was looked at):

* **Collections**: the five shared ones — cranfield, cisi, med, cacm, nfcorpus. A
  collection *held out* is scored on all its judged queries (NFCorpus: its test title
  queries on test.docs). A collection used for *choosing* is the same collection,
  except NFCorpus, which is represented by its train+dev title queries on dev.docs
  (``choose_feedback_defaults.development_collection``; test-query texts removed;
  one query in ``DEV_SAMPLE`` by sorted id, for time), so
  NFCorpus's test queries are never used to choose anything.
* **Candidate defaults** are families: a ranking model with a small grid of its
  parameters (``MODEL_FAMILIES``), then, on top of the shipped model, a feedback method
  with a small grid (``FEEDBACK_FAMILIES``), and "no feedback".
* **Leave one collection out**: for each family and each held-out collection H the
  family's configuration is chosen on the four others — the best mean MAP over them
  (each collection weighs the same), the first in grid order among those within
  ``TOLERANCE`` of the best — and scored on H. A family's held-out score is the mean of
  its five held-out MAPs; beside it the worst *regret* (the best configuration of the
  grid on H, chosen by looking at H, minus the held-out MAP) and the worst gap to BM25.
* **Feedback** configurations are chosen on the four with a safety rule: among the
  configurations that are ≥ no feedback on every one of the four (if there are any),
  the best mean MAP; otherwise the one whose smallest gain over no feedback is largest.
  Feedback is **on by default** only if the best feedback family's held-out MAP is ≥ no
  feedback's held-out MAP on all five collections.
* **What ships**: the model family with the best mean held-out MAP, with the
  configuration chosen on all five choosing collections; each feedback method's defaults
  likewise chosen on all five. ``tests/test_defaults.py`` checks the code's defaults equal
  the record in ``results/defaults/defaults.json``.

Runs are top 1000, the default analyzer, trec_eval ``-c`` semantics (a judged query
with nothing retrieved counts 0). Per-query APs are cached under
``$RETRIEVAL_CACHE/choose_defaults`` by configuration label, so a re-run only computes
what is new (``--no-cache`` recomputes). BM25 figures for the comparison are read from
``results/defaults/bm25.json`` (``scripts/compare_bm25.py``) when present.

    python scripts/choose_defaults.py [--stage model|feedback|all] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from retrieval import __version__  # noqa: E402
from retrieval.analysis import Analyzer  # noqa: E402
from retrieval.benchmarking import cached_index, default_cache_dir  # noqa: E402
from retrieval.collections import load_collection  # noqa: E402
from retrieval.estimation import cached_mu_estimate  # noqa: E402
from retrieval.evaluation import Qrels, Run, evaluate  # noqa: E402
from retrieval.feedback import make_feedback  # noqa: E402
from retrieval.paths import collections_root  # noqa: E402
from retrieval.search import Searcher  # noqa: E402
from retrieval.smoothing import Dirichlet, make_model, with_length_prior  # noqa: E402
from retrieval.twostage import TwoStageEM  # noqa: E402
from reporting import run_main, write_report  # noqa: E402

K = 1000
TOLERANCE = 0.001
HELD_OUT = ("cranfield", "cisi", "med", "cacm", "nfcorpus")
#: the collection used for choosing when H is not held out
CHOOSING = {name: name for name in HELD_OUT} | {"nfcorpus": "nfcorpus-dev"}
OUT = REPO / "results" / "defaults"
#: NFCorpus's 2,846 development queries are sampled 1 in DEV_SAMPLE (by sorted query id)
#: to keep the grids affordable on a shared 2-core machine (≈ 950 queries)
DEV_SAMPLE = 3

#: the length prior's β values (retrieval.smoothing.LengthPrior; β·log|d| per unit of
#: query mass); 0 = no prior
PRIORS = [0, 0.02, 0.05, 0.1, -0.02, -0.05, -0.1]

#: query-term-frequency treatments (``query_models``); "raw" = the engine's ML model
QTF = ["raw", "log", "binary"]

#: model families: name -> (model name, grid); grids list the conventional value first
MODEL_FAMILIES = {
    "dirichlet": ("dirichlet", {"mu": [1000, 500, 250, 2000]}),
    "dirichlet-loo": ("dirichlet", {"mu": ["auto"]}),
    "dirichlet-avgdl": ("dirichlet-avgdl", {"mu_scale": [1, 0.5, 2, 4, 8]}),
    "dir+": ("dir+", {"mu": [1000, 500, 250, 2000], "delta": [0.05, 0.5]}),
    "spud": ("spud", {"omega": [0.8, 0.6, 0.7, 0.9]}),
    "jm": ("jm", {"lam": [0.7, 0.5, 0.3, 0.1]}),
    "two-stage": ("two-stage", {"mu": [1000, 500], "lam": [0.5, 0.3, 0.7]}),
    "ad": ("ad", {"delta": [0.7, 0.5, 0.9]}),
    # λ per query by EM (Zhai & Lafferty 2002): only μ is chosen
    "two-stage-em": ("two-stage", {"mu": [1000, 500, 2000], "lam": ["auto"]}),
    # a document-length prior β·log|d| (smoothing.LengthPrior) on the families that
    # need no tuning or are known to lack a length correction (JM: Losada & Azzopardi
    # 2008); β = 0 (no prior) is listed first, so ties keep the plain model
    "spud+prior": ("spud", {"omega": [0.8], "prior": PRIORS}),
    "dirichlet+prior": ("dirichlet", {"mu": [1000, 500], "prior": PRIORS}),
    "jm+prior": ("jm", {"lam": [0.7, 0.5], "prior": PRIORS}),
    # query-term frequency on verbose queries: c(w,q) as is (the ML query model), damped
    # to 1 + log c(w,q), or ignored (each distinct term once); normalised to mass 1
    "spud+qtf": ("spud", {"omega": [0.8], "qtf": QTF}),
}

#: feedback families on top of the shipped model; most conservative value first
FEEDBACK_FAMILIES = {
    "rm3": {"fb_docs": [10, 20], "fb_terms": [10, 30, 50], "fb_orig_weight": [0.5, 0.7, 0.3],
            "fb_max_df": [1.0, 0.1]},
    "mixture": {"fb_docs": [10], "fb_terms": [20], "fb_alpha": [0.3, 0.5, 0.7],
                "fb_lambda": [0.9]},
    "divmin": {"fb_docs": [5], "fb_terms": [20], "fb_alpha": [0.3, 0.5],
               "fb_lambda": [0.3]},
}


# ---------------------------------------------------------------------------------------
# configurations and their evaluation (cached per collection and label)

def grid(values: dict) -> list[dict]:
    return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]


def config_label(model: str, params: dict, fb: str | None = None, fb_params=None) -> str:
    def fmt(d):
        return ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in d.items())
    # β = 0 and raw query counts are the plain model (same label, same runs)
    params = {k: v for k, v in params.items()
              if not (k == "prior" and v == 0) and not (k == "qtf" and v == "raw")}
    text = f"{model}({fmt(params)})"
    if fb:
        text += f"+{fb}({fmt(fb_params or {})})"
    return text


def load_choosing_or_held_out(name: str):
    if name == "nfcorpus-dev":
        from choose_feedback_defaults import development_collection
        from retrieval.collections.base import Collection
        dev = development_collection(collections_root() / "nfcorpus")
        qids = sorted(q.qid for q in dev.queries)[::DEV_SAMPLE]
        keep = set(qids)
        return Collection("nfcorpus-dev", dev.documents,
                          tuple(q for q in dev.queries if q.qid in keep),
                          tuple(r for r in dev.qrels if r.qid in keep),
                          dev.description + f"; every {DEV_SAMPLE}rd query by sorted id")
    return load_collection(name)


_STATE: dict = {}


def _setup(name: str):
    if name not in _STATE:
        coll = load_choosing_or_held_out(name)
        index, _, _ = cached_index(coll, Analyzer(), default_cache_dir())
        _STATE[name] = (coll, index, Qrels.from_records(coll.qrels))
    return _STATE[name]


def resolve_model(model: str, params: dict, index):
    params = dict(params)
    prior = params.pop("prior", None)
    params.pop("qtf", None)
    if params.get("mu") == "auto":
        return Dirichlet(mu=cached_mu_estimate(index, store=False).mu)
    return with_length_prior(make_model(model, index=index, **params), prior)


def run_task(task) -> tuple[str, str, dict]:
    """(collection, label, {qid: AP}) of one configuration on one collection."""
    name, model, params, fb, fb_params = task
    coll, index, qrels = _setup(name)
    texts = query_models(index, [q.text for q in coll.queries], params.get("qtf", "raw"))
    if params.get("lam") == "auto":  # two-stage, λ per query by EM
        res = TwoStageEM(mu=params["mu"]).batch_search_arrays(
            index, texts, K, feedback=make_feedback(fb, **fb_params) if fb else None)
    elif fb:
        searcher = Searcher(index, resolve_model(model, params, index), compiled="auto")
        res = make_feedback(fb, **fb_params).batch_search_arrays(searcher, texts, K)
    else:
        searcher = Searcher(index, resolve_model(model, params, index), compiled="auto")
        res = searcher.batch_search_arrays(texts, K)
    run = Run.from_arrays([coll.queries[i].qid for i in res.query_index.tolist()],
                          index.docids.many(res.doc_numbers), res.scores)
    ap = evaluate(qrels, run, ["AP"], complete=True).per_query["AP"]
    return name, config_label(model, params, fb, fb_params), {q: float(v) for q, v in ap.items()}


def query_models(index, texts: list[str], qtf: str) -> list:
    """The queries as given (``raw``: the engine's maximum-likelihood model
    c(w,q)/|q|), or as query models with damped (1 + log c) or binary (1) term counts,
    normalised to mass 1."""
    if qtf == "raw":
        return texts
    from retrieval.search import QueryModel
    base = Searcher(index, Dirichlet(), compiled=False)
    out = []
    for text in texts:
        counts = index.analyzer.term_counts(text)
        known = {t: c for t, c in counts.items() if index.term_id(t) >= 0}
        w = {t: (1.0 + math.log(c)) if qtf == "log" else 1.0 for t, c in known.items()}
        total = sum(w.values())
        out.append(QueryModel.from_weights({t: v / total for t, v in w.items()})
                   if total else base.query_model(text))
    return out


class Cache:
    """Per-query APs by collection and label, in one JSON file per collection."""

    def __init__(self, folder: Path, enabled: bool):
        self.folder, self.enabled, self.data = folder, enabled, {}

    def table(self, name: str) -> dict:
        if name not in self.data:
            f = self.folder / f"{name}.json"
            self.data[name] = json.loads(f.read_text()) if self.enabled and f.exists() else {}
        return self.data[name]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.data.items():
            (self.folder / f"{name}.json").write_text(json.dumps(table))


def compute(tasks: list, cache: Cache, jobs: int) -> None:
    todo = [t for t in tasks if config_label(*t[1:]) not in cache.table(t[0])]
    if not todo:
        return
    print(f"running {len(todo)} configurations ({len(tasks) - len(todo)} cached)",
          file=sys.stderr)
    started = time.perf_counter()
    # the large NFCorpus development set first, so the two workers finish together
    todo.sort(key=lambda t: t[0] != "nfcorpus-dev")
    with ProcessPoolExecutor(jobs) as pool:
        for i, (name, label, ap) in enumerate(pool.map(run_task, todo), 1):
            cache.table(name)[label] = ap
            if i % 10 == 0 or i == len(todo):
                cache.save()
                print(f"  {i}/{len(todo)} {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)


def mean_ap(cache: Cache, name: str, label: str) -> float:
    return float(np.mean(list(cache.table(name)[label].values())))


# ---------------------------------------------------------------------------------------
# the leave-one-collection-out choice

def choose_by_mean(labels: list[str], means: dict[str, list[float]]) -> str:
    """The first label within TOLERANCE of the best mean (over the choosing collections)."""
    avg = {lab: math.fsum(means[lab]) / len(means[lab]) for lab in labels}
    best = max(avg.values())
    return next(lab for lab in labels if avg[lab] >= best - TOLERANCE)


def choose_safely(labels: list[str], means: dict[str, list[float]], base: list[float]) -> str:
    """Feedback rule: best mean among those ≥ no feedback on every choosing collection,
    else the largest smallest gain."""
    safe = [lab for lab in labels if all(m >= b for m, b in zip(means[lab], base))]
    if safe:
        return choose_by_mean(safe, means)
    return max(labels, key=lambda lab: min(m - b for m, b in zip(means[lab], base)))


def loo(cache: Cache, labels: list[str], chooser, base_labels=None) -> dict:
    """Leave-one-collection-out over HELD_OUT for one family's configurations."""
    folds = {}
    for held in HELD_OUT:
        choosing = [CHOOSING[c] for c in HELD_OUT if c != held]
        means = {lab: [mean_ap(cache, c, lab) for c in choosing] for lab in labels}
        if base_labels is None:
            pick = chooser(labels, means)
        else:
            base = [mean_ap(cache, c, base_labels[held]) for c in choosing]
            pick = chooser(labels, means, base)
        scores = {lab: mean_ap(cache, held, lab) for lab in labels}
        best = max(scores, key=scores.get)
        folds[held] = {"chosen": pick, "held_out_map": scores[pick],
                       "best_on_held_out": best, "best_map": scores[best],
                       "regret": scores[best] - scores[pick]}
    all_means = {lab: [mean_ap(cache, CHOOSING[c], lab) for c in HELD_OUT] for lab in labels}
    if base_labels is None:
        ship = chooser(labels, all_means)
    else:
        base = [mean_ap(cache, CHOOSING[c], base_labels["all"]) for c in HELD_OUT]
        ship = chooser(labels, all_means, base)
    held = [f["held_out_map"] for f in folds.values()]
    return {"folds": folds, "mean_held_out": float(np.mean(held)),
            "worst_regret": max(f["regret"] for f in folds.values()), "ship": ship}


# ---------------------------------------------------------------------------------------

def model_stage(cache: Cache, jobs: int) -> dict:
    sets = sorted(set(HELD_OUT) | set(CHOOSING.values()))
    tasks = [(s, model, params, None, None) for s in sets
             for model, values in MODEL_FAMILIES.values() for params in grid(values)]
    compute(tasks, cache, jobs)
    out = {}
    for fam, (model, values) in MODEL_FAMILIES.items():
        labels = [config_label(model, p) for p in grid(values)]
        out[fam] = loo(cache, labels, choose_by_mean)
    return out


def _parse_label(label: str) -> tuple[str, dict]:
    name, args = label[:-1].split("(", 1)
    params = {}
    for part in filter(None, args.split(",")):
        k, v = part.split("=")
        try:
            params[k] = int(v) if v.isdigit() else float(v)
        except ValueError:
            params[k] = v
    return name, params


def feedback_stage(cache: Cache, jobs: int, models: dict) -> dict:
    """``models``: the first-pass model label per held-out collection and for "all"."""
    sets = sorted(set(HELD_OUT) | set(CHOOSING.values()))
    tasks = []
    for mlabel in dict.fromkeys(models.values()):
        model, params = _parse_label(mlabel)
        for fb, values in FEEDBACK_FAMILIES.items():
            tasks += [(s, model, params, fb, p) for s in sets for p in grid(values)]
    compute(tasks, cache, jobs)
    out = {}
    for fb, values in FEEDBACK_FAMILIES.items():
        fam = {}
        per_model = {}
        for key, mlabel in models.items():
            labels = [mlabel + "+" + config_label(fb, p).replace(fb, fb, 1)
                      for p in grid(values)]
            per_model[key] = labels
        # the labels depend on the fold's first-pass model: run the LOO per fold
        folds = {}
        for held in HELD_OUT:
            labels = per_model[held]
            res = loo(cache, labels, choose_safely,
                      {h: models[held] for h in HELD_OUT} | {"all": models[held]})
            folds[held] = res["folds"][held]
            folds[held]["no_feedback_map"] = mean_ap(cache, held, models[held])
        ship = loo(cache, per_model["all"], choose_safely,
                   {h: models["all"] for h in HELD_OUT} | {"all": models["all"]})["ship"]
        held_maps = [f["held_out_map"] for f in folds.values()]
        fam = {"folds": folds, "mean_held_out": float(np.mean(held_maps)),
               "worst_regret": max(f["regret"] for f in folds.values()), "ship": ship,
               "never_below_none": all(f["held_out_map"] >= f["no_feedback_map"]
                                       for f in folds.values())}
        out[fb] = fam
    return out


def bm25_reference() -> dict:
    f = OUT / "bm25.json"
    if not f.exists():
        return {}
    data = json.loads(f.read_text())
    return {c: v["best_map"] for c, v in data.get("collections", {}).items()}


def report_md(report: dict) -> str:
    bm25 = report.get("bm25_map", {})
    lines = ["## Defaults chosen by leave-one-collection-out", "",
             "Each family's configuration is chosen on the four other collections (NFCorpus "
             "represented by a third of its train+dev queries) and scored on the held-out one; MAP, "
             "top 1000. `regret` = best configuration of the family on the held-out "
             "collection (chosen by looking at it) minus the held-out MAP. "
             "Regenerate: `python scripts/choose_defaults.py`.", ""]
    head = "| family | " + " | ".join(HELD_OUT) + " | mean | worst regret | worst vs BM25 |"
    lines += ["### Ranking models", "",
              "Families beyond the plain models: `two-stage-em` = two-stage with λ per "
              "query (the maximum of Zhai & Lafferty's EM likelihood; `--model two-stage "
              "--lam auto`), μ chosen; `+prior` = the model with the document-length prior "
              f"β·log|d| (`--length-prior`), β ∈ {PRIORS} chosen (0 = none); `spud+qtf` = "
              f"SPUD with the query's term counts as is, damped (1 + log c) or binary "
              f"({QTF}).", "",
              head, "|---|" + "---:|" * (len(HELD_OUT) + 3)]
    if bm25:
        lines.append("| BM25 (bm25s k1=1.2 b=0.75, best analyzer) | " + " | ".join(
            f"{bm25.get(c, float('nan')):.4f}" for c in HELD_OUT) +
            f" | {np.mean([bm25[c] for c in HELD_OUT if c in bm25]):.4f} | | |")
    for fam, r in report["models"].items():
        f = r["folds"]
        vs = min(f[c]["held_out_map"] - bm25[c] for c in HELD_OUT if c in bm25) if bm25 else None
        lines.append(f"| {fam} | " + " | ".join(f"{f[c]['held_out_map']:.4f}" for c in HELD_OUT)
                     + f" | **{r['mean_held_out']:.4f}** | {r['worst_regret']:.4f} | "
                     + (f"{vs:+.4f}" if vs is not None else "") + " |")
    oracle = report.get("oracle_model_map")
    if oracle:
        lines.append("| best of any grid, chosen on the collection itself (a bound) | " +
                     " | ".join(f"{oracle[c]['map']:.4f}" for c in HELD_OUT) +
                     f" | {np.mean([oracle[c]['map'] for c in HELD_OUT]):.4f} | | |")
        lines += ["", "The bound's configurations: " + "; ".join(
            f"{c}: `{oracle[c]['label']}`" for c in HELD_OUT) + "."]
    lines += ["", "Chosen per held-out collection:", ""]
    for fam, r in report["models"].items():
        lines.append(f"- {fam}: " + "; ".join(f"{c}: `{r['folds'][c]['chosen']}`"
                                            for c in HELD_OUT) + f"; ships `{r['ship']}`")
    if "feedback" in report:
        lines += ["", "### Feedback on top of the shipped model", "",
                  "| method | " + " | ".join(HELD_OUT) + " | mean | worst regret | ≥ none everywhere |",
                  "|---|" + "---:|" * (len(HELD_OUT) + 2) + "---|"]
        none = report["feedback_base"]
        lines.append("| none | " + " | ".join(f"{none[c]:.4f}" for c in HELD_OUT) +
                     f" | **{np.mean([none[c] for c in HELD_OUT]):.4f}** | | |")
        for fb, r in report["feedback"].items():
            f = r["folds"]
            lines.append(f"| {fb} | " + " | ".join(
                f"{f[c]['held_out_map']:.4f} ({f[c]['held_out_map'] - f[c]['no_feedback_map']:+.4f})"
                for c in HELD_OUT) + f" | **{r['mean_held_out']:.4f}** | {r['worst_regret']:.4f}"
                f" | {'yes' if r['never_below_none'] else 'no'} |")
        lines += ["", "Chosen per held-out collection:", ""]
        for fb, r in report["feedback"].items():
            lines.append(f"- {fb}: " + "; ".join(f"{c}: `{r['folds'][c]['chosen']}`"
                                                for c in HELD_OUT) + f"; ships `{r['ship']}`")
    lines += ["", "### Shipped", ""] + [f"- {k}: `{v}`" for k, v in report["shipped"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=("model", "feedback", "all"), default="all")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    cache = Cache(default_cache_dir() / "choose_defaults", not args.no_cache)
    started = time.perf_counter()
    for name in sorted(set(HELD_OUT) | set(CHOOSING.values())):
        _setup(name)  # build or open the cached indexes once, before the workers
    _STATE.clear()
    models = model_stage(cache, args.jobs)
    best_family = max(models, key=lambda f: models[f]["mean_held_out"])
    report = {"package_version": __version__, "machine": platform.platform(),
              "k": K, "tolerance": TOLERANCE, "held_out": list(HELD_OUT),
              "choosing": CHOOSING, "model_families": {
                  k: {"model": m, "grid": g} for k, (m, g) in MODEL_FAMILIES.items()},
              "models": models, "bm25_map": bm25_reference()}
    report["shipped"] = {"model_family": best_family, "model": models[best_family]["ship"]}
    # the bound: the best configuration of any family on each collection, chosen by
    # looking at that collection (no choice made without it can do better)
    every = [config_label(m, p) for m, values in MODEL_FAMILIES.values() for p in grid(values)]
    report["oracle_model_map"] = {}
    for h in HELD_OUT:
        best = max(every, key=lambda lab: mean_ap(cache, h, lab))
        report["oracle_model_map"][h] = {"label": best, "map": mean_ap(cache, h, best)}
    if args.stage in ("feedback", "all"):
        first = {h: models[best_family]["folds"][h]["chosen"] for h in HELD_OUT}
        first["all"] = models[best_family]["ship"]
        fbs = feedback_stage(cache, args.jobs, first)
        report["feedback_families"] = FEEDBACK_FAMILIES
        report["feedback"] = fbs
        report["feedback_base"] = {h: mean_ap(cache, h, first[h]) for h in HELD_OUT}
        best_fb = max(fbs, key=lambda f: fbs[f]["mean_held_out"])
        on = fbs[best_fb]["never_below_none"] and \
            fbs[best_fb]["mean_held_out"] > np.mean(list(report["feedback_base"].values()))
        report["shipped"]["feedback"] = best_fb if on else "none"
        for fb in fbs:
            report["shipped"][f"{fb}_defaults"] = fbs[fb]["ship"].split("+", 1)[1]
    cache.save()
    report["seconds"] = time.perf_counter() - started
    text = report_md(report)
    write_report(OUT, "defaults", report, text)
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main, "choose_defaults.py")
