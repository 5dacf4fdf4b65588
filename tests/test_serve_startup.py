"""CLI start-up (issue 19, item 5): ``retrieval --help`` and ``retrieval search`` import
no heavy module they do not use. Speed itself is measured by scripts/bench_startup.py;
this guards the imports, which decide it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "sklearn", "matplotlib", "numba", "pandas", "multiprocessing", "starlette",
         "uvicorn")

PROBE = """
import io, json, sys, contextlib
from retrieval.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(args) -> tuple[int, set]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, env=env, timeout=120)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["code"], {m.split(".")[0] for m in data["modules"]}, set(data["modules"])


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory, sample_dir):
    from retrieval.lifecycle import build_index
    out = tmp_path_factory.mktemp("startup") / "sample.idx"
    build_index([sample_dir / "docs"], out)
    return out


def test_help_imports_nothing_heavy():
    code, modules, _ = loaded(["--help"])
    assert code == 0
    assert not modules & set(HEAVY + ("numpy", "nltk"))


def test_search_imports_only_what_it_uses(sample_index):
    code, modules, full = loaded(["search", str(sample_index), "how do glaciers move"])
    assert code == 0
    assert "numpy" in modules            # the index is .npy arrays
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    # nor the parts of the engine a plain search of an ordinary index does not run: the
    # folder reader (indexing), the field mixture and --collapse, the
    # thread pool of --jobs
    unused = {"retrieval.reading", "retrieval.formats",
              "retrieval.cli.ranked", "retrieval.duplicates", "retrieval.search.fields",
              "concurrent.futures", "html.parser", "retrieval.serve"}
    assert not full & unused, sorted(full & unused)


@pytest.mark.slow
def test_sharded_and_ranked_searches_still_import_what_they_need(tmp_path, sample_dir,
                                                                sample_index):
    """The lazily imported parts are found when used (a sharded index; --collapse)."""
    out = tmp_path / "sharded.idx"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    subprocess.run([sys.executable, "-m", "retrieval", "index", str(sample_dir / "docs"),
                    "-o", str(out), "--shards", "2", "-q"], check=True, env=env,
                   capture_output=True, timeout=120)
    code, _, full = loaded(["search", str(out), "glaciers", "--format", "json"])
    assert code == 0 and "retrieval.shards.search" in full
    code, _, full = loaded(["search", str(sample_index), "glaciers", "--collapse"])
    assert code == 0 and "retrieval.cli.ranked" in full


def test_import_retrieval_is_light_and_complete():
    code = ("import sys, retrieval; heavy = [m for m in sys.modules if m.split('.')[0] in "
            f"{HEAVY + ('numpy',)!r}]; assert not heavy, heavy; "
            "assert all(getattr(retrieval, n) for n in retrieval.__all__); "
            "assert set(retrieval.__all__) <= set(dir(retrieval))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    import retrieval
    with pytest.raises(AttributeError):
        retrieval.NoSuchName  # noqa: B018


@pytest.mark.slow
def test_bench_startup_script(tmp_path, sample_index):
    out = tmp_path / "startup.md"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_startup.py"),
                           "--runs", "1", "--warmup", "0", "--index", str(sample_index),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    assert "load average" in table and "| `retrieval --help` |" in table
    assert "compiled to bytecode" in table and "median CPU s" in table
    assert table.count("\n| `") == 6
