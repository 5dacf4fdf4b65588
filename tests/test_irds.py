"""ir_datasets ids (``irds:ID``), offline: the shared Cranfield archive is laid into a
temporary IR_DATASETS_HOME where ir_datasets expects it, and ``irds:cranfield`` is
compared with the built-in Cranfield reader. Nothing downloads: a missing file is an
error naming the file and where to put it.

ir_datasets reads IR_DATASETS_HOME when it is imported, so each check runs in a fresh
process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.paths import collections_root

pytest.importorskip("ir_datasets", reason="ir_datasets (the irds extra) is not installed")
REPO = Path(__file__).resolve().parent.parent


def _env(home: Path) -> dict:
    env = dict(os.environ, IR_DATASETS_HOME=str(home), PYTHONPATH=str(REPO),
               RETRIEVAL_CACHE=str(home / "retrieval-cache"))
    # any attempt to reach the network fails at once instead of hanging
    env.update(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    return env


def _python(code: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(home), timeout=300)


def _cli(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retrieval", *args], capture_output=True,
                          text=True, env=_env(home), timeout=300, cwd=cwd)


@pytest.fixture()
def cranfield_home(tmp_path):
    archive = collections_root() / "cranfield" / "cran.tar.gz"
    if not archive.is_file():
        pytest.skip(f"the shared Cranfield archive is absent ({archive}; set "
                    f"RETRIEVAL_COLLECTIONS)")
    home = tmp_path / "irds"
    (home / "cranfield").mkdir(parents=True)
    shutil.copyfile(archive, home / "cranfield" / "cran.tar.gz")
    return home


COMPARE = """
import json
from retrieval.collections import CRANFIELD_GRADES, load_collection
irds = load_collection("irds:cranfield")
ours = load_collection("cranfield")
norm = lambda t: " ".join(t.split())
print(json.dumps({
    "stats": [irds.stats(), ours.stats()],
    "docs_equal": [(d.docid, norm(d.text)) for d in irds.documents]
                  == [(d.docid, norm(d.text)) for d in ours.documents],
    "queries_equal": [(q.qid, norm(q.text)) for q in irds.queries]
                     == [(q.qid, norm(q.text)) for q in ours.queries],
    # ir_datasets keeps cranqrel's codes (1 = complete answer ... 4 = minimum interest);
    # the built-in reader turns them into grades, 5 - code (-1 stays -1)
    "qrels_equal": sorted((q.qid, q.docid, CRANFIELD_GRADES[q.relevance]) for q in irds.qrels)
                   == sorted(ours.qrels),
    "qrels_raw_differ": sorted(irds.qrels) != sorted(ours.qrels),
    "name": irds.name,
}))
"""


@pytest.mark.collections
def test_irds_cranfield_equals_the_builtin_reader(cranfield_home):
    done = _python(COMPARE, cranfield_home)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    irds_stats, our_stats = result["stats"]
    assert irds_stats == our_stats
    assert irds_stats["documents"] == 1400 and irds_stats["judgments"] == 1837
    # the documented mapping: ids as given, title + text, relevance as given (-1 kept),
    # and Cranfield's codes as ir_datasets keeps them
    assert result["docs_equal"] and result["queries_equal"] and result["qrels_equal"]
    assert result["qrels_raw_differ"]
    assert result["name"] == "irds-cranfield"


@pytest.mark.slow
@pytest.mark.collections
def test_benchmark_and_evaluate_take_irds_ids(cranfield_home, tmp_path):
    out = tmp_path / "bench"
    done = _cli(["benchmark", "irds:cranfield", "cranfield", "-m", "AP", "-o", str(out),
                 "--no-plots", "-q", "--json"], cranfield_home, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    maps = [c["configurations"][0]["mean"]["AP"] if "configurations" in c else None
            for c in report["collections"]]
    assert maps[0] is not None and maps[0] == pytest.approx(maps[1], abs=1e-12)
    run = next((out / "runs" / "irds-cranfield").glob("*.trec"))
    done = _cli(["evaluate", "irds:cranfield", str(run), "-m", "AP", "-c"],
                cranfield_home, tmp_path)
    assert done.returncode == 0, done.stderr
    value = float(done.stdout.split()[-1])
    assert value == pytest.approx(maps[0], abs=1e-4)


def test_missing_data_names_the_file_and_where(tmp_path):
    home = tmp_path / "empty"
    done = _cli(["benchmark", "irds:cranfield", "-o", str(tmp_path / "o"), "-q"], home,
                tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"place the file cran.tar.gz at {home / 'cranfield' / 'cran.tar.gz'}" in lines[0]
    assert "1730f7be572d95a5a4b56c59a7b900a5" in lines[0]
    assert not (home / "cranfield" / "cran.tar.gz").exists()


def test_unknown_id_and_missing_parts(tmp_path):
    home = tmp_path / "empty"
    for name, says in (("irds:no-such-dataset", "ir_datasets has no dataset"),
                       ("irds:beir/scifact", "has no qrels")):
        done = _cli(["tune", name], home, tmp_path)
        assert done.returncode == 2 and says in done.stderr, done.stderr
