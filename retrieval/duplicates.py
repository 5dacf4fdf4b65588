"""Duplicate documents: identical text, recognised by the stored text hash.

Every index stores ``doc_hash``, BLAKE2b-128 of each document's text (UTF-8; see
:mod:`retrieval.index.layout`), written at index time and kept by ``add``/``update``.
Documents with the same hash have identical text (a 128-bit collision is not a practical
concern), hence identical body statistics and equal body scores. The all-zero hash means
"unknown" (an index built without stored text): such documents are never grouped.

:func:`collapsed_search` shows one document per group: the best ranked (equal scores:
the smallest docid, the ranking's own tie rule), with the number of other copies in the
index and their ids. It asks the searcher for more results (doubling ``k``) until ``k``
distinct groups are found or the candidates run out, so the collapsed top ``k`` is
exactly the top ``k`` groups of the full ranking.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import ParameterError
from .index import Index
from .index.arrays import complete_arrays


class CollapsedResult(NamedTuple):
    """A ranked document standing for ``copies`` further documents with identical text
    (``duplicates``: their ids in docid order)."""
    rank: int
    docid: str
    score: float
    copies: int
    duplicates: tuple[str, ...]


class DuplicateGroups:
    """The groups of documents of ``index`` with identical text.

    Attributes: ``group_`` (int64 per document: documents with equal values have equal
    text), ``size_`` (the size of each document's group), ``duplicate_documents_``
    (documents beyond the first of their group, over the index).
    """

    def __init__(self, index: Index):
        self.index = index
        arrays, _ = complete_arrays(index.arrays, index.manifest)
        hashes = np.ascontiguousarray(np.asarray(arrays["doc_hash"], dtype=np.uint8))
        n = len(hashes)
        keys = hashes.view(np.dtype((np.void, hashes.shape[1]))).reshape(n) if n else \
            np.zeros(0, dtype=np.dtype((np.void, 16)))
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1).astype(np.int64)
        known = hashes.any(axis=1) if n else np.zeros(0, dtype=bool)
        # unknown hashes: a group of their own (numbers past the real groups)
        self.group_ = np.where(known, inverse, len(counts) + np.arange(n, dtype=np.int64))
        self.size_ = np.where(known, counts[inverse] if n else 0, 1).astype(np.int64)
        self.duplicate_documents_ = int(n - len(np.unique(self.group_)))

    def copies(self, doc: int) -> int:
        """How many other documents have the text of document number ``doc``."""
        return int(self.size_[doc]) - 1

    def duplicates(self, doc: int) -> tuple[str, ...]:
        """The ids of the other documents with the text of ``doc`` (docid order)."""
        if self.size_[doc] <= 1:
            return ()
        others = np.flatnonzero(self.group_ == self.group_[doc])
        return tuple(sorted(d for d in self.index.docids.many(others[others != doc])))

    def first_of_groups(self, doc_numbers: np.ndarray) -> np.ndarray:
        """Positions in ``doc_numbers`` (a ranking) of each group's first document."""
        groups = self.group_[np.asarray(doc_numbers, dtype=np.int64)]
        _, first = np.unique(groups, return_index=True)
        return np.sort(first)


def collapsed_search(searcher, query, k: int = 10, groups: DuplicateGroups | None = None
                     ) -> list[CollapsedResult]:
    """The top ``k`` of ``searcher.search(query)`` with identical documents collapsed.

    ``searcher``: a :class:`~retrieval.search.Searcher` or
    :class:`~retrieval.search.fields.FieldSearcher`; ``groups``: the index's
    :class:`DuplicateGroups` (made when not given; reuse it across queries).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f"k must be a whole number >= 1, got {k!r}")
    index = searcher.index
    groups = groups if groups is not None else DuplicateGroups(index)
    fetch = k
    while True:
        results = searcher.search(query, fetch)
        numbers = np.array([index.doc_number(r.docid) for r in results], dtype=np.int64)
        first = groups.first_of_groups(numbers)
        if len(first) >= k or len(results) < fetch or fetch >= index.num_docs:
            break
        fetch = min(2 * fetch + groups.duplicate_documents_ // 4 + 1, index.num_docs)
    out = []
    for rank, pos in enumerate(first[:k].tolist(), start=1):
        r, doc = results[pos], int(numbers[pos])
        out.append(CollapsedResult(rank, r.docid, r.score, groups.copies(doc),
                                   groups.duplicates(doc)))
    return out
