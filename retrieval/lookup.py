"""Fast term → id lookup over an index's sorted vocabulary.

The vocabulary is stored sorted by code point, which is the byte order of its UTF-8
encoding. Each term's first 8 bytes, read as a big-endian unsigned integer (shorter terms
padded with zero bytes), give a key that is sorted the same way, so ``numpy.searchsorted``
on the keys narrows a term to the few vocabulary entries sharing its 8-byte prefix, which
are then compared exactly. Building the keys is one vectorised pass over the vocabulary
(8 bytes per term in memory); found ids are memoised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_PREFIX = 8


def prefix_keys(offsets: np.ndarray, blob: np.ndarray) -> np.ndarray:
    """Big-endian uint64 of each string's first 8 bytes (zero padded)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    blob = np.asarray(blob)
    padded = np.concatenate([blob, np.zeros(_PREFIX, dtype=np.uint8)])
    cols = np.arange(_PREFIX, dtype=np.int64)
    idx = starts[:, None] + cols[None, :]
    grid = padded[idx]
    grid[cols[None, :] >= lengths[:, None]] = 0
    return np.ascontiguousarray(grid).view(">u8").ravel().astype(np.uint64)


def _key_of(raw: bytes) -> int:
    return int.from_bytes(raw[:_PREFIX].ljust(_PREFIX, b"\0"), "big")


class VocabularyLookup:
    """Maps index terms to ids (-1 when absent) for one index's vocabulary."""

    def __init__(self, index) -> None:
        self._vocab = index.vocabulary
        self._keys = prefix_keys(index.arrays["vocab_offsets"], index.arrays["vocab_bytes"])
        self._memo: dict[str, int] = {}

    def id(self, term: str) -> int:
        tid = self._memo.get(term)
        if tid is None:
            tid = self._find(term)
            if len(self._memo) < 1_000_000:
                self._memo[term] = tid
        return tid

    def ids(self, terms: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.id(t) for t in terms), dtype=np.int64, count=len(terms))

    def _find(self, term: str) -> int:
        key = np.uint64(_key_of(term.encode("utf-8")))
        lo = int(np.searchsorted(self._keys, key, side="left"))
        hi = int(np.searchsorted(self._keys, key, side="right"))
        vocab = self._vocab
        while lo < hi:  # the few terms sharing the 8-byte prefix, in sorted order
            mid = (lo + hi) // 2
            value = vocab[mid]
            if value < term:
                lo = mid + 1
            elif value > term:
                hi = mid
            else:
                return mid
        return -1


def gather_strings(offsets: np.ndarray, blob: np.ndarray, indices) -> list[str]:
    """The strings at ``indices`` of a (offsets, UTF-8 blob) table, gathered in one pass.

    The needed byte ranges are copied with one vectorised gather and decoded once (per
    string only when the text is not ASCII), instead of slicing a memory map per item.
    """
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        return []
    offsets = np.asarray(offsets)
    starts = offsets[idx]
    lengths = offsets[idx + 1] - starts
    total = int(lengths.sum())
    bounds = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    positions = np.arange(total, dtype=np.int64) - np.repeat(bounds[:-1] - starts, lengths)
    raw = np.asarray(blob)[positions].tobytes()
    b = bounds.tolist()
    if raw.isascii():
        text = raw.decode("ascii")
        return [text[b[i]:b[i + 1]] for i in range(len(idx))]
    return [raw[b[i]:b[i + 1]].decode("utf-8") for i in range(len(idx))]
