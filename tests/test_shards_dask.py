"""Search of a sharded index on a Dask LocalCluster (2 single-threaded worker processes):
the merged ranking equals the single index's, batches are shipped as few tasks, and a
worker killed mid-search makes its tasks retry on the other worker (complete, exact
results), while a cluster without workers gives a clear error, never a partial one."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the 'distributed' extra is absent")

from retrieval import Index, Searcher  # noqa: E402
from retrieval.feedback import make_feedback  # noqa: E402
from retrieval.shards import ShardedIndex  # noqa: E402
from retrieval.shards.distributed import DaskSearcher, DistributedSearchError  # noqa: E402

WORDS = [f"w{i}" for i in range(300)]


def corpus(n=600, seed=7):
    rng = random.Random(seed)
    return [(f"d{i:04d}", " ".join(rng.choice(WORDS[:rng.randint(10, 300)])
                                   for _ in range(rng.randint(5, 60)))) for i in range(n)]


def queries(n=400, seed=8):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) for _ in range(n)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    docs = corpus()
    path = tmp_path_factory.mktemp("dask") / "sh"
    ShardedIndex.build(docs, 4).save(path)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield Index.build(docs), path, client
    client.close()
    cluster.close()


def expected(single, qs, k, fb=None):
    s = Searcher(single)
    res = fb.batch_search_arrays(s, qs, k) if fb else s.batch_search_arrays(qs, k)
    return s.docids(res.doc_numbers), res.scores


@pytest.mark.slow
def test_dask_equals_single_and_batches(setup):
    single, path, client = setup
    qs = queries()
    ds = DaskSearcher(path, client=client, batch_size=100)
    got = ds.batch_search_arrays(qs, 10)
    ids, scores = expected(single, qs, 10)
    assert got.docids == ids and np.array_equal(got.scores, scores)
    fb = make_feedback("rm3")
    got = DaskSearcher(path, client=client, feedback=fb).batch_search_arrays(qs[:50], 10)
    ids, scores = expected(single, qs[:50], 10, fb)
    assert got.docids == ids and np.array_equal(got.scores, scores)


@pytest.mark.slow
def test_shards_built_on_the_cluster_equal_the_local_build(setup, tmp_path):
    import json
    from retrieval.reading import FolderReader
    from retrieval.shards.build import build_sharded
    _, _, client = setup
    (tmp_path / "c").mkdir()
    for i, (docid, text) in enumerate(corpus(150, seed=3)):
        (tmp_path / "c" / f"{docid}.txt").write_text(text, encoding="utf-8")
    with open(tmp_path / "c" / "more.jsonl", "w", encoding="utf-8") as fh:
        for docid, text in corpus(40, seed=4):
            fh.write(json.dumps({"id": "j" + docid, "text": text}) + "\n")
    local = ShardedIndex.build(FolderReader([tmp_path / "c"]).documents(), 3)
    local.save(tmp_path / "local")
    local = ShardedIndex.open(tmp_path / "local")
    remote = build_sharded([tmp_path / "c"], tmp_path / "remote", 3, client=client)
    assert remote.num_docs == local.num_docs == 190
    for a, b in zip(local.shards, remote.shards):
        assert sorted(a.arrays) == sorted(b.arrays)
        for name in a.arrays:
            assert np.array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name])), name
    for name in ("term_cf", "term_df", "vocab_bytes"):
        assert np.array_equal(getattr(local.stats, name), getattr(remote.stats, name))
    qs = queries(60)
    from retrieval.shards import ShardedSearcher
    x = ShardedSearcher(local).batch_search_arrays(qs, 10)
    y = ShardedSearcher(remote).batch_search_arrays(qs, 10)
    assert x.docids == y.docids and np.array_equal(x.scores, y.scores)
    # a failing task (a repeated id) publishes nothing and leaves no shard behind
    with open(tmp_path / "c" / "dup.jsonl", "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "jd0001", "text": "w1 w2"}) + "\n")
    from retrieval.errors import InputError
    with pytest.raises(InputError, match="jd0001"):
        build_sharded([tmp_path / "c"], tmp_path / "bad", 2, client=client)
    assert not (tmp_path / "bad" / "shards.json").exists()
    assert not [p for p in (tmp_path / "bad").iterdir() if p.name.startswith("s")]


@pytest.mark.slow
def test_killed_worker_retries_on_the_other(setup):
    single, path, client = setup
    qs = queries(3000, seed=9)
    ids, scores = expected(single, qs, 20)
    pids = client.run(os.getpid)            # worker address -> pid
    victim = sorted(pids.values())[0]
    before = set(pids)
    ds = DaskSearcher(path, client=client, batch_size=50)
    killed_at = []

    def kill():
        os.kill(victim, signal.SIGKILL)
        killed_at.append(time.perf_counter())
    killer = threading.Timer(0.3, kill)
    killer.start()
    got = ds.batch_search_arrays(qs, 20)
    finished_at = time.perf_counter()
    killer.join()
    assert killed_at and killed_at[0] < finished_at   # the kill landed mid-search
    assert got.docids == ids and np.array_equal(got.scores, scores)   # complete, exact
    deadline = time.time() + 30
    while time.time() < deadline and set(client.scheduler_info()["workers"]) == before:
        time.sleep(0.2)
    assert set(client.scheduler_info()["workers"]) != before  # the worker did die


@pytest.mark.slow
def test_no_workers_is_a_clear_error(setup, tmp_path):
    _, path, _ = setup
    with distributed.LocalCluster(n_workers=0, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        ds = DaskSearcher(path, client=client, timeout=5)
        with pytest.raises(DistributedSearchError, match="no workers"):
            ds.batch_search_arrays(["w1"], 10)


@pytest.mark.slow
def test_cli_index_shards_on_a_local_cluster(tmp_path, capsys):
    from retrieval.cli.index import main
    (tmp_path / "c").mkdir()
    for docid, text in corpus(60, seed=5):
        (tmp_path / "c" / f"{docid}.txt").write_text(text, encoding="utf-8")
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "a"), "--shards", "2", "-q"]) == 0
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "b"), "--shards", "2",
                 "--cluster", "local", "--workers", "1", "--format", "json"]) == 0
    a, b = ShardedIndex.open(tmp_path / "a"), ShardedIndex.open(tmp_path / "b")
    for x, y in zip(a.shards, b.shards):
        for name in x.arrays:
            assert np.array_equal(np.asarray(x.arrays[name]), np.asarray(y.arrays[name]))
    capsys.readouterr()
    assert main([str(tmp_path / "c"), "-o", str(tmp_path / "d"), "--cluster", "local"]) == 2
    assert "--shards" in capsys.readouterr().err
