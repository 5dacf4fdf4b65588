"""retrieval.safeio: regular files only, capped reads, depth-limited JSON, clamp_jobs."""

from __future__ import annotations

import json
import os
import threading

import pytest

from retrieval.errors import InputError, ParameterError
from retrieval.safeio import (DEFAULT_MAX_INPUT_BYTES, ENV_MAX_INPUT, MAX_JSON_DEPTH,
                              clamp_jobs, clip, json_depth, load_json, loads_json,
                              max_input_bytes, open_input, read_input, read_stream)


def test_reads_a_regular_file(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"one\ntwo\n")
    assert read_input(f) == b"one\ntwo\n"
    with open_input(f) as fh:
        assert list(fh) == [b"one\n", b"two\n"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_at_once(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with pytest.raises(InputError, match="not a regular file") as info:
        read_input(device)
    assert device in str(info.value)


def test_a_fifo_without_writer_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_error_of(read_input, fifo)),
                              daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "opening a named pipe blocked"
    assert "not a regular file" in outcome[0]


def _error_of(fn, *args, **kw) -> str:
    try:
        fn(*args, **kw)
    except InputError as exc:
        return str(exc)
    return ""


def test_folder_and_missing_file(tmp_path):
    assert "is a directory" in _error_of(read_input, tmp_path)
    assert "no such file" in _error_of(read_input, tmp_path / "nope")


def test_nofollow_refuses_a_symlink_but_default_follows(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert read_input(link) == b"{}"
    assert "symbolic link" in _error_of(read_input, link, nofollow=True)
    assert "symbolic link" in _error_of(load_json, link)   # load_json: nofollow by default


def test_size_cap_refuses_before_reading_and_names_the_env(tmp_path, monkeypatch):
    f = tmp_path / "big.txt"
    f.write_bytes(b"x" * 1000)
    assert read_input(f, max_bytes=1000) == b"x" * 1000
    message = _error_of(read_input, f, max_bytes=999)
    assert "larger than the 999 bytes" in message and ENV_MAX_INPUT not in message
    monkeypatch.setenv(ENV_MAX_INPUT, "100")
    message = _error_of(read_input, f)
    assert "big.txt" in message and f"{ENV_MAX_INPUT}=16G" in message
    monkeypatch.setenv(ENV_MAX_INPUT, "2K")
    assert read_input(f) == b"x" * 1000


def test_a_file_growing_past_the_cap_while_read_is_stopped(tmp_path):
    f = tmp_path / "grow.txt"
    f.write_bytes(b"a\n" * 10)
    with open_input(f, max_bytes=100) as fh:
        with open(f, "ab") as w:
            w.write(b"b\n" * 1000)
        with pytest.raises(InputError, match="larger than the 100 bytes"):
            fh.read()


def test_env_value_is_validated(monkeypatch):
    monkeypatch.delenv(ENV_MAX_INPUT, raising=False)
    assert max_input_bytes() == DEFAULT_MAX_INPUT_BYTES
    monkeypatch.setenv(ENV_MAX_INPUT, "16G")
    assert max_input_bytes() == 16 * 2**30
    monkeypatch.setenv(ENV_MAX_INPUT, "lots")
    with pytest.raises(ParameterError, match="not a byte count"):
        max_input_bytes()


def test_read_stream_is_capped():
    import io
    assert read_stream(io.BytesIO(b"abc"), max_bytes=3) == b"abc"
    with pytest.raises(InputError, match="<stdin>: larger than the 2 bytes"):
        read_stream(io.BytesIO(b"abc"), max_bytes=2)


def test_json_depth_limit():
    assert json_depth('{"a": [1, {"b": "[[[["}]}') == 3
    assert loads_json('{"a": [1, 2]}') == {"a": [1, 2]}
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(InputError, match=f"nested {MAX_JSON_DEPTH + 1} levels deep"):
        loads_json(deep)
    with pytest.raises(InputError, match="nested 100000 levels deep"):
        loads_json("[" * 100_000)        # json.loads would raise RecursionError
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json.dumps(loads_json(ok)).count("[") == MAX_JSON_DEPTH


def test_load_json_errors_name_the_file(tmp_path):
    f = tmp_path / "m.json"
    f.write_text('{"a": ')
    assert _error_of(load_json, f).startswith(f"{f}:1: not valid JSON")
    f.write_bytes(b'{"a": "\xff"}')
    assert "not valid UTF-8" in _error_of(load_json, f)
    f.write_text("[" * 1000)
    assert "levels deep" in _error_of(load_json, f)
    assert "larger than" in _error_of(load_json, f, max_bytes=10)


def test_clamp_jobs():
    c = clamp_jobs(32, work=1, cpus=2)
    assert (c.jobs, c.clamped) == (1, True)
    assert c.note() == "note: --jobs 32 lowered to 1 (2 CPUs available; only 1 unit of work)"
    assert clamp_jobs(100_000, cpus=4).jobs == 4
    assert clamp_jobs(2, work=10, cpus=4) == (2, 2, 4, 10, "")
    assert not clamp_jobs(1, work=0, cpus=1).clamped
    assert clamp_jobs(3, work=0, cpus=8).jobs == 1
    assert 1 <= clamp_jobs(10_000).jobs <= len(os.sched_getaffinity(0))
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ParameterError, match="jobs must be a whole number"):
            clamp_jobs(bad)


def test_clip():
    assert clip("short") == "short"
    long = "x" * 1_000_000
    assert clip(long) == "x" * 60 + "… (1,000,000 characters)"
