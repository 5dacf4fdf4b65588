from retrieval import Analyzer
from retrieval.snippets import make_snippet


def test_window_around_densest_matches():
    text = " ".join(["filler"] * 50) + " glaciers move and a glacier moved " + " ".join(["tail"] * 50)
    snip = make_snippet(text, {"glacier", "move"}, Analyzer(), width=8)
    assert snip.startswith("… ") and snip.endswith(" …")
    assert "glaciers move and a glacier moved" in snip


def test_highlight_marks_only_matches():
    snip = make_snippet("Rivers move; rocks stay.", {"move"}, Analyzer(),
                        highlight=lambda w: f"[{w}]")
    assert snip == "Rivers [move]; rocks stay."


def test_empty_text():
    assert make_snippet("", {"x"}, Analyzer()) == ""
    assert make_snippet("!!!", {"x"}, Analyzer()) == "!!!"


def test_max_length_counts_visible_characters_only():
    text = "glacier " * 40
    snip = make_snippet(text, {"glacier"}, Analyzer(), highlight=lambda w: f"\x1b[1m{w}\x1b[0m",
                        max_length=30)
    visible = snip.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert len(visible) <= 30 and visible.endswith("…") and "\x1b[1m" in snip


# -- the match is always shown (issue 17.6) ------------------------------------------------

import numpy as np  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from retrieval.snippets import snippet  # noqa: E402

_FILLER = st.lists(st.sampled_from(["the", "glacial", "ice", "moves", "slowly,", "across",
                                    "valleys", "—", "and", "carves", "rock.", "Under",
                                    "pressure", "(deep)", "layers", "flow", "\n\n"]),
                   max_size=120)


def _check(text, terms, analyzer, want_words):
    for max_length in range(20, 201):
        snip = snippet(text, terms, analyzer, max_length=max_length)
        shown = [snip.text[a:b] for a, b in snip.matches]
        assert shown, (max_length, snip)
        assert all(analyzer.term(w.lower()) in terms for w in shown), (max_length, snip)
        assert any(w in want_words for w in shown)
        assert len(snip.text) <= max_length, (max_length, snip.text)


def test_snippet_shows_the_match_for_every_width():
    """The issue's case: "wombat" appended to a long file is shown at every width."""
    text = ("Glaciers are rivers of ice. " * 40) + "A wombat was seen."
    a = Analyzer()
    _check(text, {a.term("wombat")}, a, {"wombat"})
    assert "wombat" in make_snippet(text, {a.term("wombat")}, a, max_length=60)


@settings(max_examples=40, deadline=None)
@given(_FILLER, _FILLER, st.sampled_from(["wombat", "Wombats", "WOMBAT"]), _FILLER)
def test_snippet_always_holds_a_match(before, middle, word, after):
    a = Analyzer()
    text = " ".join(before + [word] + middle + ["platypus"] + after)
    terms = {a.term("wombat"), a.term("platypus")}
    _check(text, terms, a, {word, "platypus"})


def test_offsets_point_at_the_matches_and_the_cluster_is_centred():
    a = Analyzer()
    text = " ".join(["filler"] * 30 + ["wombat", "x", "wombat"] + ["tail"] * 30)
    snip = snippet(text, {"wombat"}, a, width=11)
    assert [snip.text[x:y] for x, y in snip.matches] == ["wombat", "wombat"]
    words = snip.text.split()
    i, j = words.index("wombat"), len(words) - 1 - words[::-1].index("wombat")
    assert abs(i - (len(words) - 1 - j)) <= 1         # as many words before as after
    assert text[snip.start:snip.end].split()[0] == "filler"


def test_cjk_bigram_matches_merge_and_are_not_duplicated():
    a = Analyzer()
    text = "今天天气很好。信息检索是一门学问。"
    snip = snippet(text, {"检索", "信息"}, a)
    assert snip.text == text
    assert [snip.text[x:y] for x, y in snip.matches] == ["信息", "检索"] or \
        [snip.text[x:y] for x, y in snip.matches] == ["信息检索"]


def test_a_cluster_too_long_keeps_one_whole_match():
    a = Analyzer()
    text = "wombat " + "x " * 40 + "wombat"
    snip = snippet(text, {"wombat"}, a, width=60, max_length=20)
    assert [snip.text[x:y] for x, y in snip.matches] == ["wombat"]
    assert len(snip.text) <= 20
    long_word = "w" * 50
    snip = snippet(f"a {long_word} b", {long_word}, Analyzer("none", "none"), max_length=20)
    assert long_word in snip.text                     # never cut through a match


def test_search_json_carries_the_snippet_and_its_offsets(tmp_path, capsys):
    import json

    from retrieval import Index
    from retrieval.cli import main
    text = ("Glaciers are rivers of ice. " * 20) + "A wombat was seen near the glacier."
    Index.build([("a", text), ("b", "nothing here")]).save(tmp_path / "x.idx")
    assert main(["search", str(tmp_path / "x.idx"), "wombat", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    snip = result["snippet"]
    assert [snip["text"][a:b] for a, b in snip["matches"]] == ["wombat"]
    assert main(["search", str(tmp_path / "x.idx"), "wombat", "--format", "json",
                 "--no-snippets"]) == 0
    assert "snippet" not in json.loads(capsys.readouterr().out)["results"][0]
