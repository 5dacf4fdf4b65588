"""Snippets: the window of a document's text densest in query terms.

The text is tokenised exactly as the analyzer does (with character offsets); each token's
index term is compared with the query's terms; the window of ``width`` consecutive tokens
holding the most matches wins (the earliest on ties). Only the first ``max_chars``
characters of a document are searched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from .analysis import Analyzer, iter_token_spans


def make_snippet(text: str, terms: Collection[str], analyzer: Analyzer, *, width: int = 30,
                 highlight: Callable[[str], str] | None = None,
                 max_chars: int = 200_000, max_length: int | None = None) -> str:
    """A one-line excerpt of ``text`` around the densest run of ``terms``.

    ``max_length`` caps the visible length (highlighting codes not counted) by dropping
    tokens from the end of the window.
    """
    text = text[:max_chars]
    spans = list(iter_token_spans(text))
    if not spans:
        return " ".join(text.split())[:200]
    term = analyzer.term
    hits = np.fromiter((term(tok) in terms for _, _, tok in spans), dtype=bool,
                       count=len(spans))
    n = len(spans)
    w = min(width, n)
    csum = np.concatenate([[0], np.cumsum(hits, dtype=np.int64)])
    window_hits = csum[w:] - csum[:-w]
    first = int(np.argmax(window_hits))
    last = first + w - 1
    if max_length is not None:
        while last > first and len(_render(text, spans, hits, first, last, None)) > max_length:
            last -= 1
    return _render(text, spans, hits, first, last, highlight)


def _render(text, spans, hits, first: int, last: int, highlight) -> str:
    n = len(spans)
    pieces: list[str] = []
    pos = 0 if first == 0 else spans[first][0]
    for i in range(first, last + 1):
        start, end, _ = spans[i]
        pieces.append(text[pos:start])
        word = text[start:end]
        pieces.append(highlight(word) if (highlight and hits[i]) else word)
        pos = end
    if last == n - 1:
        pieces.append(text[pos:])
    body = " ".join("".join(pieces).split())
    prefix = "… " if first > 0 else ""
    suffix = " …" if last < n - 1 else ""
    return prefix + body + suffix
