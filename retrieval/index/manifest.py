"""Reading and validating ``manifest.json``, and telling what a path holds (an index of
this format, of an older one, a damaged one, or something else)."""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis import Analyzer
from ..errors import IndexFormatError, ParameterError
from .layout import FORMAT, FORMAT_VERSION, LOCK, MANIFEST, REBUILD


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
    if not file.is_file():
        raise IndexFormatError(f"{path}: not an index (no {MANIFEST}); "
                               f"build one with 'retrieval index'")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{file}: unreadable manifest ({exc}); {REBUILD}") from None
    except OSError as exc:
        raise IndexFormatError(f"{file}: cannot read the manifest ({exc.strerror})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path}: not an index of this tool (manifest format is not "
                               f"{FORMAT!r}); build one with 'retrieval index'")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"{path}: index format version {version}, this version of "
                               f"retrieval reads version {FORMAT_VERSION}; {REBUILD} "
                               f"(retrieval index ... --force)")
    for key in ("analyzer", "counts", "generation", "generation_dir", "index_id", "arrays"):
        if key not in manifest:
            raise IndexFormatError(f"{file}: manifest lacks {key!r}; {REBUILD}")
    gen = manifest["generation_dir"]
    if not isinstance(gen, str) or not gen.startswith("g") or "/" in gen or gen in (".", ".."):
        raise IndexFormatError(f"{file}: manifest names no valid generation folder; {REBUILD}")
    counts = manifest["counts"]
    if not isinstance(counts, dict) or not all(
            isinstance(counts.get(k), int) and counts[k] >= 0
            for k in ("documents", "terms", "tokens")):
        raise IndexFormatError(f"{file}: manifest counts are malformed; {REBUILD}")
    if not isinstance(manifest["arrays"], dict):
        raise IndexFormatError(f"{file}: manifest arrays are malformed; {REBUILD}")
    try:
        Analyzer.from_config(manifest["analyzer"])
    except (ParameterError, AttributeError, TypeError) as exc:
        raise IndexFormatError(f"{file}: {exc}") from None
    return manifest


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
        raw = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("format") == FORMAT:
            return "old" if raw.get("format_version") != FORMAT_VERSION else "damaged"
    except (OSError, ValueError):
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

