"""The report helper shared by the benchmark scripts in ``scripts/``.

A benchmark ends the same way everywhere: a JSON file with the figures and the machine
they were measured on, a Markdown file with the table the README quotes, the paths
printed, and a user mistake (a missing collection, a malformed file: any
:class:`~retrieval.errors.RetrievalError`) reported in one line with exit status 2::

    from reporting import machine, run_main, write_report

    def main(argv=None) -> int:
        ...
        write_report(out_folder, "docs100000", {"machine": machine(), ...}, markdown)
        return 0

    if __name__ == "__main__":
        run_main(main, "bench_foo.py")

Scripts are run as ``python scripts/NAME.py``, which puts ``scripts/`` on ``sys.path``,
so ``import reporting`` finds this module (tests load it the same way).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from retrieval._version import __version__
from retrieval.errors import RetrievalError


def machine() -> dict:
    """Where the figures were measured: CPUs, platform, Python, package version and the
    load average (1, 5, 15 min) — figures from a shared machine need it beside them."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "package_version": __version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def write_report(folder: str | os.PathLike, stem: str, data, markdown: str | None = None, *,
                 quiet: bool = False) -> tuple[Path, Path | None]:
    """Write ``folder/stem.json`` (``data``, indented) and ``folder/stem.md`` (when
    ``markdown`` is given, ending in a newline); print the paths on stderr unless
    ``quiet``. Returns the two paths (None for an absent Markdown file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    md_path = None
    if markdown is not None:
        md_path = folder / f"{stem}.md"
        md_path.write_text(markdown if markdown.endswith("\n") else markdown + "\n",
                           encoding="utf-8")
    if not quiet:
        wrote = f"{json_path}" + (f" and {md_path}" if md_path is not None else "")
        print(f"wrote {wrote}", file=sys.stderr)
    return json_path, md_path


def run_main(main: Callable[[], int | None], prog: str) -> None:
    """Run a script's ``main()`` and exit with its status; a :class:`RetrievalError`
    (a user mistake: missing or malformed input) ends in one line on stderr naming the
    script, and exit status 2 — never a traceback."""
    try:
        status = main()
    except RetrievalError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status or 0)
