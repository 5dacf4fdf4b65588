"""pandas DataFrames in and out, in PyTerrier's column names (the optional extra ``pandas``).

* :func:`search_frame` - a searcher (and optionally a feedback method) over a DataFrame of
  topics ``qid, query`` -> a ranking ``qid, query, docno, score, rank``.
* :func:`run_frame` / :func:`run_from_frame` - a :class:`~retrieval.evaluation.Run` (or
  a TREC run file) as a DataFrame ``qid, docno, score, rank`` and back.
* :func:`qrels_frame` / :func:`qrels_from_frame` - judgments as ``qid, docno, label``.
* :func:`read_run_frame`, :func:`read_qrels_frame`, :func:`write_run_frame`,
  :func:`write_qrels_frame` - TREC files.
* :func:`result_docids` - the docid strings of a ``batch_search_arrays`` result (no
  pandas needed).

Ranks are 0-based, as in PyTerrier (``rank`` 0 is the best document); the TREC files
written by :func:`write_run_frame` carry 1-based ranks as TREC expects. Ids are strings.
pandas is imported only when a function that needs it is called.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .errors import ParameterError

__all__ = ["import_pandas", "qrels_frame", "qrels_from_frame", "read_qrels_frame",
           "read_run_frame", "result_docids", "run_frame", "run_from_frame",
           "search_frame", "write_qrels_frame", "write_run_frame"]

#: the columns of a ranking, as PyTerrier names them
RESULT_COLUMNS = ("qid", "docno", "score", "rank")


def import_pandas():
    """The ``pandas`` module, or a one-line error naming the extra to install."""
    try:
        import pandas
    except ImportError:
        raise ParameterError('DataFrames need pandas: pip install "retrieval[pandas]"') \
            from None
    return pandas


def result_docids(source, result) -> np.ndarray:
    """The docid string of every row of ``result`` (a ``BatchResult`` of
    ``Searcher.batch_search_arrays`` or ``Feedback.batch_search_arrays``, or an array
    of document numbers), decoded in one pass. ``source``: the Searcher or Index."""
    index = getattr(source, "index", source)
    docids = getattr(index, "docids", None)
    if docids is None or not hasattr(docids, "many"):
        raise ParameterError(f"source must be a Searcher or an Index, got "
                             f"{type(source).__name__}")
    numbers = getattr(result, "doc_numbers", result)
    return np.asarray(docids.many(np.asarray(numbers, dtype=np.int64)), dtype=object)


def _ranks(query_index: np.ndarray) -> np.ndarray:
    """0-based rank of each row of a (query, rank)-sorted result."""
    starts = np.searchsorted(query_index, query_index, side="left")
    return np.arange(query_index.size, dtype=np.int64) - starts


def _check_topics(topics):
    pd = import_pandas()
    if not isinstance(topics, pd.DataFrame):
        raise ParameterError(f"topics must be a pandas DataFrame with columns qid, query; "
                             f"got {type(topics).__name__}")
    missing = [c for c in ("qid", "query") if c not in topics.columns]
    if missing:
        raise ParameterError(f"topics DataFrame lacks the column(s) {', '.join(missing)}; "
                             f"it needs qid and query (has {', '.join(map(str, topics.columns))})")
    return pd


def search_frame(searcher, topics, k: int = 1000, *, feedback=None, jobs: int = 1,
                 queries: Sequence | None = None):
    """Rank the documents of ``searcher`` for every topic of ``topics``.

    ``topics``: a DataFrame with columns ``qid`` and ``query`` (other columns are carried
    over to every result row of their topic, as PyTerrier does). Returns a DataFrame
    ``qid, query, docno, score, rank`` (plus the carried columns), sorted by topic order
    then rank; ``rank`` is 0-based, ``score`` the KL/query-likelihood score in nats.
    A topic that retrieves nothing has no rows. ``feedback``: a
    :class:`~retrieval.feedback.Feedback` applied before ranking (e.g. RM3).
    ``queries``: what to rank for each topic row instead of its ``query`` text (text or
    :class:`~retrieval.search.QueryModel`; the ``query`` column is still reported).
    """
    _check_topics(topics)
    if queries is None:
        queries = [str(q) for q in topics["query"].tolist()]
    elif len(queries) != len(topics):
        raise ParameterError(f"queries has {len(queries)} items for {len(topics)} topics")
    if feedback is not None:
        res = feedback.batch_search_arrays(searcher, queries, k, jobs=jobs)
    else:
        res = searcher.batch_search_arrays(queries, k, jobs=jobs)
    rows = res.query_index
    out = topics.iloc[rows].reset_index(drop=True)
    out["qid"] = out["qid"].astype(str)
    out["docno"] = result_docids(searcher, res)
    out["score"] = np.asarray(res.scores, dtype=np.float64)
    out["rank"] = _ranks(rows)
    first = ["qid", "query", "docno", "score", "rank"]
    return out[first + [c for c in out.columns if c not in first]]


def run_frame(run):
    """A :class:`~retrieval.evaluation.Run` as ``qid, docno, score, rank`` (rank 0-based by
    score descending, ties by docno descending - the order trec_eval evaluates)."""
    pd = import_pandas()
    frame = pd.DataFrame({"qid": np.asarray(run.query_ids, dtype=object),
                          "docno": np.asarray(run.docids, dtype=object),
                          "score": np.asarray(run.scores, dtype=np.float64)})
    frame = frame.sort_values(["qid", "score", "docno"], ascending=[True, False, False],
                              kind="stable").reset_index(drop=True)
    frame["rank"] = frame.groupby("qid", sort=False).cumcount().astype(np.int64)
    return frame


def run_from_frame(frame, *, name: str | None = None):
    """A :class:`~retrieval.evaluation.Run` from a DataFrame with ``qid, docno, score``."""
    from .evaluation import Run
    _require(frame, ("qid", "docno", "score"), "run")
    return Run.from_arrays(frame["qid"].astype(str).to_numpy(),
                           frame["docno"].astype(str).to_numpy(),
                           frame["score"].to_numpy(dtype=np.float64), name=name)


def qrels_frame(qrels):
    """:class:`~retrieval.evaluation.Qrels` (or Qrel records) as ``qid, docno, label``."""
    pd = import_pandas()
    if hasattr(qrels, "to_dict") and not isinstance(qrels, (list, tuple)):
        rows = [(q, d, r) for q, docs in qrels.to_dict().items() for d, r in docs.items()]
    else:
        rows = [tuple(r) for r in qrels]
    return pd.DataFrame(rows, columns=["qid", "docno", "label"]).astype(
        {"qid": str, "docno": str, "label": np.int64})


def qrels_from_frame(frame):
    """:class:`~retrieval.evaluation.Qrels` from ``qid, docno, label`` (PyTerrier) or
    ``query_id, doc_id, relevance`` (ir_datasets) columns. A row repeated identically
    counts once; the same (qid, docno) with two labels is an error."""
    from .evaluation import Qrels
    if "label" not in frame.columns and {"query_id", "doc_id", "relevance"} <= set(frame.columns):
        frame = frame.rename(columns={"query_id": "qid", "doc_id": "docno",
                                      "relevance": "label"})
    _require(frame, ("qid", "docno", "label"), "qrels")
    # an identical row repeated counts once (as trec_eval); differing ones stay an error
    frame = frame.drop_duplicates(["qid", "docno", "label"])
    return Qrels.from_arrays(frame["qid"].astype(str).to_numpy(),
                             frame["docno"].astype(str).to_numpy(),
                             frame["label"].to_numpy())


def read_run_frame(path: str | os.PathLike):
    """A TREC run file as ``qid, docno, score, rank`` (see :func:`run_frame`)."""
    from .evaluation import Run
    return run_frame(Run.read(path))


def read_qrels_frame(path: str | os.PathLike):
    """A TREC qrels file as ``qid, docno, label``."""
    from .trec import read_qrels
    return qrels_frame(read_qrels(path))


def write_run_frame(frame, path: str | os.PathLike, tag: str = "retrieval") -> int:
    """Write ``qid, docno, score`` rows as a TREC run (ranked by score per query, ranks
    1-based); returns the number of lines."""
    from .records import ScoredDoc
    from .trec import write_run
    ranked = run_frame(run_from_frame(frame))
    records = (ScoredDoc(q, d, s, r + 1) for q, d, s, r in
               zip(ranked["qid"].tolist(), ranked["docno"].tolist(),
                   ranked["score"].tolist(), ranked["rank"].tolist()))
    return write_run(path, records, tag=tag)


def write_qrels_frame(frame, path: str | os.PathLike) -> int:
    """Write ``qid, docno, label`` rows as a TREC qrels file (``qid 0 docno label``,
    sorted by query then document); returns the number of lines."""
    qrels = qrels_from_frame(frame)  # validates: ids, integer labels, no conflicting rows
    lines = [f"{q} 0 {d} {r}\n" for q, docs in qrels.to_dict().items()
             for d, r in sorted(docs.items())]
    for q, d in ((q, d) for q, docs in qrels.to_dict().items() for d in docs):
        if any(ch.isspace() for ch in q + d):
            raise ParameterError(f"query {q!r} / document {d!r}: ids with white space "
                                 f"cannot be written as TREC qrels")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(lines)
    return len(lines)


def _require(frame, columns: Sequence[str], what: str) -> None:
    pd = import_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ParameterError(f"the {what} DataFrame lacks the column(s) {', '.join(missing)}; "
                             f"it needs {', '.join(columns)}")
