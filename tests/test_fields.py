"""Fields: title/name fields stored beside the body, and the mixture of field LMs."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from retrieval import Analyzer, Index
from retrieval.cli import main
from retrieval.errors import ParameterError
from retrieval.fields import (FieldedDocument, FieldWeights, file_title, heading_title,
                              html_title, name_text)
from retrieval.index.fields import FIELD_ARRAYS, field_key
from retrieval.index.lifecycle import add_documents, apply_changes, delete_documents
from retrieval.index.update import update
from retrieval.search import Searcher
from retrieval.search.fields import FieldSearcher
from retrieval.smoothing import Dirichlet, JelinekMercer

PLAIN = Analyzer("none", "none")


def hand_index() -> Index:
    return Index.build([FieldedDocument("d1", "cat dog", "cat"),
                        FieldedDocument("d2", "dog dog", "dog"),
                        FieldedDocument("d3", "cat bird", "")], analyzer=PLAIN)


def test_hand_calculation_three_documents():
    """μ = 2, λ_title = λ_body = 1/2. Body: |C| = 6, p(cat|C) = 1/3; title: |C_t| = 2,
    p(cat|C_t) = 1/2.
    d1: body (1 + 2/3)/(2 + 2) = 5/12, title (1 + 1)/(1 + 2) = 2/3 → 13/24;
    d3: body 5/12, no title (α = 1) 1/2 → 11/24; d2 holds no "cat": not a candidate."""
    same = {"title": Dirichlet(mu=2.0)}
    s = FieldSearcher(hand_index(), Dirichlet(mu=2.0), {"title": 1, "body": 1}, same)
    got = s.search("cat", k=10)
    assert [r.docid for r in got] == ["d1", "d3"]
    assert got[0].score == pytest.approx(math.log(13 / 24), abs=1e-14)
    assert got[1].score == pytest.approx(math.log(11 / 24), abs=1e-14)
    # d2 scored on request: body (0 + 2/3)/4 = 1/6, title (0 + 1)/3 = 1/3 → 1/4
    assert s.score_docs("cat", np.array([1]))[0] == pytest.approx(math.log(1 / 4), abs=1e-14)
    # body only: d1 and d3 tie at 5/12, broken by docid
    body = FieldSearcher(hand_index(), Dirichlet(mu=2.0), {"body": 1}).search("cat")
    assert [r.docid for r in body] == ["d1", "d3"]
    assert body[0].score == body[1].score == pytest.approx(math.log(5 / 12), abs=1e-14)


def test_title_match_outranks_body_only_match_when_weighted():
    docs = [FieldedDocument("a", "wombat notes", "wombat"),
            FieldedDocument("b", "wombat wombat notes", "other things"),
            FieldedDocument("c", "unrelated words here", "nothing")]
    ix = Index.build(docs, analyzer=PLAIN)
    body = FieldSearcher(ix, Dirichlet(mu=10.0), {"body": 1}).search("wombat")
    titled = FieldSearcher(ix, Dirichlet(mu=10.0), {"title": 0.6, "body": 0.4}).search("wombat")
    assert titled[0].score > titled[1].score
    assert body[0].docid == "b"
    assert titled[0].docid == "a"


def _oracle(docs, query, weights, smooth):
    """Σ_w q_w log Σ_f λ_f p_f(w|d) over every document, straight from the texts."""
    fields = {"body": [d.text for d in docs], "title": [d.title for d in docs],
              "name": [name_text(d.docid) for d in docs]}
    counts = {f: [PLAIN.term_counts(t) for t in texts] for f, texts in fields.items()}
    coll = {f: {} for f in fields}
    for f in fields:
        for c in counts[f]:
            for t, n in c.items():
                coll[f][t] = coll[f].get(t, 0) + n
    qc = PLAIN.term_counts(query)
    total = sum(qc.values())
    q = {t: n / total for t, n in qc.items()
         if sum(weights[f] * coll[f].get(t, 0) for f in fields) > 0}
    scores = []
    for i in range(len(docs)):
        score = 0.0
        for t, qw in q.items():
            p = 0.0
            for f in fields:
                size = sum(coll[f].values())
                pc = coll[f].get(t, 0) / size if size else 0.0
                c, dl = counts[f][i].get(t, 0), sum(counts[f][i].values())
                p += weights[f] * smooth(c, dl, pc)
            score += qw * math.log(p)
        scores.append(score)
    return q, scores


def _dirichlet(mu):
    return lambda c, dl, pc: (c + mu * pc) / (dl + mu)


def _jm(lam):
    return lambda c, dl, pc: pc if dl == 0 else (1 - lam) * c / dl + lam * pc


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("smoothing", ["dirichlet", "jm"])
def test_brute_force_oracle(seed, smoothing):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
    docs = []
    for i in range(40):
        body = " ".join(rng.choices(words, k=rng.randint(0, 12)))
        title = " ".join(rng.choices(words, k=rng.randint(0, 3)))
        name = rng.choice(words + ["x"]) + f"{i}.txt" if rng.random() < 0.5 else \
            rng.choice(words)
        docs.append(FieldedDocument(f"dir/{i:02d}/{name}", body, title))
    ix = Index.build(docs, analyzer=PLAIN)
    weights = {"title": rng.random(), "name": rng.random(), "body": rng.random()}
    total = sum(weights.values())
    weights = {f: w / total for f, w in weights.items()}
    model, smooth = (Dirichlet(mu=7.0), _dirichlet(7.0)) if smoothing == "dirichlet" \
        else (JelinekMercer(lam=0.3), _jm(0.3))
    s = FieldSearcher(ix, model, weights, {"title": model, "name": model})
    for query in ["alpha beta", "theta theta zeta x", "eta", "gamma unknownword"]:
        q, want = _oracle(docs, query, weights, smooth)
        got = s.score_docs(query, np.arange(len(docs)))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        ranked = s.search(query, k=len(docs))
        has = [any(t in PLAIN.term_counts(f) for t in q) for f in
               ((d.text + " " + d.title + " " + name_text(d.docid)) for d in docs)]
        number = {d.docid: i for i, d in enumerate(docs)}
        order = [number[r.docid] for r in ranked]
        assert sorted(order) == [i for i in range(len(docs)) if has[i]]
        for (a, ra), (b, rb) in zip(zip(order, ranked), zip(order[1:], ranked[1:])):
            assert want[a] >= want[b] - 1e-12  # the oracle's order, up to rounding
            assert ra.score > rb.score or (ra.score == rb.score and ra.docid < rb.docid)


def test_field_dirichlet_mu_scaled_by_mean_length():
    """Body lengths 2, 2, 2 (mean 2); title lengths 1, 1, 0 (mean 2/3): μ_title =
    μ · (2/3) / 2 = μ / 3. With μ = 3: μ_title = 1, so d1's title gives
    (1 + 1 · 1/2)/(1 + 1) = 3/4 and its body (1 + 3/3)/(2 + 3) = 2/5."""
    s = FieldSearcher(hand_index(), Dirichlet(mu=3.0), {"title": 1, "body": 1})
    assert s.fields_[0].model == Dirichlet(mu=1.0)
    assert s.fields_[1].model == Dirichlet(mu=3.0)
    got = s.score_docs("cat", np.array([0]))[0]
    assert got == pytest.approx(math.log(0.5 * 3 / 4 + 0.5 * 2 / 5), abs=1e-14)
    jm = FieldSearcher(hand_index(), JelinekMercer(lam=0.4), {"title": 1, "body": 1})
    assert jm.fields_[0].model == JelinekMercer(lam=0.4)
    with pytest.raises(ParameterError, match="smoothing model"):
        FieldSearcher(hand_index(), field_weights={"title": 1}, field_models={"title": 3})


def test_index_without_fields_is_unchanged():
    pairs = [("a", "some text here"), ("b", "more text"), ("c", "")]
    plain = Index.build(pairs)
    assert "fields" not in plain.manifest
    assert not any(k.startswith("field.") for k in plain.arrays)
    fielded = Index.build([FieldedDocument(d, t, "a title") for d, t in pairs])
    assert fielded.manifest["fields"] == ["title", "name"]
    for name, arr in plain.arrays.items():
        np.testing.assert_array_equal(fielded.arrays[name], arr)
    a, b = Searcher(plain), Searcher(fielded)
    assert a.search("text more", 3) == b.search("text more", 3)
    with pytest.raises(ParameterError, match="no 'title' field"):
        FieldSearcher(plain, field_weights={"title": 1})


def test_body_weight_one_equals_body_search():
    docs = [FieldedDocument(f"d{i}", t, "x") for i, t in
            enumerate(["a b c", "a a d", "c d e f", "b"])]
    ix = Index.build(docs)
    body = Searcher(ix).search("a d", 10)
    mixed = FieldSearcher(ix, field_weights={"body": 1}).search("a d", 10)
    assert [r.docid for r in body] == [r.docid for r in mixed]
    np.testing.assert_allclose([r.score for r in body], [r.score for r in mixed],
                               rtol=0, atol=1e-12)


def _field_arrays(ix):
    return {k: np.asarray(v) for k, v in ix.arrays.items() if k.startswith("field.")}


def test_add_delete_keep_fields_as_a_fresh_build(tmp_path):
    first = [FieldedDocument("x/one.md", "alpha beta", "Alpha"),
             FieldedDocument("x/two.md", "beta gamma", "Gamma title"),
             FieldedDocument("x/three.md", "gamma", "")]
    Index.build(first, analyzer=PLAIN).save(tmp_path / "ix")
    delete_documents(tmp_path / "ix", ["x/two.md"])
    add_documents(tmp_path / "ix", [("y/four.txt", "delta alpha"),
                                    FieldedDocument("y/five", "eps", "Five alpha")])
    got = Index.open(tmp_path / "ix")
    fresh = Index.build([first[0], first[2], FieldedDocument("y/four.txt", "delta alpha", ""),
                         FieldedDocument("y/five", "eps", "Five alpha")], analyzer=PLAIN)
    want = _field_arrays(fresh)
    have = _field_arrays(got)
    assert set(have) == set(want) == {field_key(f, a) for f in ("title", "name")
                                       for a in FIELD_ARRAYS}
    for k in want:
        np.testing.assert_array_equal(have[k], want[k], err_msg=k)
    in_memory = apply_changes(Index.build(first, analyzer=PLAIN), add=[], delete=["x/one.md"])
    assert in_memory.manifest["fields"] == ["title", "name"]
    assert len(in_memory.arrays[field_key("title", "doc_lengths")]) == 2


def test_update_rereads_titles(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.html").write_text("<html><title>Old name</title><p>body words</p></html>")
    (folder / "b.md").write_text("Heading here\n============\n\ntext\n")
    assert main(["index", str(folder), "-o", str(tmp_path / "ix")]) == 0
    ix = Index.open(tmp_path / "ix")
    s = FieldSearcher(ix, field_weights={"title": 1})
    assert [r.docid for r in s.search("heading")] == ["b.md"]
    (folder / "a.html").write_text("<html><title>Fresh heading</title><p>body</p></html>")
    update(tmp_path / "ix")
    s = FieldSearcher(Index.open(tmp_path / "ix"), field_weights={"title": 1})
    assert {r.docid for r in s.search("heading")} == {"a.html", "b.md"}
    assert s.search("old") == []


def test_titles_from_files():
    assert html_title("<html><head><TITLE>A &amp; B</TITLE></head>x") == "A & B"
    assert html_title("<p>no title</p>") == ""
    assert heading_title("intro\n\n## Second *level*  ##\ntext") == "Second *level*"
    assert heading_title("Title\n=====\n\nbody") == "Title"
    assert heading_title("=====\nTitle\n=====\n") == "Title"
    assert heading_title("plain text\nno heading") == ""
    assert file_title(".json", '{"title": "T", "text": "x"}') == "T"
    assert file_title(".json", "not json") == ""
    assert file_title(".py", "# comment") == ""
    assert name_text("a/b/argparse.py") == "argparse.py"


def test_field_weights_parsing():
    assert FieldWeights.parse("title=1,body=3") == FieldWeights(0.25, 0.0, 0.75)
    for bad, match in [("title", "name=weight"), ("title=x", "name=weight"),
                       ("head=1", "unknown field 'head'"), ("title=-1", ">= 0"),
                       ("title=0,body=0", "sum to 0"), ("body=1,body=2", "twice"),
                       ("title=inf", ">= 0")]:
        with pytest.raises(ParameterError, match=match):
            FieldWeights.parse(bad)


def test_cli_end_to_end_titles(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guide.html").write_text(
        "<html><head><title>Wombat guide</title></head><body><p>Feeding notes and "
        "other tips for keepers of animals.</p></body></html>")
    (folder / "notes.md").write_text("# Kangaroo notes\n\nA wombat wombat was seen near "
                                     "the kangaroo, and the wombat ran.\n")
    (folder / "other.txt").write_text("nothing about marsupials\n")
    assert main(["index", str(folder), "-o", str(tmp_path / "ix")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "ix"), "wombat", "--format", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["results"][0]["docid"] == "notes.md"
    assert main(["search", str(tmp_path / "ix"), "wombat", "--format", "json", "--mu", "10",
                 "--field-weights", "title=0.7,name=0,body=0.3"]) == 0
    fielded = json.loads(capsys.readouterr().out)
    assert fielded["results"][0]["docid"] == "guide.html"
    assert fielded["field_weights"] == {"title": 0.7, "name": 0.0, "body": 0.3}
    assert main(["search", str(tmp_path / "ix"), "kangaroo", "--field-weights",
                 "title=0.5,body=0.5"]) == 0
    assert "notes.md" in capsys.readouterr().out
    code = main(["search", str(tmp_path / "ix"), "wombat", "--field-weights", "head=1"])
    out, err = capsys.readouterr()
    assert code == 2 and "unknown field 'head'" in err and len(err.strip().splitlines()) == 1


def _script():
    import importlib.util
    from retrieval.paths import REPO_ROOT
    spec = importlib.util.spec_from_file_location(
        "choose_field_weights", REPO_ROOT / "scripts" / "choose_field_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, REPO_ROOT


def test_default_weights_are_the_recorded_choice():
    module, root = _script()
    recorded = json.loads((root / "results" / "fields" / "loco.json").read_text())
    from retrieval.fields import DEFAULT_FIELD_WEIGHTS
    assert DEFAULT_FIELD_WEIGHTS.title == pytest.approx(recorded["default_title_weight"])
    assert DEFAULT_FIELD_WEIGHTS.name == 0.0
    # the rule: the smallest weight within the tolerance of the best training mean
    table = {n: {lam: {"map": 0.3} for lam in module.TITLE_GRID} for n in ("a", "b")}
    table["a"][0.2]["map"] = 0.3005
    assert module.choose(table, ["a", "b"]) == 0.0
    table["b"][0.3]["map"] = 0.31
    assert module.choose(table, ["a", "b"]) == 0.3


@pytest.mark.collections
def test_smart_collections_have_titles(collections_dir):
    from retrieval.collections import load_collection
    from retrieval.fields import fielded_documents
    cran = load_collection("cranfield")
    docs = fielded_documents(cran)
    assert len(cran.titles) == len(cran.documents) == 1400
    assert docs[0].title and docs[0].text.startswith(docs[0].title.split("\n")[0])
    assert all(isinstance(d, FieldedDocument) for d in docs)


def test_benchmark_configuration_with_field_weights():
    from retrieval.benchmarking import Configuration, benchmark_collection
    from retrieval.collections.base import Collection
    from retrieval.records import Qrel, Query
    from retrieval.records import Document
    coll = Collection("tiny", [Document("1", "wombat notes\nabout burrows"),
                               Document("2", "notes\nwombat wombat burrows")],
                      [Query("q", "wombat")], [Qrel("q", "1", 1)],
                      titles={"1": "wombat notes", "2": "notes"})
    weights = FieldWeights.of({"title": 0.8, "body": 0.2})
    res = benchmark_collection(coll, [Configuration(Dirichlet(mu=10.0)),
                                      Configuration(Dirichlet(mu=10.0), None, weights)],
                               analyzer=PLAIN, k=10, measures=["map"])
    body, fielded = res.results
    assert body.mean["map"] == pytest.approx(0.5) and fielded.mean["map"] == 1.0
    assert "+fields(title=0.8,name=0,body=0.2)" in fielded.configuration.label


def test_damaged_field_manifest_is_a_clear_error(tmp_path):
    from retrieval.errors import IndexFormatError
    from retrieval.index.manifest import sealed
    Index.build([FieldedDocument("a", "x y", "t")]).save(tmp_path / "ix")
    manifest_file = tmp_path / "ix" / "manifest.json"
    good = json.loads(manifest_file.read_text())
    for change, match in [(lambda m: m.update(fields=["title", "../x"]), "unknown fields"),
                          (lambda m: m["arrays"].pop(field_key("name", "term_cf")),
                           "does not describe"),
                          (lambda m: m["arrays"][field_key("title", "doc_lengths")]
                           .update(shape=[5]), "does not fit 1 documents")]:
        bad = json.loads(json.dumps(good))
        change(bad)
        manifest_file.write_text(json.dumps(sealed(bad)))  # crafted, checksum consistent
        with pytest.raises(IndexFormatError, match=match):
            Index.open(tmp_path / "ix")


def test_folder_index_body_arrays_identical_with_and_without_fields(tmp_path, sample_dir):
    from retrieval.index.lifecycle import build_index
    with_fields, _ = build_index([sample_dir], tmp_path / "a")
    without, _ = build_index([sample_dir], tmp_path / "b", fields=False)
    assert "fields" not in without.manifest and with_fields.manifest["fields"]
    a, b = Index.open(tmp_path / "a"), Index.open(tmp_path / "b")
    assert set(b.arrays) == {k for k in a.arrays if not k.startswith("field.")}
    for name in b.arrays:
        np.testing.assert_array_equal(np.asarray(a.arrays[name]), np.asarray(b.arrays[name]))
    assert Searcher(a).search("information retrieval", 10) == \
        Searcher(b).search("information retrieval", 10)
