"""NFCorpus, original distribution (Boteva et al., ECIR 2016) - not the BEIR layout.

Files of one split (``train``/``dev``/``test``):

* ``<split>.docs``: ``ID<TAB>TEXT`` per line (text already lowercased and stop-word
  filtered by the distributors; indexed as it is).
* ``<split>.<type>.queries``: ``ID<TAB>TEXT`` per line; ``type`` is one of
  :data:`QUERY_TYPES`.
* ``<split>.<grades>.qrel``: TAB-separated TREC qrels ``QID 0 DOCID LEVEL``; ``grades``
  is ``2-1-0`` (the paper's and BEIR's judgments, the default) or ``3-2-1``.

The last line of a file may lack its newline; blank lines are skipped; CRLF is accepted.
A line without a TAB, an empty id, or a repeated id is an InputError at ``path:line``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, ParameterError
from ..records import Document, Qrel, Query
from .base import Collection, QrelsBuilder, iter_lines, parse_int, require_dir, require_file

SPLITS = ("test", "dev", "train")
QUERY_TYPES = ("titles", "all", "vid-titles", "vid-desc", "nontopic-titles")
GRADES = ("2-1-0", "3-2-1")


def read_id_text(path: str | Path, kind: str) -> list[tuple[str, str]]:
    """``(id, text)`` pairs of an ``ID<TAB>TEXT`` file, in file order."""
    path = Path(path)
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        if "\t" not in line:
            raise InputError(f"expected '{kind} id<TAB>text', found no TAB", path=path,
                             line=number)
        rid, text = line.split("\t", 1)
        rid = rid.strip()
        if not rid:
            raise InputError(f"empty {kind} id before the TAB", path=path, line=number)
        if rid in seen:
            raise InputError(f"{kind} id {rid!r} appears twice (first on line {seen[rid]})",
                             path=path, line=number)
        seen[rid] = number
        out.append((rid, text.strip()))
    return out


def read_nfcorpus_qrels(path: str | Path) -> list[Qrel]:
    """``QID<TAB>0<TAB>DOCID<TAB>LEVEL`` lines (any white space accepted between columns)."""
    path = Path(path)
    out = QrelsBuilder(path)
    for number, line in iter_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise InputError(f"expected 4 columns (QID 0 DOCID LEVEL), found {len(parts)}",
                             path=path, line=number)
        qid, _iteration, docid, level = parts
        out.add(qid, docid, parse_int(level, "relevance level", path, number), number)
    return out.qrels


def load_nfcorpus(folder: str | Path, split: str = "test", query_type: str = "titles",
                  grades: str = "2-1-0", name: str = "nfcorpus") -> Collection:
    """One split of the original NFCorpus: its own ``.docs``, one query type, one qrels file.

    Defaults (``test``, ``titles``, ``2-1-0``) are what the peers and BEIR evaluate.
    """
    if split not in SPLITS:
        raise ParameterError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if query_type not in QUERY_TYPES:
        raise ParameterError(f"query_type must be one of {', '.join(QUERY_TYPES)}, "
                             f"got {query_type!r}")
    if grades not in GRADES:
        raise ParameterError(f"grades must be one of {', '.join(GRADES)}, got {grades!r}")
    folder = require_dir(folder, "nfcorpus")
    docs_path = require_file(
        folder, f"{split}.docs", "nfcorpus",
        hint=("the train split of this copy has judgments but no documents; use split "
              "'test' or 'dev'") if split == "train" else "")
    queries_path = require_file(folder, f"{split}.{query_type}.queries", "nfcorpus")
    qrels_path = require_file(folder, f"{split}.{grades}.qrel", "nfcorpus")
    documents = tuple(Document(i, t) for i, t in read_id_text(docs_path, "document"))
    queries = tuple(Query(i, t) for i, t in read_id_text(queries_path, "query"))
    qrels = tuple(read_nfcorpus_qrels(qrels_path))
    all_judged = len({r.qid for r in qrels})
    qids = {q.qid for q in queries}
    qrels = tuple(r for r in qrels if r.qid in qids)
    dropped = all_judged - len({r.qid for r in qrels})
    description = (
        f"NFCorpus, original distribution, read from {folder}: split {split!r}. "
        f"Documents: {split}.docs only (the split's own document partition, not the union "
        f"of splits), ID<TAB>TEXT, text indexed as distributed (already lowercased and "
        f"stop-word filtered). Queries: {split}.{query_type}.queries ({query_type!r} "
        f"type). Judgments: {split}.{grades}.qrel, levels as in the file "
        + ("(2 = direct link, 1 = indirect link; marginal and non-relevant pairs absent). "
           if grades == "2-1-0" else
           "(3 = direct, 2 = indirect, 1 = marginally relevant). ")
        + (f"Judgments of {dropped} queries that have no {query_type!r} query were "
           "left out. " if dropped else "")
        + "Queries without judgments are kept in queries; evaluate over judged_qids."
    )
    return Collection(name, documents, queries, qrels, description)
