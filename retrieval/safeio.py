"""Bounded, regular-file-only reading of files a user names, and a cap on workers.

Every file the engine reads because a user named it (``--queries``, ``--from-file``,
qrels, runs, topics) goes through :func:`open_input` or :func:`read_input`:

* it must be a **regular file** (checked with ``fstat`` on the opened descriptor, so a
  path swapped between a check and the open cannot slip through). ``/dev/zero``, a
  named pipe, ``/dev/urandom`` or a folder give one :class:`~retrieval.errors.InputError`
  naming the path, instead of a read that never ends or exhausts memory;
* with ``nofollow=True`` the last path component must not be a symbolic link
  (``O_NOFOLLOW``): for files inside an index folder (manifest, ``generation.json``,
  ``lock``), which the engine itself wrote and which are never links;
* reads are **capped**: a file larger than the cap is refused before it is read, and the
  reader also stops at the cap if the file grows while it is read.

The default cap for user input is :data:`DEFAULT_MAX_INPUT_BYTES` (4 GiB); the
environment variable ``RETRIEVAL_MAX_INPUT_BYTES`` (a byte count, suffixes K/M/G
allowed, e.g. ``16G``) raises or lowers it. 4 GiB is above the largest TREC file in
common use (an MS MARCO passage dev run of 6,980 queries × 1,000 results is about
0.4 GB) and below what the readers would need in memory to hold more (about 3–5× the
file size for a run). Files the index writes itself are small; the index side passes
its own ``max_bytes`` (e.g. :data:`MAX_METADATA_BYTES`).

:func:`load_json` parses JSON with a **nesting-depth limit** (:data:`MAX_JSON_DEPTH`),
checked by a linear scan before :func:`json.loads`, so a file of 100,000 ``[`` gives one
line instead of a ``RecursionError``.

:func:`clamp_jobs` caps a requested number of worker processes at the CPUs this process
may run on (``os.sched_getaffinity``) and at the units of work available.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import stat
from typing import IO, NamedTuple

from .errors import InputError, ParameterError

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES", "MAX_METADATA_BYTES", "MAX_JSON_DEPTH", "ENV_MAX_INPUT",
    "max_input_bytes", "open_input", "read_input", "read_stream", "load_json",
    "loads_json", "json_depth", "JobsClamp", "clamp_jobs", "available_cpus", "clip",
]

#: default cap on a user-named input file (bytes)
DEFAULT_MAX_INPUT_BYTES = 4 * 2**30
#: a suggested cap for the small JSON files an index keeps (manifest, generation.json)
MAX_METADATA_BYTES = 64 * 2**20
#: deepest nesting of arrays/objects :func:`load_json` accepts (a manifest needs 4)
MAX_JSON_DEPTH = 64
#: the environment variable that sets the cap on user input
ENV_MAX_INPUT = "RETRIEVAL_MAX_INPUT_BYTES"

_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def max_input_bytes() -> int:
    """The cap on user-named input files: ``$RETRIEVAL_MAX_INPUT_BYTES`` or 4 GiB."""
    text = os.environ.get(ENV_MAX_INPUT, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_BYTES
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:i?B)?", text.upper())
    if not match or int(match.group(1)) < 1:
        raise ParameterError(f"{ENV_MAX_INPUT}={text!r} is not a byte count; set it to a "
                             f"whole number, optionally with K, M or G (e.g. 16G)")
    return int(match.group(1)) * _SUFFIX[match.group(2)]


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def _too_big(path, limit: int, env: bool) -> InputError:
    hint = (f"; if the file is right, raise the cap with {ENV_MAX_INPUT} (e.g. "
            f"{ENV_MAX_INPUT}=16G)" if env else "")
    return InputError(f"larger than the {_size_text(limit)} this reader accepts{hint}",
                      path=path)


class _CappedReader(io.RawIOBase):
    """A raw reader over a file descriptor that refuses to read past ``limit`` bytes."""

    def __init__(self, fd: int, path, limit: int, env: bool) -> None:
        super().__init__()
        self._fd, self._path, self._limit, self._env = fd, path, limit, env
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._limit + 1 - self._done)
        if want <= 0:
            raise _too_big(self._path, self._limit, self._env)
        data = os.read(self._fd, want)
        n = len(data)
        self._done += n
        if self._done > self._limit:
            raise _too_big(self._path, self._limit, self._env)
        view[:n] = data
        return n

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def _open_fd(path, nofollow: bool) -> int:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if nofollow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        raise InputError("no such file; check the path", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=path) from None
    except OSError as exc:
        if nofollow and exc.errno == errno.ELOOP:
            raise InputError("is a symbolic link, expected a regular file", path=path) \
                from None
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None


def open_input(path, *, max_bytes: int | None = None, nofollow: bool = False,
               buffer_size: int = 1 << 20) -> IO[bytes]:
    """Open ``path`` for reading as a buffered binary file, safely (see the module).

    ``max_bytes`` defaults to :func:`max_input_bytes`. Raises :class:`InputError`
    naming the path when it is missing, not a regular file, a symbolic link (with
    ``nofollow``), unreadable or larger than the cap (also when it grows past the cap
    while being read). The descriptor is opened non-blocking, so even a named pipe is
    refused at once instead of waiting for a writer.
    """
    env = max_bytes is None
    limit = max_input_bytes() if env else int(max_bytes)
    fd = _open_fd(path, nofollow)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory, expected a file", path=path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("is not a regular file (a device, pipe or socket); save the "
                             "data to a file and give its path", path=path)
        if info.st_size > limit:
            raise _too_big(path, limit, env)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(_CappedReader(fd, path, limit, env), buffer_size=buffer_size)


def read_input(path, *, max_bytes: int | None = None, nofollow: bool = False) -> bytes:
    """All bytes of ``path``, read through :func:`open_input` (same checks and cap)."""
    with open_input(path, max_bytes=max_bytes, nofollow=nofollow) as fh:
        return fh.read()


def read_stream(stream: IO[bytes], name: str = "<stdin>", *,
                max_bytes: int | None = None) -> bytes:
    """All bytes of an already open stream (standard input), stopping at the cap."""
    env = max_bytes is None
    limit = max_input_bytes() if env else int(max_bytes)
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_big(name, limit, env)
    return data


# ---------------------------------------------------------------------------------------
# JSON with a depth limit

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets in strings ignored).

    A linear scan without recursion; for malformed text it is an upper bound of what
    a parser would reach before failing.
    """
    depth = deepest = 0
    bare = _JSON_STRING.sub("", text) if '"' in text else text
    for char in re.findall(r"[\[\]{}]", bare):
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def loads_json(text: str | bytes, *, path=None, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads`` that refuses nesting deeper than ``max_depth`` and malformed text
    with an :class:`InputError` (naming ``path`` when given) instead of a traceback."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})",
                             path=path) from None
    depth = json_depth(text)
    if depth > max_depth:
        raise InputError(f"JSON nested {depth} levels deep (at most {max_depth} "
                         f"accepted)", path=path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"not valid JSON ({getattr(exc, 'msg', exc)})", path=path,
                         line=line) from None


def load_json(path, *, max_bytes: int = MAX_METADATA_BYTES, nofollow: bool = True,
              max_depth: int = MAX_JSON_DEPTH):
    """Read and parse a JSON file safely: regular file, ``O_NOFOLLOW`` by default,
    at most ``max_bytes``, nesting at most ``max_depth``. Errors are
    :class:`InputError` naming ``path`` (an index reader may re-raise them as
    "damaged index")."""
    return loads_json(read_input(path, max_bytes=max_bytes, nofollow=nofollow),
                      path=path, max_depth=max_depth)


# ---------------------------------------------------------------------------------------
# worker processes

class JobsClamp(NamedTuple):
    """The outcome of :func:`clamp_jobs`: ``jobs`` to use, and why it differs from
    ``requested`` (``reason`` is "" when it does not)."""
    jobs: int
    requested: int
    cpus: int
    work: int | None
    reason: str

    @property
    def clamped(self) -> bool:
        return self.jobs != self.requested

    def note(self, flag: str = "--jobs") -> str:
        """One line for the CLI, e.g. ``note: --jobs 32 lowered to 2 (2 CPUs available)``."""
        return f"note: {flag} {self.requested} lowered to {self.jobs} ({self.reason})"


def available_cpus() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` where
    affinity is not available); at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def clamp_jobs(requested: int, work: int | None = None, *, cpus: int | None = None) -> JobsClamp:
    """Clamp a requested worker count to ``[1, min(CPUs, work)]``.

    More processes than CPUs only add start-up cost and memory (each worker holds its
    own copy of the analyzer and buffers); more than the units of ``work`` (documents,
    chunks, queries) leaves some idle. ``work=None`` means unknown (only the CPU cap
    applies); ``work=0`` gives 1. ``requested`` below 1 is a ParameterError.
    """
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ParameterError(f"jobs must be a whole number >= 1, got {requested!r}")
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    jobs, reasons = requested, []
    if jobs > cpus:
        jobs = cpus
        reasons.append(f"{cpus} CPU{'s' if cpus != 1 else ''} available")
    if work is not None and jobs > max(1, work):
        jobs = max(1, work)
        reasons.append(f"only {work:,} unit{'s' if work != 1 else ''} of work")
    return JobsClamp(jobs, requested, cpus, work, "; ".join(reasons))


# ---------------------------------------------------------------------------------------
# messages

def clip(text: str, limit: int = 60) -> str:
    """``text`` shortened for a message: its first ``limit`` characters, then
    ``… (N characters)`` (a 1M-character query term is not echoed whole)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"

