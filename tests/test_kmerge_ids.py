"""The id-order merge of a segmented build (retrieval.index.kmerge.docid_order): the
vectorised block merge against the heap merge and against Python's sort of the ids."""

from __future__ import annotations

import random

import numpy as np
import pytest

from retrieval.errors import InputError
from retrieval.index import kmerge


def segment(ids: list[str]) -> dict:
    """A segment's id arrays (docid_sorted and the packed sorted ids), as a build
    writes them."""
    enc = [i.encode("utf-8") for i in ids]
    off = np.zeros(len(enc) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in enc], out=off[1:])
    arrays = {"docid_offsets": off,
              "docid_bytes": np.frombuffer(b"".join(enc), dtype=np.uint8),
              "docid_sorted": np.array(sorted(range(len(ids)), key=ids.__getitem__),
                                       dtype=np.int32)}
    arrays.update(kmerge.sorted_ids(arrays))
    return arrays


def expected_order(segments: list[list[str]]) -> np.ndarray:
    flat = [i for ids in segments for i in ids]
    return np.array(sorted(range(len(flat)), key=flat.__getitem__), dtype=np.int32)


def random_ids(rng: random.Random, n: int, tag: int) -> list[str]:
    """Unique ids with shared prefixes, several lengths and multi-byte characters (the
    order of UTF-8 bytes must be the order of code points)."""
    alphabet = ["a", "b", "z", "é", "ü", "中", "😀", "-", "0", "9", "A"]
    out = set()
    while len(out) < n:
        stem = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        out.add(f"{stem}{tag}.{rng.randint(0, 10**6)}")
    ids = sorted(out)
    rng.shuffle(ids)
    return ids


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_merge_equals_sorted_and_heap_merge(seed):
    rng = random.Random(seed)
    # segments big enough for several chunks (ID_CHUNK ids each) and a few tiny ones
    sizes = [rng.choice([0, 1, 7, kmerge.ID_CHUNK + 5, 2 * kmerge.ID_CHUNK + 1])
             for _ in range(rng.randint(1, 5))]
    segments = [random_ids(rng, n, s) for s, n in enumerate(sizes)]
    parts = [segment(ids) for ids in segments]
    order, rank = kmerge.docid_order(parts)
    want = expected_order(segments)
    assert np.array_equal(order, want)
    assert np.array_equal(rank[order], np.arange(len(order)))
    shifts = np.cumsum([0] + sizes).tolist()
    assert np.array_equal(kmerge.merged_id_order(parts, shifts), want)
    assert np.array_equal(kmerge.heap_id_order(parts, shifts), want)


@pytest.mark.parametrize("odd", ["with\x00nul", "x" * (kmerge.MAX_KEY_BYTES + 1)])
def test_ids_fixed_width_keys_cannot_hold_take_the_heap_merge(odd):
    """b"a\\0" would compare equal to b"a" as a numpy S key, and very long ids would make
    wide blocks: both go to the heap merge, with the same order as sorted()."""
    segments = [["a", odd, "b"], ["with", "a\x00", "xx"]]
    parts = [segment(ids) for ids in segments]
    assert kmerge.merged_id_order(parts, [0, 3]) is None
    order, _ = kmerge.docid_order(parts)
    assert np.array_equal(order, expected_order(segments))


@pytest.mark.parametrize("where", ["first", "chunk_end", "last"])
def test_id_in_two_segments_is_an_error_naming_it(where):
    """An id repeated across segments, wherever it falls in the other segment's chunks
    (its first id, the last id of a chunk, its last id)."""
    one = [f"d{i:06d}" for i in range(kmerge.ID_CHUNK * 2)]
    two = [f"e{i:06d}" for i in range(50)]
    repeated = {"first": one[0], "chunk_end": one[kmerge.ID_CHUNK - 1], "last": one[-1]}[where]
    two.append(repeated)
    parts = [segment(one), segment(two)]
    with pytest.raises(InputError, match=f"document id '{repeated}' appears twice"):
        kmerge.docid_order(parts)
    with pytest.raises(InputError, match=f"document id '{repeated}' appears twice"):
        kmerge.heap_id_order(parts, [0, len(one)])
