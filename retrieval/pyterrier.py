"""PyTerrier transformers (the optional extra ``pyterrier``): the engine in a ``>>`` pipeline.

>>> import pyterrier as pt                                   # doctest: +SKIP
>>> from retrieval.pyterrier import Retriever, QueryExpansion
>>> bm = Retriever(searcher, k=1000)                         # doctest: +SKIP
>>> rm3 = QueryExpansion(searcher, make_feedback("rm3"))     # doctest: +SKIP
>>> pt.Experiment([bm, bm >> rm3 >> bm], topics, qrels, eval_metrics=["map"])  # +SKIP

Only PyTerrier's Python core is used (no Java). Contracts, as PyTerrier's own:

* :class:`Retriever` takes a DataFrame with ``qid, query`` (one row per query; a ranking
  with several rows per query is reduced to its queries) and returns
  ``qid, query, docno, score, rank`` (rank 0-based; other query columns, such as
  ``query_0``, carried over). A ``query`` made only of ``term^weight`` tokens is a
  weighted query model over index terms (what :class:`QueryExpansion` writes); any
  other text is analysed with the index's analyzer.
* :class:`QueryExpansion` rewrites each query into its feedback model, written as
  ``term^weight`` tokens (weights as exact float text, so the second retrieval scores
  bit-identically to ``feedback.batch_search_arrays``); the original text is kept in
  ``query_0``, as PyTerrier's rewriters do. Its feedback documents are the searcher's
  own first pass for the original query, which equals the incoming ranking when the
  upstream retriever uses the same searcher (``Retriever(s) >> QueryExpansion(s, fb)``);
  the incoming rows supply the queries.
"""

from __future__ import annotations

import re

try:
    import pyterrier as pt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('retrieval.pyterrier needs PyTerrier: pip install '
                      '"retrieval[pyterrier]"') from exc

from .errors import ParameterError
from .frames import search_frame

__all__ = ["QueryExpansion", "Retriever", "format_weighted_query", "parse_weighted_query"]

_WEIGHTED = re.compile(r"(\S+)\^([-+0-9.eE]+|inf)")


def format_weighted_query(model) -> str:
    """A :class:`~retrieval.search.QueryModel` as ``term^weight ...`` (exact floats)."""
    return " ".join(f"{t}^{w!r}" for t, w in zip(model.terms, model.weights))


def parse_weighted_query(text: str):
    """The QueryModel of a ``term^weight ...`` string, or None when ``text`` is not one."""
    from .search import QueryModel
    tokens = text.split()
    if not tokens:
        return None
    weights: dict[str, float] = {}
    for token in tokens:
        match = _WEIGHTED.fullmatch(token)
        if match is None:
            return None
        try:
            weights[match.group(1)] = weights.get(match.group(1), 0.0) + float(match.group(2))
        except ValueError:
            return None
    return QueryModel.from_weights(weights)


def _queries_of(frame):
    if "qid" not in frame.columns or "query" not in frame.columns:
        raise ParameterError(f"the input needs the columns qid and query (has "
                             f"{', '.join(map(str, frame.columns))})")
    drop = [c for c in ("docno", "docid", "score", "rank") if c in frame.columns]
    return frame.drop(columns=drop).drop_duplicates("qid", keep="first") \
        .reset_index(drop=True)


class Retriever(pt.Transformer):
    """Rank a searcher's documents for each query (see the module doc)."""

    def __init__(self, searcher, k: int = 1000, *, feedback=None, jobs: int = 1):
        self.searcher = searcher
        self.k = k
        self.feedback = feedback
        self.jobs = jobs

    def transform(self, topics):
        topics = _queries_of(topics)
        texts = topics["query"].astype(str).tolist()
        models = [parse_weighted_query(t) for t in texts]
        queries = [m if m is not None else t for m, t in zip(models, texts)]
        return search_frame(self.searcher, topics, self.k, feedback=self.feedback,
                            jobs=self.jobs, queries=queries)

    def __repr__(self) -> str:
        return f"Retriever({self.searcher.model_!r}, k={self.k})"


class QueryExpansion(pt.Transformer):
    """Rewrite each query into its feedback model (see the module doc)."""

    def __init__(self, searcher, feedback):
        self.searcher = searcher
        self.feedback = feedback

    def transform(self, frame):
        topics = _queries_of(frame)
        original = topics["query_0"] if "query_0" in topics.columns else topics["query"]
        texts = original.astype(str).tolist()
        models = self.feedback.expand(self.searcher, texts)
        out = topics.copy()
        out["query_0"] = texts
        out["query"] = [format_weighted_query(m) for m in models]
        return out

    def __repr__(self) -> str:
        return f"QueryExpansion({self.feedback!r})"
