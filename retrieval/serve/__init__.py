"""``retrieval serve``: the engine as an HTTP service — a JSON API and a search page.

Why Starlette + uvicorn (the optional extra ``pip install "retrieval[serve]"``):
Starlette is a small ASGI toolkit (routing, requests/responses, a thread pool for
synchronous work, and a test client on httpx) with no dependencies beyond anyio, and
uvicorn is the reference ASGI server. FastAPI would add pydantic and an OpenAPI schema;
the API here is nine routes with flat parameters whose validation must produce this
project's one-line messages (naming the parameter and what to change) anyway, so the
schema layer would duplicate the engine's own validation for little gain. The routes are
documented in :mod:`retrieval.serve.app` and in the README's API table.

Parts: :mod:`.generations` (served indexes that follow new generations written by
``add``/``delete``/``update`` without a restart, each request answered by the generation
it started on), :mod:`.api` (parameters, caps and JSON answers, framework-independent),
:mod:`.app` (the ASGI app and its error handling), ``static/`` (the page's files).
"""

from __future__ import annotations

from .api import ApiError, Limits
from .generations import ServedIndex, Snapshot

EXTRA_MESSAGE = ('retrieval serve needs Starlette and uvicorn, the optional extra '
                 '"serve": pip install "retrieval[serve]"')


def create_app(indexes, limits=None, **options):
    """The ASGI app for ``indexes`` (name → :class:`ServedIndex`); see :mod:`.app`.

    Raises ImportError with the install command when Starlette is missing.
    """
    try:
        from .app import create_app as make
    except ImportError as exc:
        if getattr(exc, "name", "") and exc.name.split(".")[0] in ("starlette", "anyio"):
            raise ImportError(EXTRA_MESSAGE) from None
        raise
    return make(indexes, limits, **options)


__all__ = ["ApiError", "Limits", "ServedIndex", "Snapshot", "create_app", "EXTRA_MESSAGE"]
