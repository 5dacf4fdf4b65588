"""The k-way merge of index segments into one array set, streamed (O(S) I/O).

A segmented build (:mod:`retrieval.segmented`) writes S *segments*: complete array sets
(:func:`~retrieval.index.sources.build_part`) of consecutive runs of the documents, on
disk. :func:`merge_segments` joins them in one pass into the arrays of one index, as
:class:`~retrieval.index.arrays.Pieces` that read the memory-mapped segments chunk by
chunk when written, so each segment is read once and the result written once.

Method (documents keep their order: segment s's documents follow segment s-1's):

* **vocabulary** — the union of the segments' sorted vocabularies, sorted by code point
  (a term's id is its position, as in one build): a heap merge of their UTF-8 bytes;
  each segment's terms go through a monotone map ``local id -> global id``;
* **term statistics** — ``df`` and ``cf`` are the sums of the segments' (additive);
  ``postings_indptr`` their prefix sum;
* **postings** — made in blocks of global terms holding about :data:`PIECE` postings:
  for each segment (in order) the block's local terms are one contiguous run (the map is
  monotone), whose postings are scattered to their term's next free slots, document
  numbers shifted by the documents of the segments before. Within a term, segments come
  in order and each segment's postings ascend, so the documents ascend as in one build;
* **document rows** — the forward rows are the segments' rows with term ids mapped
  (rows stay sorted because the map is monotone); pointer arrays are shifted by the
  items before; per-document columns, ids, stored text and lifecycle data are
  concatenated;
* **document id order** — a merge of the segments' own id orders, block by block with
  numpy (fixed-width byte keys, a stable sort per block; no Python step per document),
  or, for ids holding a NUL byte or longer than :data:`MAX_KEY_BYTES`, a heap merge of
  the decoded ids; two equal ids next to each other are an error naming the id.

The result is identical to one build over the same documents in the same order: the same
arrays, bit for bit (tested for several segment counts, with and without stored text,
with the title and name fields). Memory beyond the chunks: O(V) vocabulary arrays (the
merged vocabulary's bytes and offsets, the maps, df, cf, the pointers; no term as a
Python object beyond a chunk per segment — the name field's vocabulary is about one
term per document) and three O(N) columns, 16 bytes per document: ``doc_lengths`` (int64, the manifest's counts),
``docid_sorted`` and ``docid_rank`` (int32 each); everything else is streamed.
"""

from __future__ import annotations

import heapq
import os
from array import array
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import InputError
from .arrays import Pieces
from .layout import (ARRAY_SPECS, FIELD_ARRAYS, LIFECYCLE_ARRAYS, TEXT_ARRAYS,
                     field_key)

#: items per chunk when segments are copied into the merged arrays
PIECE = 1 << 20
#: document ids decoded per segment at a time in the id-order merge
ID_CHUNK = 1 << 13


class Rows(Pieces):
    """:class:`Pieces` of a 2-D array of ``width`` columns (chunks of whole rows)."""

    __slots__ = ("width",)

    def __init__(self, dtype, rows: int, width: int, make):
        super().__init__(dtype, rows * width, make)
        self.width = width

    def __len__(self) -> int:
        return self.length // self.width

    @property
    def shape(self) -> tuple[int, int]:
        return (self.length // self.width, self.width)


class OnDisk:
    """A ``.npy`` array on disk read by slices (``os.pread``), never memory-mapped: the
    pages of a mapping that a merge has read count in the process's resident memory
    until the mapping is closed, so mapping S segments would grow the RSS with the
    collection. Supports ``len``, ``shape``, ``ndim``, ``dtype``, an integer index (a
    row), a slice without step, and ``np.asarray`` (the whole array)."""

    def __init__(self, file):
        self.file = str(file)
        with open(self.file, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            self.shape, fortran, self.dtype = read(fh)
            self.offset = fh.tell()
        if fortran:
            raise ValueError(f"{self.file}: Fortran order is not supported")
        self.ndim = len(self.shape)
        self.row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, start: int, stop: int) -> np.ndarray:
        n = max(stop - start, 0)
        fd = os.open(self.file, os.O_RDONLY)
        try:
            data = os.pread(fd, n * self.row, self.offset + start * self.row) if n else b""
        finally:
            os.close(fd)
        return np.frombuffer(data, dtype=self.dtype).reshape((n,) + tuple(self.shape[1:]))

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("OnDisk supports slices without a step")
            return self._read(start, stop)
        i = int(key)
        i = i + len(self) if i < 0 else i
        if not 0 <= i < len(self):
            raise IndexError(i)
        row = self._read(i, i + 1)
        return row[0]

    def __array__(self, dtype=None, copy=None):
        whole = self._read(0, len(self))
        return whole if dtype is None else whole.astype(dtype)


def open_segment(folder) -> dict:
    """A segment folder's arrays (``NAME.npy``) as :class:`OnDisk` arrays."""
    from pathlib import Path
    return {f.name[:-4]: OnDisk(f) for f in Path(folder).glob("*.npy")}


def sorted_ids(arrays: dict) -> dict[str, np.ndarray]:
    """A part's document ids in docid order, packed (``sorted_id_offsets``,
    ``sorted_id_bytes``): written beside a segment so the merge of the id orders reads
    each segment's ids front to back."""
    from .merge import take_segments
    offsets, (blob,) = take_segments(arrays["docid_offsets"], [arrays["docid_bytes"]],
                                     np.asarray(arrays["docid_sorted"], dtype=np.int64))
    return {"sorted_id_offsets": offsets, "sorted_id_bytes": blob}


def _chunks(array, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    stop = len(array) if stop is None else stop
    for a in range(start, stop, PIECE):
        yield np.asarray(array[a:min(stop, a + PIECE)]).reshape(-1)


def concatenated(parts: Sequence[dict], name: str) -> Pieces:
    """The segments' ``name`` arrays one after another (a 1-D or a row-wise 2-D array)."""
    dtype = ARRAY_SPECS[name.split(".")[-1]][0]
    first = parts[0][name]
    if first.ndim == 2:
        width = first.shape[1]

        def make_rows():
            for p in parts:
                yield from _chunks(p[name])
        return Rows(dtype, sum(len(p[name]) for p in parts), width, make_rows)

    def make():
        for p in parts:
            yield from _chunks(p[name])
    return Pieces(dtype, sum(len(p[name]) for p in parts), make)


def pointers(parts: Sequence[dict], name: str) -> Pieces:
    """A CSR pointer array of the concatenated segments: each segment's pointers after
    its first, shifted by the items of the segments before."""
    def make():
        yield np.zeros(1, dtype=np.int64)
        shift = 0
        for p in parts:
            ptr = p[name]
            for chunk in _chunks(ptr, 1):
                yield chunk.astype(np.int64) + shift
            shift += int(ptr[-1])
    return Pieces(np.int64, 1 + sum(len(p[name]) - 1 for p in parts), make)


def _terms(p: dict, segment: int) -> Iterator[tuple[bytes, int, int]]:
    """A segment's (term UTF-8 bytes, segment, local id) in id order, read in chunks."""
    offsets, blob = p["vocab_offsets"], p["vocab_bytes"]
    for a in range(0, len(offsets) - 1, ID_CHUNK):
        off = np.asarray(offsets[a:min(a + ID_CHUNK, len(offsets) - 1) + 1], dtype=np.int64)
        data = bytes(np.asarray(blob[int(off[0]):int(off[-1])]))
        cut = (off - off[0]).tolist()
        for i in range(len(cut) - 1):
            yield data[cut[i]:cut[i + 1]], segment, a + i


def vocabulary(parts: Sequence[dict]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The merged sorted vocabulary (offsets, bytes) and each segment's map local id ->
    global id: a heap merge of the segments' sorted vocabularies, as UTF-8 bytes (whose
    order is code-point order), so no term is held as a Python object beyond a chunk per
    segment — the title and name fields' vocabularies grow with the documents."""
    maps = [np.empty(len(p["vocab_offsets"]) - 1, dtype=np.int64) for p in parts]
    blob = bytearray()
    ends = array("q")
    last = None
    for term, segment, local in heapq.merge(*(_terms(p, s) for s, p in enumerate(parts))):
        if term != last:
            blob += term
            ends.append(len(blob))
            last = term
        maps[segment][local] = len(ends) - 1
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = np.frombuffer(ends, dtype=np.int64) if len(ends) else 0
    return offsets, np.frombuffer(bytes(blob), dtype=np.uint8), maps


class _Postings:
    """The merged term-major postings, made block by block (module docstring)."""

    def __init__(self, parts: Sequence[dict], maps: Sequence[np.ndarray], n_terms: int):
        self.parts, self.maps = parts, maps
        df = np.zeros(n_terms, dtype=np.int64)
        for p, m in zip(parts, maps):
            df[m] += np.asarray(p["term_df"], dtype=np.int64)  # maps are one-to-one
        self.ptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=self.ptr[1:])
        total = int(self.ptr[-1])
        self.bounds = np.unique(np.concatenate(
            ([0], np.searchsorted(self.ptr, np.arange(PIECE, total, PIECE)), [n_terms]))
        ).tolist()
        self.local = [np.searchsorted(m, self.bounds).tolist() for m in maps]
        self.doc_shift = np.cumsum([0] + [len(p["doc_unique"]) for p in parts]).tolist()

    def pieces(self, name: str) -> Pieces:
        return Pieces(np.int32, int(self.ptr[-1]), lambda: self.blocks(name))

    def blocks(self, name: str) -> Iterator[np.ndarray]:
        for j in range(len(self.bounds) - 1):
            yield self.block(name, j)

    def block(self, name: str, j: int) -> np.ndarray:
        f0, f1 = self.bounds[j], self.bounds[j + 1]
        base = self.ptr[f0]
        free = self.ptr[f0:f1] - base          # per global term: its next free slot
        out = np.empty(int(self.ptr[f1] - base), dtype=np.int32)
        for s, (p, m) in enumerate(zip(self.parts, self.maps)):
            ua, ub = self.local[s][j], self.local[s][j + 1]
            if ua == ub:
                continue
            pptr = np.asarray(p["postings_indptr"][ua:ub + 1], dtype=np.int64)
            g = m[ua:ub] - f0
            lengths = np.diff(pptr)
            at = np.repeat(free[g] - (pptr[:-1] - pptr[0]), lengths) + np.arange(
                int(pptr[-1] - pptr[0]), dtype=np.int64)
            values = np.asarray(p[name][int(pptr[0]):int(pptr[-1])])
            out[at] = values + self.doc_shift[s] if name.endswith("docs") else values
            free[g] += lengths
        return out


def merge_index_arrays(parts: Sequence[dict]) -> dict:
    """The merged arrays of :data:`~retrieval.index.layout.FIELD_ARRAYS` (the body's or a
    field's counts, postings and vocabulary) of ``parts``."""
    offsets, blob, maps = vocabulary(parts)
    n_terms = len(offsets) - 1
    cf = np.zeros(n_terms, dtype=np.int64)
    for p, m in zip(parts, maps):
        cf[m] += np.asarray(p["term_cf"], dtype=np.int64)
    post = _Postings(parts, maps, n_terms)

    def forward_terms():
        for p, m in zip(parts, maps):
            for chunk in _chunks(p["forward_terms"]):
                yield np.take(m, chunk).astype(np.int32)

    return {
        "postings_indptr": post.ptr, "postings_docs": post.pieces("postings_docs"),
        "postings_counts": post.pieces("postings_counts"),
        "forward_indptr": pointers(parts, "forward_indptr"),
        "forward_terms": Pieces(np.int32, sum(len(p["forward_terms"]) for p in parts),
                                forward_terms),
        "forward_counts": concatenated(parts, "forward_counts"),
        "doc_lengths": np.concatenate([np.asarray(p["doc_lengths"]) for p in parts]),
        "doc_unique": concatenated(parts, "doc_unique"),
        "term_cf": cf, "term_df": np.diff(post.ptr).astype(np.int32),
        "vocab_offsets": offsets, "vocab_bytes": blob}


def _sorted_ids(p: dict, shift: int) -> Iterator[tuple[str, int]]:
    """A segment's (docid, global document number) pairs in docid order (read front to
    back from its packed sorted ids, :func:`sorted_ids`)."""
    order, offsets, blob = p["docid_sorted"], p["sorted_id_offsets"], p["sorted_id_bytes"]
    for a in range(0, len(order), ID_CHUNK):
        rows = np.asarray(order[a:a + ID_CHUNK], dtype=np.int64)
        off = np.asarray(offsets[a:a + len(rows) + 1], dtype=np.int64)
        data = bytes(np.asarray(blob[int(off[0]):int(off[-1])]))
        cut = (off - off[0]).tolist()
        ids = [data[cut[i]:cut[i + 1]].decode("utf-8") for i in range(len(rows))]
        yield from zip(ids, (rows + shift).tolist())


def _doc_file(parts: Sequence[dict], shifts: list[int], number: int) -> str:
    """The source file of global document ``number`` ('' when the segments have none)."""
    seg = int(np.searchsorted(shifts, number, side="right")) - 1
    p, row = parts[seg], number - shifts[seg]
    if "doc_file_offsets" not in p:
        return ""
    a, b = (int(x) for x in np.asarray(p["doc_file_offsets"][row:row + 2]))
    return os.fsdecode(bytes(np.asarray(p["doc_file_bytes"][a:b])))


def repeated_id(parts: Sequence[dict], shifts: list[int], docid: str, first: int,
                second: int) -> RepeatedIdError:
    """The error for ``docid`` found at global document numbers ``first`` and ``second``
    of the concatenated segments, naming the file of the later one (the one read second:
    segments are in reading order) and of the other."""
    first, second = sorted((first, second))
    return repeated_id_error(docid, _doc_file(parts, shifts, first),
                             _doc_file(parts, shifts, second))


class RepeatedIdError(InputError):
    """A document id read twice in a segmented build: ``docid``, read from file
    ``earlier`` and again from ``later`` ('': not from a file), at ``line`` of ``later``
    when known."""

    def __init__(self, docid: str, earlier: str, later: str, line: int | None = None):
        self.docid, self.earlier, self.later = docid, earlier, later
        if not later:
            super().__init__(f"document id {docid!r} appears twice; ids must be unique")
            return
        where = "earlier in this file" if earlier == later else f"first in {earlier}"
        super().__init__(f"document id {docid!r} appears twice ({where}); ids must be "
                         f"unique across all indexed paths: rename or remove one (nothing "
                         f"was written)", path=later, line=line)


def repeated_id_error(docid: str, earlier: str, later: str) -> RepeatedIdError:
    """The one-line error of a segmented build for ``docid`` read from file ``earlier``
    and again from ``later`` ('' : not from a file)."""
    return RepeatedIdError(docid, earlier, later)


#: ids longer than this many UTF-8 bytes send the id-order merge to the heap merge
#: (a block of fixed-width keys is ID_CHUNK × the longest id bytes per segment)
MAX_KEY_BYTES = 512


def _id_keys(p: dict, a: int, b: int) -> np.ndarray | None:
    """Ids a … b−1 of segment ``p``'s id order as one fixed-width bytes array (numpy
    ``S`` dtype: compared byte by byte, unsigned, so in UTF-8 byte order = code point
    order, the order of ``str``), built without a Python step per id; None when an id
    holds a NUL byte (``S`` drops trailing NULs, so b"a\0" would equal b"a") or is
    longer than MAX_KEY_BYTES."""
    off = np.asarray(p["sorted_id_offsets"][a:b + 1], dtype=np.int64)
    data = np.asarray(p["sorted_id_bytes"][int(off[0]):int(off[-1])], dtype=np.uint8)
    lens = np.diff(off)
    width = max(int(lens.max()) if len(lens) else 0, 1)
    if width > MAX_KEY_BYTES or (data == 0).any():
        return None
    keys = np.zeros((b - a, width), dtype=np.uint8)
    rows = np.repeat(np.arange(b - a), lens)
    keys[rows, np.arange(len(data)) - np.repeat(off[:-1] - off[0], lens)] = data
    return keys.view(f"S{width}").ravel()


class _IdRun:
    """One segment's ids in id order, loaded ID_CHUNK at a time: ``keys`` (fixed-width
    bytes) and ``numbers`` (global document numbers) of the loaded, not yet merged ids."""

    def __init__(self, p: dict, shift: int):
        self.p, self.shift, self.at = p, shift, 0
        self.n = len(p["docid_sorted"])
        self.keys = np.zeros(0, dtype="S1")
        self.numbers = np.zeros(0, dtype=np.int64)

    def more(self) -> bool:
        return self.at < self.n

    def load(self) -> bool:
        """Load the next chunk (False: an id the fixed-width keys cannot hold)."""
        b = min(self.at + ID_CHUNK, self.n)
        keys = _id_keys(self.p, self.at, b)
        if keys is None:
            return False
        self.keys = keys
        self.numbers = np.asarray(self.p["docid_sorted"][self.at:b], dtype=np.int64) + \
            self.shift
        self.at = b
        return True

    def take(self, bound) -> tuple[np.ndarray, np.ndarray]:
        """The loaded ids ≤ ``bound`` (all with None), removed from the run."""
        cut = len(self.keys) if bound is None else \
            int(np.searchsorted(self.keys, bound, side="right"))
        got = self.keys[:cut], self.numbers[:cut]
        self.keys, self.numbers = self.keys[cut:], self.numbers[cut:]
        return got


def merged_id_order(parts: Sequence[dict], shifts: list[int]) -> np.ndarray | None:
    """The global document numbers in docid order, merged block by block with numpy
    (None when some id needs the heap merge, see :func:`_id_keys`).

    Each step takes, from every segment, its loaded ids up to the smallest last loaded id
    of the segments with more to load. A segment's ids not yet loaded are greater than
    its last loaded one, so every remaining id up to that bound is loaded: the block is
    exactly the next ids of the merged order, and two equal ids (from two segments; a
    segment's own ids are unique) always fall in the same block. It sorts the block
    (stable argsort of the keys), checks it for equal neighbours, and loads the next
    chunk of each emptied segment.
    Each step empties at least the segment that set the bound: O(N/ID_CHUNK · S) steps,
    each vectorised."""
    runs = [_IdRun(p, s) for p, s in zip(parts, shifts)]
    if not all(r.load() for r in runs if r.more()):
        return None
    order = np.empty(sum(r.n for r in runs), dtype=np.int32)
    at = 0
    while True:
        live = [r for r in runs if len(r.keys)]
        if not live:
            return order
        ends = [r.keys[-1] for r in live if r.more()]
        bound = min(ends) if ends else None
        taken = [r.take(bound) for r in live]
        width = max(k.dtype.itemsize for k, _ in taken)
        keys = np.concatenate([k.astype(f"S{width}") for k, _ in taken])
        numbers = np.concatenate([n for _, n in taken])
        sort = np.argsort(keys, kind="stable")
        keys, numbers = keys[sort], numbers[sort]
        same = np.flatnonzero(keys[1:] == keys[:-1])
        if len(same):
            j = int(same[0])
            raise repeated_id(parts, shifts, keys[j].decode("utf-8"), int(numbers[j]),
                              int(numbers[j + 1]))
        order[at:at + len(numbers)] = numbers
        at += len(numbers)
        for r in live:
            if not len(r.keys) and r.more() and not r.load():
                return None


def heap_id_order(parts: Sequence[dict], shifts: list[int]) -> np.ndarray:
    """:func:`merged_id_order` by a heap merge of decoded ids (``heapq.merge``, one
    Python step per id): for ids the fixed-width keys cannot hold."""
    n = sum(len(p["docid_sorted"]) for p in parts)
    order = np.empty(n, dtype=np.int32)
    previous, previous_number = None, -1
    buf: list[int] = []
    at = 0
    for docid, number in heapq.merge(*(_sorted_ids(p, s) for p, s in zip(parts, shifts))):
        if docid == previous:
            raise repeated_id(parts, shifts, docid, previous_number, number)
        previous, previous_number = docid, number
        buf.append(number)
        if len(buf) == ID_CHUNK:
            order[at:at + len(buf)] = buf
            at += len(buf)
            buf = []
    order[at:at + len(buf)] = buf
    return order


def docid_order(parts: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """``docid_sorted`` and ``docid_rank`` of the concatenated segments (a merge of
    their own orders: :func:`merged_id_order`, vectorised, or for ids holding a NUL byte
    or longer than MAX_KEY_BYTES :func:`heap_id_order`); an id in two segments is an
    :class:`InputError` naming it and the files of both."""
    n = sum(len(p["docid_sorted"]) for p in parts)
    shifts = np.cumsum([0] + [len(p["docid_sorted"]) for p in parts]).tolist()
    order = merged_id_order(parts, shifts)
    if order is None:
        order = heap_id_order(parts, shifts)
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    return order, rank


def merge_segments(parts: Sequence[dict], *, store_text: bool,
                   fields: Sequence[str] = ()) -> dict:
    """The arrays of one index holding ``parts``' documents in order (module docstring).

    ``parts`` are complete array sets (lifecycle arrays included; the ``fields``' arrays
    too) plus :func:`sorted_ids`, typically :func:`open_segment`; they must stay readable
    until the result is written.
    """
    if not parts:
        raise ValueError("merge_segments needs at least one segment")
    arrays = merge_index_arrays(parts)
    for field in fields:
        sub = [{name: p[field_key(field, name)] for name in FIELD_ARRAYS} for p in parts]
        for name, arr in merge_index_arrays(sub).items():
            arrays[field_key(field, name)] = arr
    arrays["docid_sorted"], arrays["docid_rank"] = docid_order(parts)
    csr = [("docid_offsets", "docid_bytes"), ("doc_file_offsets", "doc_file_bytes")]
    if store_text:
        csr.append(TEXT_ARRAYS)
    for ptr, blob in csr:
        arrays[ptr] = pointers(parts, ptr)
        arrays[blob] = concatenated(parts, blob)
    for name in LIFECYCLE_ARRAYS:
        if name not in arrays:
            arrays[name] = concatenated(parts, name)
    return arrays
