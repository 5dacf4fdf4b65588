"""Peak memory of indexing one huge record (issue 14.13), measured, not timed.

Makes a folder with one file holding one ``--mb`` MB document — a JSON Lines record
(``{"id": ..., "text": ...}`` on one line) or a ``.txt`` file — of random words from a
fixed vocabulary (some with accents, so the text is not ASCII unless ``--ascii``), then
runs ``retrieval index`` on it in a fresh subprocess and reads that process's peak
resident set size (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``). The baseline is
a subprocess that only imports the package and builds a one-document index. Reported:
peak, baseline, and (peak − baseline) / record size.

    python scripts/bench_record_memory.py --mb 50 [--code /work/main] [--kind jsonl|txt]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

_WORDS = ("glacier ice moves slowly valley rock pressure layer flow carve river water "
          "häuser straße café naïve résumé über señor").split()


def _make(folder: Path, kind: str, mb: int, ascii_only: bool) -> Path:
    rng = random.Random(0)
    words = [w for w in _WORDS if w.isascii()] if ascii_only else _WORDS
    target = mb * 1_000_000
    parts, size = [], 0
    while size < target:
        chunk = " ".join(rng.choices(words, k=10_000))
        parts.append(chunk)
        size += len(chunk.encode()) + 1
    text = " ".join(parts)
    if kind == "jsonl":
        path = folder / "big.jsonl"
        path.write_text(json.dumps({"id": "big", "text": text}, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    else:
        path = folder / "big.txt"
        path.write_text(text, encoding="utf-8")
    return path


def _peak(code: str, args: list[str]) -> int:
    """Peak RSS in bytes of one child running the retrieval CLI from ``code``."""
    env = dict(os.environ, PYTHONPATH=code)
    script = ("import sys, resource\nfrom retrieval.cli import main\ncode = main(sys.argv[1:])\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
              "sys.exit(code)")
    # cwd: not a checkout, or ``python -c`` would import the package found there first
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return int(proc.stderr.strip().splitlines()[-1]) * 1024  # Linux: KiB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=int, default=50)
    p.add_argument("--kind", choices=("jsonl", "txt"), default="jsonl")
    p.add_argument("--ascii", action="store_true", help="ASCII words only")
    p.add_argument("--code", default=str(Path(__file__).resolve().parents[1]),
                   help="checkout whose retrieval package is measured")
    p.add_argument("--make-only", metavar="FOLDER", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.make_only:  # in a child, so that this process stays small (see _peak)
        print(_make(Path(args.make_only), args.kind, args.mb, args.ascii))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "docs").mkdir()
        (tmp / "small").mkdir()
        # the file is written by a child: a parent that held the text would pass its
        # resident size on to every child it forks (ru_maxrss starts from it)
        made = subprocess.run([sys.executable, __file__, "--make-only", str(tmp / "docs"),
                               "--kind", args.kind, "--mb", str(args.mb)]
                              + (["--ascii"] if args.ascii else []),
                              capture_output=True, text=True, check=True)
        path = Path(made.stdout.strip())
        (tmp / "small" / "a.txt").write_text("one small document")
        size = path.stat().st_size
        base = _peak(args.code, ["index", str(tmp / "small"), "-o", str(tmp / "s.idx"), "-q"])
        peak = _peak(args.code, ["index", str(tmp / "docs"), "-o", str(tmp / "b.idx"), "-q"])
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(json.dumps({"code": args.code, "kind": args.kind, "ascii": args.ascii,
                      "record_mb": round(size / 1e6, 1), "peak_mb": round(peak / 1e6, 1),
                      "baseline_mb": round(base / 1e6, 1),
                      "peak_over_record": round(peak / size, 2),
                      "above_baseline_over_record": round((peak - base) / size, 2),
                      "loadavg": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
