"""Other languages: Snowball stemmers and stop lists per language, diacritic folding, CJK
bigrams, the language stored in the index and used for queries; the stemmer made once
per process, safely from many threads."""

from __future__ import annotations


import pytest

from retrieval import Analyzer, Index, ParameterError, Searcher
from retrieval.analysis import (FOLDING_LANGUAGES, LANGUAGES, SNOWBALL_STOPLISTS,
                                TOKENIZER_V1, fold_diacritics, stopword_set, tokenize)

# small texts written for these tests; each query must find its own document first
CASES = {
    "german": ([("haus", "Die alten Häuser am Fluss wurden im Winter renoviert."),
                ("auto", "Der Wagen fährt schnell über die Autobahn nach Berlin."),
                ("buch", "Sie liest ein Buch über die Geschichte der Stadt.")],
               [("Haus", "haus"), ("Bücher Geschichte", "buch"), ("Wagens", "auto")]),
    "french": ([("maison", "Les maisons du village sont construites en pierre."),
                ("eleve", "Les élèves étudient la géographie à l'école."),
                ("mer", "La mer était calme et les bateaux rentraient au port.")],
               [("maison", "maison"), ("eleves ecole", "eleve"), ("bateau", "mer")]),
    "spanish": ([("cancion", "Las canciones populares se cantan en las fiestas."),
                 ("ciudad", "La ciudad tiene muchos edificios antiguos y plazas."),
                 ("rio", "El río cruza el valle hasta llegar al océano.")],
                [("canción", "cancion"), ("edificio", "ciudad"), ("rio oceano", "rio")]),
    "russian": ([("dom", "Старые дома стоят на берегу реки."),
                 ("kniga", "Она читает интересную книгу о истории."),
                 ("les", "В лесу растут высокие деревья.")],
                [("дом", "dom"), ("книги", "kniga"), ("дерево", "les")]),
}

CJK_DOCS = [("zh-ir", "信息检索是从大量文档中找到相关信息的技术。"),
            ("zh-weather", "今天天气很好，我们去公园散步。"),
            ("ja-ir", "情報検索システムは文書を探すための仕組みです。"),
            ("ja-food", "東京のラーメンはとてもおいしいです。")]


def _top(index, query):
    hits = Searcher(index).search(query, k=3)
    return hits[0].docid if hits else None


@pytest.mark.parametrize("language", sorted(CASES))
def test_a_query_finds_its_document(language, tmp_path):
    docs, queries = CASES[language]
    index = Index.build(docs, analyzer=Analyzer(language=language))
    index.save(tmp_path / "x.idx")
    reopened = Index.open(tmp_path / "x.idx")
    assert reopened.analyzer.language == language  # stored in the manifest
    assert reopened.manifest["analyzer"]["language"] == language
    for query, want in queries:
        assert _top(reopened, query) == want, (language, query)


def test_german_haus_matches_haeuser_only_with_the_german_analyzer():
    german = Analyzer(language="german")
    assert german.analyze("Haus") == german.analyze("Häuser") == ["haus"]
    assert Analyzer().analyze("Häuser") != Analyzer().analyze("Haus")


def test_stop_lists_are_the_languages():
    assert "und" in stopword_set("snowball", "german")
    assert "und" not in stopword_set("smart")
    assert Analyzer(language="french").analyze("le chat et la souris") == ["chat", "sour"]
    assert Analyzer(language="russian").analyze("и в дом") == ["дом"]
    assert len(stopword_set("snowball", "spanish")) > 250


def test_every_language_builds_an_analyzer():
    for language in LANGUAGES:
        a = Analyzer(language=language)
        assert a.stopwords_ == ("smart" if language == "english" else
                                "snowball" if language in SNOWBALL_STOPLISTS else "none")
        assert Analyzer.from_config(a.config()) == a
        a.analyze("text 123 Текст ÄÖÜ ñ")


def test_folding_per_language():
    assert fold_diacritics("canción") == "cancion"
    assert fold_diacritics("straße") == "straße"
    assert Analyzer(language="spanish").analyze("canción") == \
        Analyzer(language="spanish").analyze("cancion")
    # Swedish å/ä/ö are letters of their own: not folded
    assert "swedish" not in FOLDING_LANGUAGES
    sv = Analyzer(language="swedish", stopwords="none", stemmer="none")
    assert sv.analyze("år") != sv.analyze("ar")
    # English keeps its accents, as before
    assert Analyzer().analyze("café") == ["café"]


def test_validation_names_the_choices():
    with pytest.raises(ParameterError, match="choose one of"):
        Analyzer(language="klingon")
    with pytest.raises(ParameterError, match="porter stemmer is for English"):
        Analyzer(stemmer="porter", language="german")
    with pytest.raises(ParameterError, match="no Snowball stop list for arabic"):
        Analyzer(stopwords="snowball", language="arabic")


def test_cjk_bigrams_let_a_chinese_and_a_japanese_query_match():
    index = Index.build(CJK_DOCS, analyzer=Analyzer())
    assert _top(index, "检索") == "zh-ir"
    assert _top(index, "天气") == "zh-weather"
    assert _top(index, "検索") == "ja-ir"
    assert _top(index, "ラーメン") == "ja-food"
    assert tokenize("检索") == ["检索"]


def test_an_index_of_the_first_tokenizer_is_still_read():
    a = Analyzer.from_config({"tokenizer": TOKENIZER_V1, "stopwords": "none",
                              "stemmer": "none"})
    assert a.analyze("信息检索") == ["信息检索"]  # no bigrams, as when it was built
    assert a.config()["tokenizer"] == TOKENIZER_V1


def test_eight_threads_open_and_search_at_once(tmp_path):
    """Issue 14.5: Index.open in several threads at once raised ``nltk.__spec__ is
    None`` when each Analyzer rebuilt the nltk stand-in modules. Run in a fresh process,
    where no stemmer was made yet."""
    import subprocess
    import sys
    Index.build([("a", "glaciers move slowly"), ("b", "rivers carry water")]).save(
        tmp_path / "t.idx")
    code = f"""
import threading
from retrieval import Index, Searcher
errors, results = [], []
barrier = threading.Barrier(8)
def work():
    try:
        barrier.wait()
        index = Index.open({str(tmp_path / "t.idx")!r})
        results.append(Searcher(index).search("glacier", k=1)[0].docid)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
assert results == ["a"] * 8, results
"""
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_digit_tokens_skip_the_stemmer_because_every_stemmer_keeps_them():
    """Analyzer.term returns an ASCII digit run without stemming; that is what every
    NLTK stemmer (each Snowball language and Porter) returns for it."""
    import random

    from retrieval.analysis import stemmer_function
    rng = random.Random(0)
    samples = [str(i) for i in range(0, 1200)] + [
        "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
        for _ in range(800)]
    for language in LANGUAGES:
        stem = stemmer_function("snowball", language)
        assert all(stem(s) == s for s in samples), language
    porter = stemmer_function("porter", "english")
    assert all(porter(s) == s for s in samples)
    assert Analyzer(stopwords="none").term("2024") == "2024"
