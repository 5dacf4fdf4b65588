"""Document formats inside a file: the visible text of HTML, the records of JSON Lines.

See :mod:`retrieval.reading` for the rules of a whole folder. HTML: :func:`html_to_text`
(two parsers, the same text). JSON Lines: :func:`jsonl_document` (the layouts read).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from .errors import InputError, ParameterError


class HTMLText(HTMLParser):
    """Visible text of HTML, fed in pieces (``parts``: the text so far)."""

    _SKIP = frozenset({"script", "style", "noscript", "template"})
    _BREAK = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4",
                        "h5", "h6", "title", "section", "article", "header", "footer"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip_depth:
            self.parts.append(data)


HTML_PARSERS = ("auto", "selectolax", "stdlib")


def html_to_text(html: str, parser: str = "auto") -> str:
    """The visible text of an HTML page (tags, scripts and styles removed).

    ``parser``: ``selectolax`` (the Lexbor HTML5 parser of the optional ``selectolax``
    package, ``pip install "retrieval[html]"``; ≈ 10x faster), ``stdlib``
    (:class:`html.parser.HTMLParser`), or ``auto``: selectolax when installed. Both give
    the same text on well-formed pages (tested on the HTML manuals of /usr/share/doc):
    each element of ``HTMLText._BREAK`` is a line break before and after, the subtrees
    of ``script``/``style``/``noscript``/``template`` are dropped, entities decoded,
    then spaces collapsed per line and empty lines dropped. They can differ on broken
    markup, where an HTML5 parser repairs the tree (a ``<td>`` outside any table is
    dropped, so its text joins the text beside it) and on ``<title>``/``<textarea>``
    content that looks like tags (text to HTML5, tags to the stdlib parser).
    """
    if parser not in HTML_PARSERS:
        raise ValueError(f"parser must be one of {', '.join(HTML_PARSERS)}, got {parser!r}")
    text = None
    if parser != "stdlib":
        text = _selectolax_text(html, required=parser == "selectolax")
    if text is None:
        stdlib = HTMLText()
        stdlib.feed(html)
        stdlib.close()
        text = "".join(stdlib.parts)
    # each line's words joined by one space, blank lines dropped (builtins only: no
    # Python step per line, ≈ 15% faster on the HTML manuals of /usr/share/doc)
    return "\n".join(map(" ".join, filter(None, map(str.split, text.splitlines()))))


_BREAK_SELECTOR = ",".join(sorted(HTMLText._BREAK))
_LEADING_BREAK = re.compile(r"(<(?:pre|listing|textarea)\b[^>]*>)(\r?\n)",
                            re.IGNORECASE)


def selectolax_installed() -> bool:
    """Whether the optional selectolax parser can be imported."""
    try:
        import selectolax.lexbor  # noqa: F401
    except ImportError:
        return False
    return True


def _selectolax_text(html: str, required: bool) -> str | None:
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError:
        if required:
            raise ParameterError('the selectolax HTML parser needs pip install '
                                 '"retrieval[html]"') from None
        return None
    # HTML5 drops a line break right after <pre>, <listing> and <textarea>; the stdlib
    # parser keeps it: double it, so both keep one
    tree = LexborHTMLParser(_LEADING_BREAK.sub(r"\1\n\2", html))
    if tree.root is None:
        return ""
    for node in tree.css(_BREAK_SELECTOR):
        node.insert_before("\n")
        node.insert_after("\n")
    tree.strip_tags(sorted(HTMLText._SKIP))
    return tree.root.text(deep=True, separator="")


#: the keys a JSON Lines record's id and text are taken from, first present first
JSONL_ID_KEYS = ("id", "_id", "docno")
JSONL_TEXT_KEYS = ("text", "contents")
_JSONL_LAYOUTS = ('an object with "id" and "text" (or the layouts {"id", "contents"}, '
                  '{"_id", "title", "text"}, {"docno", "text"})')


def jsonl_document(record, path, lineno: int) -> tuple[str, str]:
    """``(docid, text)`` of one JSON Lines record, by these rules:

    * the id is the first of ``"id"``, ``"_id"``, ``"docno"`` that the record has: a
      non-empty string or an integer (written in decimal);
    * the text is ``"text"``, or ``"contents"`` when there is no ``"text"``: a string;
    * a ``"title"`` (a string, BEIR's layout) is put before the text, separated by a
      space — the text ``benchmark --format beir`` indexes; an empty title adds nothing;
    * every other key is ignored. So ``{"id","text"}``, ``{"id","contents"}``
      (Pyserini), ``{"_id","title","text"}`` (BEIR) and ``{"docno","text"}`` are read;
      a record with no id key or no text key is an error naming the file and line.
    """
    if not isinstance(record, dict):
        raise InputError(f"each line must be {_JSONL_LAYOUTS}",
                         path=path, line=lineno)
    id_key = next((k for k in JSONL_ID_KEYS if k in record), None)
    text_key = next((k for k in JSONL_TEXT_KEYS if k in record), None)
    if id_key is None or text_key is None:
        missing = "id key (id, _id or docno)" if id_key is None else \
            "text key (text or contents)"
        keys = ", ".join(list(record)[:8]) or "none"
        raise InputError(f"the record has no {missing} (its keys: {keys}); each line must "
                         f"be {_JSONL_LAYOUTS}", path=path, line=lineno)
    docid, body = record[id_key], record[text_key]
    if isinstance(docid, bool) or not isinstance(docid, (str, int)) or docid == "":
        raise InputError(f'"{id_key}" must be a non-empty string or an integer',
                         path=path, line=lineno)
    if not isinstance(body, str):
        raise InputError(f'"{text_key}" must be a string', path=path, line=lineno)
    if isinstance(docid, str) and not _is_valid_unicode(docid):
        raise InputError(f'"{id_key}" holds an unpaired surrogate escape (like "\\ud800"); '
                         'ids must be valid Unicode', path=path, line=lineno)
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise InputError('"title" must be a string', path=path, line=lineno)
    if title and title.strip():
        body = f"{title.strip()} {body}".strip()
    return str(docid), body


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
