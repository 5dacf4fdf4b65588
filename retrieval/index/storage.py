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
existence, regular-file type, size, dtype and shape of every file, the generation's
identity, that each offset array runs from 0 to the length of what it indexes, and the
manifest's counts against the arrays (Σ ``doc_lengths`` = ``counts.tokens``). Then
:mod:`retrieval.index.integrity` verifies the **full checksum** of every array file and
the bounds and consistency of every array a kernel indexes with (vectorised) — once per
file state: a verified stamp keyed by (device, inode, size, mtime_ns, ctime_ns) lets later
opens skip the hashing while no file changed. Writers verify in full every time. So a
damaged array gives one line ending in "rebuild the index", never a segfault, traceback
or wrong answer. ``retrieval check`` adds the slower string-order checks. The manifest,
``generation.json`` and ``lock`` are opened without following symbolic links, must be
regular files (a named pipe never blocks), and the JSON files are size- and depth-capped
(:mod:`retrieval.safeio`); the manifest carries its own checksum (``manifest_blake2b``)
and one schema check validates every field (:func:`retrieval.index.manifest.
schema_problem`).

Writing
-------
One writer at a time holds :class:`WriteLock` (``fcntl.flock`` on ``INDEX/lock``, its pid
written inside); a second writer gets :class:`IndexBusyError` naming that pid. A writer
writes a complete new generation into ``INDEX/.tmp-<name>``, fsyncs every file, renames the
folder to its final name, fsyncs ``INDEX``, then writes the new manifest to a temporary
file, fsyncs it and ``os.replace``-s it onto ``manifest.json`` — the single atomic step that
publishes the new generation. Only then are generations other than the new one and its
predecessor, and the leftovers of killed writers, removed. A process killed at any moment
therefore leaves either the previous index or the new one, both complete. A writer that
fails (disk full, ``ulimit -f``, read-only file system) removes what it wrote — the
``.tmp-`` or renamed generation folder and the manifest's temporary file — and raises
:class:`WriteFailedError`, one line saying the index is unchanged and what to do; the next
writer, under the lock, also removes the leftovers of writers that died, so it succeeds
once there is space.

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
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, InputError, RetrievalError
from . import integrity
from .arrays import Pieces, complete_arrays
from .layout import (ARRAY_SPECS, CORE_ARRAYS, FORMAT, FORMAT_VERSION, GENERATION_INFO,
                     LIFECYCLE_ARRAYS, LOCK, MANIFEST, REBUILD, TEXT_ARRAYS)
from ..safeio import MAX_METADATA_BYTES, load_json
from .fields import FIELD_ARRAYS, field_key, shape_problem
from .manifest import is_generation_name, read_manifest_or_none, sealed

_SAMPLE_BYTES = 64 * 1024
_WRITE_CHUNK = 16 * 1024 * 1024


class IndexBusyError(RetrievalError):
    """Another process holds the index's write lock."""


class WriteFailedError(RetrievalError):
    """A writer could not write a new generation (disk full, file-size limit, read-only
    file system...); what it wrote was removed and the index is unchanged."""

# -- opening ------------------------------------------------------------------------------------

class GenerationVanished(Exception):
    pass


def _damaged(path: Path, what: str) -> IndexFormatError:
    return IndexFormatError(f"{path}: {what}; the index is damaged, {REBUILD}")


def open_generation(path: Path, manifest: dict, *, full: bool = False) -> dict[str, np.ndarray]:
    """Memory-map a generation's arrays after the checks of the module docstring.

    ``full``: verify every checksum and the consistency even when a verified stamp
    says the files are unchanged (writers: they must not copy damaged input).
    """
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
    arrays, states = {}, {}
    for name in names:
        arrays[name], states[name] = _open_array(path, gen, name, declared[name])
    problems = integrity.cheap_problems(arrays, manifest["counts"])
    if problems:
        raise _damaged(path, problems[0])
    _verify(path, gen, manifest, arrays, states, full)
    return arrays


def _open_array(path: Path, gen: Path, name: str, want: dict):
    file = gen / f"{name}.npy"
    try:
        st = os.stat(file, follow_symlinks=False)
    except FileNotFoundError:
        if not gen.is_dir():
            raise GenerationVanished from None
        raise _damaged(path, f"array file {file.name} is missing") from None
    except OSError as exc:
        raise _damaged(path, f"cannot read {file.name} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise _damaged(path, f"{file.name} is not a regular file")
    if st.st_size != want.get("bytes"):
        raise _damaged(path, f"{file.name} has {st.st_size} bytes, the manifest says "
                             f"{want.get('bytes')} (truncated or replaced)")
    try:
        arr = np.load(file, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise GenerationVanished from None
    except (ValueError, OSError) as exc:
        raise _damaged(path, f"cannot read {file.name} ({exc})") from None
    if list(arr.shape) != want["shape"] or str(arr.dtype) != want["dtype"]:
        raise _damaged(path, f"{file.name} has shape {list(arr.shape)} {arr.dtype}, the "
                             f"manifest says {want['shape']} {want['dtype']}")
    return arr, integrity.file_state(st)


def _verify(path: Path, gen: Path, manifest: dict, arrays: dict, states: dict,
            full: bool) -> None:
    """Full checksums and consistency, unless every file matches its verified stamp."""
    key = integrity.stamp_key(gen, manifest)
    stamps = {} if full else integrity.load_stamps(key)
    declared = manifest["arrays"]
    todo = [name for name in arrays
            if stamps.get(name) != states[name] + [declared[name].get("blake2b")]]
    if not todo:
        return
    for name in todo:
        file = gen / f"{name}.npy"
        try:
            digest = integrity.file_checksum(file)
        except FileNotFoundError:
            raise GenerationVanished from None
        except OSError as exc:
            raise _damaged(path, f"cannot read {file.name} ({exc.strerror})") from None
        if digest != declared[name].get("blake2b"):
            raise _damaged(path, f"{file.name} does not match its checksum (changed on "
                                 f"disk, or a file from another index or generation)")
    groups = manifest.get("source_groups") or []
    problems = integrity.consistency_problems(arrays, manifest["counts"], len(groups))
    if problems:
        raise _damaged(path, problems[0])
    verified = {}
    for name in arrays:
        try:
            now = integrity.file_state(os.stat(gen / f"{name}.npy", follow_symlinks=False))
        except OSError:
            return
        if now != states[name]:
            return  # changed while verified: do not vouch for it
        if integrity.settled_at(now) > time.time_ns():
            continue  # a change within the timestamp granularity could go unseen
        verified[name] = now + [declared[name].get("blake2b")]
    integrity.save_stamps(key, verified)


def _check_identity(path: Path, gen: Path, manifest: dict) -> None:
    file = gen / GENERATION_INFO
    if not file.exists() and not file.is_symlink():
        if not gen.is_dir():
            raise GenerationVanished
        raise _damaged(path, f"{gen.name}/{GENERATION_INFO} is missing")
    try:
        info = load_json(file, max_bytes=MAX_METADATA_BYTES, nofollow=True)
    except InputError as exc:
        if not gen.is_dir():
            raise GenerationVanished from None
        why = exc.message.split(";")[0]  # safeio's advice is for files a user names
        raise _damaged(path, f"{gen.name}/{GENERATION_INFO} is unreadable ({why})") from None
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
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(file, flags, 0o644)
        except FileNotFoundError:
            raise IndexFormatError(f"{self.path}: no such index; build one with "
                                   f"'retrieval index'") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InputError(f"{LOCK} is a symbolic link, not the index's lock file; "
                                 f"nothing was written (remove the link: the next writer "
                                 f"creates the lock)", path=self.path) from None
            raise InputError(f"cannot lock the index for writing ({exc.strerror}); check "
                             f"its permissions", path=self.path) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError(f"{LOCK} is not a regular file; nothing was written (remove "
                             f"it: the next writer creates the lock)", path=self.path)
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


def fsync_dir(path: Path) -> None:
    """fsync a folder, so a rename or a new file in it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(file: Path, obj: dict) -> None:
    """Write a new file (never through a symbolic link or onto an existing file)."""
    try:
        os.unlink(file)
    except FileNotFoundError:
        pass
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    with open(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_generation(index_dir: Path, arrays: dict[str, np.ndarray], manifest: dict, *,
                     previous: dict | None, new_identity: bool = False,
                     stamp: bool = True) -> dict:
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
    if previous:  # the leftovers of writers that failed or were killed free their space
        remove_stale_generations(index_dir, keep={previous["generation_dir"],
                                                  previous.get("previous_generation_dir")})
    try:
        out = _publish(index_dir, name, arrays, manifest, previous, index_id, number)
    except OSError as exc:
        if previous is None:
            raise
        raise WriteFailedError(write_failed_message(index_dir, exc)) from None
    remove_stale_generations(index_dir, keep={name, out["previous_generation_dir"]})
    if stamp:  # verified: its checksums were computed from the bytes written
        integrity.stamp_written(index_dir / name, out)
    return out


def _publish(index_dir: Path, name: str, arrays: dict, manifest: dict, previous: dict | None,
             index_id: str, number: int) -> dict:
    """Write the generation folder, then the manifest; on any failure before the commit
    point, remove what was written (the old generation stays the current one)."""
    tmp = index_dir / f".tmp-{name}"
    pointer_tmp = index_dir / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.mkdir()
    committed = False
    try:
        described = {}
        for key in sorted(arrays):
            described[key] = write_array(tmp / f"{key}.npy", arrays[key])
        _write_json(tmp / GENERATION_INFO, {"index_id": index_id, "generation": number})
        fsync_dir(tmp)
        os.rename(tmp, index_dir / name)
        fsync_dir(index_dir)
        out = {k: v for k, v in manifest.items() if k not in ("arrays",)}
        out.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                    "index_id": index_id, "generation": number, "generation_dir": name,
                    "previous_generation_dir": previous["generation_dir"] if previous else None,
                    "arrays": described})
        out = sealed(out)
        _write_json(pointer_tmp, out)
        os.replace(pointer_tmp, index_dir / MANIFEST)  # the commit point
        committed = True
        fsync_dir(index_dir)
    except BaseException:
        if not committed:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(index_dir / name, ignore_errors=True)
            try:
                os.unlink(pointer_tmp)
            except OSError:
                pass
        raise
    return out


_WHAT_TO_DO = {
    errno.ENOSPC: "free some space and run the command again",
    errno.EDQUOT: "free some space (disk quota) and run the command again",
    errno.EFBIG: "the file-size limit was reached (see 'ulimit -f'); raise it and run the "
                 "command again",
    errno.EROFS: "the file system is read-only; remount it writable or copy the index "
                 "elsewhere",
}


def write_failed_message(index_dir: Path, exc: OSError) -> str:
    """One line: what failed, that nothing changed, and what to do."""
    code = errno.errorcode.get(exc.errno or 0, "")
    cause = (exc.strerror or str(exc)).rstrip(".").lower() + (f" [{code}]" if code else "")
    todo = _WHAT_TO_DO.get(exc.errno, "fix the cause and run the command again")
    return (f"{index_dir}: writing the new generation failed ({cause}); what was written "
            f"is removed and the index is unchanged; {todo}")


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
        written = write_generation(tmp, arrays, manifest, previous=None, new_identity=True,
                                   stamp=False)
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
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    integrity.stamp_written(target / written["generation_dir"], written)
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
                current = sealed(current)
                _write_json(tmp, current)
                os.replace(tmp, path / MANIFEST)
            except BaseException:
                try:
                    tmp.unlink()
                except OSError:
                    pass
                raise
            try:
                fsync_dir(path)
            except OSError:
                pass
    except (RetrievalError, OSError):
        return False
    index.manifest = dict(index.manifest)
    index.manifest["estimates"] = estimates
    return True
