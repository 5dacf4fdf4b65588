"""The sample corpus the project ships (``corpora/sample``), or any folder laid out alike.

* ``docs/<topic>/<slug>.txt``: one document per file; the id is the path relative to
  ``docs/`` with ``/`` separators (``geology/glaciers.txt``) and the text is the whole
  file. The folder is read by :class:`retrieval.reading.FolderReader`, exactly as
  ``retrieval index <folder>/docs`` reads it, so ids agree with an index built that way.
* ``queries.tsv``: ``qid<TAB>text`` per line.
* ``qrels.txt``: TREC qrels ``qid iteration docid relevance``.
"""

from __future__ import annotations

from pathlib import Path

from ..reading import FolderReader
from .base import Collection, CollectionNotFoundError, require_dir, require_file


def load_sample(folder: str | Path, name: str = "sample") -> Collection:
    folder = require_dir(folder, "sample")
    docs_dir = folder / "docs"
    if not docs_dir.is_dir():
        raise CollectionNotFoundError(f"sample: expected a docs/ folder in {folder}, "
                                      f"but {docs_dir} does not exist")
    queries_path = require_file(folder, "queries.tsv", "sample")
    qrels_path = require_file(folder, "qrels.txt", "sample")
    from ..trec import read_qrels, read_topics

    documents = tuple(FolderReader([docs_dir]).documents())
    queries = tuple(read_topics(queries_path, format="tsv"))
    qrels = tuple(read_qrels(qrels_path))
    description = (
        f"Sample corpus read from {folder}. Documents: every file under docs/, id = path "
        "relative to docs/ with '/' separators, text = the whole file (read as "
        "'retrieval index' reads a folder). Queries: queries.tsv (qid<TAB>text). "
        "Judgments: qrels.txt (TREC qrels)."
    )
    return Collection(name, documents, queries, qrels, description)
