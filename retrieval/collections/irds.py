"""Collections named by their ir_datasets id: ``irds:cranfield``, ``irds:beir/scifact/test``.

`ir_datasets <https://ir-datasets.com>`_ (the optional extra ``irds``) knows where each
standard collection's files come from and how to read them. This module reads an ad-hoc
collection (documents, queries, judgments) that ir_datasets already has on this machine,
and never downloads: when a file is missing, the error names the file and the exact path
to place it at (ir_datasets' cache under ``$IR_DATASETS_HOME``, default
``~/.ir_datasets``; the same relative paths as the ``cache_path`` entries of its
``etc/downloads.json``), with its md5 and where it is published.

Decisions (the documented mapping):

* **Ids**: ``doc_id``, ``query_id`` as given (strings).
* **Document text**: the dataset's ``default_text()`` - the fields ir_datasets documents
  as the document's text (Cranfield and BEIR: title + text; MS MARCO passages: text);
  for a record type without it, its text fields among ``title``, ``text``, ``body``,
  ``abstract``, ``contents``, in that order. Other fields (authors, bibliography, URLs,
  metadata) are not indexed.
* **Query text**: ``default_text()`` likewise (e.g. TREC topics: the title); else
  ``text`` or ``title``.
* **Judgments**: ``relevance`` as given (Cranfield's -1 stays -1, not relevant; graded
  judgments keep their grades), the ``iteration`` column ignored. An identical judgment
  given twice counts once; two different ones for a (query, document) are an error.
  Values are ir_datasets' even where they differ from this package's own reader:
  ``irds:cranfield`` keeps cranqrel's codes (1 = complete answer ... 4 = minimum
  interest), where ``cranfield`` maps them to grades 5 - code (4 = complete answer). The
  relevant set, so AP, P@k and recall, is the same; graded measures (nDCG, ERR) differ,
  and ``cranfield`` gives the ones that follow Cleverdon's scale.

``IR_DATASETS_HOME`` is read by ir_datasets when it is first imported, so set it before.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ParameterError, RetrievalError
from ..records import Document, Qrel, Query
from .base import Collection, CollectionNotFoundError

#: prefix of a collection name that is an ir_datasets id
IRDS_PREFIX = "irds:"

_DOC_FIELDS = ("title", "text", "body", "abstract", "contents")
_QUERY_FIELDS = ("text", "title")


def import_ir_datasets():
    """The ``ir_datasets`` module, or a one-line error naming the extra to install."""
    try:
        import ir_datasets
    except ImportError:
        raise ParameterError('irds: collections need ir_datasets: pip install '
                             '"retrieval[irds]"') from None
    return ir_datasets


def _dataset(dataset_id: str, needs: tuple[str, ...]):
    irds = import_ir_datasets()
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise ParameterError("an ir_datasets id is needed after 'irds:', e.g. irds:cranfield")
    dataset_id = dataset_id.strip()
    try:
        ds = irds.load(dataset_id)
    except KeyError:
        raise ParameterError(f"irds:{dataset_id}: ir_datasets has no dataset {dataset_id!r}; "
                             f"ids are listed at ir-datasets.com (e.g. cranfield, vaswani, "
                             f"beir/scifact/test)") from None
    for part in needs:
        if not getattr(ds, f"has_{part}")():
            raise ParameterError(
                f"irds:{dataset_id} has no {part}; an ad-hoc collection needs documents, "
                f"queries and judgments (pick a subset that has them, e.g. "
                f"beir/scifact/test rather than beir/scifact)")
    missing = []
    for part in needs:
        missing += missing_files(getattr(ds, f"{part}_handler")())
    if missing:
        raise CollectionNotFoundError(f"irds:{dataset_id}: " + "; ".join(
            dict.fromkeys(missing)) + " (nothing is downloaded; ir_datasets reads the file "
            "from there)")
    return ds


def missing_files(handler) -> list[str]:
    """What must be placed where for ``handler`` (an ir_datasets docs, queries or qrels
    handler) to read offline: one message per missing archive; [] when all are there.

    Follows the handler's source chain to ir_datasets' ``Download`` objects; a cached
    extraction that already exists satisfies everything below it.
    """
    out: list[str] = []
    seen: set[int] = set()

    def walk(obj, depth: int) -> None:
        if id(obj) in seen or depth > 12:
            return
        seen.add(id(obj))
        kind = type(obj).__name__
        path = getattr(obj, "_path", None)
        if kind == "Cache" and path is not None and Path(path).exists():
            return
        cache_path = getattr(obj, "_cache_path", None)
        if kind == "Download" and cache_path is not None:
            if not Path(cache_path).exists():
                out.append(_place_message(obj, Path(cache_path)))
            return
        for value in list(getattr(obj, "__dict__", {}).values()):
            for item in (value if isinstance(value, (list, tuple)) else (value,)):
                if type(item).__module__.startswith("ir_datasets"):
                    walk(item, depth + 1)

    walk(handler, 0)
    return out


def _place_message(download, cache_path: Path) -> str:
    urls = []
    for mirror in getattr(download, "mirrors", ()):
        url = getattr(mirror, "url", None)
        if isinstance(url, str):
            urls.append(url)
    md5 = getattr(download, "expected_md5", None)
    text = f"place the file {cache_path.name} at {cache_path}"
    if md5:
        text += f" (md5 {md5}"
        text += f", published at {urls[0]})" if urls else ")"
    elif urls:
        text += f" (published at {urls[0]})"
    return text


def _text(record, fields: tuple[str, ...]) -> str:
    default = getattr(record, "default_text", None)
    if callable(default):
        return str(default())
    parts = [getattr(record, f) for f in fields if isinstance(getattr(record, f, None), str)]
    return "\n".join(p for p in parts if p)


def _run(what: str, dataset_id: str, make):
    try:
        return make()
    except RetrievalError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:  # ir_datasets' own errors
        raise CollectionNotFoundError(
            f"irds:{dataset_id}: ir_datasets could not read the {what} "
            f"({type(exc).__name__}: {exc}); check the files under "
            f"{os.environ.get('IR_DATASETS_HOME', '~/.ir_datasets')}") from None


def read_irds_qrels(dataset_id: str) -> tuple[Qrel, ...]:
    """The judgments of an ir_datasets dataset (see the module doc), offline."""
    ds = _dataset(dataset_id, ("qrels",))
    return _qrels(ds, dataset_id)


def _qrels(ds, dataset_id: str) -> tuple[Qrel, ...]:
    def make():
        seen: dict[tuple[str, str], int] = {}
        out: list[Qrel] = []
        for number, q in enumerate(ds.qrels_iter(), start=1):
            key = (str(q.query_id), str(q.doc_id))
            rel = int(q.relevance)
            if key in seen:
                if seen[key] != rel:
                    raise ParameterError(
                        f"irds:{dataset_id}: document {key[1]!r} is judged {seen[key]} and "
                        f"{rel} for query {key[0]!r} (judgment {number}); which one holds "
                        f"cannot be known")
                continue
            seen[key] = rel
            out.append(Qrel(key[0], key[1], rel))
        return tuple(out)
    return _run("judgments", dataset_id, make)


def load_irds(dataset_id: str, name: str | None = None) -> Collection:
    """The ir_datasets ad-hoc collection ``dataset_id`` (documents, queries, judgments),
    read from ir_datasets' local cache; never downloads (see the module doc)."""
    ds = _dataset(dataset_id, ("docs", "queries", "qrels"))
    documents = _run("documents", dataset_id, lambda: tuple(
        Document(str(d.doc_id), _text(d, _DOC_FIELDS)) for d in ds.docs_iter()))
    queries = _run("queries", dataset_id, lambda: tuple(
        Query(str(q.query_id), _text(q, _QUERY_FIELDS)) for q in ds.queries_iter()))
    qrels = _qrels(ds, dataset_id)
    doc_fields = _described(ds.docs_cls(), _DOC_FIELDS)
    query_fields = _described(ds.queries_cls(), _QUERY_FIELDS)
    description = (
        f"ir_datasets {dataset_id!r} (ir_datasets {import_ir_datasets().__version__}), read "
        f"from its local cache. Documents: {doc_fields}. Queries: {query_fields}. "
        "Judgments: relevance as given (>= 1 relevant; negative grades kept, not "
        "relevant), iteration ignored, identical repeats counted once.")
    # the name goes into file names (index cache, runs, plots): no ':' or '/'
    return Collection(name or "irds-" + dataset_id.strip().replace("/", "-"), documents,
                      queries, qrels, description)


def _described(cls, fields: tuple[str, ...]) -> str:
    default = getattr(cls, "default_text", None)
    doc = (getattr(default, "__doc__", None) or "").strip()
    if callable(default):
        return f"default_text() ({doc or 'the dataset’s documented text fields'})"
    present = [f for f in fields if f in getattr(cls, "_fields", ())]
    return " + ".join(present) or "no text field"
