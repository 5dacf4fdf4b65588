"""Reading and writing generations: the cheap checks on opening, the write lock, the
crash-safe publication of a new generation, and cached estimates in the manifest.

Reading
-------
:meth:`Index.open` reads ``manifest.json`` once and memory-maps that generation's arrays
(``numpy.load(mmap_mode="r")``). Files of a generation are never modified in place, so a
reader keeps a consistent view for as long as it lives, even after writers have moved
on. If the generation folder vanished between reading the manifest and opening the
arrays (two writers finished in between and the older one was removed), the open starts
again once from the new manifest. Opening does the cheap checks: format and version,
existence, size, dtype and shape of every file, the generation's identity and each
file's sample checksum — so truncated, swapped or foreign files (from another index or
another generation) are reported in one line that ends with what to do: rebuild.
The full checksums and the internal consistency are verified by
:func:`retrieval.index.check.check` (``retrieval check``).

Writing
-------
One writer at a time holds :class:`WriteLock` (``fcntl.flock`` on ``INDEX/lock``, its pid
written inside); a second writer gets :class:`IndexBusyError` naming that pid. A writer
writes a complete new generation into ``INDEX/.tmp-<name>``, fsyncs every file, renames the
folder to its final name, fsyncs ``INDEX``, then writes the new manifest to a temporary
file, fsyncs it and ``os.replace``-s it onto ``manifest.json`` — the single atomic step that
publishes the new generation. Only then are generations other than the new one and its
predecessor, and the leftovers of killed writers, removed. A process killed at any moment
therefore leaves either the previous index or the new one, both complete.

A brand-new index is written into a temporary sibling folder (``.INDEX.tmp-<pid>-…``) and
renamed onto the target path, so an interrupted build leaves no partial index; the next
writer of that path removes the temporary folders of writers that are no longer alive.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, InputError, RetrievalError
from .arrays import Pieces, complete_arrays
from .layout import (ARRAY_SPECS, CORE_ARRAYS, FORMAT, FORMAT_VERSION, GENERATION_INFO,
                     LIFECYCLE_ARRAYS, LOCK, MANIFEST, REBUILD, TEXT_ARRAYS)
from .fields import FIELD_ARRAYS, field_key, shape_problem
from .manifest import is_generation_name, read_manifest_or_none

_SAMPLE_BYTES = 64 * 1024
_WRITE_CHUNK = 16 * 1024 * 1024


class IndexBusyError(RetrievalError):
    """Another process holds the index's write lock."""

# -- opening ------------------------------------------------------------------------------------

class GenerationVanished(Exception):
    pass


def _damaged(path: Path, what: str) -> IndexFormatError:
    return IndexFormatError(f"{path}: {what}; the index is damaged, {REBUILD}")


def open_generation(path: Path, manifest: dict) -> dict[str, np.ndarray]:
    gen_name = manifest["generation_dir"]
    gen = path / gen_name
    if not gen.is_dir():
        raise GenerationVanished
    _check_identity(path, gen, manifest)
    declared = manifest["arrays"]
    names = list(CORE_ARRAYS) + (list(TEXT_ARRAYS) if manifest.get("store_text") else [])
    names += [n for n in LIFECYCLE_ARRAYS if n in declared]
    _check_declared_shapes(path, manifest, names)
    fields = manifest.get("fields", [])
    if not isinstance(fields, list) or not set(fields) <= {"title", "name"}:
        raise _damaged(path, f"the manifest names unknown fields {fields!r}")
    for field in fields:  # retrieval.index.fields
        problem = shape_problem(manifest, field)
        if problem:
            raise _damaged(path, problem)
        names += [field_key(field, name) for name in FIELD_ARRAYS]
    arrays = {}
    for name in names:
        file = gen / f"{name}.npy"
        want = declared[name]
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            if not gen.is_dir():
                raise GenerationVanished from None
            raise _damaged(path, f"array file {file.name} is missing") from None
        except OSError as exc:
            raise _damaged(path, f"cannot read {file.name} ({exc.strerror})") from None
        if size != want.get("bytes"):
            raise _damaged(path, f"{file.name} has {size} bytes, the manifest says "
                                 f"{want.get('bytes')} (truncated or replaced)")
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
            sample = sample_checksum(file)
        except FileNotFoundError:
            raise GenerationVanished from None
        except (ValueError, OSError) as exc:
            raise _damaged(path, f"cannot read {file.name} ({exc})") from None
        if list(arr.shape) != want["shape"] or str(arr.dtype) != want["dtype"]:
            raise _damaged(path, f"{file.name} has shape {list(arr.shape)} {arr.dtype}, the "
                                 f"manifest says {want['shape']} {want['dtype']}")
        if sample != want.get("sample"):
            raise _damaged(path, f"{file.name} does not match its checksum (a file from "
                                 f"another index or generation, or changed on disk)")
        arrays[name] = arr
    return arrays


def _check_identity(path: Path, gen: Path, manifest: dict) -> None:
    try:
        info = json.loads((gen / GENERATION_INFO).read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not gen.is_dir():
            raise GenerationVanished from None
        raise _damaged(path, f"{gen.name}/{GENERATION_INFO} is missing") from None
    except (OSError, ValueError) as exc:
        raise _damaged(path, f"{gen.name}/{GENERATION_INFO} is unreadable ({exc})") from None
    if not isinstance(info, dict) or info.get("index_id") != manifest["index_id"]:
        raise _damaged(path, f"the generation folder {gen.name} belongs to another index")
    if info.get("generation") != manifest["generation"]:
        raise _damaged(path, f"the generation folder {gen.name} holds generation "
                             f"{info.get('generation')}, the manifest says "
                             f"{manifest['generation']}")


def _check_declared_shapes(path: Path, manifest: dict, names: list[str]) -> None:
    """The shapes the manifest declares agree with its counts (no file is read)."""
    counts = manifest["counts"]
    n, v = counts["documents"], counts["terms"]
    declared = manifest["arrays"]
    p = None
    for name in names:
        want = declared.get(name)
        if not isinstance(want, dict) or not isinstance(want.get("shape"), list):
            raise _damaged(path, f"the manifest does not describe array {name}")
        dtype, spec = ARRAY_SPECS[name]
        if want.get("dtype") != dtype:
            raise _damaged(path, f"the manifest gives {name} dtype {want.get('dtype')}, "
                                 f"expected {dtype}")
        shape = want["shape"]
        if len(shape) != len(spec):
            raise _damaged(path, f"the manifest gives {name} shape {shape}")
        for got, dim in zip(shape, spec):
            expect = {"N": n, "N+1": n + 1, "V": v, "V+1": v + 1, 16: 16}.get(dim)
            if dim == "P":
                p = got if p is None else p
                expect = p
            if expect is not None and got != expect:
                raise _damaged(path, f"the manifest gives {name} shape {shape}, which does "
                                     f"not fit {n} documents and {v} terms")


def sample_checksum(file: Path) -> str:
    """BLAKE2b-128 of a file's size, first and last 64 KiB (cheap; checked on open)."""
    h = hashlib.blake2b(digest_size=16)
    with open(file, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        h.update(fh.read(_SAMPLE_BYTES))
        if size > _SAMPLE_BYTES:
            fh.seek(max(_SAMPLE_BYTES, size - _SAMPLE_BYTES))
            h.update(fh.read(_SAMPLE_BYTES))
    return h.hexdigest()


def file_checksum(file: Path) -> str:
    """BLAKE2b-256 of a whole file (recorded per array; verified by ``check``)."""
    h = hashlib.blake2b()
    with open(file, "rb") as fh:
        while chunk := fh.read(_WRITE_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# -- writing ---------------------------------------------------------------------------------

class WriteLock:
    """The exclusive write lock of an index folder (``flock`` on ``INDEX/lock``).

    Non-blocking: when another process holds it, :class:`IndexBusyError` names that
    process's pid. The kernel releases the lock when its holder dies, even by SIGKILL.
    Readers never take it. Use as a context manager.
    """

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path)
        self._fd: int | None = None

    def __enter__(self) -> "WriteLock":
        file = self.path / LOCK
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise IndexFormatError(f"{self.path}: no such index; build one with "
                                   f"'retrieval index'") from None
        except OSError as exc:
            raise InputError(f"cannot lock the index for writing ({exc.strerror}); check "
                             f"its permissions", path=self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            except OSError:
                pass
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"cannot lock the index for writing ({exc.strerror})",
                                 path=self.path) from None
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise IndexBusyError(f"{self.path}: the index is being written by {who}; "
                                 f"wait for it to finish and try again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # releases the flock
            self._fd = None


class _HashingWriter:
    """A write-only file object that checksums what it writes."""

    def __init__(self, fh):
        self._fh = fh
        self.hash = hashlib.blake2b()

    def write(self, data) -> int:
        self.hash.update(data)
        return self._fh.write(data)



def write_array(file: Path, arr: np.ndarray | Pieces) -> dict:
    if isinstance(arr, Pieces):
        chunks, dtype, shape = arr.chunks(), arr.dtype, arr.shape
    else:
        arr = np.ascontiguousarray(arr)
        chunks, dtype, shape = [arr.reshape(-1)], arr.dtype, arr.shape
    with open(file, "wb") as raw:
        fh = _HashingWriter(raw)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
            "shape": tuple(shape)})
        fh.write(header.getvalue())
        items = 0
        for chunk in chunks:
            items += len(chunk)
            data = memoryview(chunk.view(np.uint8)) if chunk.size else memoryview(b"")
            for start in range(0, len(data), _WRITE_CHUNK):
                fh.write(data[start:start + _WRITE_CHUNK])
        if items != int(np.prod(shape)):
            raise RuntimeError(f"{file.name}: wrote {items} items, not {shape}")
        raw.flush()
        os.fsync(raw.fileno())
        size = raw.tell()
    return {"dtype": str(dtype), "shape": list(shape), "bytes": size,
            "blake2b": fh.hash.hexdigest(), "sample": sample_checksum(file)}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(file: Path, obj: dict) -> None:
    with open(file, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_generation(index_dir: Path, arrays: dict[str, np.ndarray], manifest: dict, *,
                     previous: dict | None, new_identity: bool = False) -> dict:
    """Publish ``arrays`` as the next generation of ``index_dir``; return its manifest.

    The caller holds the :class:`WriteLock` (or owns ``index_dir`` exclusively, as a
    fresh temporary folder). ``previous`` is the current manifest (None: none readable).
    ``new_identity`` gives the index a new ``index_id`` (a full rebuild). See the module
    docstring for the order of the steps that makes this crash-safe.
    """
    index_dir = Path(index_dir)
    arrays, manifest = complete_arrays(arrays, manifest)
    number = int(previous["generation"]) + 1 if previous else 1
    index_id = (previous["index_id"] if previous and not new_identity
                else secrets.token_hex(16))
    name = f"g{number:06d}-{secrets.token_hex(4)}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        described = {}
        for key in sorted(arrays):
            described[key] = write_array(tmp / f"{key}.npy", arrays[key])
        _write_json(tmp / GENERATION_INFO, {"index_id": index_id, "generation": number})
        _fsync_dir(tmp)
        os.rename(tmp, index_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(index_dir)
    out = {k: v for k, v in manifest.items() if k not in ("arrays",)}
    out.update({"format": FORMAT, "format_version": FORMAT_VERSION, "index_id": index_id,
                "generation": number, "generation_dir": name,
                "previous_generation_dir": previous["generation_dir"] if previous else None,
                "arrays": described})
    pointer_tmp = index_dir / f".{MANIFEST}.tmp-{os.getpid()}"
    _write_json(pointer_tmp, out)
    os.replace(pointer_tmp, index_dir / MANIFEST)  # the commit point
    _fsync_dir(index_dir)
    remove_stale_generations(index_dir, keep={name, out["previous_generation_dir"]})
    return out


def remove_stale_generations(index_dir: Path, keep: set) -> None:
    """Remove generations not in ``keep`` and the leftovers of killed writers.

    Called by the lock holder only, so every temporary file found is a dead writer's.
    """
    for entry in index_dir.iterdir():
        name = entry.name
        if name in keep:
            continue
        if is_generation_name(name) or name.startswith(".tmp-"):
            shutil.rmtree(entry, ignore_errors=True)
        elif name.startswith(f".{MANIFEST}.tmp-"):
            try:
                entry.unlink()
            except OSError:
                pass


def write_fresh(target: Path, arrays: dict, manifest: dict, *, replace: bool) -> dict:
    """Write a new index into a temporary sibling folder, then rename it onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-",
                                dir=target.parent))
    try:
        os.chmod(tmp, 0o755 & ~_umask())
        (tmp / LOCK).touch()
        written = write_generation(tmp, arrays, manifest, previous=None, new_identity=True)
        if replace:
            _replace_dir(tmp, target)
        else:
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise InputError(f"{target} was created by another process meanwhile; "
                                     f"nothing was written") from None
                raise
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary folders left by writers of ``target`` that were killed."""
    try:
        leftovers = list(target.parent.glob(f".{target.name}.tmp-*-*"))
    except OSError:
        return
    for tmp in leftovers:
        try:
            pid = int(tmp.name[len(f".{target.name}.tmp-"):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` onto ``target`` (replacing an old-format index)."""
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- cached estimates -----------------------------------------------------------------------------

def store_estimate(index, key: str, entry: dict) -> bool:
    """Record ``entry`` as ``manifest["estimates"][key]`` of the index ``index`` was opened
    from; True when it was written.

    A cache, so best effort and never an error: nothing is written (False) when ``index``
    lives in memory, when another process holds the write lock (no waiting), when the
    index is read-only or its folder unwritable, or when the index has moved on to another
    generation since ``index`` was opened (the estimate describes the old documents).
    Otherwise, under the :class:`WriteLock`, the current manifest is re-read, the entry
    added, and the result written to a temporary file, fsynced and ``os.replace``-d onto
    ``manifest.json`` — the same atomic step that publishes a generation, so a reader sees
    the old manifest or the new one. The arrays and their checksums are untouched; the
    next ``add``/``delete``/``update`` drops the estimates (the documents changed).
    ``index.manifest`` is updated in memory too.
    """
    path = index.path
    if path is None:
        return False
    try:
        with WriteLock(path):
            current = read_manifest_or_none(path)
            if current is None or any(current.get(k) != index.manifest.get(k) for k in
                                      ("index_id", "generation", "generation_dir")):
                return False
            estimates = dict(current.get("estimates") or {})
            estimates[key] = entry
            current["estimates"] = estimates
            tmp = path / f".{MANIFEST}.tmp-{os.getpid()}"
            try:
                _write_json(tmp, current)
                os.replace(tmp, path / MANIFEST)
            except BaseException:
                try:
                    tmp.unlink()
                except OSError:
                    pass
                raise
            try:
                _fsync_dir(path)
            except OSError:
                pass
    except (RetrievalError, OSError):
        return False
    index.manifest = dict(index.manifest)
    index.manifest["estimates"] = estimates
    return True
