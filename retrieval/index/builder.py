"""Building an index from documents: :class:`IndexBuilder`.

Documents are analysed and counted as they arrive (:class:`~retrieval.index.counting.
DocumentCounts`); :meth:`IndexBuilder.finish` makes the arrays (:mod:`retrieval.index.
arrays`) and returns the in-memory :class:`~retrieval.index.reader.Index`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .counting import DocumentCounts
from .reader import Index


class IndexBuilder(DocumentCounts):
    """Accumulates documents and produces an :class:`Index`.

    Documents are counted as they arrive (``add``, ``add_documents``) so memory holds only
    the counts, the ids, and — when ``store_text`` — the text. Each distinct raw token is
    analysed once: a token → term id map fuses stopping, stemming and the vocabulary lookup.
    """

    def finish(self, sources: Iterable[str] = (), read_stats: dict | None = None) -> Index:
        """The in-memory index of everything added so far (once: the builder is spent)."""
        arrays, manifest = self.finish_arrays(sources, read_stats)
        return Index(arrays, manifest, path=None)
