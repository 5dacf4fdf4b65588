"""Indexing speed on real text (issue 17.2): documents per second of ``retrieval index``
on a mixed real-world folder, next to the same figure on ASCII text, old code against
new code in interleaved rounds.

The real-world folder is built from what the machine has (it is not committed):

* ``doc/``: a copy of ``/usr/share/doc`` — READMEs, copyright files, gzip-compressed
  changelogs and manuals (read as text by the new code, skipped as binary by the old),
  HTML manuals;
* ``python/``: the ``.py`` files of the Python standard library (tests excluded);
* ``intl/``: short texts in German, French, Spanish, Russian, Chinese and Japanese
  written for this benchmark, repeated with numbered variations (:data:`INTL`).

Two views are timed, because the old code skips the compressed files: ``mixed`` (the
whole folder: each version indexes what it can read) and ``common`` (the folder without
``.gz``/``.bz2``/``.xz``/``.zst``/``.pdf`` files: both versions index exactly the same
documents). The ASCII figure indexes the shared collections concatenated
(``scripts/make_corpus.py --shared``; 10,259 documents, JSON Lines).

Each measurement is one ``retrieval index`` process (``-q --format json --force``); the
figure is documents / the ``seconds`` the command reports (reading, analysis and the
atomic write; not the interpreter's start), and documents / the process's CPU seconds
(user + system, start included) — the fairer figure on a shared machine, where the wall
time depends on the other processes. Rounds alternate old and new; the load
average is recorded before each run. Results go to ``results/realtext/``.

    python scripts/bench_realtext.py --old /work/main --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INTL = {
    "de": "Die alten Häuser am Fluss wurden im Winter renoviert. Über die Brücke fahren "
          "täglich viele Autos, und die Straßenbahn hält vor dem Rathaus. Größere Städte "
          "wie München und Köln haben ein dichtes Netz öffentlicher Verkehrsmittel.",
    "fr": "Les élèves étudient la géographie à l'école. La mer était calme et les bateaux "
          "rentraient au port ; les pêcheurs déchargeaient leurs filets pendant que le "
          "soleil se couchait derrière les falaises.",
    "es": "Las canciones populares se cantan en las fiestas del pueblo. El río cruza el "
          "valle hasta llegar al océano, y en otoño los árboles cambian de color. Mañana "
          "habrá música en la plaza mayor.",
    "ru": "Старые дома стоят на берегу реки. Она читает интересную книгу об истории "
          "города, а в лесу растут высокие деревья. Зимой здесь выпадает много снега.",
    "zh": "信息检索是从大量文档中找到相关信息的技术。今天天气很好，我们去公园散步。"
          "搜索引擎使用倒排索引来快速查找包含查询词的文档。",
    "ja": "情報検索システムは文書を探すための仕組みです。東京のラーメンはとてもおいしい"
          "です。検索エンジンは転置索引を使って文書をすばやく見つけます。",
}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".pdf")


def build_folder(dest: Path, intl_copies: int = 200) -> Path:
    """The mixed folder (see the module docstring), made once at ``dest``."""
    if (dest / ".complete").exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree("/usr/share/doc", dest / "doc", symlinks=True,
                    ignore_dangling_symlinks=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for py in sorted(stdlib.rglob("*.py")):
        rel = py.relative_to(stdlib)
        if rel.parts[0] in ("site-packages", "test", "idlelib") or "tests" in rel.parts:
            continue
        out = dest / "python" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(py, out)
    (dest / "intl").mkdir()
    for lang, text in INTL.items():
        sentences = text.replace("。", "。\n").replace(". ", ".\n").split("\n")
        for i in range(intl_copies):
            body = "\n".join(sentences[(i + j) % len(sentences)] for j in range(len(sentences)))
            (dest / "intl" / f"{lang}-{i:04d}.txt").write_text(f"{body}\n{i}\n", "utf-8")
    (dest / ".complete").write_text("")
    return dest


def common_view(folder: Path, dest: Path) -> Path:
    """``folder`` without compressed files and PDFs (hard links, made once)."""
    if (dest / ".complete").exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    for src in sorted(folder.rglob("*")):
        rel = src.relative_to(folder)
        if any(p.startswith(".") for p in rel.parts) or src.is_symlink() \
                or not src.is_file() or src.name.lower().endswith(COMPRESSED):
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, out)
    (dest / ".complete").write_text("")
    return dest


def ascii_corpus(dest: Path) -> Path:
    if not (dest / "docs.jsonl").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_corpus.py"), "--shared",
                        "--out", str(dest), "-q"], check=True)
    return dest / "docs.jsonl"


def run_index(code: str, source: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=code)
    load = open("/proc/loadavg").read().split()[:3]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "retrieval", "index", str(source), "-o",
                           str(out), "-q", "--force", "--format", "json"], env=env,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{code}: {proc.stderr}")
    summary = json.loads(proc.stdout)
    return {"documents": summary["documents"], "tokens": summary["tokens"],
            "tokens_per_cpu_s": round(summary["tokens"] / cpu),
            "seconds": summary["seconds"],
            "wall": round(wall, 3), "cpu": round(cpu, 3),
            "docs_per_cpu_s": round(summary["documents"] / cpu, 1), "docs_per_s": round(summary["documents"]
                                                         / summary["seconds"], 1),
            "skipped": summary.get("skipped"), "compressed": summary.get("compressed"),
            "loadavg": load}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", default="/work/main", help="checkout of the old code")
    p.add_argument("--new", default=str(ROOT), help="checkout of the new code")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bench-realtext"),
                   help="where the folders and indexes are made (reused)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--views", default="mixed,common,ascii")
    p.add_argument("--out", default=str(ROOT / "results" / "realtext" / "speed.json"))
    args = p.parse_args(argv)
    work = Path(args.work)
    folder = build_folder(work / "mixed")
    sources = {"mixed": folder, "common": common_view(folder, work / "common"),
               "ascii": ascii_corpus(work / "ascii")}
    views = args.views.split(",")
    rows = []
    for r in range(args.rounds):
        for view in views:
            order = [("old", args.old), ("new", args.new)]
            if r % 2:
                order.reverse()  # interleaved, each side first in turn
            for name, code in order:
                res = run_index(code, sources[view], work / f"{view}-{name}.idx")
                res.update(round=r, view=view, code=name)
                rows.append(res)
                print(json.dumps(res), flush=True)
    summary = {}
    for view in views:
        for name in ("old", "new"):
            mine = [x for x in rows if x["view"] == view and x["code"] == name]
            sel = sorted(x["docs_per_s"] for x in mine)
            cpu = sorted(x["docs_per_cpu_s"] for x in mine)
            summary[f"{view}/{name}"] = {"median_docs_per_s": sel[len(sel) // 2],
                                         "median_docs_per_cpu_s": cpu[len(cpu) // 2],
                                         "runs": sel, "documents": mine[0]["documents"]}
            tok = sorted(x["tokens_per_cpu_s"] for x in mine)
            summary[f"{view}/{name}"]["median_tokens_per_cpu_s"] = tok[len(tok) // 2]
        for key in ("median_docs_per_s", "median_docs_per_cpu_s", "median_tokens_per_cpu_s"):
            summary[f"{view}/speedup ({key})"] = round(summary[f"{view}/new"][key]
                                                       / summary[f"{view}/old"][key], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "runs": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
