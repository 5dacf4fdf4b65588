"""Micro-batching of concurrent search requests (retrieval.serve.batching): the answers
are those of each request alone, a bad request fails alone, and requests that arrive
together are ranked together."""

from __future__ import annotations

import asyncio
import json
import shutil
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the 'serve' extra (starlette) is not installed")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from retrieval.errors import ParameterError  # noqa: E402
from retrieval.lifecycle import build_index  # noqa: E402
from retrieval.serve import Limits, ServedIndex, api, create_app  # noqa: E402
from retrieval.serve.batching import Coalescer  # noqa: E402

LIMITS = Limits(max_query_chars=200, max_k=50)

#: requests of several groups (feedback, model, depth) and some refused ones
REQUESTS = [
    {"q": "glaciers move"}, {"q": "ice sheets", "k": "3"}, {"q": "volcano", "k": "20"},
    {"q": "glaciers move", "feedback": "none"}, {"q": "river delta", "feedback": "none"},
    {"q": "ice", "model": "dirichlet", "mu": "500", "feedback": "none"},
    {"q": "ice", "model": "jm", "lam": "0.3", "offset": "5"},
    {"q": "climate change", "snippets": "0"}, {"q": "the of and"},   # only stop words
    {"q": "zzzunknownword"},
    {"q": "ice", "k": "0"},                       # 400: k out of range
    {"q": "ice", "colour": "red"},                # 400: unknown parameter
    {"q": "x" * 300},                             # 413: query too long
    {"q": "glaciers", "model": "dirichlet", "lam": "0.5"},   # 400: lam not for dirichlet
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, sample_dir) -> ServedIndex:
    folder = tmp_path_factory.mktemp("batching")
    shutil.copytree(sample_dir / "docs", folder / "docs")
    build_index([folder / "docs"], folder / "notes.idx")
    return ServedIndex("notes", folder / "notes.idx", warm=False)


def alone(served: ServedIndex, params: dict):
    """The answer (JSON value) or error (status, message) of one request by itself."""
    try:
        return json.loads(json.dumps(api.search(served.current(), params, LIMITS)))
    except api.ApiError as exc:
        return (exc.status, exc.message)


async def together(coalescer: Coalescer, served: ServedIndex, requests: list[dict]):
    async def one(params):
        try:
            return json.loads(await coalescer.search(served, dict(params)))
        except api.ApiError as exc:
            return (exc.status, exc.message)
        except Exception as exc:   # the app answers it 500
            return (500, type(exc).__name__)
    return await asyncio.gather(*(one(p) for p in requests))


def test_concurrent_requests_are_answered_as_alone_in_one_batch(served):
    coalescer = Coalescer(LIMITS, slots=1)
    got = asyncio.run(together(coalescer, served, REQUESTS))
    want = [alone(served, p) for p in REQUESTS]
    assert got == want
    statuses = [g[0] for g in got if isinstance(g, tuple)]
    assert sorted(statuses) == [400, 400, 400, 413]
    # all arrived in the same turn of the loop: one batch
    assert (coalescer.batches, coalescer.requests) == (1, len(REQUESTS))


def test_batches_form_while_work_is_in_flight(served):
    """With one slot, requests that arrive while a batch runs leave together next."""
    import threading
    from retrieval.serve.batching import process
    started, gate = threading.Event(), threading.Event()

    def held(items, limits):
        started.set()
        assert gate.wait(60)
        process(items, limits)
    coalescer = Coalescer(LIMITS, slots=1, work=held)

    async def staggered():
        first = asyncio.ensure_future(together(coalescer, served, REQUESTS[:1]))
        await asyncio.to_thread(started.wait, 60)    # the first batch is in flight ...
        rest = asyncio.ensure_future(together(coalescer, served, REQUESTS[1:8]))
        while coalescer.queued < 7:                  # ... and these queue behind it
            await asyncio.sleep(0.01)
        gate.set()
        return (await first) + (await rest)
    got = asyncio.run(staggered())
    assert got == [alone(served, p) for p in REQUESTS[:8]]
    assert coalescer.requests == 8 and coalescer.batches == 2


def test_a_failing_request_fails_alone(served, monkeypatch):
    """The engine refusing one query of a group: that request gets 400, the others of
    its batch their answers (the group is ranked again one request at a time)."""
    original = api.Ranking.rank

    def refusing(self, queries, depth_):
        if "poison" in queries:
            raise ParameterError("this query is refused")
        return original(self, queries, depth_)
    monkeypatch.setattr(api.Ranking, "rank", refusing)
    requests = [{"q": "glaciers move"}, {"q": "poison"}, {"q": "ice sheets"}]
    got = asyncio.run(together(Coalescer(LIMITS, slots=1), served, requests))
    assert got[1] == (400, "this query is refused")
    assert got[0] == alone(served, requests[0]) and got[2] == alone(served, requests[2])


def test_an_internal_error_is_a_500_for_its_request_only(served, monkeypatch):
    original = api.answer_search

    def broken(req, results):
        if req.text == "broken":
            raise RuntimeError("secret internals")
        return original(req, results)
    monkeypatch.setattr("retrieval.serve.batching.answer_search", broken)
    got = asyncio.run(together(Coalescer(LIMITS, slots=1), served,
                               [{"q": "ice"}, {"q": "broken"}]))
    assert got == [alone(served, {"q": "ice"}), (500, "RuntimeError")]
    client = TestClient(create_app({"notes": served}, LIMITS), raise_server_exceptions=False)
    resp = client.get("/api/notes/search", params={"q": "broken"})
    assert resp.status_code == 500 and "secret" not in resp.text


def test_the_app_answers_the_same_with_and_without_coalescing(served):
    on = TestClient(create_app({"notes": served}, LIMITS))
    off = TestClient(create_app({"notes": served}, LIMITS, coalesce=False))
    for params in REQUESTS:
        a, b = on.get("/api/notes/search", params=params), \
            off.get("/api/notes/search", params=params)
        assert (a.status_code, a.json()) == (b.status_code, b.json())
        for header in ("content-type", "x-content-type-options", "content-length"):
            assert a.headers.get(header) == b.headers.get(header), header
    for path in ("/api/nothere/search", "/api/notes/x/search", "/api//search"):
        a, b = on.get(path, params={"q": "ice"}), off.get(path, params={"q": "ice"})
        assert a.status_code == b.status_code == 404 and a.json() == b.json()
    repeated = "/api/notes/search?q=volcano&q=glaciers+move&k=2&k=3"   # the last value
    assert on.get(repeated).json() == off.get(repeated).json()
    assert on.get(repeated).json()["query"] == "glaciers move"
    post = on.post("/api/notes/search", json={"q": "glaciers move", "k": 4})
    assert post.json() == off.get("/api/notes/search",
                                  params={"q": "glaciers move", "k": 4}).json()
    batches = on.get("/api/health").json()["search_batches"]
    assert batches["requests"] == len(REQUESTS) + 3   # + the repeated-key GETs and the POST
    assert "search_batches" not in off.get("/api/health").json()


def test_bench_serve_checks_feedback_runs_like_the_server(tmp_path, served):
    """The load script's reference ranks as the server is asked to (feedback none and
    rm3 give different rankings; each reference equals the server's answers)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "bench_serve", Path(__file__).resolve().parent.parent / "scripts" / "bench_serve.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    index = served.current().index
    queries = ["glaciers move", "volcano eruption"]
    for feedback in ("none", "rm3"):
        want = bench.ranked(index, queries, 10, feedback)
        for q, res in zip(queries, want):
            got = alone(served, {"q": q, "feedback": feedback, "snippets": "0"})
            assert [(r["docid"], r["score"]) for r in got["results"]] == \
                [(r.docid, r.score) for r in res]


def test_rankings_are_reused_per_snapshot_and_bad_ones_never_kept(served):
    snap = served.current()
    a = api.ranking_of(snap, {"q": "ice", "k": "3", "model": "jm", "lam": "0.3"})
    b = api.ranking_of(snap, {"q": "glaciers", "lam": "0.3", "model": "jm"})
    c = api.ranking_of(snap, {"q": "ice", "model": "jm", "lam": "0.4"})
    assert a is b and a is not c and c.model.lam == 0.4
    for _ in range(2):
        with pytest.raises(api.ApiError, match="lam does not apply"):
            api.ranking_of(snap, {"q": "ice", "model": "dirichlet", "lam": "0.3"})
    assert (("lam", "0.3"), ("model", "dirichlet")) not in snap.rankings
