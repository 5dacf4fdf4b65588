#!/usr/bin/env python3
"""Load test of ``retrieval serve``: N concurrent clients on 127.0.0.1, with an index
update in the middle of every run, every answer checked.

What it does:

1. builds (or reuses) an index of a synthetic corpus (``scripts/make_corpus.py``,
   ``docs.jsonl`` + ``queries.tsv``) in a work folder;
2. starts ``python -m retrieval serve INDEX`` on 127.0.0.1 (a free port) as a separate
   process and waits for ``/api/health``;
3. for each client count (``--clients 1,8,64``): that many concurrent keep-alive HTTP/1.1
   connections (asyncio, a minimal client: no library overhead in the measurement), each
   cycling through the queries from its own offset, until ``--requests`` answers, the
   update below has been published and a fifth of ``--requests`` more answered, or
   ``--seconds`` have passed (the run stops by itself). After a third
   of the requests or a quarter of the time cap, whichever comes first,
   ``retrieval update INDEX`` runs as its own process (the corpus file
   gained ``--update-docs`` new documents and had as many changed), publishing a new
   generation while requests are in flight;
4. checks every answer: HTTP 200, and its docids and scores equal those of an in-process
   :class:`~retrieval.Searcher` on *the generation the answer names* (scores to 1e-9;
   docids exactly). An error or a mismatch is counted, never hidden;
5. before each client count (``--noop on``), the same clients send ``GET /api/health``
   (no search) for a while: the request-rate ceiling of this server process with these
   clients on this machine, which bounds every one-query-per-request figure;
6. measures the in-process throughput on the same queries, k and generation:
   ``Searcher.batch_search`` (the issue's reference) and a loop of ``search`` calls.

Writes ``OUT/load.md`` and ``OUT/load.json`` (throughput, p50/p95/p99 latency, errors,
wrong results, generations seen, load average before and after each run).

    python scripts/bench_serve.py --docs 100k --out results/serve
    python scripts/bench_serve.py --docs 10k --clients 1,8 --requests 500   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval import Index, Searcher  # noqa: E402
from retrieval.feedback import make_feedback  # noqa: E402
from retrieval.results import columnar  # noqa: E402


def process_cpu(pid: int) -> float:
    """CPU seconds (user + sys) used so far by process ``pid`` (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def parse_count(text: str) -> int:
    text = text.lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


# -- corpus and index ------------------------------------------------------------------------

def prepare(args) -> tuple[Path, Path, list[str]]:
    work = Path(args.work)
    corpus = work / f"syn{args.docs_label}"
    if not (corpus / "docs.jsonl").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_corpus.py"), "--docs",
                        str(args.docs), "--out", str(corpus), "-q"], check=True)
    live = work / "live"
    if live.exists():
        shutil.rmtree(live)
    live.mkdir(parents=True)
    shutil.copy(corpus / "docs.jsonl", live / "docs.jsonl")
    index = work / "live.idx"
    subprocess.run([sys.executable, "-m", "retrieval", "index", str(live / "docs.jsonl"),
                    "-o", str(index), "--force", "-q"], check=True, stdout=subprocess.DEVNULL)
    queries = [line.split("\t", 1)[1] for line in
               (corpus / "queries.tsv").read_text(encoding="utf-8").splitlines() if line]
    return live / "docs.jsonl", index, queries[:args.queries]


def change_corpus(docs_file: Path, n: int, round_: int, rng: random.Random) -> None:
    """Append ``n`` new documents and change ``n`` existing ones (rewritten file)."""
    lines = docs_file.read_text(encoding="utf-8").splitlines()
    picked = rng.sample(range(len(lines)), 2 * n)
    for i in picked[:n]:
        rec = json.loads(lines[i])
        rec["text"] = rec["text"] + f" changed in round {round_}"
        lines[i] = json.dumps(rec)
    for j, i in enumerate(picked[n:]):
        rec = json.loads(lines[i])
        lines.append(json.dumps({"id": f"new-{round_}-{j}", "text": rec["text"][::-1]}))
    tmp = docs_file.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(docs_file)


# -- server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int, max_k: int, log: Path,
                 extra: list[str] = ()) -> subprocess.Popen:
    with open(log, "wb") as fh:   # the server's own log (a traceback of any 500 is there)
        proc = subprocess.Popen([sys.executable, "-m", "retrieval", "serve", f"bench={index}",
                                 "--port", str(port), "--max-k", str(max_k), *extra],
                                stdout=subprocess.DEVNULL, stderr=fh)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /api/health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not answer /api/health within 120 s")


# -- clients --------------------------------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection: GET a path, read the JSON answer."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()


async def client(conn, paths, start, stop_at, budget, log):
    i = start
    # at least the budget, and on until the update has been published (so answers of the
    # new generation are checked too), within the time cap
    while (budget["left"] > 0 or not budget["updated"]) and time.monotonic() < stop_at:
        budget["left"] -= 1
        q = i % len(paths)
        t0 = time.perf_counter()
        try:
            status, body = await conn.send(paths[q])
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            log.append((q, time.perf_counter() - t0, 0, repr(exc).encode()))
            conn.close()
            conn.writer = None
        else:
            log.append((q, time.perf_counter() - t0, status, body))
        i += 1
        if budget["left"] == budget["half"]:
            budget["half_event"].set()


async def run_level(port, paths, n_clients, requests, seconds, on_half):
    log: list = []
    # the update starts after a third of the requests or a quarter of the time cap,
    # whichever comes first, so that it lands inside the run even on a slow machine
    budget = {"left": requests, "half": requests - requests // 3,
              "half_event": asyncio.Event(), "updated": False}
    conns = [Connection(port) for _ in range(n_clients)]
    t0 = time.perf_counter()
    stop_at = time.monotonic() + seconds
    stride = max(1, len(paths) // n_clients)
    tasks = [asyncio.create_task(client(c, paths, j * stride, stop_at, budget, log))
             for j, c in enumerate(conns)]

    async def half():
        try:
            await asyncio.wait_for(budget["half_event"].wait(), timeout=seconds / 4)
        except asyncio.TimeoutError:
            pass
        try:
            return await on_half()
        finally:
            # a fifth of the budget more, answered by the new generation
            budget["left"] = max(budget["left"], requests // 5)
            budget["updated"] = True
    updater = asyncio.create_task(half())
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    update_info = await updater
    for c in conns:
        c.close()
    return log, elapsed, update_info


# -- checking -------------------------------------------------------------------------------

def ranked(index: Index, queries: list[str], k: int, feedback: str) -> list:
    """In-process results of the server's default model with ``feedback`` (compiled
    kernels, as the server): ``batch_search``, or the feedback method's batch."""
    searcher = Searcher(index, compiled=True)
    if feedback == "none":
        return searcher.batch_search(queries, k=k)
    fb = make_feedback(feedback)
    return columnar(fb.batch_search_arrays(searcher, queries, k), index, len(queries))


class Expected:
    """In-process results per generation, ranked as the server is asked to rank."""

    def __init__(self, index_path: Path, queries: list[str], k: int, feedback: str):
        self.path, self.queries, self.k, self.feedback = index_path, queries, k, feedback
        self.by_generation: dict[int, list] = {}
        self.indexes: dict[int, Index] = {}

    def add_current(self) -> int:
        """Open the current generation (kept open: its mapped files outlive their
        removal); its results are computed when first checked, after the run, so the
        clients are never held up by them."""
        index = Index.open(self.path)
        g = int(index.generation)
        self.indexes.setdefault(g, index)
        return g

    def results(self, g: int):
        if g not in self.by_generation and g in self.indexes:
            res = ranked(self.indexes[g], self.queries, self.k, self.feedback)
            self.by_generation[g] = [([r.docid for r in rs], np.array([r.score for r in rs]))
                                     for rs in res]
        return self.by_generation.get(g)

    def check(self, log, batch: int = 0) -> dict:
        """Every answer against the searcher of its generation. ``batch``: the requests
        carried queries ``[q*batch, (q+1)*batch)`` each (POST /batch)."""
        errors = wrong = 0
        seen: dict[int, int] = {}
        max_diff = 0.0
        examples = []
        for q, _lat, status, body in log:
            if status != 200:
                errors += 1
                if len(examples) < 5:
                    examples.append(f"status {status}: {body[:200]!r}")
                continue
            data = json.loads(body)
            g = data["generation"]
            seen[g] = seen.get(g, 0) + 1
            want = self.results(g)
            if want is None:
                wrong += 1
                examples.append(f"generation {g} unknown to the checker")
                continue
            answers = [(q, data)] if not batch else \
                [((q * batch + j) % len(self.queries), a)
                 for j, a in enumerate(data["queries"])]
            for qi, answer in answers:
                w, diff = self._compare(want[qi], answer)
                if w:
                    wrong += 1
                    if len(examples) < 5:
                        examples.append(f"query {qi} generation {g}")
                else:
                    max_diff = max(max_diff, diff)
        return {"errors": errors, "wrong": wrong, "generations": seen,
                "max_score_diff": max_diff, "examples": examples}

    @staticmethod
    def _compare(want, data) -> tuple[bool, float]:
        """(wrong?, largest score difference) of one answer against the expected."""
        ids, scores = want
        got_ids = [r["docid"] for r in data["results"]]
        got_scores = np.array([r["score"] for r in data["results"]])
        if got_ids != ids or len(got_scores) != len(scores):
            return True, 0.0
        diff = float(np.max(np.abs(got_scores - scores))) if len(scores) else 0.0
        return diff > 1e-9, diff


def in_process(index: Index, queries: list[str], k: int, feedback: str,
               repeat: int = 3, loop: bool = True) -> dict:
    """Best of ``repeat``: one batch of all queries (``batch_search``, or with feedback
    the method's ``batch_search_arrays``: what the server does per request), and a loop of
    one query at a time."""
    s = Searcher(index, compiled=True)
    fb = make_feedback(feedback)
    plain = feedback == "none"
    batch = (lambda qs: s.batch_search(qs, k=k)) if plain else \
        (lambda qs: fb.batch_search_arrays(s, qs, k))
    one = (lambda q: s.search(q, k=k)) if plain else (lambda q: fb.search(s, q, k))
    batch(queries[:50])   # kernels loaded, tables built
    best_batch = best_loop = best_cpu = float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        batch(queries)
        best_batch = min(best_batch, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
        if loop:
            t = time.perf_counter()
            for q in queries:
                one(q)
            best_loop = min(best_loop, time.perf_counter() - t)
    return {"batch_qps": len(queries) / best_batch, "loop_qps": len(queries) / best_loop,
            "batch_cpu_ms": 1000 * best_cpu / len(queries)}


def summarise(log, elapsed) -> dict:
    lat = np.array([x[1] for x in log]) * 1000
    return {"requests": len(log), "seconds": elapsed, "throughput": len(log) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99))}


def http_requests(args, queries: list[str]) -> list[bytes]:
    """One HTTP request per query (GET /search), or per ``args.batch`` queries (POST)."""
    if not args.batch:
        snip = "" if args.snippets == "on" else "&snippets=0"
        return [(f"GET /api/bench/search?k={args.k}{snip}&feedback={args.feedback}&q="
                 + urllib.parse.quote(q)
                 + " HTTP/1.1\r\nHost: bench\r\n\r\n").encode() for q in queries]
    out = []
    for i in range(len(queries)):
        body = json.dumps({"queries": [queries[(i * args.batch + j) % len(queries)]
                                       for j in range(args.batch)],
                           "k": args.k, "snippets": args.snippets == "on",
                           "feedback": args.feedback}).encode()
        out.append(b"POST /api/bench/batch HTTP/1.1\r\nHost: bench\r\n"
                   b"Content-Type: application/json\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
    return out


NOOP = b"GET /api/health HTTP/1.1\r\nHost: bench\r\n\r\n"


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=30) as r:
        return json.loads(r.read())


def noop_level(port: int, n: int, args, server_pid: int) -> dict:
    """``n`` clients sending ``GET /api/health`` (one ``stat`` and a small JSON answer, no
    search): the most requests a second this server process can answer on this machine
    with these clients — the ceiling of any one-query-per-request figure."""
    before = loadavg()

    async def never():
        return None
    cpu0 = process_cpu(server_pid)
    log, elapsed, _ = asyncio.run(run_level(port, [NOOP], n, args.requests,
                                            min(args.seconds, 20.0), never))
    cpu1 = process_cpu(server_pid)
    errors = sum(1 for x in log if x[2] != 200)
    row = {"clients": n, **summarise(log, elapsed), "errors": errors,
           "server_cpu_ms_per_request": 1000 * (cpu1 - cpu0) / max(1, len(log)),
           "load_before": before, "load_after": loadavg()}
    print(f"{n:>3} clients, no-op GET /api/health: {row['throughput']:,.0f} req/s, "
          f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f}; errors {errors}; server "
          f"CPU {row['server_cpu_ms_per_request']:.2f} ms/request; "
          f"load {before} -> {row['load_after']}")
    return row


def one_level(args, port, paths, n, round_, docs_file, index_path, expected, rng,
              base, server_pid) -> dict:
    """``n`` clients with one ``retrieval update`` during the run; the checked figures."""
    async def on_half():
        change_corpus(docs_file, args.update_docs, round_, rng)
        t = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "retrieval", "update", str(index_path), "-q",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode:
            raise SystemExit(f"update failed: {err.decode()}")
        g = expected.add_current()
        return {"generation": g, "update_seconds": time.perf_counter() - t}
    # the reference measured again just before this run (best of 2): the machine's load
    # changes, and a ratio of figures taken minutes apart would mean little
    latest = expected.indexes[max(expected.indexes)]
    ref = in_process(latest, expected.queries, args.k, args.feedback, repeat=2, loop=False)
    before = loadavg()
    batches0 = health(port).get("search_batches")
    cpu0, own0 = process_cpu(server_pid), time.process_time()
    log, elapsed, upd = asyncio.run(run_level(port, paths, n, args.requests, args.seconds,
                                              on_half))
    cpu1, own1 = process_cpu(server_pid), time.process_time()
    batches1 = health(port).get("search_batches")
    row = {"clients": n, **summarise(log, elapsed), **expected.check(log, args.batch),
           "update": upd, "load_before": before, "load_after": loadavg()}
    row["queries_per_s"] = row["throughput"] * max(1, args.batch)
    row["reference"] = ref
    # single-query requests: how many the server ranked together on average
    row["requests_per_batch"] = None if not (batches0 and batches1) or args.batch else \
        (batches1["requests"] - batches0["requests"]) / max(
            1, batches1["batches"] - batches0["batches"])
    queries = len(log) * max(1, args.batch)
    # CPU per query: the server process's, and the clients' (this process); on a shared
    # machine steadier than wall time. The in-process reference's is base["batch_cpu_ms"]
    row["server_cpu_ms_per_query"] = 1000 * (cpu1 - cpu0) / max(1, queries)
    row["client_cpu_ms_per_query"] = 1000 * (own1 - own0) / max(1, queries)
    row["vs_batch_cpu"] = ref["batch_cpu_ms"] / max(1e-9, row["server_cpu_ms_per_query"])
    row["vs_batch"] = row["queries_per_s"] / ref["batch_qps"]
    print(f"{n:>3} clients: {row['throughput']:,.0f} req/s "
          f"({row['queries_per_s']:,.0f} queries/s), p50 {row['p50_ms']:.1f} ms, "
          f"p95 {row['p95_ms']:.1f}, p99 {row['p99_ms']:.1f}; errors {row['errors']}, "
          f"wrong {row['wrong']}; generations {row['generations']}; "
          f"{row['vs_batch']:.0%} of in-process batch ({ref['batch_qps']:,.0f} q/s just "
          f"before); server CPU {row['server_cpu_ms_per_query']:.2f} ms/query (in-process "
          f"batch {ref['batch_cpu_ms']:.2f}: {row['vs_batch_cpu']:.0%}), clients' "
          f"{row['client_cpu_ms_per_query']:.2f}"
          + (f"; {row['requests_per_batch']:.1f} requests per batch"
             if row["requests_per_batch"] else "")
          + f"; load {before} -> {row['load_after']}")
    for e in row["examples"]:
        print("   ", e)
    return row


# -- main -----------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", default="100k", help="synthetic corpus size (default 100k)")
    p.add_argument("--queries", type=int, default=1000, help="distinct queries (default 1000)")
    p.add_argument("--clients", default="1,8,64", help="client counts (default 1,8,64)")
    p.add_argument("--requests", type=int, default=4000,
                   help="answers per client count (default 4000)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="time cap per client count (default 60)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--snippets", choices=("on", "off"), default=None,
                   help="ask for snippets or not (default: on for single queries, the "
                        "page's request; off with --batch, a program's)")
    p.add_argument("--feedback", default="none",
                   help="the requests' feedback method, and the in-process reference's "
                        "(default none: the reference is Searcher.batch_search, as in the "
                        "issue; rm3 is the server's default when a request names none)")
    p.add_argument("--batch", type=int, default=0, metavar="N",
                   help="send N queries per request to POST /batch instead of one per "
                        "GET /search (default 0: single queries)")
    p.add_argument("--update-docs", type=int, default=100,
                   help="documents added and changed by each mid-run update (default 100)")
    p.add_argument("--work", default="/tmp/retrieval-bench-serve",
                   help="work folder (corpus, index; default /tmp/retrieval-bench-serve)")
    p.add_argument("--noop", choices=("on", "off"), default="on",
                   help="before each client count, the same clients on GET /api/health "
                        "(no search): the request-rate ceiling (default on)")
    p.add_argument("--server-args", default="", metavar="ARGS",
                   help="more options for 'retrieval serve', e.g. \"--http h11 --loop asyncio\"")
    p.add_argument("--out", default=None, help="write load.md and load.json here")
    args = p.parse_args(argv)
    args.noop = args.noop == "on"
    if args.snippets is None:
        args.snippets = "off" if args.batch else "on"
    args.docs_label = args.docs
    args.docs = parse_count(args.docs)
    levels = [int(c) for c in args.clients.split(",")]

    docs_file, index_path, queries = prepare(args)
    expected = Expected(index_path, queries, args.k, args.feedback)
    g0 = expected.add_current()
    base = in_process(expected.indexes[g0], queries, args.k, args.feedback)
    print(f"in-process, generation {g0}, feedback {args.feedback}: "
          f"batch {base['batch_qps']:,.0f} q/s, "
          f"search loop {base['loop_qps']:,.0f} q/s (k={args.k}, load {loadavg()})")

    port = free_port()
    server_log = Path(args.work) / "server.log"
    server = start_server(index_path, port, max(args.k, 1000), server_log,
                          args.server_args.split())
    print(f"server log: {server_log}")
    paths = http_requests(args, queries)
    rng = random.Random(0)
    rows, noop = [], []
    try:
        for round_, n in enumerate(levels, start=1):
            if args.noop:
                noop.append(noop_level(port, n, args, server.pid))
            rows.append(one_level(args, port, paths, n, round_, docs_file, index_path,
                                  expected, rng, base, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    report = {"docs": args.docs, "queries": len(queries), "k": args.k,
              "snippets": args.snippets, "batch": args.batch, "feedback": args.feedback,
              "requests_cap": args.requests,
              "seconds_cap": args.seconds, "update_docs": args.update_docs,
              "server_args": args.server_args, "in_process": base, "levels": rows,
              "noop": noop, "python": platform.python_version(),
              "cpus": os.cpu_count()}
    if args.out:
        write(Path(args.out), report, args)
    return 1 if any(r["errors"] or r["wrong"] for r in rows) else 0


def write(out: Path, report: dict, args) -> None:
    out.mkdir(parents=True, exist_ok=True)
    name = f"load{args.docs_label}" + ("" if args.snippets == "on" else "-nosnippets") \
        + (f"-batch{args.batch}" if args.batch else "") \
        + ("" if args.feedback == "none" else f"-{args.feedback}")
    (out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    b = report["in_process"]
    reference = "`batch_search`" if args.feedback == "none" else \
        f"`{args.feedback}` feedback's `batch_search_arrays`"
    lines = [f"# retrieval serve under load: {report['docs']:,} synthetic documents",
             "",
             f"`python scripts/bench_serve.py --docs {args.docs_label} --clients {args.clients} "
             f"--requests {args.requests} --snippets {args.snippets}"
             + (f" --batch {args.batch}" if args.batch else "")
             + (f" --feedback {args.feedback}" if args.feedback != "none" else "")
             + (f" --server-args \"{args.server_args}\"" if args.server_args else "")
             + f" --out {args.out}`; "
             f"{report['queries']} queries, k={report['k']}, snippets {args.snippets}, "
             f"feedback {args.feedback}; "
             f"clients and server on the same {report['cpus']} cores (127.0.0.1, keep-alive "
             f"HTTP/1.1). Each run: `retrieval update` (+{args.update_docs} new, "
             f"{args.update_docs} changed documents) after a third of the requests or a "
             f"quarter of the time cap, the run going on until it is published and a fifth "
             f"of the requests more are answered (or the time cap); every "
             f"answer checked against an in-process searcher of the generation it names.",
             "",
             f"In-process on the same queries, ranked the same way (compiled kernels, one "
             f"thread): one batch of all ({reference}) "
             f"{b['batch_qps']:,.0f} q/s, a loop of one query at a time "
             f"{b['loop_qps']:,.0f} q/s.",
             "",
             "The reference is measured again (best of 2) just before each run; "
             "*of batch_search* is the run's queries/s over it; *CPU ratio* is the "
             "reference's CPU per query over the server process's (user + sys, steadier "
             "than wall time on a shared machine; the clients' own CPU is not in it; the "
             "server's includes opening and warming the new generation); *requests per "
             "batch*: single-query requests the server ranked together on average.",
             "",
             "| clients | requests | req/s | queries/s | p50 ms | p95 ms | p99 ms | errors | "
             "wrong | generations answered | update s | reference q/s | of batch_search | "
             "server CPU ms/query | reference CPU ms/query | CPU ratio | "
             "requests per batch | load avg before → after |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
             "---:|---|"]
    for r in report["levels"]:
        gens = ", ".join(f"g{g}: {n}" for g, n in sorted(r["generations"].items()))
        upd = f"{r['update']['update_seconds']:.1f}" if r["update"] else "—"
        lines.append(f"| {r['clients']} | {r['requests']:,} | {r['throughput']:,.0f} | "
                     f"{r['queries_per_s']:,.0f} | "
                     f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['errors']} | {r['wrong']} | {gens} | {upd} | "
                     f"{r['reference']['batch_qps']:,.0f} | {r['vs_batch']:.0%} | "
                     f"{r['server_cpu_ms_per_query']:.2f} | "
                     f"{r['reference']['batch_cpu_ms']:.2f} | {r['vs_batch_cpu']:.0%} | "
                     + ("—" if not r["requests_per_batch"] else
                        f"{r['requests_per_batch']:.1f}")
                     + f" | {r['load_before']} → {r['load_after']} |")
    if report["noop"]:
        lines += ["", "Ceiling: the same clients on `GET /api/health` (no search, a small JSON "
                  "answer), just before each run above. No one-query-per-request server in "
                  "this process model can answer more requests a second on this machine.", "",
                  "| clients | no-op req/s | p50 ms | p99 ms | errors | server CPU ms/request "
                  "| of batch_search | search run's req/s of it | load avg before → after |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c, r in zip(report["noop"], report["levels"]):
            lines.append(f"| {c['clients']} | {c['throughput']:,.0f} | {c['p50_ms']:.1f} | "
                         f"{c['p99_ms']:.1f} | {c['errors']} | "
                         f"{c['server_cpu_ms_per_request']:.2f} | "
                         f"{c['throughput'] / r['reference']['batch_qps']:.0%} | "
                         f"{r['throughput'] / c['throughput']:.0%} | "
                         f"{c['load_before']} → {c['load_after']} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
