"""Snippets and match offsets for the API, fast enough for a results page.

Tokens follow the analyzer's documented rule — a token is a maximal run of letters and
digits (``[^\\W_]+``), NFC-normalised and lowercased before analysis — so the spans here
are those of :func:`retrieval.analysis.iter_token_spans` (a test checks it on the sample
corpus). The difference is the cost: the analyzer is asked once per *distinct* surface
token of a document (a set, built by one ``re.findall``) that begins with a query
term's first letter, not once per token, and a token's hit is then a set lookup. On the synthetic 100k corpus (≈ 170 tokens a document)
this makes a page of ten snippets ≈ 10× cheaper than :func:`retrieval.snippets.make_snippet`
(measured with ``scripts/bench_serve.py``: 43 → 4 ms a page under load 13).

The snippet is the window of ``WINDOW`` consecutive tokens holding the most matches (the
earliest on ties, as :func:`~retrieval.snippets.make_snippet` picks it), cut to at most
``max_chars`` visible characters by dropping tokens from its end, white space collapsed,
with "… " / " …" where the document goes on. Offsets are ``[start, end)`` code-point
offsets into the returned text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from itertools import islice

import numpy as np

from ..analysis import contains_cjk, iter_token_spans
from ..snippets import snippet as general_snippet

#: the analyzer's token rule (README, "Analyzer"): runs of letters and digits
TOKEN = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
#: tokens in a snippet window (as retrieval.snippets.make_snippet's default width)
WINDOW = 30


def matching_forms(text: str, terms: Collection[str], analyzer, tokens=None) -> set[str]:
    """The surface tokens of ``text`` (or of its ``tokens``, when already split) whose
    index term is one of ``terms``.

    Only tokens whose first (normalised, lowercased) character is the first character of
    a query term are analysed: the stemmers (Snowball, Porter) only rewrite a word's end
    and never its first letter (tested over every token of the sample corpus), and a stop
    word is no term at all, so the others cannot match. That skips the stemmer for
    about nine tokens in ten.
    """
    if not terms:
        return set()
    term = analyzer.term
    initials = {t[0] for t in terms if t}
    out = set()
    for t in set(TOKEN.findall(text) if tokens is None else tokens):
        low = t.lower()
        if low[0] in initials or not low.isascii():
            if term(unicodedata.normalize("NFC", low)) in terms:
                out.add(t)
    return out


def _merged(spans) -> list[list[int]]:
    """Overlapping or touching ``[start, end)`` spans joined (CJK bigrams overlap)."""
    out: list[list[int]] = []
    for s, e in spans:
        if out and s < out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def term_matches(text: str, terms: Collection[str], analyzer) -> list[list[int]]:
    """``[start, end)`` of every token of ``text`` whose index term is in ``terms``.

    Text holding CJK characters is split by the analyzer's own spans (a CJK run becomes
    its overlapping bigrams), and overlapping matches are joined into one range."""
    if contains_cjk(text):
        term = analyzer.term
        return _merged((s, e) for s, e, token in iter_token_spans(text)
                       if term(token) in terms)
    forms = matching_forms(text, terms, analyzer)
    if not forms:
        return []
    return [[m.start(), m.end()] for m in TOKEN.finditer(text) if m.group() in forms]


def _hits(text: str, terms: Collection[str], analyzer) -> tuple[list[str], list[bool]]:
    """The tokens of ``text`` and, per token, whether its index term is in ``terms``.

    ASCII text (the common case) is lowercased once as a whole, so each distinct token is
    looked up without its own ``lower()``; ``str.lower`` keeps ASCII offsets, so the
    tokens are those of ``text``, lowercased (only membership is used).
    """
    if text.isascii():
        tokens = TOKEN.findall(text.lower())
        if not terms:
            return tokens, [False] * len(tokens)
        term = analyzer.term
        initials = {t[0] for t in terms if t}
        forms = {t for t in set(tokens) if t[0] in initials and term(t) in terms}
    else:
        tokens = TOKEN.findall(text)
        forms = matching_forms(text, terms, analyzer, tokens)
    return tokens, [t in forms for t in tokens]


def snippet(text: str, terms: Collection[str], analyzer, *, max_chars: int = 240) -> dict:
    """``{"text", "matches"}``: the densest window of ``text`` in query terms (text with
    CJK characters: :func:`retrieval.snippets.snippet`, which follows the analyzer's
    bigram spans; overlapping matches joined)."""
    if contains_cjk(text):
        snip = general_snippet(text, terms, analyzer, width=WINDOW, max_length=max_chars)
        return {"text": snip.text, "matches": _merged(snip.matches)}
    tokens, hits = _hits(text, terms, analyzer)
    n = len(tokens)
    if not n:
        return {"text": " ".join(text.split())[:max_chars], "matches": []}
    w = min(WINDOW, n)
    if n <= w or not any(hits):
        first = 0
    else:
        csum = np.cumsum(np.array(hits, dtype=np.int64))
        # matches in window [i, i + w) = csum[i + w - 1] - csum[i - 1]; first maximum
        inwin = csum[w - 1:].copy()
        inwin[1:] -= csum[:-w]
        first = int(np.argmax(inwin))
    spans = [m.span() for m in islice(TOKEN.finditer(text), first, first + w)]
    out: list[str] = ["… "] if first > 0 else []
    length = len(out[0]) if out else 0
    matches: list[list[int]] = []
    prev_end = spans[0][0] if first > 0 else 0
    last = first - 1
    for i, (s, e) in enumerate(spans):
        gap = text[prev_end:s]
        if gap != " ":   # the common gap needs no collapsing
            gap = _SPACE.sub(" ", gap)
        if i == 0 and first == 0:
            gap = gap.lstrip()
        room = max_chars - (2 if first + i < n - 1 else 0)
        if i > 0 and length + len(gap) + (e - s) > room:
            break
        out.append(gap)
        length += len(gap)
        if hits[first + i]:
            matches.append([length, length + e - s])
        out.append(text[s:e])
        length += e - s
        prev_end = e
        last = first + i
    if last == n - 1:
        tail = _SPACE.sub(" ", text[prev_end:]).rstrip()
        if length + len(tail) <= max_chars:
            out.append(tail)
        else:
            out.append(" …")
    else:
        out.append(" …")
    return {"text": "".join(out), "matches": matches}
