"""``retrieval add``: index more files into an existing index."""

from __future__ import annotations

from ..lifecycle import add_paths
from ._change import print_change
from ._common import Progress, make_parser, run

DESCRIPTION = """\
Add folders or files to an existing index, as a new generation (crash-safe; readers of the
index are not disturbed; one writer at a time).

A path inside a folder the index was built from gets the ids a rebuild would give it
(relative to that folder); other paths get ids by the usual rules. An id already in the
index is an error (nothing is written) unless --replace. For files that changed, use
'retrieval update'.
"""


def build_parser():
    p = make_parser("add", DESCRIPTION)
    p.add_argument("index", metavar="INDEX", help="the index to change")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to add")
    p.add_argument("--replace", action="store_true",
                   help="re-index documents whose id is already in the index")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="how to print the summary (default: table)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _main(args) -> int:
    with Progress(None, "adding", enabled=False if args.quiet else None,
                  unit=" files") as bar:
        change = add_paths(args.index, args.paths, replace=args.replace,
                           on_file=lambda _f: bar.update(1))
    print_change(change, args.format)
    return 0


def main(argv=None) -> int:
    return run("add", build_parser(), _main, argv)
