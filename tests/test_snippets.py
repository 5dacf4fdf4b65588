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
