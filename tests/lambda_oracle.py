"""The collapsed λ̂ rows of a query, written the plain way: a test oracle shared by
tests/test_twostage_em.py and tests/test_lambda_kernels.py."""

from __future__ import annotations

import numpy as np


def collapsed_rows(index, tids):
    """(counts, lengths): the matched documents ascending (their counts of the terms
    ``tids``), then np.unique of the other documents' lengths (zero counts)."""
    lengths = np.asarray(index.arrays["doc_lengths"], dtype=np.int64)
    ptr = np.asarray(index.arrays["postings_indptr"])
    docs = np.asarray(index.arrays["postings_docs"])
    cnts = np.asarray(index.arrays["postings_counts"])
    parts = [(np.asarray(docs[ptr[t]:ptr[t + 1]], dtype=np.int64),
              np.asarray(cnts[ptr[t]:ptr[t + 1]], dtype=float)) for t in tids]
    matched = np.unique(np.concatenate([d for d, _ in parts]))
    counts = np.zeros((len(matched), len(tids)))
    for col, (d, c) in enumerate(parts):
        counts[np.searchsorted(matched, d), col] = c
    rest = np.ones(len(lengths), dtype=bool)
    rest[matched] = False
    other = np.unique(lengths[rest])
    return (np.vstack([counts, np.zeros((len(other), len(tids)))]),
            np.concatenate([lengths[matched], other]).astype(float))
