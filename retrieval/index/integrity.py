"""What opening an index verifies, so that damaged arrays never crash a kernel or give a
wrong answer: full checksums once per file state, and bounds and consistency checks.

Why full checksums
------------------
A bit flip that keeps a value in range (a document length, a count, a byte of a docid)
cannot be told from a correct value by any bounds check; only the checksum catches it.
:func:`~retrieval.index.storage.open_generation` therefore hashes every array file in
full (BLAKE2b, the checksum the manifest records) and runs the vectorised consistency
checks of :func:`consistency_problems` — but only **once per file state**: after a successful
verification it records a *verified stamp* per file, ``(device, inode, size,
mtime_ns, ctime_ns, blake2b)``, in the per-user cache (``cache_dir()/verified/``, one
small JSON file per generation, at most :data:`MAX_STAMPS` kept) and in memory. Later
opens stat each file (one ``stat`` per array) and skip the hashing when the stamp
matches. ``ctime`` cannot be set by a user write (any write, ``chmod``, ``touch`` or
replacement changes it, and a new file has a new inode), so a file changed after it
was verified is verified again. A file changed less than :data:`RECENT_NS` (20 ms; 2 s
on file systems with whole-second timestamps) before it was verified gets no stamp: a
second write within the timestamp clock's tick could keep the same ctime.

A writer stamps the generation it has just written (it computed each checksum from the
bytes it wrote, waiting up to 20 ms for the files' ctimes to settle), so the first
``search`` after ``index``, ``add``, ``delete`` or ``update`` does not hash again.
Writers (``add``/``delete``/``update``, and the merges they do) ignore the stamps and
always verify every array in full: they read every byte anyway, and they must never
publish a new generation copied from damaged input.

Cost, measured on a synthetic index of 1,000,000 documents (``scripts/make_corpus.py
--docs 1M``; 85 M tokens, 1.8 GB of arrays, 0.83 GB of it stored text) on a shared
2-core machine at load average 7.6–8.3: an open with valid stamps 114–118 ms (before
this module: 113–188 ms with sample checksums); the first open of unstamped files
17.9–21.0 s (mostly hashing 1.8 GB at 90–130 MB/s; then the vectorised checks); a
writer (``delete`` of one document, which always verifies) 53–57 s instead of 37 s at
load 10. Only a checksum catches a bit flip that keeps a value in range, so the
verification is paid once per file state rather than skipped.

What every open checks (cheap, O(1) or O(N))
--------------------------------------------
:func:`cheap_problems`: each offset array starts at 0 and ends at the length of what it
indexes, ``counts.postings`` is P, ``counts.empty_documents`` the number of zero
``doc_lengths`` and ``|C|`` (``counts.tokens``) equals Σ ``doc_lengths`` — so a
manifest whose counts were edited (0, 1e300, ×10) is refused even without its checksum.

What a verification checks (vectorised O(n), once per file state)
-----------------------------------------------------------------
:func:`consistency_problems`: every offset array non-decreasing; ``postings_docs`` in
``[0, N)``, ``forward_terms`` in ``[0, V)``; counts positive; ``doc_lengths`` and
``term_cf`` the segment sums of the counts, ``doc_unique`` and ``term_df`` the segment
lengths; Σ of both count arrays = ``|C|``; ``docid_sorted`` and ``docid_rank`` in
``[0, N)`` and inverse to each other; ``doc_group`` in ``[-1, groups)``. These are every
index a kernel reads with, so a crafted index whose checksums were recomputed still
cannot make a kernel read out of bounds. ``retrieval check`` adds the slower
string-order checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from ..paths import cache_dir
from .arrays import segment_sums

#: a file is stamped only once its ctime is this much (ns) in the past, so that any later
#: write gets a later ctime: Linux updates ctime from a clock that ticks every 1-10 ms
#: (CONFIG_HZ); 20 ms is two of the coarsest ticks
RECENT_NS = 20 * 10**6
#: the same for file systems with whole-second timestamps (ext3: 1 s, FAT: 2 s), seen as
#: a ctime that is a whole number of seconds
RECENT_COARSE_NS = 2 * 10**9


def settled_at(state: list[int]) -> int:
    """The time (ns) from which a file in ``state`` may be stamped."""
    ctime = state[4]
    return ctime + (RECENT_COARSE_NS if ctime % 10**9 == 0 else RECENT_NS)
#: verified stamps kept in the cache (one small file per generation); oldest removed
MAX_STAMPS = 256

_OFFSETS = (("postings_indptr", "postings_docs"), ("forward_indptr", "forward_terms"),
            ("vocab_offsets", "vocab_bytes"), ("docid_offsets", "docid_bytes"),
            ("text_offsets", "text_bytes"), ("doc_file_offsets", "doc_file_bytes"))

_memory: dict[str, dict] = {}
_lock = threading.Lock()


def file_state(st: os.stat_result) -> list[int]:
    """What identifies a file's content state without reading it."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def cheap_problems(arrays: dict[str, np.ndarray], counts: dict) -> list[str]:
    """O(1) checks of every offset array's ends, and Σ doc_lengths against the manifest."""
    problems = []
    for ptr, data in _OFFSETS:
        if ptr not in arrays:
            continue
        off, end = arrays[ptr], len(arrays[data])
        if len(off) == 0 or int(off[0]) != 0 or int(off[-1]) != end:
            problems.append(f"{ptr}.npy does not run from 0 to the length of {data} ({end})")
    if "forward_terms" in arrays and len(arrays["postings_docs"]) != len(arrays["forward_terms"]):
        problems.append("postings_docs.npy and forward_terms.npy differ in length")
    if counts.get("postings", len(arrays["postings_docs"])) != len(arrays["postings_docs"]):
        problems.append(f"the manifest's postings count {counts['postings']} is not the "
                        f"length of postings_docs.npy ({len(arrays['postings_docs'])})")
    lengths = np.asarray(arrays["doc_lengths"])
    empty = int(np.count_nonzero(lengths == 0))
    if counts.get("empty_documents", empty) != empty:
        problems.append(f"the manifest's empty-document count {counts['empty_documents']} "
                        f"is not the number of empty documents ({empty})")
    tokens = int(lengths.sum(dtype=np.int64))
    if tokens != counts.get("tokens"):
        problems.append(f"the manifest's token count {counts.get('tokens')} is not the sum "
                        f"of the document lengths ({tokens})")
    return problems


def consistency_problems(arrays: dict[str, np.ndarray], counts: dict,
                         groups: int) -> list[str]:
    """Vectorised O(n) checks of every array a kernel indexes with (see the module)."""
    n, v = int(counts["documents"]), int(counts["terms"])
    tokens = int(counts["tokens"])
    # plain ndarrays: ufuncs on the memmap subclass are far slower (reduceat over the
    # 60 M postings of 1 M documents: 7.8 s on a memmap, 0.5 s on its ndarray view)
    a = {name: np.asarray(arr) for name, arr in arrays.items()}
    problems = []
    for ptr, _ in _OFFSETS:
        if ptr in a and len(a[ptr]) > 1 and bool((np.diff(a[ptr]) < 0).any()):
            problems.append(f"{ptr}.npy is not non-decreasing")
    if problems:
        return problems
    _in_range(a, "postings_docs", 0, n, problems)
    _in_range(a, "forward_terms", 0, v, problems)
    _in_range(a, "docid_sorted", 0, n, problems)
    _in_range(a, "docid_rank", 0, n, problems)
    if "doc_group" in a:
        _in_range(a, "doc_group", -1, groups, problems)
    for name in ("postings_counts", "forward_counts"):
        c = a[name]
        if len(c) and int(c.min()) <= 0:
            problems.append(f"{name}.npy holds a count below 1")
        elif int(c.sum(dtype=np.int64)) != tokens:
            problems.append(f"{name}.npy does not sum to the token count {tokens}")
    if problems:
        return problems
    pairs = (("doc_lengths", "forward_counts", "forward_indptr"),
             ("term_cf", "postings_counts", "postings_indptr"))
    for total, values, ptr in pairs:
        if not np.array_equal(a[total], segment_sums(a[values], a[ptr])):
            problems.append(f"{total}.npy is not the sums of {values}.npy")
    for size, ptr in (("doc_unique", "forward_indptr"), ("term_df", "postings_indptr")):
        if not np.array_equal(a[size], np.diff(a[ptr])):
            problems.append(f"{size}.npy is not the segment lengths of {ptr}.npy")
    if n and not problems:
        order = np.asarray(a["docid_sorted"], dtype=np.int64)
        if not np.array_equal(np.asarray(a["docid_rank"])[order], np.arange(n)):
            problems.append("docid_rank.npy is not the inverse of docid_sorted.npy")
    return problems


def _in_range(a: dict, name: str, lo: int, hi: int, problems: list[str]) -> None:
    x = a[name]
    if len(x) and (int(x.min()) < lo or int(x.max()) >= hi):
        problems.append(f"{name}.npy holds values outside [{lo}, {hi})")


def file_checksum(file: Path) -> str:
    """BLAKE2b-256 of a whole file (the checksum the manifest records per array)."""
    h = hashlib.blake2b()
    with open(file, "rb") as fh:
        while chunk := fh.read(16 * 2**20):
            h.update(chunk)
    return h.hexdigest()


# -- verified stamps ---------------------------------------------------------------------------

def _stamp_file(key: str) -> Path:
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return cache_dir() / "verified" / f"{digest}.json"


def stamp_key(gen: Path, manifest: dict) -> str:
    return f"{os.path.realpath(gen)}\0{manifest['index_id']}\0{manifest['generation']}"


def load_stamps(key: str) -> dict:
    """The verified stamps of a generation: {array name: file state + [blake2b]}."""
    with _lock:
        if key in _memory:
            return _memory[key]
    try:
        from ..safeio import load_json
        stamps = load_json(_stamp_file(key), max_bytes=2**20)
    except Exception:  # a missing, unreadable or foreign cache file: verify again
        return {}
    if not isinstance(stamps, dict) or stamps.get("key") != key:
        return {}
    files = stamps.get("files")
    return files if isinstance(files, dict) else {}


def save_stamps(key: str, files: dict) -> None:
    """Remember a verified generation (best effort: a cache, never an error)."""
    with _lock:
        _memory[key] = files
    folder = _stamp_file(key).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}"
        tmp.write_text(json.dumps({"key": key, "files": files}), encoding="utf-8")
        os.replace(tmp, _stamp_file(key))
        stamps = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in stamps[:-MAX_STAMPS]:
            old.unlink()
    except OSError:
        pass


def stamp_written(gen: Path, manifest: dict) -> None:
    """Stamp a generation a writer has just written (see the module docstring)."""
    states = {}
    for name, described in manifest["arrays"].items():
        try:
            states[name] = file_state(os.stat(gen / f"{name}.npy", follow_symlinks=False))
        except OSError:
            return
    wait = max((settled_at(st) for st in states.values()), default=0) - time.time_ns()
    if 0 < wait <= RECENT_NS:
        time.sleep(wait / 1e9)
    now = time.time_ns()
    save_stamps(stamp_key(gen, manifest), {
        name: st + [manifest["arrays"][name]["blake2b"]] for name, st in states.items()
        if settled_at(st) <= now})


def forget_stamps() -> None:
    """Drop the in-memory stamps (tests; the cache files are checked against the files)."""
    with _lock:
        _memory.clear()
