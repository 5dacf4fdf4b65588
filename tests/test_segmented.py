"""Segmented builds in bounded memory give the arrays of one build, bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from retrieval import Index, Searcher
from retrieval.errors import InputError
from retrieval.index.layout import CORE_ARRAYS, TEXT_ARRAYS
from retrieval.segmented import build_segmented


def corpus(seed, n=230):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(150)] + ["glacier", "ünïcode"]
    return [(f"id{rng.randint(0, 10**6)}-{i}",
             " ".join(rng.choice(words[:rng.randint(3, 152)]) for _ in range(rng.randint(0, 50))))
            for i in range(n)]


@pytest.mark.parametrize("segment_docs", [1000, 100, 37, 1])
def test_segmented_arrays_identical_to_one_build(tmp_path, segment_docs):
    docs = corpus(segment_docs, n=230 if segment_docs > 1 else 25)
    one = Index.build(docs).save(tmp_path / "one")
    seg = build_segmented(docs, tmp_path / "seg", segment_docs=segment_docs)
    a, b = Index.open(one), Index.open(seg)
    for name in CORE_ARRAYS + TEXT_ARRAYS:
        assert a.arrays[name].dtype == b.arrays[name].dtype, name
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert a.manifest["counts"] == b.manifest["counts"]
    qs = ["glacier w1 w2", "w7", "ünïcode w100"]
    assert Searcher(a).batch_search(qs, 20) == Searcher(b).batch_search(qs, 20)


def test_segmented_errors(tmp_path):
    with pytest.raises(InputError, match="segment_docs"):
        build_segmented([("a", "b")], tmp_path / "x", segment_docs=0)
    with pytest.raises(InputError, match="'a'"):
        build_segmented([("a", "glacier"), ("b", "ice"), ("a", "river")], tmp_path / "y",
                        segment_docs=2)
