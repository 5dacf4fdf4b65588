#!/usr/bin/env python3
"""Corpora for speed and scale measurements.

Two modes:

``--docs N`` (synthetic)
    N documents (10k … 2M and more) whose term statistics follow the shared test
    collections. A model is fitted from the raw tokens of the five shared collections
    (the engine's tokenizer: NFC, lowercase, runs of letters and digits; stop words and
    inflections kept, so the analyzer has real work to do):

    * **term frequencies**: the head of the distribution is the empirical one — the real
      tokens, by frequency, with their observed probabilities; beyond the rank where the
      observed curve meets the fitted power law, ranks follow ``p(r) = C r^-a``
      (Zipf's law). Tail ranks are real rare tokens first, then pseudo-words (syllables
      plus English suffixes, so stemming conflates some of them as it does real words).
    * **vocabulary growth**: ``a = 1/β`` and ``C`` come from the Heaps' law fit
      ``V(n) = K n^β`` of the real collections (a Zipf tail of exponent ``a`` grows a
      vocabulary as ``n^(1/a)``), so a larger corpus has more distinct terms, as it would.
    * **document lengths**: drawn from the empirical length distribution.
    * **burstiness**: a token repeats an earlier token of its document with probability
      ``ρ``, fitted so the mean distinct/total ratio per document matches the real one.

    Output, in ``--out DIR``: ``docs.jsonl`` (``{"id","text"}`` per line), ``queries.tsv``
    (``qid<TAB>text``; 2–6 distinct non-stop-word tokens drawn from a random document),
    ``meta.json`` (the model, the seed and the generated corpus's statistics, including its
    vocabulary-growth curve). Deterministic from ``--seed``: the same seed and N give the
    same bytes. Streaming: documents are generated and written in chunks of
    ``CHUNK_DOCS`` with vectorised numpy code, so memory does not grow with N (beyond the
    vocabulary-growth bookkeeping, which is O(distinct terms)).

``--shared``
    The concatenation of all shared collections' documents and queries, ids prefixed by
    the collection (``cranfield/1``), as a real mid-size corpus (same three files).

Examples::

    python scripts/make_corpus.py --docs 100k --out /tmp/syn100k
    python scripts/make_corpus.py --shared --out /tmp/shared
    python scripts/make_corpus.py --fit-report          # the fitted model, no corpus
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

#: documents per generation chunk; part of the output's definition (determinism)
CHUNK_DOCS = 4096
#: bytes per token slot in the vectorised writer: word, one space, zero padding
WIDTH = 16
MAX_WORD_BYTES = WIDTH - 1
#: pseudo-word alphabet: consonant + vowel syllables, then a suffix
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]          # 90
_SUFFIXES = ["", "s", "ed", "ing", "ion", "al", "ly", "er", "ic", "ity", "ment", "ous"]
_MIN_SYL, _MAX_SYL = 2, 5
#: tail ranks are capped here (p(r) is ~1e-20 there)
_MAX_RANK = 10 ** 12
#: distinct-term bookkeeping: a bitmap below this rank, a set above
_SEEN_BITMAP = 1 << 24

COLLECTIONS = ("cranfield", "cisi", "med", "cacm", "nfcorpus")
#: the 33-word Lucene English stop set (for choosing query terms; the fallback when the
#: package is not importable)
_LUCENE_STOP = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the "
    "their then there these they this to was will with".split())


# ----------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------
def _tokenizer():
    try:
        from retrieval.analysis import tokenize
        return tokenize
    except ImportError:  # pragma: no cover - the script ships with the package
        import re
        import unicodedata
        pat = re.compile(r"[^\W_]+")
        return lambda text: pat.findall(unicodedata.normalize("NFC", text).lower())


def _stop_words() -> frozenset[str]:
    try:
        from retrieval.analysis import stopword_set
        return stopword_set("lucene")
    except ImportError:  # pragma: no cover
        return _LUCENE_STOP


def load_shared(root: str | None = None):
    """[(collection, Collection)] of the shared collections (raises when absent)."""
    from retrieval.collections import load_collection
    return [(name, load_collection(name, root=root)) for name in COLLECTIONS]


def _heaps_fit(doc_tokens: list[list[str]], seed: int = 0) -> tuple[float, float, list]:
    """Least-squares fit of log V = log K + β log n over documents in random order."""
    order = np.random.default_rng(seed).permutation(len(doc_tokens))
    seen: set[str] = set()
    n = 0
    pts = []
    for i in order.tolist():
        toks = doc_tokens[i]
        if not toks:
            continue
        seen.update(toks)
        n += len(toks)
        pts.append((n, len(seen)))
    pts_a = np.asarray(pts, dtype=np.float64)
    use = pts_a[:, 0] >= min(1e4, pts_a[-1, 0] / 10)
    beta, log_k = np.polyfit(np.log(pts_a[use, 0]), np.log(pts_a[use, 1]), 1)
    # a thinned curve for the report
    keep = np.unique(np.geomspace(1, len(pts_a), 30).astype(int) - 1)
    return float(beta), float(math.exp(log_k)), pts_a[keep].astype(int).tolist()


def fit_model(root: str | None = None) -> dict:
    """Fit the generator's model from the shared collections' raw tokens."""
    from collections import Counter
    tokenize = _tokenizer()
    doc_tokens: list[list[str]] = []
    for _name, coll in load_shared(root):
        doc_tokens.extend(tokenize(d.text) for d in coll.documents)
    lengths = np.asarray([len(t) for t in doc_tokens], dtype=np.int64)
    counts = Counter()
    for toks in doc_tokens:
        counts.update(toks)
    n_tokens = int(lengths.sum())
    # the vocabulary by rank (count desc, then code point) — words that fit a slot only
    ranked = sorted(((c, w) for w, c in counts.items()
                     if len(w.encode("utf-8")) <= MAX_WORD_BYTES), key=lambda x: (-x[0], x[1]))
    words = [w for _, w in ranked]
    freq = np.asarray([c for c, _ in ranked], dtype=np.float64)
    p_emp = freq / freq.sum()
    beta, heaps_k, curve = _heaps_fit(doc_tokens)
    a = 1.0 / beta
    head = _choose_head(freq, p_emp, a, beta, heaps_k)
    head_mass = float(p_emp[:head].sum())
    # the tail p(r) = C r^-a on ranks >= head carries the remaining mass
    c_tail = (1.0 - head_mass) * (a - 1.0) * head ** (a - 1.0)
    distinct_ratio = float(np.mean([len(set(t)) / len(t) for t in doc_tokens if t]))
    stop = _stop_words()
    model = {
        "source": "fitted from the shared collections: " + ", ".join(COLLECTIONS),
        "documents": len(doc_tokens),
        "tokens": n_tokens,
        "distinct_tokens": len(counts),
        "heaps_K": heaps_k,
        "heaps_beta": beta,
        "heaps_curve": curve,
        "zipf_tail_exponent": a,
        "zipf_tail_C": c_tail,
        "head_ranks": head,
        "head_mass": head_mass,
        "mean_length": float(lengths.mean()),
        "median_length": float(np.median(lengths)),
        "stop_fraction": sum(counts[w] for w in stop if w in counts) / max(n_tokens, 1),
        "distinct_ratio": distinct_ratio,
        "words": words,
        "head_p": (p_emp[:head] / head_mass).tolist(),
        "lengths": np.sort(lengths).tolist(),
    }
    model["burst"] = _fit_burst(model)
    # repeats add no new terms: choose the head again for the fitted burstiness
    head = _choose_head(freq, p_emp, a, beta, heaps_k, model["burst"])
    if head != model["head_ranks"]:
        head_mass = float(p_emp[:head].sum())
        model.update(head_ranks=head, head_mass=head_mass,
                     zipf_tail_C=(1.0 - head_mass) * (a - 1.0) * head ** (a - 1.0),
                     head_p=(p_emp[:head] / head_mass).tolist())
        model["burst"] = _fit_burst(model)
    return model


def expected_vocabulary(n_tokens: float, p_head: np.ndarray, a: float) -> float:
    """E[distinct terms] after ``n_tokens`` draws: empirical head + continuous Zipf tail."""
    head = len(p_head)
    v = float(np.sum(-np.expm1(-n_tokens * p_head)))
    r = np.geomspace(head, 1e14, 4000)
    pr = (1.0 - p_head.sum()) * (a - 1.0) * head ** (a - 1.0) * r ** -a
    f = -np.expm1(-n_tokens * pr)
    return v + float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(r)))


def _choose_head(freq: np.ndarray, p_emp: np.ndarray, a: float, beta: float,
                 heaps_k: float, burst: float = 0.0) -> int:
    """The head size (ranks with count >= m) whose model best follows the Heaps fit.

    The model's expected vocabulary is compared with ``K n^β`` at the real corpus size
    and at 10× and 100× it (log error); the tail exponent is fixed at ``a = 1/β``. A
    fraction ``burst`` of the tokens are repeats, which add no new terms.
    """
    n_real = float(freq.sum())
    best, best_err = 1, math.inf
    for m in (2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50):
        head = int(np.count_nonzero(freq >= m))
        if head < 2 or head >= len(freq):
            continue
        err = sum((math.log(expected_vocabulary(n * (1.0 - burst), p_emp[:head], a))
                   - math.log(heaps_k * n ** beta)) ** 2
                  for n in (n_real, 10 * n_real, 100 * n_real))
        if err < best_err:
            best, best_err = head, err
    return best


def builtin_model() -> dict:
    """A parametric model for when the shared collections are not available.

    Pseudo-words only, a Zipf head of exponent 1, a Heaps fit typical of abstracts
    (K=39, β=0.49, the values fitted from the shared collections), log-normal lengths.
    """
    rng = np.random.default_rng(12345)
    beta, heaps_k = 0.49, 39.0
    a = 1.0 / beta
    head = 20000
    p = 1.0 / np.arange(1, head + 1, dtype=np.float64)
    head_mass = 0.97
    c_tail = (1.0 - head_mass) * (a - 1.0) * head ** (a - 1.0)
    lengths = np.maximum(rng.lognormal(math.log(100), 0.8, 10000).astype(np.int64), 1)
    model = {
        "source": "built-in parametric model (shared collections not found)",
        "documents": 0, "tokens": 0, "distinct_tokens": 0,
        "heaps_K": heaps_k, "heaps_beta": beta, "heaps_curve": [],
        "zipf_tail_exponent": a, "zipf_tail_C": c_tail,
        "head_ranks": head,
        "head_mass": head_mass,
        "mean_length": float(lengths.mean()), "median_length": float(np.median(lengths)),
        "stop_fraction": 0.0, "distinct_ratio": 0.67,
        "words": [], "head_p": (p / p.sum()).tolist(), "lengths": np.sort(lengths).tolist(),
    }
    model["burst"] = _fit_burst(model)
    return model


def _fit_burst(model: dict) -> float:
    """ρ such that generated documents have the real mean distinct/length ratio."""
    gen = Generator(model, seed=987654321, burst=0.0)
    target = model["distinct_ratio"]
    lo, hi = 0.0, 0.9
    for _ in range(14):
        mid = (lo + hi) / 2
        gen.burst = mid
        ratio = _mean_distinct_ratio(*gen.ranks(0, 4000))
        if ratio > target:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 4)


def _mean_distinct_ratio(ranks: np.ndarray, lengths: np.ndarray) -> float:
    docs = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keys = np.unique(docs * (_MAX_RANK + 1) + ranks)
    distinct = np.bincount(keys // (_MAX_RANK + 1), minlength=len(lengths))
    ok = lengths > 0
    return float(np.mean(distinct[ok] / lengths[ok]))


# ----------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------
def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for sampling index i with probability p[i] in O(1)."""
    n = len(p)
    scaled = (p / p.sum() * n).tolist()
    prob = [0.0] * n
    alias = list(range(n))
    small = [i for i, x in enumerate(scaled) if x < 1.0]
    large = [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        s = small.pop()
        g = large[-1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        if scaled[g] < 1.0:
            large.pop()
            small.append(g)
    for i in large + small:
        prob[i] = 1.0
    return np.asarray(prob, dtype=np.float64), np.asarray(alias, dtype=np.int64)


def _word_table(words: list[str]) -> np.ndarray:
    """(V, WIDTH) uint8: each word's UTF-8 bytes, one space, zero padding."""
    table = np.zeros((len(words), WIDTH), dtype=np.uint8)
    if not words:
        return table
    blob = "\n".join(words).encode("utf-8")
    raw = np.frombuffer(blob, dtype=np.uint8)
    lens = np.asarray([len(w.encode("utf-8")) for w in words], dtype=np.int64)
    starts = np.zeros(len(words), dtype=np.int64)
    np.cumsum(lens[:-1] + 1, out=starts[1:])
    for j in range(MAX_WORD_BYTES):
        has = lens > j
        table[has, j] = raw[starts[has] + j]
    table[np.arange(len(words)), lens] = ord(" ")
    return table


_SYL_BYTES = np.frombuffer("".join(_SYLLABLES).encode(), dtype=np.uint8).reshape(-1, 2)
_SUF_TABLE = np.zeros((len(_SUFFIXES), 5), dtype=np.uint8)
for _i, _s in enumerate(_SUFFIXES):
    _SUF_TABLE[_i, :len(_s)] = np.frombuffer(_s.encode(), dtype=np.uint8)
_SUF_LEN = np.asarray([len(s) for s in _SUFFIXES], dtype=np.int64)
_NS = len(_SYLLABLES)
# stems with k syllables occupy codes [_SYL_START[k-2], _SYL_START[k-1])
_SYL_START = np.cumsum([0] + [_NS ** k for k in range(_MIN_SYL, _MAX_SYL + 1)])


def pseudo_words(codes: np.ndarray) -> np.ndarray:
    """(n, WIDTH) uint8 rows of the pseudo-words numbered ``codes`` (unique per code).

    code → (stem, suffix); the stem is written in base 90 with a fixed number of
    consonant-vowel syllables for its code range, so no two codes share a spelling.
    """
    codes = np.asarray(codes, dtype=np.int64)
    stem, suffix = np.divmod(codes, len(_SUFFIXES))
    stem = np.minimum(stem, _SYL_START[-1] - 1)
    nsyl = _MIN_SYL + np.searchsorted(_SYL_START[1:], stem, side="right")
    local = stem - _SYL_START[nsyl - _MIN_SYL]
    rows = np.zeros((len(codes), WIDTH), dtype=np.uint8)
    for j in range(_MAX_SYL):
        local, digit = np.divmod(local, _NS)
        on = nsyl > j
        rows[on, 2 * j:2 * j + 2] = _SYL_BYTES[digit[on]]
    end = 2 * nsyl
    suf = _SUF_TABLE[suffix]
    idx = np.arange(len(codes))
    for j in range(_SUF_TABLE.shape[1]):
        on = _SUF_LEN[suffix] > j
        rows[idx[on], end[on] + j] = suf[on, j]
    rows[idx, end + _SUF_LEN[suffix]] = ord(" ")
    return rows


class Generator:
    """Draws token ranks and turns them into bytes; see the module docstring."""

    def __init__(self, model: dict, seed: int, burst: float | None = None):
        self.model = model
        self.seed = int(seed)
        self.burst = float(model.get("burst", 0.0) if burst is None else burst)
        self.head = int(model["head_ranks"])
        self.head_mass = float(model["head_mass"])
        self.a = float(model["zipf_tail_exponent"])
        self.prob, self.alias = _alias_table(np.asarray(model["head_p"], dtype=np.float64))
        self.lengths = np.asarray(model["lengths"], dtype=np.int64)
        words = model["words"]
        self.n_real = len(words)
        self.table = _word_table(words)

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def ranks(self, chunk: int, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
        """(token ranks, document lengths) of chunk number ``chunk``."""
        rng = self._rng(1, chunk)
        lengths = self.lengths[rng.integers(0, len(self.lengths), n_docs)]
        n = int(lengths.sum())
        # head: alias sampling for every position (cheap), then the tail overwrites
        x = rng.random(n) * len(self.prob)
        col = x.astype(np.int64)
        ranks = np.where(x - col < self.prob[col], col, self.alias[col])
        tail = np.nonzero(rng.random(n) >= self.head_mass)[0]
        v = 1.0 - rng.random(len(tail))                          # (0, 1]
        r = np.floor(self.head * v ** (-1.0 / (self.a - 1.0)))
        ranks[tail] = np.minimum(r, _MAX_RANK).astype(np.int64)
        if self.burst > 0 and n:
            # a token repeats an earlier (originally drawn) token of its document
            rep = np.nonzero(rng.random(n) < self.burst)[0]
            doc_start = np.cumsum(lengths) - lengths
            start = doc_start[np.searchsorted(doc_start, rep, side="right") - 1]
            pos = rep - start
            keep = pos > 0
            rep, start, pos = rep[keep], start[keep], pos[keep]
            src = start + (rng.random(len(rep)) * pos).astype(np.int64)
            ranks[rep] = ranks[src]
        return ranks, lengths

    def token_table(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(table, index): ``table[index]`` are the byte rows of the tokens ``ranks``.

        ``table`` is the real-word table followed by this chunk's distinct pseudo-words.
        """
        pseudo = np.nonzero(ranks >= self.n_real)[0]
        if not len(pseudo):
            return self.table, ranks
        codes, inverse = np.unique(ranks[pseudo], return_inverse=True)
        table = np.concatenate([self.table, pseudo_words(codes - self.n_real)])
        index = ranks.copy()
        index[pseudo] = self.n_real + inverse.reshape(-1)
        return table, index

    def rows(self, ranks: np.ndarray) -> np.ndarray:
        """(n, WIDTH) uint8 byte rows of the tokens ``ranks``."""
        table, index = self.token_table(ranks)
        return table.take(index, axis=0)


def _doc_frame_rows(first: int, count: int, width: int) -> np.ndarray:
    """(3·count, WIDTH) rows: per document ``{"id":"dNNN`` , ``","text":"`` , ``"}\\n``."""
    rows = np.zeros((3 * count, WIDTH), dtype=np.uint8)
    ids = (b'{"id":"d%0*d' % (width, first + i) for i in range(count))
    head = np.frombuffer(b"".join(ids), dtype=np.uint8).reshape(count, -1)
    rows[0::3, :head.shape[1]] = head
    mid = np.frombuffer(b'","text":"', dtype=np.uint8)
    rows[1::3, :len(mid)] = mid
    end = np.frombuffer(b'"}\n', dtype=np.uint8)
    rows[2::3, :len(end)] = end
    return rows


def _parse_count(text: str) -> int:
    t = str(text).strip().lower().replace("_", "").replace(",", "")
    mult = 1
    if t.endswith("k"):
        mult, t = 1000, t[:-1]
    elif t.endswith("m"):
        mult, t = 1_000_000, t[:-1]
    value = float(t) * mult
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(value)


def write_synthetic(out: Path, n_docs: int, n_queries: int, seed: int, model: dict,
                    min_terms: int = 2, max_terms: int = 6, progress: bool = False) -> dict:
    """Write ``docs.jsonl``, ``queries.tsv`` and ``meta.json`` into ``out``."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(model, seed)
    width = max(7, len(str(max(n_docs - 1, 0))))
    stop = _stop_words()
    # the documents queries are drawn from, fixed up front
    qrng = gen._rng(2)
    n_queries = min(n_queries, n_docs)
    qdocs = np.sort(qrng.choice(n_docs, size=n_queries, replace=False)) if n_queries else \
        np.zeros(0, dtype=np.int64)
    qterms = qrng.integers(min_terms, max_terms + 1, size=n_queries)
    queries: list[tuple[int, str]] = []
    n_chunks = (n_docs + CHUNK_DOCS - 1) // CHUNK_DOCS
    curve = []
    n_tokens = 0
    if width + 8 > WIDTH:
        raise ValueError(f"at most {10 ** (WIDTH - 8):,} documents")
    seen = np.zeros(_SEEN_BITMAP, dtype=bool)   # vocabulary bookkeeping (ranks < 2^24)
    seen_high: set[int] = set()
    with open(out / "docs.jsonl", "wb") as fh:
        for chunk in range(n_chunks):
            first = chunk * CHUNK_DOCS
            count = min(CHUNK_DOCS, n_docs - first)
            ranks, lengths = gen.ranks(chunk, count)
            table, index = gen.token_table(ranks)
            n = len(ranks)
            # one gather lays out the whole chunk: per document 2 header rows, its
            # tokens, 1 footer row; the footer row sits where the last space would be
            doc_of = np.repeat(np.arange(count, dtype=np.int64), lengths)
            frame = _doc_frame_rows(first, count, width)
            full = np.empty(n + 3 * count, dtype=np.int64)
            full[np.arange(n, dtype=np.int64) + 3 * doc_of + 2] = index
            base = np.arange(count, dtype=np.int64) * 3
            # header rows at the document's start, the footer after its last token
            doc_first = np.cumsum(lengths) - lengths + 3 * np.arange(count, dtype=np.int64)
            full[doc_first] = len(table) + base
            full[doc_first + 1] = len(table) + base + 1
            full[doc_first + 2 + lengths] = len(table) + base + 2
            table = np.concatenate([table, frame])
            rows = table.take(full, axis=0)
            # drop the trailing space of each document's last token
            last = doc_first[lengths > 0] + 1 + lengths[lengths > 0]
            rows[last, np.count_nonzero(rows[last], axis=1) - 1] = 0
            fh.write(rows[rows != 0].tobytes())
            # queries from this chunk's documents
            lo, hi = np.searchsorted(qdocs, [first, first + count])
            for qi in range(lo, hi):
                d = int(qdocs[qi]) - first
                s = int(doc_first[d]) + 2
                queries.append((qi, _query_from(table[full[s:s + lengths[d]]], stop,
                                                int(qterms[qi]), gen._rng(3, qi))))
            # vocabulary growth
            n_tokens += n
            if n and ranks.max() >= _SEEN_BITMAP:
                high = ranks >= _SEEN_BITMAP
                seen_high.update(np.unique(ranks[high]).tolist())
                seen[ranks[~high]] = True
            else:
                seen[ranks] = True
            if chunk == n_chunks - 1 or (chunk & (chunk + 1)) == 0:
                curve.append([n_tokens, int(np.count_nonzero(seen)) + len(seen_high)])
            if progress and (chunk % 25 == 0 or chunk == n_chunks - 1):
                done = first + count
                rate = done / max(time.perf_counter() - t_start, 1e-9)
                print(f"\r{done:,}/{n_docs:,} documents ({rate:,.0f}/s)", end="",
                      file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    _write_queries(out / "queries.tsv", [(f"q{qi + 1}", text) for qi, text in queries])
    seconds = time.perf_counter() - t_start
    stats = {
        "documents": n_docs, "queries": len(queries), "tokens": n_tokens,
        "distinct_tokens": curve[-1][1] if curve else 0,
        "mean_length": n_tokens / max(n_docs, 1),
        "vocabulary_curve": curve,
        "heaps_fit": _fit_curve(curve),
        "predicted_distinct_tokens": model["heaps_K"] * max(n_tokens, 1) ** model["heaps_beta"],
        "bytes": (out / "docs.jsonl").stat().st_size,
        "seconds": round(seconds, 3),
        "documents_per_second": round(n_docs / max(seconds, 1e-9)),
    }
    meta = {"kind": "synthetic", "seed": seed, "chunk_docs": CHUNK_DOCS,
            "query_terms": [min_terms, max_terms], "stats": stats,
            "model": {k: v for k, v in model.items() if k not in ("words", "head_p", "lengths")}}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def _fit_curve(curve: list) -> dict | None:
    pts = np.asarray([c for c in curve if c[0] >= 1e4], dtype=np.float64)
    if len(pts) < 3:
        return None
    beta, log_k = np.polyfit(np.log(pts[:, 0]), np.log(pts[:, 1]), 1)
    return {"K": float(math.exp(log_k)), "beta": float(beta)}


def _query_from(rows: np.ndarray, stop: frozenset, n_terms: int,
                rng: np.random.Generator) -> str:
    """``n_terms`` distinct non-stop-word, non-numeric tokens of one document."""
    tokens = rows.tobytes().translate(None, b"\0").decode("utf-8").split()
    words = list(dict.fromkeys(w for w in tokens if w not in stop and not w.isdigit()))
    if not words:   # a document of stop words and numbers only: use what it has
        words = list(dict.fromkeys(tokens)) or ["the"]
    pick = rng.choice(len(words), size=min(n_terms, len(words)), replace=False)
    return " ".join(words[i] for i in sorted(pick.tolist()))


def _write_queries(path: Path, queries: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for qid, text in queries:
            fh.write(f"{qid}\t{' '.join(text.split())}\n")


def write_shared(out: Path, root: str | None = None) -> dict:
    """The shared collections' documents and queries, concatenated, ids prefixed."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    n_docs = 0
    queries = []
    per = {}
    with open(out / "docs.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for name, coll in load_shared(root):
            for d in coll.documents:
                fh.write(json.dumps({"id": f"{name}/{d.docid}", "text": d.text},
                                    ensure_ascii=False) + "\n")
            queries.extend((f"{name}/{q.qid}", q.text) for q in coll.queries)
            per[name] = {"documents": len(coll.documents), "queries": len(coll.queries)}
            n_docs += len(coll.documents)
    _write_queries(out / "queries.tsv", queries)
    meta = {"kind": "shared", "collections": per,
            "stats": {"documents": n_docs, "queries": len(queries),
                      "bytes": (out / "docs.jsonl").stat().st_size,
                      "seconds": round(time.perf_counter() - t_start, 3)},
            "note": "nfcorpus: test split documents and titles queries (the loader's "
                    "defaults); every query of every collection, judged or not"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def get_model(args) -> dict:
    if args.model:
        return json.loads(Path(args.model).read_text(encoding="utf-8"))
    try:
        return fit_model(args.collections)
    except Exception as exc:   # collections absent or unreadable: say so, go on
        if args.require_collections:
            raise
        print(f"make_corpus: shared collections unavailable ({exc}); using the built-in "
              f"parametric model", file=sys.stderr)
        return builtin_model()


def _report(model: dict) -> str:
    keys = ("source", "documents", "tokens", "distinct_tokens", "heaps_K", "heaps_beta",
            "zipf_tail_exponent", "zipf_tail_C", "head_ranks", "head_mass", "mean_length",
            "median_length", "stop_fraction", "distinct_ratio", "burst")
    return "\n".join(f"{k:>20}: {model[k]}" for k in keys)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring for the model.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--docs", type=_parse_count, metavar="N",
                      help="generate N synthetic documents (100k, 1M, 2000000 …)")
    mode.add_argument("--shared", action="store_true",
                      help="write the concatenation of the shared collections")
    mode.add_argument("--fit-report", action="store_true",
                      help="print the fitted model's parameters and exit")
    p.add_argument("--out", type=Path, help="output folder (docs.jsonl, queries.tsv, meta.json)")
    p.add_argument("--queries", type=_parse_count, default=1000,
                   help="number of synthetic queries (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--min-terms", type=int, default=2)
    p.add_argument("--max-terms", type=int, default=6)
    p.add_argument("--collections", default=None,
                   help="folder of the shared collections (default: $RETRIEVAL_COLLECTIONS "
                        "or ../shared/collections)")
    p.add_argument("--model", help="load the model from this JSON (see --save-model)")
    p.add_argument("--save-model", help="also write the fitted model to this JSON file")
    p.add_argument("--require-collections", action="store_true",
                   help="fail instead of falling back to the built-in model")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    if (args.docs is not None or args.shared) and args.out is None:
        p.error("--out is required")
    if not 1 <= args.min_terms <= args.max_terms:
        p.error("need 1 <= --min-terms <= --max-terms")
    if args.shared:
        meta = write_shared(args.out, args.collections)
        print(json.dumps(meta["stats"]))
        return 0
    model = get_model(args)
    if args.save_model:
        Path(args.save_model).write_text(json.dumps(model), encoding="utf-8")
    if args.fit_report:
        print(_report(model))
        return 0
    meta = write_synthetic(args.out, args.docs, args.queries, args.seed, model,
                           args.min_terms, args.max_terms, progress=not args.quiet)
    s = meta["stats"]
    print(json.dumps({k: s[k] for k in ("documents", "queries", "tokens", "distinct_tokens",
                                         "bytes", "seconds", "documents_per_second")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
