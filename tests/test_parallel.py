"""jobs > 1 (forked workers, or threads) gives exactly the serial results, for building
and search."""

from __future__ import annotations

import random

import numpy as np
import pytest

from retrieval import Analyzer, Dirichlet, Index, IndexBuilder, ParameterError, Searcher
from retrieval.index import counting

WORDS = ["glacier", "glaciers", "moving", "moves", "the", "ice", "café", "rock", "sea",
         "river", "of", "and", "sediment", "flow", "flows", "2024"]


def corpus(n, seed=3):
    rng = random.Random(seed)
    return [(f"d{i:04d}", " ".join(rng.choices(WORDS, k=rng.randint(0, 30)))) for i in range(n)]


@pytest.mark.parametrize("store_text", [True, False])
def test_parallel_build_is_identical(monkeypatch, store_text):
    monkeypatch.setattr(counting, "CHUNK_DOCS", 37)  # many chunks, uneven end
    docs = corpus(500)
    built = []
    for jobs in (1, 2):
        b = IndexBuilder(Analyzer("smart", "snowball"), store_text=store_text)
        b.add_documents(docs, jobs=jobs)
        built.append(b.finish())
    serial, parallel = built
    assert serial.arrays.keys() == parallel.arrays.keys()
    for name in serial.arrays:
        assert np.array_equal(serial.arrays[name], parallel.arrays[name]), name


def test_parallel_build_reports_duplicates_and_bad_jobs():
    with pytest.raises(Exception, match="appears twice"):
        IndexBuilder().add_documents([("a", "x"), ("a", "y")], jobs=2)
    with pytest.raises(ParameterError, match="jobs"):
        IndexBuilder().add_documents([("a", "x")], jobs=0)


@pytest.mark.parametrize("compiled", [False, True])
def test_parallel_search_is_identical(compiled):
    """jobs=2: forked workers (no kernels) or threads (kernels, which release the GIL)."""
    if compiled:
        pytest.importorskip("numba", reason="numba is not installed: no threaded path")
    index = Index.build(corpus(800))
    queries = [" ".join(random.Random(i).choices(WORDS, k=3)) for i in range(60)]
    searcher = Searcher(index, Dirichlet(mu=300), compiled=compiled)
    for k in (1, 10, 1000):
        serial = searcher.batch_search_arrays(queries, k)
        parallel = searcher.batch_search_arrays(queries, k, jobs=2)
        for a, b in zip(serial, parallel):
            assert np.array_equal(a, b)
    with pytest.raises(ParameterError, match="jobs"):
        searcher.batch_search_arrays(queries, 10, jobs=0)
