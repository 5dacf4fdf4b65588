"""Adding, replacing and deleting documents of a sharded index on disk, keeping the
global statistics exact and the change atomic across shards.

Each document id is looked up in every shard (a binary search per shard), so indexes
joined from separately built shards are changed correctly too; a new document goes to
shard :func:`~retrieval.shards.store.shard_of`; a replaced one stays in its shard. Each touched shard is changed in memory by
:func:`retrieval.index.lifecycle.apply_changes` (the same merge as ``retrieval add`` /
``delete``, equal to a fresh build of the shard's documents), the global statistics are
recomputed from all shards (exact integer sums), and the touched shards and statistics
are published together by :meth:`~retrieval.shards.store.ShardedIndex.publish`: new
folders first, then one atomic replacement of ``shards.json``. A crash at any moment
leaves the previous state complete; readers see the old state or the new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from ..index import Index, WriteLock
from ..index.lifecycle import apply_changes
from ..records import Document
from .stats import merge_statistics
from .store import ShardedIndex, is_sharded, shard_of


def _holder(shards: list[Index], docid: str) -> int:
    for i, ix in enumerate(shards):
        try:
            ix.doc_number(docid)
            return i
        except KeyError:
            continue
    return -1


def change_sharded(path: str | os.PathLike, add: Iterable = (), delete: Iterable[str] = (),
                   *, replace: bool = False, missing_ok: bool = False) -> ShardedIndex:
    """Add ``(docid, text)`` pairs and delete ids in the sharded index at ``path``; returns
    the new state. An id already present is an error unless ``replace``; deleting an
    absent id is an error unless ``missing_ok``. Nothing is written on an error."""
    path = Path(path)
    if not is_sharded(path):
        raise InputError(f"{path} is not a sharded index; use 'retrieval add/delete' for an "
                         f"ordinary index")
    with WriteLock(path):
        current = ShardedIndex.open(path)
        shards = current.shards
        n = len(shards)
        adds: dict[int, list] = {}
        deletes: dict[int, list] = {}
        seen: set[str] = set()
        for docid in delete:
            i = _holder(shards, docid)
            if i < 0:
                if missing_ok:
                    continue
                raise InputError(f"no document {docid!r} in {path}; nothing was changed "
                                 f"(pass missing_ok=True to ignore absent ids)")
            deletes.setdefault(i, []).append(docid)
            seen.add(docid)
        for item in add:
            docid, text = (item.docid, item.text) if isinstance(item, Document) else item
            i = _holder(shards, docid)
            target = shard_of(docid, n) if i < 0 or current.routing == "hash" else i
            if i >= 0 and docid not in seen:
                if not replace:
                    raise InputError(f"document {docid!r} is already in {path}; nothing was "
                                     f"changed (pass replace=True to re-index it)")
                if i != target:
                    deletes.setdefault(i, []).append(docid)
            adds.setdefault(target, []).append((docid, text))
        touched = sorted(set(adds) | set(deletes))
        new_shards = list(shards)
        for i in touched:
            new_shards[i] = apply_changes(shards[i], adds.get(i, ()), deletes.get(i, ()),
                                          replace=replace)
        stats, maps = merge_statistics(new_shards)
        new = ShardedIndex(new_shards, stats, maps, top={"routing": current.routing})
        new.publish(path, current.top, changed=touched)
    return ShardedIndex.open(path)
