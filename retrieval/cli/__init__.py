"""The ``retrieval`` command line: one module per subcommand, each ``main(argv) -> int``."""

from __future__ import annotations

import importlib
import sys

from .._version import __version__

#: subcommand name -> (module, one-line description)
COMMANDS = {
    "index": ("retrieval.cli.index", "index a folder of text (or a JSON Lines file)"),
    "add": ("retrieval.cli.add", "add folders or files to an index"),
    "delete": ("retrieval.cli.delete", "delete documents from an index by id"),
    "update": ("retrieval.cli.update", "re-read an index's folders: add new, re-index "
                                       "changed, delete removed files"),
    "check": ("retrieval.cli.check", "verify an index completely (full checksums)"),
    "search": ("retrieval.cli.search", "rank an index's documents for a query"),
    "info": ("retrieval.cli.info", "print an index's manifest and statistics"),
    "serve": ("retrieval.cli.serve", "serve indexes over HTTP: JSON API and search page"),
    "evaluate": ("retrieval.cli.evaluate", "evaluate TREC runs against relevance judgments"),
    "benchmark": ("retrieval.cli.benchmark", "index, search and evaluate test collections"),
    "tune": ("retrieval.cli.tune", "choose parameters by cross-validation over queries"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: retrieval COMMAND [options]   (retrieval COMMAND --help for details)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"retrieval {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        print(f"retrieval: error: unknown command {name!r}; {hint}choose one of "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


def entry_point() -> None:  # console script
    sys.exit(main())
