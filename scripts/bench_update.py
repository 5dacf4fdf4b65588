#!/usr/bin/env python3
"""How much cheaper an incremental change is than a rebuild.

Generates a synthetic corpus with ``scripts/make_corpus.py`` (``--docs N``, default
100,000), writes it out as a folder of small ``.txt`` files in subfolders of 1,000 (so the
real ``retrieval update`` path runs: walking the folder, ``stat``-ing every file, reading
and hashing those whose size or modification time changed, analysing only those whose text
changed), then times, on one index:

1. ``build_index`` of the whole folder (the full build every figure is compared with),
   started :data:`~retrieval.index.sources.RACY_NS` after the folder was written (files
   modified just before a build have no trusted timestamp, so ``update`` would re-read
   them every time, which is not the case being measured);
2. ``update`` after 1% of the documents changed on disk: 0.5% modified, 0.25% new files,
   0.25% files removed — :data:`ROUNDS` times, other documents each time (the median is
   reported, each round's time is in the JSON);
3. ``add_documents`` of 1% new documents;
4. ``delete_documents`` of 1% of the documents.

After (2) the index is compared with a fresh build of the changed folder, and after (4)
with a fresh in-memory build of the final documents: same counts and vocabulary, same
rankings and scores (to 1e-9) for a few queries. ``check`` (full checksums, consistency)
must find nothing. Prints a Markdown table (operation, documents touched, seconds, ratio
to the full build) and writes ``<label>.json`` and ``<label>.md`` to ``--out``
(``results/lifecycle``). The machine's load average is recorded: these are wall-clock
times.

    python scripts/bench_update.py                      # 100k documents
    python scripts/bench_update.py --docs 2000 --out /tmp/x --work /tmp/w   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval import Dirichlet, Index, Searcher  # noqa: E402
from retrieval.index.check import check  # noqa: E402
from retrieval.index.lifecycle import add_documents, build_index, delete_documents  # noqa: E402
from retrieval.index.sources import RACY_NS  # noqa: E402
from retrieval.index.update import update  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the report helper
from reporting import run_main, write_report  # noqa: E402

MAKE_CORPUS = ROOT / "scripts" / "make_corpus.py"
DEFAULT_OUT = ROOT / "results" / "lifecycle"
PER_FOLDER = 1000
#: rounds of 1% changes, one update each (the median is reported)
ROUNDS = 3


def log(quiet: bool, *parts) -> None:
    if not quiet:
        print(*parts, file=sys.stderr, flush=True)


def generate(n_total: int, seed: int, work: Path, quiet: bool, model: Path | None = None
             ) -> tuple[list[tuple[str, str]], list[str]]:
    """``n_total`` (id, text) pairs and some queries from make_corpus.py."""
    out = work / "generated"
    cmd = [sys.executable, str(MAKE_CORPUS), "--docs", str(n_total), "--queries", "20",
           "--seed", str(seed), "--out", str(out)]
    if model is not None:
        cmd += ["--model", str(model)]
    if quiet:
        cmd.append("-q")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)
    docs = []
    with open(out / "docs.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            docs.append((str(rec["id"]), rec["text"]))
    queries = [line.split("\t", 1)[1] for line in
               (out / "queries.tsv").read_text(encoding="utf-8").splitlines() if "\t" in line]
    shutil.rmtree(out)
    return docs, queries


def file_of(folder: Path, number: int, name: str) -> Path:
    return folder / f"s{number // PER_FOLDER:04d}" / f"{name}.txt"


def docid_of(number: int, name: str) -> str:
    return f"s{number // PER_FOLDER:04d}/{name}.txt"


def write_folder(folder: Path, docs: list[tuple[str, str]]) -> None:
    for i, (name, text) in enumerate(docs):
        f = file_of(folder, i, name)
        if i % PER_FOLDER == 0:
            f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")


def rankings(index: Index, queries: list[str]) -> list[list[tuple[str, float]]]:
    searcher = Searcher(index, Dirichlet(mu=1000))
    return [[(r.docid, r.score) for r in searcher.search(q, k=100)] for q in queries]


def same(a: Index, b: Index, queries: list[str]) -> list[str]:
    """Differences between two indexes (empty: equal up to document numbering)."""
    diffs = []
    for what in ("num_docs", "num_terms", "num_tokens"):
        if getattr(a, what) != getattr(b, what):
            diffs.append(f"{what}: {getattr(a, what)} != {getattr(b, what)}")
    if a.vocabulary.all() != b.vocabulary.all():
        diffs.append("vocabularies differ")
    if sorted(a.docids.all()) != sorted(b.docids.all()):
        diffs.append("document ids differ")
    for q, ra, rb in zip(queries, rankings(a, queries), rankings(b, queries)):
        if [d for d, _ in ra] != [d for d, _ in rb] or any(
                abs(x - y) > 1e-9 for (_, x), (_, y) in zip(ra, rb)):
            diffs.append(f"rankings differ for {q!r}")
    return diffs


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def run(n: int, seed: int, work: Path, quiet: bool, model: Path | None = None) -> dict:
    one = max(1, n // 100)        # 1%
    modified, new = max(1, n // 200), max(1, n // 400)
    removed = max(1, one - modified - new)
    load_before = os.getloadavg()
    extra = ROUNDS * (new + modified) + one
    log(quiet, f"generating {n + extra:,} documents ...")
    docs, queries = generate(n + extra, seed, work, quiet, model)
    base, pool = docs[:n], docs[n:]
    new_docs, added_docs = pool[:ROUNDS * new], pool[ROUNDS * new:ROUNDS * new + one]
    modified_texts = [t for _, t in pool[ROUNDS * new + one:]]
    folder = work / "corpus"
    log(quiet, f"writing {n:,} files into {folder} ...")
    write_folder(folder, base)
    # a folder is not indexed the instant it is written: files modified within RACY_NS of
    # the build get no trusted timestamp and every update re-reads them (git's racy rule)
    time.sleep(RACY_NS / 1e9 + 0.1)
    idx = work / "bench.idx"
    rows = []

    log(quiet, "full build ...")
    (built, reader), full_s = timed(build_index, [folder], idx, overwrite=True)
    rows.append({"operation": "full build (build_index)", "documents": n, "seconds": full_s})
    del built, reader

    # 1% of the documents change on disk, ROUNDS times (different documents each time);
    # each round is one update, and the median is reported
    rng = random.Random(seed)
    current = {docid_of(i, name): text for i, (name, text) in enumerate(base)}
    untouched = list(range(n))
    rng.shuffle(untouched)
    update_times, changes = [], []
    for r in range(ROUNDS):
        numbers = [untouched.pop() for _ in range(modified + removed)]
        for i, text in zip(numbers[:modified], modified_texts[r * modified:]):
            name = base[i][0]
            file_of(folder, i, name).write_text(text, encoding="utf-8")
            current[docid_of(i, name)] = text
        for i in numbers[modified:]:
            name = base[i][0]
            file_of(folder, i, name).unlink()
            del current[docid_of(i, name)]
        for name, text in new_docs[r * new:(r + 1) * new]:
            f = folder / f"new{r}" / f"{name}.txt"
            f.parent.mkdir(exist_ok=True)
            f.write_text(text, encoding="utf-8")
            current[f"new{r}/{name}.txt"] = text
        log(quiet, f"update {r + 1}/{ROUNDS} after {modified} modified, {new} new, "
                   f"{removed} removed files ...")
        change, update_s = timed(update, idx)
        if (change.replaced, change.added, change.deleted) != (modified, new, removed):
            raise SystemExit(f"update did {change.as_dict()}, expected {modified} replaced, "
                             f"{new} added, {removed} deleted")
        update_times.append(update_s)
        changes.append(change.unchanged)
    rows.append({"operation": f"update (0.5% modified, 0.25% new, 0.25% removed files; "
                              f"median of {ROUNDS})",
                 "documents": modified + new + removed,
                 "seconds": statistics.median(update_times),
                 "rounds_seconds": update_times, "unchanged_not_analysed": changes})
    log(quiet, "fresh build of the changed folder, to compare ...")
    fresh_path = work / "fresh.idx"
    (_, _), rebuild_s = timed(build_index, [folder], fresh_path, overwrite=True)
    rows.append({"operation": "full rebuild of the changed folder (for comparison)",
                 "documents": len(current), "seconds": rebuild_s})
    diffs = same(Index.open(idx), Index.open(fresh_path), queries)
    shutil.rmtree(fresh_path)

    log(quiet, f"add_documents of {one} ...")
    added = [(f"added/{name}", text) for name, text in added_docs]
    _, add_s = timed(add_documents, idx, added)
    current.update(added)
    rows.append({"operation": "add_documents (1%)", "documents": one, "seconds": add_s})
    victims = rng.sample(sorted(current), one)
    log(quiet, f"delete_documents of {one} ...")
    _, delete_s = timed(delete_documents, idx, victims)
    for d in victims:
        del current[d]
    rows.append({"operation": "delete_documents (1%)", "documents": one, "seconds": delete_s})

    log(quiet, "check and comparison with a fresh build of the final documents ...")
    (problems, check_s) = timed(check, idx)
    rows.append({"operation": "check (full checksums and consistency)",
                 "documents": len(current), "seconds": check_s})
    final = Index.open(idx)
    diffs += same(final, Index.build(sorted(current.items()), analyzer=final.analyzer),
                  queries)
    for row in rows:
        row["ratio_to_full_build"] = row["seconds"] / full_s
    return {
        "documents": n, "seed": seed, "layout": f"folder of .txt files, {PER_FOLDER} per "
                                                f"subfolder",
        "queries": len(queries), "rows": rows, "equal_to_fresh_build": not diffs, "differences": diffs,
        "check_problems": problems,
        "index_bytes": sum(f.stat().st_size for f in idx.rglob("*") if f.is_file()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"### Incremental changes, {result['documents']:,} documents "
             f"({result['layout']})", "",
             "| operation | documents touched | seconds | ratio to full build |",
             "|---|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['operation']} | {r['documents']:,} | {r['seconds']:.2f} | "
                     f"{r['ratio_to_full_build']:.3f} |")
    rounds = [r["rounds_seconds"] for r in result["rows"] if "rounds_seconds" in r]
    if rounds:
        lines += ["", "Update rounds: " + ", ".join(f"{x:.2f}" for x in rounds[0]) + " s."]
    lines += ["",
              f"Result equal to a fresh build (counts, vocabulary, rankings and scores of "
              f"{result['queries']} queries): "
              f"**{'yes' if result['equal_to_fresh_build'] else 'NO'}**; `check` problems: "
              f"{len(result['check_problems'])}. Index size "
              f"{result['index_bytes'] / 2**20:.1f} MiB.",
              f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; load "
              f"average (1, 5, 15 min) {m['load_average_before']} before, "
              f"{m['load_average_after']} after — wall-clock times on a shared machine."]
    return "\n".join(lines) + "\n"


def _count(text: str) -> int:
    t = text.lower().replace("_", "")
    scale = 1
    if t.endswith("k"):
        t, scale = t[:-1], 1000
    elif t.endswith("m"):
        t, scale = t[:-1], 1_000_000
    try:
        value = int(float(t) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of documents, got {text!r}") \
            from None
    if value < 400:
        raise argparse.ArgumentTypeError("--docs must be at least 400 (1% must be >= 4)")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=_count, default=100_000,
                   help="documents in the corpus (default 100000; 100k, 1M accepted)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"where the JSON and Markdown go (default {DEFAULT_OUT})")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder for the corpus and indexes (default: a temporary "
                        "folder, removed afterwards)")
    p.add_argument("--model", type=Path,
                   help="make_corpus.py's model JSON (its --save-model), to skip fitting it")
    p.add_argument("--label", help="name of the result files (default: docs<N>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    label = args.label or f"docs{args.docs}"
    scratch = args.work is None
    work = Path(tempfile.mkdtemp(prefix="bench_update-")) if scratch else args.work
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.docs, args.seed, work, args.quiet, args.model)
    finally:
        if scratch:
            shutil.rmtree(work, ignore_errors=True)
    text = markdown(result)
    print(text)
    write_report(args.out, label, result, text, quiet=args.quiet)
    if not result["equal_to_fresh_build"] or result["check_problems"]:
        print(f"error: the changed index differs from a fresh build: "
              f"{result['differences'] + result['check_problems']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_main(main, "bench_update.py")
