"""Vectorised tokenising for the index builder: ASCII and Unicode texts, per document.

:func:`retrieval.analysis.count_tokens` tokenises an ASCII text with one
``bytes.translate`` (letters lowercased, digits kept, every other byte a space) and
``split``; ``split`` allocates one Python object per token, and mapping every token to
its term id is one dictionary look-up per token — the two costs that dominate building a
large index. :class:`ByteTokenMemo` gets the same tokens and term ids from numpy arrays:

1. **Spans.** The texts are split into ASCII and non-ASCII text (the choice is made
   per line, not per chunk or document: one accented letter does not send 2,000
   documents, nor the rest of its own document, down the slower path; see
   :func:`_slices`).
   *ASCII documents* are joined by spaces and translated once; token starts and ends
   are where the bytes change from space to non-space and back.
   *Other documents* are normalised and lowercased exactly as
   :func:`~retrieval.analysis.tokenize` does (``unicodedata.normalize("NFC", t).lower()``,
   C speed), joined, and classified code point by code point through a table of
   0x110000 classes made once per process *with the tokenizer's own regular expression*
   (``[^\\W_]``, so the classes cannot disagree with it): separator, letter/digit, CJK
   letter (:data:`~retrieval.analysis.CJK_RANGES`). Tokens are the maximal runs of
   non-CJK letters/digits, the overlapping pairs of adjacent CJK letters, and CJK
   letters with no CJK neighbour — the tokenizer's rules 3 and 3b. Code-point offsets
   become UTF-8 byte offsets by a prefix sum of each code point's UTF-8 length.
2. **Keys.** A token of at most 16 bytes (UTF-8) is identified *exactly* by two
   little-endian 64-bit words read at its start (bytes past its end masked to zero;
   tokens never contain a zero byte). A 64-bit key ``w0·K0 + w1·K1`` (mod 2⁶⁴) groups
   them for ``numpy.unique``; for a token of at most 8 bytes (w1 = 0) the key is a
   bijection of w0, and in every case the words of each occurrence are compared with
   those of its group's first occurrence and with the memo's, so two different tokens
   are never merged (on a mismatch the documents are tokenised by the regex instead);
3. keys are looked up in sorted arrays of the keys seen so far (``searchsorted``); only
   tokens never seen before are analysed, once each, by the caller (an ASCII token as
   ``bytes``, any other as ``str``, as :func:`~retrieval.analysis.count_tokens` gives
   them);
4. tokens longer than 16 bytes (rare: 0.5% on the shared collections) are sliced out and
   mapped through the caller's dictionary memo.

**Bounded memory.** :meth:`ByteTokenMemo.chunk_counts` works on slices of at most
:data:`SLICE_CHARS` characters (a longer document is cut at a space or line break, which
no token, bigram, normalisation or lowercasing rule crosses) and reduces each slice to
its (document, term) counts at once, so the arrays per token never exceed one slice
(≈ 40 bytes a character at most) whatever the size of a document. 1 Mi characters keeps
that below ~40 MB while the fixed cost per slice stays under a millisecond.

The result is the same (document, term, count) list the per-token path gives (tested
on random Unicode text with hypothesis).
"""

from __future__ import annotations

import operator
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from itertools import compress

import numpy as np

from ..analysis import ASCII_TABLE, CJK_RANGES, count_tokens

#: the key multipliers of step 2 (read at each call: a test sets ``K1 = 0`` to force key
#: collisions and checks that they are caught)
K0 = np.uint64(0x9E3779B97F4A7C15)
K1 = np.uint64(0xC2B2AE3D27D4EB4F)
#: masks of the first and second word of a token of length L (index L, 0 … 16)
_MASK0 = np.array([(1 << (8 * min(n, 8))) - 1 for n in range(17)], dtype=np.uint64)
_MASK1 = np.array([(1 << (8 * max(min(n - 8, 8), 0))) - 1 for n in range(17)],
                  dtype=np.uint64)
_SPACE = 32
#: characters per slice of :meth:`ByteTokenMemo.chunk_counts` (see the module docstring)
SLICE_CHARS = 1 << 20

_SEP, _ALNUM, _CJK = 0, 1, 2
_CLASSES: np.ndarray | None = None
_CLASSES_LOCK = threading.Lock()


def code_point_classes() -> np.ndarray:
    """uint8 class of every code point: 0 separator, 1 letter or digit, 2 CJK letter.

    Made once per process (≈ 0.05 s) by running the tokenizer's regular expression over
    all code points, so the table agrees with it by construction."""
    global _CLASSES
    if _CLASSES is None:
        with _CLASSES_LOCK:
            if _CLASSES is None:
                points = np.arange(0x110000, dtype=np.uint32)
                points[1] = 0   # so that a 1 below can only be a mark
                # every code point as one string (≈ 3 ms; a join of chr() took 0.2 s)
                every = points.tobytes().decode("utf-32-le", "surrogatepass")
                marked = re.sub(r"[^\W_]", "\x01", every)
                cls = (np.frombuffer(marked.encode("utf-32-le", "surrogatepass"),
                                     dtype=np.uint32) == 1).astype(np.uint8)
                for lo, hi in CJK_RANGES:
                    part = cls[lo:hi + 1]
                    part[part == _ALNUM] = _CJK
                _CLASSES = cls
    return _CLASSES


def _ascii_spans(texts: Sequence[str]):
    """(buffer, token starts, token ends, document of each token) of ASCII texts."""
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
    doc = np.searchsorted(starts_doc, starts, side="right") - 1
    return buf, starts, ends, doc


def _unicode_spans(texts: Sequence[str]):
    """(buffer, token starts, token ends, document of each token) of any texts: step 1
    of the module docstring for non-ASCII documents (offsets in UTF-8 bytes)."""
    norm = [unicodedata.normalize("NFC", t).lower() for t in texts]
    lengths = np.fromiter(map(len, norm), dtype=np.int64, count=len(norm))
    joined = " ".join(norm)
    del norm
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cls = np.zeros(len(cps) + 2, dtype=np.uint8)   # a separator on either side
    cls[1:-1] = code_point_classes()[cps]
    nbytes = 1 + (cps >= 0x80).astype(np.int64)
    nbytes += cps >= 0x800
    nbytes += cps >= 0x10000
    byte_at = np.zeros(len(cps) + 1, dtype=np.int64)
    np.cumsum(nbytes, out=byte_at[1:])
    del nbytes
    del cps
    al = cls == _ALNUM
    # runs of non-CJK letters/digits (positions shifted by one for the padding)
    step = np.diff(al.view(np.int8))
    starts = [np.flatnonzero(step == 1)]
    ends = [np.flatnonzero(step == -1)]
    del al, step
    cjk = cls == _CJK
    if cjk.any():
        pair = cjk[1:-2] & cjk[2:-1]                   # CJK at i and i + 1
        single = cjk[1:-1] & ~cjk[:-2] & ~cjk[2:]     # CJK with no CJK neighbour
        p = np.flatnonzero(pair)
        s = np.flatnonzero(single)
        starts += [p, s]
        ends += [p + 2, s + 1]
    del cls, cjk
    starts, ends = np.concatenate(starts), np.concatenate(ends)
    # document boundaries: the joining spaces sit at the cumulative lengths
    bounds = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=bounds[1:])
    doc = np.searchsorted(bounds, starts, side="right") - 1
    buf = joined.encode("utf-8", "surrogatepass") + b" " * 17
    return buf, byte_at[starts], byte_at[ends], doc


class ByteTokenMemo:
    """Token words → term id for tokens of at most 16 UTF-8 bytes (sorted arrays)."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.w0 = np.zeros(0, dtype=np.uint64)
        self.w1 = np.zeros(0, dtype=np.uint64)
        self.tids = np.zeros(0, dtype=np.int64)

    def chunk_terms(self, texts: Sequence[str], new_token: Callable[[bytes | str], int],
                    long_token: Callable[[bytes | str], int],
                    new_tokens: Callable[[list], list[int]] | None = None):
        """(document of each token, term id of each token) for ``texts`` (all ASCII, or
        any: see step 1), or None when a key collision was found (then nothing was
        changed: use the per-token path).

        ``new_token(token)`` analyses a token not seen before (returns its term id, −1 for
        a stop word); ``new_tokens(tokens)``, when given, does the same for a list of
        them at once (fewer calls per token); ``long_token(token)`` maps a token of more
        than 16 bytes. Tokens are given as ``bytes`` when ASCII, else as ``str``."""
        if new_tokens is None:
            def new_tokens(tokens):
                return list(map(new_token, tokens))
        if all(map(str.isascii, texts)):
            buf, starts, ends, doc = _ascii_spans(texts)
            is_ascii = True
        else:
            buf, starts, ends, doc = _unicode_spans(texts)
            is_ascii = False
        tids = self._span_terms(buf, starts, ends, new_tokens, long_token, is_ascii)
        return None if tids is None else (doc, tids)

    def _span_terms(self, buf: bytes, starts, ends, new_tokens, long_token, is_ascii):
        n_tok = len(starts)
        tids = np.empty(n_tok, dtype=np.int64)
        if not n_tok:
            return tids
        size = ends - starts
        short = size <= 16
        words = np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        s_pos = starts[short]
        s_len = size[short]
        w0 = words[s_pos] & _MASK0[s_len]
        w1 = words[s_pos + 8] & _MASK1[s_len]
        key = w0 * K0 + w1 * K1
        for grouping in (_group_by_sorting, _group_by_unique):
            ukey, first, inv = grouping(key)
            uw0, uw1 = w0[first], w1[first]
            if np.array_equal(uw0[inv], w0) and np.array_equal(uw1[inv], w1):
                break
        else:
            return None  # two different tokens share a key in this chunk
        del key, w0, w1
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
            at_first = first[new]
            toks = _tokens(buf, s_pos[at_first], s_len[at_first], is_ascii)
            utids[new] = new_tokens(toks)
            del toks
            at = pos[new]  # ukey is sorted, so these insertion points are ascending
            self.keys = np.insert(self.keys, at, ukey[new])
            self.w0 = np.insert(self.w0, at, uw0[new])
            self.w1 = np.insert(self.w1, at, uw1[new])
            self.tids = np.insert(self.tids, at, utids[new])
        del s_pos, s_len
        tids[short] = utids[inv]
        if not short.all():
            longs = np.flatnonzero(~short)
            toks = _tokens(buf, starts[longs], size[longs], is_ascii)
            ids = {tok: long_token(tok) for tok in dict.fromkeys(toks)}  # each one once
            tids[longs] = np.fromiter(map(ids.__getitem__, toks), dtype=np.int64,
                                      count=len(toks))
        return tids

    def chunk_counts(self, texts: Sequence[str], new_token: Callable[[bytes | str], int],
                     token_id: Callable[[bytes | str], int],
                     new_tokens: Callable[[list], list[int]] | None = None):
        """Sorted unique keys ``(document << 32) | (term id + 1)`` (term id −1: a stop
        word) and their counts for ``texts``, slice by slice (module docstring,
        "Bounded memory"); ``token_id`` maps any token (the per-token fallback)."""
        keys_parts, count_parts = [], []
        for docs, pieces in _slices(texts):
            got = self.chunk_terms(pieces, new_token, token_id, new_tokens)
            if got is None:  # a key collision: the regex tokenizer, token by token
                token_lists = [count_tokens(p) for p in pieces]
                flat = [t for tl in token_lists for t in tl]
                tids = np.fromiter(map(token_id, flat), dtype=np.int64, count=len(flat))
                lengths = np.fromiter(map(len, token_lists), dtype=np.int64,
                                      count=len(pieces))
                del flat, token_lists
                doc = np.repeat(np.arange(len(pieces), dtype=np.int64), lengths)
            else:
                doc, tids = got
            keys, counts = np.unique((docs[doc] << 32) | (tids + 1), return_counts=True)
            keys_parts.append(keys)
            count_parts.append(counts)
        if len(keys_parts) == 1:
            return keys_parts[0], count_parts[0]
        if not keys_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        keys, inv = np.unique(np.concatenate(keys_parts), return_inverse=True)
        counts = np.bincount(inv, weights=np.concatenate(count_parts),
                             minlength=len(keys)).astype(np.int64)
        return keys, counts


#: bits of a position packed under a key by :func:`_group_by_sorting`
_POS_BITS = 24
_POS_MASK = np.uint64((1 << _POS_BITS) - 1)


def _group_by_sorting(keys: np.ndarray):
    """``numpy.unique(keys, return_index=True, return_inverse=True)``, ≈ 2.4x faster,
    or a coarser grouping: each key's top 40 bits and its position are packed into one
    uint64 and sorted (a plain sort, not numpy's stable argsort); keys whose top 40
    bits agree fall into one group. The caller's check that every token of a group has
    the group's words catches such a merge (then :func:`_group_by_unique` is used), so
    the result is always exact. Groups ascend by key, and ``first`` is each group's
    first position, as ``numpy.unique`` gives them."""
    n = len(keys)
    if n >= 1 << _POS_BITS:
        return _group_by_unique(keys)
    packed = (keys & ~_POS_MASK) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & _POS_MASK).astype(np.intp)
    packed >>= np.uint64(_POS_BITS)
    boundary = np.empty(n, dtype=bool)
    boundary[:1] = True
    np.not_equal(packed[1:], packed[:-1], out=boundary[1:])
    del packed
    first = order[boundary]
    inv = np.empty(n, dtype=np.intp)
    inv[order] = np.cumsum(boundary) - 1
    return keys[first], first, inv


def _group_by_unique(keys: np.ndarray):
    return np.unique(keys, return_index=True, return_inverse=True)


def _tokens(buf: bytes, starts: np.ndarray, lengths: np.ndarray, is_ascii: bool) -> list:
    """The tokens at ``starts`` (byte offsets) of ``buf`` as
    :func:`~retrieval.analysis.count_tokens` gives them: ASCII as bytes, others as str."""
    toks = [buf[s:s + n] for s, n in zip(starts.tolist(), lengths.tolist())]
    if is_ascii:
        return toks
    return [t if t.isascii() else t.decode("utf-8", "surrogatepass") for t in toks]


#: a non-ASCII document of more characters than this is not split into ASCII and other
#: lines (:func:`_slices`): the split copies a document, so its memory stays bounded
SPLIT_CHARS = 4 * SLICE_CHARS


def _slices(texts: Sequence[str], limit: int | None = None):
    """Yield (document numbers as an int64 array, texts) of at most ``limit`` characters
    each, ASCII and other text apart; a longer document is cut after a space or a
    line break (none of the tokenizer's rules crosses one).

    The ASCII lines of a non-ASCII document (of at most :data:`SPLIT_CHARS`) go with
    the ASCII texts (:func:`_ascii_lines`): on the real folder of
    ``scripts/bench_realtext.py`` 39% of the documents hold a non-ASCII character but
    only 0.2% of their characters are one, and the Unicode path costs ≈ 6x the ASCII
    path per character. Memory: two slices being filled and one document's parts."""
    limit = SLICE_CHARS if limit is None else limit
    slices = {True: _Slice(), False: _Slice()}
    for i, text in enumerate(texts):
        for is_ascii, part in _parts(text):
            pending = slices[is_ascii]
            for piece in _cut(part, limit):
                if pending.pieces and pending.size + len(piece) > limit:
                    yield pending.take()
                pending.add(i, piece)
    for pending in slices.values():
        if pending.pieces:
            yield pending.take()


class _Slice:
    """The documents and pieces of a slice being filled."""

    def __init__(self) -> None:
        self.docs: list[int] = []
        self.pieces: list[str] = []
        self.size = 0

    def add(self, doc: int, piece: str) -> None:
        self.docs.append(doc)
        self.pieces.append(piece)
        self.size += len(piece) + 1

    def take(self) -> tuple[np.ndarray, list[str]]:
        out = np.asarray(self.docs, dtype=np.int64), self.pieces
        self.docs, self.pieces, self.size = [], [], 0
        return out


def _parts(text: str):
    """(is ASCII, text) parts of one document: the document itself when it is ASCII or
    longer than :data:`SPLIT_CHARS`, else its ASCII lines and its other lines."""
    if text.isascii():
        yield True, text
    elif len(text) > SPLIT_CHARS:
        yield False, text
    else:
        plain, other = _ascii_lines(text)
        if plain:
            yield True, plain
        del plain
        yield False, other


def _ascii_lines(text: str) -> tuple[str, str]:
    """(the ASCII lines of ``text``, its other lines), each joined by ``\\n``. Cutting at
    a line break changes no token, NFC composition or lowercasing context, so the two
    parts together have the tokens of ``text``."""
    lines = text.split("\n")
    flags = list(map(str.isascii, lines))
    return ("\n".join(compress(lines, flags)),
            "\n".join(compress(lines, map(operator.not_, flags))))


def _cut(text: str, limit: int):
    """``text`` in pieces of about ``limit`` characters, each cut just before a space or
    line break (a piece runs on to the next one when there is none)."""
    if len(text) <= limit:
        yield text
        return
    start = 0
    while len(text) - start > limit:
        at = max(text.rfind(" ", start + 1, start + limit),
                 text.rfind("\n", start + 1, start + limit))
        if at < 0:
            at = min((x for x in (text.find(" ", start + limit), text.find("\n", start + limit))
                      if x >= 0), default=-1)
            if at < 0:
                break
        yield text[start:at]
        start = at
    yield text[start:]
