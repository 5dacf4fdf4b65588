"""``retrieval check``: verify an index completely."""

from __future__ import annotations

from pathlib import Path

from ..index import read_manifest
from ..lifecycle import check
from ._common import dump_json, make_parser, run

DESCRIPTION = """\
Verify an index: the manifest, the generation folder, every array file's size, type,
shape and full checksum (opening an index checks only a sample), and the arrays' internal
consistency (postings agree with documents, counts add up, ids sorted and unique).

Exit status 0 and 'ok' when the index is sound; 1 and one line per problem when it is not
(then rebuild it with 'retrieval index ... --force'); 2 when INDEX does not exist.
"""


def build_parser():
    p = make_parser("check", DESCRIPTION)
    p.add_argument("index", metavar="INDEX", help="the index to verify")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="plain lines (default) or JSON {index, ok, problems}")
    return p


def _main(args) -> int:
    path = Path(args.index)
    if not path.exists() or not path.is_dir():
        read_manifest(path)  # the one-line error for a path that holds no index at all
    problems = check(path)
    if args.format == "json":
        print(dump_json({"index": str(path), "ok": not problems, "problems": problems}))
    elif problems:
        for line in problems:
            print(line)
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; "
              f"rebuild the index (retrieval index ... --force)")
    else:
        print("ok")
    return 1 if problems else 0


def main(argv=None) -> int:
    return run("check", build_parser(), _main, argv)
