"""Collection readers: counts on the shared collections, every quirk, and error paths."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from retrieval.collections import (COLLECTION_NAMES, FORMATS, Collection,
                                   CollectionNotFoundError, load_collection, parse_smart)
from retrieval.errors import InputError, ParameterError, RetrievalError
from retrieval.records import Document, Qrel, Query


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# =====================================================================================
# (a) the shared collections
# =====================================================================================

EXPECTED = {
    #            docs  queries judged judgments
    "cranfield": (1400, 225, 225, 1837),
    "cisi": (1460, 112, 76, 3114),
    "med": (1033, 30, 30, 696),
    "cacm": (3204, 64, 52, 796),
    "nfcorpus": (3162, 325, 323, 12334),
}

_cache: dict[str, Collection] = {}


def shared(name: str, root: Path) -> Collection:
    if name not in _cache:
        _cache[name] = load_collection(name, root=root)
    return _cache[name]


@pytest.mark.collections
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_readme(collections_dir, name):
    c = shared(name, collections_dir)
    docs, queries, judged, lines = EXPECTED[name]
    assert isinstance(c, Collection) and c.name == name
    assert len(c.documents) == docs
    assert len(c.queries) == queries
    assert len(c.judged_qids) == judged
    assert len(c.qrels) == lines
    assert c.stats()["judgments"] == lines
    assert all(isinstance(d, Document) for d in c.documents[:5])
    assert all(isinstance(q, Query) for q in c.queries[:5])
    assert all(isinstance(r, Qrel) for r in c.qrels[:5])


@pytest.mark.collections
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ids_consistent_and_no_carriage_returns(collections_dir, name):
    c = shared(name, collections_dir)
    docids = c.docids
    assert len(set(docids)) == len(docids)
    assert len(set(c.qids)) == len(c.qids)
    assert {r.docid for r in c.qrels} <= set(docids), "every judged document exists"
    assert c.judged_qids <= set(c.qids), "every judged query exists"
    assert len({(r.qid, r.docid) for r in c.qrels}) == len(c.qrels)
    assert not any("\r" in d.text for d in c.documents)
    assert not any("\r" in q.text for q in c.queries)
    assert all(q.text.strip() for q in c.queries)
    assert c.description
    assert {q.qid for q in c.judged_queries} == c.judged_qids


@pytest.mark.collections
@pytest.mark.parametrize("name", ["cranfield", "cisi", "med", "cacm"])
def test_smart_ids_are_unpadded_numbers(collections_dir, name):
    c = shared(name, collections_dir)
    for ids in (c.docids, c.qids, [r.qid for r in c.qrels], [r.docid for r in c.qrels]):
        assert all(i.isdigit() and str(int(i)) == i for i in ids)


@pytest.mark.collections
def test_cranfield_grades_mapped_and_described(collections_dir):
    c = shared("cranfield", collections_dir)
    # README (file codes): -1: 225, 1: 128, 2: 387, 3: 734, 4: 363; relevance = 5 - code
    assert Counter(r.relevance for r in c.qrels) == {-1: 225, 4: 128, 3: 387, 2: 734, 1: 363}
    per_query = Counter(r.qid for r in c.qrels if r.relevance == -1)
    assert set(per_query.values()) == {1} and len(per_query) == 225
    assert "5 - code" in c.description
    # first line of cranqrel is "1 184 2 " -> relevance 3
    assert c.qrels[0] == Qrel("1", "184", 3)


@pytest.mark.collections
def test_cranfield_query_ids_by_position(collections_dir):
    c = shared("cranfield", collections_dir)
    assert c.qids == tuple(str(i) for i in range(1, 226))
    q = dict(c.queries)
    # cran.qry: .I 001, 002, 004 ... 365; the third query is .I 004, the last .I 365
    assert q["3"].startswith("what problems of heat conduction in composite slabs")
    assert q["225"] == ("what design factors can be used to control lift-drag ratios at mach\n"
                        "numbers above 5 .")


@pytest.mark.collections
def test_cranfield_empty_and_repeated_fields(collections_dir):
    folder = collections_dir / "cranfield"
    records = {r.rid: r for r in parse_smart(folder / "cran.all.1400")}
    docs = dict(shared("cranfield", collections_dir).documents)
    # 471 and 995: empty .W; they are still documents, and keep their title
    # (in this copy the .T, .A and .B of both are empty too, so the text is empty)
    for docid in ("471", "995"):
        assert records[docid].field_text("W") == ""
        assert docid in docs
        assert docs[docid] == records[docid].field_text("T")
    # 576 and 578: two .W markers, appended (not overwritten)
    for docid in ("576", "578"):
        assert len(records[docid].fields["W"]) == 2
        first, second = records[docid].fields["W"]
        assert first and second
        assert first in docs[docid] and second in docs[docid]
    assert docs["576"].endswith("blades is included .")
    assert "stage loading margin" in docs["576"]
    # 240 repeats .A/.B; both kept (neither indexed)
    assert len(records["240"].fields["A"]) == 2 and len(records["240"].fields["B"]) == 2
    assert "dean r. chapman" not in docs["240"]
    # documents are title + abstract; .A/.B not indexed
    assert docs["1"].startswith("experimental investigation of the aerodynamics of a\n"
                                "wing in a slipstream .")
    assert "brenckman" not in docs["1"]


@pytest.mark.collections
def test_cisi_citations_and_authors_not_text(collections_dir):
    c = shared("cisi", collections_dir)
    docs = dict(c.documents)
    assert docs["1"].startswith("18 Editions of the Dewey Decimal Classifications\n")
    assert docs["1"].endswith("librarianship in this country and abroad.")
    assert "Comaromi" not in docs["1"]
    records = {r.rid: r for r in parse_smart(collections_dir / "cisi" / "CISI.ALL")}
    assert "92\t1\t1" in records["1"].field_text("X")
    # no citation line (docid<TAB>n<TAB>docid) anywhere in the indexed text
    import re
    citation = re.compile(r"^\d+\t\d+\t\d+$", re.M)
    assert not any(citation.search(d.text) for d in c.documents)
    assert sum(1 for r in c.qrels if r.relevance == 1) == 3114
    # queries: .T + .W, not .A / .B
    qrecs = {r.rid: r for r in parse_smart(collections_dir / "cisi" / "CISI.QRY")}
    with_title = [r for r in qrecs.values() if r.fields.get("T")]
    assert len(with_title) == 55
    q = dict(c.queries)
    for r in with_title:
        assert q[r.rid].startswith(r.field_text("T"))
        assert r.field_text("W") in q[r.rid]
        assert r.field_text("A") not in q[r.rid]


@pytest.mark.collections
def test_med_uses_med_rel(collections_dir):
    c = shared("med", collections_dir)
    assert c.qrels[0] == Qrel("1", "13", 1)
    assert "MED.REL.OLD" in c.description
    assert dict(c.documents)["1"].startswith("correlation between maternal and fetal plasma")


@pytest.mark.collections
def test_cacm_zero_padded_query_ids(collections_dir):
    c = shared("cacm", collections_dir)
    assert c.qrels[0] == Qrel("1", "1410", 1)  # "01 1410  0 0"
    assert not any(r.qid.startswith("0") for r in c.qrels)
    assert "1" in c.judged_qids and "64" in c.judged_qids
    q = dict(c.queries)
    assert q["2"] == "I am interested in articles written either by Prieve or Udo Pooch"
    docs = dict(c.documents)
    assert docs["1"] == "Preliminary Report-International Algebraic Language"  # no .B/.A/.N/.X
    assert sum(1 for r in parse_smart(collections_dir / "cacm" / "cacm.all")
               if r.field_text("W")) == 1587


@pytest.mark.collections
def test_nfcorpus_defaults_and_options(collections_dir):
    c = shared("nfcorpus", collections_dir)
    docs = dict(c.documents)
    assert c.docids[-1] == "MED-5363"  # last line of test.docs has no newline
    assert docs["MED-5363"].endswith("decreased prevalence depressive status")
    assert dict(c.queries)["PLAIN-1008"] == "deafness"
    assert Counter(r.relevance for r in c.qrels) == {2: 576, 1: 11758}
    dev = load_collection("nfcorpus", root=collections_dir, split="dev")
    assert (len(dev.documents), len(dev.judged_qids), len(dev.qrels)) == (3193, 324, 11385)
    graded = load_collection("nfcorpus", root=collections_dir, grades="3-2-1")
    assert (len(graded.judged_qids), len(graded.qrels)) == (325, 15820)
    allq = load_collection(collections_dir / "nfcorpus", format="nfcorpus", query_type="all")
    assert len(allq.queries) == 325 and len(allq.qrels) == 12334
    with pytest.raises(CollectionNotFoundError, match="train.docs"):
        load_collection("nfcorpus", root=collections_dir, split="train")
    with pytest.raises(ParameterError, match="query_type"):
        load_collection("nfcorpus", root=collections_dir, query_type="bogus")


@pytest.mark.collections
def test_shared_paths_with_explicit_format(collections_dir):
    c = load_collection(collections_dir / "med", format="med")
    assert len(c.documents) == 1033
    with pytest.raises(ParameterError, match="format="):
        load_collection(collections_dir / "med")


# =====================================================================================
# (b) small files written here
# =====================================================================================

SMART_DOCS = """.I 1
.T
A title
.A
someone
.W
first part
of the abstract
.X
2\t5\t1
3\t5\t1
.I 02
.T
second title
.W
once
.B
bib
.W
twice
.A
author one
.A
author two
.I 3
.T inline title
.W
"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_smart_parser_repeated_fields_and_crlf(tmp_path, newline):
    path = write(tmp_path / "docs.all", SMART_DOCS, newline)
    records = parse_smart(path)
    assert [r.rid for r in records] == ["1", "2", "3"]
    assert records[1].raw_id == "02"
    one, two, three = records
    assert one.field_text("W") == "first part\nof the abstract"
    assert one.field_text("X") == "2\t5\t1\n3\t5\t1"
    assert two.fields["W"] == ["once", "twice"]
    assert two.field_text("A") == "author one\nauthor two"
    assert two.text("T", "W") == "second title\nonce\ntwice"
    assert three.field_text("T") == "inline title" and three.field_text("W") == ""
    for r in records:
        for parts in r.fields.values():
            assert not any("\r" in p for p in parts)


def test_smart_cisi_format_folder(tmp_path):
    folder = tmp_path / "mini"
    write(folder / "CISI.ALL", SMART_DOCS, "\r\n")
    write(folder / "CISI.QRY", ".I 1\n.T\nq title\n.A\nq author\n.W\nq words\n.B\nq bib\n"
          ".I 2\n.W\nonly words\n", "\r\n")
    write(folder / "CISI.REL", "     1      1\t0\t0.000000\n     1      2\t0\t0.000000\n",
          "\r\n")
    c = load_collection(folder, format="cisi")
    docs = dict(c.documents)
    assert docs == {"1": "A title\nfirst part\nof the abstract",
                    "2": "second title\nonce\ntwice", "3": "inline title"}
    assert dict(c.queries) == {"1": "q title\nq words", "2": "only words"}
    assert c.qrels == (Qrel("1", "1", 1), Qrel("1", "2", 1))
    assert c.judged_qids == {"1"}


def test_smart_cranfield_format_folder(tmp_path):
    folder = tmp_path / "cran"
    write(folder / "cran.all.1400", SMART_DOCS)
    write(folder / "cran.qry", ".I 001\n.W\nfirst query\n.I 004\n.W\nsecond query\n", "\r\n")
    write(folder / "cranqrel", "1 1 2 \n1 2  -1\n2 3 1\n2 1 4")  # no final newline
    c = load_collection(folder, format="cranfield")
    assert dict(c.queries) == {"1": "first query", "2": "second query"}
    assert c.qrels == (Qrel("1", "1", 3), Qrel("1", "2", -1), Qrel("2", "3", 4),
                       Qrel("2", "1", 1))
    write(folder / "cranqrel", "1 1 2\n1 2 7\n")
    with pytest.raises(InputError) as err:
        load_collection(folder, format="cranfield")
    assert str(err.value).startswith(f"{folder / 'cranqrel'}:2: ")
    write(folder / "cranqrel", "1 1 2\n1 2\n")
    with pytest.raises(InputError, match=r"cranqrel:2: expected 3 columns"):
        load_collection(folder, format="cranfield")
    write(folder / "cranqrel", "1 1 2\n1 1 3\n")
    with pytest.raises(InputError, match=r"cranqrel:2: .*judged twice"):
        load_collection(folder, format="cranfield")


def test_smart_cacm_format_folder_padded_qrels(tmp_path):
    folder = tmp_path / "cacm"
    write(folder / "cacm.all", SMART_DOCS)
    write(folder / "query.text", ".I 1\n.W\n query one\n.N\n 1. someone\n.I 2\n.W\nq2\n.A\nX\n")
    write(folder / "qrels.text", "01 3  0 0\n01 02 0 0\n")
    c = load_collection(folder, format="cacm")
    assert dict(c.queries) == {"1": "query one", "2": "q2"}
    assert c.qrels == (Qrel("1", "3", 1), Qrel("1", "2", 1))
    assert dict(c.documents)["1"] == "A title\nfirst part\nof the abstract"


def test_smart_med_format_folder(tmp_path):
    folder = tmp_path / "med"
    write(folder / "MED.ALL", ".I 1\n.W\nalpha beta\n.I 2\n.W\ngamma\n", "\r\n")
    write(folder / "MED.QRY", ".I 1\n.W\nalpha\n", "\r\n")
    write(folder / "MED.REL", "1 0 2 1\n")
    c = load_collection(folder, format="med")
    assert c.documents == (Document("1", "alpha beta"), Document("2", "gamma"))
    assert c.qrels == (Qrel("1", "2", 1),)


@pytest.mark.parametrize("text, line, message", [
    ("stray text\n.I 1\n.W\nx\n", 1, "before the first .I"),
    ("\n\n.I 1\n.W\nx\n.I abc\n.W\ny\n", 6, "whole number"),
    (".I 1\n.W\nx\n.I\n.W\ny\n", 4, "record number"),
    (".I 1\n.W\nx\n.I 01\n.W\ny\n", 4, "appears twice"),
    (".W\nx\n", 1, "before the first .I"),
    (".I 1\nno marker yet\n.W\nx\n", 2, "before its first field marker"),
])
def test_smart_malformed_input(tmp_path, text, line, message):
    path = write(tmp_path / "bad.all", text, "\r\n")
    with pytest.raises(InputError) as err:
        parse_smart(path)
    assert err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert message in str(err.value)


def test_smart_empty_file(tmp_path):
    path = write(tmp_path / "empty.all", "\n\n")
    with pytest.raises(InputError, match="no .I records"):
        parse_smart(path)


def test_nfcorpus_small_folder(tmp_path):
    folder = tmp_path / "nf"
    write(folder / "test.docs", "MED-1\talpha beta\nMED-2\tgamma")
    write(folder / "test.titles.queries", "PLAIN-1\tbeta\nPLAIN-2\tdelta\n")
    write(folder / "test.vid-desc.queries", "PLAIN-2\tdelta\n")
    write(folder / "test.2-1-0.qrel", "PLAIN-1\t0\tMED-1\t2\nPLAIN-2\t0\tMED-2\t1")
    c = load_collection(folder, format="nfcorpus")
    assert c.documents == (Document("MED-1", "alpha beta"), Document("MED-2", "gamma"))
    assert c.qrels == (Qrel("PLAIN-1", "MED-1", 2), Qrel("PLAIN-2", "MED-2", 1))
    vid = load_collection(folder, format="nfcorpus", query_type="vid-desc")
    assert vid.qids == ("PLAIN-2",) and vid.judged_qids == {"PLAIN-2"}
    write(folder / "test.docs", "MED-1\talpha beta\nMED-2 gamma\n")
    with pytest.raises(InputError, match=r"test\.docs:2: .*no TAB"):
        load_collection(folder, format="nfcorpus")
    with pytest.raises(ParameterError, match="split"):
        load_collection(folder, format="nfcorpus", split="validation")


def make_beir(folder: Path) -> Path:
    write(folder / "corpus.jsonl",
          '{"_id": "d1", "title": "Glaciers", "text": "Ice that flows."}\n'
          '\n'
          '{"_id": 2, "text": "No title here."}\n'
          '{"_id": "d3", "title": "", "text": "Empty title."}\n')
    write(folder / "queries.jsonl",
          '{"_id": "q1", "text": "ice flow"}\n{"_id": "q2", "text": "unjudged in test"}\n'
          '{"_id": "q3", "text": "title"}\n')
    write(folder / "qrels" / "test.tsv",
          "query-id\tcorpus-id\tscore\nq1\td1\t1\nq3\t2\t0\nq3\td3\t2\n")
    write(folder / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\nq2\td1\t1\n")
    return folder


def test_beir_layout(tmp_path):
    folder = make_beir(tmp_path / "scifact")
    c = load_collection(folder, format="beir")
    assert c.name == "scifact"
    assert c.documents == (Document("d1", "Glaciers Ice that flows."),
                           Document("2", "No title here."), Document("d3", "Empty title."))
    assert c.qids == ("q1", "q3")  # only the queries judged in the split
    assert c.qrels == (Qrel("q1", "d1", 1), Qrel("q3", "2", 0), Qrel("q3", "d3", 2))
    assert c.relevant_qids == {"q1", "q3"}
    dev = load_collection(folder, format="beir", split="dev")
    assert dev.qids == ("q2",)
    with pytest.raises(CollectionNotFoundError, match="available splits: dev, test"):
        load_collection(folder, format="beir", split="train")


def test_beir_malformed_json_line(tmp_path):
    folder = make_beir(tmp_path / "b")
    corpus = folder / "corpus.jsonl"
    write(corpus, '{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": "broken"\n')
    with pytest.raises(InputError) as err:
        load_collection(folder, format="beir")
    assert str(err.value).startswith(f"{corpus}:2: not valid JSON")
    write(corpus, '{"_id": "d1", "text": "ok"}\n["not", "an object"]\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:2: .*JSON object"):
        load_collection(folder, format="beir")
    write(corpus, '{"_id": "d1", "text": "ok"}\n{"text": "no id"}\n')
    with pytest.raises(InputError, match=r'corpus\.jsonl:2: "_id"'):
        load_collection(folder, format="beir")
    write(corpus, '{"_id": "d1", "text": "ok"}\n{"_id": "d1", "text": "again"}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:2: .*appears twice"):
        load_collection(folder, format="beir")
    write(corpus, '{"_id": "d1", "text": "ok"}\n')
    write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    with pytest.raises(InputError, match=r"test\.tsv:2: score must be a whole number"):
        load_collection(folder, format="beir")


def test_generic_trio_tsv_topics(tmp_path):
    folder = tmp_path / "trio"
    write(folder / "documents.jsonl",
          '{"id": "a", "text": "alpha beta"}\n{"id": 7, "text": "gamma", "extra": 1}\n')
    write(folder / "topics.tsv", "1\talpha\n2\tgamma delta\n")
    write(folder / "qrels.txt", "1 0 a 1\n1 0 7 0\n")
    c = load_collection(folder, format="trec")
    assert c.name == "trio"
    assert c.documents == (Document("a", "alpha beta"), Document("7", "gamma"))
    assert c.queries == (Query("1", "alpha"), Query("2", "gamma delta"))
    assert c.qrels == (Qrel("1", "a", 1), Qrel("1", "7", 0))
    assert c.judged_qids == {"1"} and c.relevant_qids == {"1"}
    # a malformed documents line is reported with its line
    write(folder / "documents.jsonl", '{"id": "a", "text": "alpha"}\n{"id": "b", "text": \n')
    with pytest.raises(InputError, match=r"documents\.jsonl:2: "):
        load_collection(folder, format="trec")


def test_generic_trio_trec_topics(tmp_path):
    folder = tmp_path / "trio"
    write(folder / "documents.jsonl", '{"id": "a", "text": "alpha beta"}\n')
    write(folder / "topics.txt",
          "<top>\n<num> Number: 301\n<title> alpha things\n\n<desc> Description:\n"
          "Find alpha.\n\n<narr> Narrative:\nAnything.\n</top>\n")
    write(folder / "qrels.txt", "301 0 a 1\n")
    c = load_collection(folder, format="trec")
    assert [q.qid for q in c.queries] == ["301"]
    assert c.queries[0].text.strip() == "alpha things"
    write(folder / "topics.tsv", "1\talpha\n")
    with pytest.raises(InputError, match="both topics.tsv and topics.txt"):
        load_collection(folder, format="trec")


def test_generic_trio_missing_files(tmp_path):
    folder = tmp_path / "trio"
    folder.mkdir()
    with pytest.raises(CollectionNotFoundError, match="documents.jsonl"):
        load_collection(folder, format="trec")
    write(folder / "documents.jsonl", '{"id": "a", "text": "alpha"}\n')
    with pytest.raises(CollectionNotFoundError, match="topics.tsv"):
        load_collection(folder, format="trec")


def make_sample(folder: Path) -> Path:
    write(folder / "docs" / "geology" / "glaciers.txt", "Glaciers flow.\nSlowly.\n")
    write(folder / "docs" / "geology" / "volcanoes.txt", "Volcanoes erupt.")
    write(folder / "docs" / "space" / "mars.txt", "Mars is red. Café.")
    write(folder / "queries.tsv", "q1\tglacier flow\nq2\tred planet\n")
    write(folder / "qrels.txt", "q1 0 geology/glaciers.txt 1\nq2 0 space/mars.txt 2\n")
    return folder


def test_sample_layout(tmp_path):
    folder = make_sample(tmp_path / "sample")
    c = load_collection(folder, format="sample")
    assert dict(c.documents) == {"geology/glaciers.txt": "Glaciers flow.\nSlowly.\n",
                                 "geology/volcanoes.txt": "Volcanoes erupt.",
                                 "space/mars.txt": "Mars is red. Café."}
    assert c.queries == (Query("q1", "glacier flow"), Query("q2", "red planet"))
    assert c.qrels == (Qrel("q1", "geology/glaciers.txt", 1), Qrel("q2", "space/mars.txt", 2))


def test_shipped_sample_is_consistent(sample_dir):
    c = load_collection("sample")
    assert c.name == "sample"
    assert len(c.documents) >= 150
    assert len(c.queries) >= 20
    docids = set(c.docids)
    missing = sorted({r.docid for r in c.qrels} - docids)
    assert not missing, f"judged documents not in docs/: {missing[:5]}"
    assert c.judged_qids <= set(c.qids)
    assert all("\\" not in d for d in docids)


# -- names, formats and missing folders -----------------------------------------------

def test_names_and_formats():
    assert COLLECTION_NAMES == ("cranfield", "cisi", "med", "cacm", "nfcorpus", "sample")
    assert set(FORMATS) == {"cranfield", "cisi", "med", "cacm", "nfcorpus", "beir", "trec",
                            "sample"}


def test_unknown_name_lists_valid_names():
    with pytest.raises(ParameterError) as err:
        load_collection("robust04")
    message = str(err.value)
    assert "robust04" in message
    for name in COLLECTION_NAMES:
        assert name in message


def test_path_without_format_is_not_guessed(tmp_path):
    folder = make_beir(tmp_path / "b")
    for where in (folder, str(folder)):
        with pytest.raises(ParameterError, match="pass format="):
            load_collection(where)


def test_unknown_format_and_option(tmp_path):
    with pytest.raises(ParameterError, match="valid formats: .*beir"):
        load_collection(tmp_path, format="csv")
    with pytest.raises(ParameterError, match="takes no option split"):
        load_collection(tmp_path, format="cranfield", split="dev")


def test_missing_root_names_where_it_looked(tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(CollectionNotFoundError) as err:
        load_collection("cisi", root=nowhere)
    message = str(err.value)
    assert isinstance(err.value, RetrievalError)
    assert str(nowhere / "cisi") in message and "RETRIEVAL_COLLECTIONS" in message


def test_missing_collection_folder_under_env_root(tmp_path, monkeypatch):
    (tmp_path / "cranfield").mkdir()
    monkeypatch.setenv("RETRIEVAL_COLLECTIONS", str(tmp_path))
    with pytest.raises(CollectionNotFoundError) as err:
        load_collection("med")
    assert str(tmp_path / "med") in str(err.value)
    assert "RETRIEVAL_COLLECTIONS" in str(err.value)
    # the folder exists but a file is missing: the file is named
    with pytest.raises(CollectionNotFoundError, match="cran.all.1400"):
        load_collection("cranfield")


def test_missing_path_with_format(tmp_path):
    with pytest.raises(CollectionNotFoundError, match="no folder"):
        load_collection(tmp_path / "absent", format="beir")


def test_collection_record_is_frozen_and_small_repr():
    c = Collection("x", [Document("d", "t")], [Query("q", "t")], [Qrel("q", "d", 1)], "desc")
    assert isinstance(c.documents, tuple) and isinstance(c.qrels, tuple)
    with pytest.raises(AttributeError):
        c.name = "y"
    assert repr(c) == "Collection('x': 1 documents, 1 queries, 1 judged, 1 judgments)"
    assert c.qrels_dict() == {"q": {"d": 1}}
    assert c.stats() == {"documents": 1, "queries": 1, "judged_queries": 1, "judgments": 1,
                         "relevant_judgments": 1}


def test_json_dumps_of_stats_is_plain(tmp_path):
    c = load_collection(make_beir(tmp_path / "b"), format="beir")
    assert json.loads(json.dumps(c.stats()))["documents"] == 3


# -- property: whatever the fields and line endings, the parser gives them back ----------

from hypothesis import given, settings, strategies as st  # noqa: E402

_line = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n",
                                       exclude_categories=("Cs",)),
                max_size=20).filter(lambda s: not s.startswith(".") and s.strip() == s)
_field = st.tuples(st.sampled_from("TAWBXKCN"),
                   st.lists(_line, max_size=3).map(lambda ls: "\n".join(ls).strip()))
_record = st.lists(_field, min_size=1, max_size=5)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(records=st.lists(_record, min_size=1, max_size=4), crlf=st.booleans())
def test_smart_parser_round_trip(tmp_path_factory, records, crlf):
    lines = []
    for number, fields in enumerate(records, start=1):
        lines.append(f".I {number}")
        for letter, text in fields:
            lines.append(f".{letter}")
            if text:
                lines.append(text)
    newline = "\r\n" if crlf else "\n"
    path = tmp_path_factory.mktemp("rt") / "x.all"
    path.write_bytes("\n".join(lines).replace("\n", newline).encode("utf-8"))
    parsed = parse_smart(path)
    assert [r.rid for r in parsed] == [str(i) for i in range(1, len(records) + 1)]
    for fields, rec in zip(records, parsed):
        expected: dict[str, list[str]] = {}
        for letter, text in fields:
            expected.setdefault(letter, []).append(text)
        assert rec.fields == expected
