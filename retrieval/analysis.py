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
3b. **CJK bigrams** (tokenizer version 2): inside a token, a run of Han, Hiragana,
   Katakana or Hangul characters (:data:`CJK_RANGES`) becomes its overlapping character
   bigrams, as Lucene's ``CJKAnalyzer`` (``CJKBigramFilter``) does: ``信息检索`` →
   ``信息``, ``息检``, ``检索``; a run of one character stays a unigram. Letters of other
   scripts beside the run stay one token (``abc検索`` → ``abc``, ``検索``). Chinese and
   Japanese are written without spaces, so a whole sentence was one token before; with
   bigrams a two-character query word matches inside it. Indexes built with version 1
   (no bigrams) are still read; their CJK runs stay whole (rebuild to get bigrams).
4. **Stop**: tokens in the chosen stop list are dropped (before stemming, as Lucene does).
   Lists: ``none``; ``lucene`` (the 33-word Lucene/Anserini English set); ``smart`` (the
   SMART system list, 570 distinct words); ``sklearn`` (scikit-learn's 318-word
   ``ENGLISH_STOP_WORDS``, shipped as ``data/sklearn.txt``: scikit-learn is not needed);
   ``snowball``: the Snowball project's list for the analyzer's
   ``language`` (shipped in ``retrieval/data/snowball_<language>.txt``; the project
   publishes none for Arabic and Romanian, so there ``snowball`` is refused and the
   default is ``none``). Entries that are not a single token under step 3 (``ain't``)
   can never match and are left out of the effective list.
5. **Stem** with NLTK: ``none``; ``porter`` (the original 1980 algorithm,
   ``PorterStemmer(mode=ORIGINAL_ALGORITHM)``, English only); ``snowball`` (NLTK's
   Snowball stemmer for ``language``; English is Porter2). Each distinct token is
   stemmed once: the token → term mapping is memoised; an English word that ends with
   no suffix the Snowball stemmer acts on is its own stem and skips the stemmer
   (:data:`ENGLISH_SNOWBALL_SUFFIXES`). The stemmer is made once per
   process (behind a lock, so threads opening indexes at once are safe).
6. **Fold diacritics** of the stemmed term (decompose, drop combining marks, recompose)
   for the languages whose Lucene analyzer normalises them (:data:`FOLDING_LANGUAGES`):
   German (``GermanNormalizationFilter``), French, Spanish, Portuguese and Italian (their
   light stemmers' accent normalisation), Dutch (its Snowball stemmer already removes
   the diaeresis). Not for English (unchanged from before), nor where a marked letter is
   a letter of its own: Danish, Norwegian, Swedish, Finnish, Hungarian, Romanian,
   Russian (``й`` ≠ ``и``), Arabic. Folding runs after stopping and stemming, because the
   stop lists and stemmers expect the accented spelling.

``language`` (one of :data:`LANGUAGES`) chooses the Snowball stemmer, the ``snowball``
stop list and the folding. The analyzer's configuration (:meth:`Analyzer.config`,
including the language) is written into every index, and queries against that index are
analysed with exactly the same configuration.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
import threading
import types
import unicodedata
from collections import Counter
from functools import lru_cache
from importlib import resources

from .errors import ParameterError

#: version of the tokenisation rules above; stored in the index manifest
TOKENIZER = "unicode-alnum-nfc-lower-cjk2/2"
#: the tokenizer before CJK bigrams; indexes that name it are still read
TOKENIZER_V1 = "unicode-alnum-nfc-lower/1"

STOPLISTS = ("none", "lucene", "smart", "sklearn", "snowball")
STEMMERS = ("none", "porter", "snowball")
#: the languages of NLTK's Snowball stemmers
LANGUAGES = ("arabic", "danish", "dutch", "english", "finnish", "french", "german",
             "hungarian", "italian", "norwegian", "portuguese", "romanian", "russian",
             "spanish", "swedish")
#: languages with a Snowball stop list shipped in retrieval/data
SNOWBALL_STOPLISTS = frozenset(LANGUAGES) - {"arabic", "romanian"}
#: languages whose terms have their diacritics folded (step 6 of the module docstring)
FOLDING_LANGUAGES = frozenset({"german", "french", "spanish", "portuguese", "italian",
                               "dutch"})

#: defaults chosen by measuring MAP on the shared collections (see README, "Analyzer")
DEFAULT_STOPWORDS = "smart"
DEFAULT_STEMMER = "snowball"
DEFAULT_LANGUAGE = "english"

_TOKEN = re.compile(r"[^\W_]+")

#: code-point ranges whose letters form CJK bigrams: Hangul Jamo, CJK radicals and
#: symbols (々〆〇 …), Hiragana, Katakana, Hangul compatibility Jamo, Katakana phonetic
#: extensions, CJK Unified Ideographs (with extension A), Hangul Jamo extended A,
#: Hangul syllables, Hangul Jamo extended B, CJK compatibility ideographs, half-width
#: Katakana and Hangul, the Kana supplements, ideograph extensions B and later
CJK_RANGES = ((0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029),
              (0x3031, 0x3035), (0x3038, 0x303C), (0x3040, 0x30FF), (0x3130, 0x318F),
              (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA960, 0xA97F),
              (0xAC00, 0xD7AF), (0xD7B0, 0xD7FF), (0xF900, 0xFAFF), (0xFF66, 0xFFDC),
              (0x1B000, 0x1B16F), (0x20000, 0x3FFFF))
_CJK_CLASS = "".join(f"{chr(a)}-{chr(b)}" for a, b in CJK_RANGES)


@functools.cache
def _cjk_pattern(run: bool) -> re.Pattern:
    """The CJK character class (``run``: one or more), compiled on first use: compiling it
    costs 2-10 ms of every process's start-up (measured with ``scripts/bench_startup.py``),
    and ASCII text never needs it."""
    return re.compile(f"[{_CJK_CLASS}]+" if run else f"[{_CJK_CLASS}]")


def _bigrams(tokens: list[str]) -> list[str]:
    """Step 3b: each CJK run inside a token replaced by its overlapping bigrams."""
    out: list[str] = []
    for tok in tokens:
        if not _cjk_pattern(False).search(tok):
            out.append(tok)
            continue
        pos = 0
        for m in _cjk_pattern(True).finditer(tok):
            if m.start() > pos:
                out.append(tok[pos:m.start()])
            run = m.group()
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i:i + 2] for i in range(len(run) - 1))
            pos = m.end()
        if pos < len(tok):
            out.append(tok[pos:])
    return out


def tokenize(text: str) -> list[str]:
    """Steps 1–3b: NFC-normalised, lowercased tokens of ``text``, in order."""
    text = unicodedata.normalize("NFC", text).lower()
    tokens = _TOKEN.findall(text)
    if not text.isascii() and _cjk_pattern(False).search(text):
        return _bigrams(tokens)
    return tokens


def tokenize_v1(text: str) -> list[str]:
    """Steps 1–3 without CJK bigrams (tokenizer version 1)."""
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


def contains_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK character (tokenised as overlapping bigrams)."""
    return _cjk_pattern(False).search(text) is not None


def iter_token_spans(text: str):
    """Yield ``(start, end, token)`` for each token of ``text`` (offsets into ``text``),
    CJK runs as their bigrams (overlapping spans of two characters).

    Used for snippets. Offsets refer to the original string; tokens are lowercased.
    NFC normalisation is applied per match only when the text is not already NFC,
    which keeps offsets valid for the common case.
    """
    cjk = not text.isascii() and _cjk_pattern(False).search(text) is not None
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        word = match.group()
        if cjk and _cjk_pattern(False).search(word):
            pos = 0
            for m in _cjk_pattern(True).finditer(word):
                if m.start() > pos:
                    yield (start + pos, start + m.start(),
                           unicodedata.normalize("NFC", word[pos:m.start()]).lower())
                a, b = m.span()
                if b - a == 1:
                    yield start + a, start + b, word[a:b].lower()
                for i in range(a, b - 1):
                    yield start + i, start + i + 2, word[i:i + 2].lower()
                pos = b
            if pos < len(word):
                yield start + pos, end, unicodedata.normalize("NFC", word[pos:]).lower()
            continue
        yield start, end, unicodedata.normalize("NFC", word).lower()


def fold_diacritics(term: str) -> str:
    """``term`` with its combining marks removed (NFD, drop marks, NFC): ``häuser`` →
    ``hauser``, ``canción`` → ``cancion``. ``ß`` and ligatures are letters and stay."""
    if term.isascii():
        return term
    decomposed = unicodedata.normalize("NFD", term)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)


@lru_cache(maxsize=None)
def stopword_set(name: str, language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """The effective stop set called ``name`` (see the module docstring); ``language``
    chooses the ``snowball`` list."""
    if name == "none":
        return frozenset()
    if name in ("lucene", "smart", "sklearn", "snowball"):
        if name == "snowball":
            if language not in SNOWBALL_STOPLISTS:
                raise ParameterError(
                    f"there is no Snowball stop list for {language}; use --stopwords none")
            name = f"snowball_{language}"
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
    removed afterwards; a later ``import nltk`` by anyone runs normally. Called only by
    :func:`stemmer_function`, under its lock: the stand-ins must not be seen by another thread
    importing at the same moment (``ValueError: nltk.__spec__ is None``).
    """
    full = f"nltk.stem.{module}"
    if "nltk" in sys.modules and not getattr(sys.modules["nltk"], "_retrieval_stub", False):
        return importlib.import_module(full)
    spec = importlib.util.find_spec("nltk")
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError("the stemmers need the nltk package; pip install nltk")
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
    try:
        return importlib.import_module(full)
    finally:
        # forget every nltk module loaded here, so a later ``import nltk`` starts afresh
        for name in [n for n in sys.modules if n == "nltk" or n.startswith("nltk.")]:
            del sys.modules[name]


_STEMMER_LOCK = threading.Lock()
_STEMMERS: dict[tuple[str, str], object] = {}


def stemmer_function(name: str, language: str):
    """The stem function of stemmer ``name`` for ``language``, made once per process.

    NLTK's stemmers keep no state between calls, so one instance serves every analyzer
    and thread; making it is serialised by a lock (see :func:`_import_nltk_stemmer`)."""
    if name == "none":
        return None
    key = (name, language)
    stem = _STEMMERS.get(key)
    if stem is not None:
        return stem
    with _STEMMER_LOCK:
        stem = _STEMMERS.get(key)
        if stem is None:
            if name == "porter":
                porter = _import_nltk_stemmer("porter")
                stem = porter.PorterStemmer(mode=porter.PorterStemmer.ORIGINAL_ALGORITHM).stem
            else:
                stem = _import_nltk_stemmer("snowball").SnowballStemmer(language).stem
            _STEMMERS[key] = stem
    return stem


#: every suffix that a step of NLTK's English Snowball stemmer (``EnglishStemmer.stem``)
#: tests a word or its regions for, and ``y`` (step 1c). A lowercase ASCII word of
#: letters and digits that ends with none of them passes every step unchanged: steps 0–5
#: only act when the word (or its region R1/R2, itself an ending of the word) ends with
#: one of these; the special words all end with one; the ``y`` → ``Y`` marking is undone
#: at the end. So such a word is its own stem, and the stemmer is not called for it: on
#: the real folder of ``scripts/bench_realtext.py`` that is 57% of the distinct tokens
#: (hex digests, names, words ending in ``t``/``k``/``o``/``a``/a digit …) and 0.75 of
#: 1.4 CPU s of stemming. Tested against NLTK on random words, the special words and
#: NLTK's own suffix lists (tests/test_analysis.py).
ENGLISH_SNOWBALL_SUFFIXES = (
    "'", "'s", "'s'", "able", "abli", "al", "alism", "aliti", "alize", "alli", "ance",
    "anci", "ant", "ate", "ation", "ational", "ative", "ator", "biliti", "bli", "e", "ed",
    "edly", "eed", "eedly", "ement", "ence", "enci", "ent", "entli", "er", "ful", "fulli",
    "fulness", "ible", "ic", "ical", "icate", "iciti", "ied", "ies", "ing", "ingly", "ion",
    "ism", "iti", "ive", "iveness", "iviti", "ization", "ize", "izer", "l", "lessli", "li",
    "ment", "ness", "ogi", "ous", "ousli", "ousness", "s", "ss", "sses", "tional", "us",
    "y")


def default_stopwords(language: str) -> str:
    """The stop list used when none is chosen: SMART for English (measured, see the
    README), the Snowball list for other languages, ``none`` where there is none."""
    if language == DEFAULT_LANGUAGE:
        return DEFAULT_STOPWORDS
    return "snowball" if language in SNOWBALL_STOPLISTS else "none"


_MISSING = object()


def _check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise ParameterError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


class Analyzer:
    """Turns text into index terms; see the module docstring for the exact rules.

    Parameters
    ----------
    stopwords : {"none", "lucene", "smart", "sklearn", "snowball"}, optional
        default: ``smart`` for English, ``snowball`` (the language's list) otherwise.
    stemmer : {"none", "porter", "snowball"}
    language : one of :data:`LANGUAGES` (default ``english``)
    tokenizer : :data:`TOKENIZER` (default) or :data:`TOKENIZER_V1` (for old indexes)

    The memo of token → term grows with the number of distinct tokens seen.
    """

    def __init__(self, stopwords: str | None = None, stemmer: str = DEFAULT_STEMMER,
                 language: str = DEFAULT_LANGUAGE, tokenizer: str = TOKENIZER):
        self.stopwords = stopwords
        self.stemmer = stemmer
        self.language = language
        self.tokenizer = tokenizer
        _check_choice("language", language, LANGUAGES)
        _check_choice("stop list", self.stopwords_, STOPLISTS)
        _check_choice("stemmer", stemmer, STEMMERS)
        if tokenizer not in (TOKENIZER, TOKENIZER_V1):
            raise ParameterError(
                f"analyzer tokenizer {tokenizer!r} is not supported by this version "
                f"(it has {TOKENIZER!r}); rebuild the index")
        if stemmer == "porter" and language != "english":
            raise ParameterError(f"the porter stemmer is for English; use --stemmer "
                                 f"snowball for {language}")
        self._stop = stopword_set(self.stopwords_, language)
        self._stem = stemmer_function(stemmer, language)
        self._fold = language in FOLDING_LANGUAGES
        # endings that can change an English Snowball stem (see ENGLISH_SNOWBALL_SUFFIXES)
        self._changing = ENGLISH_SNOWBALL_SUFFIXES \
            if stemmer == "snowball" and language == "english" else None
        self._memo: dict[str, str | None] = {}

    @property
    def stopwords_(self) -> str:
        """The stop list in use (``stopwords``, or the language's default)."""
        return default_stopwords(self.language) if self.stopwords is None else self.stopwords

    def __repr__(self) -> str:
        extra = "" if self.language == DEFAULT_LANGUAGE else f", language={self.language!r}"
        return f"Analyzer(stopwords={self.stopwords_!r}, stemmer={self.stemmer!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analyzer) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash((self.stopwords_, self.stemmer, self.language, self.tokenizer))

    def config(self) -> dict:
        """The configuration saved in an index manifest (``language`` only when it is
        not English, so English manifests are as before)."""
        config = {"tokenizer": self.tokenizer, "stopwords": self.stopwords_,
                  "stemmer": self.stemmer}
        if self.language != DEFAULT_LANGUAGE:
            config["language"] = self.language
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Analyzer":
        tokenizer = config.get("tokenizer")
        if tokenizer not in (TOKENIZER, TOKENIZER_V1):
            raise ParameterError(
                f"analyzer tokenizer {tokenizer!r} is not supported by this version "
                f"(it has {TOKENIZER!r}); rebuild the index")
        return cls(stopwords=config.get("stopwords"), stemmer=config.get("stemmer"),
                   language=config.get("language", DEFAULT_LANGUAGE), tokenizer=tokenizer)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` under this analyzer's tokenizer version."""
        return tokenize(text) if self.tokenizer == TOKENIZER else tokenize_v1(text)

    def term(self, token: str) -> str | None:
        """The index term of one lowercased token, or None if it is a stop word."""
        try:
            return self._memo[token]
        except KeyError:
            pass
        if token in self._stop:
            term = None
        elif self._stem is None or (token.isdigit() and token.isascii()):
            # every NLTK stemmer returns a run of ASCII digits unchanged (tested): not
            # calling it saves a fifth of the stemming on code and changelogs
            term = token
        elif (self._changing is not None and not token.endswith(self._changing)
              and token.isascii() and token.isalnum() and token.islower()):
            term = token  # its own stem (see ENGLISH_SNOWBALL_SUFFIXES)
        else:
            term = self._stem(token)
            if not term:  # a stemmer never should, but an empty term is no term
                term = token
        if term is not None and self._fold:
            term = fold_diacritics(term) or term
        self._memo[token] = term
        return term

    def terms(self, tokens) -> list[str | None]:
        """:meth:`term` of each token, in order (the same memo and results), with less
        work per token: the index builder analyses the new distinct tokens of a chunk
        at once. Tokens that are their own term under the English Snowball stemmer (a
        run of ASCII digits, or see :data:`ENGLISH_SNOWBALL_SUFFIXES`) are settled here;
        the others go through :meth:`term`."""
        memo = self._memo
        stop = self._stop
        changing = self._changing
        term = self.term
        out = []
        for token in tokens:
            got = memo.get(token, _MISSING)
            if got is _MISSING:
                if changing is not None and token not in stop and token.isascii() and (
                        token.isdigit() or (not token.endswith(changing)
                                            and token.isalnum() and token.islower())):
                    got = memo[token] = token   # English: no folding
                else:
                    got = term(token)
            out.append(got)
        return out

    def analyze(self, text: str) -> list[str]:
        """The terms of ``text`` in order (stop words removed)."""
        term = self.term
        return [t for t in map(term, self.tokenize(text)) if t is not None]

    def term_counts(self, text: str) -> dict[str, int]:
        """Term → count for ``text``; counts distinct tokens first, then maps each once."""
        counts: dict[str, int] = {}
        term = self.term
        for token, n in Counter(self.tokenize(text)).items():
            t = term(token)
            if t is not None:
                counts[t] = counts.get(t, 0) + n
        return counts
