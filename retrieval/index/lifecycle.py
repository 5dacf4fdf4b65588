"""The life of an index: build, add, delete, update, check — incrementally and safely.

Python API (the ``retrieval index/add/delete/update/check`` commands call these; ``update``
lives in :mod:`retrieval.index.update`, ``check`` in :mod:`retrieval.index.check`):

* :func:`build_index` ``(paths, output, ...) -> Index`` — read folders/files, write a new
  index (or, with ``overwrite=True``, a new generation of an existing one).
* :func:`add_paths` ``(index, paths, replace=False) -> Change`` — index more files.
* :func:`add_documents` ``(index, docs, replace=False) -> Change`` — ``(docid, text)`` pairs.
* :func:`delete_documents` ``(index, docids, missing_ok=False) -> Change``.
* :func:`update` ``(index, forget_missing=False, dry_run=False) -> Change`` — re-read the
  indexed sources: add new files, re-index changed ones (by content hash), delete removed.
* :func:`check` ``(index) -> list[str]`` — every problem found (empty: the index is sound).
* :func:`apply_changes` ``(index, add=(), delete=(), replace=False) -> Index`` — the same
  merge in memory, without touching the disk.

Incremental, not a rebuild
--------------------------
Language-model statistics are additive, so a change analyses only the new or changed
documents (:func:`~retrieval.index.sources.build_part`) and merges arrays, vectorised
(:func:`~retrieval.index.merge.merge_arrays`; its module docstring gives the method).
Nothing loops in Python per posting or per kept document, and no array of the size of the
index is built in memory: what a change costs beyond analysing the changed documents is
reading and writing the generation's files once.

The result equals a fresh build on the same documents: the same vocabulary and term ids,
the same per-document counts and lengths, the same cf and |C| — so every score is
bit-identical. Only document *numbers* differ (kept documents keep their order, new ones
follow), and rankings do not depend on them: ties break by docid string.

Sources and ``update``
----------------------
The manifest's ``source_groups`` lists, per ``index``/``add`` command that read paths, the
resolved paths it was given; document ids are computed per group by
:class:`~retrieval.reading.FolderReader`'s rules, so re-reading a group gives the same ids.
A path added *inside* an indexed folder joins that folder's group (ids relative to it,
exactly as a rebuild of the folder would give). Per document the index records the group,
the source file, the BLAKE2b-128 hash of its text, and the file's size and modification
time (ns) when it was read. ``update`` re-lists every group; a file whose size and
modification time are unchanged is not read again: one ``stat`` per file, compared with
the recorded values as arrays (the rule of git and make; a file modified less than
:data:`~retrieval.index.sources.RACY_NS` before reading began gets no recorded time and
is always re-read; JSON Lines files are always re-read). Of the files read, documents
whose hash is unchanged are not analysed again; new ones are added, changed ones re-indexed,
and a group's documents that are no longer produced are deleted — except those
whose file still exists but could not be read (kept, and reported). A group whose paths
are gone is an error (restore them, or pass ``forget_missing=True`` to delete their
documents). Documents added with :func:`add_documents` belong to no group and ``update``
leaves them alone. A document deleted with :func:`delete_documents` whose file is still
in an indexed folder comes back at the next ``update``: remove the file to drop it for
good. The same id produced by two sources is an error, and nothing is written.

Large files are streamed: see :mod:`retrieval.index.sources`.

Safety
------
Every write happens under the index's :class:`~retrieval.index.storage.WriteLock` and
publishes a new immutable generation with one atomic ``os.replace`` (see
:mod:`retrieval.index.storage`): a process killed at any moment leaves the previous index
intact; readers that opened the index before keep their view, readers opening after see
the new one, never a mix.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analysis import Analyzer
from ..errors import InputError
from ..reading import STREAM_BYTES, FolderReader, SourceFile, StreamedText, path_docid
from . import sources
from .arrays import complete_arrays, empty_arrays, new_manifest, next_manifest
from .manifest import read_manifest
from .fields import field_arrays, index_fields, merge_field_arrays
from .merge import merge_arrays
from .reader import Index
from .sources import NewDoc, group_base, read_docs, refuse_self_indexing, resolve
from .storage import WriteLock, write_generation

__all__ = ["Change", "build_index", "add_paths", "add_documents", "delete_documents",
           "apply_changes"]


@dataclass
class Change:
    """What a write did (or, with ``dry_run``, would do)."""
    index: Path
    operation: str
    added: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    documents: int = 0
    generation: int | None = None
    written: bool = False
    kept_unreadable: list[str] = field(default_factory=list)
    read_stats: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"index": str(self.index), "operation": self.operation, "added": self.added,
                "replaced": self.replaced, "deleted": self.deleted,
                "unchanged": self.unchanged, "documents": self.documents,
                "generation": self.generation, "written": self.written,
                "kept_unreadable": self.kept_unreadable, "read_stats": self.read_stats,
                "seconds": round(self.seconds, 3)}



def _as_new_docs(documents, group: int = -1) -> Iterable[NewDoc]:
    for item in documents:
        if isinstance(item, NewDoc):
            yield item
            continue
        title = ""
        if isinstance(item, tuple) and len(item) == 3:  # a FieldedDocument
            item, title = item[:2], item[2]
        try:
            docid, text = item
        except (TypeError, ValueError):
            raise InputError(f"expected (docid, text) pairs, got {item!r:.80}") from None
        if not isinstance(text, (str, StreamedText)) or not isinstance(title, str):
            raise InputError(f"document {docid!r}: text and title must be strings, got "
                             f"{type(text).__name__}, {type(title).__name__}")
        yield NewDoc(docid, text, group, b"", title=title)


def _doc_numbers(index: Index, docids: Iterable[str]) -> tuple[list[int], list[str]]:
    """Document numbers of the ids present, and the ids absent (one binary search each)."""
    found, missing = [], []
    for d in docids:
        try:
            if not isinstance(d, str):
                raise KeyError(d)
            found.append(index.doc_number(d))
        except KeyError:
            missing.append(d)
    return found, missing


def plan(index: Index, documents, delete: Iterable[str], *, replace: bool,
         missing_ok: bool) -> tuple[dict | None, np.ndarray, int, int, int]:
    """Analyse ``documents`` and decide what to drop; (new arrays, keep, added, replaced,
    deleted)."""
    store_text = bool(index.manifest.get("store_text"))
    delete = list(dict.fromkeys(delete))
    numbers, missing = _doc_numbers(index, delete)
    if missing and not missing_ok:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"no document {missing[0]!r} in the index{more}; nothing was "
                         f"deleted")
    keep = np.ones(index.num_docs, dtype=bool)
    keep[np.asarray(numbers, dtype=np.int64)] = False
    part, ids = sources.build_part(_as_new_docs(documents), index.analyzer, store_text,
                                   fields=bool(index_fields(index.manifest)))
    present, _absent = _doc_numbers(index, ids)
    replaced = 0
    if present:
        if not replace:
            first = next(d for d in ids if _has(index, d))
            more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
            raise InputError(f"document id {first!r} is already in the index{more}; pass "
                             f"--replace to re-index such documents, or use 'retrieval "
                             f"update' for changed files (nothing was written)")
        replaced = int(np.count_nonzero(keep[np.asarray(present)]))
        keep[np.asarray(present, dtype=np.int64)] = False
    added = len(ids) - replaced
    deleted = int(np.count_nonzero(~keep)) - replaced
    return (part if ids else None), keep, added, replaced, deleted


def _has(index: Index, docid: str) -> bool:
    try:
        index.doc_number(docid)
        return True
    except KeyError:
        return False


def apply_part(index: Index, part: dict | None, keep: np.ndarray, *, lazy: bool = False
               ) -> dict[str, np.ndarray]:
    """The arrays of ``index``'s documents where ``keep`` plus the new ``part``."""
    store_text = bool(index.manifest.get("store_text"))
    old, _ = complete_arrays(index.arrays, index.manifest)
    fields = index_fields(index.manifest)
    if part is None:
        part = empty_arrays(store_text)
        if fields:
            part.update(field_arrays({f: [] for f in fields}, index.analyzer))
    merged = merge_arrays(old, keep, part, store_text=store_text, lazy=lazy)
    if fields:
        merged.update(merge_field_arrays(old, keep, part, fields, merge_arrays, lazy=lazy))
    return merged


def apply_changes(index: Index, add: Iterable = (), delete: Iterable[str] = (), *,
                  replace: bool = False, missing_ok: bool = False) -> Index:
    """A new in-memory :class:`Index`: ``index`` without ``delete`` and with ``add``.

    ``add`` holds ``(docid, text)`` pairs; an id already present is an error unless
    ``replace`` (then the document is re-indexed). Deleting an absent id is an error
    unless ``missing_ok``. ``index`` itself is not modified.
    """
    part, keep, _a, _r, _d = plan(index, add, delete, replace=replace,
                                  missing_ok=missing_ok)
    arrays = apply_part(index, part, keep)
    return Index(arrays, next_manifest(index.manifest, arrays), path=None)


# -- on-disk changes ---------------------------------------------------------------------------

def write_change(path: Path, index: Index, arrays: dict, manifest: dict,
                 change: Change) -> None:
    """Publish ``arrays`` as the next generation and record it in ``change``."""
    written = write_generation(path, arrays, manifest, previous=index.manifest)
    change.written = True
    change.generation = written["generation"]
    change.documents = written["counts"]["documents"]


def open_for_write(index_path) -> Path:
    """The index's path, after a clear error if it is no index."""
    path = Path(index_path)
    read_manifest(path)  # a clear error before touching anything
    return path


def add_documents(index_path: str | os.PathLike, documents: Iterable, *,
                  replace: bool = False) -> Change:
    """Add ``(docid, text)`` pairs to the index at ``index_path`` (crash-safe, locked).

    An id already in the index is an error (nothing is written) unless ``replace``.
    The documents belong to no source group: ``update`` leaves them alone.
    """
    start = time.perf_counter()
    path = open_for_write(index_path)
    change = Change(path, "add")
    with WriteLock(path):
        index = Index.open(path, verify="full")  # never copy damaged arrays
        part, keep, change.added, change.replaced, _ = plan(
            index, documents, (), replace=replace, missing_ok=False)
        change.documents = index.num_docs
        change.generation = index.generation
        if part is not None:
            arrays = apply_part(index, part, keep, lazy=True)
            manifest = next_manifest(index.manifest, arrays, last_change=last_change(change))
            write_change(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


def last_change(change: Change) -> dict:
    """The manifest's ``last_change`` record of ``change``."""
    return {"operation": change.operation, "added": change.added,
            "replaced": change.replaced, "deleted": change.deleted,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def delete_documents(index_path: str | os.PathLike, docids: Iterable[str], *,
                     missing_ok: bool = False) -> Change:
    """Delete documents by id. An unknown id is an error (nothing is deleted) unless
    ``missing_ok``. Deleted documents never appear in results again (but a document of an
    indexed folder whose file still exists comes back at the next ``update``)."""
    start = time.perf_counter()
    path = open_for_write(index_path)
    change = Change(path, "delete")
    ids = list(docids)
    with WriteLock(path):
        index = Index.open(path, verify="full")  # never copy damaged arrays
        _, keep, _, _, change.deleted = plan(index, (), ids, replace=False,
                                             missing_ok=missing_ok)
        change.documents = index.num_docs
        change.generation = index.generation
        if change.deleted:
            arrays = apply_part(index, None, keep, lazy=True)
            manifest = next_manifest(index.manifest, arrays, last_change=last_change(change))
            write_change(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change



def add_paths(index_path: str | os.PathLike, paths: Iterable[str | os.PathLike], *,
              replace: bool = False, on_file: Callable | None = None,
              stream_threshold: int = STREAM_BYTES) -> Change:
    """Index the files under ``paths`` into an existing index (crash-safe, locked).

    A path inside a folder the index was built from joins that folder's source group
    (ids relative to it); other paths form a new group (ids by the reader's rules).
    """
    start = time.perf_counter()
    path = open_for_write(index_path)
    resolved = resolve(paths)
    refuse_self_indexing(path, resolved)
    change = Change(path, "add")
    with WriteLock(path):
        index = Index.open(path, verify="full")  # never copy damaged arrays
        groups = [list(g) for g in index.manifest.get("source_groups", [])]
        readers: list[tuple[FolderReader, int]] = []
        outside: list[Path] = []
        inside: dict[int, list[Path]] = {}
        for p in resolved:
            g = _containing_group(groups, p)
            if g is None:
                outside.append(p)
            else:
                inside.setdefault(g, []).append(p)
        for g, ps in inside.items():
            reader = FolderReader(ps, stream_threshold=stream_threshold)
            base = group_base([Path(x) for x in groups[g]])
            reader.files_ = [SourceFile(s.file, path_docid(s.path.relative_to(base)))
                             for s in reader.files_]
            readers.append((reader, g))
        if outside:
            groups.append([str(p) for p in outside])
            readers.append((FolderReader(outside, stream_threshold=stream_threshold),
                            len(groups) - 1))
        docs = (d for reader, g in readers for d in read_docs(reader, g, on_file))
        part, keep, change.added, change.replaced, _ = plan(
            index, docs, (), replace=replace, missing_ok=False)
        change.read_stats = merge_stats(r.stats_.as_dict() for r, _ in readers)
        change.documents = index.num_docs
        change.generation = index.generation
        if part is not None or outside:
            arrays = apply_part(index, part, keep, lazy=True)
            manifest = next_manifest(index.manifest, arrays, source_groups=groups,
                                      sources=[p for g in groups for p in g],
                                      last_change=last_change(change))
            write_change(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


def _containing_group(groups: list[list[str]], p: Path) -> int | None:
    for g, members in enumerate(groups):
        for m in members:
            root = Path(m)
            if p == root or (root.is_dir() and root in p.parents):
                return g
    return None


def merge_stats(stats: Iterable[dict]) -> dict:
    out: dict = {}
    for s in stats:
        for k, v in s.items():
            if isinstance(v, dict):
                inner = out.setdefault(k, {})
                for kk, vv in v.items():
                    inner[kk] = inner.get(kk, 0) + vv
            else:
                out[k] = out.get(k, 0) + v
    return out


def build_index(paths: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                analyzer: Analyzer | None = None, store_text: bool = True,
                overwrite: bool = False, on_file: Callable | None = None,
                stream_threshold: int = STREAM_BYTES, reader: FolderReader | None = None,
                jobs: int = 1, fields: bool = True) -> tuple[Index, FolderReader]:
    """Read ``paths`` (or use ``reader``, made on them) and write a new index at
    ``output`` (see :meth:`Index.save`).

    Records the source group, per-document files and hashes, so ``update`` works later.
    With ``fields`` (the default) the title and file-name fields are stored too
    (:mod:`retrieval.index.fields`); body-only searches are the same either way.
    Returns the in-memory index and the reader (its ``stats_`` say what was read).
    """
    if reader is None:
        reader = FolderReader(paths, stream_threshold=stream_threshold)
    resolved = [str(p.resolve()) for p in reader.paths]
    analyzer = analyzer if analyzer is not None else Analyzer()
    arrays, _ = sources.build_part(read_docs(reader, 0, on_file), analyzer, store_text,
                                   jobs=jobs, fields=fields)
    manifest = new_manifest(analyzer, store_text, arrays, sources=resolved,
                            fields=("title", "name") if fields else (),
                            read_stats=reader.stats_.as_dict(), source_groups=[resolved])
    index = Index(arrays, manifest, path=None)
    index.save(output, overwrite=overwrite)
    return index, reader

