"""Snippets: the window of a document's text around the densest cluster of query terms.

The rule, exactly:

1. The text (its first ``max_chars`` characters) is tokenised as the analyzer does, with
   character offsets (CJK bigrams included); a token *matches* when its index term is
   one of the query's terms.
2. **Densest cluster.** Of the windows of ``width`` consecutive tokens, the one holding
   the most matches wins (the earliest on ties). Its matches, from the first to the
   last, are the *cluster*.
3. **Centred.** The window of ``width`` tokens is re-centred on the cluster's middle
   token (moved back inside the text at either end). It still holds the whole cluster.
4. **Shortened around the match.** With ``max_length`` (visible characters, the ``… ``
   marks included), tokens are dropped from the side with more tokens outside the
   cluster, one at a time, so the cluster stays in the middle. Tokens inside the cluster
   are dropped only when the cluster alone is too long: then its outermost match on
   the side farther from the centre goes, and so on down to a single matching token,
   which is never cut (a single matching token longer than ``max_length`` is shown
   whole). So a snippet that has a match always shows at least one matching token
   completely.
5. White space is collapsed to single spaces; ``… `` marks text cut at either end.

:func:`snippet` returns a :class:`Snippet` with the character offsets of the matched
tokens in the snippet's text (overlapping CJK bigram matches merged into one range) and
the range of the document the snippet shows; :func:`make_snippet` returns the text
only (optionally with each match wrapped by ``highlight``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import NamedTuple

import numpy as np

from .analysis import Analyzer, iter_token_spans

_WHITE = re.compile(r"\s+")
_MORE = "… "
_MORE_END = " …"


class Snippet(NamedTuple):
    """A snippet: its ``text``, the ``(start, end)`` character offsets of the matched
    terms in ``text``, and the ``[start, end)`` range of the document text it shows."""

    text: str
    matches: tuple[tuple[int, int], ...]
    start: int
    end: int


def snippet(text: str, terms: Collection[str], analyzer: Analyzer, *, width: int = 30,
            max_chars: int = 200_000, max_length: int | None = None) -> Snippet:
    """The snippet of ``text`` for the index ``terms`` of a query (module docstring)."""
    text = text[:max_chars]
    spans = list(iter_token_spans(text))
    if not spans:
        body = " ".join(text.split())
        body = body[:200 if max_length is None else max_length]
        return Snippet(body, (), 0, len(text))
    term = analyzer.term
    hits = np.fromiter((term(tok) in terms for _, _, tok in spans), dtype=bool,
                       count=len(spans))
    n = len(spans)
    w = max(1, min(width, n))
    csum = np.concatenate([[0], np.cumsum(hits, dtype=np.int64)])
    first = int(np.argmax(csum[w:] - csum[:-w]))
    inside = np.flatnonzero(hits[first:first + w])
    if len(inside):
        h0, h1 = first + int(inside[0]), first + int(inside[-1])
        first = min(max((h0 + h1) // 2 - (w - 1) // 2, 0), n - w)
    else:
        h0 = h1 = -1
    last = first + w - 1
    if max_length is not None:
        first, last = _shorten(text, spans, hits, first, last, h0, h1, max_length)
    return _render(text, spans, hits, first, last)


def _shorten(text, spans, hits, first, last, h0, h1, max_length):
    """Step 4: the tokens of ``[first, last]`` that fit ``max_length``, around the
    cluster ``[h0, h1]`` (narrowed first if it alone does not fit, then widened by
    one token at a time on the side with less context, while the rendering fits)."""
    def fits(a, b):
        return len(_render(text, spans, hits, a, b).text) <= max_length

    if fits(first, last):
        return first, last
    if h0 < 0:                       # no match: keep the beginning
        while last > first and not fits(first, last):
            last -= 1
        return first, last
    while h0 < h1 and not fits(h0, h1):   # the cluster alone is too long: narrow it
        matched = [i for i in range(h0, h1 + 1) if hits[i]]
        centre = (spans[h0][0] + spans[h1][1]) / 2
        matched = matched[1:] if centre - spans[h0][0] > spans[h1][1] - centre \
            else matched[:-1]
        h0, h1 = matched[0], matched[-1]
    lo, hi = h0, h1                   # one matching token is never cut
    while True:
        options = []
        if lo > first:
            options.append((h0 - lo, lo - 1, hi))
        if hi < last:
            options.append((hi - h1, lo, hi + 1))
        grown = False
        for _, a, b in sorted(options):   # the side with less context first
            if fits(a, b):
                lo, hi, grown = a, b, True
                break
        if not grown:
            return lo, hi


def _render(text, spans, hits, first: int, last: int) -> Snippet:
    n = len(spans)
    start = 0 if first == 0 else spans[first][0]
    end = len(text) if last == n - 1 else spans[last][1]
    ranges: list[list[int]] = []         # matched character ranges, merged
    for i in range(first, last + 1):
        if hits[i]:
            a, b = spans[i][0], spans[i][1]
            if ranges and a <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], b)
            else:
                ranges.append([a, b])
    out: list[str] = [_MORE] if first > 0 else []
    size = len(out[0]) if out else 0
    matches = []
    pos = start
    for a, b in ranges:
        gap = _WHITE.sub(" ", text[pos:a])
        out.append(gap)
        size += len(gap)
        matches.append((size, size + b - a))
        out.append(text[a:b])
        size += b - a
        pos = b
    out.append(_WHITE.sub(" ", text[pos:end]))
    body = "".join(out)
    if first == 0:
        stripped = body.lstrip()
        shift = len(body) - len(stripped)
        body = stripped
        matches = [(a - shift, b - shift) for a, b in matches]
    body = body.rstrip()
    if last < n - 1:
        body += _MORE_END
    return Snippet(body, tuple(matches), start, end)


def make_snippet(text: str, terms: Collection[str], analyzer: Analyzer, *, width: int = 30,
                 highlight: Callable[[str], str] | None = None,
                 max_chars: int = 200_000, max_length: int | None = None) -> str:
    """A one-line excerpt of ``text`` around the densest cluster of ``terms``
    (:func:`snippet`'s text). ``max_length`` caps the visible length (highlighting
    codes not counted); ``highlight`` wraps each matched term."""
    snip = snippet(text, terms, analyzer, width=width, max_chars=max_chars,
                   max_length=max_length)
    if highlight is None or not snip.matches:
        return snip.text
    pieces, pos = [], 0
    for a, b in snip.matches:
        pieces += [snip.text[pos:a], highlight(snip.text[a:b])]
        pos = b
    pieces.append(snip.text[pos:])
    return "".join(pieces)
