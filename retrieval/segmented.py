"""Building an index in bounded memory: documents are indexed in segments of at most
``segment_docs`` documents, and each segment is merged into the index on disk.

Memory: a segment is counted in memory (its counts, ids and text), then merged with the
index written so far by the incremental merge of :mod:`retrieval.index.merge` in its
lazy mode — the kept documents' rows and postings are streamed from the memory-mapped
generation to the new one in chunks, never materialised as arrays of the index's size.
So the peak memory is set by the segment size (and the O(V) vocabulary arrays), not by
the collection.

Exactness: language-model statistics are additive and the merge equals a fresh build of
the same documents (same vocabulary and term ids, counts, lengths, cf, |C|); documents
keep their arrival order, so the arrays are *identical* to those of one build over the
same documents in the same order (tested), and every score is the same.

Cost: the i-th merge reads and writes the i segments written so far, so S segments cost
O(S²/2) segment-writes of I/O (a k-way merge of all segments at the end would cost O(S);
not done here — see the report of issue 20). Choose ``segment_docs`` as large as the
memory budget allows: measured peak RSS per segment document is in
``results/scale/`` (``scripts/bench_scale.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from .analysis import Analyzer
from .errors import InputError
from .index import Index
from .index.lifecycle import add_documents
from .records import Document


def build_segmented(documents: Iterable[Document | tuple[str, str]],
                    output: str | os.PathLike, *, segment_docs: int,
                    analyzer: Analyzer | None = None, store_text: bool = True,
                    overwrite: bool = False) -> Path:
    """Index ``documents`` into ``output`` a segment of ``segment_docs`` at a time (see
    the module docstring); returns the path. Ids must be unique (a repeated id is an
    error naming it; the index then holds the segments merged before it)."""
    if isinstance(segment_docs, bool) or not isinstance(segment_docs, int) \
            or segment_docs < 1:
        raise InputError(f"segment_docs must be a whole number >= 1, got {segment_docs!r}")
    it = iter(documents)
    first = list(islice(it, segment_docs))
    Index.build(first, analyzer=analyzer, store_text=store_text).save(
        output, overwrite=overwrite)
    while True:
        segment = list(islice(it, segment_docs))
        if not segment:
            break
        add_documents(output, segment)
    return Path(output)
