"""The SMART family: Cranfield, CISI, MED and CACM.

One field parser reads every ``.I``-record file of these collections:

* A record starts at a line ``.I <number>``; its id is the number without zero
  padding (``.I 001`` -> ``"1"``). A missing or non-numeric number is an InputError.
* A field starts at a line holding a field marker: ``.`` and one of the letters
  ``T A B W X K C N`` (title, authors, bibliography, words/abstract, cross-references,
  keywords, categories, entry note), optionally followed by text on the same line,
  which then belongs to the field. Any other line is text of the current field.
* A repeated field is **appended** to the earlier one (a new line between), never
  overwritten (Cranfield docs 576 and 578 have two ``.W``, doc 240 two ``.A``/``.B``).
* LF and CRLF line endings are both accepted; no ``\\r`` reaches the text. Each field's
  text has its leading and trailing white space removed; inner line breaks are kept.
* Non-blank text before the first ``.I``, or between ``.I`` and the record's first
  field marker, is an InputError naming the file and line. So is a repeated id.

Every field is kept in the parsed :class:`SmartRecord`; the collection readers then
choose which fields make the indexed text. ``.X`` (citation links) and ``.N``,
``.A``, ``.B``, ``.K``, ``.C`` are never indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..records import Document, Qrel, Query
from .base import (Collection, QrelsBuilder, canonical_number, iter_lines, parse_int,
                   require_dir, require_file)

#: field letters that start a field; ``I`` starts a record
FIELD_LETTERS = frozenset("TAWBXKCN")
_MARKER = re.compile(r"^\.([A-Z])(?:[ \t]+(.*?))?[ \t]*$")


@dataclass
class SmartRecord:
    """One ``.I`` record: its id (unpadded), the line of its ``.I`` and its fields."""
    rid: str
    line: int
    raw_id: str
    fields: dict[str, list[str]] = field(default_factory=dict)

    def field_text(self, letter: str) -> str:
        """The text of one field; repeated occurrences joined by a new line."""
        return "\n".join(part for part in self.fields.get(letter, ()) if part)

    def text(self, *letters: str) -> str:
        """The non-empty fields ``letters``, in the order given, joined by new lines."""
        return "\n".join(t for t in (self.field_text(x) for x in letters) if t)


def parse_smart(path: str | Path) -> list[SmartRecord]:
    """Parse a SMART ``.I``-record file into records, in file order (see module doc)."""
    path = Path(path)
    records: list[SmartRecord] = []
    seen: dict[str, int] = {}
    current: SmartRecord | None = None
    letter: str | None = None
    lines: list[str] = []

    def close_field() -> None:
        if current is not None and letter is not None:
            current.fields.setdefault(letter, []).append("\n".join(lines).strip())

    for number, line in iter_lines(path):
        m = _MARKER.match(line) if line.startswith(".") else None
        if m is not None and m.group(1) == "I":
            close_field()
            raw = (m.group(2) or "").strip()
            if not raw:
                raise InputError(".I must be followed by the record number, e.g. '.I 12'",
                                 path=path, line=number)
            if not raw.isdigit():
                raise InputError(f".I must be followed by a whole number, got {raw!r}",
                                 path=path, line=number)
            rid = str(int(raw))
            if rid in seen:
                raise InputError(f"record .I {raw} appears twice (first on line {seen[rid]})",
                                 path=path, line=number)
            seen[rid] = number
            current = SmartRecord(rid, number, raw)
            records.append(current)
            letter, lines = None, []
        elif m is not None and m.group(1) in FIELD_LETTERS:
            if current is None:
                raise InputError(f"field marker .{m.group(1)} before the first .I record",
                                 path=path, line=number)
            close_field()
            letter = m.group(1)
            lines = [m.group(2)] if m.group(2) else []
        elif letter is not None:
            lines.append(line)
        elif line.strip():
            where = ("before the first .I record" if current is None
                     else f"in record .I {current.raw_id} before its first field marker")
            raise InputError(f"text {where}: {line.strip()[:40]!r}", path=path, line=number)
    close_field()
    if not records:
        raise InputError("no .I records found; not a SMART collection file", path=path)
    return records


# -- judgments ---------------------------------------------------------------------------

def _columns(path: Path, expected: int, form: str):
    """``(line, columns)`` of a white-space separated file; blank lines are skipped."""
    for number, line in iter_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != expected:
            raise InputError(f"expected {expected} columns ({form}), found {len(parts)}",
                             path=path, line=number)
        yield number, parts


#: Cranfield code -> relevance (Cleverdon: 1 = complete answer ... 4 = minimum interest,
#: 5 = no interest; -1 marks the one judged non-relevant document of each query)
CRANFIELD_GRADES = {1: 4, 2: 3, 3: 2, 4: 1, 5: 0, -1: -1}


def read_cranfield_qrels(path: str | Path) -> list[Qrel]:
    """``cranqrel``: ``qid docid code``; codes mapped by :data:`CRANFIELD_GRADES`."""
    path = Path(path)
    out = QrelsBuilder(path)
    for number, (q, d, code) in _columns(path, 3, "qid docid grade"):
        qid = canonical_number(q, "query number", path, number)
        docid = canonical_number(d, "document number", path, number)
        grade = parse_int(code, "grade", path, number)
        if grade not in CRANFIELD_GRADES:
            raise InputError(f"grade must be one of 1, 2, 3, 4, 5 or -1, got {code!r}",
                             path=path, line=number)
        out.add(qid, docid, CRANFIELD_GRADES[grade], number)
    return out.qrels


def read_smart_binary_qrels(path: str | Path) -> list[Qrel]:
    """``qid docid x y`` (CISI.REL, MED.REL.OLD, CACM qrels.text): every line relevant (1).

    Ids are compared as integers: ``01`` is query ``1``.
    """
    path = Path(path)
    out = QrelsBuilder(path)
    for number, (q, d, _a, _b) in _columns(path, 4, "qid docid 0 0"):
        out.add(canonical_number(q, "query number", path, number),
                canonical_number(d, "document number", path, number), 1, number)
    return out.qrels


def read_med_qrels(path: str | Path) -> list[Qrel]:
    """``MED.REL``, TREC form ``qid 0 docid rel``, ids compared as integers."""
    path = Path(path)
    out = QrelsBuilder(path)
    for number, (q, _iter, d, rel) in _columns(path, 4, "qid 0 docid relevance"):
        out.add(canonical_number(q, "query number", path, number),
                canonical_number(d, "document number", path, number),
                parse_int(rel, "relevance", path, number), number)
    return out.qrels


# -- the four collections ----------------------------------------------------------------

def _documents(records: list[SmartRecord], letters: str) -> tuple[Document, ...]:
    return tuple(Document(r.rid, r.text(*letters)) for r in records)


def _titles(records: list[SmartRecord]) -> dict[str, str]:
    """The ``.T`` field of each record (the title field; the text keeps it too)."""
    return {r.rid: r.field_text("T") for r in records}


def _queries(records: list[SmartRecord], letters: str) -> tuple[Query, ...]:
    return tuple(Query(r.rid, r.text(*letters)) for r in records)


def load_cranfield(folder: str | Path, name: str = "cranfield") -> Collection:
    """Cranfield 1400 (Glasgow distribution): ``cran.all.1400``, ``cran.qry``, ``cranqrel``."""
    folder = require_dir(folder, "cranfield")
    docs = parse_smart(require_file(folder, "cran.all.1400", "cranfield"))
    qrecs = parse_smart(require_file(folder, "cran.qry", "cranfield"))
    qrels = read_cranfield_qrels(require_file(folder, "cranqrel", "cranfield"))
    queries = tuple(Query(str(position), r.text("W"))
                    for position, r in enumerate(qrecs, start=1))
    description = (
        f"Cranfield 1400 read from {folder}. Documents: .T + .W (title, then abstract; "
        ".A and .B not indexed; repeated fields appended; docs 471 and 995 have an empty "
        ".W and keep their title). Queries: .W of cran.qry, with ids = position 1..N in "
        "cran.qry (not the padded, non-sequential .I numbers), as cranqrel numbers them. "
        "Judgments (cranqrel, Cleverdon's scale, 1 = complete answer): relevance = 5 - "
        "code, so code 1 -> 4, 2 -> 3, 3 -> 2, 4 -> 1; code -1 -> -1 (judged not "
        "relevant); code 5 (no interest), absent here, would map to 0. Relevant = "
        "relevance >= 1."
    )
    return Collection(name, _documents(docs, "TW"), queries, tuple(qrels), description,
                      titles=_titles(docs))


def load_cisi(folder: str | Path, name: str = "cisi") -> Collection:
    """CISI (Glasgow distribution): ``CISI.ALL``, ``CISI.QRY``, ``CISI.REL``."""
    folder = require_dir(folder, "cisi")
    docs = parse_smart(require_file(folder, "CISI.ALL", "cisi"))
    qrecs = parse_smart(require_file(folder, "CISI.QRY", "cisi"))
    qrels = read_smart_binary_qrels(require_file(folder, "CISI.REL", "cisi"))
    description = (
        f"CISI read from {folder}. Documents: .T + .W (not .A, .B, .K, .C, and never the "
        ".X citation links). Queries: .T + .W of CISI.QRY (.A and .B of the 55 long "
        "queries not indexed); ids = .I numbers. Judgments: CISI.REL 'qid docid 0 "
        "0.000000', every line relevant (relevance 1); ids compared as integers. "
        "CISI.BLN (Boolean queries) is not read. Queries without judgments are kept in "
        "queries; evaluate over judged_qids."
    )
    return Collection(name, _documents(docs, "TW"), _queries(qrecs, "TW"), tuple(qrels),
                      description, titles=_titles(docs))


def load_med(folder: str | Path, name: str = "med") -> Collection:
    """MEDLINE (Glasgow distribution): ``MED.ALL``, ``MED.QRY``, ``MED.REL``."""
    folder = require_dir(folder, "med")
    docs = parse_smart(require_file(folder, "MED.ALL", "med"))
    qrecs = parse_smart(require_file(folder, "MED.QRY", "med"))
    qrels = read_med_qrels(require_file(folder, "MED.REL", "med"))
    description = (
        f"MED read from {folder}. Documents: .W (the only text field). Queries: .W of "
        "MED.QRY; ids = .I numbers. Judgments: MED.REL only (TREC form 'qid 0 docid 1'); "
        "MED.REL.OLD, the same pairs in the older form, is not read."
    )
    return Collection(name, _documents(docs, "W"), _queries(qrecs, "W"), tuple(qrels),
                      description)


def load_cacm(folder: str | Path, name: str = "cacm") -> Collection:
    """CACM (SMART version): ``cacm.all``, ``query.text``, ``qrels.text``."""
    folder = require_dir(folder, "cacm")
    docs = parse_smart(require_file(folder, "cacm.all", "cacm"))
    qrecs = parse_smart(require_file(folder, "query.text", "cacm"))
    qrels = read_smart_binary_qrels(require_file(folder, "qrels.text", "cacm"))
    description = (
        f"CACM read from {folder}. Documents: .T + .W (title and, for the 1587 documents "
        "that have one, the abstract; not .B, .A, .K, .C, .N, and never the .X citation "
        "data). Queries: .W of query.text (not .A or .N). Judgments: qrels.text "
        "'01 1410 0 0', every line relevant (1); ids compared as integers, so query '01' "
        "is query '1'. Queries without judgments are kept in queries; evaluate over "
        "judged_qids."
    )
    return Collection(name, _documents(docs, "TW"), _queries(qrecs, "W"), tuple(qrels),
                      description, titles=_titles(docs))
