#!/usr/bin/env python3
"""Whole-process start-up of the ``retrieval`` command, measured like hyperfine.

Each command is run ``--runs`` times as a fresh process (output discarded), the
commands interleaved round by round so a change of machine load hits them alike, after
``--warmup`` untimed rounds (disk cache warm). Reported per command: median, minimum
and 90th percentile of the wall time, with the load average (``/proc/loadavg``) before
and after — on a shared machine the figures mean little without it. Two floors are
measured beside: the bare interpreter (``python -c pass``) and ``import numpy``, which
every search needs (the index is ``.npy`` arrays).

Bytecode: a package installed by pip has its modules compiled (``__pycache__``); an
editable checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on the development machine)
has none and compiles every module from source in every process — about 0.2 s more for
the search command. So first the checkout is compiled once (``compileall``, what an
install does; ``--bytecode as-is`` skips it), and the table says whether bytecode was
there. CPU time (user + sys of the child, from ``getrusage``) is reported beside the wall
time: on a shared machine it varies less.

Rows: the bare interpreter, ``import numpy``, and the *floor* of a search: ``import
numpy`` plus opening the index (``Index.open``: its manifest, memory-mapped arrays and
the analyzer with its stemmer), which no search can skip; then ``retrieval --help``,
the search, and the search without feedback and snippets (what those two add).

``--importtime`` also prints the heaviest imports of the search command
(``python -X importtime``, cumulative µs), to see what is left to make lazy.

    python scripts/bench_startup.py                      # builds the sample index first
    python scripts/bench_startup.py --runs 30 --out results/serve/startup.md
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def retrieval_command() -> list[str]:
    """The console script installed beside this interpreter (what a user runs; not a
    version manager's shim, whose own start-up is no part of ours), else ``-m``."""
    script = Path(sys.executable).parent / "retrieval"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "retrieval"]


def time_once(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds = user + sys) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def compile_bytecode(*roots: Path) -> None:
    """Compile every module under ``roots`` to ``__pycache__`` (as ``pip install`` does),
    even where ``PYTHONDONTWRITEBYTECODE`` is set: it only stops the interpreter from
    writing bytecode, not from reading it."""
    for root in roots:
        compileall.compile_dir(str(root), quiet=1)


def heaviest_imports(cmd: list[str], env: dict, top: int) -> list[tuple[int, str]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            try:
                rows.append((int(cumulative), name.rstrip()))
            except ValueError:
                continue
    return sorted(rows, reverse=True)[:top]


def table(args, times: dict, cpus: dict, before: str, after: str) -> str:
    """The Markdown table of the timed runs, with how they were made."""
    flags = f"--runs {args.runs}" + (f" --compare {args.compare}" if args.compare else "") \
        + (" --bytecode as-is" if args.bytecode == "as-is" else "")
    bytecode = "modules compiled to bytecode first (as an install does)" \
        if args.bytecode == "compile" else "bytecode as found"
    lines = [f"Whole-process wall time, {args.runs} interleaved runs each after {args.warmup} "
             f"warm-up rounds (`python scripts/bench_startup.py {flags}`); {bytecode}; "
             f"load average {before} before, {after} after; {os.cpu_count()} cores; "
             f"Python {sys.version.split()[0]}.",
             "",
             "| command | median s | min s | p90 s | median CPU s |",
             "|---|---:|---:|---:|---:|"]
    for name, ts in times.items():
        ts = sorted(ts)
        p90 = ts[min(len(ts) - 1, int(round(0.9 * (len(ts) - 1))))]
        lines.append(f"| `{name}` | {statistics.median(ts):.3f} | {ts[0]:.3f} | {p90:.3f} | "
                     f"{statistics.median(cpus[name]):.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    p.add_argument("--index", help="an index of corpora/sample (default: built in a temp dir)")
    p.add_argument("--importtime", action="store_true",
                   help="also list the search command's heaviest imports")
    p.add_argument("--compare", metavar="CHECKOUT",
                   help="also time the retrieval commands with another checkout of this "
                        "project first on PYTHONPATH (e.g. the commit before a change), "
                        "interleaved with this one's")
    p.add_argument("--bytecode", choices=("compile", "as-is"), default="compile",
                   help="compile the checkout's modules first, as an install does "
                        "(default), or time them as they are")
    p.add_argument("--out", help="also write the table (Markdown) to this file")
    args = p.parse_args(argv)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    tmp = None
    index = args.index
    if index is None:
        tmp = tempfile.mkdtemp(prefix="bench-startup-")
        index = os.path.join(tmp, "sample.idx")
        subprocess.run([sys.executable, "-m", "retrieval", "index",
                        str(ROOT / "corpora" / "sample" / "docs"), "-o", index, "-q"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    if args.bytecode == "compile":
        compile_bytecode(ROOT / "retrieval", *([Path(args.compare) / "retrieval"]
                                               if args.compare else []))
    cli = retrieval_command()
    query = "how do glaciers move"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
        "floor: import numpy + Index.open(sample.idx)":
            [sys.executable, "-c", "import sys, numpy; from retrieval.index import Index; "
                                   "Index.open(sys.argv[1])", index],
        "retrieval --help": [*cli, "--help"],
        f"retrieval search sample.idx \"{query}\"": [*cli, "search", index, query],
        f"retrieval search sample.idx \"{query}\" --feedback none --no-snippets":
            [*cli, "search", index, query, "--feedback", "none", "--no-snippets"],
    }
    envs = {name: env for name in commands}
    if args.compare:
        other = dict(env, PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(args.compare).resolve()), os.environ.get("PYTHONPATH")])))
        for name in list(commands):
            if name.startswith("retrieval"):
                commands[f"{name} ({Path(args.compare).name})"] = commands[name]
                envs[f"{name} ({Path(args.compare).name})"] = other
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    before = loadavg()
    for round_ in range(args.warmup + args.runs):
        for name, cmd in commands.items():
            t, cpu = time_once(cmd, envs[name])
            if round_ >= args.warmup:
                times[name].append(t)
                cpus[name].append(cpu)
    after = loadavg()
    text = table(args, times, cpus, before, after)
    print(text)
    if args.importtime:
        print("\nheaviest imports of the search command (cumulative ms, one run):")
        script = cli if cli[0] != sys.executable else ["-m", "retrieval"]
        for us, name in heaviest_imports([*script, "search", index, "how do glaciers move"],
                                         env, 25):
            print(f"  {us / 1000:8.1f}  {name}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
