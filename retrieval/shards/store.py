"""A sharded index on disk: a folder of ordinary indexes plus the global statistics,
named by one small file that is replaced atomically.

Layout::

    SHARDED/
      shards.json          {"format": "retrieval-sharded", "generation": g,
                            "shards": ["s000-g000003", ...], "stats": "stats-g000003",
                            "routing": "hash" | "joined", "analyzer": {...},
                            "counts": {"documents", "terms", "tokens"}}
      s000-g000003/        shard 0: an ordinary index folder (retrieval.index)
      s001-g000001/        shard 1 (unchanged since generation 1)
      stats-g000003/       vocab_offsets.npy vocab_bytes.npy term_cf.npy term_df.npy,
                           map-000.npy ... (shard i's local term id -> global term id)

Crash safety: folders named by ``shards.json`` are never modified. A change writes the
changed shards and the new statistics into *new* folders, then publishes them by
replacing ``shards.json`` (write a temporary file, fsync, ``os.replace``, fsync the
folder) — the one atomic step. A reader reads ``shards.json`` once and opens exactly the
folders it names, so it sees the old state or the new one, never a mix. The folders of
the previous generation are kept (slow readers); older ones are removed after the
publication. Writers hold an exclusive lock on ``SHARDED/lock``.

Routing: a document goes to shard ``blake2b-64(docid UTF-8) mod n`` (stable across
processes, platforms and Python versions), so ``add``/``delete``/``update`` know which
shard holds a document id. Shards built separately and joined (``routing="joined"``)
are routed by looking the id up in every shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..analysis import Analyzer
from ..errors import IndexFormatError, InputError
from ..index import Index, IndexBuilder, WriteLock
from ..index.storage import fsync_dir
from ..records import Document
from .stats import CollectionStats, merge_statistics, shard_view

SHARDS_FILE = "shards.json"
FORMAT = "retrieval-sharded"
FORMAT_VERSION = 1
_STATS_ARRAYS = ("vocab_offsets", "vocab_bytes", "term_cf", "term_df")


def shard_of(docid: str, n_shards: int) -> int:
    """The shard of a document id: BLAKE2b-64 of its UTF-8 bytes, modulo ``n_shards``."""
    digest = hashlib.blake2b(docid.encode("utf-8", errors="surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % n_shards


def is_sharded(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a sharded index folder."""
    return (Path(path) / SHARDS_FILE).is_file()


def _read_top(path: Path) -> dict:
    file = path / SHARDS_FILE
    try:
        top = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} is not a sharded index (no {SHARDS_FILE}); build one with "
                         f"'retrieval index --shards N'") from None
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{file}: unreadable ({exc}); rebuild the sharded index") \
            from None
    if not isinstance(top, dict) or top.get("format") != FORMAT or \
            top.get("format_version") != FORMAT_VERSION or \
            not isinstance(top.get("shards"), list) or not top["shards"]:
        raise IndexFormatError(f"{file}: not a sharded index of this format (version "
                               f"{FORMAT_VERSION}); rebuild the sharded index")
    return top


class ShardedIndex:
    """A sharded index: ordinary indexes (``shards``) scored with the global statistics
    (``stats``, a :class:`~retrieval.shards.stats.CollectionStats`).

    ``views[i]`` is shard i seen through the global vocabulary and statistics
    (:func:`~retrieval.shards.stats.shard_view`): search those, never ``shards[i]``
    alone. Build with :meth:`build` (documents routed by :func:`shard_of`), join
    separately built indexes with :meth:`join`, open with :meth:`open`.
    """

    def __init__(self, shards: list[Index], stats: CollectionStats, maps: list[np.ndarray],
                 *, path: Path | None = None, top: dict | None = None):
        self.shards = shards
        self.stats = stats
        self.maps = maps
        self.path = path
        self.top = top or {}
        tag = f"sharded{self.top.get('generation', 0)}"
        self.views = [shard_view(ix, stats, m, tag) for ix, m in zip(shards, maps)]
        self.analyzer = shards[0].analyzer
        self.routing = self.top.get("routing", "hash")

    def length_statistics(self) -> SimpleNamespace:
        """Every document's length and distinct-term count over all shards (as
        ``.arrays["doc_lengths"]`` / ``["doc_unique"]``, in shard order): what a model
        that depends on the collection (:meth:`SmoothingModel.resolved
        <retrieval.smoothing.SmoothingModel.resolved>`) reads. Both estimates that use
        them are independent of the documents' order."""
        return SimpleNamespace(arrays={
            name: np.concatenate([np.asarray(s.arrays[name]) for s in self.shards])
            for name in ("doc_lengths", "doc_unique")})

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    @property
    def num_docs(self) -> int:
        return int(self.stats.num_docs)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_indexes(cls, shards: list[Index], *, routing: str = "hash") -> "ShardedIndex":
        """In memory, from indexes holding disjoint documents (same analyzer)."""
        _check_compatible(shards)
        stats, maps = merge_statistics(shards)
        return cls(shards, stats, maps, top={"routing": routing, "generation": 0})

    @classmethod
    def build(cls, documents: Iterable[Document | tuple[str, str]], n_shards: int, *,
              analyzer: Analyzer | None = None, store_text: bool = True) -> "ShardedIndex":
        """Index ``(docid, text)`` pairs into ``n_shards`` in-memory shards, each document
        in shard :func:`shard_of` (one pass; each shard counts as documents arrive)."""
        if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
            raise InputError(f"the number of shards must be a whole number >= 1, got "
                             f"{n_shards!r}")
        analyzer = analyzer if analyzer is not None else Analyzer()
        builders = [IndexBuilder(analyzer=analyzer, store_text=store_text)
                    for _ in range(n_shards)]
        seen: set[str] = set()
        for item in documents:
            docid, text = (item.docid, item.text) if isinstance(item, Document) else item
            if docid in seen:
                raise InputError(f"document id {docid!r} occurs twice; ids must be unique")
            seen.add(docid)
            builders[shard_of(docid, n_shards)].add(docid, text)
        return cls.from_indexes([b.finish() for b in builders])

    @classmethod
    def join(cls, indexes: list[str | os.PathLike]) -> "ShardedIndex":
        """Indexes built separately (one per folder or machine) as one sharded index in
        memory (:meth:`save` writes it); their documents must be disjoint."""
        shards = [Index.open(p) for p in indexes]
        seen: dict[str, str] = {}
        for p, ix in zip(indexes, shards):
            for d in ix.docids.all():
                if d in seen:
                    raise InputError(f"document id {d!r} is in both {seen[d]} and {p}; "
                                     f"the joined indexes must hold different documents")
                seen[d] = str(p)
        return cls.from_indexes(shards, routing="joined")

    @classmethod
    def open(cls, path: str | os.PathLike) -> "ShardedIndex":
        """Open a sharded index folder at the state its ``shards.json`` names."""
        path = Path(path)
        for attempt in range(2):
            top = _read_top(path)
            try:
                return cls._open_state(path, top)
            except FileNotFoundError:
                if attempt == 0:
                    continue  # a writer published and cleaned meanwhile: read again
                raise IndexFormatError(f"{path}: a folder named by {SHARDS_FILE} is "
                                       f"missing; rebuild the sharded index") from None
        raise AssertionError("unreachable")

    @classmethod
    def _open_state(cls, path: Path, top: dict) -> "ShardedIndex":
        stats_dir = path / top["stats"]
        if not stats_dir.is_dir():
            raise FileNotFoundError(stats_dir)
        arr = {n: np.load(stats_dir / f"{n}.npy", mmap_mode="r") for n in _STATS_ARRAYS}
        counts = top["counts"]
        stats = CollectionStats(arr["vocab_offsets"], arr["vocab_bytes"], arr["term_cf"],
                                arr["term_df"], int(counts["documents"]),
                                int(counts["tokens"]))
        shards, maps = [], []
        for i, name in enumerate(top["shards"]):
            if not (path / name).is_dir():
                raise FileNotFoundError(path / name)
            shards.append(Index.open(path / name))
            maps.append(np.load(stats_dir / f"map-{i:03d}.npy", mmap_mode="r"))
        return cls(shards, stats, maps, path=path, top=top)

    # -- writing ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write every shard and the statistics as a new generation of ``path`` and
        publish it atomically (see the module docstring)."""
        path = Path(path)
        check_output(path, overwrite)
        with WriteLock(path):
            previous = _read_top(path) if is_sharded(path) else None
            self.publish(path, previous, changed=range(self.num_shards))
        return path

    def publish(self, path: Path, previous: dict | None, changed: Iterable[int], *,
                written: list[str] | None = None) -> dict:
        """Write shards ``changed`` (the others keep their folders from ``previous``) and
        the statistics into new folders, then replace ``shards.json`` (caller holds the
        write lock). ``written``: the folders (in ``path``) where every shard has been
        written already (a build on a cluster). Returns the new top-level record."""
        gen = int(previous["generation"]) + 1 if previous else 1
        changed = set(changed)
        names = []
        for i, ix in enumerate(self.shards):
            if written is not None:
                names.append(written[i])
                continue
            if previous is not None and i not in changed and i < len(previous["shards"]):
                names.append(previous["shards"][i])
                continue
            name = f"s{i:03d}-g{gen:06d}"
            target = path / name
            if target.exists():
                shutil.rmtree(target)  # a leftover of a crashed writer, never published
            ix.save(target)
            names.append(name)
        stats_name = f"stats-g{gen:06d}"
        _write_stats(path / stats_name, self.stats, self.maps)
        top = {"format": FORMAT, "format_version": FORMAT_VERSION, "generation": gen,
               "shards": names, "stats": stats_name, "routing": self.routing,
               "analyzer": self.shards[0].manifest["analyzer"],
               "counts": {"documents": int(self.stats.num_docs),
                          "terms": int(self.stats.num_terms),
                          "tokens": int(self.stats.num_tokens)}}
        tmp = path / f".{SHARDS_FILE}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(top, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path / SHARDS_FILE)   # the publication
        fsync_dir(path)
        keep = set(names) | {stats_name}
        if previous is not None:
            keep |= set(previous["shards"]) | {previous["stats"]}
        _remove_unnamed(path, keep)
        self.path, self.top = path, top
        return top


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse to write a sharded index at ``path`` unless it is absent, an empty folder,
    or (with ``overwrite``) a sharded index; then make the folder."""
    if path.exists() and not is_sharded(path):
        if not path.is_dir() or not all(_leftover(p.name) for p in path.iterdir()):
            raise InputError(f"{path} exists and is not a sharded index; choose another "
                             f"output path (nothing was written)")
        for p in path.iterdir():   # what a build killed before publishing left
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
    if is_sharded(path) and not overwrite:
        raise InputError(f"{path} already holds a sharded index; pass --force "
                         f"(overwrite=True) to replace it")
    path.mkdir(parents=True, exist_ok=True)


_LEFTOVER = re.compile(r"^(s\d{3,}-g\d{6,}|stats-g\d{6,}|lock|\.shards\.json\.tmp-\d+)$")


def _leftover(name: str) -> bool:
    """Whether ``name`` in a folder without ``shards.json`` is what a sharded build
    writes before it publishes (so the folder may be built into again)."""
    return bool(_LEFTOVER.match(name))


def read_top(path: Path) -> dict | None:
    """The current ``shards.json`` record of ``path`` (None: not a sharded index yet)."""
    return _read_top(path) if is_sharded(path) else None


def _check_compatible(shards: list[Index]) -> None:
    if not shards:
        raise InputError("a sharded index needs at least one shard")
    first = shards[0].manifest["analyzer"]
    for ix in shards[1:]:
        if ix.manifest["analyzer"] != first:
            raise InputError(f"the shards were built with different analyzers ({first} and "
                             f"{ix.manifest['analyzer']}); rebuild them with the same "
                             f"--stopwords and --stemmer")


def _write_stats(folder: Path, stats: CollectionStats, maps: list[np.ndarray]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    items = [(n, getattr(stats, n)) for n in _STATS_ARRAYS] + \
        [(f"map-{i:03d}", m) for i, m in enumerate(maps)]
    for name, value in items:
        with open(tmp / f"{name}.npy", "wb") as fh:
            np.save(fh, np.asarray(value))
            fh.flush()
            os.fsync(fh.fileno())
    fsync_dir(tmp)
    os.replace(tmp, folder)


def _remove_unnamed(path: Path, keep: set) -> None:
    for child in path.iterdir():
        if child.is_dir() and child.name not in keep and \
                (child.name.startswith("s") and "-g" in child.name):
            shutil.rmtree(child, ignore_errors=True)
