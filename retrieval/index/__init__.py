"""The index: arrays of counts on disk, built once and changed incrementally.

Modules, in import order (each imports only those above it):

* :mod:`~retrieval.index.layout` — the format: array names, dtypes and shapes,
  :class:`StringTable`, the per-document text hash;
* :mod:`~retrieval.index.manifest` — reading and validating ``manifest.json``; what a
  path holds;
* :mod:`~retrieval.index.arrays` — the one place that makes index arrays and manifests;
* :mod:`~retrieval.index.integrity` — what opening verifies: full checksums once per
  file state (verified stamps), bounds and consistency of the arrays;
* :mod:`~retrieval.index.storage` — opening a generation's files, the write lock, the
  crash-safe publication of a generation, cached estimates;
* :mod:`~retrieval.index.bytetokens` — vectorised tokenising of ASCII text;
* :mod:`~retrieval.index.counting` — analysing and counting documents;
* :mod:`~retrieval.index.reader` — :class:`Index`, an index in memory or opened from disk;
* :mod:`~retrieval.index.builder` — :class:`IndexBuilder`;
* :mod:`~retrieval.index.merge` — merging kept documents with new ones;
* :mod:`~retrieval.index.sources` — reading sources into a part of new documents;
* :mod:`~retrieval.index.lifecycle` — build, add, delete (and in memory: apply_changes);
* :mod:`~retrieval.index.update` — re-reading the indexed sources;
* :mod:`~retrieval.index.check` — complete verification.

This package imports the first eight; import the lifecycle modules (or
:mod:`retrieval.lifecycle`, which gathers them) when changing an index.
"""

from .arrays import Pieces, complete_arrays
from .builder import IndexBuilder
from .layout import (ARRAY_SPECS, FORMAT, FORMAT_VERSION, GENERATION_INFO, HASH_BYTES, LOCK,
                     MANIFEST, StringTable, text_hash)
from .manifest import index_state, is_index, read_manifest
from .reader import Index
from .integrity import file_checksum
from .storage import (IndexBusyError, WriteFailedError, WriteLock, sample_checksum,
                      store_estimate, write_array, write_generation)

__all__ = ["Index", "IndexBuilder", "IndexBusyError", "WriteFailedError", "WriteLock",
           "StringTable", "Pieces",
           "ARRAY_SPECS", "FORMAT", "FORMAT_VERSION", "GENERATION_INFO", "HASH_BYTES", "LOCK",
           "MANIFEST", "complete_arrays", "file_checksum", "index_state", "is_index",
           "read_manifest", "sample_checksum", "store_estimate", "text_hash", "write_array",
           "write_generation"]
