"""The life of an index — build, add, delete, update, check — in one import.

The code lives in the :mod:`retrieval.index` package (:mod:`~retrieval.index.lifecycle`,
:mod:`~retrieval.index.update`, :mod:`~retrieval.index.check`,
:mod:`~retrieval.index.sources`); the ``retrieval index/add/delete/update/check``
commands and existing user code import it from here.
"""

from .index.check import check, verify_arrays
from .index.lifecycle import (Change, add_documents, add_paths, apply_changes, build_index,
                              delete_documents)
from .index.sources import RACY_NS, STORED_TEXT_LIMIT, file_stat
from .index.update import update
from .reading import FolderReader

__all__ = ["Change", "build_index", "add_paths", "add_documents", "delete_documents",
           "update", "check", "apply_changes", "verify_arrays", "STORED_TEXT_LIMIT",
           "RACY_NS", "file_stat", "FolderReader"]
