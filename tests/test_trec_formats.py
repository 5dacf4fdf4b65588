"""TREC file formats: qrels, runs (fast and line-by-line readers), topics, run writing."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval import trec
from retrieval.errors import InputError, ParameterError
from retrieval.records import Qrel, Query, ScoredDoc
from retrieval.trec import read_qrels, read_run, read_run_arrays, read_topics, write_run


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def error_of(func, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        func(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------------
# qrels

def test_qrels_basic_whitespace_crlf_blank_lines(tmp_path):
    path = write(tmp_path, "q.txt", "\ufeff1 0 d1 1\r\n\r\n  1\t0   d2 0   \r\n2 Q0 d1 -1\n\n2 0 d3 2")
    assert read_qrels(path) == [Qrel("1", "d1", 1), Qrel("1", "d2", 0), Qrel("2", "d1", -1),
                                Qrel("2", "d3", 2)]


@pytest.mark.parametrize("line, expected", [
    ("1 0 d1", "expected 4 columns"),
    ("1 0 d1 1 extra", "expected 4 columns"),
    ("1 0 d1 1.0", "relevance must be an integer, got '1.0'"),
    ("1 0 d1 yes", "relevance must be an integer"),
    ("1 0 d1 1_0", "relevance must be an integer"),
])
def test_qrels_malformed_line_names_path_and_line(tmp_path, line, expected):
    path = write(tmp_path, "q.txt", f"1 0 d0 1\n\n{line}\n")
    err = error_of(read_qrels, path)
    assert err.line == 3 and err.path == str(path)
    assert str(err).startswith(f"{path}:3: ") and expected in str(err)


def test_qrels_duplicate_judgment_names_both_lines(tmp_path):
    path = write(tmp_path, "q.txt", "1 0 d1 1\n1 0 d2 0\n2 0 d1 1\n1 0 d1 0\n")
    err = error_of(read_qrels, path)
    assert err.line == 4 and "first at line 1" in str(err) and "'d1'" in str(err)


def test_missing_and_directory_files_are_input_errors(tmp_path):
    err = error_of(read_qrels, tmp_path / "nope.txt")
    assert "nope.txt" in str(err) and "no such file" in str(err)
    assert "directory" in str(error_of(read_run, tmp_path))


def test_invalid_utf8_is_reported_at_its_line(tmp_path):
    path = write(tmp_path, "q.txt", b"1 0 d1 1\n1 0 d\xff 1\n")
    err = error_of(read_qrels, path)
    assert err.line == 2 and "UTF-8" in str(err)


# ---------------------------------------------------------------------------------------
# runs

RUN = "q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 1.5e0 tag\n\nq2 Q0 d1 1 -inf tag\n"


def test_read_run_records_and_arrays(tmp_path):
    path = write(tmp_path, "r.run", RUN)
    assert read_run(path) == [ScoredDoc("q1", "d1", 2.5, 1), ScoredDoc("q1", "d2", 1.5, 2),
                              ScoredDoc("q2", "d1", -math.inf, 1)]
    arrays = read_run_arrays(path)
    assert arrays.qids.tolist() == ["q1", "q1", "q2"]
    assert arrays.docids.tolist() == ["d1", "d2", "d1"]
    assert arrays.scores.dtype == np.float64 and arrays.scores.tolist() == [2.5, 1.5, -math.inf]


def test_read_run_crlf_trailing_spaces_tabs_and_bom(tmp_path):
    path = write(tmp_path, "r.run", "\ufeffq1\tQ0 d1 1 3 t  \r\n   \r\nq1 Q0  d2\t2 2 t\r\n")
    assert [(r.qid, r.docid, r.score) for r in read_run(path)] == [("q1", "d1", 3.0),
                                                                   ("q1", "d2", 2.0)]
    assert read_run_arrays(path).docids.tolist() == ["d1", "d2"]


def test_empty_run_file(tmp_path):
    path = write(tmp_path, "r.run", "\n\n")
    assert read_run(path) == []
    assert read_run_arrays(path).qids.size == 0


@pytest.mark.parametrize("line, expected", [
    ("q1 Q0 d9 3 1.0", "expected 6 columns 'qid Q0 docid rank score tag', found 5"),
    ("q1 Q0 d9 3 1.0 t extra", "found 7"),
    ("q1 Q0 d9 three 1.0 t", "rank (column 4) must be an integer, got 'three'"),
    ("q1 Q0 d9 3.0 1.0 t", "rank (column 4) must be an integer"),
    ("q1 Q0 d9 3 high t", "score (column 5) must be a number, got 'high'"),
    ("q1 Q0 d9 3 1_0 t", "score (column 5) must be a number"),
    ("q1 Q0 d9 3 nan t", "NaN"),
    ("q1 Q0 d9\r3 1.0 t", None),  # a lone CR is whitespace inside the line: this is valid
])
def test_run_malformed_line_reported_by_both_readers(tmp_path, line, expected):
    path = write(tmp_path, "r.run", f"q1 Q0 d1 1 2 t\n\nq1 Q0 d2 2 1 t\n{line}\nq2 Q0 d1 1 1 t\n")
    if expected is None:
        assert len(read_run(path)) == 4 and read_run_arrays(path).docids[2] == "d9"
        return
    for reader in (read_run, read_run_arrays):
        err = error_of(reader, path)
        assert err.line == 4 and str(err).startswith(f"{path}:4: ")
        assert expected in str(err)


def test_run_duplicate_document_names_both_lines(tmp_path):
    path = write(tmp_path, "r.run", "q1 Q0 d1 1 3 t\nq2 Q0 d1 1 3 t\nq1 Q0 d2 2 2 t\n\n"
                                    "q1 Q0 d1 3 1 t\n")
    for reader in (read_run, read_run_arrays):
        err = error_of(reader, path)
        assert err.line == 5 and "also at line 1" in str(err) and "'d1'" in str(err)


def test_fast_reader_blocks_and_widths(tmp_path, monkeypatch):
    """Small blocks: ids longer than the initial widths, a bad line late in the file."""
    monkeypatch.setattr(trec, "BLOCK_BYTES", 64)
    long_q, long_d = "Q" * 40, "D" * 300
    lines = [f"q{i % 7} Q0 doc{i} {i} {i / 3!r} t" for i in range(200)]
    lines[150] = f"{long_q} Q0 {long_d} 1 0.5 t"
    path = write(tmp_path, "r.run", "\n".join(lines) + "\n")
    arrays = read_run_arrays(path)
    slow = trec.read_run_columns(path, parser="lines")
    assert arrays.qids.tolist() == slow[0].tolist() and arrays.qids[150] == long_q
    assert arrays.docids.tolist() == slow[1].tolist() and arrays.docids[150] == long_d
    assert arrays.scores.tolist() == slow[3].tolist()
    lines[173] = "q1 Q0 docX 1 0.5"
    path = write(tmp_path, "bad.run", "\n".join(lines) + "\n")
    assert error_of(read_run_arrays, path).line == 174


def test_non_ascii_ids(tmp_path):
    path = write(tmp_path, "r.run", "qé Q0 dôc 1 1 t\nqé Q0 ü\u00a0x 2 0.5 t\n")
    # U+00A0 is whitespace for str.split(): the second line has 7 columns
    assert error_of(read_run_arrays, path).line == 2
    path = write(tmp_path, "r.run", "qé Q0 dôc 1 1 t\nq\u4e2d Q0 文書 2 0.5 t\n")
    assert read_run_arrays(path).docids.tolist() == ["dôc", "文書"]
    assert [r.qid for r in read_run(path)] == ["qé", "q\u4e2d"]


_TOKEN_CHARS = st.sampled_from(list("abQ0._-+eE1239") + ["inf", "nan", "é", "\u00a0", "\t",
                                                         "\r", "\x0b", " "])
_LINE = st.lists(_TOKEN_CHARS, min_size=0, max_size=25).map("".join)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINE, min_size=0, max_size=6), valid=st.lists(
    st.tuples(st.sampled_from(["q1", "q2", "é"]), st.sampled_from(["d1", "d2", "d3", "D"]),
              st.integers(-5, 5), st.floats(allow_nan=False)), max_size=6))
def test_fast_and_line_readers_agree(tmp_path, lines, valid):
    """Whatever the bytes, both readers accept the same files with the same values, or
    report the same first bad line."""
    text = [f"{q} Q0 {d} {r} {s!r} t" for q, d, r, s in valid] + lines
    path = write(tmp_path, "h.run", "\n".join(text) + "\n")
    try:
        slow = trec.read_run_columns(path, parser="lines")
    except InputError as exc:
        with pytest.raises(InputError) as info:
            trec.read_run_columns(path)
        assert info.value.line == exc.line
        return
    fast = trec.read_run_columns(path)
    for a, b in zip(fast, slow):
        assert a.tolist() == b.tolist()


# ---------------------------------------------------------------------------------------
# writing runs

def test_write_run_round_trips_scores_exactly(tmp_path):
    rng = np.random.default_rng(5)
    scores = np.concatenate([rng.normal(size=50) * 10.0 ** rng.integers(-300, 300, 50),
                             [0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, math.inf,
                              -math.inf, 1e16, 123456789.123456789]])
    records = [ScoredDoc(f"q{i % 3}", f"d{i}", float(s)) for i, s in enumerate(scores)]
    path = tmp_path / "out.run"
    assert write_run(path, records, "myrun") == len(records)
    back = read_run(path)
    assert [r.score for r in back] == [float(s) for s in scores]
    assert [r.docid for r in back] == [r.docid for r in records]
    # ranks default to the position within the query, in the order given
    assert [r.rank for r in back[:6]] == [1, 1, 1, 2, 2, 2]
    assert path.read_text().splitlines()[0].split()[1::4] == ["Q0", "myrun"]


def test_write_run_keeps_given_ranks_and_accepts_file_objects():
    out = io.StringIO()
    write_run(out, [ScoredDoc("q", "a", 2.0, 7), ScoredDoc("q", "b", 1.0)], "t")
    assert out.getvalue() == "q Q0 a 7 2.0 t\nq Q0 b 2 1.0 t\n"


@pytest.mark.parametrize("record, tag", [
    (ScoredDoc("q 1", "d", 1.0), "t"), (ScoredDoc("q", "d\t2", 1.0), "t"),
    (ScoredDoc("q", "", 1.0), "t"), (ScoredDoc("q", "d\u00a0x", 1.0), "t"),
    (ScoredDoc("q", "d", 1.0), "my run"), (ScoredDoc("q", "d", 1.0), ""),
    (ScoredDoc("q", "d", math.nan), "t"),
])
def test_write_run_rejects_unwritable_values(record, tag):
    with pytest.raises(ParameterError):
        write_run(io.StringIO(), [record], tag)


# ---------------------------------------------------------------------------------------
# topics

TOPICS = """\
<top>
<num> Number: 051
<dom> Domain: International Economics
<title> Topic: Airbus   Subsidies

<desc> Description:
Document will discuss government assistance
to Airbus.

<narr> Narrative:
To be relevant, a document must cite
specific assistance.
</top>

<TOP>
<NUM>52</NUM>
<TITLE>South African Sanctions</TITLE>
<DESC>Description: Sanctions against South Africa.</DESC>
<NARR>Narrative: Any sanction.</NARR>
</TOP>
"""


def test_topics_trec_unclosed_tags_and_labels(tmp_path):
    path = write(tmp_path, "topics.txt", TOPICS)
    assert read_topics(path, "trec") == [Query("051", "Airbus Subsidies"),
                                         Query("52", "South African Sanctions")]
    assert read_topics(path, format="trec", fields=("title", "desc")) == [
        Query("051", "Airbus Subsidies Document will discuss government assistance to Airbus."),
        Query("52", "South African Sanctions Sanctions against South Africa.")]
    assert read_topics(path, "trec", fields="narr")[0].text == \
        "To be relevant, a document must cite specific assistance."


def test_topics_trec_crlf(tmp_path):
    path = write(tmp_path, "topics.txt", TOPICS.replace("\n", "\r\n"))
    assert read_topics(path, "trec")[1] == Query("52", "South African Sanctions")


@pytest.mark.parametrize("text, line, expected", [
    ("<top>\n<title> x\n</top>\n", 1, "no <num>"),
    ("<top>\n<num> 1\n<title> x\n", 1, "never closed"),
    ("<top>\n<num> 1\n<title> x\n<top>\n<num> 2\n</top>", 4, "inside the <top> opened at line 1"),
    ("</top>\n", 1, "without an opening"),
    ("<top>\n<num> 1\n</top>\n", 1, "has no <title>"),
    ("<top>\n<num> 1\n<title>\n</top>\n", 3, "empty <title>"),
    ("<top>\n<num> 1 2\n<title> x\n</top>\n", 2, "one query id"),
    ("<top><num>1<title>x</top>\n\n<top><num>1<title>y</top>\n", 3, "appears twice"),
    ("<title> x\n", 1, "outside a <top>"),
])
def test_topics_trec_errors(tmp_path, text, line, expected):
    path = write(tmp_path, "topics.txt", text)
    err = error_of(read_topics, path, "trec")
    assert err.line == line and expected in str(err)


def test_topics_tsv(tmp_path):
    path = write(tmp_path, "q.tsv", "1\tairbus subsidies\r\n\n2\t  tabs\tinside \n")
    assert read_topics(path, "tsv") == [Query("1", "airbus subsidies"), Query("2", "tabs\tinside")]


@pytest.mark.parametrize("text, expected", [
    ("1 no tab here\n", "no tab"), ("\tquery\n", "query id"), ("1\t \n", "no text"),
    ("1\ta\n1\tb\n", "first at line 1"),
])
def test_topics_tsv_errors(tmp_path, text, expected):
    path = write(tmp_path, "q.tsv", text)
    err = error_of(read_topics, path, "tsv")
    assert expected in str(err) and err.line == text.count("\n")


def test_topics_parameters(tmp_path):
    path = write(tmp_path, "q.tsv", "1\ta\n")
    with pytest.raises(ParameterError, match="'trec' or 'tsv'"):
        read_topics(path, "auto")
    with pytest.raises(ParameterError, match="unknown topic field"):
        read_topics(path, "trec", fields=("title", "summary"))
    with pytest.raises(ParameterError):
        read_topics(path, "trec", fields=())
