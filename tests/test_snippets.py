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
