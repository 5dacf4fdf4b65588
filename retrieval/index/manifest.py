"""Reading and validating ``manifest.json``, and telling what a path holds (an index of
this format, of an older one, a damaged one, or something else)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..analysis import Analyzer
from ..errors import IndexFormatError, InputError, ParameterError
from ..safeio import MAX_METADATA_BYTES, load_json
from .layout import (ARRAY_SPECS, FORMAT, FORMAT_VERSION, LOCK, MANIFEST, REBUILD,
                     is_field_array)

#: the manifest's own checksum (see :func:`manifest_checksum`)
CHECKSUM = "manifest_blake2b"


def read_manifest(path: Path) -> dict:
    """Read and validate ``manifest.json``; IndexFormatError with a fix otherwise."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise IndexFormatError(f"{path}: a symbolic link that leads nowhere (broken or "
                                   f"a loop); build an index with 'retrieval index'")
        raise IndexFormatError(f"{path}: no such index; build one with 'retrieval index'")
    if not path.is_dir():
        raise IndexFormatError(f"{path}: not an index (an index is a folder); "
                               f"build one with 'retrieval index'")
    file = path / MANIFEST
    if not file.exists() and not file.is_symlink():
        raise IndexFormatError(f"{path}: not an index (no {MANIFEST}); "
                               f"build one with 'retrieval index'")
    manifest = _load(file)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path}: not an index of this tool (manifest format is not "
                               f"{FORMAT!r}); build one with 'retrieval index'")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"{path}: index format version {version}, this version of "
                               f"retrieval reads version {FORMAT_VERSION}; {REBUILD} "
                               f"(retrieval index ... --force)")
    if CHECKSUM in manifest and manifest[CHECKSUM] != manifest_checksum(manifest):
        raise IndexFormatError(f"{file}: the manifest does not match its own checksum "
                               f"(edited or damaged); the index is damaged, {REBUILD}")
    problem = schema_problem(manifest)
    if problem:
        raise IndexFormatError(f"{file}: {problem}; the index is damaged, {REBUILD}")
    try:
        Analyzer.from_config(manifest["analyzer"])
    except (ParameterError, AttributeError, TypeError, ValueError) as exc:
        raise IndexFormatError(f"{file}: {exc}") from None
    return manifest


def _load(file: Path):
    """The parsed JSON of an index's own small file: regular, no symbolic link, at most
    :data:`~retrieval.safeio.MAX_METADATA_BYTES`, nesting at most 64 (safeio)."""
    try:
        return load_json(file, max_bytes=MAX_METADATA_BYTES, nofollow=True)
    except InputError as exc:
        why = exc.message.split(";")[0]  # safeio's advice is for files a user names
        raise IndexFormatError(f"{file}: unreadable {file.name} ({why}); the index is "
                               f"damaged, {REBUILD}") from None


def manifest_checksum(manifest: dict) -> str:
    """BLAKE2b-256 of the manifest without its own checksum (canonical JSON: sorted keys,
    no spaces, UTF-8), recorded as ``manifest["manifest_blake2b"]``."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass")).hexdigest()


def sealed(manifest: dict) -> dict:
    """A copy of ``manifest`` carrying its own checksum (what writers write)."""
    out = {k: v for k, v in manifest.items() if k != CHECKSUM}
    out[CHECKSUM] = manifest_checksum(out)
    return out


def _count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _strings(x) -> bool:
    return isinstance(x, list) and all(isinstance(s, str) for s in x)


def schema_problem(m: dict) -> str | None:
    """The first malformed field of a manifest (types of every field), or None.

    One place for every field, so a damaged or hand-edited value gives one line here
    instead of a traceback wherever it is used.
    """
    for key in ("analyzer", "counts", "generation", "generation_dir", "index_id", "arrays"):
        if key not in m:
            return f"the manifest lacks {key!r}"
    gen = m["generation_dir"]
    if not isinstance(gen, str) or not is_generation_name(gen):
        return "the manifest names no valid generation folder"
    prev = m.get("previous_generation_dir")
    if prev is not None and (not isinstance(prev, str) or not is_generation_name(prev)):
        return "previous_generation_dir is not a generation folder name"
    if not _count(m["generation"]) or m["generation"] < 1:
        return "generation is not a whole number >= 1"
    if not isinstance(m["index_id"], str) or not m["index_id"]:
        return "index_id is not a string"
    counts = m["counts"]
    if not isinstance(counts, dict) or not all(
            _count(counts.get(k)) for k in ("documents", "terms", "tokens")) or not all(
            _count(counts[k]) for k in ("postings", "empty_documents") if k in counts):
        return "counts are malformed (whole numbers >= 0 expected)"
    if not isinstance(m["analyzer"], dict):
        return "analyzer is not an object"
    for key in ("package_version", "created", "modified", CHECKSUM):
        if key in m and not isinstance(m[key], str):
            return f"{key} is not a string"
    if "store_text" in m and not isinstance(m["store_text"], bool):
        return "store_text is not true or false"
    if "sources" in m and not _strings(m["sources"]):
        return "sources is not a list of paths"
    groups = m.get("source_groups", [])
    if not isinstance(groups, list) or not all(_strings(g) for g in groups):
        return "source_groups is not a list of lists of paths"
    stats = m.get("read_stats", {})
    if not isinstance(stats, dict) or not isinstance(stats.get("skipped", {}), dict):
        return "read_stats is not an object"
    estimates = m.get("estimates", {})
    if not isinstance(estimates, dict) or not all(isinstance(e, dict)
                                                  for e in estimates.values()):
        return "estimates is not an object of objects"
    return _arrays_problem(m["arrays"])


def _arrays_problem(arrays) -> str | None:
    if not isinstance(arrays, dict):
        return "arrays is not an object"
    for name, d in arrays.items():
        if name not in ARRAY_SPECS and not is_field_array(name):
            return f"arrays names an unknown array {name!r}"
        if not (isinstance(d, dict) and isinstance(d.get("dtype"), str)
                and isinstance(d.get("shape"), list) and all(_count(x) for x in d["shape"])
                and _count(d.get("bytes")) and isinstance(d.get("blake2b"), str)):
            return (f"arrays.{name} is malformed (an object with dtype, shape, bytes and "
                    f"blake2b expected)")
    return None


def read_manifest_or_none(path: Path) -> dict | None:
    try:
        return read_manifest(path)
    except IndexFormatError:
        return None


def index_state(path: Path) -> str:
    """What ``path`` holds: ``absent``, ``empty`` (an empty folder), ``index`` (an index of
    this format), ``old`` (an index of this tool in another format version), ``damaged``
    (a folder whose manifest names this tool, or with this layout, but unreadable),
    ``file`` or ``other`` (a folder that is not an index)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return "absent"
    if not path.is_dir():
        return "file"
    try:
        entries = list(path.iterdir())
    except OSError:
        return "other"
    if not entries:
        return "empty"
    try:
        read_manifest(path)
        return "index"
    except IndexFormatError:
        pass
    try:
        raw = _load(path / MANIFEST)
        if isinstance(raw, dict) and raw.get("format") == FORMAT:
            return "old" if raw.get("format_version") != FORMAT_VERSION else "damaged"
    except IndexFormatError:
        pass
    names = {e.name for e in entries}
    ours = {MANIFEST, LOCK}
    if names & ours and all(n in ours or is_generation_name(n) or n.startswith(".tmp-")
                            or n.startswith(f".{MANIFEST}.tmp") for n in names):
        return "damaged"
    return "other"


def is_index(path: Path) -> bool:
    """True when ``path`` is an index of this format version (its manifest reads)."""
    return index_state(Path(path)) == "index"


def is_generation_name(name: str) -> bool:
    head, _, tail = name.partition("-")
    return len(head) == 7 and head[0] == "g" and head[1:].isdigit() and len(tail) == 8

