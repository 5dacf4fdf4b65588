"""The bad-input matrix (issue 6): every user mistake is one line, names what is wrong and
what to do, exits non-zero, never shows a traceback and loses nothing.

The cases are defined once, in ``scripts/bad_input_matrix.py`` (which prints the table
of results/bad_input.md by running them as subprocesses); here each case runs
in-process through :func:`retrieval.cli.main`. Tests for what a table row cannot show
(searchability of odd encodings, ids of odd file names, bounded memory on a large
file, the speed of a long query) follow the matrix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.cli import main

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "bad_input_matrix.py"

_spec = importlib.util.spec_from_file_location("bad_input_matrix", SCRIPT)
matrix = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bad_input_matrix", matrix)
_spec.loader.exec_module(matrix)

ROOT_REASON = ("running as root: file permissions do not apply to root, so chmod 000 "
               "cannot make a file unreadable")


def tree_digest(path: Path) -> dict:
    """Every file under ``path`` (except an index's lock file) with a hash of its bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            f = Path(dirpath) / name
            rel = f.relative_to(path).as_posix()
            if rel == "lock":
                continue
            if f.is_symlink():
                out[rel] = "-> " + os.readlink(f)
            elif not f.is_file():
                out[rel] = "special"
            else:
                try:
                    out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
                except PermissionError:
                    out[rel] = "unreadable"
    return out


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    paths = matrix.make_fixtures(root)
    keep = {name: Path(paths[name]) for name in ("index", "mine", "docs", "mixed", "names")}

    def snapshot():
        return {name: tree_digest(p) for name, p in keep.items()}

    yield paths, snapshot
    os.chmod(Path(paths["locked"]) / "secret.txt", 0o600)


def test_cases_have_unique_names_and_expectations():
    names = [c.name for c in matrix.CASES]
    assert len(names) == len(set(names))
    for c in matrix.CASES:
        assert c.exit == 0 or (c.stderr_lines == 1 and c.needles), c.name


@pytest.mark.parametrize("case", matrix.CASES, ids=[c.name for c in matrix.CASES])
def test_bad_input_case(case, fixtures, capsys, monkeypatch):
    paths, snapshot = fixtures
    if case.root_differs and matrix.running_as_root():
        pytest.skip(ROOT_REASON)
    before = snapshot()
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    if case.fsize_limit is not None:  # a file-size limit only in a child process
        code, out, err = matrix.run_subprocess(case, paths)
    else:
        code = main(case.command(paths))
        out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert code == case.exit, f"exit {code}, expected {case.exit}\n{err}"
    err_lines = [line for line in err.splitlines() if line.strip()]
    if case.stderr_lines is not None:
        assert len(err_lines) == case.stderr_lines, err
    if code != 0:
        command = case.argv[0]
        assert err_lines[0].startswith(f"retrieval {command}: error: "), err
        text = err_lines[0]
    else:
        text = out + err
    for needle in case.needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    if case.json_checks:
        summary = json.loads(out)
        for key, want in case.json_checks.items():
            if isinstance(want, dict):
                assert summary[key] == want, (key, summary[key])
            else:
                assert summary[key] == want, (key, summary[key])
    # nothing lost: the existing index, the user's folder and the inputs are unchanged
    assert snapshot() == before


def test_failed_force_rebuild_keeps_the_index_searchable(fixtures, capsys):
    paths, _ = fixtures
    code = main(["index", paths["root"] + "/bad.jsonl", "-o", paths["index"], "--force"])
    assert code == 2
    capsys.readouterr()
    assert main(["search", paths["index"], "glacier", "--format", "trec"]) == 0
    assert "geo/glacier.txt" in capsys.readouterr().out


def test_encodings_are_searchable_and_binary_files_absent(fixtures, tmp_path, capsys):
    paths, _ = fixtures
    out = tmp_path / "mixed.idx"
    assert main(["index", paths["mixed"], "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "glacier", "-k", "100", "--format", "json",
                 "--feedback", "none"]) == 0
    found = {r["docid"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert found == {"latin1.txt", "utf16-bom.txt", "utf16-le.txt", "utf16-be.txt", "ok.txt"}
    # the Latin-1 bytes were decoded (Windows-1252 fallback), not replaced
    assert main(["search", str(out), "crème", "brûlée", "--format", "json",
                 "--feedback", "none"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["docid"] for r in payload["results"]] == ["latin1.txt"]
    assert set(payload["query_model"]) == {"crème", "brûlée"}
    assert main(["info", str(out), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["statistics"]["documents"] == 7 and info["statistics"]["empty_documents"] == 2


def test_odd_file_names_become_escaped_docids(fixtures, capsys):
    paths, _ = fixtures
    assert main(["search", paths["names_index"], "glacier", "--format", "json"]) == 0
    docids = {r["docid"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert docids == {"with space.txt", "new\nline.txt", "caf\\xe9.txt"}


def test_unreadable_file_is_skipped_and_named_in_the_summary(tmp_path, capsys):
    if matrix.running_as_root():
        pytest.skip(ROOT_REASON)
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("readable glacier")
    secret = folder / "b.txt"
    secret.write_text("secret glacier")
    secret.chmod(0)
    try:
        assert main(["index", str(folder), "-o", str(tmp_path / "i"), "--format", "json"]) == 0
    finally:
        secret.chmod(0o600)
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 1 and summary["skipped"] == {"unreadable": 1}


def test_long_query_is_fast(tmp_path, capsys):
    """10,000 query terms (3,000 distinct, most of them in the index) over 3,000 documents."""
    import random
    rng = random.Random(1)
    vocab = [f"t{i}" for i in range(4000)]
    docs = tmp_path / "docs.jsonl"
    with open(docs, "w") as fh:
        for i in range(3000):
            fh.write(json.dumps({"id": f"d{i}", "text": " ".join(rng.choices(vocab, k=60))})
                     + "\n")
    index = tmp_path / "i"
    assert main(["index", str(docs), "-o", str(index), "-q"]) == 0
    query = " ".join(rng.choice(vocab[:3000] + ["unknownword"]) for _ in range(10_000))
    capsys.readouterr()
    start = time.perf_counter()
    assert main(["search", str(index), query, "-k", "20", "--format", "json"]) == 0
    elapsed = time.perf_counter() - start
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["results"]) == 20
    scores = [r["score"] for r in payload["results"]]
    assert scores == sorted(scores, reverse=True)
    assert elapsed < 10, f"a 10,000-term query took {elapsed:.1f} s"


def _rss_of_index_run(path: Path, out: Path) -> tuple[int, float, subprocess.CompletedProcess]:
    """Peak RSS (bytes) and wall time of ``python -m retrieval index path`` in a child.

    The child is measured from a fresh intermediate process, so RUSAGE_CHILDREN sees
    only it (not every subprocess this test session has run).
    """
    code = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run([sys.executable, '-m', 'retrieval', 'index', sys.argv[1], '-o',"
        " sys.argv[2], '-q', '--format', 'json'], capture_output=True, text=True)\n"
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr,"
        " 'seconds': time.perf_counter() - t,"
        " 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code, str(path), str(out)],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["rc"] == 0, result["err"]
    return result["maxrss_kb"] * 1024, result["seconds"], result


def _write_big_file(path: Path, megabytes: int) -> int:
    import random
    rng = random.Random(0)
    words = [f"w{i}" for i in range(20_000)] + ["glacier", "moraine"]
    block = (" ".join(rng.choices(words, k=100_000)) + "\n").encode()
    target = megabytes * 2**20
    written = 0
    with open(path, "wb") as fh:
        while written < target:
            fh.write(block)
            written += len(block)
    return written


@pytest.mark.slow
def test_large_single_file_is_streamed_with_bounded_memory(tmp_path):
    """A single large text file is indexed with memory independent of its size.

    Default: 40 MB. ``RETRIEVAL_BIG_FILE_MB=500`` runs the full 500 MB case. The bound
    on the extra peak RSS over indexing a tiny file (64 MiB) is below the file size and
    far below what reading it whole would cost (bytes + decoded text + tokens).
    """
    megabytes = int(os.environ.get("RETRIEVAL_BIG_FILE_MB", "40"))
    small = tmp_path / "small.txt"
    small.write_text("a glacier")
    baseline, _, _ = _rss_of_index_run(small, tmp_path / "small.idx")
    big = tmp_path / "big.txt"
    size = _write_big_file(big, megabytes)
    peak, seconds, result = _rss_of_index_run(big, tmp_path / "big.idx")
    summary = json.loads(result["out"])
    big.unlink()
    assert summary["documents"] == 1 and summary["tokens"] > size // 8
    extra = peak - baseline
    print(f"\n{size / 2**20:.0f} MB file: peak RSS {peak / 2**20:.0f} MiB "
          f"(tiny-file baseline {baseline / 2**20:.0f} MiB, extra {extra / 2**20:.0f} MiB), "
          f"{seconds:.1f} s")
    assert extra < 64 * 2**20, f"extra peak RSS {extra / 2**20:.0f} MiB for a " \
                               f"{size / 2**20:.0f} MB file"


def test_matrix_script_prints_a_markdown_table(tmp_path):
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "missing path", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[2] == "| case | command | exit | outcome (first line of stderr or summary) |"
    assert lines[4].startswith("| missing path | `retrieval index nope -o out-missing.idx` | 2 |")
    assert "no such file or folder; check the path" in lines[4]
