"""Shared pieces of the subcommands: one-line errors, progress bars, tables."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from ..errors import RetrievalError


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        hint = self.suggestion(message)
        sys.stderr.write(f"{self.prog}: error: {message}{hint} (see '{self.prog} --help')\n")
        raise SystemExit(2)

    def suggestion(self, message: str) -> str:
        """``"; did you mean --mu?"`` for a mistyped option or choice in an argparse
        error ``message`` (difflib's closest match, ratio >= 0.6), else ``""``."""
        import difflib
        import re
        match = re.search(r"unrecognized arguments: (.*)$", message)
        if match:
            options = [o for o in self._option_string_actions if o.startswith("--")]
            for token in match.group(1).split():
                if token.startswith("-"):
                    close = difflib.get_close_matches(token.split("=")[0], options, n=1)
                    if close:
                        return f"; did you mean {close[0]}?"
            return ""
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = [c.strip().strip("'") for c in match.group(2).split(",")]
            close = difflib.get_close_matches(match.group(1), choices, n=1)
            if close:
                return f"; did you mean {close[0]!r}?"
        return ""

    def parse_args(self, args=None, namespace=None):
        """Options may come between positionals (``search INDEX --mu 500 glacier``):
        plain argparse would give ``glacier`` up as an unrecognized argument."""
        try:
            return self.parse_intermixed_args(args, namespace)
        except TypeError:  # a parser intermixing cannot handle (REMAINDER, subparsers)
            return super().parse_args(args, namespace)


def make_parser(command: str, description: str) -> ArgumentParser:
    return ArgumentParser(prog=f"retrieval {command}", description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def run(command: str, parser: ArgumentParser, body: Callable[[argparse.Namespace], int],
        argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run ``body``; turn user errors into one line and exit 2."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings():
            # numerical warnings are the library's business: never shown to a CLI user
            warnings.simplefilter("ignore", RuntimeWarning)
            return body(args)
    except RetrievalError as exc:
        print(f"retrieval {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"retrieval {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (e.g. `head`) went away: not an error worth a traceback
        _silence_stdout()
        return 0
    except OSError as exc:
        print(f"retrieval {command}: error: {os_error_message(exc, _where(args))}",
              file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass


#: what to do about an operating-system error, by errno
_OS_HINTS = {
    errno.ENOSPC: "free some space (or write elsewhere) and run the command again",
    errno.EDQUOT: "free some space within your disk quota and run the command again",
    errno.EFBIG: "the file-size limit was reached (see 'ulimit -f'); raise it or write "
                 "elsewhere",
    errno.EROFS: "write to another place",
    errno.EACCES: "check the permissions, or choose another path",
    errno.EPERM: "check the permissions, or choose another path",
    errno.EEXIST: "a file is in the way; remove it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "a folder is in the way; choose another path",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "check the path for symbolic links that loop",
    errno.EIO: "the device reported an input/output error; check the disk",
    errno.EMFILE: "too many open files; raise 'ulimit -n'",
    errno.ENOMEM: "not enough memory",
}


def os_error_message(exc: OSError, fallback_path: str | None = None) -> str:
    """One line for an :class:`OSError`: the path, the cause and what to do.

    ``fallback_path`` names the place the command was working on when the error does
    not carry a file name (a failed ``write`` on an open file, for example).

    >>> os_error_message(OSError(errno.EROFS, "Read-only file system", "/mnt/x.idx"))
    '/mnt/x.idx: read-only file system [EROFS]; write to another place'
    """
    path = exc.filename if exc.filename is not None else None
    where = path if path is not None else fallback_path
    cause = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
    cause = cause[:1].lower() + cause[1:]
    code = errno.errorcode.get(exc.errno or -1)
    if code:
        cause += f" [{code}]"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    if where is None:
        text = cause
    elif path is None:
        text = f"{cause} while working on {_printable(where)}"
    else:
        text = f"{_printable(where)}: {cause}"
        if fallback_path is not None and not os.fspath(path).startswith(fallback_path):
            text += f" (while working on {_printable(fallback_path)})"
    hint = _OS_HINTS.get(exc.errno or -1)
    if exc.errno == errno.EEXIST and path is not None and os.path.isfile(path):
        hint = "it is a file where a folder is needed; choose another path"
    return f"{text}; {hint}" if hint else text


def _printable(path) -> str:
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    return os.fsencode(text).decode("utf-8", errors="backslashreplace").replace("\n", "\\n")


def _where(args: argparse.Namespace) -> str | None:
    """The path a command writes or reads, for an OSError without a file name."""
    for name in ("output", "index"):
        value = getattr(args, name, None)
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    return None


def error_line(command: str, message: str) -> None:
    print(f"retrieval {command}: error: {message}", file=sys.stderr)


def warn_missing_judged(command: str, collection) -> int:
    """One warning line on stderr when ``collection``'s judgments name documents that
    are not in its corpus (their count, the queries they touch, an example); returns
    the count."""
    missing = collection.unjudged_corpus_judgments()
    if missing:
        relevant = sum(1 for r in missing if r.relevance >= 1)
        queries = len({r.qid for r in missing})
        print(f"retrieval {command}: warning: {collection.name}: {len(missing):,} judgments "
              f"({relevant:,} relevant, {queries:,} queries) name documents that are not "
              f"in the corpus, e.g. {missing[0].docid!r}; those can never be retrieved",
              file=sys.stderr)
    return len(missing)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


class Progress:
    """A minimal progress bar on stderr, drawn only when stderr is a terminal.

    Used by the CLI only; the library never prints.
    """

    def __init__(self, total: int | None, label: str, *, enabled: bool | None = None,
                 unit: str = "") -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self) -> "Progress":
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self._draw(force=True)
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def update(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(frac * 30)
            bar = "#" * filled + "-" * (30 - filled)
            text = (f"\r{self.label} [{bar}] {self.done}/{self.total}{self.unit} "
                    f"{frac:4.0%} {rate:,.0f}/s {elapsed:5.1f}s")
        else:
            text = f"\r{self.label} {self.done}{self.unit} {rate:,.0f}/s {elapsed:5.1f}s"
        sys.stderr.write(text)
        sys.stderr.flush()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                 align: str | None = None) -> str:
    """Plain-text table; ``align`` is a string of 'l'/'r' per column (default: numbers right)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    if align is None:
        align = "".join(
            "r" if rows and isinstance(rows[0][i], (int, float)) else "l"
            for i in range(len(headers))
        )

    def fmt(row):
        return "  ".join(
            (v.rjust(w) if a == "r" else v.ljust(w)) for v, w, a in zip(row, widths, align)
        ).rstrip()

    out = [fmt(list(headers)), fmt(["-" * w for w in widths])]
    out += [fmt(row) for row in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def dump_json(obj: object) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)
