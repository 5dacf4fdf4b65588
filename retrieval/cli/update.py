"""``retrieval update``: bring an index up to date with its source folders."""

from __future__ import annotations

from ..lifecycle import update
from ._change import print_change
from ._common import Progress, make_parser, run

DESCRIPTION = """\
Re-read the folders and files the index was built from (and added with 'retrieval add'):
new files are added, changed ones re-indexed (found by content hash; unchanged documents
are not analysed again), and removed ones deleted. Written as a new generation
(crash-safe; readers are not disturbed; one writer at a time).

An indexed folder or file that is gone is an error, so a missing disk does not empty the
index: restore it, or pass --forget-missing to delete its documents.
"""


def build_parser():
    p = make_parser("update", DESCRIPTION)
    p.add_argument("index", metavar="INDEX", help="the index to update")
    p.add_argument("--forget-missing", action="store_true",
                   help="delete the documents of indexed sources that no longer exist")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would change, write nothing")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="how to print the summary (default: table)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _main(args) -> int:
    with Progress(None, "reading", enabled=False if args.quiet else None,
                  unit=" files") as bar:
        change = update(args.index, forget_missing=args.forget_missing,
                        dry_run=args.dry_run, on_file=lambda _f: bar.update(1))
    print_change(change, args.format, dry_run=args.dry_run)
    return 0


def main(argv=None) -> int:
    return run("update", build_parser(), _main, argv)
