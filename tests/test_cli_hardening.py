"""Issue 14 at the CLI boundary: OSError in one line (EFBIG, EROFS, a file in the way,
/proc), a closed pipe, extreme smoothing parameters, --jobs clamped with a note, the loser
of two fresh ``index`` runs, an empty --queries file and a huge unknown query term."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval import AbsoluteDiscount, Dirichlet, JelinekMercer, TwoStage
from retrieval.cli import main
from retrieval.cli._common import os_error_message
from retrieval.errors import ParameterError
from retrieval.smoothing import SMALLEST_PARAMETER

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "corpora" / "sample"


def env():
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("h") / "sample.idx"
    assert main(["index", str(SAMPLE), "-o", str(path), "-q", "--format", "json"]) == 0
    return str(path)


def one_line_error(capsys, command: str) -> str:
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"retrieval {command}: error: "), err
    return lines[0]


# -- OSError at the boundary -----------------------------------------------------------------

def test_efbig_under_a_file_size_limit_is_one_line(tmp_path):
    """``ulimit -f`` (RLIMIT_FSIZE) in the child: the write fails with EFBIG."""
    out = tmp_path / "u.idx"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run([sys.executable, "-m", "retrieval", "index", str(SAMPLE), "-o",
                           str(out), "-q"], capture_output=True, text=True, env=env(),
                          preexec_fn=limit, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "file too large [EFBIG]" in lines[0], proc.stderr
    assert str(out) in lines[0] and "ulimit -f" in lines[0]


def test_erofs_from_the_writer_is_one_line(tmp_path, monkeypatch, capsys):
    """A read-only file system, simulated: every mkdir beside the output fails with EROFS
    (cannot mount one here)."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kw):
        if str(tmp_path) in os.fsdecode(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_mkdir(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    assert main(["index", str(SAMPLE), "-o", str(tmp_path / "ro.idx"), "-q"]) == 2
    line = one_line_error(capsys, "index")
    assert "read-only file system [EROFS]" in line and "write to another place" in line
    assert "ro.idx" in line


def test_a_file_where_a_folder_is_needed(tmp_path, capsys):
    (tmp_path / "afile.txt").write_text("mine")
    assert main(["index", str(SAMPLE), "-o", str(tmp_path / "afile.txt" / "x.idx"),
                 "-q"]) == 2
    line = one_line_error(capsys, "index")
    assert "afile.txt" in line and "a file where a folder is needed" in line
    assert (tmp_path / "afile.txt").read_text() == "mine"


def test_output_under_proc(capsys):
    assert main(["index", str(SAMPLE), "-o", "/proc/x.idx", "-q"]) == 2
    line = one_line_error(capsys, "index")
    assert "/proc/" in line and "x.idx" in line


@pytest.mark.parametrize("code, needle", [
    (errno.ENOSPC, "free some space"), (errno.EFBIG, "ulimit -f"),
    (errno.EROFS, "write to another place"), (errno.EACCES, "permissions"),
    (errno.ENOTDIR, "not a folder"), (errno.EIO, "input/output"),
])
def test_os_error_message_names_path_cause_and_fix(code, needle):
    text = os_error_message(OSError(code, os.strerror(code), "/x/y.npy"), "/x")
    assert text.startswith("/x/y.npy: ") and f"[{errno.errorcode[code]}]" in text
    assert needle in text and "\n" not in text
    bare = os_error_message(OSError(code, os.strerror(code)), "/out.idx")
    assert "while working on /out.idx" in bare


def test_closed_pipe_is_quiet(index):
    """``retrieval search ... | head -1``: no BrokenPipeError traceback, exit 0."""
    cmd = [sys.executable, "-m", "retrieval", "search", index, "--queries",
           str(SAMPLE / "queries.tsv"), "-k", "1000", "--format", "trec"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert first.startswith(b"q01 Q0 ") and "Traceback" not in err and "Exception" not in err


# -- smoothing parameters ---------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: JelinekMercer(lam=1e-308), lambda: JelinekMercer(lam=1e-300),
    lambda: Dirichlet(mu=5e-324), lambda: Dirichlet(mu=1e-308),
    lambda: AbsoluteDiscount(delta=1e-310), lambda: TwoStage(mu=1e-300, lam=0.0),
])
def test_tiny_smoothing_parameters_are_refused_with_what_to_use(make):
    with pytest.raises(ParameterError, match=r"is below 1e-06.*use .* ≥ 1e-06"):
        make()


@pytest.mark.parametrize("model", [
    JelinekMercer(lam=SMALLEST_PARAMETER), Dirichlet(mu=SMALLEST_PARAMETER),
    AbsoluteDiscount(delta=SMALLEST_PARAMETER), TwoStage(mu=SMALLEST_PARAMETER, lam=0.0),
])
def test_smallest_accepted_parameter_gives_finite_exact_scores(model):
    """At the floor, the extreme counts/lengths/probabilities the format allows stay finite,
    and log p(w|d) matches the direct formula (computed in long double)."""
    c = np.array([1.0, 7.0, 2.0**31, 1.0])
    dl = np.array([1.0, 10.0, 2.0**32, 2.0**40])
    du = np.array([1.0, 3.0, 2.0**20, 2.0**30])
    p = np.array([2.0**-63, 1e-6, 0.5, 2.0**-40])
    with np.errstate(all="raise"):
        mw = model.matched_weight(c, dl, du, p)
        la = model.log_alpha(dl, du)
    assert np.isfinite(mw).all() and np.isfinite(la).all() and (mw >= 0).all()
    got = model.log_prob(c, dl, du, p)
    assert (got <= 0).all()
    c, dl, du, p = (x.astype(np.longdouble) for x in (c, dl, du, p))
    s = SMALLEST_PARAMETER
    direct = {
        "jm": (1 - s) * c / dl + s * p,
        "dirichlet": (c + s * p) / (dl + s),
        "ad": np.maximum(c - s, 0) / dl + s * du * p / dl,
        "two-stage": (c + s * p) / (dl + s),
    }[model.name]
    # absolute error ~1e-14 (the rounding of log α_d + log p + matched weight), far below
    # the smallest |log p(w|d)| the floor allows (~1e-6)
    np.testing.assert_allclose(got, np.log(direct).astype(np.float64), rtol=1e-9, atol=1e-13)


def test_cli_tiny_mu_is_one_line_without_runtime_warning(index, capsys):
    assert main(["search", index, "glacier", "--mu", "1e-308"]) == 2
    line = one_line_error(capsys, "search")
    assert "RuntimeWarning" not in line and "use μ ≥ 1e-06" in line


# -- --jobs ---------------------------------------------------------------------------------

def test_jobs_is_clamped_with_a_note(index, tmp_path, capsys):
    assert main(["index", str(SAMPLE / "docs" / "geology"), "-o", str(tmp_path / "g.idx"),
                 "-q", "--jobs", "100000", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert "note: --jobs 100000 lowered to" in err
    assert main(["search", index, "glacier", "--jobs", "32", "--format", "trec"]) == 0
    out, err = capsys.readouterr()
    assert "note: --jobs 32 lowered to 1" in err and "only 1 unit of work" in err
    assert out.startswith("1 Q0 ")


# -- messages -------------------------------------------------------------------------------

def test_loser_of_two_fresh_index_runs_is_told_the_cli_flag(tmp_path, monkeypatch, capsys):
    """Another process publishes an index at the output while this one builds."""
    import retrieval.cli.index as cli_index
    real = cli_index.build_index
    out = tmp_path / "race.idx"

    def racing(inputs, output, **kw):
        real(inputs, output, reader=None, overwrite=False)   # the other process wins
        return real(inputs, output, **kw)

    monkeypatch.setattr(cli_index, "build_index", racing)
    assert main(["index", str(SAMPLE / "docs" / "geology"), "-o", str(out), "-q"]) == 2
    line = one_line_error(capsys, "index")
    assert "created by another process" in line and "pass --force" in line
    assert "overwrite=True" not in line


def test_empty_queries_file_is_an_error(index, tmp_path, capsys):
    empty = tmp_path / "q.tsv"
    empty.write_text("\n  \n")
    assert main(["search", index, "--queries", str(empty), "--format", "trec"]) == 2
    assert "no queries in the file" in one_line_error(capsys, "search")


def test_huge_unknown_term_is_not_echoed_whole(index, capsys):
    assert main(["search", index, "q" * 1_000_000]) == 0
    out, err = capsys.readouterr()
    assert len(err) < 300 and "1,000,000 characters" in err
    assert main(["search", index, " ".join(f"zz{i}x" for i in range(5000))]) == 0
    err = capsys.readouterr().err
    assert len(err) < 400 and "5,000 terms" in err
