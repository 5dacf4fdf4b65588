"""The index on disk: immutable generation folders of ``.npy`` arrays behind a small,
atomically replaced ``manifest.json``.

Layout (format version 2)
-------------------------
::

    INDEX/
      manifest.json        the current generation's manifest (small; replaced atomically)
      lock                 writers hold an exclusive flock on it; holds the writer's pid
      g000007-3fa9c2d1/    the current generation: immutable once written
        generation.json    {"index_id", "generation"}: which index and generation this is
        postings_docs.npy  ... one file per array (table below)
      g000006-81be0c47/    the previous generation, kept so slow readers still find it

``N`` documents, ``V`` terms, ``P`` (document, term) pairs:

==========================  ==========  =======================================================
array                       dtype       content
==========================  ==========  =======================================================
``postings_indptr``         int64 V+1   term-major CSR: term ``t``'s postings are
                                        ``[indptr[t], indptr[t+1])``
``postings_docs``           int32 P     document numbers, ascending within a term
``postings_counts``         int32 P     c(w, d)
``forward_indptr``          int64 N+1   document-major CSR of the same counts
``forward_terms``           int32 P     term ids, ascending within a document
``forward_counts``          int32 P     c(w, d)
``doc_lengths``             int64 N     |d| = Σ_w c(w, d)
``doc_unique``              int32 N     |d|_u, distinct terms in d
``term_cf``                 int64 V     collection frequency cf(w); |C| = Σ cf
``term_df``                 int32 V     document frequency
``vocab_offsets``           int64 V+1   UTF-8 bytes of term ``t`` are
``vocab_bytes``             uint8       ``vocab_bytes[offsets[t]:offsets[t+1]]``; terms sorted
                                        by code point, so a term's id is its sorted position;
                                        every term occurs in at least one document
``docid_offsets``           int64 N+1   external document ids (strings), in document-number
``docid_bytes``             uint8       order
``docid_sorted``            int32 N     document numbers in docid string order
``docid_rank``              int32 N     each document's position in that order (tie-breaks)
``text_offsets``            int64 N+1   the documents' text, when stored (snippets)
``text_bytes``              uint8
``doc_hash``                uint8 N×16  BLAKE2b-128 of each document's text (UTF-8), which
                                        ``update`` compares to find changed documents
``doc_group``               int32 N     the source group (``manifest["source_groups"]``) a
                                        document was read from; -1 when added directly
``doc_file_offsets``        int64 N+1   the file each document was read from (``os.fsencode``
``doc_file_bytes``          uint8       bytes of its absolute path; empty when added directly)
``doc_file_stat``           int64 N×2   that file's size and modification time (ns) when it was
                                        read, or -1 -1 when unknown or too recent to trust;
                                        ``update`` does not re-read a file whose size and
                                        time are unchanged
==========================  ==========  =======================================================

The manifest records the format version, the package version, the analyzer configuration
(queries are analysed with it), the counts, the sources, a random ``index_id`` (kept
across generations of one index), the ``generation`` number and folder, and for every
array its dtype, shape, size in bytes, the BLAKE2b checksum of the whole file and a
*sample* checksum of its first and last 64 KiB.


How generations are read and written: :mod:`retrieval.index.storage`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

FORMAT = "retrieval-index"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
LOCK = "lock"
GENERATION_INFO = "generation.json"

CORE_ARRAYS = (
    "postings_indptr", "postings_docs", "postings_counts",
    "forward_indptr", "forward_terms", "forward_counts",
    "doc_lengths", "doc_unique", "term_cf", "term_df",
    "vocab_offsets", "vocab_bytes", "docid_offsets", "docid_bytes",
    "docid_sorted", "docid_rank",
)
TEXT_ARRAYS = ("text_offsets", "text_bytes")
LIFECYCLE_ARRAYS = ("doc_hash", "doc_group", "doc_file_offsets", "doc_file_bytes",
                     "doc_file_stat")

#: dtype and shape (in terms of N, V, P; None: any length) of every array
ARRAY_SPECS: dict[str, tuple[str, tuple]] = {
    "postings_indptr": ("int64", ("V+1",)), "postings_docs": ("int32", ("P",)),
    "postings_counts": ("int32", ("P",)), "forward_indptr": ("int64", ("N+1",)),
    "forward_terms": ("int32", ("P",)), "forward_counts": ("int32", ("P",)),
    "doc_lengths": ("int64", ("N",)), "doc_unique": ("int32", ("N",)),
    "term_cf": ("int64", ("V",)), "term_df": ("int32", ("V",)),
    "vocab_offsets": ("int64", ("V+1",)), "vocab_bytes": ("uint8", (None,)),
    "docid_offsets": ("int64", ("N+1",)), "docid_bytes": ("uint8", (None,)),
    "docid_sorted": ("int32", ("N",)), "docid_rank": ("int32", ("N",)),
    "text_offsets": ("int64", ("N+1",)), "text_bytes": ("uint8", (None,)),
    "doc_hash": ("uint8", ("N", 16)), "doc_group": ("int32", ("N",)),
    "doc_file_offsets": ("int64", ("N+1",)), "doc_file_bytes": ("uint8", (None,)),
    "doc_file_stat": ("int64", ("N", 2)),
}

HASH_BYTES = 16

#: what to do about a damaged index (ends the error messages)
REBUILD = "rebuild the index"


def text_hash(text: str) -> bytes:
    """The content hash recorded per document: BLAKE2b-128 of the text's UTF-8 bytes."""
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"),
                           digest_size=HASH_BYTES).digest()


class StringTable:
    """A read-only sequence of strings stored as UTF-8 bytes plus offsets."""

    def __init__(self, offsets: np.ndarray, blob: np.ndarray):
        self._offsets = offsets
        self._blob = blob

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        return bytes(self._blob[start:end]).decode("utf-8")

    def many(self, indices: Iterable[int]) -> list[str]:
        """The strings at ``indices`` (one bytes decode for the whole set)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            return []
        starts = np.asarray(self._offsets[idx])
        ends = np.asarray(self._offsets[idx + 1])
        blob = self._blob
        return [bytes(blob[s:e]).decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]

    def all(self) -> list[str]:
        data = bytes(self._blob).decode("utf-8") if len(self._blob) else ""
        # offsets are byte offsets; decode per item when the text is not pure ASCII
        if len(data) == len(self._blob):
            off = self._offsets.tolist()
            return [data[off[i]:off[i + 1]] for i in range(len(off) - 1)]
        return self.many(range(len(self)))


# -- extra fields (retrieval.index.fields) -------------------------------------------------
#: the extra fields an index may hold beside the body
FIELD_NAMES = ("title", "name")
#: the arrays stored per extra field (names as the body's)
FIELD_ARRAYS = ("postings_indptr", "postings_docs", "postings_counts", "forward_indptr",
                "forward_terms", "forward_counts", "doc_lengths", "doc_unique", "term_cf",
                "term_df", "vocab_offsets", "vocab_bytes")
PREFIX = "field."


def field_key(field: str, name: str) -> str:
    """The stored name of array ``name`` of field ``field``."""
    return f"{PREFIX}{field}.{name}"


def is_field_array(name: str) -> bool:
    """Whether ``name`` is the stored name of one array of one extra field."""
    parts = name.split(".")
    return (len(parts) == 3 and parts[0] + "." == PREFIX and parts[1] in FIELD_NAMES
            and parts[2] in FIELD_ARRAYS)
