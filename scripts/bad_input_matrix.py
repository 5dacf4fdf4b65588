#!/usr/bin/env python3
"""The bad-input matrix: every kind of user mistake or odd input, run through the CLI.

Builds a small set of inputs in a temporary folder (a corpus, an index, a folder of
awkward files, TREC files with one mistake each, ...), runs each case of :data:`CASES`
as a user would (``python -m retrieval ...`` in a subprocess) and prints a Markdown
table ``case | command | exit | outcome``; the outcome is the first line of stderr, or
for a run that succeeds quietly a summary of what it printed.

    python scripts/bad_input_matrix.py                  # print the table
    python scripts/bad_input_matrix.py -o results/bad_input.md

The case definitions live here only: ``tests/test_bad_input.py`` imports them and runs
each one in-process, asserting its exit status, that an error is exactly one line with
the expected words (the file, the line, the fix) and never a traceback, and that the
pre-existing index and the user's own folder are unchanged afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """One row of the matrix.

    ``argv`` is the command after ``retrieval``; ``{name}`` placeholders are paths (or
    texts) from :func:`make_fixtures`. ``exit`` is the expected status. ``needles`` must
    all appear in the outcome: the single stderr line of an error, else stdout + stderr.
    ``stderr_lines``: how many non-blank stderr lines are expected (errors: exactly 1).
    ``root_differs``: the outcome depends on file permissions, which do not apply to
    root (the test skips the case as root; the table notes it).
    ``env``: environment variables set for the run. ``fsize_limit``: the run gets this
    file-size limit in bytes (``ulimit -f``, RLIMIT_FSIZE; such a case always runs in a
    subprocess, the test process keeps its own limit).
    """
    name: str
    argv: tuple[str, ...]
    exit: int
    needles: tuple[str, ...] = ()
    stderr_lines: int | None = None
    root_differs: bool = False
    json_checks: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    fsize_limit: int | None = None

    def command(self, paths: dict) -> list[str]:
        return [a.format(**paths) for a in self.argv]

    def shown_command(self, paths: dict, root: Path) -> str:
        """The command for the table, temporary paths shortened to their names."""
        words = []
        for a in self.command(paths):
            a = a.replace(str(root) + os.sep, "").replace(str(REPO) + os.sep, "")
            if len(a) > 60:
                a = a[:40] + f"… ({len(a.split())} words)"
            shown = os.fsencode(a).decode("utf-8", errors="backslashreplace")
            shown = shown.replace("\n", "\\n")
            words.append(shlex.quote(shown) if shown != a or " " in a or not a else a)
        return "retrieval " + " ".join(words)


def _e(name, argv, *needles, **kw) -> Case:
    """An error case: exit 2 and exactly one line on stderr."""
    return Case(name, tuple(argv), 2, tuple(needles), stderr_lines=1, **kw)


def _ok(name, argv, *needles, **kw) -> Case:
    return Case(name, tuple(argv), 0, tuple(needles), **kw)


def make_fixtures(root: Path) -> dict:
    """Create every input the cases use under ``root``; return the placeholder values."""
    from retrieval.cli import main

    root = Path(root)
    p = {"root": str(root)}
    docs = root / "docs"
    (docs / "geo").mkdir(parents=True)
    (docs / "geo" / "glacier.txt").write_text("Glaciers move slowly downhill over rock.")
    (docs / "geo" / "river.txt").write_text("Rivers carry sediment to the sea.")
    (docs / "bread.md").write_text("# Bread\n\nBread rises because yeast makes gas.")
    p["docs"] = str(docs)
    index = root / "docs.idx"
    with open(os.devnull, "w") as null:
        saved = sys.stdout
        sys.stdout = null
        try:
            assert main(["index", str(docs), "-o", str(index), "-q"]) == 0
        finally:
            sys.stdout = saved
    p["index"] = str(index)

    (root / "empty").mkdir()
    p["empty"] = str(root / "empty")

    # awkward contents
    mixed = root / "mixed"
    mixed.mkdir()
    (mixed / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (mixed / "blob.dat").write_bytes(b"ELF\x00\x01\x02\x03" * 64)
    (mixed / "latin1.txt").write_bytes("café crème brûlée glacier".encode("latin-1"))
    (mixed / "utf16-bom.txt").write_bytes("glacier ice sheet".encode("utf-16"))
    (mixed / "utf16-le.txt").write_bytes("glacier moraine".encode("utf-16-le"))
    (mixed / "utf16-be.txt").write_bytes("glacier crevasse".encode("utf-16-be"))
    (mixed / "empty.txt").write_bytes(b"")
    (mixed / "blank.txt").write_text("  \n\t\r\n   ")
    (mixed / "ok.txt").write_text("an ordinary glacier file")
    p["mixed"] = str(mixed)

    # link loops: a folder linking to its parent, a link to itself
    loops = root / "loops"
    (loops / "sub").mkdir(parents=True)
    (loops / "sub" / "doc.txt").write_text("glacier in a folder with link loops")
    os.symlink("..", loops / "sub" / "up")
    os.symlink("self", loops / "self")
    os.symlink("nowhere", loops / "broken")
    p["loops"] = str(loops)
    os.symlink("selfloop", root / "selfloop")
    p["selfloop"] = str(root / "selfloop")

    # special files: a named pipe inside a folder (reading it would wait for ever)
    special = root / "special"
    special.mkdir()
    (special / "doc.txt").write_text("glacier next to a named pipe")
    p["special"] = str(special)
    p["fifo"] = str(special / "pipe")
    if hasattr(os, "mkfifo"):
        os.mkfifo(special / "pipe")
    else:  # pragma: no cover - not POSIX
        (special / "pipe").write_text("")

    # unreadable file (permissions; root reads it anyway)
    locked = root / "locked"
    locked.mkdir()
    (locked / "open.txt").write_text("a readable glacier file")
    (locked / "secret.txt").write_text("an unreadable glacier file")
    os.chmod(locked / "secret.txt", 0)
    p["locked"] = str(locked)

    # file names: spaces, a newline, bytes that are not UTF-8
    names = root / "names"
    names.mkdir()
    (names / "with space.txt").write_text("glacier space")
    (names / "new\nline.txt").write_text("glacier newline")
    bad = os.fsencode(str(names)) + b"/caf\xe9.txt"
    with open(bad, "wb") as fh:
        fh.write(b"glacier latin name")
    p["names"] = str(names)
    with open(os.devnull, "w") as null:
        saved = sys.stdout
        sys.stdout = null
        try:
            assert main(["index", str(names), "-o", str(root / "names.idx"), "-q"]) == 0
        finally:
            sys.stdout = saved
    p["names_index"] = str(root / "names.idx")

    # outputs: a folder of the user's own, a plain file
    mine = root / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    p["mine"] = str(mine)
    (root / "notes.txt").write_text("a file, not a folder")
    p["file"] = str(root / "notes.txt")

    # JSON Lines with mistakes
    (root / "bad.jsonl").write_text('{"id": "d1", "text": "glacier"}\n{"id": "d2" "text": "x"}\n')
    (root / "dup.jsonl").write_text('{"id": "d1", "text": "glacier"}\n{"id": "d1", "text": "x"}\n')

    # queries
    words = ["glacier", "river", "bread", "yeast", "sediment", "rock"] + \
        [f"zz{i}" for i in range(3000)]
    rng = random.Random(0)
    p["long_query"] = " ".join(rng.choice(words) for _ in range(10_000))
    (root / "queries.tsv").write_text("q1\tglacier\nq2 without a tab\n")
    (root / "no-queries.tsv").write_text("\n   \n")
    p["sample"] = str(REPO / "corpora" / "sample")
    p["huge_term"] = "glacierx" * 12_500  # 100,000 characters, one unknown term

    # TREC evaluation files: good ones and one mistake each
    ev = root / "eval"
    ev.mkdir()
    files = {
        "qrels": "1 0 geo/glacier.txt 1\n1 0 bread.md 0\n2 0 geo/river.txt 2\n",
        "run": "1 Q0 geo/glacier.txt 1 -1.5 r\n1 Q0 bread.md 2 -2.5 r\n"
               "2 Q0 geo/river.txt 1 -1.0 r\n",
        "qrels_3cols": "1 0 geo/glacier.txt 1\n1 0 bread.md\n",
        "qrels_relevance": "1 0 geo/glacier.txt 1\n1 0 bread.md yes\n",
        "qrels_duplicate": "1 0 geo/glacier.txt 1\n1 0 geo/glacier.txt 0\n",
        "run_5cols": "1 Q0 geo/glacier.txt 1 -1.5 r\n1 Q0 bread.md 2 -2.5\n",
        "run_rank": "1 Q0 geo/glacier.txt 1 -1.5 r\n1 Q0 bread.md second -2.5 r\n",
        "run_score": "1 Q0 geo/glacier.txt 1 -1.5 r\n1 Q0 bread.md 2 high r\n",
        "run_nan": "1 Q0 geo/glacier.txt 1 nan r\n",
        "run_duplicate": "1 Q0 geo/glacier.txt 1 -1.5 r\n1 Q0 geo/glacier.txt 2 -2.5 r\n",
        "run_disjoint": "7 Q0 geo/glacier.txt 1 -1.5 r\n8 Q0 bread.md 1 -2.5 r\n",
        "run_empty": "",
    }
    for name, text in files.items():
        (ev / name).write_text(text)
        p[name] = str(ev / name)
    (ev / "run_latin1").write_bytes(b"1 Q0 caf\xe9 1 -1.5 r\n")
    p["run_latin1"] = str(ev / "run_latin1")
    (ev / "run_utf16").write_bytes("1 Q0 d 1 -1.5 r\n".encode("utf-16"))
    p["run_utf16"] = str(ev / "run_utf16")

    # test collections given as path + --format trec: one mistake each
    good = {"documents.jsonl": '{"id": "d1", "text": "glacier ice"}\n'
                               '{"id": "d2", "text": "river water"}\n',
            "topics.tsv": "1\tglacier\n2\triver\n",
            "qrels.txt": "1 0 d1 1\n2 0 d2 1\n"}
    variants = {
        "coll": {},
        "coll_docs": {"documents.jsonl": '{"id": "d1", "text": "glacier"}\n{"id": "d2"}\n'},
        "coll_topics": {"topics.tsv": "1\tglacier\n2 river\n"},
        "coll_sgml": {"topics.tsv": None,
                      "topics.txt": "<top>\n<num> 1\n<title> glacier\n</top>\n"
                                    "<top>\n<num> 2\n</top>\n"},
        "coll_qrels": {"qrels.txt": "1 0 d1 1\n2 0 d2 relevant\n"},
    }
    for name, changes in variants.items():
        folder = root / name
        folder.mkdir()
        for fname, text in {**good, **changes}.items():
            if text is not None:
                (folder / fname).write_text(text)
        p[name] = str(folder)
    p["bench_out"] = str(root / "bench")
    p["new"] = str(root / "new.idx")  # each case formats its own output name below
    p.update(damaged_indexes(root, index))
    return p


def _gen(index: Path) -> Path:
    return index / json.loads((index / "manifest.json").read_text())["generation_dir"]


def _edit_manifest(index: Path, change) -> None:
    m = json.loads((index / "manifest.json").read_text())
    change(m)
    (index / "manifest.json").write_text(json.dumps(m))


def _poke(file: Path, at: int, data: bytes) -> None:
    raw = bytearray(file.read_bytes())
    raw[at:at + len(data)] = data
    file.write_bytes(bytes(raw))


def damaged_indexes(root: Path, index: Path) -> dict:
    """Copies of ``index``, each damaged in one way (issue 14, the index side)."""
    import shutil

    import numpy as np

    def copy(name: str) -> Path:
        target = root / f"dmg-{name}.idx"
        shutil.copytree(index, target, symlinks=True)
        return target

    out = {}
    d = copy("postings")  # a posting's document number far beyond N (was a segfault)
    f = _gen(d) / "postings_docs.npy"
    _poke(f, len(f.read_bytes()) - 4, np.int32(2**31 - 1).tobytes())
    d = copy("lengths")  # one bit of a document length (stays in range)
    f = _gen(d) / "doc_lengths.npy"
    _poke(f, len(f.read_bytes()) - 8, bytes([f.read_bytes()[-8] ^ 1]))
    d = copy("text")  # "HACKED!!" in the stored text (writers must not launder it)
    f = _gen(d) / "text_bytes.npy"
    _poke(f, len(f.read_bytes()) - 16, b"HACKED!!")
    _edit_manifest(copy("tokens"), lambda m: m["counts"].update(tokens=m["counts"]["tokens"] * 10))
    for key, value in (("arrays", {"postings_docs": 5}), ("source_groups", [[1, 2]]),
                       ("estimates", "oops"), ("read_stats", [1])):
        _edit_manifest(copy(key), lambda m, k=key, v=value: m.update({k: v}))
    (copy("deep") / "manifest.json").write_text("[" * 100_000)
    d = copy("lock")  # a symbolic link in place of the lock, to a file outside
    (root / "victim.txt").write_text("precious\n")
    (d / "lock").unlink()
    os.symlink(root / "victim.txt", d / "lock")
    d = copy("fifo")  # a named pipe in place of generation.json (blocked for ever)
    (_gen(d) / "generation.json").unlink()
    os.mkfifo(_gen(d) / "generation.json")
    copy("efbig")
    for name in ("postings", "lengths", "text", "tokens", "arrays", "source_groups",
                 "estimates", "read_stats", "deep", "lock", "fifo", "efbig"):
        out[f"dmg_{name}"] = str(root / f"dmg-{name}.idx")
    return out


def _out(name: str) -> str:
    return "{root}/out-" + name + ".idx"


BENCH = ("--no-cache", "--no-plots", "-q", "-k", "10", "-o", "{bench_out}")

#: the matrix
CASES: list[Case] = [
    # paths: missing, file vs folder, empty
    _e("missing path", ["index", "{root}/nope", "-o", _out("missing")],
       "nope", "no such file or folder", "check the path"),
    _ok("one file given (indexed as one document, id = its name)",
        ["index", "{docs}/bread.md", "-o", _out("single"), "--format", "json"],
        json_checks={"documents": 1}),
    _e("search given a folder of text, not an index", ["search", "{docs}", "glacier"],
       "docs", "not an index", "build one with 'retrieval index'"),
    _e("search given a file, not an index", ["search", "{docs}/bread.md", "glacier"],
       "bread.md", "an index is a folder", "build one"),
    _e("info given a folder of text", ["info", "{docs}"], "docs", "not an index"),
    _e("search a missing index", ["search", "{root}/nope.idx", "glacier"],
       "nope.idx", "no such index", "build one"),
    _ok("empty folder (empty index, warning)",
        ["index", "{empty}", "-o", _out("empty"), "--format", "json"],
        "warning: no documents were indexed", "holds no readable text", stderr_lines=1,
        json_checks={"documents": 0}),
    # contents
    _ok("binary, invalid UTF-8, UTF-16 (BOM/LE/BE), empty and blank files",
        ["index", "{mixed}", "-o", _out("mixed"), "--format", "json"], stderr_lines=0,
        json_checks={"documents": 7, "empty_documents": 2, "decoded_with_fallback": 1,
                     "utf16": 3, "skipped": {"binary": 2}}),
    _e("JSON Lines with a malformed line", ["index", "{root}/bad.jsonl", "-o", _out("badjsonl")],
       "bad.jsonl:2:", "not valid JSON", '{"id": "d1", "text": "..."}'),
    _e("JSON Lines with a repeated id", ["index", "{root}/dup.jsonl", "-o", _out("dupjsonl")],
       "dup.jsonl:2:", "'d1' appears twice", "must be unique"),
    _e("malformed input with --force onto an existing index (index kept)",
       ["index", "{root}/bad.jsonl", "-o", "{index}", "--force"], "bad.jsonl:2:"),
    # links, special files, permissions
    _e("a self-loop symlink given as the path", ["index", "{selfloop}", "-o", _out("selfloop")],
       "selfloop", "broken, or a loop", "check the path"),
    _ok("folder with a link to its parent, a self-loop and a broken link",
        ["index", "{loops}", "-o", _out("loops"), "--format", "json"], stderr_lines=0,
        json_checks={"documents": 1, "skipped": {"link to a folder": 1, "unreadable": 2}}),
    _ok("named pipe inside the folder (skipped, not read)",
        ["index", "{special}", "-o", _out("special"), "--format", "json"], stderr_lines=0,
        json_checks={"documents": 1, "skipped": {"not a regular file": 1}}),
    _e("named pipe given as the path", ["index", "{fifo}", "-o", _out("fifo")],
       "pipe", "not a regular file or folder", "give a folder or a text file"),
    _ok("unreadable file (chmod 000) is skipped and counted",
        ["index", "{locked}", "-o", _out("locked"), "--format", "json"], stderr_lines=0,
        root_differs=True, json_checks={"documents": 1, "skipped": {"unreadable": 1}}),
    _ok("file names with a space, a newline and non-UTF-8 bytes",
        ["index", "{names}", "-o", _out("names"), "--format", "json"], stderr_lines=0,
        json_checks={"documents": 3}),
    # outputs
    _e("output inside the indexed folder", ["index", "{docs}", "-o", "{docs}/geo/out.idx"],
       "inside the indexed folder", "write the index somewhere else"),
    _e("output is the indexed folder itself", ["index", "{docs}", "-o", "{docs}"],
       "inside the indexed folder", "write the index somewhere else"),
    _e("output is an existing folder that is not an index",
       ["index", "{docs}", "-o", "{mine}"], "mine", "not an index", "choose another output"),
    _e("... the same with --force (still refused, folder untouched)",
       ["index", "{docs}", "-o", "{mine}", "--force"], "mine", "not an index",
       "nothing was written"),
    _e("output is an existing index, no --force", ["index", "{docs}", "-o", "{index}"],
       "docs.idx", "already holds an index", "pass --force"),
    _e("output is an existing plain file", ["index", "{docs}", "-o", "{file}"],
       "notes.txt", "is a file that is not an index", "choose another output"),
    # queries
    _e("empty query", ["search", "{index}", ""], "the query is empty", "pass query words"),
    _e("no query at all", ["search", "{index}"], "no query given", "--queries FILE"),
    _ok("query of stop words only", ["search", "{index}", "the", "of", "and"],
        "no results", "only stop words", stderr_lines=1),
    _ok("query of unknown terms", ["search", "{index}", "zebra", "quokka"],
        "no results", "none of the query terms occur in the index", stderr_lines=1),
    _ok("query of 10,000 terms", ["search", "{index}", "{long_query}", "--format", "trec"],
        "geo/glacier.txt", stderr_lines=0),
    _ok("document ids with white space in a table (newline escaped)",
        ["search", "{names_index}", "glacier", "--no-snippets"],
        "with space.txt", "new\\nline.txt", "caf\\xe9.txt", stderr_lines=0),
    _e("... and in TREC format (would break the columns)",
       ["search", "{names_index}", "glacier", "--format", "trec"],
       "contains white space", "use --format json"),
    _e("--queries file with a line without a tab", ["search", "{index}", "--queries",
                                                   "{root}/queries.tsv"],
       "queries.tsv:2:", "qid<TAB>query text"),
    # parameters
    _e("-k 0", ["search", "{index}", "glacier", "-k", "0"], "-k", "whole number >= 1"),
    _e("-k abc", ["search", "{index}", "glacier", "-k", "abc"], "-k", "expected a whole number"),
    _e("--mu -1", ["search", "{index}", "glacier", "--mu", "-1"], "mu (μ) must be in",
       "typical values"),
    _e("--mu nan", ["search", "{index}", "glacier", "--mu", "nan"], "mu (μ) must be a finite"),
    _e("--lam 2 (jm)", ["search", "{index}", "--model", "jm", "--lam", "2", "glacier"],
       "lam (λ) must be in (0, 1]", "e.g. 0.1"),
    _e("--lam with the default model", ["search", "{index}", "glacier", "--lam", "0.5"],
       "--lam does not apply to --model dirichlet", "it takes --mu"),
    _e("--delta 1.5 (ad)", ["search", "{index}", "glacier", "--model", "ad", "--delta", "1.5"],
       "delta (δ) must be in (0, 1]", "e.g. 0.7"),
    _e("--model nope", ["search", "{index}", "glacier", "--model", "nope"],
       "invalid choice: 'nope'", "choose from"),
    _e("--feedback rm3 --fb-orig-weight 7",
       ["search", "{index}", "glacier", "--feedback", "rm3", "--fb-orig-weight", "7"],
       "--fb-orig-weight must be in [0, 1]"),
    _e("--tag with a space, --format trec",
       ["search", "{index}", "glacier", "--format", "trec", "--tag", "my run"],
       "run tag", "use --format json"),
    # evaluation files
    _ok("evaluate: well-formed files", ["evaluate", "{qrels}", "{run}", "-m", "AP"],
        "AP", stderr_lines=0),
    _e("qrels line with 3 columns", ["evaluate", "{qrels_3cols}", "{run}"],
       "qrels_3cols:2:", "expected 4 columns", "'qid iteration docid relevance'"),
    _e("qrels relevance not an integer", ["evaluate", "{qrels_relevance}", "{run}"],
       "qrels_relevance:2:", "relevance must be an integer", "'yes'"),
    _e("qrels judging a document twice", ["evaluate", "{qrels_duplicate}", "{run}"],
       "qrels_duplicate:2:", "duplicate judgment", "first at line 1"),
    _e("run line with 5 columns", ["evaluate", "{qrels}", "{run_5cols}"],
       "run_5cols:2:", "expected 6 columns", "'qid Q0 docid rank score tag'"),
    _e("run rank not an integer", ["evaluate", "{qrels}", "{run_rank}"],
       "run_rank:2:", "rank (column 4) must be an integer"),
    _e("run score not a number", ["evaluate", "{qrels}", "{run_score}"],
       "run_score:2:", "score (column 5) must be a number"),
    _e("run score NaN", ["evaluate", "{qrels}", "{run_nan}"], "run_nan:1:", "NaN"),
    _e("run in Latin-1", ["evaluate", "{qrels}", "{run_latin1}"],
       "run_latin1:1:", "not valid UTF-8", "save the file as UTF-8"),
    _e("run in UTF-16", ["evaluate", "{qrels}", "{run_utf16}"],
       "run_utf16:1:", "save the file as UTF-8"),
    _e("run listing a document twice for a query", ["evaluate", "{qrels}", "{run_duplicate}"],
       "run_duplicate:2:", "appears twice for query '1'", "also at line 1",
       "at most once per query"),
    _e("run and qrels share no query", ["evaluate", "{qrels}", "{run_disjoint}"],
       "run_disjoint", "no query in common", "check that the run answers"),
    _e("... the same with -c", ["evaluate", "{qrels}", "{run_disjoint}", "-c"],
       "run_disjoint", "no query in common"),
    _e("empty run", ["evaluate", "{qrels}", "{run_empty}"], "run_empty", "run: 0 queries"),
    _e("missing qrels file", ["evaluate", "{root}/nope.qrels", "{run}"],
       "nope.qrels", "no such file", "check the path"),
    _e("a folder given as the run", ["evaluate", "{qrels}", "{root}/eval"],
       "is a directory, expected a file"),
    _e("unknown measure", ["evaluate", "{qrels}", "{run}", "-m", "F1"],
       "unknown measure 'F1'", "valid measures"),
    # collections read from a path + --format
    _ok("collection folder, --format trec", ["benchmark", "{coll}", "--format", "trec", *BENCH],
        "coll"),
    _e("... documents.jsonl without \"text\"",
       ["benchmark", "{coll_docs}", "--format", "trec", *BENCH],
       "documents.jsonl:2:", '"id" and "text"'),
    _e("... topics.tsv line without a tab",
       ["benchmark", "{coll_topics}", "--format", "trec", *BENCH],
       "topics.tsv:2:", "qid<TAB>text"),
    _e("... topics.txt topic without <title>",
       ["benchmark", "{coll_sgml}", "--format", "trec", *BENCH],
       "topics.txt:5:", "topic 2 has no <title>"),
    _e("... qrels.txt relevance not an integer",
       ["benchmark", "{coll_qrels}", "--format", "trec", *BENCH],
       "qrels.txt:2:", "relevance must be an integer"),
    _e("... a folder of another format", ["benchmark", "{docs}", "--format", "trec", *BENCH],
       "documents.jsonl", "does not exist"),
    _e("... path without --format", ["benchmark", "{coll}", *BENCH],
       "is a path", "--format", "not guessed"),
    _e("... missing folder", ["benchmark", "{root}/nope", "--format", "beir", *BENCH],
       "no folder at", "nope", "check the path"),
    # issue 14: devices, pipes and size caps on files a user names
    _e("--queries /dev/zero (refused, not read for ever)",
       ["search", "{index}", "--queries", "/dev/zero"], "/dev/zero", "not a regular file"),
    _e("--queries a named pipe (refused at once)", ["search", "{index}", "--queries", "{fifo}"],
       "pipe", "not a regular file", "save the data to a file"),
    _e("--queries file with no queries", ["search", "{index}", "--queries",
                                         "{root}/no-queries.tsv"],
       "no-queries.tsv", "no queries in the file", "nothing was searched"),
    _e("delete --from-file /dev/zero", ["delete", "{index}", "--from-file", "/dev/zero"],
       "/dev/zero", "not a regular file"),
    _e("evaluate /dev/zero as the qrels", ["evaluate", "/dev/zero", "{run}"],
       "/dev/zero", "not a regular file"),
    _e("evaluate /dev/zero as the run", ["evaluate", "{qrels}", "/dev/zero"],
       "/dev/zero", "not a regular file"),
    _e("run above the input cap (RETRIEVAL_MAX_INPUT_BYTES=70)",
       ["evaluate", "{qrels}", "{run}"], "eval/run: larger than the 70 bytes",
       "RETRIEVAL_MAX_INPUT_BYTES", env={"RETRIEVAL_MAX_INPUT_BYTES": "70"}),
    # issue 14: operating-system errors are one line
    _e("output below a plain file (-o notes.txt/x.idx)", ["index", "{docs}", "-o",
                                                          "{file}/x.idx"],
       "notes.txt", "a file where a folder is needed"),
    _e("output under /proc", ["index", "{docs}", "-o", "/proc/x.idx"], "/proc/", "x.idx"),
    _e("file-size limit reached (ulimit -f 20 KB, EFBIG)",
       ["index", "{sample}", "-o", _out("efbig")], "file too large [EFBIG]", "ulimit -f",
       fsize_limit=20_000),
    # issue 14: smoothing parameters that overflowed
    _e("--mu 1e-308 (overflowed to +inf)", ["search", "{index}", "glacier", "--mu", "1e-308"],
       "mu (μ) = 1e-308 is below 1e-06", "use μ ≥ 1e-06"),
    _e("--mu 5e-324 (gave NaN)", ["search", "{index}", "glacier", "--mu", "5e-324"],
       "is below 1e-06"),
    _e("--lam 1e-300 (jm; a positive score)",
       ["search", "{index}", "glacier", "--model", "jm", "--lam", "1e-300"],
       "lam (λ) = 1e-300 is below 1e-06", "use λ ≥ 1e-06"),
    _e("--delta 1e-310 (ad; +inf)",
       ["search", "{index}", "glacier", "--model", "ad", "--delta", "1e-310"],
       "delta (δ) = 1e-310 is below 1e-06", "use δ ≥ 1e-06"),
    # issue 14: --jobs and messages
    _ok("index --jobs 100000 (lowered, with a note)",
        ["index", "{docs}", "-o", _out("jobs"), "--jobs", "100000", "--format", "json"],
        "note: --jobs 100000 lowered to", stderr_lines=1, json_checks={"documents": 3}),
    _ok("search --jobs 32 for one query (lowered to 1, with a note)",
        ["search", "{index}", "glacier", "--jobs", "32", "--format", "trec"],
        "note: --jobs 32 lowered to 1", "geo/glacier.txt", stderr_lines=1),
    _ok("unknown query term of 100,000 characters (clipped in the message)",
        ["search", "{index}", "{huge_term}"], "none of the query terms occur",
        "(100,000 characters)", stderr_lines=1),
    # issue 14, the index side: damaged indexes give one line, writers publish nothing
    _e("index: a posting's document number beyond N (was a segfault)",
       ["search", "{dmg_postings}", "glacier", "-k", "1000"], "damaged", "rebuild the index"),
    _e("index: ... the same, --model jm (was an IndexError)",
       ["search", "{dmg_postings}", "glacier", "--model", "jm"], "damaged", "rebuild"),
    _e("index: one bit of a document length flipped (was a wrong score)",
       ["search", "{dmg_lengths}", "glacier"], "document lengths", "rebuild the index"),
    _e("index: delete from an index with damaged text (was laundered)",
       ["delete", "{dmg_text}", "bread.md"], "text_bytes.npy does not match its checksum",
       "rebuild the index"),
    _e("index: manifest counts.tokens ×10 (was a wrong score)",
       ["search", "{dmg_tokens}", "glacier"], "manifest does not match its own checksum"),
    _e("index: manifest \"arrays\": {\"postings_docs\": 5}", ["info", "{dmg_arrays}"],
       "manifest.json", "rebuild the index"),
    _e("index: manifest \"source_groups\": [[1,2]] (add)",
       ["add", "{dmg_source_groups}", "{docs}/bread.md"], "manifest.json", "rebuild"),
    _e("index: manifest \"estimates\": \"oops\" (search --mu auto)",
       ["search", "{dmg_estimates}", "glacier", "--mu", "auto"], "manifest.json", "rebuild"),
    _e("index: manifest \"read_stats\": [1] (info)", ["info", "{dmg_read_stats}"],
       "manifest.json", "rebuild"),
    _e("index: manifest of 100,000 nested [", ["info", "{dmg_deep}"], "nested",
       "manifest.json"),
    _e("index: lock is a symbolic link to a file outside (was truncated)",
       ["delete", "{dmg_lock}", "bread.md"], "lock is a symbolic link", "nothing was written",
       "remove the link"),
    _e("index: a named pipe in place of generation.json (was a hang)",
       ["search", "{dmg_fifo}", "glacier"], "generation.json", "not a regular file"),
    _e("index: add under a file-size limit (ulimit -f 100 bytes, EFBIG)",
       ["add", "{dmg_efbig}", "{docs}/bread.md", "--replace"], "[EFBIG]",
       "the index is unchanged", "ulimit -f", fsize_limit=100),
]


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def outcome(case: Case, code: int, out: str, err: str) -> str:
    """One line for the table: the error, or what a successful run printed."""
    err_lines = [line for line in err.splitlines() if line.strip()]
    if code != 0 and err_lines:
        return err_lines[0]
    text = ""
    if case.json_checks:
        try:
            s = json.loads(out)
            skipped = ", ".join(f"{n} {r}" for r, n in s.get("skipped", {}).items()) or "none"
            text = (f"ok: {s['documents']} documents ({s['empty_documents']} empty), "
                    f"{s.get('decoded_with_fallback', 0)} decoded with fallback, "
                    f"{s.get('utf16', 0)} UTF-16; skipped: {skipped}")
        except (ValueError, KeyError):
            text = out.strip().splitlines()[0] if out.strip() else ""
    else:
        lines = [" ".join(line.split()) for line in out.splitlines() if line.strip()]
        text = " / ".join(line for line in lines if line.strip("- "))
        if len(text) > 160:
            text = text[:157] + "..."
    if err_lines:
        text = (text + "; " if text else "") + "stderr: " + err_lines[0]
    return text


def run_subprocess(case: Case, paths: dict, timeout: float = 120) -> tuple[int, str, str]:
    env = dict(os.environ, **case.env)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    limit = case.fsize_limit

    def preexec():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "retrieval", *case.command(paths)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          errors="backslashreplace",
                          preexec_fn=preexec if limit is not None else None)
    return proc.returncode, proc.stdout, proc.stderr


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "\\n")


def table(root: Path, paths: dict, cases: list[Case] = CASES) -> str:
    rows = ["| case | command | exit | outcome (first line of stderr or summary) |",
            "|---|---|---|---|"]
    for case in cases:
        code, out, err = run_subprocess(case, paths)
        result = outcome(case, code, out, err).replace(str(root) + os.sep, "")
        if case.root_differs and running_as_root():
            result += " (run as root: permissions do not apply)"
        mark = "" if code == case.exit else f" (expected {case.exit})"
        rows.append(f"| {_cell(case.name)} | `{_cell(case.shown_command(paths, root))}` | "
                    f"{code}{mark} | {_cell(result)} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", help="also write the table to this file")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the cases whose name contains TEXT")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.only is None or args.only in c.name]
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        root = Path(tmp)
        paths = make_fixtures(root)
        text = ("Bad-input matrix: `python scripts/bad_input_matrix.py` "
                f"({len(cases)} cases; paths are relative to a temporary folder).\n\n"
                + table(root, paths, cases))
        os.chmod(root / "locked" / "secret.txt", 0o600)  # let the folder be removed
    print(text, end="")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
