"""Writers killed at random moments leave a sound index: the one before or the one after.

``retrieval index --force``, ``add``, ``delete`` and ``update`` run as subprocesses
(``python -m retrieval`` with PYTHONPATH at this checkout, so no install is needed) on a
~2,500-document corpus and are SIGKILLed at seeded random moments spread over the measured
duration of an unkilled run (after the interpreter's start-up time). After every kill: the index opens, :func:`check` (full
checksums and consistency) finds nothing, its content — the set of document ids and a
ranking with its scores — equals the state before the command or the state after it, and
the next writer succeeds and clears what the killed one left behind.

``RETRIEVAL_KILL_POINTS`` sets the total number of kills over the four commands (default 8;
the same variable sets the kills of ``test_index.py``'s build test), ``RETRIEVAL_KILL_SEED``
the seed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval import Dirichlet, Index, Searcher
from retrieval.lifecycle import add_documents, check

REPO = Path(__file__).resolve().parent.parent
OPS = ("index", "add", "delete", "update")
KILLS = int(os.environ.get("RETRIEVAL_KILL_POINTS", "8"))
SEED = int(os.environ.get("RETRIEVAL_KILL_SEED", "7"))
QUERY = "w3 w17 w101 w250"


def _text(rng: random.Random) -> str:
    n = rng.randint(80, 220)
    # a skewed distribution over 3,000 words
    return " ".join(f"w{int(rng.paretovariate(0.9)) % 3000}" for _ in range(n))


def _write_corpus(root: Path, names: range, rng: random.Random, prefix: str = "d") -> None:
    for i in names:
        folder = root / f"part{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{prefix}{i:05d}.txt").write_text(_text(rng), encoding="utf-8")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _retrieval(*args) -> list[str]:
    return [sys.executable, "-m", "retrieval", *map(str, args)]


def state(path: Path) -> tuple:
    """What a user sees: the ids, and a ranking with its scores."""
    index = Index.open(path)
    ranking = tuple((r.docid, round(r.score, 9))
                    for r in Searcher(index, Dirichlet(mu=1000)).search(QUERY, k=20))
    return tuple(sorted(index.docids.all())), ranking


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpora, the indexes before each command, and each command's arguments."""
    root = tmp_path_factory.mktemp("crash")
    rng = random.Random(SEED)
    src, extra, src2, upd = root / "src", root / "extra", root / "src2", root / "upd"
    _write_corpus(src, range(2500), rng)
    _write_corpus(extra, range(2500, 2900), rng)
    _write_corpus(src2, range(1000, 3400), rng, prefix="r")
    shutil.copytree(src, upd)
    env = _env()
    for folder, out in ((src, root / "base.idx"), (upd, root / "upd.idx")):
        subprocess.run(_retrieval("index", folder, "-o", out, "-q"), check=True, env=env,
                       stdout=subprocess.DEVNULL)
    # the update's work: 100 files changed, 100 removed, 100 new
    files = sorted(upd.rglob("*.txt"))
    for f in files[:100]:
        f.write_text(_text(rng), encoding="utf-8")
    for f in files[100:200]:
        f.unlink()
    _write_corpus(upd, range(5000, 5100), rng)
    ids = root / "ids.txt"
    ids.write_text("".join(f"part{i % 10}/d{i:05d}.txt\n" for i in range(0, 2500, 5)),
                   encoding="utf-8")
    before = {"index": root / "base.idx", "add": root / "base.idx",
              "delete": root / "base.idx", "update": root / "upd.idx"}
    args = {"index": lambda t: ("index", src2, "-o", t, "--force", "-q"),
            "add": lambda t: ("add", t, extra, "-q"),
            "delete": lambda t: ("delete", t, "--from-file", ids),
            "update": lambda t: ("update", t, "-q")}
    return root, before, args, env


def _kills_for(op: str) -> int:
    i = OPS.index(op)
    return KILLS // len(OPS) + (1 if i < KILLS % len(OPS) else 0)


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_killed_writer_leaves_before_or_after(world, op):
    root, before_path, args, env = world
    kills = _kills_for(op)
    if kills == 0:
        pytest.skip("RETRIEVAL_KILL_POINTS gives this command no kill")
    rng = random.Random(f"{SEED}-{op}")
    before = state(before_path[op])
    # an unkilled run: the after-state and the duration to spread the kills over
    ref = root / f"{op}-ref.idx"
    shutil.copytree(before_path[op], ref)
    start = time.perf_counter()
    subprocess.run(_retrieval(*args[op](ref)), check=True, env=env, stdout=subprocess.DEVNULL)
    duration = time.perf_counter() - start
    # most of a run is the interpreter starting: kills start near its end, to hit the work
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import retrieval.cli.index, retrieval.lifecycle"],
                   check=True, env=env)
    startup = min(time.perf_counter() - start, duration) * 0.8
    after = state(ref)
    assert after != before
    assert check(ref) == []
    outcomes = {"before": 0, "after": 0}
    problems = []
    for k in range(kills):
        target = root / f"{op}-k{k}.idx"
        shutil.copytree(before_path[op], target)
        proc = subprocess.Popen(_retrieval(*args[op](target)), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(startup, duration * 1.1)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        where = f"{op} killed after {delay:.3f}s of {duration:.3f}s"
        try:
            got = state(target)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        found = check(target)
        if found:
            problems.append(f"{where}: check: {found}")
        if got == before:
            outcomes["before"] += 1
        elif got == after:
            outcomes["after"] += 1
        else:
            problems.append(f"{where}: the content is neither the state before nor after")
        # the next writer gets the lock and clears what the killed one left behind
        add_documents(target, [("after-kill", "w1 w2")])
        leftovers = [p.name for p in target.iterdir() if p.name.startswith(".")]
        if leftovers:
            problems.append(f"{where}: leftovers after the next write: {leftovers}")
        siblings = [p.name for p in root.iterdir() if p.name.startswith(f".{target.name}")]
        if siblings:
            problems.append(f"{where}: temporary folders beside the index: {siblings}")
        if check(target) != []:
            problems.append(f"{where}: check after the next write: {check(target)}")
        shutil.rmtree(target)
    print(f"\n{op}: {kills} kills over {duration:.2f}s runs, {outcomes['before']} left the "
          f"state before, {outcomes['after']} the state after, {len(problems)} damaged")
    assert problems == []
