"""The generic trio (format ``trec``): documents, topics and judgments in one folder.

* the documents: one JSON object per line, ``{"id": ..., "text": ...}`` - the same
  format ``retrieval index`` reads (see :mod:`retrieval.reading`; the id may be a string
  or an integer, other keys are ignored, blank lines are skipped). Which file: the one
  named by ``documents=`` (a name in the folder or a path), or the collection path
  itself when it is a file (its folder then holds the topics and qrels), else
  ``documents.jsonl``, else the folder's only ``*.jsonl`` file (several: an error
  listing them, asking to name one).
* the topics, in exactly one of:
  ``topics.tsv`` - ``qid<TAB>text`` per line, or
  ``topics.txt`` - TREC SGML topics (``<top> <num> <title> ...``); the fields indexed
  are ``topic_fields`` (default: the title only).
  Both present is an error (which one was meant cannot be guessed).
* ``qrels.txt``: TREC qrels ``qid iteration docid relevance``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, ParameterError
from ..reading import FolderReader
from .base import Collection, CollectionNotFoundError, require_dir, require_file

DOCUMENTS_FILE = "documents.jsonl"
TOPICS_TSV = "topics.tsv"
TOPICS_TREC = "topics.txt"
QRELS_FILE = "qrels.txt"


def read_documents_jsonl(path: Path):
    """Documents of a ``{"id", "text"}`` JSON Lines file (InputError at path:line)."""
    return tuple(FolderReader([path]).documents())


def _documents_file(folder: Path, documents) -> Path:
    """The documents file of a trio (see the module doc)."""
    if documents is not None:
        path = Path(documents)
        path = path if path.is_absolute() or path.parent != Path(".") else folder / path
        if not path.is_file():
            raise CollectionNotFoundError(f"trec: the documents file {path} does not exist")
        return path
    if (folder / DOCUMENTS_FILE).is_file():
        return folder / DOCUMENTS_FILE
    found = sorted(p for p in folder.glob("*.jsonl") if p.is_file())
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise InputError(f"several JSON Lines files ({', '.join(p.name for p in found)}) and "
                         f"no {DOCUMENTS_FILE}; name the documents file (give its path as "
                         f"the collection, or documents=NAME)", path=folder)
    return require_file(folder, DOCUMENTS_FILE, "trec",
                        hint='or any one *.jsonl file: one JSON object {"id": ..., '
                             '"text": ...} per line')


def load_trec_folder(folder: str | Path, topic_fields=("title",),
                     name: str | None = None, documents: str | Path | None = None
                     ) -> Collection:
    """Read the documents (see the module doc) + ``topics.tsv``/``topics.txt`` +
    ``qrels.txt``. ``folder`` may also be the documents file itself."""
    given = Path(folder)
    if given.is_file() and documents is None:
        documents, folder = given, given.parent
    folder = require_dir(folder, "trec")
    if isinstance(topic_fields, str):
        topic_fields = (topic_fields,)
    topic_fields = tuple(topic_fields)
    if not topic_fields:
        raise ParameterError("topic_fields must name at least one field, e.g. ('title',)")
    docs_path = _documents_file(folder, documents)
    tsv, sgml = folder / TOPICS_TSV, folder / TOPICS_TREC
    if tsv.is_file() and sgml.is_file():
        raise InputError(f"both {TOPICS_TSV} and {TOPICS_TREC} are present; keep one "
                         f"(which topics to use cannot be guessed)", path=folder)
    if not tsv.is_file() and not sgml.is_file():
        raise CollectionNotFoundError(
            f"trec: expected the topics in {TOPICS_TSV} (qid<TAB>text) or {TOPICS_TREC} "
            f"(TREC <top> format) in {folder}; neither exists")
    qrels_path = require_file(folder, QRELS_FILE, "trec",
                              hint="TREC qrels lines 'qid iteration docid relevance'")

    from ..trec import read_qrels, read_topics

    documents = read_documents_jsonl(docs_path)
    if tsv.is_file():
        queries = tuple(read_topics(tsv, format="tsv"))
        topics_note = f"{TOPICS_TSV} (qid<TAB>text)"
    else:
        queries = tuple(read_topics(sgml, format="trec", fields=topic_fields))
        topics_note = f"{TOPICS_TREC} (TREC topics, fields {', '.join(topic_fields)})"
    qrels = tuple(read_qrels(qrels_path))
    description = (
        f"Generic trio read from {folder}. Documents: {docs_path.name} 'text'. Queries: "
        f"{topics_note}. Judgments: {QRELS_FILE} (TREC qrels, relevance as given, >= 1 "
        "relevant). Queries without judgments are kept; evaluate over judged_qids."
    )
    return Collection(name or folder.name, documents, queries, qrels, description)
