"""Running one batch as ``jobs`` contiguous parts at once: threads (when the compiled
kernels are used: they release the GIL, and the threads share everything) or forked
worker processes (which share the memory-mapped index). Results are identical to the
serial search: the parts are searched by the same code and joined in query order."""

from __future__ import annotations

import numpy as np

from .ranking import BatchResult, joined


def part_bounds(n: int, jobs: int) -> list[int]:
    """Where each of ``jobs`` contiguous parts of ``n`` queries starts (and the end)."""
    return np.linspace(0, n, jobs + 1).astype(int).tolist()


def threaded(search, queries, jobs: int) -> BatchResult:
    """``search(part)`` of each part in its own thread, joined."""
    from concurrent.futures import ThreadPoolExecutor   # not on a one-job search's start-up
    bounds = part_bounds(len(queries), jobs)
    parts = [list(queries[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(search, parts))
    return joined(results, bounds)


def _run_part(search, part, conn) -> None:
    """In a forked worker: ``search(part)`` (or the exception it raised) sent back."""
    try:
        result = search(part)
    except BaseException as exc:   # re-raised in the parent
        result = exc
    try:
        conn.send(result)
    finally:
        conn.close()


def forked(search, queries, jobs: int) -> BatchResult:
    """``search(part)`` of each part in a forked worker process, joined. The searcher
    reaches the workers through ``fork`` itself (the process arguments are not pickled
    under ``fork``), so no module state is set."""
    import multiprocessing as mp   # here only: a plain search does not load it
    ctx = mp.get_context("fork")
    bounds = part_bounds(len(queries), jobs)
    workers = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_run_part, args=(search, list(queries[a:b]), send),
                           daemon=True)
        proc.start()
        send.close()
        workers.append((proc, recv))
    results, error = [], None
    for proc, recv in workers:
        try:
            got = recv.recv()
        except EOFError:
            got = RuntimeError(f"a search worker process exited with code "
                               f"{proc.join() or proc.exitcode}")
        recv.close()
        proc.join()
        if isinstance(got, BaseException):
            error = error or got
        results.append(got)
    if error is not None:
        raise error
    return joined(results, bounds)


def can_fork() -> bool:
    import multiprocessing as mp
    return "fork" in mp.get_all_start_methods()
