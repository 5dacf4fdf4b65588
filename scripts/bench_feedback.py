#!/usr/bin/env python3
"""Query-model updating on the shared collections: feedback, μ auto, cross-validation.

For every shared collection (cranfield, cisi, med, cacm, nfcorpus; read as in
``../shared/reference/anchors.md``: the collection readers of ``retrieval.collections``)
the script indexes with the project's default analyzer and runs

* plain Dirichlet, μ = 1000 (the baseline of every significance test);
* Dirichlet with μ estimated by leave-one-out maximum likelihood ("μ auto");
* mixture-model feedback, divergence minimisation and RM3, at their documented
  defaults (first pass and second pass: Dirichlet μ = 1000), which were chosen on
  NFCorpus's training queries by ``scripts/choose_feedback_defaults.py``, and at the
  settings of the methods' original implementations (Lemur; Indri and Anserini) for
  comparison (``TEXTBOOK``; not in the goal check);
* each of them with parameters chosen by 5-fold cross-validation over queries on a
  small grid (``GRIDS`` below; folds from seed 0; AP is the measure optimised; the
  default configuration is listed first, so it wins ties). P@10 and nDCG@10 of a
  cross-validated row are those of the configuration chosen on AP for each fold.

Evaluation: ``retrieval.evaluation`` (trec_eval semantics, judged queries without a
result count 0, top 1000). Significance against plain Dirichlet: paired randomization
test (``retrieval.evaluation.significance``), Holm-corrected over every row compared
with the baseline on the same collection and measure; marked ``*`` for p < 0.05 after
correction (``▲`` better, ``▼`` worse). Cost: batch time per query of each method
(expansion included) divided by that of a plain query with k = 1000 — the best of
``--repeat`` interleaved runs — and, apart, the second pass alone (ranking the expanded
models; what the method costs even with a free first pass and estimation), for the
defaults and for RM3 at Indri's and Anserini's numbers; a second table gives the work
behind it (query terms, postings read and documents returned per query, EM iterations).

With ``--investigate``, RM3 variants that are *not* defaults are also run (document
weights, Anserini's document-frequency cut, number of documents) to explain gaps to
the Lucene figures; they are reported apart and never used to choose anything.

Prints a Markdown table and writes ``results/feedback/report.json`` and
``results/feedback/report.md``.

    python scripts/bench_feedback.py [--investigate] [--repeat 5] [--collections med cacm]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval import __version__
from retrieval.analysis import Analyzer
from retrieval.errors import RetrievalError
from retrieval.benchmarking import cached_index, default_cache_dir
from retrieval.collections import load_collection
from retrieval.estimation import cached_mu_estimate
from retrieval.evaluation import Qrels, Run, evaluate
from retrieval.feedback import default_params, make_feedback
from retrieval.search import Searcher
from retrieval.smoothing import Dirichlet
from retrieval.tuning import cross_validate

COLLECTIONS = ("cranfield", "cisi", "med", "cacm", "nfcorpus")
MEASURES = ("AP", "P@10", "nDCG@10")
FOLDS, SEED, K = 5, 0, 1000

#: Lucene QLD (μ = 1000) + RM3 (10 docs, 10 terms, 0.5), pyserini default analyzer —
#: MAP from ../shared/reference/anchors.md
LUCENE_QLD_RM3 = {"cranfield": 0.2966, "cisi": 0.2271, "med": 0.5836, "cacm": 0.3276,
                  "nfcorpus": 0.1882}

#: small grids for cross-validation; each method's default value of a parameter is put
#: first (so the default configuration is listed first and wins ties)
CV_VALUES = {
    "dirichlet": {"mu": [1000.0, 250.0, 500.0, 2000.0, 4000.0]},
    "mixture": {"fb_alpha": [0.3, 0.5, 0.7, 0.9], "fb_lambda": [0.5, 0.7, 0.9]},
    "divmin": {"fb_alpha": [0.3, 0.5, 0.7, 0.9], "fb_lambda": [0.3, 0.5, 0.7]},
    "rm3": {"fb_docs": [5, 10, 20], "fb_terms": [10, 20, 50],
            "fb_orig_weight": [0.1, 0.3, 0.5, 0.7]},
}


def _default_first(method: str, values: dict) -> dict:
    defaults = {"mu": 1000.0} if method == "dirichlet" else default_params(method)
    return {p: [defaults[p]] + [v for v in vs if v != defaults[p]] for p, vs in values.items()}


GRIDS = {m: _default_first(m, v) for m, v in CV_VALUES.items()}

#: the settings the methods' original implementations use by default (Lemur's model-based
#: feedback; Indri's and Anserini's RM3 numbers, without Anserini's df cut), run beside
#: this engine's defaults — which were chosen on training queries
#: (scripts/choose_feedback_defaults.py) — so the effect of that choice is visible
TEXTBOOK = {
    "mixture": ("Lemur's settings", {"fb_docs": 10, "fb_terms": 50, "fb_alpha": 0.5,
                                     "fb_lambda": 0.5}),
    "divmin": ("Lemur's settings", {"fb_docs": 10, "fb_terms": 50, "fb_alpha": 0.5,
                                    "fb_lambda": 0.5}),
    "rm3": ("Indri/Anserini numbers", {"fb_docs": 10, "fb_terms": 10, "fb_orig_weight": 0.5,
                                       "fb_max_df": 1.0}),
}

INVESTIGATE = {
    "rm3 · doc weights geometric (Indri)": {"fb_doc_weights": "geometric"},
    "rm3 · doc weights uniform": {"fb_doc_weights": "uniform"},
    "rm3 · no df cut (fb_max_df=1)": {"fb_max_df": 1.0},
    "rm3 · smoothed P(w|D), μ=1000": {"fb_mu": 1000.0},
    "rm3 · 10 docs": {"fb_docs": 10},
    "rm3 · 10 terms": {"fb_terms": 10},
    "rm3 · original weight 0.5": {"fb_orig_weight": 0.5},
}


def _product(grid: dict) -> list[dict]:
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def _label(params: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items())


class Bench:
    def __init__(self, collection, index):
        self.collection = collection
        self.index = index
        self.queries = list(collection.queries)
        self.texts = [q.text for q in self.queries]
        self.qrels = Qrels.from_records(collection.qrels)
        self.searchers: dict[float, Searcher] = {}

    def searcher(self, mu: float) -> Searcher:
        if mu not in self.searchers:
            # a long-running searcher, as bench_speed.py's in-process row: the compiled
            # kernels from the first query on (numba installed), not after "auto"'s
            # warm-up, so every timing takes the same path; the results do not depend on it
            self.searchers[mu] = Searcher(self.index, Dirichlet(mu=mu), compiled=True)
        return self.searchers[mu]

    def search(self, mu: float, feedback=None):
        s = self.searcher(mu)
        if feedback is None:
            return s.batch_search_arrays(self.texts, K)
        return feedback.batch_search_arrays(s, self.texts, K)

    def evaluate(self, mu: float, feedback=None) -> dict[str, dict[str, float]]:
        res = self.search(mu, feedback)
        run = Run.from_arrays([self.queries[i].qid for i in res.query_index.tolist()],
                              self.index.docids.many(res.doc_numbers), res.scores)
        ev = evaluate(self.qrels, run, list(MEASURES), complete=True)
        return {m: {q: float(v) for q, v in ev.per_query[m].items()} for m in MEASURES}

    def seconds(self, mu: float, feedback=None) -> float:
        start = time.perf_counter()
        self.search(mu, feedback)
        return time.perf_counter() - start


def cross_validated(bench: Bench, method: str) -> dict:
    """Every grid point evaluated; CV on AP; other measures follow the AP choices."""
    configs = []
    for params in _product(GRIDS[method]):
        if method == "dirichlet":
            values = bench.evaluate(params["mu"])
        else:
            values = bench.evaluate(1000.0, make_feedback(method, **params))
        configs.append((_label(params), values))
    cv = cross_validate({lab: v["AP"] for lab, v in configs}, folds=FOLDS, seed=SEED)
    by_label = dict(configs)
    per_query = {m: {} for m in MEASURES}
    for choice in cv.folds:
        for m in MEASURES:
            for q in choice.test_qids:
                per_query[m][q] = by_label[choice.label][m][q]
    assert per_query["AP"] == cv.per_query
    return {"per_query": per_query, "cv_mean_AP": cv.mean, "best_on_test_AP": cv.best_mean,
            "best_on_test_label": cv.best_label,
            "fold_choices": [c.label for c in cv.folds],
            "grid": {lab: float(np.mean(list(v["AP"].values()))) for lab, v in configs}}


def significance(baseline: dict, rows: dict[str, dict]) -> dict:
    """{row: {measure: (Holm-adjusted p, sign of the difference)}} against the baseline."""
    from retrieval.evaluation.significance import holm, randomization_test
    out = {name: {} for name in rows}
    for m in MEASURES:
        qids = sorted(baseline[m])
        base = np.array([baseline[m][q] for q in qids])
        names = list(rows)
        others = [np.array([rows[name][m][q] for q in qids]) for name in names]
        adjusted = holm([randomization_test(base, other, seed=SEED) for other in others])
        for name, other, p in zip(names, others, adjusted):
            diff = float(other.mean() - base.mean())
            out[name][m] = (float(p), 1 if diff > 0 else -1 if diff < 0 else 0)
    return out


def timing(bench: Bench, feedbacks: dict, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` batch seconds; methods interleaved so load affects all alike.

    Besides each method's whole cost (first pass, estimation, second pass), the second
    pass alone — ranking the already expanded query models (key ``"<method> second
    pass"``): a floor no faster estimation can go below."""
    s = bench.searcher(1000.0)
    expanded = {name: fb.expanded(s, bench.texts) for name, fb in feedbacks.items()}

    def second(batch) -> float:
        start = time.perf_counter()
        s.rank(batch, K)
        return time.perf_counter() - start

    names = ["plain"] + list(feedbacks) + [f"{n} second pass" for n in feedbacks]
    best = {name: float("inf") for name in names}
    bench.seconds(1000.0)  # warm-up (analyzer memo, lookups, page cache)
    for name, fb in feedbacks.items():
        bench.seconds(1000.0, fb)
        second(expanded[name])
    for _ in range(repeat):
        best["plain"] = min(best["plain"], bench.seconds(1000.0))
        for name, fb in feedbacks.items():
            best[name] = min(best[name], bench.seconds(1000.0, fb))
            best[f"{name} second pass"] = min(best[f"{name} second pass"],
                                              second(expanded[name]))
    return best


def work(bench: Bench, feedbacks: dict) -> dict[str, dict[str, float]]:
    """Per query, what plain and expanded queries ask of the second pass: query terms,
    postings read, documents returned (top K); and the mixture model's EM iterations."""
    s = bench.searcher(1000.0)
    n = len(bench.texts)
    ptr = np.asarray(bench.index.arrays["postings_indptr"])
    batches = {"plain": s.prepare(bench.texts)}
    out = {"plain": {}}
    for name, fb in feedbacks.items():
        batches[name] = fb.expanded(s, bench.texts)
        out[name] = {}
        if getattr(fb, "iterations_", None) is not None:
            out[name]["em_iterations"] = float(np.mean(fb.iterations_))
    for name, batch in batches.items():
        res = s.rank(batch, K)
        out[name].update({
            "terms": len(batch.term_ids) / n,
            "postings": float((ptr[batch.term_ids + 1] - ptr[batch.term_ids]).sum()) / n,
            "returned": len(res.doc_numbers) / n})
    return out


def _mean(values: dict) -> float:
    return float(np.mean(list(values.values()))) if values else 0.0


def _cell(row: dict, sig: dict | None, m: str) -> str:
    text = f"{_mean(row[m]):.4f}"
    if sig is not None and m in sig:
        p, sign = sig[m]
        if p < 0.05 and sign:
            text += " ▲*" if sign > 0 else " ▼*"
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--collections", nargs="+", default=list(COLLECTIONS))
    ap.add_argument("--repeat", type=int, default=5, help="timing repetitions (best of)")
    ap.add_argument("--investigate", action="store_true",
                    help="also run non-default RM3 variants (reported apart)")
    ap.add_argument("--output", default=str(REPO / "results" / "feedback"))
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)

    analyzer = Analyzer()
    cache = None if args.no_cache else default_cache_dir()
    defaults = {name: make_feedback(name) for name in ("mixture", "divmin", "rm3")}
    report = {"package_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime()),
              "machine": platform.platform(), "python": platform.python_version(),
              "analyzer": analyzer.config(), "k": K, "folds": FOLDS, "seed": SEED,
              "measures": list(MEASURES), "grids": GRIDS,
              "defaults": {n: f.label() for n, f in defaults.items()},
              "lucene_qld_rm3_map": LUCENE_QLD_RM3, "collections": {}}
    lines = ["| collection | method | MAP | P@10 | nDCG@10 | cost × plain |",
             "|---|---|---|---|---|---|"]
    inv_lines = ["| collection | variant (not a default) | MAP | P@10 | nDCG@10 |",
                 "|---|---|---|---|---|"]
    summary = []
    cost_lines, work_lines = [], []
    # timed: the defaults, and RM3 at Indri's and Anserini's numbers
    timed = {**defaults, "rm3 10/10/0.5": make_feedback("rm3", **TEXTBOOK["rm3"][1])}
    for name in args.collections:
        t0 = time.perf_counter()
        collection = load_collection(name)
        index, _, _ = cached_index(collection, analyzer, cache)
        bench = Bench(collection, index)
        mu_auto = cached_mu_estimate(index).mu
        rows: dict[str, dict] = {}
        rows["Dirichlet μ=1000"] = bench.evaluate(1000.0)
        rows[f"Dirichlet μ auto ({mu_auto:.0f})"] = bench.evaluate(mu_auto)
        for fb_name, fb in defaults.items():
            rows[f"{fb_name} · default"] = bench.evaluate(1000.0, fb)
        for fb_name, (what, params) in TEXTBOOK.items():
            rows[f"{fb_name} · {what}"] = bench.evaluate(1000.0, make_feedback(fb_name,
                                                                               **params))
        cv_info = {}
        for method in ("dirichlet", "mixture", "divmin", "rm3"):
            info = cross_validated(bench, method)
            label = "Dirichlet μ · CV" if method == "dirichlet" else f"{method} · CV"
            rows[label] = info.pop("per_query")
            cv_info[label] = info
        baseline = rows["Dirichlet μ=1000"]
        others = {k: v for k, v in rows.items() if k != "Dirichlet μ=1000"}
        sig = significance(baseline, others)
        times = timing(bench, timed, args.repeat)
        n_q = len(bench.texts)
        cost = {"plain": 1.0, **{k: times[k] / times["plain"] for k in times if k != "plain"}}
        cost_lines.append(f"| {name} | {times['plain'] / n_q * 1e6:.1f} | " + " | ".join(
            f"{times[k] / n_q * 1e6:.1f} ({cost[k]:.2f}×) | "
            f"{times[k + ' second pass'] / n_q * 1e6:.1f} ({cost[k + ' second pass']:.2f}×)"
            for k in timed) + " |")
        per_query_work = work(bench, timed)
        for method, wk in per_query_work.items():
            em = f"{wk['em_iterations']:.1f}" if "em_iterations" in wk else ""
            work_lines.append(f"| {name} | {method} | {wk['terms']:.1f} | "
                              f"{wk['postings']:,.0f} | {wk['returned']:.0f} | {em} |")
        for label, row in rows.items():
            fb_key = label.split(" · ")[0] if label.endswith("· default") else None
            c = f"{cost[fb_key]:.2f}" if fb_key in cost else ("1.00" if label ==
                                                                "Dirichlet μ=1000" else "")
            lines.append(f"| {name} | {label} | " + " | ".join(
                _cell(row, sig.get(label), m) for m in MEASURES) + f" | {c} |")
        best_default = max(("mixture · default", "divmin · default", "rm3 · default"),
                           key=lambda k: _mean(rows[k]["AP"]))
        best_map = _mean(rows[best_default]["AP"])
        summary.append({
            "collection": name, "best_default_feedback": best_default,
            "best_default_map": best_map, "plain_map": _mean(baseline["AP"]),
            "beats_plain": best_map > _mean(baseline["AP"]),
            "lucene_qld_rm3_map": LUCENE_QLD_RM3.get(name),
            "beats_lucene_rm3": (best_map > LUCENE_QLD_RM3[name]
                                 if name in LUCENE_QLD_RM3 else None)})
        investigation = {}
        if args.investigate:
            for label, params in INVESTIGATE.items():
                values = bench.evaluate(1000.0, make_feedback("rm3", **params))
                investigation[label] = {m: _mean(values[m]) for m in MEASURES}
                inv_lines.append(f"| {name} | {label} | " + " | ".join(
                    f"{investigation[label][m]:.4f}" for m in MEASURES) + " |")
        report["collections"][name] = {
            "documents": index.num_docs, "queries": n_q,
            "judged_queries": len(baseline["AP"]), "mu_auto": mu_auto,
            "rows": {label: {"mean": {m: _mean(row[m]) for m in MEASURES},
                             "significance_vs_plain": {m: {"p_holm": p, "sign": s}
                                                       for m, (p, s) in
                                                       sig.get(label, {}).items()},
                             "per_query": row}
                     for label, row in rows.items()},
            "cross_validation": cv_info,
            "seconds_per_query": {k: v / n_q for k, v in times.items()},
            "cost_relative_to_plain": cost,
            "work_per_query": per_query_work,
            "investigation": investigation,
            "wall_seconds": time.perf_counter() - t0,
        }
        print(f"{name}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    md = ["## Feedback and μ estimation on the shared collections", "",
          f"Analyzer {analyzer.config()}; top {K}; trec_eval semantics (judged queries "
          f"without results count 0). Feedback first and second pass: Dirichlet μ=1000. "
          f"Defaults: " + "; ".join(f"{f.label()}" for f in defaults.values()) + ". "
          f"CV: {FOLDS}-fold over queries, seed {SEED}, AP optimised. ▲*/▼*: different "
          f"from Dirichlet μ=1000 at p < 0.05 (paired randomization test, Holm over the "
          f"rows of a collection and measure). cost × plain: batch time per query "
          f"(expansion included) / plain query, best of {args.repeat}.", ""]
    md += lines
    md += ["", "### Goal check (defaults)", "",
           ("| collection | best default feedback | MAP | plain MAP | Lucene QLD+RM3 MAP | "
            "beats plain | beats Lucene |"), "|---|---|---|---|---|---|---|"]
    for s in summary:
        md.append(f"| {s['collection']} | {s['best_default_feedback']} | "
                  f"{s['best_default_map']:.4f} | {s['plain_map']:.4f} | "
                  f"{s['lucene_qld_rm3_map']} | {'yes' if s['beats_plain'] else 'no'} | "
                  f"{'yes' if s['beats_lucene_rm3'] else 'no'} |")
    md += ["", "### Cross-validation: CV AP vs best-on-test AP", "",
           ("| collection | method | CV AP | best-on-test AP | best-on-test config | "
            "fold choices |"), "|---|---|---|---|---|---|"]
    for name, c in report["collections"].items():
        for label, info in c["cross_validation"].items():
            md.append(f"| {name} | {label} | {info['cv_mean_AP']:.4f} | "
                      f"{info['best_on_test_AP']:.4f} | {info['best_on_test_label']} | "
                      f"{'; '.join(info['fold_choices'])} |")
    md += ["", "### Cost per query (µs, batch of all queries, top 1000, best of "
           f"{args.repeat})", "",
           "Each method in full (first pass, estimation, second pass) and its second pass "
           "alone (ranking the expanded models), as multiples of a plain query.", "",
           "| collection | plain | " + " | ".join(f"{k} | {k} second pass" for k in timed)
           + " |", "|---|---:|" + "---:|---:|" * len(timed)]
    md += cost_lines
    md += ["", "### Work per query of the second pass (plain: the query itself)", "",
           "| collection | method | query terms | postings read | documents returned | "
           "EM iterations |", "|---|---|---:|---:|---:|---:|"]
    md += work_lines
    if args.investigate:
        md += ["", "### Investigation: RM3 variants (not defaults, not used for choices)", ""]
        md += inv_lines
    report["goal"] = summary
    text = "\n".join(md)
    print(text)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    (out / "report.md").write_text(text + "\n", encoding="utf-8")
    print(f"\nwrote {out / 'report.json'} and {out / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RetrievalError as exc:  # a missing or malformed collection: one line
        print(f"bench_feedback.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
