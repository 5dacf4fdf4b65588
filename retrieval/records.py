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
    """One ranked document returned by a searcher. ``score`` is in nats.

    The record holds no text; :meth:`text` and :meth:`snippet` read it lazily from the
    index (or searcher) they are given, so results stay small and immutable.
    """
    rank: int
    docid: str
    score: float

    def text(self, source) -> str | None:
        """The document's stored text, read from ``source`` (the Index or the Searcher
        that returned this result); None when the index stores no text."""
        index = getattr(source, "index", source)
        try:
            number = index.doc_number(self.docid)
        except KeyError:
            from .errors import ParameterError
            raise ParameterError(f"no document {self.docid!r} in this index; pass the "
                                 f"index or searcher that returned the result") from None
        return index.text(number)

    def snippet(self, source, query, **options) -> str | None:
        """A one-line excerpt of the document around ``query``'s terms
        (:func:`retrieval.snippets.make_snippet`; ``options`` go to it, e.g.
        ``width``, ``max_length``, ``highlight``). ``query``: its text or its query
        model. None when the index stores no text."""
        text = self.text(source)
        if text is None:
            return None
        from .snippets import make_snippet
        index = getattr(source, "index", source)
        terms = getattr(query, "terms", None)
        if terms is None:
            terms = index.analyzer.term_counts(str(query)).keys()
        return make_snippet(text, frozenset(terms), index.analyzer, **options)
