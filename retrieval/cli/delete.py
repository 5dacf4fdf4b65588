"""``retrieval delete``: remove documents from an index by id."""

from __future__ import annotations

import os
import sys

from ..errors import InputError, ParameterError
from ..lifecycle import delete_documents
from ..safeio import read_input, read_stream
from ._change import print_change
from ._common import make_parser, run

DESCRIPTION = """\
Delete documents by id, as a new generation (crash-safe; readers are not disturbed; one
writer at a time). An id not in the index is an error and nothing is deleted, unless
--missing-ok. A deleted document whose file is still in an indexed folder comes back at
the next 'retrieval update': remove the file to drop it for good.

--from-file reads ids one per line ('-': standard input); blank lines are skipped, and
spaces inside or around an id are part of it (only the line end is removed).
"""


def build_parser():
    p = make_parser("delete", DESCRIPTION)
    p.add_argument("index", metavar="INDEX", help="the index to change")
    p.add_argument("docids", nargs="*", metavar="DOCID", help="ids of documents to delete")
    p.add_argument("--from-file", metavar="FILE",
                   help="read more ids from FILE, one per line ('-' = standard input)")
    p.add_argument("--missing-ok", action="store_true",
                   help="ignore ids that are not in the index")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="how to print the summary (default: table)")
    return p


def read_ids(name: str) -> list[str]:
    """Ids from a file (or stdin for ``-``), one per line; errors name the file and line."""
    shown = "<stdin>" if name == "-" else name
    try:
        if name == "-":
            raw = read_stream(sys.stdin.buffer, shown)
        elif os.path.isdir(name):
            raise InputError("a folder, not a file of ids (one per line)", path=shown)
        else:
            raw = read_input(name)  # a regular file, size-capped (retrieval.safeio)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=shown) from None
    ids = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            continue
        try:
            ids.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text; ids must be UTF-8, one per line",
                             path=shown, line=lineno) from None
    return ids


def _main(args) -> int:
    ids = list(args.docids)
    if args.from_file is not None:
        ids += read_ids(args.from_file)
    if not ids:
        if args.from_file is not None:
            shown = "<stdin>" if args.from_file == "-" else args.from_file
            raise InputError("no document ids in the file (one per line); nothing was "
                             "deleted", path=shown)
        raise ParameterError("no document id given; pass DOCID... or --from-file FILE")
    change = delete_documents(args.index, ids, missing_ok=args.missing_ok)
    print_change(change, args.format)
    return 0


def main(argv=None) -> int:
    return run("delete", build_parser(), _main, argv)
