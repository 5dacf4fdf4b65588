"""``load_collection``: a test collection by name, or a folder in a named format."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ParameterError
from ..paths import SAMPLE_CORPUS, collections_root
from .base import Collection, CollectionNotFoundError
from .beir import load_beir
from .generic import load_trec_folder
from .irds import IRDS_PREFIX, load_irds
from .nfcorpus import load_nfcorpus
from .sample import load_sample
from .smart import load_cacm, load_cisi, load_cranfield, load_med

#: collections known by name: the five shared ones (folders of the same name under the
#: collections root) and the shipped sample corpus
COLLECTION_NAMES = ("cranfield", "cisi", "med", "cacm", "nfcorpus", "sample")
SHARED_COLLECTION_NAMES = COLLECTION_NAMES[:5]

#: format -> (reader, keyword options it accepts)
_READERS: dict[str, tuple[Callable[..., Collection], tuple[str, ...]]] = {
    "cranfield": (load_cranfield, ()),
    "cisi": (load_cisi, ()),
    "med": (load_med, ()),
    "cacm": (load_cacm, ()),
    "nfcorpus": (load_nfcorpus, ("split", "query_type", "grades")),
    "beir": (load_beir, ("split",)),
    "trec": (load_trec_folder, ("topic_fields", "documents")),
    "sample": (load_sample, ()),
}
FORMATS = tuple(_READERS)


def _check_options(fmt: str, options: dict) -> None:
    allowed = _READERS[fmt][1]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise ParameterError(f"format {fmt!r} takes no option {', '.join(unknown)} "
                             f"(options it accepts: {accepted})")


def collection_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the collection ``name`` is read from (the folder is checked to exist)."""
    if name == "sample":
        if not (SAMPLE_CORPUS / "docs").is_dir():
            raise CollectionNotFoundError(
                f"the shipped sample corpus is missing: looked for {SAMPLE_CORPUS}/docs "
                f"(it is part of the checkout; restore corpora/sample)")
        return SAMPLE_CORPUS
    base = collections_root() if root is None else Path(root).expanduser()
    folder = base / name
    if folder.is_dir():
        return folder
    where = ("given as root=" if root is not None else
             "from $RETRIEVAL_COLLECTIONS" if os.environ.get("RETRIEVAL_COLLECTIONS")
             else "the default, ../shared/collections beside the checkout")
    if not base.is_dir():
        problem = f"the collections folder {base} ({where}) does not exist"
    else:
        problem = f"there is no folder {folder}"
    raise CollectionNotFoundError(
        f"collection {name!r} not found: looked for {folder}, but {problem}; set "
        f"RETRIEVAL_COLLECTIONS to the folder holding "
        f"{', '.join(n + '/' for n in SHARED_COLLECTION_NAMES)}")


def load_collection(name_or_path: str | os.PathLike, format: str | None = None,
                    root: str | os.PathLike | None = None, **options) -> Collection:
    """Load a test collection.

    * By name (``format`` not given): one of :data:`COLLECTION_NAMES`. The shared
      collections are the folders ``<root>/<name>``, ``root`` defaulting to
      :func:`retrieval.paths.collections_root` (``$RETRIEVAL_COLLECTIONS``); ``sample``
      is the shipped corpus.
    * By ir_datasets id: ``irds:ID`` (``irds:cranfield``, ``irds:beir/scifact/test``),
      read from ir_datasets' local cache, never downloaded (:mod:`.irds`; the extra
      ``irds``).
    * By path: a folder and its ``format``, one of :data:`FORMATS`. The format is never
      guessed from the files.

    ``options`` go to the format's reader: ``split``, ``query_type``, ``grades`` for
    ``nfcorpus`` (defaults ``test``, ``titles``, ``2-1-0``); ``split`` for ``beir``
    (default ``test``); ``topic_fields`` for ``trec`` (default ``("title",)``) and
    ``documents`` (the documents file; by default ``documents.jsonl`` or the folder's
    only ``*.jsonl``; the path may also be the documents file itself).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ParameterError(f"name_or_path must be a collection name or a folder path, "
                             f"got {type(name_or_path).__name__}")
    if format is None and isinstance(name_or_path, str) and \
            name_or_path.strip().lower().startswith(IRDS_PREFIX):
        if options:
            raise ParameterError(f"irds: collections take no option "
                                 f"{', '.join(sorted(options))}")
        return load_irds(name_or_path.strip()[len(IRDS_PREFIX):])
    if format is None:
        name = name_or_path.strip().lower() if isinstance(name_or_path, str) else None
        if name in COLLECTION_NAMES:
            _check_options(name, options)
            return _READERS[name][0](collection_folder(name, root), name=name, **options)
        if isinstance(name_or_path, os.PathLike) or Path(name_or_path).exists():
            raise ParameterError(
                f"{os.fspath(name_or_path)} is a path: pass format= (on the command line "
                f"--format) one of {', '.join(FORMATS)} (the format is not guessed "
                f"from the files)")
        raise ParameterError(
            f"unknown collection {name_or_path!r}; valid names: "
            f"{', '.join(COLLECTION_NAMES)}, or an ir_datasets id as irds:ID (to read a "
            f"folder, give its path and format= "
            f"one of {', '.join(FORMATS)})")
    if not isinstance(format, str) or format.lower() not in _READERS:
        raise ParameterError(f"unknown format {format!r}; valid formats: {', '.join(FORMATS)}")
    fmt = format.lower()
    _check_options(fmt, options)
    return _READERS[fmt][0](Path(name_or_path).expanduser(), **options)
