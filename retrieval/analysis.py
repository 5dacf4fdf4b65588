"""Text analysis: Unicode normalisation, lowercasing, tokenising, stopping, stemming.

The pipeline, in order:

1. **Normalise** the text to Unicode NFC, so a letter written as a base letter plus a
   combining accent (``e`` + U+0301) is the single letter ``é`` and stays inside its word.
2. **Lowercase** with :meth:`str.lower`.
3. **Tokenise**: a token is a maximal run of letters and digits — characters for which
   :meth:`str.isalnum` is true, in any script (the regular expression ``[^\\W_]+``).
   Everything else separates tokens. So apostrophes split (``don't`` → ``don``, ``t``;
   ``glacier's`` → ``glacier``, ``s``), hyphens split (``state-of-the-art`` → ``state``,
   ``of``, ``the``, ``art``), underscores split (``snake_case`` → ``snake``, ``case``),
   and ``3.14`` → ``3``, ``14``. Runs of digits are kept as tokens.
4. **Stop**: tokens in the chosen stop list are dropped (before stemming, as Lucene does).
   Lists: ``none``; ``lucene`` (the 33-word Lucene/Anserini English set); ``smart`` (the
   SMART system list, 570 distinct words); ``sklearn`` (scikit-learn's 318-word
   ``ENGLISH_STOP_WORDS``, shipped as ``data/sklearn.txt``: scikit-learn is not needed).
   Entries that are not a single token under step 3 (``ain't``) can never match and are
   left out of the effective list.
5. **Stem** with NLTK: ``none``; ``porter`` (the original 1980 algorithm,
   ``PorterStemmer(mode=ORIGINAL_ALGORITHM)``); ``snowball`` (English, a.k.a. Porter2).
   Each distinct token is stemmed once: the token → term mapping is memoised.

The analyzer's configuration (:meth:`Analyzer.config`) is written into every index and
queries against that index are analysed with exactly the same configuration.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import types
import unicodedata
from collections import Counter
from functools import lru_cache
from importlib import resources

from .errors import ParameterError

#: version of the tokenisation rules above; stored in the index manifest
TOKENIZER = "unicode-alnum-nfc-lower/1"

STOPLISTS = ("none", "lucene", "smart", "sklearn")
STEMMERS = ("none", "porter", "snowball")

#: defaults chosen by measuring MAP on the shared collections (see README, "Analyzer")
DEFAULT_STOPWORDS = "smart"
DEFAULT_STEMMER = "snowball"

_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Steps 1–3: NFC-normalised, lowercased tokens of ``text``, in order."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text).lower())


#: bytes.translate table: ASCII letters lowercased, digits kept, every other byte a space
ASCII_TABLE = bytes(c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or 48 <= c <= 57)
                     else 32 for c in range(256))


def count_tokens(text: str) -> list:
    """The tokens of ``text`` for counting: :func:`tokenize`'s, except that an ASCII text
    is tokenised as ``bytes`` (one ``bytes.translate`` that lowercases and blanks all but
    letters and digits, then ``split``), which gives the same tokens (NFC leaves ASCII
    unchanged) several times faster. Callers that memoise token → term keep ``bytes``
    and ``str`` keys apart."""
    if text.isascii():
        return text.encode("ascii").translate(ASCII_TABLE).split()
    return tokenize(text)


def iter_token_spans(text: str):
    """Yield ``(start, end, token)`` for each token of ``text`` (offsets into ``text``).

    Used for snippets. Offsets refer to the original string; tokens are lowercased.
    NFC normalisation is applied per match only when the text is not already NFC,
    which keeps offsets valid for the common case.
    """
    for match in _TOKEN.finditer(text):
        yield match.start(), match.end(), unicodedata.normalize("NFC", match.group()).lower()


@lru_cache(maxsize=None)
def stopword_set(name: str) -> frozenset[str]:
    """The effective stop set called ``name`` (see the module docstring)."""
    if name == "none":
        return frozenset()
    if name in ("lucene", "smart", "sklearn"):
        text = resources.files("retrieval").joinpath("data", f"{name}.txt").read_text("utf-8")
        words = [w for w in text.split("\n") if w and not w.startswith("#")]
    else:
        raise ParameterError(f"unknown stop list {name!r}; choose one of {', '.join(STOPLISTS)}")
    return frozenset(w for w in (x.strip().lower() for x in words)
                     if _TOKEN.fullmatch(w))


def _import_nltk_stemmer(module: str):
    """Import ``nltk.stem.<module>`` without running ``nltk/__init__.py``.

    NLTK's package initialiser imports most of NLTK (and scipy.stats) — about a second,
    which would dominate a command-line search. The stemmer modules need only
    ``nltk.stem.api`` and ``nltk.stem.util``, so when NLTK is not imported yet, bare
    package objects stand in for ``nltk`` and ``nltk.stem`` while the module loads and are
    removed afterwards; a later ``import nltk`` by anyone runs normally.
    """
    full = f"nltk.stem.{module}"
    if "nltk" in sys.modules and not getattr(sys.modules["nltk"], "_retrieval_stub", False):
        return importlib.import_module(full)
    spec = importlib.util.find_spec("nltk")
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError("the stemmers need the nltk package; pip install nltk")
    added = []
    roots = list(spec.submodule_search_locations)
    # the Snowball module imports nltk.corpus only for its optional stop lists
    # (ignore_stopwords=True, which is not used here): an empty stand-in is enough
    for name, where in (("nltk", roots),
                        ("nltk.stem", [os.path.join(p, "stem") for p in roots]),
                        ("nltk.corpus", [os.path.join(p, "corpus") for p in roots])):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = where
            stub._retrieval_stub = True
            if name == "nltk.corpus":
                stub.stopwords = None
            sys.modules[name] = stub
            added.append(name)
    try:
        return importlib.import_module(full)
    finally:
        # forget every nltk module loaded here, so a later ``import nltk`` starts afresh
        for name in [n for n in sys.modules if n == "nltk" or n.startswith("nltk.")]:
            del sys.modules[name]


def _make_stemmer(name: str):
    if name == "none":
        return None
    if name == "porter":
        porter = _import_nltk_stemmer("porter")
        return porter.PorterStemmer(mode=porter.PorterStemmer.ORIGINAL_ALGORITHM).stem
    if name == "snowball":
        snowball = _import_nltk_stemmer("snowball")
        return snowball.SnowballStemmer("english").stem
    raise ParameterError(f"unknown stemmer {name!r}; choose one of {', '.join(STEMMERS)}")


class Analyzer:
    """Turns text into index terms; see the module docstring for the exact rules.

    Parameters
    ----------
    stopwords : {"none", "lucene", "smart", "sklearn"}
    stemmer : {"none", "porter", "snowball"}

    The memo of token → term grows with the number of distinct tokens seen.
    """

    def __init__(self, stopwords: str = DEFAULT_STOPWORDS, stemmer: str = DEFAULT_STEMMER):
        self.stopwords = stopwords
        self.stemmer = stemmer
        if stopwords not in STOPLISTS:
            raise ParameterError(
                f"unknown stop list {stopwords!r}; choose one of {', '.join(STOPLISTS)}")
        if stemmer not in STEMMERS:
            raise ParameterError(
                f"unknown stemmer {stemmer!r}; choose one of {', '.join(STEMMERS)}")
        self._stop = stopword_set(stopwords)
        self._stem = _make_stemmer(stemmer)
        self._memo: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"Analyzer(stopwords={self.stopwords!r}, stemmer={self.stemmer!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analyzer) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash((self.stopwords, self.stemmer))

    def config(self) -> dict:
        """The configuration saved in an index manifest."""
        return {"tokenizer": TOKENIZER, "stopwords": self.stopwords, "stemmer": self.stemmer}

    @classmethod
    def from_config(cls, config: dict) -> "Analyzer":
        tokenizer = config.get("tokenizer")
        if tokenizer != TOKENIZER:
            raise ParameterError(
                f"analyzer tokenizer {tokenizer!r} is not supported by this version "
                f"(it has {TOKENIZER!r}); rebuild the index")
        return cls(stopwords=config.get("stopwords"), stemmer=config.get("stemmer"))

    def term(self, token: str) -> str | None:
        """The index term of one lowercased token, or None if it is a stop word."""
        try:
            return self._memo[token]
        except KeyError:
            pass
        if token in self._stop:
            term = None
        elif self._stem is None:
            term = token
        else:
            term = self._stem(token)
            if not term:  # a stemmer never should, but an empty term is no term
                term = token
        self._memo[token] = term
        return term

    def analyze(self, text: str) -> list[str]:
        """The terms of ``text`` in order (stop words removed)."""
        term = self.term
        return [t for t in map(term, tokenize(text)) if t is not None]

    def term_counts(self, text: str) -> dict[str, int]:
        """Term → count for ``text``; counts distinct tokens first, then maps each once."""
        counts: dict[str, int] = {}
        term = self.term
        for token, n in Counter(tokenize(text)).items():
            t = term(token)
            if t is not None:
                counts[t] = counts.get(t, 0) + n
        return counts
