"""Every command of README.md's ```sh blocks that can run here is run, so the examples
cannot drift from the tool.

The commands run in a temporary folder laid out for them from the sample corpus:
``~/notes`` (HOME is the temporary folder) and ``corpora/sample/docs`` hold the sample
documents, ``~/papers`` a draft, ``qrels.txt`` and ``topics.tsv`` the sample judgments and
queries, ``run.trec``, ``base.trec``, ``rm3.trec`` and ``mix.trec`` runs of them. A
``retrieval`` on PATH runs this checkout. Not run: installs (``pip``), the test suite,
``python scripts/...`` benchmarks (tests/test_scripts.py covers the scripts), and
commands that need the shared collections or ir_datasets' data unless those are present
(then in the slow test below).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.paths import REPO_ROOT, SAMPLE_CORPUS, collections_root

README = REPO_ROOT / "README.md"
SHARED = ("cranfield", "cisi", "med", "cacm", "nfcorpus")
_SKIP_PREFIXES = ("pip ", "python -m pytest", "python scripts/", "cd ")


def readme_commands(text: str) -> list[str]:
    """The shell commands of the ```sh blocks: one per line (comments dropped, ``&&``
    chains kept together, installs and the test suite dropped from a chain)."""
    commands = []
    for block in re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            line = re.sub(r"\s{2,}#.*$", "", line).strip()  # a comment after the command
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split("&&")]
            parts = [p for p in parts if not p.startswith(_SKIP_PREFIXES)]
            if parts:
                commands.append(" && ".join(parts))
    return commands


def _needs_collections(command: str) -> bool:
    words = set(shlex.split(command.replace(">", " ")))
    return bool(words & set(SHARED)) or "irds:" in command


def _sh(command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    home = tmp_path_factory.mktemp("readme")
    bin_dir = home / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "retrieval"
    launcher.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m retrieval \"$@\"\n")
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    shutil.copytree(SAMPLE_CORPUS / "docs", home / "notes")
    shutil.copytree(SAMPLE_CORPUS / "docs", home / "corpora" / "sample" / "docs")
    (home / "papers").mkdir()
    (home / "papers" / "draft.txt").write_text("A draft about glacier flow and ice.\n")
    shutil.copyfile(SAMPLE_CORPUS / "qrels.txt", home / "qrels.txt")
    shutil.copyfile(SAMPLE_CORPUS / "queries.tsv", home / "topics.tsv")
    env = dict(os.environ, HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO_ROOT), RETRIEVAL_CACHE=str(home / "cache"),
               RETRIEVAL_COLLECTIONS=str(collections_root()), MPLBACKEND="Agg")
    setup = ("retrieval index corpora/sample/docs -o runs.idx -q && "
             "retrieval search runs.idx --queries topics.tsv -k 100 --format trec > run.trec"
             " && cp run.trec base.trec && "
             "retrieval search runs.idx --queries topics.tsv -k 100 --format trec "
             "--feedback rm3 > rm3.trec && "
             "retrieval search runs.idx --queries topics.tsv -k 100 --format trec "
             "--feedback mixture > mix.trec")
    done = _sh(setup, home, env)
    assert done.returncode == 0, done.stderr
    return home, env


def test_the_readme_has_commands():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert any(c.startswith("retrieval evaluate") for c in commands)
    assert any(c.startswith("retrieval index") for c in commands)


@pytest.mark.slow
def test_readme_commands_on_the_sample_corpus(workspace):
    home, env = workspace
    ran = 0
    for command in readme_commands(README.read_text(encoding="utf-8")):
        if _needs_collections(command):
            continue
        done = _sh(command, home, env)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stderr}"
        ran += 1
    assert ran >= 10


@pytest.mark.slow
@pytest.mark.collections
def test_readme_commands_on_the_shared_collections(workspace):
    home, env = workspace
    if not all((collections_root() / name).is_dir() for name in SHARED):
        pytest.skip(f"the shared collections are absent ({collections_root()}; set "
                    f"RETRIEVAL_COLLECTIONS)")
    env = dict(env)
    irds_home = home / "irds"
    (irds_home / "cranfield").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(collections_root() / "cranfield" / "cran.tar.gz",
                    irds_home / "cranfield" / "cran.tar.gz")
    env["IR_DATASETS_HOME"] = str(irds_home)
    ran = 0
    for command in readme_commands(README.read_text(encoding="utf-8")):
        if not _needs_collections(command):
            continue
        if re.search(r"irds:(?!cranfield\b)", command):
            continue  # only Cranfield's archive is in the shared collections
        done = _sh(command, home, env)
        assert done.returncode == 0, f"README command failed: {command}\n{done.stderr}"
        ran += 1
    assert ran >= 1
