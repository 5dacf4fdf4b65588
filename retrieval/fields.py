"""Document fields: the title and file-name fields beside the body, and their weights.

An index may hold, besides the body (the document's whole indexed text, exactly as an
index without fields holds it), two short fields per document:

* ``title`` — the HTML ``<title>``, the first Markdown (``# x`` or an underlined line) or
  reStructuredText heading, a JSON record's ``title``, a test collection's ``.T`` field;
  empty when the document has none;
* ``name`` — the last component of the document id (for a file, its file name:
  ``argparse.py`` gives the terms ``argparse`` and ``py``).

The body keeps the title's words (as today): it is the whole-document component of
Ogilvie & Callan's mixture, so an index with fields scores exactly as one without when
the body weight is 1. Scoring with fields: :mod:`retrieval.search.fields`.

:class:`FieldWeights` holds the mixture weights λ_f; ``parse`` reads the
``--field-weights title=0.2,name=0.1,body=0.7`` syntax.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import NamedTuple

from .errors import ParameterError

#: the fields of an index, in order; ``body`` is the index's main arrays
FIELDS = ("title", "name", "body")
#: the fields stored beside the body
EXTRA_FIELDS = ("title", "name")


class FieldedDocument(NamedTuple):
    """A document with a title: what the index builder takes to make the title field."""
    docid: str
    text: str
    title: str


class FieldWeights(NamedTuple):
    """Mixture weights λ_title, λ_name, λ_body (non-negative, summing to 1).

    :meth:`of` normalises any non-negative weights with a positive sum, so
    ``title=1,body=3`` is (0.25, 0, 0.75); a field not named gets 0.
    """
    title: float
    name: float
    body: float

    @classmethod
    def of(cls, weights: Mapping[str, float] | "FieldWeights") -> "FieldWeights":
        if isinstance(weights, FieldWeights):
            weights = weights._asdict()
        if not isinstance(weights, Mapping):
            raise ParameterError(f"field weights must be a mapping such as "
                                 f"{{'title': 0.2, 'body': 0.8}}, got {weights!r}")
        unknown = sorted(set(weights) - set(FIELDS))
        if unknown:
            raise ParameterError(f"unknown field {unknown[0]!r} in the field weights; the "
                                 f"fields are {', '.join(FIELDS)}")
        values = {}
        for name in FIELDS:
            value = weights.get(name, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not value >= 0 or value == float("inf"):
                raise ParameterError(f"field weight {name}={value!r} must be a finite "
                                     f"number >= 0")
            values[name] = float(value)
        total = sum(values.values())
        if total <= 0:
            raise ParameterError("the field weights sum to 0; give at least one field a "
                                 "positive weight, e.g. body=1")
        return cls(**{k: v / total for k, v in values.items()})

    @classmethod
    def parse(cls, spec: str) -> "FieldWeights":
        """``"title=0.2,name=0.1,body=0.7"`` → FieldWeights (normalised)."""
        weights: dict[str, float] = {}
        for part in str(spec).split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            try:
                number = float(value)
            except ValueError:
                number = None
            if not sep or not key or number is None:
                raise ParameterError(f"bad field weight {part.strip()!r}: write "
                                     f"name=weight pairs such as title=0.2,name=0.1,body=0.7")
            if key in weights:
                raise ParameterError(f"field {key!r} is given twice in the field weights")
            weights[key] = number
        return cls.of(weights)

    def label(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self._asdict().items())


#: the default weights, chosen by scripts/choose_field_weights.py (results/fields/loco.md:
#: leave-one-collection-out on Cranfield, CISI, CACM; held-out MAP +0.009, +0.001, +0.005
#: over the body alone). λ_name = 0: those collections have no file names, so the name
#: weight is unmeasured; give it explicitly (e.g. name=0.1) for folders of files.
DEFAULT_FIELD_WEIGHTS = FieldWeights(title=0.15, name=0.0, body=0.85)


def fielded_documents(collection) -> list[FieldedDocument]:
    """A test collection's documents with their titles (``collection.titles``; '' when
    a document has none), for ``Index.build(..., fields=True)``."""
    titles = getattr(collection, "titles", {}) or {}
    return [FieldedDocument(d.docid, d.text, titles.get(d.docid, ""))
            for d in collection.documents]


# -- field texts -------------------------------------------------------------------------

def name_text(docid: str) -> str:
    """The name field of a document: the last ``/``-separated component of its id."""
    return docid.rstrip("/").rsplit("/", 1)[-1]


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}\s*$")


def html_title(html: str) -> str:
    """The text of an HTML page's first ``<title>`` element ('' when none)."""
    import html as html_lib
    match = _HTML_TITLE.search(html)
    if match is None:
        return ""
    text = re.sub(r"<[^>]*>", " ", match.group(1))
    return " ".join(html_lib.unescape(text).split())


def heading_title(text: str, max_lines: int = 200) -> str:
    """The first heading of Markdown or reStructuredText ('' when none in the first
    ``max_lines`` lines): an ATX heading ``# Title``, or a line underlined (and possibly
    overlined) by a run of one punctuation character at least 3 long (Markdown setext
    ``===``/``---``, reST section adornments)."""
    lines = text.splitlines()[:max_lines]
    for i, line in enumerate(lines):
        match = _ATX.match(line)
        if match:
            return " ".join(match.group(1).split())
        if i and line.strip() and _UNDERLINE.match(line) and lines[i - 1].strip() \
                and not _UNDERLINE.match(lines[i - 1]):
            return " ".join(lines[i - 1].split())
    return ""


def json_title(record: object) -> str:
    """A JSON record's ``title`` when it is a string ('' otherwise)."""
    if isinstance(record, Mapping) and isinstance(record.get("title"), str):
        return record["title"]
    return ""


#: file suffixes :func:`file_title` finds titles in
TITLE_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".md", ".markdown", ".rst", ".txt",
                            "", ".json"})


def file_title(suffix: str, raw_text: str) -> str:
    """The title of a file's text by its suffix (lower case, with the dot): HTML pages
    their ``<title>``, Markdown/reST/plain text their first heading, a one-record JSON
    file its ``title``; '' otherwise."""
    if suffix in (".html", ".htm", ".xhtml"):
        return html_title(raw_text)
    if suffix in (".md", ".markdown", ".rst", ".txt", ""):
        return heading_title(raw_text)
    if suffix == ".json":
        try:
            return json_title(json.loads(raw_text))
        except ValueError:
            return ""
    return ""
