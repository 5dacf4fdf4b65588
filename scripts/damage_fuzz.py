#!/usr/bin/env python3
"""Damage fuzzer (issue 14): damage each array file of an index, run every command, and
classify what the user sees.

An index of a synthetic folder of text files (20,000 by default; text stored, built from
a folder so it has every optional array; several arrays larger than the 128 KiB that
opening checksums) is built once. For each ``.npy`` file of its generation
folder and each kind of damage

* ``bit flip``: one bit flipped in the byte in the middle of the array's data;
* ``out of range``: the middle element set to the largest value of its type (an integer
  array) or to 0xFF (a byte array: not a valid UTF-8 lead byte);
* ``truncation``: the file cut to its header plus half its data;
* ``swap``: the file exchanged with another array file (one of the same size when there
  is one, which passes every size and shape check);

a fresh copy of the index is damaged and each command of :data:`COMMANDS` runs on it in
a child process (``fork`` of this one, so every crash is contained). The outcome is

* acceptable: ``error`` (exit ≠ 0, exactly one stderr line ``retrieval CMD: error: …``,
  no traceback), ``correct`` (exit 0 and output identical to the same command on the
  undamaged index: docids, ranks and scores of ``--format trec`` runs bit for bit; for
  ``add``/``delete``, a new generation whose arrays equal those of the same change on
  the undamaged index), ``detected`` (``check`` exits 1 and lists the problem);
* a failure: ``SEGFAULT`` / ``SIGNAL n``, ``TRACEBACK``, ``HANG`` (timeout),
  ``MULTI-LINE`` error, ``WRONG`` (exit 0 with output differing from the undamaged
  index), ``MISSED`` (``check`` says ok), ``PUBLISHED`` (``add``/``delete`` wrote a new
  generation from damaged input; ``laundered`` when ``check`` then says ok).

    python scripts/damage_fuzz.py -o results/damage_fuzz.md        # everything
    python scripts/damage_fuzz.py --files postings_docs --damages "bit flip" --json

``tests/test_damage_fuzz.py`` runs a subset through ``--json`` and asserts what holds.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAMAGES = ("bit flip", "out of range", "truncation", "swap")
QUERY = ("glacier", "ice", "flow")
#: command name -> argv after ``retrieval`` ({idx} = the index, {queries}, {extra}, {docid})
COMMANDS = {
    "search": ("search", "{idx}", *QUERY, "-k", "1000", "--format", "trec"),
    "search jm": ("search", "{idx}", *QUERY, "-k", "1000", "--format", "trec",
                  "--model", "jm", "--lam", "0.5"),
    "search rm3": ("search", "{idx}", *QUERY, "-k", "1000", "--format", "trec",
                   "--feedback", "rm3"),
    "search --queries": ("search", "{idx}", "--queries", "{queries}", "-k", "1000",
                         "--format", "trec"),
    "info": ("info", "{idx}", "--format", "json"),
    "check": ("check", "{idx}"),
    "add": ("add", "{idx}", "{extra}", "--format", "json", "-q"),
    "delete": ("delete", "{idx}", "{docid}", "--format", "json"),
}
WRITERS = ("add", "delete")
ACCEPTABLE = ("error", "correct", "detected")


class Run(NamedTuple):
    code: int | None        # exit status; None when killed by a signal or timed out
    signal: int | None
    timed_out: bool
    out: str
    err: str


class Outcome(NamedTuple):
    kind: str               # one of ACCEPTABLE or a failure label
    detail: str

    @property
    def ok(self) -> bool:
        return self.kind in ACCEPTABLE


# ---------------------------------------------------------------------------------------
# running a command in a forked child

def run_cli(argv: list[str], timeout: float = 60.0) -> Run:
    """``retrieval argv`` in a forked child with its own stdout/stderr files."""
    from retrieval.cli import main

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace",
                                  closefd=False)
                sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace",
                                  closefd=False)
                try:
                    code = main(list(argv))
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException:  # what the interpreter would print
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code if isinstance(code, int) else 1)
        deadline = time.monotonic() + timeout
        status, timed_out = None, False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                timed_out = True
                break
            time.sleep(0.005)
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", errors="backslashreplace"))
    if timed_out:
        return Run(None, None, True, *texts)
    if os.WIFSIGNALED(status):
        return Run(None, os.WTERMSIG(status), False, *texts)
    return Run(os.WEXITSTATUS(status), None, False, *texts)


# ---------------------------------------------------------------------------------------
# the index and its damage

class Fixture(NamedTuple):
    root: Path
    index: Path             # the undamaged index (never run on directly)
    queries: Path
    extra: Path             # a document file for ``add``
    docid: str              # a document for ``delete``
    reference: dict         # command -> Run on an undamaged copy
    written: dict           # writer command -> {array name: sha256} of its result
    probes: list            # query terms reading the middle of the arrays


def generation_dir(index: Path) -> Path:
    return index / json.loads((index / "manifest.json").read_text())["generation_dir"]


def array_files(index: Path) -> list[str]:
    return sorted(p.stem for p in generation_dir(index).glob("*.npy"))


def array_digests(index: Path) -> dict:
    return {p.stem: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(generation_dir(index).glob("*.npy"))}


def _argv(command: str, fx: Fixture, idx: Path) -> list[str]:
    values = {"idx": str(idx), "queries": str(fx.queries), "extra": str(fx.extra),
              "docid": fx.docid}
    argv = [a.format(**values) for a in COMMANDS[command]]
    if command.startswith("search") and "--queries" not in argv:
        argv[2:2] = fx.probes
    return argv


def probe_terms(index: Path) -> list[str]:
    """Terms whose results read the middle of each array (where the damage is): the
    middle term, the term owning the middle posting, and the rarest term of the middle
    document and of the documents owning the middle of the forward index and of the
    stored text. Added to every search, they make damage there show in the ranking."""
    from retrieval import Index

    ix = Index.open(index)
    a = {name: np.asarray(arr) for name, arr in ix.arrays.items()}
    vocab, df = ix.vocabulary, a["term_df"]
    terms = {len(vocab) // 2,
             int(np.searchsorted(a["postings_indptr"], len(a["postings_docs"]) // 2,
                                 side="right")) - 1}
    docs = {ix.num_docs // 2}
    for ptr, data in (("forward_indptr", "forward_terms"), ("text_offsets", "text_bytes")):
        if ptr in a:
            docs.add(int(np.searchsorted(a[ptr], len(a[data]) // 2, side="right")) - 1)
    ptr, fwd = a["forward_indptr"], a["forward_terms"]
    for d in docs:
        own = fwd[ptr[d]:ptr[d + 1]]
        if len(own):
            terms.add(int(own[np.argmin(df[own])]))
    return sorted(str(vocab[t]) for t in terms)


def _copy(fx: Fixture, name: str) -> Path:
    dest = fx.root / "work" / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(fx.index, dest, symlinks=True)
    return dest


WORDS = ("glacier", "ice", "flow", "comet", "orbit", "bread", "yeast", "volcano",
         "eruption", "lava", "moraine", "river")


def write_corpus(folder: Path, documents: int, seed: int = 14) -> None:
    """``documents`` text files of 20–60 words (Zipf-distributed synthetic terms and a
    few real words), 1,000 per sub-folder, file names ``dNN/NNNNN.txt``."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}x" for i in range(6000)] + list(WORDS))
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights[-len(WORDS):] = weights[20]          # the real words are common
    weights /= weights.sum()
    for i in range(documents):
        sub = folder / f"d{i // 1000:02d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        words = rng.choice(vocab, size=int(rng.integers(20, 61)), p=weights)
        (sub / f"{i:05d}.txt").write_text(" ".join(words) + "\n", encoding="utf-8")


def make_fixture(root: Path, timeout: float = 60.0, documents: int = 20_000) -> Fixture:
    """The undamaged index and every command's output on it. Arrays larger than 128 KiB
    (2 × the 64 KiB that ``Index.open`` checksums) are what makes damage in the middle of
    a file invisible to opening: 20,000 documents give several."""
    root = Path(root)
    (root / "work").mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus"
    write_corpus(corpus, documents)
    index = root / "fuzz.idx"
    build = run_cli(["index", str(corpus), "-o", str(index), "-q", "--format", "json"],
                    timeout=1800)
    if build.code != 0:
        raise SystemExit(f"could not build the index: {build.err}")
    queries = root / "queries.tsv"
    queries.write_text("q1\tglacier ice flow\nq2\tcomet orbit t5x\nq3\tbread yeast t40x\n"
                       "q4\tvolcano eruption lava t300x\n", encoding="utf-8")
    extra = root / "extra" / "moraine.txt"
    extra.parent.mkdir(exist_ok=True)
    extra.write_text("A moraine is rock and soil left behind by a glacier.\n")
    docid = "d00/00042.txt"
    probes = probe_terms(index)
    with open(queries, "a", encoding="utf-8") as fh:
        fh.write("q5\t" + " ".join(probes) + "\n")
    fx = Fixture(root, index, queries, extra, docid, {}, {}, probes)
    for command in COMMANDS:
        idx = _copy(fx, "reference")
        fx.reference[command] = run_cli(_argv(command, fx, idx), timeout)
        if fx.reference[command].code != 0:
            raise SystemExit(f"{command} fails on the undamaged index: "
                             f"{fx.reference[command].err}")
        if command in WRITERS:
            fx.written[command] = array_digests(idx)
    return fx


def _data_offset(path: Path) -> tuple[int, np.dtype, tuple]:
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(fh)
        return fh.tell(), np.dtype(dtype), shape


def apply_damage(gen: Path, name: str, kind: str) -> str:
    """Damage ``gen/name.npy``; return what was done (for the table)."""
    path = gen / f"{name}.npy"
    offset, dtype, shape = _data_offset(path)
    raw = bytearray(path.read_bytes())
    data = len(raw) - offset
    if kind == "bit flip":
        at = offset + data // 2
        raw[at] ^= 0x10
        path.write_bytes(bytes(raw))
        return f"bit 4 of byte {at - offset} of {data} flipped"
    if kind == "out of range":
        count = int(np.prod(shape)) if shape else 1
        at = offset + (count // 2) * dtype.itemsize
        if dtype.kind in "iu" and dtype.itemsize > 1:
            value = np.array(np.iinfo(dtype).max, dtype=dtype).tobytes()
            raw[at:at + dtype.itemsize] = value
            what = f"element {count // 2} set to {np.iinfo(dtype).max}"
        elif dtype.kind == "f":
            raw[at:at + dtype.itemsize] = np.array(np.inf, dtype=dtype).tobytes()
            what = f"element {count // 2} set to inf"
        else:
            raw[at] = 0xFF
            what = f"byte {count // 2} set to 0xFF"
        path.write_bytes(bytes(raw))
        return what
    if kind == "truncation":
        path.write_bytes(bytes(raw[:offset + data // 2]))
        return f"cut to {offset + data // 2} of {len(raw)} bytes"
    if kind == "swap":
        others = sorted(p for p in gen.glob("*.npy") if p != path)
        same = [p for p in others if p.stat().st_size == path.stat().st_size]
        partner = (same or others)[0]
        tmp = gen / "swap.tmp"
        path.rename(tmp)
        partner.rename(path)
        tmp.rename(partner)
        return f"swapped with {partner.stem} ({'same' if same else 'other'} size)"
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------
# classification

def _crash(run: Run) -> Outcome | None:
    if run.timed_out:
        return Outcome("HANG", "killed after the timeout")
    if run.signal is not None:
        name = signal.Signals(run.signal).name
        return Outcome("SEGFAULT" if run.signal == signal.SIGSEGV else f"SIGNAL {name}", "")
    if "Traceback (most recent call last)" in run.err:
        last = [line for line in run.err.splitlines() if line.strip()][-1]
        return Outcome("TRACEBACK", last[:160])
    return None


def _error_line(run: Run, command: str) -> Outcome:
    lines = [line for line in run.err.splitlines() if line.strip()]
    name = COMMANDS[command][0]
    if len(lines) == 1 and lines[0].startswith(f"retrieval {name}: error: "):
        return Outcome("error", lines[0][len(f"retrieval {name}: error: "):][:200])
    return Outcome("MULTI-LINE", " / ".join(lines[:3])[:200])


def classify(command: str, run: Run, fx: Fixture, idx: Path, timeout: float) -> Outcome:
    crash = _crash(run)
    if crash:
        return crash
    if command == "check":
        if run.code == 1:
            first = run.out.strip().splitlines()[0] if run.out.strip() else ""
            return Outcome("detected", first[:200])
        if run.code == 0:
            return Outcome("MISSED", "check says ok")
        return _error_line(run, command)
    if run.code != 0:
        return _error_line(run, command)
    if command in WRITERS:
        if array_digests(idx) == fx.written[command]:
            return Outcome("correct", "same arrays as the change on the undamaged index")
        verdict = run_cli(["check", str(idx)], timeout)
        laundered = verdict.code == 0
        return Outcome("PUBLISHED", "new generation from damaged input; check "
                       + ("says ok (laundered)" if laundered else "finds the damage"))
    reference = fx.reference[command]
    if run.out == reference.out:
        return Outcome("correct", "")
    return Outcome("WRONG", _first_difference(reference.out, run.out))


def _first_difference(want: str, got: str) -> str:
    a, b = want.splitlines(), got.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i + 1}: {y[:90]!r} instead of {x[:90]!r}"
    return f"{len(b)} lines instead of {len(a)}"


def fuzz(fx: Fixture, files=None, damages=DAMAGES, commands=tuple(COMMANDS),
         timeout: float = 60.0, progress=None) -> list[dict]:
    rows = []
    for name in files or array_files(fx.index):
        for kind in damages:
            read_copy = None
            for command in commands:
                if command in WRITERS or read_copy is None:
                    idx = _copy(fx, "damaged")
                    what = apply_damage(generation_dir(idx), name, kind)
                    if command not in WRITERS:
                        read_copy = idx
                else:
                    idx = read_copy
                run = run_cli(_argv(command, fx, idx), timeout)
                outcome = classify(command, run, fx, idx, timeout)
                if command in WRITERS:
                    read_copy = None  # the writer's copy is changed: damage afresh
                rows.append({"file": name, "damage": kind, "what": what, "command": command,
                             "outcome": outcome.kind, "ok": outcome.ok,
                             "detail": outcome.detail})
                if progress:
                    progress(rows[-1])
    return rows


# ---------------------------------------------------------------------------------------
# the report

def markdown(rows: list[dict], header: str) -> str:
    commands = list(dict.fromkeys(r["command"] for r in rows))
    failures = [r for r in rows if not r["ok"]]
    kinds = Counter(r["outcome"] for r in rows)
    lines = [header, "",
             f"{len(rows)} runs: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
             f"({len(failures)} failures).", "",
             "## Outcome per array file and damage", "",
             "Cells: `err` one-line error, `ok` correct answer, `det` check reports the "
             "damage; failures in capitals (SEGV, TRACE, HANG, WRONG, MISSED, PUBL = a "
             "writer published a new generation from damaged input, LAUND = and check "
             "then says ok, MULTI = a multi-line error).", "",
             "| file | damage | " + " | ".join(commands) + " |",
             "|---|---|" + "---|" * len(commands)]
    short = {"error": "err", "correct": "ok", "detected": "det", "SEGFAULT": "SEGV",
             "TRACEBACK": "TRACE", "HANG": "HANG", "WRONG": "WRONG", "MISSED": "MISSED",
             "MULTI-LINE": "MULTI"}
    table: dict = {}
    for r in rows:
        cell = short.get(r["outcome"], r["outcome"])
        if r["outcome"] == "PUBLISHED":
            cell = "LAUND" if "laundered" in r["detail"] else "PUBL"
        table.setdefault((r["file"], r["damage"]), {})[r["command"]] = cell
    for (name, kind), cells in table.items():
        lines.append(f"| {name} | {kind} | "
                     + " | ".join(cells.get(c, "") for c in commands) + " |")
    lines += ["", "## Failures by kind", ""]
    by_kind: dict = {}
    for r in failures:
        kind = r["outcome"]
        if kind == "PUBLISHED":
            kind += " (laundered: check then says ok)" if "laundered" in r["detail"] \
                else " (check finds the damage afterwards)"
        by_kind.setdefault(kind, {}).setdefault(r["file"], set()).add(r["command"])
    for kind, files in sorted(by_kind.items()):
        shown = "; ".join(f"{name} ({', '.join(sorted(cmds))})"
                          for name, cmds in sorted(files.items()))
        lines.append(f"- **{kind}**: {shown}")
    lines += ["", "## Failures", "", "| file | damage (what) | command | outcome | detail |",
              "|---|---|---|---|---|"]
    for r in failures:
        detail = r["detail"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['file']} | {r['damage']} ({r['what']}) | {r['command']} | "
                     f"{r['outcome']} | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", help="comma-separated array names (default: all)")
    p.add_argument("--damages", help=f"comma-separated, from: {', '.join(DAMAGES)}")
    p.add_argument("--commands", help=f"comma-separated, from: {', '.join(COMMANDS)}")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per command (60)")
    p.add_argument("--docs", type=int, default=20_000,
                   help="documents in the synthetic corpus (default 20,000)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("-o", "--output", help="write the Markdown report here")
    p.add_argument("--from-json", metavar="FILE",
                   help="only render the report of rows saved by --json (no runs); the "
                        "header line is taken from the existing --output file")
    args = p.parse_args(argv)
    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        old = Path(args.output).read_text(encoding="utf-8") if args.output and \
            Path(args.output).exists() else "# Damage fuzzer\n\n\n"
        header = "\n".join(old.splitlines()[:3])
        text = markdown(rows, header)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        print(text, end="")
        return 0
    damages = tuple(args.damages.split(",")) if args.damages else DAMAGES
    commands = tuple(args.commands.split(",")) if args.commands else tuple(COMMANDS)
    for d in damages:
        if d not in DAMAGES:
            p.error(f"unknown damage {d!r}")
    for c in commands:
        if c not in COMMANDS:
            p.error(f"unknown command {c!r}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="damage-fuzz-") as tmp:
        fx = make_fixture(Path(tmp), args.timeout, args.docs)
        files = args.files.split(",") if args.files else None
        progress = None if args.json else (
            lambda r: print(f"{r['file']:<20} {r['damage']:<13} {r['command']:<17} "
                            f"{r['outcome']:<10} {r['detail'][:70]}", file=sys.stderr))
        rows = fuzz(fx, files, damages, commands, args.timeout, progress)
        n_files = len(files or array_files(fx.index))
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(rows, indent=1))
    header = (f"# Damage fuzzer: `python scripts/damage_fuzz.py`\n\n"
              f"Index of a synthetic folder of {args.docs:,} text files (text stored); "
              f"{n_files} array "
              f"files × {len(damages)} damages × {len(commands)} commands; "
              f"{seconds:.0f} s (load average {open('/proc/loadavg').read().split()[0]}).")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(markdown(rows, header), encoding="utf-8")
    if not args.json:
        print(markdown(rows, header), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
