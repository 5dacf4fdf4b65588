"""The :class:`Collection` record and helpers shared by the collection readers.

A collection is documents + queries + relevance judgments, all as the immutable
records of :mod:`retrieval.records`, plus a ``description`` that states which fields
were indexed and every decision the reader took, so that a score computed on it
can be reported honestly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, RetrievalError
from ..reading import decode_bytes
from ..records import Document, Qrel, Query


class CollectionNotFoundError(RetrievalError, LookupError):
    """A collection folder (or one of its files) is not where it was looked for."""


@dataclass(frozen=True)
class Collection:
    """A test collection: documents, queries and judgments, read once, never changed.

    ``qrels`` keeps every judgment line (also non-relevant ones, relevance <= 0), in
    file order. Ids are external strings throughout.
    """

    name: str
    documents: tuple[Document, ...] = field(repr=False)
    queries: tuple[Query, ...] = field(repr=False)
    qrels: tuple[Qrel, ...] = field(repr=False)
    description: str = field(default="", repr=False)
    #: docid -> title for collections whose documents have one (retrieval.fields)
    titles: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attr in ("documents", "queries", "qrels"):
            value = getattr(self, attr)
            if not isinstance(value, tuple):
                object.__setattr__(self, attr, tuple(value))

    def __repr__(self) -> str:
        return (f"Collection({self.name!r}: {len(self.documents)} documents, "
                f"{len(self.queries)} queries, {len(self.judged_qids)} judged, "
                f"{len(self.qrels)} judgments)")

    # -- derived views (computed on demand; the record itself stays small) ----------
    @property
    def docids(self) -> tuple[str, ...]:
        return tuple(d.docid for d in self.documents)

    @property
    def qids(self) -> tuple[str, ...]:
        return tuple(q.qid for q in self.queries)

    @property
    def judged_qids(self) -> frozenset[str]:
        """Query ids with at least one judgment line (relevant or not)."""
        return frozenset(r.qid for r in self.qrels)

    @property
    def relevant_qids(self) -> frozenset[str]:
        """Query ids with at least one relevant (relevance >= 1) judgment."""
        return frozenset(r.qid for r in self.qrels if r.relevance >= 1)

    @property
    def judged_queries(self) -> tuple[Query, ...]:
        """The queries that have judgments, in query order (what evaluation runs on)."""
        judged = self.judged_qids
        return tuple(q for q in self.queries if q.qid in judged)

    def qrels_dict(self) -> dict[str, dict[str, int]]:
        """``{qid: {docid: relevance}}`` (the shape trec_eval/pytrec_eval use)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.qrels:
            out.setdefault(r.qid, {})[r.docid] = r.relevance
        return out

    def unjudged_corpus_judgments(self) -> tuple[Qrel, ...]:
        """The judgments that name a document the collection does not hold (a
        relevant one can never be retrieved, so it lowers recall-based measures)."""
        docids = {d.docid for d in self.documents}
        return tuple(r for r in self.qrels if r.docid not in docids)

    def stats(self) -> dict[str, int]:
        """The counts a README states: documents, queries, judged queries, judgment lines."""
        return {
            "documents": len(self.documents),
            "queries": len(self.queries),
            "judged_queries": len(self.judged_qids),
            "judgments": len(self.qrels),
            "relevant_judgments": sum(1 for r in self.qrels if r.relevance >= 1),
        }


# -- helpers for the readers -----------------------------------------------------------

def require_dir(folder: str | os.PathLike, what: str) -> Path:
    """``folder`` as a Path; CollectionNotFoundError when it is not a folder."""
    path = Path(folder)
    if not path.is_dir():
        raise CollectionNotFoundError(
            f"{what}: no folder at {path}"
            + ("; check the path" if not path.exists()
               else " (it is a file; give the folder holding the files)"))
    return path


def require_file(folder: Path, name: str, what: str, hint: str = "") -> Path:
    """``folder / name``; CollectionNotFoundError naming the expected file when absent."""
    path = folder / name
    if not path.is_file():
        msg = f"{what}: expected the file {name} in {folder}, but {path} does not exist"
        if hint:
            msg += f"; {hint}"
        raise CollectionNotFoundError(msg)
    return path


def read_text(path: Path) -> str:
    """The decoded contents of ``path`` (UTF-8, BOM removed, cp1252 fallback)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path=path) from None
    return decode_bytes(raw)[0]


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` pairs with the line ending (LF or CRLF) removed.

    Lines are split on LF only (a CR elsewhere, or a form feed, stays in the text),
    so the numbers match what an editor shows. A missing final newline is fine.
    """
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        yield number, line


def parse_int(token: str, what: str, path: Path, line: int) -> int:
    """``int(token)`` or InputError at ``path:line`` naming ``what``."""
    try:
        return int(token)
    except ValueError:
        raise InputError(f"{what} must be a whole number, got {token!r}",
                         path=path, line=line) from None


def canonical_number(token: str, what: str, path: Path, line: int) -> str:
    """A numeric id without zero padding (``"01"`` -> ``"1"``), as a string."""
    value = parse_int(token, what, path, line)
    if value < 0:
        raise InputError(f"{what} must not be negative, got {token!r}", path=path, line=line)
    return str(value)


class QrelsBuilder:
    """Collects judgments: a (query, document) pair judged again with the same relevance
    counts once (as trec_eval accepts it); judged again differently, it is an error
    naming both lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.qrels: list[Qrel] = []
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}

    def add(self, qid: str, docid: str, relevance: int, line: int) -> None:
        key = (qid, docid)
        first = self._seen.get(key)
        if first is not None:
            if first[1] == relevance:
                return
            raise InputError(f"query {qid} / document {docid} is judged twice, differently: "
                             f"{relevance} here and {first[1]} on line {first[0]}; keep one "
                             f"of the two lines", path=self.path, line=line)
        self._seen[key] = (line, relevance)
        self.qrels.append(Qrel(qid, docid, relevance))

