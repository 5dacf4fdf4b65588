"""Write the regression file of expected figures: scripts/expected/figures.json.

    python scripts/make_expected.py            # regenerate after an intended change

Each entry: collection, analyzer, model and parameters, k, the feedback method and its
parameters if any (each method at its defaults, written out), and the means of AP, P@10,
nDCG@10 and R-prec (trec_eval semantics, judged queries missing from a run count 0).
tests/test_regression.py recomputes every entry and requires agreement within 1e-4, so
any change that moves a ranking or an evaluation number is seen. Review the diff of the
JSON before committing a regenerated file.
"""

from __future__ import annotations

import json
from pathlib import Path

from retrieval import Analyzer, make_model
from retrieval.benchmarking import Configuration, benchmark_collection
from retrieval.collections import load_collection
from retrieval.feedback import make_feedback

OUT = Path(__file__).resolve().parent / "expected" / "figures.json"
MEASURES = ["AP", "P@10", "nDCG@10", "R-prec"]
COLLECTIONS = ["sample", "cranfield", "cisi", "med", "cacm", "nfcorpus"]
SETTINGS = [
    ("dirichlet", {"mu": 1000}),
    ("dirichlet", {"mu": 2000}),
    ("jm", {"lam": 0.7}),
    ("ad", {"delta": 0.7}),
    ("two-stage", {"mu": 1000, "lam": 0.5}),
    ("spud", {"omega": 0.8}),
    ("dir+", {"mu": 1000, "delta": 0.05}),
]
ANALYZERS = [("smart", "snowball"), ("lucene", "porter")]
#: feedback at its defaults (written out, so a change of default shows as a diff here),
#: Dirichlet μ = 1000 first and second pass, default analyzer only
FEEDBACK = ["mixture", "divmin", "rm3"]


def main() -> None:
    entries = []
    for name in COLLECTIONS:
        coll = load_collection(name)
        for stop, stem in ANALYZERS:
            configs = [Configuration(make_model(m, **p)) for m, p in SETTINGS]
            res = benchmark_collection(coll, configs, analyzer=Analyzer(stop, stem),
                                       k=1000, measures=MEASURES)
            for (model, params), r in zip(SETTINGS, res.results):
                entries.append({"collection": name,
                                "analyzer": {"stopwords": stop, "stemmer": stem},
                                "model": model, "params": params, "k": 1000,
                                "expected": {m: round(r.mean[m], 6) for m in MEASURES}})
        feedbacks = [make_feedback(name) for name in FEEDBACK]
        configs = [Configuration(make_model("dirichlet", mu=1000), fb) for fb in feedbacks]
        res = benchmark_collection(coll, configs, analyzer=Analyzer(), k=1000,
                                   measures=MEASURES)
        default = Analyzer().config()
        for fb, r in zip(feedbacks, res.results):
            entries.append({"collection": name,
                            "analyzer": {"stopwords": default["stopwords"],
                                         "stemmer": default["stemmer"]},
                            "model": "dirichlet", "params": {"mu": 1000}, "k": 1000,
                            "feedback": {"method": fb.name, "params": fb.get_params()},
                            "expected": {m: round(r.mean[m], 6) for m in MEASURES}})
    OUT.write_text(json.dumps({"tolerance": 1e-4, "entries": entries}, indent=1) + "\n")
    print(f"wrote {len(entries)} entries to {OUT}")


if __name__ == "__main__":
    main()
