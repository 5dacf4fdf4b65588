"""``retrieval serve``: serve indexes over HTTP — a JSON API and a search page."""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

from ..errors import ParameterError
from ._common import error_line, make_parser, positive_int, run

DESCRIPTION = """\
Serve one or more indexes over HTTP: a search page at / and a JSON API under /api
(see the README's API table). Each INDEX is served under its folder name, or under
NAME with NAME=PATH. A new generation written by 'retrieval add', 'delete' or 'update'
is picked up without a restart; a request in flight is answered by the generation it
started on.

The server listens on the loopback (127.0.0.1) unless --host says otherwise: with
--host 0.0.0.0 every machine that can reach this one can read the indexes.
"""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def build_parser():
    p = make_parser("serve", DESCRIPTION)
    p.add_argument("indexes", nargs="+", metavar="INDEX",
                   help="an index folder, or NAME=PATH to serve it under NAME")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on "
                   "(default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free)")
    p.add_argument("--max-query-chars", type=positive_int, default=1000,
                   help="longest query text accepted, in characters (default 1000)")
    p.add_argument("--max-k", type=positive_int, default=1000,
                   help="deepest rank a request may ask for, offset + k (default 1000)")
    p.add_argument("--max-batch", type=positive_int, default=1000,
                   help="most queries in one batch request (default 1000)")
    p.add_argument("--max-body", type=positive_int, default=1 << 20, metavar="BYTES",
                   help="largest request body in bytes (default 1048576)")
    p.add_argument("--threads", type=positive_int, default=4,
                   help="worker threads for batch, explain and document requests, and for "
                        "single searches with --no-coalesce (default 4); coalesced "
                        "searches run one batch at a time")
    p.add_argument("--no-coalesce", action="store_true",
                   help="answer each search request on its own instead of ranking "
                        "concurrent ones in one batch (same answers; slower under load)")
    p.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"),
                   help="uvicorn's HTTP parser (default auto: httptools when installed, "
                        "as with the serve extra)")
    p.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"),
                   help="event loop (default auto: uvloop when installed)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default warning; info logs every request)")
    return p


def parse_indexes(items: list[str]) -> dict[str, Path]:
    """``PATH`` or ``NAME=PATH`` → {name: path}; names are URL-safe and distinct."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not _NAME.match(name):
            path, name = item, Path(item.rstrip("/")).name
            name = re.sub(r"\.idx$", "", name)
            name = re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip(".-_") or "index"
        if not _NAME.match(name):
            raise ParameterError(f"{item}: cannot make an index name from it; pass "
                                 f"NAME=PATH with NAME of letters, digits, '.', '_', '-'")
        if name in out:
            raise ParameterError(f"two indexes are named {name!r}; pass NAME=PATH to "
                                 f"name them apart")
        out[name] = Path(path)
    return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _main(args) -> int:
    if not 0 <= args.port <= 65535:
        raise ParameterError(f"--port must be between 0 and 65535, got {args.port}")
    try:
        import uvicorn
        from ..serve import EXTRA_MESSAGE  # noqa: F401
        from ..serve.app import create_app
    except ImportError:
        from ..serve import EXTRA_MESSAGE
        error_line("serve", EXTRA_MESSAGE)
        return 2
    from ..serve import Limits, ServedIndex
    paths = parse_indexes(args.indexes)
    for name, path in paths.items():
        if not path.exists():
            raise ParameterError(f"{path}: no such index folder; build one with "
                                 f"'retrieval index FOLDER -o {path}'")
    served = {name: ServedIndex(name, path) for name, path in paths.items()}
    limits = Limits(max_query_chars=args.max_query_chars, max_k=args.max_k,
                    max_batch=args.max_batch, max_body_bytes=args.max_body)
    app = create_app(served, limits, threads=args.threads, coalesce=not args.no_coalesce)
    if not is_loopback(args.host):
        print(f"retrieval serve: warning: listening on {args.host}: the indexes "
              f"{', '.join(served)} (their documents' text) become readable by anyone "
              f"who can reach this machine on port {args.port}; use --host 127.0.0.1 to "
              f"keep them on this machine", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    for name, idx in served.items():
        snap = idx.current()
        print(f"serving {name} ({idx.path}, {snap.index.num_docs:,} documents, generation "
              f"{snap.generation}) at http://{shown}:{args.port}/api/{name}",
              file=sys.stderr)
    print(f"search page: http://{shown}:{args.port}/   (Ctrl-C stops)", file=sys.stderr)
    sys.stderr.flush()
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            http=args.http, loop=args.loop,
                            access_log=args.log_level in ("info", "debug"),
                            server_header=False, lifespan="off",
                            # generous: under heavy load a connection must not be closed
                            # while its next request is already on its way
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    try:
        server.run()
    except (OSError, SystemExit) as exc:   # uvicorn exits 1 when it cannot bind
        detail = exc.strerror if isinstance(exc, OSError) else "see the line above"
        error_line("serve", f"cannot listen on {args.host}:{args.port} ({detail}); "
                            f"choose another --port or --host")
        return 2
    return 0


def main(argv=None) -> int:
    return run("serve", build_parser(), _main, argv)
