"""Expected figures (scripts/expected/figures.json) recomputed within their tolerance."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from retrieval import Analyzer, make_model
from retrieval.benchmarking import Configuration, benchmark_collection
from retrieval.collections import load_collection
from retrieval.feedback import make_feedback
from retrieval.paths import REPO_ROOT

FIGURES = json.loads((REPO_ROOT / "scripts" / "expected" / "figures.json").read_text())
GROUPS = defaultdict(list)
for entry in FIGURES["entries"]:
    a = entry["analyzer"]
    GROUPS[(entry["collection"], a["stopwords"], a["stemmer"], entry["k"])].append(entry)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(GROUPS), ids=lambda k: "-".join(map(str, k)))
def test_expected_figures(key, request):
    name, stop, stem, k = key
    if name != "sample":
        request.getfixturevalue("collections_dir")  # skips when the collections are absent
    entries = GROUPS[key]
    measures = sorted({m for e in entries for m in e["expected"]})
    configs = [Configuration(make_model(e["model"], **e["params"]),
                             make_feedback(e["feedback"]["method"], **e["feedback"]["params"])
                             if "feedback" in e else None) for e in entries]
    res = benchmark_collection(load_collection(name), configs, analyzer=Analyzer(stop, stem),
                               k=k, measures=measures)
    for entry, got in zip(entries, res.results):
        for m, want in entry["expected"].items():
            assert got.mean[m] == pytest.approx(want, abs=FIGURES["tolerance"]), \
                (entry["model"], entry["params"], entry.get("feedback"), m)
