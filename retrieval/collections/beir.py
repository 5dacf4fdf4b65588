"""The BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

* ``corpus.jsonl``: one JSON object per line with ``"_id"`` (string or integer),
  ``"text"`` and optionally ``"title"``. Indexed text = title + " " + text (just the
  text when the title is absent or empty).
* ``queries.jsonl``: objects with ``"_id"`` and ``"text"``.
* ``qrels/<split>.tsv``: ``query-id<TAB>corpus-id<TAB>score`` with a header line
  (recognised by its first column ``query-id``; a file without header is accepted).

As in BEIR's own loader, only the queries judged in the chosen split are kept (the
queries file lists the queries of every split). Blank lines are skipped; a line that is
not a JSON object with the required keys, a repeated id, or a bad qrels row is an
InputError at ``path:line``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError, ParameterError
from ..records import Document, Qrel, Query
from .base import (Collection, CollectionNotFoundError, QrelsBuilder, iter_lines,
                   parse_int, require_dir, require_file)


def _id(record: dict, key: str, path: Path, line: int) -> str:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise InputError(f'"{key}" must be a non-empty string or an integer', path=path,
                         line=line)
    return str(value)


def _text(record: dict, key: str, path: Path, line: int, required: bool) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(f'"{key}" must be a string', path=path, line=line)
    return value


def read_jsonl_records(path: str | Path, id_key: str, kind: str, example: str):
    """``(line, object)`` for each non-blank line; InputError on bad JSON or a repeated id."""
    path = Path(path)
    seen: dict[str, int] = {}
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg}); each line must be one {kind} "
                             f"object like {example}", path=path, line=number) from None
        if not isinstance(record, dict):
            raise InputError(f"each line must be a JSON object like {example}", path=path,
                             line=number)
        rid = _id(record, id_key, path, number)
        if rid in seen:
            raise InputError(f"{kind} id {rid!r} appears twice (first on line {seen[rid]})",
                             path=path, line=number)
        seen[rid] = number
        yield number, rid, record


def read_beir_corpus(path: str | Path) -> list[Document]:
    path = Path(path)
    out = []
    for number, rid, record in read_jsonl_records(
            path, "_id", "document", '{"_id": "d1", "title": "...", "text": "..."}'):
        title = _text(record, "title", path, number, required=False).strip()
        body = _text(record, "text", path, number, required=True).strip()
        out.append(Document(rid, f"{title} {body}".strip()))
    return out


def read_beir_queries(path: str | Path) -> list[Query]:
    path = Path(path)
    return [Query(rid, _text(record, "text", path, number, required=True).strip())
            for number, rid, record in read_jsonl_records(
                path, "_id", "query", '{"_id": "q1", "text": "..."}')]


def read_beir_qrels(path: str | Path) -> list[Qrel]:
    """``query-id<TAB>corpus-id<TAB>score`` rows (header optional)."""
    path = Path(path)
    out = QrelsBuilder(path)
    first = True
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if first:
            first = False
            if parts and parts[0].lower() == "query-id":
                continue
        if len(parts) != 3:
            raise InputError(f"expected 3 TAB-separated columns (query-id corpus-id "
                             f"score), found {len(parts)}", path=path, line=number)
        qid, docid, score = parts
        if not qid or not docid:
            raise InputError("empty query-id or corpus-id", path=path, line=number)
        out.add(qid, docid, parse_int(score, "score", path, number), number)
    return out.qrels


def load_beir(folder: str | Path, split: str = "test", name: str | None = None) -> Collection:
    """A BEIR dataset folder; ``split`` picks ``qrels/<split>.tsv`` (default ``test``)."""
    folder = require_dir(folder, "beir")
    if not isinstance(split, str) or not split or "/" in split or "\\" in split:
        raise ParameterError(f"split must be a plain name such as 'test', got {split!r}")
    corpus_path = require_file(folder, "corpus.jsonl", "beir")
    queries_path = require_file(folder, "queries.jsonl", "beir")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise CollectionNotFoundError(
            f"beir: no judgments for split {split!r}: {qrels_path} does not exist"
            + (f"; available splits: {', '.join(available)}" if available
               else "; the folder has no qrels/<split>.tsv files"))
    documents = tuple(read_beir_corpus(corpus_path))
    all_queries = read_beir_queries(queries_path)
    qrels = tuple(read_beir_qrels(qrels_path))
    judged = {r.qid for r in qrels}
    queries = tuple(q for q in all_queries if q.qid in judged)
    missing = judged - {q.qid for q in queries}
    if missing:
        raise InputError(f"{len(missing)} judged queries are not in {queries_path.name}, "
                         f"e.g. {sorted(missing)[0]!r}", path=qrels_path)
    description = (
        f"BEIR layout read from {folder}, split {split!r}. Documents: corpus.jsonl, "
        "indexed text = title + ' ' + text. Queries: queries.jsonl 'text', only the "
        f"{len(queries)} of {len(all_queries)} judged in qrels/{split}.tsv (as BEIR "
        "does). Judgments: qrels/{split}.tsv scores as given (>= 1 relevant)."
        .replace("{split}", split)
    )
    return Collection(name or folder.name, documents, queries, qrels, description)
