"""The JSON API of ``retrieval serve`` through Starlette's test client: every endpoint,
every error code, and the switch to a new generation while a request is in flight."""

from __future__ import annotations

import json
import shutil
import threading
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the 'serve' extra (starlette) is not installed")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")

with warnings.catch_warnings():   # Starlette 1.x: "use httpx2"; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from retrieval import Index, JelinekMercer, Searcher  # noqa: E402
from retrieval.feedback import make_feedback  # noqa: E402
from retrieval.lifecycle import build_index, update  # noqa: E402
from retrieval.serve import Limits, ServedIndex, create_app  # noqa: E402
from retrieval.serve import api, generations  # noqa: E402

SCRIPT_DOC = ("Glacier notes <script>window.__pwned = 1; document.title = 'pwned'</script>\n"
              "<img src=x onerror=\"window.__pwned = 2\"> glacier ice &amp; <b>bold</b>\n")


def make_index(folder: Path, sample_dir: Path) -> tuple[Path, Path]:
    """The sample corpus plus a document holding markup, copied to ``folder`` and
    indexed: (documents folder, index path)."""
    docs = folder / "docs"
    shutil.copytree(sample_dir / "docs", docs)
    (docs / "evil.txt").write_text(SCRIPT_DOC, encoding="utf-8")
    out = folder / "notes.idx"
    build_index([docs], out)
    return docs, out


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory, sample_dir) -> Path:
    """An index the read-only tests share."""
    return make_index(tmp_path_factory.mktemp("serve"), sample_dir)[1]


@pytest.fixture()
def fresh(tmp_path, sample_dir) -> tuple[Path, Path]:
    """A corpus and index of the test's own (for tests that change them)."""
    return make_index(tmp_path, sample_dir)


@pytest.fixture(scope="module")
def client(shared_index):
    app = create_app({"notes": ServedIndex("notes", shared_index, warm=False)},
                     Limits(max_query_chars=200, max_k=50, max_batch=5, max_body_bytes=4096))
    return TestClient(app, raise_server_exceptions=False)


def error_of(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    message = body["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# -- health and info ----------------------------------------------------------------------

def test_health_and_info(client, shared_index):
    h = client.get("/api/health").json()
    assert h["status"] == "ok"
    assert h["indexes"]["notes"]["generation"] == 1
    assert h["indexes"]["notes"]["documents"] == 164
    listing = client.get("/api/indexes").json()
    assert [i["name"] for i in listing["indexes"]] == ["notes"]
    assert listing["limits"]["max_k"] == 50
    info = client.get("/api/notes").json()
    assert info["documents"] == 164 and info["generation"] == 1
    assert info["analyzer"]["stemmer"] == "snowball"
    assert "rm3" in info["feedback"] and info["models"]["dirichlet"] == ["mu"]
    assert str(shared_index.parent) not in json.dumps(info)   # no server paths given out


# -- search -------------------------------------------------------------------------------

def test_search_equals_in_process_searcher(client, shared_index):
    searcher = Searcher(Index.open(shared_index))
    want = searcher.search("how do glaciers move", k=5)
    got = client.get("/api/notes/search", params={"q": "how do glaciers move", "k": 5,
                                                  "feedback": "none"}).json()
    assert got["generation"] == 1 and got["model"] == searcher.model_.label()
    assert [(r["rank"], r["docid"], r["score"]) for r in got["results"]] == \
        [(r.rank, r.docid, r.score) for r in want]
    assert got["has_more"] is True and got["query_terms"] == ["glacier", "move"]
    first = got["results"][0]
    assert first["title"] == "How Glaciers Move"
    analyzer = searcher.index.analyzer
    snippet = first["snippet"]
    assert snippet["matches"]
    for s, e in snippet["matches"]:
        assert analyzer.term(snippet["text"][s:e].lower()) in {"glacier", "move"}


def test_defaults_are_the_engines(client, shared_index):
    """No model or feedback given: the engine's defaults, as `retrieval search` uses them
    (the default model resolved for the index, then the default feedback)."""
    from retrieval.feedback import DEFAULT_FEEDBACK, make_feedback
    from retrieval.smoothing import default_model
    index = Index.open(shared_index)
    searcher = Searcher(index, default_model(index))
    want = make_feedback(DEFAULT_FEEDBACK).search(searcher, "how do glaciers move", k=5)
    got = client.get("/api/notes/search", params={"q": "how do glaciers move", "k": 5}).json()
    assert got["model"] == default_model(index).label()
    assert got["feedback"].startswith(DEFAULT_FEEDBACK + "(")
    assert [(r["docid"], r["score"]) for r in got["results"]] == \
        [(r.docid, r.score) for r in want]


def test_search_post_json_equals_get(client):
    get = client.get("/api/notes/search", params={"q": "sea ice", "k": 3, "model": "jm",
                                                  "lam": "0.7"}).json()
    post = client.post("/api/notes/search", json={"q": "sea ice", "k": 3, "model": "jm",
                                                  "lam": 0.7}).json()
    assert get == post and get["model"] == "jm(lam=0.7)"


def test_pagination_matches_a_deeper_search(client):
    deep = client.get("/api/notes/search", params={"q": "water", "k": 12, "feedback": "none"}).json()["results"]
    page1 = client.get("/api/notes/search", params={"q": "water", "k": 6, "feedback": "none"}).json()
    page2 = client.get("/api/notes/search", params={"q": "water", "k": 6, "offset": 6,
                                                   "feedback": "none"}).json()
    assert [r["docid"] for r in page1["results"] + page2["results"]] == \
        [r["docid"] for r in deep]
    assert [r["rank"] for r in page2["results"]] == list(range(7, 13))
    last = client.get("/api/notes/search", params={"q": "glacier movement", "k": 50,
                                                  "feedback": "none"}).json()
    assert last["has_more"] is False


def test_models_feedback_and_mu_auto(client, shared_index):
    index = Index.open(shared_index)
    jm = client.get("/api/notes/search", params={"q": "volcano", "k": 4, "model": "jm",
                                                 "lam": 0.3, "feedback": "none"}).json()
    want = Searcher(index, JelinekMercer(lam=0.3)).search("volcano", k=4)
    assert [r["docid"] for r in jm["results"]] == [r.docid for r in want]
    rm3 = client.get("/api/notes/search", params={"q": "volcano", "k": 4, "feedback": "rm3",
                                                  "fb_docs": 5, "fb_terms": 10}).json()
    searcher = Searcher(index)
    fb = make_feedback("rm3", fb_docs=5, fb_terms=10)
    (want,) = searcher.batch_search(fb.expand(searcher, ["volcano"]), k=4)
    assert [(r["docid"], r["score"]) for r in rm3["results"]] == \
        [(r.docid, r.score) for r in want]
    assert rm3["feedback"].startswith("rm3(")
    auto = client.get("/api/notes/search", params={"q": "volcano", "mu": "auto",
                                                   "feedback": "none"}).json()
    assert auto["model"].startswith("dirichlet(mu=") and auto["model"] != "dirichlet(mu=1000)"


def test_no_results_is_not_an_error(client):
    got = client.get("/api/notes/search", params={"q": "the of and"}).json()
    assert got["results"] == [] and "no terms" in got["message"]
    got = client.get("/api/notes/search", params={"q": "zzzqqqxx"}).json()
    assert got["results"] == [] and "none of the query terms" in got["message"]


def test_batch(client, shared_index):
    searcher = Searcher(Index.open(shared_index))
    got = client.post("/api/notes/batch", json={
        "queries": ["glacier", {"qid": "q7", "q": "ocean currents"}], "k": 3,
        "feedback": "none"}).json()
    assert [q["qid"] for q in got["queries"]] == ["1", "q7"]
    want = searcher.batch_search(["glacier", "ocean currents"], k=3)
    for answer, res in zip(got["queries"], want):
        assert [(r["docid"], r["score"]) for r in answer["results"]] == \
            [(r.docid, r.score) for r in res]
        assert "snippet" not in answer["results"][0]
    with_snippets = client.post("/api/notes/batch", json={"queries": ["glacier"], "k": 1,
                                                          "snippets": True}).json()
    assert with_snippets["queries"][0]["results"][0]["snippet"]["matches"]


# -- explain and document -----------------------------------------------------------------

def test_explain_sums_to_the_score(client):
    top = client.get("/api/notes/search", params={"q": "glaciers carve valleys",
                                                "feedback": "none"}).json()
    r = top["results"][0]
    e = client.get("/api/notes/explain", params={"q": "glaciers carve valleys",
                                                 "docid": r["docid"], "feedback": "none"}).json()
    assert e["docid"] == r["docid"] and e["score"] == pytest.approx(r["score"], abs=1e-12)
    assert sum(t["contribution"] for t in e["terms"]) == pytest.approx(e["score"], abs=1e-9)
    assert {t["term"] for t in e["terms"]} == set(top["query_terms"])


def test_document_with_marked_terms(client, shared_index):
    index = Index.open(shared_index)
    doc = "geology/glacier-flow.txt"
    got = client.get("/api/notes/document", params={"docid": doc, "q": "glaciers move"}).json()
    assert got["text"] == index.text(index.doc_number(doc)) and not got["truncated"]
    assert got["query_terms"] == ["glacier", "move"]
    words = [got["text"][s:e] for s, e in got["matches"]]
    assert "Glaciers" in words and "glacier" in words and "moves" in words
    assert all(index.analyzer.term(w.lower()) in {"glacier", "move"} for w in words)
    plain = client.get("/api/notes/document", params={"docid": doc}).json()
    assert plain["matches"] == [] and plain["text"] == got["text"]


def test_script_document_is_returned_as_data(client):
    got = client.get("/api/notes/document", params={"docid": "evil.txt", "q": "glacier"})
    assert got.headers["content-type"].startswith("application/json")
    assert got.json()["text"] == SCRIPT_DOC


# -- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("params, words", [
    ({"q": "ice", "k": 0}, "k must be between 1 and 50"),
    ({"q": "ice", "k": "ten"}, "k must be a whole number"),
    ({"q": "ice", "k": 2.5}, "k must be a whole number"),
    ({"q": "ice", "k": 30, "offset": 30}, "offset + k = 60 is deeper than"),
    ({"q": "ice", "offset": -1}, "offset must be between"),
    ({"q": "ice", "model": "bm25"}, "model must be one of"),
    ({"q": "ice", "model": "jm", "mu": 500}, "mu does not apply to model jm"),
    ({"q": "ice", "mu": -5}, "mu"),
    ({"q": "ice", "mu": "nan"}, "mu must be a finite number"),
    ({"q": "ice", "feedback": "rm4"}, "feedback must be one of"),
    ({"q": "ice", "feedback": "none", "fb_docs": 5}, "fb_docs does not apply to feedback none"),
    ({"q": "ice", "feedback": "rm3", "fb_alpha": 0.5}, "fb_alpha does not apply"),
    ({"q": "ice", "feedback": "rm3", "fb_docs": 0}, "fb_docs"),
    ({"q": "ice", "snippets": "maybe"}, "snippets must be true or false"),
    ({"q": "ice", "colour": "red"}, "unknown parameter 'colour'"),
    ({"q": "   "}, "q is empty"),
    ({}, "missing parameter 'q'"),
])
def test_bad_parameters_are_400(client, params, words):
    assert words in error_of(client.get("/api/notes/search", params=params), 400)


def test_bad_bodies_are_400(client):
    assert "not valid JSON" in error_of(
        client.post("/api/notes/search", content=b"{q: ice"), 400)
    assert "JSON object" in error_of(client.post("/api/notes/search", json=["ice"]), 400)
    assert "q must be text" in error_of(client.post("/api/notes/search", json={"q": 5}), 400)
    assert "queries must be a non-empty" in error_of(
        client.post("/api/notes/batch", json={"queries": "ice"}), 400)
    assert "queries[1]" in error_of(
        client.post("/api/notes/batch", json={"queries": ["ice", {"text": "x"}]}), 400)
    assert "missing parameter 'docid'" in error_of(
        client.get("/api/notes/explain", params={"q": "ice"}), 400)


def test_oversized_requests_are_413(client):
    assert "cap of 200" in error_of(
        client.get("/api/notes/search", params={"q": "ice " * 60}), 413)
    assert "cap of 5" in error_of(
        client.post("/api/notes/batch", json={"queries": ["ice"] * 6}), 413)
    assert "queries[0]" in error_of(
        client.post("/api/notes/batch", json={"queries": ["ice " * 60]}), 413)
    big = json.dumps({"q": "ice", "pad": "x" * 5000}).encode()
    assert "cap of 4,096" in error_of(client.post("/api/notes/search", content=big), 413)

    def chunks():   # no Content-Length: counted while it streams in
        for _ in range(10):
            yield b" " * 1000
    assert "cap of 4,096" in error_of(client.post("/api/notes/search", content=chunks()), 413)


def test_unknown_things_are_404(client):
    assert "no index named 'other'" in error_of(
        client.get("/api/other/search", params={"q": "ice"}), 404)
    assert "no document" in error_of(
        client.get("/api/notes/document", params={"docid": "no/such.txt"}), 404)
    for docid in ("../../../../etc/passwd", "/etc/passwd", "geology/../evil.txt"):
        assert "no document" in error_of(
            client.get("/api/notes/document", params={"docid": docid}), 404)
    assert "no document" in error_of(
        client.get("/api/notes/explain", params={"q": "ice", "docid": "nope"}), 404)
    assert "no such endpoint" in error_of(client.get("/api/notes/frobnicate"), 404)
    assert error_of(client.get("/static/../../pyproject.toml"), 404)
    assert "no file" in error_of(client.get("/static/index.py"), 404)
    assert "not allowed" in error_of(client.delete("/api/notes/search"), 405)


def test_internal_errors_are_json_without_a_trace(client, monkeypatch):
    def broken(self, *a, **kw):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(generations.Snapshot, "searcher", broken)
    monkeypatch.setattr(api.Ranking, "rank", broken)   # rankings are reused per snapshot
    message = error_of(client.get("/api/notes/search", params={"q": "ice"}), 500)
    assert "secret" not in message
    message = error_of(client.get("/api/notes/search", params={"q": "ice", "mu": "7"}), 500)
    assert "secret" not in message


# -- the page -----------------------------------------------------------------------------

def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text and "http" not in page.text.split(
        "<body>")[0].replace('content="width', "")
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "innerHTML" not in js.text   # text goes in as text nodes only
    assert client.get("/static/style.css").status_code == 200


# -- generations --------------------------------------------------------------------------

def test_generation_switch_during_update(fresh, monkeypatch):
    """A request that took generation 1 is answered by it while ``update`` publishes
    generation 2; the next request sees generation 2."""
    corpus, index_path = fresh
    app = create_app({"notes": ServedIndex("notes", index_path, warm=False)})
    gate, entered = threading.Event(), threading.Event()
    original = generations.Snapshot.searcher

    def held(self, *args, **kwargs):
        if self.generation == 1 and not gate.is_set():
            entered.set()
            assert gate.wait(60)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(generations.Snapshot, "searcher", held)
    answer = {}

    def in_flight():
        answer["resp"] = TestClient(app).get("/api/notes/search",
                                             params={"q": "glaciers move", "k": 3,
                                                     "feedback": "none"})

    old = Searcher(Index.open(index_path)).search("glaciers move", k=3)
    thread = threading.Thread(target=in_flight)
    thread.start()
    assert entered.wait(60)
    (corpus / "geology" / "glacier-flow.txt").unlink()
    (corpus / "new-glaciers.txt").write_text("Glaciers move glaciers move glaciers.\n",
                                             encoding="utf-8")
    change = update(index_path)
    assert change.generation == 2 and change.added == 1 and change.deleted == 1
    gate.set()
    thread.join(60)
    got = answer["resp"].json()
    assert got["generation"] == 1
    assert [(r["docid"], r["score"]) for r in got["results"]] == \
        [(r.docid, r.score) for r in old]
    assert got["results"][0]["snippet"]["text"].startswith("How Glaciers Move")

    client = TestClient(app)
    plain = {"feedback": "none"}
    new = client.get("/api/notes/search", params={"q": "glaciers move", "k": 3, **plain}).json()
    found = client.get("/api/notes/search",
                       params={"q": "glaciers move", "k": 50, **plain}).json()
    assert "new-glaciers.txt" in [r["docid"] for r in found["results"]]
    ids = [r["docid"] for r in new["results"]]
    assert new["generation"] == 2 and "geology/glacier-flow.txt" not in ids
    want = Searcher(Index.open(index_path)).search("glaciers move", k=3)
    assert [(r["docid"], r["score"]) for r in new["results"]] == \
        [(r.docid, r.score) for r in want]
    assert "no document" in error_of(
        client.get("/api/notes/document", params={"docid": "geology/glacier-flow.txt"}), 404)
    health = client.get("/api/health").json()["indexes"]["notes"]
    assert health["generation"] == 2 and health["switches"] == 1


def test_a_damaged_new_generation_keeps_the_old_one_serving(fresh):
    index_path = fresh[1]
    client = TestClient(create_app({"notes": ServedIndex("notes", index_path, warm=False)}))
    assert client.get("/api/notes/search", params={"q": "ice"}).json()["generation"] == 1
    manifest = index_path / "manifest.json"
    tmp = index_path / "manifest.tmp"
    tmp.write_text("{not json", encoding="utf-8")
    tmp.replace(manifest)   # a new inode, as a writer's os.replace gives
    got = client.get("/api/notes/search", params={"q": "ice"})
    assert got.status_code == 200 and got.json()["generation"] == 1
    health = client.get("/api/health").json()
    assert health["status"] == "degraded"
    assert "serving generation 1" in health["indexes"]["notes"]["error"]


def test_several_indexes_by_name(tmp_path, shared_index):
    other = tmp_path / "tiny.idx"
    Index.build([("a", "a tiny index about basalt"), ("b", "granite")]).save(other)
    client = TestClient(create_app({"notes": ServedIndex("notes", shared_index, warm=False),
                                    "tiny": ServedIndex("tiny", other, warm=False)}))
    assert [i["name"] for i in client.get("/api/indexes").json()["indexes"]] == \
        ["notes", "tiny"]
    got = client.get("/api/tiny/search", params={"q": "basalt"}).json()
    assert [r["docid"] for r in got["results"]] == ["a"]
    assert set(client.get("/api/health").json()["indexes"]) == {"notes", "tiny"}


# -- the command --------------------------------------------------------------------------

def test_cli_names_indexes_and_warns_for_all_interfaces(shared_index, monkeypatch, capsys):
    import uvicorn

    from retrieval.cli import main
    from retrieval.cli.serve import is_loopback, parse_indexes
    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: started.append(self.config))
    assert main(["serve", str(shared_index), "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "serving notes" in err
    assert started[0].host == "127.0.0.1"
    assert (started[0].http, started[0].loop) == ("auto", "auto")
    assert main(["serve", str(shared_index), "--port", "0", "--http", "h11",
                 "--loop", "asyncio"]) == 0
    assert (started[-1].http, started[-1].loop) == ("h11", "asyncio")
    capsys.readouterr()
    assert main(["serve", f"n1={shared_index}", "--host", "0.0.0.0", "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0" in err and "readable by anyone" in err
    assert "serving n1" in err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::")
    assert list(parse_indexes(["a/b/notes.idx", "x=c/d"])) == ["notes", "x"]


def test_cli_errors_are_one_line(tmp_path, shared_index, capsys):
    from retrieval.cli import main
    assert main(["serve", str(tmp_path / "missing.idx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such index folder" in err
    (tmp_path / "plain").mkdir()
    assert main(["serve", str(tmp_path / "plain")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["serve", str(shared_index), str(shared_index)]) == 2
    assert "two indexes are named 'notes'" in capsys.readouterr().err
    assert main(["serve", str(shared_index), "--port", "70000"]) == 2
    assert main(["serve", str(shared_index), "--max-k", "0"]) == 2


def test_a_fresh_searcher_used_by_two_threads_at_once(shared_index, monkeypatch):
    """The server's threads share searchers: a searcher's lazily built pruning tables
    must be published whole (once, a second thread saw the bounds without the block
    maxima and failed with a 500 under 64 clients)."""
    import time as _time

    from retrieval.search import tables as search_module
    slow = search_module.block_maxima

    def slow_blocks(*args, **kwargs):
        _time.sleep(0.3)
        return slow(*args, **kwargs)

    monkeypatch.setattr(search_module, "block_maxima", slow_blocks)
    searcher = Searcher(Index.open(shared_index), pruning=True, compiled=False)
    want = Searcher(Index.open(shared_index), pruning=False).search("glaciers move", k=5)
    out, failures = [], []

    def work():
        try:
            out.append(searcher.search("glaciers move", k=5))
        except Exception as exc:   # noqa: BLE001 - the failure under test
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
        _time.sleep(0.05)
    for t in threads:
        t.join(60)
    assert failures == [] and out == [want] * 4
