"""TREC file formats: qrels, runs, topics (read) and runs (write).

Conventions shared by every reader here:

* Files are read as UTF-8 (a leading byte-order mark is ignored). Lines end at ``\\n``;
  a ``\\r`` before it (CRLF files) is ignored. Line numbers in errors are 1-based.
* Columns are separated by any run of whitespace (``str.split()``); blank lines and
  trailing spaces are fine.
* Ids (query ids, document ids) are kept exactly as written: ``"051"`` stays ``"051"``.
* Every malformed line raises :class:`~retrieval.errors.InputError` whose text is
  ``path:line: what was expected``. A missing or unreadable file, one that is not a
  regular file (``/dev/zero``, a pipe) or one above the input cap
  (:func:`retrieval.safeio.max_input_bytes`, 4 GiB by default) raises ``InputError``
  naming it.

Numbers: a relevance or rank is an ASCII integer (``-1``, ``+3``, ``007``); a score is an
ASCII decimal or exponent number, ``inf`` or ``-inf`` (no NaN, no ``_`` separators).
The fast run reader (:func:`read_run_arrays`) and the line-by-line reader accept
exactly the same files; when the fast path meets anything unusual it hands over to
the line-by-line reader, which reports the first bad line.
"""

from __future__ import annotations

import bisect
import io
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from typing import IO, NamedTuple

import numpy as np

from .errors import InputError, ParameterError
from .keys import factorize, find_duplicate, hash_strings
from .records import Qrel, Query, ScoredDoc
from .safeio import open_input

__all__ = [
    "RunArrays", "read_qrels", "read_run", "read_run_arrays", "read_topics", "write_run",
    "TOPIC_FIELDS",
]

RUN_COLUMNS = "'qid Q0 docid rank score tag'"
QRELS_COLUMNS = "'qid iteration docid relevance'"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_BOM = "\ufeff"


# ---------------------------------------------------------------------------------------
# line reading and number parsing shared by the readers

def _open_binary(path) -> IO[bytes]:
    """A regular file, size-capped (see :mod:`retrieval.safeio`); InputError otherwise."""
    return open_input(path)


def _lines(path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of every line, decoded, without the line ending."""
    with _open_binary(path) as f:
        for number, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                                 f"save the file as UTF-8",
                                 path=path, line=number) from None
            if number == 1 and text.startswith(_BOM):
                text = text[1:]
            if "\x00" in text:
                raise InputError("contains a NUL character (a binary or UTF-16 file?); save the "
                                 "file as UTF-8 text", path=path, line=number)
            yield number, text


def _parse_int(token: str) -> int | None:
    """The integer written in ``token`` (ASCII digits, optional sign), else None."""
    if not token.isascii() or "_" in token:
        return None
    try:
        value = int(token)
    except ValueError:
        return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _parse_float(token: str) -> float | None:
    """The number written in ``token`` (ASCII, no ``_``), else None. NaN is returned."""
    if not token.isascii() or "_" in token:
        return None
    try:
        return float(token)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# qrels

def read_qrels(path) -> list[Qrel]:
    """Read a TREC qrels file: lines ``qid iteration docid relevance``.

    ``relevance`` is an integer and may be negative (judged non-relevant; see
    :mod:`retrieval.evaluation`). The iteration column is ignored. A line with another
    number of columns or a relevance that is not an integer raises :class:`InputError`
    at that line. A judgment repeated with the same relevance counts once (as trec_eval
    and pytrec_eval accept it); a second judgment of the same (qid, docid) with another
    relevance raises :class:`InputError` naming both lines (which one was meant cannot
    be known).
    """
    out: list[Qrel] = []
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    for number, text in _lines(path):
        tokens = text.split()
        if not tokens:
            continue
        if len(tokens) != 4:
            raise InputError(f"expected 4 columns {QRELS_COLUMNS}, found {len(tokens)}",
                             path=path, line=number)
        qid, _, docid, rel_text = tokens
        rel = _parse_int(rel_text)
        if rel is None:
            raise InputError(f"relevance must be an integer, got {rel_text!r} "
                             f"(columns {QRELS_COLUMNS})", path=path, line=number)
        key = (qid, docid)
        first = seen.get(key)
        if first is not None:
            if first[1] == rel:
                continue  # the same judgment again
            raise InputError(f"duplicate judgment of document {docid!r} for query {qid!r} "
                             f"with another relevance: {rel} here, {first[1]} (first at "
                             f"line {first[0]}); keep one of the two lines",
                             path=path, line=number)
        seen[key] = (number, rel)
        out.append(Qrel(qid, docid, rel))
    return out


# ---------------------------------------------------------------------------------------
# runs

class RunArrays(NamedTuple):
    """The columns of a run file used by evaluation, one row per non-blank line."""
    qids: np.ndarray    # str (numpy unicode) array
    docids: np.ndarray  # str array
    scores: np.ndarray  # float64 array


class _Fallback(Exception):
    """The fast reader met something it does not handle; use the line reader."""


def _parse_run_line(tokens: list[str], path, number: int) -> tuple[int, float]:
    if len(tokens) != 6:
        raise InputError(f"expected 6 columns {RUN_COLUMNS}, found {len(tokens)}",
                         path=path, line=number)
    rank = _parse_int(tokens[3])
    if rank is None:
        raise InputError(f"rank (column 4) must be an integer, got {tokens[3]!r} "
                         f"(columns {RUN_COLUMNS})", path=path, line=number)
    score = _parse_float(tokens[4])
    if score is None:
        raise InputError(f"score (column 5) must be a number, got {tokens[4]!r} "
                         f"(columns {RUN_COLUMNS})", path=path, line=number)
    if math.isnan(score):
        raise InputError("score (column 5) is NaN; scores must be numbers",
                         path=path, line=number)
    return rank, score


def _run_columns_slow(path):
    qids: list[str] = []
    docids: list[str] = []
    ranks: list[int] = []
    scores: list[float] = []
    for number, text in _lines(path):
        tokens = text.split()
        if not tokens:
            continue
        rank, score = _parse_run_line(tokens, path, number)
        qids.append(tokens[0])
        docids.append(tokens[2])
        ranks.append(rank)
        scores.append(score)
    return (_str_array(qids), _str_array(docids), np.array(ranks, dtype=np.int64),
            np.array(scores, dtype=np.float64))


def _str_array(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=np.str_) if values else np.zeros(0, dtype="U1")


#: bytes per block of the fast reader (bounded memory for any file size)
BLOCK_BYTES = 32 << 20


def _field_codes(table: np.ndarray, name: str) -> np.ndarray:
    """A string field of a structured array as a 2-D (rows, width) view of its code units."""
    dtype, offset = table.dtype.fields[name][:2]
    unit = np.dtype(np.uint8 if dtype.kind == "S" else np.uint32)
    width = dtype.itemsize // unit.itemsize
    return np.ndarray((table.size, width), dtype=unit, buffer=table, offset=offset,
                      strides=(table.itemsize, unit.itemsize))


def _used_width(codes: np.ndarray) -> int:
    """The length of the longest string in a (rows, width) code view."""
    used = np.flatnonzero(codes.any(axis=0))
    return int(used[-1]) + 1 if used.size else 0


def _copy_codes(out: np.ndarray, field: np.ndarray, width: int) -> None:
    """Copy a (strided) string field into a (rows, width) block of UCS-4 code points."""
    if width == 0:
        return
    packed = field.astype(f"{field.dtype.kind}{width}")  # contiguous, fast
    unit = np.uint8 if field.dtype.kind == "S" else np.uint32
    out[:, :width] = packed.view(unit).reshape(packed.size, width)


def _parse_block(text: str, widths: list[int]):
    """numpy's C parser over one block of whole lines; id widths adapt to the data.

    Returns ``(table, longest qid, longest docid)`` or None for a block without data.
    ASCII blocks are parsed into byte-string fields (faster, 4x smaller); their bytes
    are the code points of the final ``str`` arrays.
    """
    kind = "S" if text.isascii() else "U"
    while True:
        wq, wd = widths
        dtype = [("q", f"{kind}{wq}"), ("i", f"{kind}1"), ("d", f"{kind}{wd}"),
                 ("r", np.int64), ("s", np.float64), ("t", f"{kind}1")]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = np.loadtxt(io.StringIO(text), dtype=dtype, comments=None,
                                   ndmin=1, quotechar=None)
        except (ValueError, TypeError, OverflowError, UnicodeError):
            raise _Fallback from None
        if table.size == 0:
            return None
        lq = _used_width(_field_codes(table, "q"))
        ld = _used_width(_field_codes(table, "d"))
        if lq < wq and ld < wd:  # nothing can have been truncated
            break
        widths[0] = wq * 4 if lq >= wq else wq
        widths[1] = wd * 4 if ld >= wd else wd
    if np.isnan(table["s"]).any():
        raise _Fallback
    return table, lq, ld


def _run_columns_fast(path):
    parts = []
    widths = [16, 32]
    with _open_binary(path) as f:
        first = True
        while True:
            block = f.read(BLOCK_BYTES)
            if not block:
                break
            if not block.endswith(b"\n"):
                block += f.readline()
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                raise _Fallback from None
            if first:
                first = False
                if text.startswith(_BOM):
                    text = text[1:]
            if "\x00" in text:
                raise _Fallback
            part = _parse_block(text, widths)
            if part is not None:
                parts.append(part)
    total = sum(p[0].size for p in parts)
    wq = max([p[1] for p in parts] + [1])
    wd = max([p[2] for p in parts] + [1])
    qids = np.zeros(total, dtype=f"U{wq}")
    docids = np.zeros(total, dtype=f"U{wd}")
    qcodes = qids.view(np.uint32).reshape(total, wq)
    dcodes = docids.view(np.uint32).reshape(total, wd)
    ranks = np.empty(total, dtype=np.int64)
    scores = np.empty(total, dtype=np.float64)
    start = 0
    while parts:  # copy into the result, freeing each block as soon as it is copied
        table, lq, ld = parts.pop(0)
        stop = start + table.size
        _copy_codes(qcodes[start:stop], table["q"], lq)
        _copy_codes(dcodes[start:stop], table["d"], ld)
        ranks[start:stop] = table["r"]
        scores[start:stop] = table["s"]
        start = stop
    return qids, docids, ranks, scores


class RunColumns(NamedTuple):
    """Every column of a run file that carries data, one row per non-blank line."""
    qids: np.ndarray    # str (numpy unicode) array
    docids: np.ndarray  # str array
    ranks: np.ndarray   # int64 array
    scores: np.ndarray  # float64 array


def read_run_columns(path, *, parser: str = "auto") -> RunColumns:
    """The one reader of TREC run files: ``qid Q0 docid rank score tag`` lines as arrays.

    Every line is validated (six columns, integer rank, numeric non-NaN score) with
    ``path:line`` errors. Duplicates (a document twice for a query) are *not* checked
    here: :func:`read_run`, :func:`read_run_arrays` and
    :meth:`retrieval.evaluation.Run.read` check them (the latter while it builds its
    keys, so the strings are hashed once), raising :func:`duplicate_error`.

    ``parser="auto"`` uses numpy's C parser in blocks of :data:`BLOCK_BYTES` (ten million
    lines take seconds, memory bounded by the result) and falls back to the line reader
    for files it cannot take (not UTF-8, NUL bytes, unusual white space); ``"lines"``
    forces the line reader (tests compare the two).
    """
    if parser == "lines":
        return RunColumns(*_run_columns_slow(path))
    if parser != "auto":
        raise ParameterError(f"parser must be 'auto' or 'lines', got {parser!r}")
    try:
        return RunColumns(*_run_columns_fast(path))
    except _Fallback:
        return RunColumns(*_run_columns_slow(path))


def _row_lines(path, rows: Iterable[int]) -> dict[int, int]:
    """Line numbers of the given 0-based data rows (non-blank lines) of a file."""
    wanted = set(rows)
    found: dict[int, int] = {}
    row = -1
    for number, text in _lines(path):
        if not text.split():
            continue
        row += 1
        if row in wanted:
            found[row] = number
            if len(found) == len(wanted):
                break
    return found


def duplicate_error(path, qids, docids, pair) -> InputError:
    """The error for rows ``pair`` (first, second) of a run file that repeat a
    (query, document): names the file, both lines and what a run must hold."""
    first, second = pair
    lines = _row_lines(path, pair)
    return InputError(f"document {str(docids[second])!r} appears twice for query "
                      f"{str(qids[second])!r} (also at line {lines.get(first)}); "
                      f"a run must list each document at most once per query",
                      path=path, line=lines.get(second))


def _unique_columns(path) -> RunColumns:
    columns = read_run_columns(path)
    _, qcodes = factorize(columns.qids)
    pair = find_duplicate(qcodes, hash_strings(columns.docids), columns.docids)
    if pair is not None:
        raise duplicate_error(path, columns.qids, columns.docids, pair)
    return columns


def read_run_arrays(path) -> RunArrays:
    """Read a TREC run fast into numpy arrays (qids, docids: str; scores: float64).

    :func:`read_run_columns` plus the check that no document appears twice for a query,
    with the same ``path:line`` errors as :func:`read_run`.
    """
    columns = _unique_columns(path)
    return RunArrays(columns.qids, columns.docids, columns.scores)


def read_run(path) -> list[ScoredDoc]:
    """Read a TREC run: lines ``qid Q0 docid rank score tag``, as :class:`ScoredDoc`.

    The ``Q0`` and ``tag`` columns are ignored; ``rank`` must be an integer and is kept
    (evaluation ignores it and ranks by score, as trec_eval does). A line with another
    number of columns, a bad rank or score (or NaN), or a document listed twice for
    the same query (trec_eval refuses these too) raises :class:`InputError` naming
    ``path:line`` (for duplicates: both lines). Order of lines is kept.
    """
    qids, docids, ranks, scores = _unique_columns(path)
    return [ScoredDoc(q, d, s, r) for q, d, s, r in
            zip(qids.tolist(), docids.tolist(), scores.tolist(), ranks.tolist())]


_WHITESPACE = re.compile(r"\s")


def _check_id(value, what: str) -> str:
    if not isinstance(value, str):
        raise ParameterError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    if not value or _WHITESPACE.search(value) or "\x00" in value:
        raise ParameterError(f"{what} {value!r} cannot be written to a TREC file: it must "
                             f"be non-empty without whitespace")
    return value


def write_run(file, results: Iterable[ScoredDoc], tag: str) -> int:
    """Write ``results`` as TREC run lines ``qid Q0 docid rank score tag``; return the count.

    ``file`` is a path (created or replaced) or an open text file. Scores are written
    with Python's ``repr`` of the float64 value: the shortest text that reads back to
    exactly the same number (``read_run`` round-trips them bit for bit; ``inf`` and
    ``-inf`` are written as such). ``rank`` is the record's rank when it is >= 1,
    otherwise the 1-based position of the record among those of its query, in the
    order given. A qid, docid or tag that is empty or contains whitespace (it would
    break the columns) raises :class:`ParameterError`, as does a NaN score.
    """
    _check_id(tag, "run tag")
    if isinstance(file, (str, os.PathLike)):
        with open(file, "w", encoding="utf-8", newline="\n") as f:
            return _write_run(f, results, tag)
    return _write_run(file, results, tag)


def _write_run(f, results: Iterable[ScoredDoc], tag: str) -> int:
    positions: dict[str, int] = {}
    count = 0
    buffer: list[str] = []
    for r in results:
        qid = _check_id(r.qid, "query id")
        docid = _check_id(r.docid, "document id")
        score = float(r.score)
        if math.isnan(score):
            raise ParameterError(f"score of document {docid!r} for query {qid!r} is NaN")
        position = positions.get(qid, 0) + 1
        positions[qid] = position
        rank = r.rank if r.rank and r.rank >= 1 else position
        buffer.append(f"{qid} Q0 {docid} {int(rank)} {score!r} {tag}\n")
        count += 1
        if len(buffer) >= 65536:
            f.write("".join(buffer))
            buffer.clear()
    if buffer:
        f.write("".join(buffer))
    return count


# ---------------------------------------------------------------------------------------
# topics

#: the fields of a TREC topic that can make the query text, and the label each may start with
TOPIC_FIELDS = {"title": "topic", "desc": "description", "narr": "narrative"}
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9_-]*)\s*>")
_SPACES = re.compile(r"\s+")


def read_topics(path, format: str, fields: Iterable[str] | str = ("title",)) -> list[Query]:
    """Read topics as :class:`Query` records, in file order.

    ``format`` must be given (no guessing):

    * ``"tsv"``: one ``qid<TAB>text`` per line (blank lines skipped). ``fields`` is
      ignored.
    * ``"trec"``: TREC SGML, ``<top>`` blocks with ``<num>`` (a leading ``Number:`` is
      dropped), ``<title>`` (``Topic:`` dropped), ``<desc>`` (``Description:``) and
      ``<narr>`` (``Narrative:``). Closing tags are optional, as in the real TREC
      files: a field runs to the next tag. Other tags (``<dom>``, ``<con>``...) are
      skipped. ``fields`` (from ``title``, ``desc``, ``narr``) chooses the fields whose
      text, whitespace collapsed, joined by a space, is the query text.

    Errors (``InputError`` at ``path:line``): a tsv line without a tab, an empty query
    id or text, a query id twice, a ``<top>`` without ``<num>`` or without a requested
    field, nested or unclosed ``<top>``.
    """
    if format == "tsv":
        return _read_topics_tsv(path)
    if format == "trec":
        return _read_topics_trec(path, _topic_fields(fields))
    raise ParameterError(f"topics format must be 'trec' or 'tsv', got {format!r}")


def _topic_fields(fields) -> tuple[str, ...]:
    if isinstance(fields, str):
        fields = (fields,)
    fields = tuple(fields)
    if not fields:
        raise ParameterError("fields must name at least one topic field, e.g. ('title',)")
    for name in fields:
        if name not in TOPIC_FIELDS:
            raise ParameterError(f"unknown topic field {name!r}; choose from "
                                 f"{', '.join(TOPIC_FIELDS)}")
    return fields


def _read_topics_tsv(path) -> list[Query]:
    out: list[Query] = []
    seen: dict[str, int] = {}
    for number, text in _lines(path):
        if not text.strip():
            continue
        if "\t" not in text:
            raise InputError("expected 'qid<TAB>text' (no tab found)", path=path, line=number)
        qid, query = text.split("\t", 1)
        qid, query = qid.strip(), query.strip()
        if not qid or _WHITESPACE.search(qid):
            raise InputError(f"query id must be one non-empty token, got {qid!r}",
                             path=path, line=number)
        if not query:
            raise InputError(f"query {qid!r} has no text", path=path, line=number)
        if qid in seen:
            raise InputError(f"query id {qid!r} appears twice (first at line {seen[qid]})",
                             path=path, line=number)
        seen[qid] = number
        out.append(Query(qid, query))
    return out


def _read_topics_trec(path, fields: tuple[str, ...]) -> list[Query]:
    text = "\n".join(line for _, line in _lines(path))
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(line_starts, offset)

    tags = list(_TAG.finditer(text))
    out: list[Query] = []
    seen: dict[str, int] = {}
    current: dict | None = None
    for i, match in enumerate(tags):
        closing, name = match.group(1) == "/", match.group(2).lower()
        line = line_of(match.start())
        if name == "top":
            if not closing:
                if current is not None:
                    raise InputError(f"<top> inside the <top> opened at line "
                                     f"{current['line']} (missing </top>?)", path=path, line=line)
                current = {"line": line, "fields": {}}
            else:
                if current is None:
                    raise InputError("</top> without an opening <top>", path=path, line=line)
                query = _finish_topic(current, fields, path)
                if query.qid in seen:
                    raise InputError(f"topic {query.qid!r} appears twice (first at line "
                                     f"{seen[query.qid]})", path=path, line=current["line"])
                seen[query.qid] = current["line"]
                out.append(query)
                current = None
            continue
        if closing or (name != "num" and name not in TOPIC_FIELDS):
            continue
        if current is None:
            raise InputError(f"<{name}> outside a <top> block", path=path, line=line)
        if name in current["fields"]:
            raise InputError(f"second <{name}> in the topic opened at line {current['line']}",
                             path=path, line=line)
        end = tags[i + 1].start() if i + 1 < len(tags) else len(text)
        current["fields"][name] = (text[match.end():end], line)
    if current is not None:
        raise InputError("<top> is never closed (no </top> before the end of the file)",
                         path=path, line=current["line"])
    return out


def _clean_field(raw: str, label: str) -> str:
    value = _SPACES.sub(" ", raw).strip()
    if value.lower().startswith(label + ":"):
        value = value[len(label) + 1:].strip()
    return value


def _finish_topic(topic: dict, fields: tuple[str, ...], path) -> Query:
    found = topic["fields"]
    if "num" not in found:
        raise InputError("topic has no <num>", path=path, line=topic["line"])
    raw, num_line = found["num"]
    qid = _clean_field(raw, "number")
    if not qid or len(qid.split()) != 1:
        raise InputError(f"<num> must hold one query id, got {qid!r}", path=path, line=num_line)
    parts = []
    for name in fields:
        if name not in found:
            raise InputError(f"topic {qid} has no <{name}>", path=path, line=topic["line"])
        raw, field_line = found[name]
        value = _clean_field(raw, TOPIC_FIELDS[name])
        if not value:
            raise InputError(f"topic {qid} has an empty <{name}>", path=path, line=field_line)
        parts.append(value)
    return Query(qid, " ".join(parts))
