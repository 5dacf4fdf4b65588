"""Vectorised tokenising of ASCII texts for counting documents (:mod:`retrieval.index.counting`).

:func:`retrieval.analysis.count_tokens` tokenises an ASCII text with one
``bytes.translate`` (letters lowercased, digits kept, every other byte a space) and
``split``; ``split`` allocates one Python object per token, and mapping every token to
its term id is one dictionary look-up per token — the two costs that dominate building a
large index. :class:`ByteTokenMemo` gets the same tokens and term ids from numpy arrays:

1. the chunk's texts are joined by spaces and translated once; token starts and ends are
   where the bytes change from space to non-space and back;
2. a token of at most 16 bytes is identified *exactly* by two little-endian 64-bit words
   read at its start (bytes past its end masked to zero; tokens never contain a zero
   byte). A 64-bit key ``w0·K0 + w1·K1`` (mod 2⁶⁴) groups them for ``numpy.unique``;
   for a token of at most 8 bytes (w1 = 0) the key is a bijection of w0, and in every
   case the words of each occurrence are compared with those of its group's first
   occurrence and with the memo's, so two different tokens are never merged (on a
   mismatch the chunk is reported and the caller uses the per-token path);
3. keys are looked up in sorted arrays of the keys seen so far (``searchsorted``); only
   tokens never seen before are analysed, once each, by the caller;
4. tokens longer than 16 bytes (rare: 0.5% on the shared collections) are sliced out as
   ``bytes`` and mapped through the caller's dictionary memo, as before.

The result is the same (document, term) list the per-token path gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..analysis import ASCII_TABLE

#: the key multipliers of step 2 (read at each call: a test sets ``K1 = 0`` to force key
#: collisions and checks that they are caught)
K0 = np.uint64(0x9E3779B97F4A7C15)
K1 = np.uint64(0xC2B2AE3D27D4EB4F)
#: masks of the first and second word of a token of length L (index L, 0 … 16)
_MASK0 = np.array([(1 << (8 * min(n, 8))) - 1 for n in range(17)], dtype=np.uint64)
_MASK1 = np.array([(1 << (8 * max(min(n - 8, 8), 0))) - 1 for n in range(17)],
                  dtype=np.uint64)
_SPACE = 32


class ByteTokenMemo:
    """Token words → term id for ASCII tokens of at most 16 bytes (sorted arrays)."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.w0 = np.zeros(0, dtype=np.uint64)
        self.w1 = np.zeros(0, dtype=np.uint64)
        self.tids = np.zeros(0, dtype=np.int64)

    def chunk_terms(self, texts: Sequence[str], new_token: Callable[[bytes], int],
                    long_token: Callable[[bytes], int]):
        """(document of each token, term id of each token) for ASCII ``texts``, in
        document order (tokens of a document in text order), or None when a key
        collision was found (then nothing was changed: use the per-token path).

        ``new_token(token)`` analyses a token not seen before (returns its term id, −1 for
        a stop word); ``long_token(token)`` maps a token of more than 16 bytes."""
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        starts_doc = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts_doc[1:])
        buf = (" ".join(texts) + " " * 17).encode("ascii").translate(ASCII_TABLE)
        arr = np.frombuffer(buf, dtype=np.uint8)
        body = len(buf) - 17
        alnum = np.empty(body + 2, dtype=np.int8)
        alnum[0] = alnum[-1] = 0
        np.not_equal(arr[:body], _SPACE, out=alnum[1:-1].view(bool))
        step = np.diff(alnum)
        starts = np.flatnonzero(step == 1)
        ends = np.flatnonzero(step == -1)
        del alnum, step
        n_tok = len(starts)
        doc = np.searchsorted(starts_doc, starts, side="right") - 1
        tids = np.empty(n_tok, dtype=np.int64)
        if not n_tok:
            return doc, tids
        size = ends - starts
        short = size <= 16
        words = np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        s_pos = starts[short]
        s_len = size[short]
        w0 = words[s_pos] & _MASK0[s_len]
        w1 = words[s_pos + 8] & _MASK1[s_len]
        key = w0 * K0 + w1 * K1
        ukey, first, inv = np.unique(key, return_index=True, return_inverse=True)
        uw0, uw1 = w0[first], w1[first]
        if not (np.array_equal(uw0[inv], w0) and np.array_equal(uw1[inv], w1)):
            return None  # two different tokens share a key in this chunk
        pos = np.searchsorted(self.keys, ukey)
        found = pos < len(self.keys)
        found[found] = self.keys[pos[found]] == ukey[found]
        if found.any():
            hit = pos[found]
            if not (np.array_equal(self.w0[hit], uw0[found])
                    and np.array_equal(self.w1[hit], uw1[found])):
                return None  # a key of this chunk belongs to another token in the memo
        utids = np.empty(len(ukey), dtype=np.int64)
        utids[found] = self.tids[pos[found]]
        new = np.flatnonzero(~found)
        if len(new):
            raw = [a.to_bytes(8, "little") + b.to_bytes(8, "little")
                   for a, b in zip(uw0[new].tolist(), uw1[new].tolist())]
            utids[new] = np.fromiter((new_token(r.rstrip(b"\0")) for r in raw),
                                     dtype=np.int64, count=len(new))
            at = pos[new]  # ukey is sorted, so these insertion points are ascending
            self.keys = np.insert(self.keys, at, ukey[new])
            self.w0 = np.insert(self.w0, at, uw0[new])
            self.w1 = np.insert(self.w1, at, uw1[new])
            self.tids = np.insert(self.tids, at, utids[new])
        tids[short] = utids[inv]
        if not short.all():
            longs = np.flatnonzero(~short)
            tids[longs] = np.fromiter(
                (long_token(buf[s:e]) for s, e in zip(starts[longs].tolist(),
                                                      ends[longs].tolist())),
                dtype=np.int64, count=len(longs))
        return doc, tids
