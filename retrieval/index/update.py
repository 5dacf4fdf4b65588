"""``update``: re-read an index's sources and apply what changed (see
:mod:`retrieval.index.lifecycle` for the rules: source groups, the size-and-mtime skip,
content hashes, files that could not be read)."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..reading import JSONL_EXTENSIONS, STREAM_BYTES, FolderReader, SourceFile, path_docid
from . import sources
from .arrays import next_manifest
from .fields import index_fields
from .layout import HASH_BYTES, text_hash
from .lifecycle import (Change, apply_part, last_change, merge_stats, open_for_write,
                        write_change)
from .reader import Index
from .sources import NewDoc, file_stat, group_base, read_docs, stream_hash
from .storage import WriteLock


def update(index_path: str | os.PathLike, *, forget_missing: bool = False,
           dry_run: bool = False, on_file: Callable | None = None,
           stream_threshold: int = STREAM_BYTES) -> Change:
    """Re-read the index's sources: add new files, re-index changed ones, delete removed
    ones (see :mod:`retrieval.index.lifecycle`). Unchanged documents are not analysed
    again. With ``dry_run`` nothing is written; the returned :class:`Change` says what
    would be."""
    start = time.perf_counter()
    path = open_for_write(index_path)
    change = Change(path, "update")
    with WriteLock(path):
        index = Index.open(path, verify="full")  # never copy damaged arrays
        groups = [list(g) for g in index.manifest.get("source_groups", [])]
        if not groups:
            raise InputError(f"{path}: the index records no source folders (its documents "
                             f"were given directly); use 'retrieval add' and 'retrieval "
                             f"delete' to change it")
        survey = _Survey(index, change)
        for g, members in enumerate(groups):
            present = [Path(m) for m in members if Path(m).exists()]
            if len(present) < len(members):
                gone = next(m for m in members if not Path(m).exists())
                if not forget_missing:
                    raise InputError(f"{gone}: this indexed source is gone; restore it, or "
                                     f"pass --forget-missing to delete its documents "
                                     f"(nothing was written)")
                groups[g] = [str(p) for p in present]
            if present:
                survey.reread(g, members, present, on_file, stream_threshold)
        change.read_stats = merge_stats(survey.stats)
        keep = survey.keep()
        if dry_run or not (survey.changed or change.deleted
                           or groups != index.manifest["source_groups"]):
            change.seconds = time.perf_counter() - start
            return change
        store_text = bool(index.manifest.get("store_text"))
        part, _ = sources.build_part(survey.changed, index.analyzer, store_text,
                                     fields=bool(index_fields(index.manifest)))
        arrays = apply_part(index, part, keep, lazy=True)
        manifest = next_manifest(index.manifest, arrays, source_groups=groups,
                                 sources=[p for g in groups for p in g],
                                 read_stats=change.read_stats,
                                 last_change=last_change(change))
        write_change(path, index, arrays, manifest, change)
    change.seconds = time.perf_counter() - start
    return change


class _Survey:
    """What ``update`` finds while re-reading the groups of one index (filled in place)."""

    def __init__(self, index: Index, change: Change):
        self.index, self.change = index, change
        self.ids = index.docids.all()
        self.number = {d: i for i, d in enumerate(self.ids)}
        self.hash_bytes = np.asarray(index.arrays["doc_hash"]).tobytes()
        self.owner = np.asarray(index.arrays["doc_group"])
        self.files, self.trusted = _recorded_files(index)
        self.seen = np.zeros(index.num_docs, dtype=bool)
        self.produced: dict[str, str] = {}
        self.changed: list[NewDoc] = []
        self.replaced: list[int] = []
        self.unreadable: set[bytes] = set()
        self.stats: list[dict] = []

    def reread(self, g: int, members: list[str], present: list[Path], on_file,
               stream_threshold: int) -> None:
        """List group ``g``'s files; skip the unchanged ones, read and compare the rest."""
        reader = FolderReader(present, stream_threshold=stream_threshold)
        base = group_base([Path(m) for m in members])
        if group_base(present) != base:  # keep ids stable when members vanish
            reader.files_ = [SourceFile(s.file, path_docid(s.path.relative_to(base)))
                             for s in reader.files_]
        since = time.time_ns()
        listed = reader.files_
        at, same = _unchanged(listed, g, self.number, self.index, self.files, self.trusted,
                              self.owner, self.seen, since)  # same size and mtime: not read
        self.seen[same] = True
        skip = np.zeros(len(listed), dtype=bool)
        skip[at] = True
        self.produced.update((listed[k].docid, listed[k].file) for k in at.tolist())
        self.change.unchanged += len(at)
        if on_file is not None:
            for k in at.tolist():
                on_file(listed[k])
        reader.files_ = [s for s, sk in zip(listed, skip.tolist()) if not sk]
        for doc in read_docs(reader, g, on_file):
            self._compare(doc, g)
        self.unreadable.update(os.fsencode(p) for p, why in reader.skipped_files_
                               if why == "unreadable" and Path(p).exists())
        self.stats.append(reader.stats_.as_dict())

    def _compare(self, doc: NewDoc, g: int) -> None:
        """A document read from group ``g``: new, changed (by text hash) or unchanged."""
        where = os.fsdecode(doc.file)
        if doc.docid in self.produced:
            raise InputError(f"document id {doc.docid!r} is read from both "
                             f"{self.produced[doc.docid]} and {where}; ids must be "
                             f"unique (nothing was written)")
        self.produced[doc.docid] = where
        i = self.number.get(doc.docid)
        if i is None:
            self.changed.append(doc)
            return
        owner = self.owner
        if owner[i] != g and owner[i] < 0:
            raise InputError(f"document id {doc.docid!r} was added directly and is "
                             f"now also read from {where}; delete it first "
                             f"(retrieval delete) or rename the file (nothing "
                             f"was written)")
        self.seen[i] = True
        digest = (text_hash(doc.text) if isinstance(doc.text, str)
                  else stream_hash(doc.text))
        if digest == self.hash_bytes[i * HASH_BYTES:(i + 1) * HASH_BYTES] and owner[i] == g:
            self.change.unchanged += 1
            return
        self.changed.append(doc)
        self.replaced.append(i)

    def keep(self) -> np.ndarray:
        """The documents to keep (and the change's counts): a group's documents not
        produced any more are deleted, unless their file exists but was unreadable."""
        change, seen, index = self.change, self.seen, self.index
        in_groups = self.owner >= 0
        gone = np.flatnonzero(in_groups & ~seen)
        keep = np.ones(index.num_docs, dtype=bool)
        if len(gone) and self.unreadable:
            for i in gone.tolist():
                file = index.source_file(i)
                if file is not None and os.fsencode(file) in self.unreadable:
                    seen[i] = True
                    change.kept_unreadable.append(self.ids[i])
            gone = np.flatnonzero(in_groups & ~seen)
        keep[gone] = False
        keep[np.asarray(self.replaced, dtype=np.int64)] = False
        change.deleted = len(gone)
        change.replaced = len(self.replaced)
        change.added = len(self.changed) - len(self.replaced)
        change.documents = index.num_docs
        change.generation = index.generation
        return keep


def _recorded_files(index: Index) -> tuple[list[str], np.ndarray]:
    """Per document: its recorded source file (as the reader lists it, ``os.fsdecode``;
    "" when none) and whether ``update`` may skip it when the file's size and mtime are
    unchanged: it has a trusted recorded stat and is the only document of a file that is
    not JSON Lines."""
    n = index.num_docs
    if "doc_file_stat" not in index.arrays:
        return [""] * n, np.zeros(n, dtype=bool)
    stat = np.asarray(index.arrays["doc_file_stat"])
    off = np.asarray(index.arrays["doc_file_offsets"], dtype=np.int64).tolist()
    raw = bytes(np.asarray(index.arrays["doc_file_bytes"]))
    if raw.isascii():  # byte offsets are character offsets: slice one decoded string
        text = raw.decode("ascii")
        files = [text[a:b] for a, b in zip(off[:-1], off[1:])]
    else:
        files = [os.fsdecode(raw[a:b]) for a, b in zip(off[:-1], off[1:])]
    jsonl = tuple(JSONL_EXTENSIONS)
    trusted = (stat[:, 0] >= 0) & np.fromiter(
        (bool(f) and not f[-8:].lower().endswith(jsonl) for f in files), bool, n)
    rows = np.flatnonzero(trusted).tolist()
    twice = {f for f, c in Counter(files[i] for i in rows).items() if c > 1}
    if twice:  # a file that gave several documents is always read again
        trusted[[i for i in rows if files[i] in twice]] = False
    return files, trusted


def _unchanged(sources: Sequence[SourceFile], group: int, number: dict[str, int],
               index: Index, files: list[str], trusted: np.ndarray, owner: np.ndarray,
               seen: np.ndarray, since: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``sources``, document numbers) of the listed files ``update`` need
    not read: a trusted document of this group with this id and file, not yet seen,
    whose file's size and mtime equal the recorded ones (the same rule as git's)."""
    doc = np.fromiter((number.get(s.docid, -1) for s in sources), np.int64, len(sources))
    at = np.flatnonzero(doc >= 0)
    d = doc[at]
    ok = trusted[d] & (owner[d] == group) & ~seen[d]
    at, d = at[ok], d[ok]
    same = np.fromiter((files[j] == sources[k].file for k, j in zip(at.tolist(), d.tolist())),
                       bool, len(at))
    at, d = at[same], d[same]
    _, first = np.unique(d, return_index=True)  # a number listed twice: the first only
    first.sort()
    at, d = at[first], d[first]
    now = np.array([file_stat(sources[k].file, since) for k in at.tolist()],
                   dtype=np.int64).reshape(-1, 2)
    ok = np.all(now == np.asarray(index.arrays["doc_file_stat"])[d], axis=1)
    return at[ok], d[ok]

