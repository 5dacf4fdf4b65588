"""Test oracles of the λ̂ estimate shared by tests/test_twostage_em.py and
tests/test_lambda_kernels.py: a query's collapsed rows written the plain way, and the
unpruned computation with either order of row sums."""

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


def fixed_order(x, cq):
    """Σ_j c_j x_ij of every row in the order j = 0 … m−1 (the estimate's definition),
    written out here independently of retrieval.estimation.row_sums."""
    s = x[:, 0] * cq[0]
    for j in range(1, x.shape[1]):
        s = s + x[:, j] * cq[j]
    return s


def blas_order(x, cq):
    """The row sums as BLAS takes them (the definition before the fixed order)."""
    return x @ cq


def unpruned_lambda(counts, dl, pc, cq, mu, sums=fixed_order):
    """The reference: every row's λ_i (bounds from g_i(0), g_i(1) over all rows, one
    bisection of all inner rows), then the first row of the largest log L_i(λ_i) — the
    computation without pruning, kept here as the oracle; ``sums`` takes the row sums."""
    counts, dl = np.asarray(counts, dtype=float), np.asarray(dl, dtype=float)
    pc, cq = np.asarray(pc, dtype=float), np.asarray(cq, dtype=float)
    a = (counts + mu * pc) / (dl[:, None] + mu)
    d = pc - a

    def slope(lam):
        return sums(d / (a + lam[:, None] * d), cq)

    lam = np.where(slope(np.zeros(len(dl))) <= 0, 0.0, 0.5)
    inner = (lam == 0.5) & (slope(np.ones(len(dl))) < 0)
    lam[(lam == 0.5) & ~inner] = 1.0
    rows = np.flatnonzero(inner)
    lo, hi = np.zeros(len(rows)), np.ones(len(rows))
    for _ in range(54):
        mid = 0.5 * (lo + hi)
        up = sums(d[rows] / (a[rows] + mid[:, None] * d[rows]), cq) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    lam[rows] = 0.5 * (lo + hi)
    ll = sums(np.log(a + lam[:, None] * d), cq)
    best = int(np.argmax(ll))
    return float(lam[best]), float(ll[best]), best
