"""Small immutable records passed between the parts of the package.

Document ids and query ids are external strings end to end.
"""

from __future__ import annotations

from typing import NamedTuple


class Document(NamedTuple):
    """A document to index: an external string id and its text."""
    docid: str
    text: str


class Query(NamedTuple):
    """A query (topic) of a test collection: an external string id and its text."""
    qid: str
    text: str


class Qrel(NamedTuple):
    """One relevance judgment. ``relevance`` >= 1 is relevant; 0 and negatives are not."""
    qid: str
    docid: str
    relevance: int


class ScoredDoc(NamedTuple):
    """One line of a run: a document retrieved for a query with a score (and rank).

    ``rank`` is 1-based as written in the run; evaluation ignores it and re-sorts
    by score as trec_eval does.
    """
    qid: str
    docid: str
    score: float
    rank: int = 0


class SearchResult(NamedTuple):
    """One ranked document returned by a searcher. ``score`` is in nats."""
    rank: int
    docid: str
    score: float
