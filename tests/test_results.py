"""Columnar results (retrieval.results): the same rankings as batch_search, no object per
result until one is read."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import Dirichlet, Index, Searcher, SearchResult
from retrieval.results import QueryResults, Results, columnar, docid_table
from retrieval.search import BatchResult

DOCS = [("a", "glacier ice glacier"), ("b", "river ice"), ("ç/é", "glacier river delta"),
        ("d", "ice"), ("e", "mountain lake")]


@pytest.fixture(scope="module")
def index():
    return Index.build(DOCS)


@pytest.fixture(scope="module", params=[True, False], ids=["compiled", "numpy"])
def searcher(index, request):
    return Searcher(index, Dirichlet(mu=10), compiled=request.param)


def test_hand_made_batch(index):
    docs = np.array([2, 0, 4], dtype=np.int64)
    res = columnar(BatchResult(np.array([0, 0, 2]), docs, np.array([-1.0, -2.0, -3.5])),
                   index, n_queries=4)
    assert len(res) == 4
    assert res.ptr.tolist() == [0, 2, 2, 3, 3]
    assert res.docids.tolist() == ["ç/é", "a", "e"]
    assert res.ranks.tolist() == [1, 2, 1]
    assert res[0] == [SearchResult(1, "ç/é", -1.0), SearchResult(2, "a", -2.0)]
    assert res[0][-1] == SearchResult(2, "a", -2.0) and res[0][:1] == [res[0][0]]
    assert list(res[1]) == [] and len(res[3]) == 0 and not res[3]
    assert res[-2] == [SearchResult(1, "e", -3.5)]
    assert res.to_lists() == [[SearchResult(1, "ç/é", -1.0), SearchResult(2, "a", -2.0)],
                              [], [SearchResult(1, "e", -3.5)], []]
    with pytest.raises(IndexError):
        res[4]
    with pytest.raises(IndexError):
        res[0][2]
    with pytest.raises(ValueError):
        res.scores[0] = 1.0
    docs[0] = 1                      # the caller's arrays stay writable and are not copied
    assert res.doc_numbers[0] == 1


def test_default_query_count_and_errors(index):
    res = columnar(BatchResult(np.array([1]), np.array([3]), np.array([-1.0])), index)
    assert len(res) == 2 and res[1] == [SearchResult(1, "d", -1.0)]
    assert len(columnar(BatchResult(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                    np.zeros(0)), index)) == 0
    with pytest.raises(ValueError, match="one length"):
        columnar(BatchResult(np.array([0]), np.array([0, 1]), np.array([1.0])), index)
    with pytest.raises(ValueError, match="do not fit"):
        columnar(BatchResult(np.array([3]), np.array([0]), np.array([1.0])), index, 2)


@pytest.mark.parametrize("k", [1, 2, 10])
def test_equal_to_batch_search(searcher, index, k):
    queries = ["glacier", "ice river", "nothing here", "delta ice glacier", "zzz"]
    expected = searcher.batch_search(queries, k)
    res = columnar(searcher.batch_search_arrays(queries, k), index, len(queries))
    assert isinstance(res, Results) and isinstance(res[0], QueryResults)
    assert res == expected and res.to_lists() == expected
    assert [list(q) for q in res] == expected
    assert [searcher.search(q, k) for q in queries] == [list(q) for q in res]


def test_docid_table_once_per_index(index):
    table = docid_table(index)
    assert table.tolist() == [d for d, _ in DOCS]
    assert docid_table(index) is table
    assert docid_table(Index.build(DOCS)) is not table


def test_sample_corpus(sample_dir):
    from retrieval import FolderReader
    index = Index.build(FolderReader([sample_dir]))
    searcher = Searcher(index)
    queries = ["the", "retrieval model", "language", "xyzzy"]
    for k in (1, 5, 1000):
        res = columnar(searcher.batch_search_arrays(queries, k), index, len(queries))
        assert res == searcher.batch_search(queries, k)


def test_pickle_carries_docids_not_the_table(index):
    import pickle
    res = columnar(BatchResult(np.array([0]), np.array([4]), np.array([-1.0])), index, 1)
    back = pickle.loads(pickle.dumps(res))
    assert back == res and back.docids.tolist() == ["e"]
    assert back._table is None and len(pickle.dumps(res)) < 2000
