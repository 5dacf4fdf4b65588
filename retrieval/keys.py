"""Vectorised helpers on arrays of strings: conversion, hashing, factorisation.

Comparing and sorting millions of numpy strings is slow (several seconds for ten
million), so the evaluation works on integer keys instead:

* :func:`hash_strings` gives each string a 64-bit hash in one pass (an ``einsum`` of
  the UCS-4 code points with fixed odd weights, then a bit mixer). Equal strings
  always get equal hashes, whatever the width of the array that holds them, because
  numpy pads with zero code points, which contribute nothing. Different strings may
  collide; every user of a hash therefore *verifies* a match on the real strings,
  so results never depend on the hash being collision-free.
* :func:`factorize` maps strings to dense integer codes exactly; it is fast when
  equal strings come in runs (the query ids of a run file).
"""

from __future__ import annotations

import numpy as np

from .errors import ParameterError

_MASK64 = (1 << 64) - 1


def _weights(n: int) -> np.ndarray:
    """``n`` fixed odd 64-bit weights (splitmix64 sequence from a constant seed)."""
    out = []
    state = 0x2545F4914F6CDD1D
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
        out.append(z | 1)
    return np.array(out, dtype=np.uint64)


_WEIGHTS = _weights(64)


def _weights_for(width: int) -> np.ndarray:
    global _WEIGHTS
    if width > _WEIGHTS.size:
        _WEIGHTS = _weights(max(width, 2 * _WEIGHTS.size))
    return _WEIGHTS[:width]


def as_str_array(values, name: str) -> np.ndarray:
    """A 1-D contiguous numpy unicode array of ``values`` (strings only).

    Accepts a numpy ``U`` array, a ``S`` array (decoded as UTF-8), an object array or
    any iterable of ``str``. Numbers are refused rather than silently converted
    (``1`` and ``1.0`` would become different ids).
    """
    if isinstance(values, np.ndarray):
        arr = values
    else:
        values = values if isinstance(values, (list, tuple)) else list(values)
        arr = np.array(values) if len(values) else np.zeros(0, dtype="U1")
        if arr.dtype.kind not in "UO" or (arr.dtype.kind == "U" and arr.ndim == 1 and not
                                          all(isinstance(v, str) for v in values[:1000])):
            bad = next((v for v in values if not isinstance(v, str)), None)
            raise ParameterError(f"{name} must be strings, got {type(bad).__name__} {bad!r}; "
                                 f"convert them with str() first")
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "U":
        pass
    elif kind == "S":
        raw = np.ascontiguousarray(arr).view(np.uint8)
        if arr.size == 0:
            arr = np.zeros(0, dtype="U1")
        elif raw.size == 0 or int(raw.max()) < 128:  # ASCII: bytes are the code points
            arr = arr.astype(f"U{max(arr.dtype.itemsize, 1)}")
        else:
            try:
                arr = np.array([v.decode("utf-8") for v in arr.tolist()], dtype=np.str_)
            except UnicodeDecodeError as exc:
                raise ParameterError(f"{name}: bytes that are not UTF-8 ({exc})") from None
    elif kind == "O" or kind == "T":
        items = arr.tolist()
        if not all(isinstance(v, str) for v in items):
            bad = next(v for v in items if not isinstance(v, str))
            raise ParameterError(f"{name} must be strings, got {type(bad).__name__} {bad!r}; "
                                 f"convert them with str() first")
        arr = np.array(items, dtype=np.str_) if items else np.zeros(0, dtype="U1")
    else:
        raise ParameterError(f"{name} must be strings, got an array of dtype {arr.dtype}; "
                             f"convert with .astype(str) first")
    return np.ascontiguousarray(arr)


def hash_strings(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash per string of a ``U`` array (equal strings -> equal hashes)."""
    n = values.size
    width = values.dtype.itemsize // 4
    if n == 0 or width == 0:
        return np.zeros(n, dtype=np.uint64)
    codes = np.ascontiguousarray(values).view(np.uint32).reshape(n, width)
    h = np.einsum("ij,j->i", codes, _weights_for(width))
    # finaliser: spread the high bits of the sum into the low ones (and back)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return h


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(uniques, codes)``: sorted distinct strings and each value's index in them.

    Exact. Runs of equal neighbours are collapsed first, so an array grouped by value
    (the qids of a run file) costs one vectorised comparison plus a small sort.
    """
    n = values.size
    if n == 0:
        return values[:0].copy(), np.zeros(0, dtype=np.intp)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    uniques, inverse = np.unique(values[starts], return_inverse=True)
    lengths = np.diff(np.append(starts, n))
    codes = np.repeat(inverse.astype(np.intp, copy=False), lengths)
    return uniques, codes


def combine(high: np.ndarray, low_hash: np.ndarray) -> np.ndarray:
    """uint64 keys ``high << 32 | top 32 bits of low_hash`` (``high`` < 2**32)."""
    return (high.astype(np.uint64) << np.uint64(32)) | (low_hash >> np.uint64(32))


def find_duplicate(groups: np.ndarray, hashes: np.ndarray,
                   strings: np.ndarray) -> tuple[int, int] | None:
    """The first row repeating an earlier row's (group, string), as ``(earlier, row)``.

    ``groups`` are small non-negative integers (query codes), ``hashes`` the
    :func:`hash_strings` of ``strings``. Vectorised: equal keys are found by sorting
    integer keys; only rows sharing a key are then compared as strings, in row order.
    Returns None when every (group, string) is unique.
    """
    n = strings.size
    if n < 2:
        return None
    keys = combine(groups, hashes)
    ordered = np.sort(keys)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:
        return None
    candidates = np.flatnonzero(np.isin(keys, repeated))
    first_seen: dict[tuple[int, str], int] = {}
    for row, group, value in zip(candidates.tolist(), groups[candidates].tolist(),
                                 strings[candidates].tolist()):
        earlier = first_seen.setdefault((group, value), row)
        if earlier != row:
            return earlier, row
    return None


def readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr
