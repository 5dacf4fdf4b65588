"""Building a sharded index on a Dask cluster: one task per shard.

:func:`build_sharded` (``retrieval index --shards N --scheduler ADDRESS`` or
``--cluster local``) submits one task per shard. Task i reads the input paths (readable
at the same path on every worker: a shared or replicated file system, as for searching),
keeps the documents routed to shard i (:func:`~retrieval.shards.store.shard_of`), counts
them as :meth:`ShardedIndex.build <retrieval.shards.store.ShardedIndex.build>` counts
that shard, and writes the shard straight into the output folder. The client then opens
the shards, computes the global statistics (:func:`~retrieval.shards.stats.
merge_statistics`) and publishes ``shards.json`` atomically, under the output's write
lock. So the shards are *identical* to those of the local build — same documents in the
same order, same arrays — and so is every score (tested on a LocalCluster).

Cost: every task reads the whole input (I/O S times) but analyses and counts only its
shard's documents (about 1/S of the CPU work and memory); the client's work is O(V) per
shard. A failed task (a repeated id, an unreadable file) fails the build with its error,
and the shards written so far are removed: nothing is published.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..analysis import Analyzer
from ..errors import InputError
from ..index import Index, IndexBuilder, WriteLock
from ..reading import STREAM_BYTES, FolderReader
from .distributed import connect
from .store import ShardedIndex, check_output, read_top, shard_of


def build_shard(paths: Sequence[str], target: str, shard: int, n_shards: int,
                analyzer_config: dict, store_text: bool) -> int:
    """Task body: index the documents of ``paths`` routed to ``shard`` into ``target``;
    returns their number."""
    reader = FolderReader([Path(p) for p in paths], stream_threshold=STREAM_BYTES)
    builder = IndexBuilder(analyzer=Analyzer.from_config(analyzer_config),
                           store_text=store_text)
    seen: set[str] = set()
    for doc in reader.documents():
        if shard_of(doc.docid, n_shards) != shard:
            continue
        if doc.docid in seen:
            raise InputError(f"document id {doc.docid!r} occurs twice; ids must be unique")
        seen.add(doc.docid)
        builder.add(doc.docid, doc.text)
    index = builder.finish()
    index.save(target)
    return index.num_docs


def build_sharded(paths: Sequence[str | os.PathLike], output: str | os.PathLike,
                  n_shards: int, *, client=None, scheduler: str | None = None,
                  n_workers: int = 2, analyzer: Analyzer | None = None,
                  store_text: bool = True, overwrite: bool = False,
                  timeout: float | None = None) -> ShardedIndex:
    """Build a sharded index of ``paths`` at ``output`` with one Dask task per shard
    (module docstring) on ``client``, the scheduler at ``scheduler``, or a new
    LocalCluster of ``n_workers``; returns the opened sharded index."""
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise InputError(f"the number of shards must be a whole number >= 1, got "
                         f"{n_shards!r}")
    output = Path(os.path.abspath(output))
    paths = [os.path.abspath(p) for p in paths]
    analyzer = analyzer if analyzer is not None else Analyzer()
    check_output(output, overwrite)
    client, cluster = connect(client, scheduler, n_workers, timeout)
    try:
        with WriteLock(output):
            previous = read_top(output)
            gen = int(previous["generation"]) + 1 if previous else 1
            names = [f"s{i:03d}-g{gen:06d}" for i in range(n_shards)]
            for name in names:
                shutil.rmtree(output / name, ignore_errors=True)  # never published
            futures = [client.submit(build_shard, paths, str(output / name), i, n_shards,
                                     analyzer.config(), store_text, pure=False)
                       for i, name in enumerate(names)]
            try:
                client.gather(futures, errors="raise")
                shards = [Index.open(output / name) for name in names]
                sharded = ShardedIndex.from_indexes(shards)
                sharded.publish(output, previous, range(n_shards), written=names)
            except BaseException:
                for f in futures:
                    f.cancel()
                for name in names:
                    shutil.rmtree(output / name, ignore_errors=True)
                raise
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    return ShardedIndex.open(output)
