"""Benchmarks: index test collections (cached), run every configuration, evaluate.

Decisions:

* **Which queries.** Every query of the collection is run; evaluation averages over the
  judged queries, and a judged query that retrieves nothing counts 0 (trec_eval ``-c``),
  as the peer figures in the project's reference anchors are computed.
* **Index cache.** An index is cached under ``cache_dir`` (by default
  :func:`retrieval.paths.cache_dir`, re-exported here as ``default_cache_dir``) keyed by
  a hash of the documents (ids and text), the analyzer configuration and the index
  format version, so it is rebuilt exactly when one of those changes.
* **Grids.** Several values per parameter make a grid: the Cartesian product, each point
  a :class:`Configuration`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._version import __version__
from .analysis import Analyzer
from .errors import IndexFormatError
from .evaluation import Qrels, Run, evaluate
from .fields import fielded_documents
from .search.fields import FieldSearcher
from .index import FORMAT_VERSION, Index, IndexBuilder
from .lookup import gather_strings
from .paths import cache_dir as default_cache_dir
from .records import ScoredDoc
from .search import Searcher
from .smoothing import MODELS, SmoothingModel, make_model
from .twostage import TwoStageEM

DEFAULT_MEASURES = ("AP", "P@10", "nDCG@10", "R-prec")
PR_MEASURES = tuple(f"iP@{x / 10:.1f}" for x in range(11))


@dataclass(frozen=True)
class Configuration:
    """One retrieval configuration: a smoothing model (and, later, a feedback method)."""
    model: SmoothingModel
    feedback: object | None = None
    #: FieldWeights: rank by the field mixture (retrieval.search.fields) instead
    field_weights: object | None = None

    @property
    def label(self) -> str:
        text = self.model.label()
        if self.feedback is not None:
            fb = self.feedback
            defaults = type(fb)().get_params()
            changed = {k: v for k, v in fb.get_params().items() if defaults.get(k) != v}
            args = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                            for k, v in changed.items())
            text += f"+{fb.name}" + (f"({args})" if args else "")
        if self.field_weights is not None:
            text += f"+fields({self.field_weights.label()})"
        return text

    def params(self) -> dict:
        out = {"model": self.model.name, **{k: v.label() if hasattr(v, "label") else v
                                            for k, v in self.model.get_params().items()}}
        if self.feedback is not None:
            out["feedback"] = self.feedback.name
            out.update({f"fb_{k}" if not k.startswith("fb_") else k: v
                        for k, v in self.feedback.get_params().items()})
        if self.field_weights is not None:
            out.update({f"field_{k}": v for k, v in self.field_weights._asdict().items()})
        return out


def model_grid(model: str, values: dict[str, Sequence[float] | None]) -> list[SmoothingModel]:
    """Every combination of the given parameter values (unset parameters: defaults)."""
    cls = MODELS.get(model)
    if cls is None:
        return [make_model(model)]  # raises the one-line error
    names = [p for p in cls.params if values.get(p)]
    combos = itertools.product(*(values[p] for p in names)) if names else [()]
    return [make_model(model, **dict(zip(names, combo))) for combo in combos]


def collection_key(collection, analyzer: Analyzer) -> str:
    """Hash of what determines the index: documents, analyzer, format version."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([analyzer.config(), FORMAT_VERSION], sort_keys=True).encode())
    for doc in collection.documents:
        h.update(doc.docid.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
        h.update(doc.text.encode("utf-8", "surrogatepass"))
        h.update(b"\x01")
    return h.hexdigest()


def cached_index(collection, analyzer: Analyzer, cache_dir: Path | None,
                 on_document: Callable[[int], None] | None = None) -> tuple[Index, float, bool]:
    """The collection's index, from the cache when valid; returns (index, seconds, cached)."""
    start = time.perf_counter()
    path = None
    if cache_dir is not None:
        fielded = "-fields" if getattr(collection, "titles", None) else ""
        path = Path(cache_dir) / "indexes" / \
            f"{collection.name}-{collection_key(collection, analyzer)}{fielded}"
        if path.exists():
            try:
                return Index.open(path), time.perf_counter() - start, True
            except IndexFormatError:
                pass  # damaged or stale: rebuild below
    builder = IndexBuilder(analyzer=analyzer, store_text=False)
    # titled collections also get the title and name fields (the body is the same)
    builder.add_documents(fielded_documents(collection) if getattr(collection, "titles", None)
                          else collection.documents, on_document=on_document)
    index = builder.finish(sources=[f"collection:{collection.name}"])
    if path is not None:
        index.save(path, overwrite=True)
        index = Index.open(path)
    return index, time.perf_counter() - start, False


@dataclass
class ConfigResult:
    configuration: Configuration
    run: Run
    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]
    search_seconds: float
    eval_seconds: float


@dataclass
class CollectionResult:
    name: str
    description: str
    stats: dict
    index_seconds: float
    index_cached: bool
    results: list[ConfigResult] = field(default_factory=list)


def run_configuration(index: Index, queries, configuration: Configuration, k: int) -> tuple[Run, float]:
    """A run of ``queries`` under ``configuration``; returns (run, seconds)."""
    start = time.perf_counter()
    if configuration.field_weights is not None:
        return _field_run(index, queries, configuration, k), time.perf_counter() - start
    texts = [q.text for q in queries]
    if isinstance(configuration.model, TwoStageEM):  # a model per query (λ by EM)
        res = configuration.model.batch_search_arrays(index, texts, k,
                                                      feedback=configuration.feedback)
    elif configuration.feedback is not None:
        res = configuration.feedback.batch_search_arrays(
            Searcher(index, configuration.model.resolved(index)), texts, k)
    else:
        res = Searcher(index, configuration.model.resolved(index)).batch_search_arrays(
            texts, k)
    qids = [queries[i].qid for i in res.query_index.tolist()]
    docids = gather_strings(index.arrays["docid_offsets"], index.arrays["docid_bytes"],
                            res.doc_numbers)
    run = Run.from_arrays(qids, docids, res.scores, name=configuration.label)
    return run, time.perf_counter() - start


def _field_run(index: Index, queries, configuration: Configuration, k: int) -> Run:
    searcher = FieldSearcher(index, configuration.model, configuration.field_weights)
    qids, docs, scores = [], [], []
    for q in queries:
        d, s = searcher.rank(q.text, k)
        qids += [q.qid] * len(d)
        docs.append(d)
        scores.append(s)
    numbers = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
    docids = gather_strings(index.arrays["docid_offsets"], index.arrays["docid_bytes"],
                            numbers)
    flat = np.concatenate(scores) if scores else np.zeros(0)
    return Run.from_arrays(qids, docids, flat, name=configuration.label)


def run_records(run: Run) -> list[ScoredDoc]:
    """The run as TREC records ranked by score (ties by docid ascending, as searched)."""
    qids, docids, scores = run.query_ids, run.docids, run.scores
    order = np.lexsort((docids, -scores, qids))
    qids, docids, scores = qids[order], docids[order], scores[order]
    first = np.searchsorted(qids, qids, side="left")
    ranks = (np.arange(len(qids)) - first + 1).tolist()
    return [ScoredDoc(q, d, s, r) for q, d, s, r in
            zip(qids.tolist(), docids.tolist(), scores.tolist(), ranks)]


def evaluate_configuration(collection, qrels: Qrels, index: Index,
                           configuration: Configuration, k: int,
                           measures: Sequence[str]) -> ConfigResult:
    run, search_seconds = run_configuration(index, collection.queries, configuration, k)
    start = time.perf_counter()
    ev = evaluate(qrels, run, list(measures), complete=True)
    eval_seconds = time.perf_counter() - start
    mean = {m: float(ev.mean[m]) for m in measures}
    per_query = {m: {q: float(v) for q, v in ev.per_query[m].items()} for m in measures}
    return ConfigResult(configuration, run, mean, per_query, search_seconds, eval_seconds)


def benchmark_collection(collection, configurations: Iterable[Configuration], *,
                         analyzer: Analyzer, k: int = 1000,
                         measures: Sequence[str] = DEFAULT_MEASURES,
                         cache_dir: Path | None = None,
                         on_config: Callable[[ConfigResult], None] | None = None
                         ) -> CollectionResult:
    index, seconds, cached = cached_index(collection, analyzer, cache_dir)
    qrels = Qrels.from_records(collection.qrels)
    out = CollectionResult(collection.name, collection.description, collection.stats(),
                           seconds, cached)
    for config in configurations:
        result = evaluate_configuration(collection, qrels, index, config, k, measures)
        out.results.append(result)
        if on_config is not None:
            on_config(result)
    return out


def report_dict(results: list[CollectionResult], *, analyzer: Analyzer, k: int,
                measures: Sequence[str], extra: dict | None = None) -> dict:
    """Everything needed to reproduce and compare: settings, timings, means, per query."""
    return {
        "package_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "analyzer": analyzer.config(),
        "k": k,
        "measures": list(measures),
        "evaluation": "trec_eval semantics; judged queries missing from a run count 0 (-c)",
        **(extra or {}),
        "collections": [
            {
                "name": r.name, "description": r.description, "stats": r.stats,
                "index_seconds": r.index_seconds, "index_cached": r.index_cached,
                "configurations": [
                    {"label": c.configuration.label, "params": c.configuration.params(),
                     "mean": c.mean, "search_seconds": c.search_seconds,
                     "eval_seconds": c.eval_seconds,
                     "queries_per_second": (len(c.run.qids) / c.search_seconds
                                            if c.search_seconds > 0 else None),
                     "per_query": c.per_query}
                    for c in r.results
                ],
            }
            for r in results
        ],
    }
