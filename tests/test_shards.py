"""Sharded indexes: the merged top k equals the single index's ranking exactly (same
documents, same float64 scores, same tie order) for every smoothing model, with
feedback, after saving/opening, after joining, and on the shared collections."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from retrieval import Index, Searcher
from retrieval.errors import InputError, ParameterError
from retrieval.feedback import FEEDBACK, make_feedback
from retrieval.search import Thresholds
from retrieval.shards import (SHARDS_FILE, ShardedIndex, ShardedSearcher, merge_statistics,
                              shard_of)
from retrieval.smoothing import MODELS, Dirichlet

WORDS = [f"w{i}" for i in range(80)] + ["glacier", "ice", "river", "ünïcode", "日本"]


def random_corpus(seed: int, n: int = 150):
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        top = rng.randint(3, len(WORDS))
        text = " ".join(rng.choice(WORDS[:top]) for _ in range(rng.randint(0, 40)))
        docs.append((f"doc-{rng.randint(0, 10**6)}-{i}", text))
    # exact duplicates: equal scores, so the tie rule (docid ascending) decides
    docs += [(f"dup-{j}", docs[3][1]) for j in range(4)]
    return docs


def random_queries(seed: int, n: int = 25):
    rng = random.Random(seed + 1000)
    qs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5))) for _ in range(n)]
    return qs + ["zzz-absent glacier", "absentword"]


def flat(searcher: Searcher, res):
    return searcher.docids(res.doc_numbers), res.scores, res.query_index


def assert_same(single_res, single_searcher, sharded_res):
    ids, scores, q = flat(single_searcher, single_res)
    assert sharded_res.docids == ids
    assert np.array_equal(sharded_res.query_index, q)
    assert np.array_equal(sharded_res.scores, scores)   # bit-identical


def test_hand_case_two_shards():
    docs = [("a", "glacier ice"), ("b", "glacier glacier river"), ("c", "river")]
    single = Index.build(docs)
    sharded = ShardedIndex.from_indexes([Index.build(docs[:1]), Index.build(docs[1:])])
    st = sharded.stats
    assert st.num_docs == 3 and st.num_tokens == 6
    assert st.vocabulary.all() == ["glacier", "ice", "river"]
    assert st.term_cf.tolist() == [3, 1, 2] and st.term_df.tolist() == [2, 1, 2]
    # shard 0 knows no "river", yet scores with p(river|C) = 2/6
    view = sharded.views[0]
    assert view.p_collection.tolist() == [0.5, 1 / 6, 2 / 6]
    dirichlet = Dirichlet(mu=1000.0)
    got = ShardedSearcher(sharded, dirichlet).search("glacier river", k=3)
    want = Searcher(single, dirichlet).search("glacier river", k=3)
    assert got == want
    # the default model (resolved from every shard's lengths) is the single index's too
    assert ShardedSearcher(sharded).search("glacier river", k=3) == \
        Searcher(single).search("glacier river", k=3)
    # by hand, Dirichlet μ=1000, doc a: 0.5·log((1+500)/1002)+0.5·log(1000/1002·2/6)
    mu = 1000.0
    pa = 0.5 * np.log((1 + mu * 0.5) / (2 + mu)) + 0.5 * np.log(mu / (2 + mu) * 2 / 6)
    assert [r.docid for r in got] == ["b", "c", "a"]
    assert got[2].score == pytest.approx(pa, rel=1e-12)


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("n_shards", [1, 2, 5])
def test_every_model_equals_single(model_name, n_shards):
    docs = random_corpus(n_shards)
    queries = random_queries(n_shards)
    single = Index.build(docs)
    sharded = ShardedIndex.build(docs, n_shards)
    model = MODELS[model_name]()
    s1 = Searcher(single, model)
    for k in (1, 7, 1000):
        assert_same(s1.batch_search_arrays(queries, k), s1,
                    ShardedSearcher(sharded, model).batch_search_arrays(queries, k))


@pytest.mark.parametrize("options", [
    {"unknown_terms": "indri"}, {"candidates": "all"}, {"pruning": True},
    {"pruning": False, "compiled": False},
    {"thresholds": Thresholds(acc_min_docs=1, kernel_min_docs=10**12)}])
def test_searcher_options_equal_single(options):
    docs = random_corpus(11)
    queries = random_queries(11)
    single = Index.build(docs)
    sharded = ShardedIndex.build(docs, 3)
    s1 = Searcher(single, **options)
    assert_same(s1.batch_search_arrays(queries, 10), s1,
                ShardedSearcher(sharded, **options).batch_search_arrays(queries, 10))


@pytest.mark.parametrize("name", sorted(FEEDBACK))
def test_feedback_equals_single(name):
    docs = random_corpus(5, n=200)
    queries = random_queries(5)
    single = Index.build(docs)
    sharded = ShardedIndex.build(docs, 3)
    fb = make_feedback(name)
    s1 = Searcher(single)
    want = fb.batch_search_arrays(s1, queries, 20)
    got = ShardedSearcher(sharded, feedback=fb).batch_search_arrays(queries, 20)
    assert_same(want, s1, got)


def test_save_open_join_roundtrip(tmp_path):
    docs = random_corpus(3)
    queries = random_queries(3)
    single = Index.build(docs)
    s1 = Searcher(single)
    want = s1.batch_search_arrays(queries, 10)
    ShardedIndex.build(docs, 3).save(tmp_path / "sh")
    opened = ShardedIndex.open(tmp_path / "sh")
    assert opened.num_shards == 3 and opened.num_docs == len(docs)
    assert_same(want, s1, ShardedSearcher(opened).batch_search_arrays(queries, 10))
    # shards built separately (e.g. one per machine), then joined
    parts = [docs[:50], docs[50:90], docs[90:]]
    paths = []
    for i, part in enumerate(parts):
        paths.append(Index.build(part).save(tmp_path / f"part{i}"))
    joined = ShardedIndex.join(paths)
    joined.save(tmp_path / "joined")
    reopened = ShardedIndex.open(tmp_path / "joined")
    assert reopened.routing == "joined"
    assert_same(want, s1, ShardedSearcher(reopened).batch_search_arrays(queries, 10))
    # the statistics are the single index's
    assert reopened.stats.term_cf.tolist() == single.arrays["term_cf"].tolist()
    assert reopened.stats.term_df.tolist() == single.arrays["term_df"].tolist()
    assert reopened.stats.num_tokens == single.num_tokens


def test_join_rejects_shared_docids_and_mixed_analyzers(tmp_path):
    a = Index.build([("x", "glacier")]).save(tmp_path / "a")
    b = Index.build([("x", "river")]).save(tmp_path / "b")
    with pytest.raises(InputError, match="'x' is in both"):
        ShardedIndex.join([a, b])
    from retrieval import Analyzer
    c = Index.build([("y", "river")], analyzer=Analyzer(stemmer="none")).save(tmp_path / "c")
    with pytest.raises(InputError, match="different analyzers"):
        ShardedIndex.join([a, c])


def test_open_errors(tmp_path):
    with pytest.raises(InputError, match="not a sharded index"):
        ShardedIndex.open(tmp_path)
    (tmp_path / SHARDS_FILE).write_text("{not json")
    from retrieval.errors import IndexFormatError
    with pytest.raises(IndexFormatError, match=SHARDS_FILE):
        ShardedIndex.open(tmp_path)
    with pytest.raises(ParameterError):
        ShardedSearcher("not an index")
    with pytest.raises(InputError, match="whole number"):
        ShardedIndex.build([("a", "b")], 0)


def test_republish_keeps_unchanged_shards_and_old_state_readable(tmp_path):
    docs = random_corpus(4)
    sh = ShardedIndex.build(docs, 2)
    sh.save(tmp_path / "sh")
    top1 = json.loads((tmp_path / "sh" / SHARDS_FILE).read_text())
    old = ShardedIndex.open(tmp_path / "sh")
    sh.save(tmp_path / "sh", overwrite=True)
    top2 = json.loads((tmp_path / "sh" / SHARDS_FILE).read_text())
    assert top2["generation"] == top1["generation"] + 1
    # the previous generation's folders are kept for readers that opened it
    assert all((tmp_path / "sh" / n).is_dir() for n in top1["shards"] + [top1["stats"]])
    assert ShardedSearcher(old).search("glacier", 3) == \
        ShardedSearcher(ShardedIndex.open(tmp_path / "sh")).search("glacier", 3)
    with pytest.raises(InputError, match="already holds"):
        sh.save(tmp_path / "sh")


def test_routing_is_stable():
    assert [shard_of(f"d{i}", 4) for i in range(8)] == \
        [shard_of(f"d{i}", 4) for i in range(8)]
    assert {shard_of(f"d{i}", 4) for i in range(200)} == {0, 1, 2, 3}
    stats, maps = merge_statistics([Index.build([("a", "glacier ice")]), Index.build([("b", "ice river")])])
    assert maps[0].tolist() == [0, 1] and maps[1].tolist() == [1, 2]


def test_sample_corpus(sample_dir):
    from retrieval.collections import load_collection
    col = load_collection("sample")
    docs = [(d.docid, d.text) for d in col.documents]
    queries = [q.text for q in col.queries] or ["how do glaciers move"]
    single = Index.build(docs)
    s1 = Searcher(single)
    assert_same(s1.batch_search_arrays(queries, 10), s1,
                ShardedSearcher(ShardedIndex.build(docs, 4)).batch_search_arrays(queries, 10))


@pytest.mark.collections
@pytest.mark.slow
@pytest.mark.parametrize("name", ["cranfield", "med"])
def test_shared_collections_every_model_and_rm3(collections_dir, name):
    from retrieval.collections import load_collection
    col = load_collection(name, root=collections_dir)
    docs = [(d.docid, d.text) for d in col.documents]
    queries = [q.text for q in col.queries]
    single = Index.build(docs)
    sharded = ShardedIndex.build(docs, 3)
    for model_name, cls in sorted(MODELS.items()):
        s1 = Searcher(single, cls())
        assert_same(s1.batch_search_arrays(queries, 100), s1,
                    ShardedSearcher(sharded, cls()).batch_search_arrays(queries, 100))
    fb = make_feedback("rm3")
    s1 = Searcher(single)
    assert_same(fb.batch_search_arrays(s1, queries, 100), s1,
                ShardedSearcher(sharded, feedback=fb).batch_search_arrays(queries, 100))


def test_cli_index_shards_join_and_search(tmp_path, sample_dir, capsys):
    from retrieval.cli import index as cli_index
    from retrieval.cli import search as cli_search
    docs = str(sample_dir / "docs") if (sample_dir / "docs").is_dir() else str(sample_dir)
    assert cli_index.main([docs, "-o", str(tmp_path / "one"), "-q"]) == 0
    capsys.readouterr()
    assert cli_index.main([docs, "-o", str(tmp_path / "sh"), "--shards", "3", "-q",
                           "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["shards"] == 3
    runs = {}
    for name in ("one", "sh"):
        for fb in ("none", "rm3"):
            capsys.readouterr()
            assert cli_search.main([str(tmp_path / name), "glacier ice movement", "-k", "20",
                                    "--format", "trec", "--feedback", fb]) == 0
            runs[name, fb] = capsys.readouterr().out
    assert runs["one", "none"] == runs["sh", "none"] and runs["one", "none"].count("\n") == 16
    assert runs["one", "rm3"] == runs["sh", "rm3"]
    # join the single index with another one built separately
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "extra-1", "text": "glacier glacier crevasse"}\n')
    assert cli_index.main([str(other), "-o", str(tmp_path / "two"), "-q"]) == 0
    assert cli_index.main([str(tmp_path / "one"), str(tmp_path / "two"), "--join", "-o",
                           str(tmp_path / "joined"), "-q"]) == 0
    capsys.readouterr()
    assert cli_search.main([str(tmp_path / "joined"), "crevasse", "--format", "json",
                            "--feedback", "none"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["docid"] == "extra-1"
    # mistakes: one line, exit 2
    assert cli_search.main([str(tmp_path / "one"), "glacier", "--scheduler", "tcp://h:1"]) == 2
    assert "not a sharded index" in capsys.readouterr().err
    assert cli_search.main([str(tmp_path / "sh"), "glacier", "--explain"]) == 2
    assert "--explain" in capsys.readouterr().err
    assert cli_index.main([docs, "-o", str(tmp_path / "sh"), "--shards", "2", "-q"]) == 2
    assert "already holds a sharded index" in capsys.readouterr().err


def _sequence_check(tmp_path, n_shards, seed):
    from retrieval.shards.changes import change_sharded
    rng = random.Random(seed)
    docs = dict(random_corpus(seed, n=120))
    path = ShardedIndex.build(list(docs.items()), n_shards).save(tmp_path / f"s{seed}")
    queries = random_queries(seed)
    for step in range(4):
        ids = sorted(docs)
        gone = rng.sample(ids, 10)
        new = [(f"new-{step}-{j}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))))
               for j in range(12)]
        replaced = [(d, "glacier ice " * rng.randint(1, 4)) for d in rng.sample(ids, 3)
                    if d not in gone]
        change_sharded(path, add=new + replaced, delete=gone, replace=True)
        for d in gone:
            del docs[d]
        docs.update(dict(new + replaced))
        single = Index.build(list(docs.items()))
        sharded = ShardedIndex.open(path)
        assert sharded.num_docs == len(docs)
        assert sharded.stats.term_cf.tolist() == single.arrays["term_cf"].tolist()
        assert sharded.stats.num_tokens == single.num_tokens
        for cls in MODELS.values():
            s1 = Searcher(single, cls())
            assert_same(s1.batch_search_arrays(queries, 15), s1,
                        ShardedSearcher(sharded, cls()).batch_search_arrays(queries, 15))


@pytest.mark.parametrize("n_shards,seed", [(2, 21), (4, 22)])
def test_add_delete_replace_sequences_equal_single(tmp_path, n_shards, seed):
    _sequence_check(tmp_path, n_shards, seed)


def test_change_errors_write_nothing(tmp_path):
    from retrieval.shards.changes import change_sharded
    path = ShardedIndex.build([("a", "glacier"), ("b", "river")], 2).save(tmp_path / "s")
    before = (path / SHARDS_FILE).read_text()
    with pytest.raises(InputError, match="already in"):
        change_sharded(path, add=[("a", "ice")])
    with pytest.raises(InputError, match="no document 'zz'"):
        change_sharded(path, delete=["zz"])
    assert (path / SHARDS_FILE).read_text() == before
    change_sharded(path, delete=["zz"], missing_ok=True)


def test_crash_before_publication_leaves_old_state(tmp_path, monkeypatch):
    """A writer killed after writing the new shard folders but before replacing
    shards.json: readers see exactly the old state, and the next change succeeds."""
    from retrieval.shards import store
    from retrieval.shards.changes import change_sharded
    docs = random_corpus(9, n=60)
    path = ShardedIndex.build(docs, 3).save(tmp_path / "s")
    queries = random_queries(9)
    want = ShardedSearcher(ShardedIndex.open(path)).batch_search_arrays(queries, 10)
    real = os.replace

    def crash(src, dst, *a, **kw):
        if str(dst).endswith(SHARDS_FILE):
            raise KeyboardInterrupt("killed before publication")
        return real(src, dst, *a, **kw)
    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        change_sharded(path, add=[(f"x{i}", "glacier glacier ice") for i in range(20)],
                       delete=[docs[0][0], docs[1][0]])
    monkeypatch.setattr(store.os, "replace", real)
    got = ShardedSearcher(ShardedIndex.open(path)).batch_search_arrays(queries, 10)
    assert got.docids == want.docids and np.array_equal(got.scores, want.scores)
    assert ShardedIndex.open(path).num_docs == len(docs)
    change_sharded(path, add=[("y", "glacier")])
    assert ShardedIndex.open(path).num_docs == len(docs) + 1


def test_a_build_killed_before_publishing_can_be_built_into_again(tmp_path):
    from retrieval.shards import ShardedIndex
    out = tmp_path / "sh"
    (out / "s000-g000001").mkdir(parents=True)
    (out / "s000-g000001" / "manifest.json").write_text("{}")
    (out / "lock").write_text("")
    ShardedIndex.build([("a", "glacier ice"), ("b", "river")], 2).save(out)
    assert ShardedIndex.open(out).num_docs == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a sharded index"):
        ShardedIndex.build([("a", "glacier")], 1).save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
