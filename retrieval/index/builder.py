"""Building an index from documents: :class:`IndexBuilder`.

Documents are analysed and counted as they arrive (:class:`~retrieval.index.counting.
DocumentCounts`); :meth:`IndexBuilder.finish` makes the arrays (:mod:`retrieval.index.
arrays`) and returns the in-memory :class:`~retrieval.index.reader.Index`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError
from .counting import DocumentCounts
from .reader import Index

#: pieces of :meth:`IndexBuilder.count_pieces` whose counts are kept apart before they
#: are summed (bounds the memory of a long streamed document by its distinct terms)
_PARTS_BEFORE_SUM = 16


class IndexBuilder(DocumentCounts):
    """Accumulates documents and produces an :class:`Index`.

    Documents are counted as they arrive (``add``, ``add_documents``) so memory holds only
    the counts, the ids, and — when ``store_text`` — the text. Each distinct raw token is
    analysed once: a token → term id map fuses stopping, stemming and the vocabulary lookup.

    A document too large to hold as one string is counted piece by piece
    (:meth:`count_pieces`) and added with its counts (:meth:`add_counted`).
    """

    def finish(self, sources: Iterable[str] = (), read_stats: dict | None = None) -> Index:
        """The in-memory index of everything added so far (once: the builder is spent)."""
        arrays, manifest = self.finish_arrays(sources, read_stats)
        return Index(arrays, manifest, path=None)

    def count_pieces(self, pieces: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(term ids, counts)`` (ascending ids, stop words dropped) of one document
        given as text pieces, each cut just after white space (so no token, NFC
        composition or final-sigma context spans two pieces).

        The pieces are tokenised and mapped like :meth:`add_documents`' chunks (the numpy
        path of :mod:`retrieval.index.bytetokens`, the same memo), so a streamed document
        is counted as if it had been read whole. The ids are this builder's; add the
        document with :meth:`add_counted`. Memory: the counts of at most
        :data:`_PARTS_BEFORE_SUM` pieces, plus the document's distinct terms."""
        self._check_open()
        tids, counts = [], []
        for piece in pieces:
            keys, n = self._bytes.chunk_counts([piece], self._new_token, self._token_id)
            tids.append((keys & 0xFFFFFFFF) - 1)
            counts.append(n)
            if len(tids) >= _PARTS_BEFORE_SUM:
                summed_terms, summed_counts = _summed(tids, counts)
                tids, counts = [summed_terms], [summed_counts]
        terms, total = _summed(tids, counts)
        kept = terms >= 0
        return terms[kept], total[kept]

    def add_counted(self, docid: str, terms: np.ndarray, counts: np.ndarray,
                    text: bytes = b"") -> None:
        """Add a document by its ``(term ids, counts)`` from :meth:`count_pieces`;
        ``text``: its stored text (UTF-8), kept when the builder stores text."""
        self._check_open()
        if not isinstance(docid, str) or not docid:
            raise InputError(f"document ids must be non-empty strings, got {docid!r}")
        if docid in self._docid_set:
            raise InputError(f"document id {docid!r} appears twice; ids must be unique")
        self._docid_set.add(docid)
        self._titles.append("")
        self._docids.append(docid)
        self._doc_terms.frombytes(np.asarray(terms, dtype=np.int32).tobytes())
        self._doc_counts.frombytes(np.asarray(counts, dtype=np.int32).tobytes())
        self._doc_nnz.append(len(terms))
        if self.store_text:
            self._text.append(text)
            self._text_len.append(len(text))


def _summed(tids: list[np.ndarray], counts: list[np.ndarray]):
    """(distinct term ids ascending, summed counts) of several (ids, counts) parts."""
    if not tids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    terms, inv = np.unique(np.concatenate(tids), return_inverse=True)
    total = np.bincount(inv, weights=np.concatenate(counts), minlength=len(terms))
    return terms, total.astype(np.int64)
