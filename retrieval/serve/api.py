"""The JSON API's requests and answers, independent of the web framework.

Every endpoint takes a flat mapping of parameters (a GET query string or a POST JSON
object: the same names either way) and returns a JSON-ready dict, or raises
:class:`ApiError` with the HTTP status and a one-line message that says what to change.
Status codes: 400 a bad or unknown parameter; 404 an unknown index or document; 413 an
oversized request (query text, batch or body over its cap, see :class:`Limits`).

Snippets and document views report *match offsets*: ``[start, end)`` pairs of Unicode
code-point offsets into the returned text (Python string indices; in JavaScript use
``Array.from(text)``), one per token whose index term is a query term. The snippet is
the window of the document densest in query terms (:mod:`.highlight`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import RetrievalError
from ..estimation import cached_mu_estimate
from ..feedback import DEFAULT_FEEDBACK, FEEDBACK, make_feedback
from ..results import docid_table
from ..search import CANDIDATE_RULES, UNKNOWN_TERM_RULES
from ..smoothing import MODELS, make_model, model_name_for
from .generations import Snapshot
from .highlight import snippet, term_matches

#: characters of a document's text returned by the document endpoint; longer texts are
#: cut there and flagged ``truncated`` (a page cannot usefully show more)
MAX_DOCUMENT_CHARS = 1_000_000
#: snippet length in characters (visible text), as on a results page
SNIPPET_CHARS = 240
#: longest first line taken as a document's title
TITLE_CHARS = 120

MODEL_PARAMS = tuple(sorted({p for cls in MODELS.values() for p in cls.params}))
FEEDBACK_PARAMS = tuple(sorted({p for cls in FEEDBACK.values() for p in cls.params}))
_COMMON = ("k", "offset", "model", "unknown_terms", "candidates", "feedback") \
    + MODEL_PARAMS + FEEDBACK_PARAMS
SEARCH_PARAMS = ("q", "snippets") + _COMMON
BATCH_PARAMS = ("queries", "snippets") + _COMMON
EXPLAIN_PARAMS = ("q", "docid") + _COMMON
DOCUMENT_PARAMS = ("docid", "q", "model", "unknown_terms")


class ApiError(Exception):
    """An error answered as ``{"error": {"status": ..., "message": ...}}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Caps on one request (each has a ``retrieval serve`` flag).

    ``max_query_chars``: characters of one query's text (413 above);
    ``max_k``: deepest rank a request may ask for, ``offset + k`` (400 above: k is a
    parameter); ``max_batch``: queries in one batch request (413);
    ``max_body_bytes``: bytes of a request body (413).
    """
    max_query_chars: int = 1_000
    max_k: int = 1_000
    max_batch: int = 1_000
    max_body_bytes: int = 1 << 20

    def as_dict(self) -> dict:
        return {"max_query_chars": self.max_query_chars, "max_k": self.max_k,
                "max_batch": self.max_batch, "max_body_bytes": self.max_body_bytes}


# -- parameters ---------------------------------------------------------------------------

def check_names(params: Mapping, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown parameter {unknown[0]!r}; this endpoint takes "
                            f"{', '.join(allowed)}")


def _number(name: str, value, *, integer: bool):
    if isinstance(value, bool):
        raise ApiError(400, f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                kind = "a whole number" if integer else "a number"
                raise ApiError(400, f"{name} must be {kind}, got {value!r}") from None
    if not isinstance(value, (int, float)) or (isinstance(value, float)
                                               and not math.isfinite(value)):
        raise ApiError(400, f"{name} must be a finite number, got {value!r}")
    if integer:
        if value != int(value):
            raise ApiError(400, f"{name} must be a whole number, got {value!r}")
        return int(value)
    return value


def get_int(params: Mapping, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    number = _number(name, value, integer=True)
    if not low <= number <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {number}")
    return number


def get_bool(params: Mapping, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ApiError(400, f"{name} must be true or false, got {value!r}")


def get_choice(params: Mapping, name: str, default: str, choices) -> str:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def query_text(params: Mapping, limits: Limits, name: str = "q") -> str:
    value = params.get(name)
    if value is None:
        raise ApiError(400, f"missing parameter {name!r}: the query text")
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be text, got {type(value).__name__}")
    if len(value) > limits.max_query_chars:
        raise ApiError(413, f"the query has {len(value):,} characters, more than the "
                            f"server's cap of {limits.max_query_chars:,} "
                            f"(retrieval serve --max-query-chars)")
    if not value.strip():
        raise ApiError(400, f"{name} is empty; give query words")
    return value


def depth(params: Mapping, limits: Limits) -> tuple[int, int]:
    """(k, offset), with offset + k within the cap."""
    k = get_int(params, "k", 10, 1, limits.max_k)
    offset = get_int(params, "offset", 0, 0, limits.max_k)
    if offset + k > limits.max_k:
        raise ApiError(400, f"offset + k = {offset + k} is deeper than the server's cap of "
                            f"{limits.max_k} (retrieval serve --max-k)")
    return k, offset


class Ranking:
    """The searcher and feedback method a request's parameters select."""

    def __init__(self, snap: Snapshot, params: Mapping):
        # the engine's defaults (as `retrieval search`): the default model unless a
        # parameter it does not take is given without a model (then Dirichlet)
        given = [p for p in MODEL_PARAMS if params.get(p) not in (None, "")]
        name = get_choice(params, "model", model_name_for(None, given), tuple(MODELS))
        cls = MODELS[name]
        values = {}
        for p in MODEL_PARAMS:
            raw = params.get(p)
            if raw is None or raw == "":
                continue
            if p not in cls.params:
                raise ApiError(400, f"{p} does not apply to model {name}; it takes "
                                    f"{' and '.join(cls.params)}")
            if p == "mu" and isinstance(raw, str) and raw.strip().lower() == "auto":
                if snap.mu_estimate is None:
                    snap.mu_estimate = cached_mu_estimate(snap.index, store=False).mu
                values[p] = snap.mu_estimate
            else:
                values[p] = _number(p, raw, integer=False)
        fb_name = get_choice(params, "feedback", DEFAULT_FEEDBACK, tuple(FEEDBACK))
        fb_cls = FEEDBACK[fb_name]
        fb_values = {}
        for p in FEEDBACK_PARAMS:
            raw = params.get(p)
            if raw is None or raw == "":
                continue
            if p not in fb_cls.params:
                takes = ", ".join(fb_cls.params) or "no parameters"
                raise ApiError(400, f"{p} does not apply to feedback {fb_name}; it takes "
                                    f"{takes}")
            fb_values[p] = raw if p == "fb_doc_weights" else \
                _number(p, raw, integer=p in ("fb_docs", "fb_terms", "fb_iterations"))
        unknown_terms = get_choice(params, "unknown_terms", "drop", UNKNOWN_TERM_RULES)
        candidates = get_choice(params, "candidates", "matching", CANDIDATE_RULES)
        try:
            model = make_model(name, index=snap.index, **values)
            self.feedback = make_feedback(fb_name, **fb_values)
        except RetrievalError as exc:
            raise ApiError(400, str(exc)) from None
        self.model = model
        self.searcher = snap.searcher(model, unknown_terms=unknown_terms,
                                      candidates=candidates)

    def describe(self) -> dict:
        return {"model": self.model.label(), "feedback": self.feedback.label()}

    def rank(self, queries: list[str], depth_: int) -> list[list[tuple]]:
        """The top ``depth_`` of each query: [(rank, doc number, docid, score)]."""
        if self.feedback.name == "none":
            res = self.searcher.batch_search_arrays(queries, k=depth_)
        else:   # the expanded models stay term ids (equal to expand() + batch search)
            res = self.feedback.batch_search_arrays(self.searcher, queries, depth_)
        docs = res.doc_numbers.tolist()
        # the index's decoded docid table (made once per generation, see Snapshot.warm):
        # one gather instead of a memory-map slice per result
        ids = docid_table(self.searcher.index)[res.doc_numbers].tolist()
        scores = res.scores.tolist()
        bounds = np.searchsorted(res.query_index, np.arange(len(queries) + 1)).tolist()
        return [[(i - bounds[j] + 1, docs[i], ids[i], scores[i])
                 for i in range(bounds[j], bounds[j + 1])] for j in range(len(queries))]


# -- text with matches --------------------------------------------------------------------

def title_of(text: str) -> str | None:
    """A document's title: its first non-blank line when that line is short
    (≤ ``TITLE_CHARS``) and more text follows; else None (the page shows the docid)."""
    head = text[:TITLE_CHARS * 4].lstrip()
    line, newline, rest = head.partition("\n")
    line = line.strip()
    if newline and line and len(line) <= TITLE_CHARS and rest.strip():
        return line
    return None


# -- endpoints ----------------------------------------------------------------------------

def _result_rows(snap: Snapshot, hits: list, terms, snippets: bool) -> list[dict]:
    """Rows of ``hits`` = [(rank, doc number, docid, score)]."""
    index = snap.index
    rows = []
    for rank, doc, docid, score in hits:
        row = {"rank": rank, "docid": docid, "score": score}
        if snippets:
            text = index.text(doc)
            row["title"] = None if text is None else title_of(text)
            row["snippet"] = None if text is None else \
                snippet(text, terms, index.analyzer, max_chars=SNIPPET_CHARS)
        rows.append(row)
    return rows


class SearchRequest(NamedTuple):
    """One validated search request: what :meth:`Ranking.rank` needs (``depth``: one more
    than the page's last rank, to tell whether there is a next page) and how to answer."""
    snap: Snapshot
    ranking: Ranking
    text: str
    k: int
    offset: int
    snippets: bool

    @property
    def depth(self) -> int:
        return self.offset + self.k + 1

    def group_key(self) -> tuple:
        """Requests with equal keys can be ranked in one batch (same generation,
        searcher, feedback method and depth)."""
        return (id(self.snap), id(self.ranking.searcher), self.ranking.feedback.label(),
                self.depth)


def prepare_search(snap: Snapshot, params: Mapping, limits: Limits) -> SearchRequest:
    """The parameters of a search request checked (raises :class:`ApiError`)."""
    check_names(params, SEARCH_PARAMS)
    text = query_text(params, limits)
    k, offset = depth(params, limits)
    snippets = get_bool(params, "snippets", True)
    return SearchRequest(snap, ranking_of(snap, params), text, k, offset, snippets)


#: request parameters that do not choose the ranking
_NOT_RANKING = frozenset({"q", "queries", "k", "offset", "snippets", "docid"})


def ranking_of(snap: Snapshot, params: Mapping) -> Ranking:
    """The :class:`Ranking` of ``params``, reused from the snapshot's small cache when
    an earlier request gave the same ranking parameters (the same text: a valid
    ``Ranking`` depends on nothing else, and is not changed by ranking)."""
    key = tuple(sorted((name, str(value)) for name, value in params.items()
                       if name not in _NOT_RANKING))
    found = snap.rankings.get(key)
    if found is None:
        found = Ranking(snap, params)     # raises ApiError for a bad parameter
        snap.remember_ranking(key, found)
    return found


def answer_search(req: SearchRequest, results: list[tuple]) -> dict:
    """The answer to ``req`` from its ranking's top ``req.depth`` (``Ranking.rank``)."""
    snap, ranking, text = req.snap, req.ranking, req.text
    more = len(results) > req.offset + req.k
    page = results[req.offset:req.offset + req.k]
    terms = set(ranking.searcher.query_model(text).terms)
    out = {"generation": snap.generation, "query": text, **ranking.describe(),
           "k": req.k, "offset": req.offset, "has_more": more,
           "query_terms": sorted(terms),
           "results": _result_rows(snap, page, terms, req.snippets)}
    if not results:
        out["message"] = empty_message(snap, text, terms)
    return out


def search(snap: Snapshot, params: Mapping, limits: Limits) -> dict:
    """One query, one page of results (the server batches concurrent ones: see
    :mod:`.batching`; this is the same answer for one request alone)."""
    req = prepare_search(snap, params, limits)
    (results,) = req.ranking.rank([req.text], req.depth)
    return answer_search(req, results)


def batch(snap: Snapshot, params: Mapping, limits: Limits) -> dict:
    check_names(params, BATCH_PARAMS)
    queries = params.get("queries")
    if not isinstance(queries, list) or not queries:
        raise ApiError(400, "queries must be a non-empty JSON list of query texts or of "
                            "{\"qid\": ..., \"q\": ...} objects")
    if len(queries) > limits.max_batch:
        raise ApiError(413, f"the batch has {len(queries):,} queries, more than the "
                            f"server's cap of {limits.max_batch:,} (retrieval serve "
                            f"--max-batch)")
    qids, texts = [], []
    for i, item in enumerate(queries):
        if isinstance(item, str):
            qid, q = str(i + 1), item
        elif isinstance(item, dict) and set(item) <= {"qid", "q"} and "q" in item:
            qid, q = item.get("qid", str(i + 1)), item["q"]
            if not isinstance(qid, str):
                raise ApiError(400, f"queries[{i}].qid must be text, got {qid!r}")
        else:
            raise ApiError(400, f"queries[{i}] must be a query text or an object with "
                                f"\"q\" (and optionally \"qid\")")
        try:
            texts.append(query_text({"q": q}, limits))
        except ApiError as exc:
            raise ApiError(exc.status, f"queries[{i}]: {exc.message}") from None
        qids.append(qid)
    k, offset = depth(params, limits)
    snippets = get_bool(params, "snippets", False)
    ranking = Ranking(snap, params)
    results = ranking.rank(texts, offset + k)
    answers = []
    for qid, text, res in zip(qids, texts, results):
        terms = set(ranking.searcher.query_model(text).terms) if snippets else ()
        answers.append({"qid": qid, "query": text,
                        "results": _result_rows(snap, res[offset:], terms, snippets)})
    return {"generation": snap.generation, **ranking.describe(), "k": k,
            "offset": offset, "queries": answers}


def _docid(params: Mapping) -> str:
    docid = params.get("docid")
    if not isinstance(docid, str) or not docid:
        raise ApiError(400, "missing parameter 'docid': the document id")
    return docid


def _doc_number(snap: Snapshot, docid: str) -> int:
    try:
        return snap.index.doc_number(docid)
    except KeyError:
        raise ApiError(404, f"no document {docid!r} in this index (generation "
                            f"{snap.generation})") from None


def explain(snap: Snapshot, params: Mapping, limits: Limits) -> dict:
    check_names(params, EXPLAIN_PARAMS)
    text = query_text(params, limits)
    docid = _docid(params)
    _doc_number(snap, docid)
    depth(params, limits)
    ranking = Ranking(snap, params)
    (model,) = ranking.feedback.expand(ranking.searcher, [text])
    e = ranking.searcher.explain(model, docid)
    return {"generation": snap.generation, "query": text, **ranking.describe(),
            "docid": e.docid, "score": e.score, "document_length": e.document_length,
            "distinct_terms": e.distinct_terms, "log_alpha": e.log_alpha,
            "query_mass": model.mass,
            "terms": [t._asdict() for t in e.terms]}


def document(snap: Snapshot, params: Mapping, limits: Limits) -> dict:
    check_names(params, DOCUMENT_PARAMS)
    docid = _docid(params)
    doc = _doc_number(snap, docid)
    index = snap.index
    text = index.text(doc)
    if text is None:
        raise ApiError(404, f"the index stores no text for {docid!r} (it was built with "
                            f"--no-text)")
    truncated = len(text) > MAX_DOCUMENT_CHARS
    text = text[:MAX_DOCUMENT_CHARS]
    q = params.get("q")
    terms: set = set()
    if q:
        q = query_text(params, limits)
        ranking = Ranking(snap, {k: v for k, v in params.items()
                                 if k in ("model", "unknown_terms")})
        terms = set(ranking.searcher.query_model(q).terms)
    return {"generation": snap.generation, "docid": docid, "text": text,
            "truncated": truncated, "query_terms": sorted(terms),
            "matches": term_matches(text, terms, index.analyzer)}


def info(snap: Snapshot, name: str) -> dict:
    index = snap.index
    manifest = {k: v for k, v in index.manifest.items() if k != "arrays"}
    return {"name": name, "generation": snap.generation,
            "documents": index.num_docs, "terms": index.num_terms,
            "tokens": index.num_tokens, "text_stored": bool(manifest.get("store_text")),
            "analyzer": manifest.get("analyzer"), "created": manifest.get("created"),
            "statistics": index.statistics(),
            "models": {n: list(c.params) for n, c in MODELS.items()},
            "feedback": {n: list(c.params) for n, c in FEEDBACK.items()}}


def empty_message(snap: Snapshot, text: str, known: set) -> str:
    """Why ``text`` found nothing; ``known``: its terms that the index has."""
    if not snap.index.analyzer.analyze(text):
        return "no results: the query has no terms left after analysis (only stop words)"
    if not known:
        return "no results: none of the query terms occur in the index"
    return "no results"
