"""The ASGI application: routes, JSON errors, body caps and the search page.

Routes (``{name}`` is a served index's name)::

    GET  /                          the search page (files shipped in this package)
    GET  /static/{file}             its script and style sheet (a fixed list, from memory)
    GET  /api/health                status and each index's generation
    GET  /api/indexes               the served indexes and their info
    GET  /api/{name}                one index's info
    GET|POST /api/{name}/search     one query, one page of results with snippets
    POST /api/{name}/batch          many queries
    GET|POST /api/{name}/explain    each query term's contribution to one document's score
    GET|POST /api/{name}/document   one document's stored text with the query terms marked

Search work — and the check for a new generation, which may open it — runs on
``threads`` worker threads (default :data:`THREADS`), so neither a slow query nor a
generation switch stalls the event loop (a loop blocked for seconds would let uvicorn's
keep-alive timer close waiting connections); the compiled kernels release the GIL, so two requests use
both cores. Single-query searches that arrive while others are in flight are ranked
together in one batch (:mod:`.batching`; ``coalesce=False`` answers each on its own
thread), with exactly the answers each would get alone. Static files are read into memory when the app is made: no path from a
request reaches the file system (document text comes from the index's arrays only).
"""

from __future__ import annotations

import json
from importlib import resources
from urllib.parse import parse_qsl

from starlette.applications import Starlette
import anyio.to_thread
from anyio import CapacityLimiter
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._version import __version__
from ..errors import RetrievalError
from . import api
from .api import ApiError, Limits
from .batching import Coalescer, encode
from .generations import ServedIndex

STATIC_FILES = {"app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
#: the page runs only its own script and style sheet: even a document's text that
#: slipped into the page unescaped could not run a script
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


#: worker threads for search work. The compiled kernels release the GIL, so two cores
#: want two or more; the rest of a request (JSON, snippets) holds it, and many more threads
#: only contend for it (anyio's default is 40).
THREADS = 4


def _error_content(status: int, message: str) -> dict:
    return {"error": {"status": status, "message": message}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(_error_content(status, message), status_code=status,
                        headers={"X-Content-Type-Options": "nosniff"})


class SearchFastPath:
    """ASGI middleware: ``GET /api/{name}/search`` of a served index goes straight to the
    coalescer, without the router's matching and the Request, Response and exception
    middleware layers — the same answer, status and headers as that route gives
    (``tests/test_serve_batching.py`` compares them), for less work in the event loop,
    which every request shares. Anything else passes on; an unexpected error propagates
    to the server-error layer around it (a JSON 500, logged), as from the route."""

    def __init__(self, app, service: "Service"):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            name = path[5:-7]
            if path.startswith("/api/") and path.endswith("/search") and "/" not in name \
                    and name in self.service.indexes:
                params = dict(parse_qsl(scope["query_string"].decode("latin-1"),
                                        keep_blank_values=True))
                try:
                    body = await self.service.coalescer.search(self.service.indexes[name],
                                                               params)
                    status, extra = 200, []
                except ApiError as exc:
                    body = encode(_error_content(exc.status, exc.message))
                    status, extra = exc.status, [(b"x-content-type-options", b"nosniff")]
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        (b"content-type", b"application/json"), *extra]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class JSONBody:
    """Reads a request body of at most ``limit`` bytes as a JSON object (413 above)."""

    def __init__(self, limit: int):
        self.limit = limit

    async def read(self, request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise ApiError(400, "the Content-Length header is not a number") from None
            if size > self.limit:
                raise self._too_big(f"{size:,}")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > self.limit:
                raise self._too_big(f"more than {self.limit:,}")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object of parameters")
        return data

    def _too_big(self, size: str) -> ApiError:
        return ApiError(413, f"the request body has {size} bytes, over the server's cap "
                             f"of {self.limit:,} (retrieval serve --max-body)")


def _page_files() -> dict[str, bytes]:
    root = resources.files("retrieval.serve").joinpath("static")
    files = {name: root.joinpath(name).read_bytes() for name in STATIC_FILES}
    files["index.html"] = root.joinpath("index.html").read_bytes()
    return files


class Service:
    """The request handlers of one app: the served indexes, the caps, the page files and
    the worker threads' limiter (made in the event loop, on first use)."""

    def __init__(self, indexes: dict[str, ServedIndex], limits: Limits, threads: int,
                 coalesce: bool = True):
        self.indexes = indexes
        self.limits = limits
        self.threads = threads
        self.body = JSONBody(limits.max_body_bytes)
        self.files = _page_files()
        self._limiter: CapacityLimiter | None = None
        self.coalescer = Coalescer(limits) if coalesce else None

    async def params(self, request: Request) -> dict:
        if request.method == "POST":
            return await self.body.read(request)
        return dict(request.query_params)

    async def search(self, request: Request) -> Response:
        """``/api/{name}/search``: through the coalescer (see :mod:`.batching`)."""
        idx = self.served(request.path_params["name"])
        params = await self.params(request)
        body = await self.coalescer.search(idx, params)
        return Response(body, media_type="application/json")

    def served(self, name: str) -> ServedIndex:
        try:
            return self.indexes[name]
        except KeyError:
            raise ApiError(404, f"no index named {name!r}; this server has "
                                f"{', '.join(self.indexes) or 'none'}") from None

    def endpoint(self, work):
        """A handler running ``work(snapshot, params, limits)`` on a worker thread."""
        async def handle(request: Request) -> Response:
            idx = self.served(request.path_params["name"])
            params = await self.params(request)

            def run():
                # the generation this request is answered by; taken in the worker thread,
                # so opening a new generation never blocks the event loop
                snap = idx.current()
                try:
                    return work(snap, params, self.limits)
                except RetrievalError as exc:   # a parameter the engine refused
                    raise ApiError(400, str(exc)) from None
            if self._limiter is None:
                self._limiter = CapacityLimiter(self.threads)
            return JSONResponse(await anyio.to_thread.run_sync(run, limiter=self._limiter))
        return handle

    def index_info(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(api.info(self.served(name).current(), name))

    def list_indexes(self, request: Request) -> Response:
        return JSONResponse({"indexes": [api.info(i.current(), n)
                                         for n, i in self.indexes.items()],
                             "limits": self.limits.as_dict(), "version": __version__})

    def health(self, request: Request) -> Response:
        state = {}
        for name, idx in self.indexes.items():
            snap = idx.current()
            state[name] = {"generation": snap.generation, "documents": snap.index.num_docs,
                           "switches": idx.switches, "error": idx.error}
        ok = all(v["error"] is None for v in state.values())
        out = {"status": "ok" if ok else "degraded", "indexes": state}
        if self.coalescer is not None:
            out["search_batches"] = {"batches": self.coalescer.batches,
                                     "requests": self.coalescer.requests}
        return JSONResponse(out)

    async def page(self, request: Request) -> Response:
        return Response(self.files["index.html"], media_type="text/html; charset=utf-8",
                        headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in STATIC_FILES:
            raise ApiError(404, f"no file {name!r}")
        return Response(self.files[name], media_type=STATIC_FILES[name],
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


async def _api_error(request: Request, exc: ApiError) -> Response:
    return _error(exc.status, exc.message)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = {404: f"no such endpoint: {request.url.path}",
               405: f"method {request.method} is not allowed here"}.get(
        exc.status_code, str(exc.detail))
    return _error(exc.status_code, message)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # never a stack trace to the client; uvicorn logs it on the server side
    return _error(500, "internal server error; the server's log has the details")


def create_app(indexes: dict[str, ServedIndex], limits: Limits | None = None, *,
               threads: int = THREADS, coalesce: bool = True) -> Starlette:
    """The Starlette app serving ``indexes`` (name → :class:`ServedIndex`), running the
    search work on ``threads`` worker threads; ``coalesce``: rank concurrent single-query
    searches in batches (:mod:`.batching`)."""
    svc = Service(indexes, limits or Limits(), threads, coalesce)
    both = ["GET", "POST"]
    routes = [
        Route("/", svc.page),
        Route("/static/{file}", svc.static),
        Route("/api/health", svc.health),
        Route("/api/indexes", svc.list_indexes),
        Route("/api/{name}", svc.index_info),
        Route("/api/{name}/search", svc.search if coalesce else svc.endpoint(api.search),
              methods=both),
        Route("/api/{name}/batch", svc.endpoint(api.batch), methods=["POST"]),
        Route("/api/{name}/explain", svc.endpoint(api.explain), methods=both),
        Route("/api/{name}/document", svc.endpoint(api.document), methods=both),
    ]
    middleware = [Middleware(SearchFastPath, service=svc)] if coalesce else []
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={
        ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error})
    app.state.service = svc
    return app
