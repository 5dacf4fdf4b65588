"""Score bounds for exact dynamic pruning (MaxScore, :mod:`retrieval.search.maxscore`):
per-term bounds of one smoothing model and per-block maxima of the counts, computed by
vectorised passes and cached on disk.

Notation as in :mod:`retrieval.smoothing`: a query model with weights q_w > 0 over the
known terms w ∈ q (mass M = Σ q_w, plus the weights of unknown terms kept under Indri's
rule), the matched-term weight m_w(d) = log[p_s(w|d) / (α_d p(w|C))] ≥ 0 and the document
term log α_d. A document's score is

    s(d) = K + M · log α_d + Σ_{w ∈ q∩d} q_w · m_w(d),        K = Σ_w q_w log p(w|C).

Bounds (computed once per index generation and smoothing model, see
:func:`term_bounds`; valid for *every* smoothing method, since they are maxima of the
model's own functions over the actual postings):

* T_w = max_{d ∋ w} [m_w(d) + log α_d]   — the largest per-term score log[p_s(w|d)/p(w|C)]
  over w's postings (Dirichlet: log[(c+μp)/((|d|+μ)p)]; Jelinek-Mercer:
  log[λ + (1−λ)c/(|d|p)]; absolute discounting: log[(c−δ)/|d| + δ|d|_u p/|d|] − log p;
  two-stage: log[(1−λ)(c+μp)/((|d|+μ)p) + λ]);
* A = max_{d : |d| > 0} log α_d          — the largest document term of a non-empty
  document (Dirichlet: log[μ/(min|d|+μ)]; JM: log λ; AD: max log(δ|d|_u/|d|);
  two-stage: log[(μ+λ min|d|)/(min|d|+μ)]). Every document that contains a query
  term is non-empty.

Splitting M·log α_d over the query terms (q_w·log α_d each, unknown terms included) gives,
for any set S of query terms and any document d whose query terms all lie in S,

    s(d) = K + Σ_{w∈q∩d} q_w [m_w(d) + log α_d] + (M − Σ_{w∈q∩d} q_w) log α_d
         ≤ K + M·A + Σ_{w ∈ S} q_w · g_w,          g_w = max(T_w − A, 0) ≥ 0.

MaxScore: a threshold θ is the k-th best *exact* score among some ≥ k real candidate
documents (the postings of the terms with the largest q_w g_w), so the true k-th best
score is ≥ θ. Terms sorted by q_w g_w ascending, the longest prefix S with
K + M·A + Σ_S q_w g_w < θ − ε (ε = 1e-9·(1 + |θ|), far above float64 rounding of scores
that are sums of a few dozen terms) is *non-essential*: a document containing only
non-essential terms scores strictly below the k-th best and can be neither in the top k
nor tied with its last member. Only documents in the essential terms' postings are
candidates; their non-essential contributions are found by ``searchsorted`` in those
terms' (ascending) posting lists. Candidates are scored by the same formula, in the same
order of operations (terms in query-model order), as the exhaustive path, so scores are
bit-identical and ties resolve identically (by docid).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..index.arrays import range_positions
from ..paths import cache_dir

#: postings per vectorised chunk when computing bounds (bounds the temporary memory)
_CHUNK_POSTINGS = 1 << 22
#: bump when the bound definition or the cache file layout changes
_CACHE_VERSION = 1


@dataclass(frozen=True)
class TermBounds:
    """Per-term score bounds of one smoothing model on one index generation.

    ``total[t]`` = T_t = max over t's postings of m_t(d) + log α_d; ``matched[t]`` = max
    over t's postings of m_t(d); ``alpha_max`` = A = max log α_d over non-empty documents.
    Terms without postings have −inf.
    """
    total: np.ndarray
    matched: np.ndarray
    alpha_max: float

    def gains(self) -> np.ndarray:
        """g_t = max(T_t − A, 0): a term's largest score gain over the baseline M·A."""
        return np.maximum(self.total - self.alpha_max, 0.0)


def compute_term_bounds(post_ptr, post_docs, post_counts, doc_len, doc_unique,
                        p_coll, model, log_alpha) -> TermBounds:
    """:class:`TermBounds` by one vectorised pass over all postings (chunked by terms)."""
    post_ptr = np.asarray(post_ptr, dtype=np.int64)
    n_terms = len(post_ptr) - 1
    total = np.full(n_terms, -np.inf)
    matched = np.full(n_terms, -np.inf)
    uses = model.uses
    nonempty = np.asarray(doc_len) > 0
    alpha_max = float(log_alpha[nonempty].max()) if nonempty.any() else 0.0
    t0 = 0
    while t0 < n_terms:
        # the largest t1 with at most _CHUNK_POSTINGS postings in [t0, t1) (≥ 1 term)
        t1 = int(np.searchsorted(post_ptr, post_ptr[t0] + _CHUNK_POSTINGS, side="right")) - 1
        t1 = min(max(t1, t0 + 1), n_terms)
        s, e = int(post_ptr[t0]), int(post_ptr[t1])
        lengths = np.diff(post_ptr[t0:t1 + 1])
        has = lengths > 0
        if e > s:
            docs = np.asarray(post_docs[s:e])
            terms = np.repeat(np.arange(t0, t1), lengths)
            mw = model.matched_weight(np.asarray(post_counts[s:e]),
                                      doc_len[docs] if "doc_len" in uses else None,
                                      doc_unique[docs] if "doc_unique" in uses else None,
                                      p_coll[terms])
            firsts = (post_ptr[t0:t1] - s)[has]
            matched[t0:t1][has] = np.maximum.reduceat(mw, firsts)
            mw += log_alpha[docs]
            total[t0:t1][has] = np.maximum.reduceat(mw, firsts)
        t0 = t1
    return TermBounds(total, matched, alpha_max)


# -- caching --------------------------------------------------------------------------
#: bounds memoised per index object (index → {model or "blockmax": bounds}); entries go
#: with their index
_MEMORY: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def forget_bounds() -> None:
    """Drop the bounds memoised in this process (they are recomputed or read from the
    disk cache on next use)."""
    _MEMORY.clear()


def _cache_file(index, model) -> Path | None:
    manifest = getattr(index, "manifest", None) or {}
    index_id, generation = manifest.get("index_id"), manifest.get("generation")
    if index.path is None or not index_id or generation is None:
        return None
    params = json.dumps([_CACHE_VERSION, type(model).__name__, model.get_params()],
                        sort_keys=True, default=repr)
    key = hashlib.blake2b(params.encode(), digest_size=8).hexdigest()
    return cache_dir() / "bounds" / f"{index_id}-g{int(generation)}-{model.name}-{key}.npz"


def term_bounds(index, model, *, post_ptr, post_docs, post_counts, doc_len, doc_unique,
                log_alpha) -> TermBounds:
    """The bounds of ``model`` on ``index``: memoised per index object, and for an index
    on disk cached in ``cache_dir()/bounds`` under the index's ``index_id`` and
    ``generation`` (generation folders are immutable) and the model's parameters. The
    cache is best effort: unreadable or mismatched files are recomputed, unwritable
    folders are skipped. Nothing is written inside the index folder."""
    memo = _MEMORY.setdefault(index, {})
    found = memo.get(model)
    if found is not None:
        return found
    n_terms = len(post_ptr) - 1
    file = _cache_file(index, model)
    bounds = None
    if file is not None and file.is_file():
        try:
            with np.load(file) as z:
                total, matched = z["total"], z["matched"]
                alpha_max = float(z["alpha_max"])
            if total.shape == (n_terms,) and matched.shape == (n_terms,) \
                    and total.dtype == np.float64 and matched.dtype == np.float64:
                bounds = TermBounds(total, matched, alpha_max)
        except (OSError, ValueError, KeyError):
            bounds = None
    if bounds is None:
        bounds = compute_term_bounds(post_ptr, post_docs, post_counts, doc_len, doc_unique,
                                     index.p_collection, model, log_alpha)
        if file is not None:
            _write_cache(file, bounds)
    memo[model] = bounds
    return bounds


def _write_cache(file: Path, bounds: TermBounds) -> None:
    _write_npz(file, total=bounds.total, matched=bounds.matched,
               alpha_max=np.float64(bounds.alpha_max))


# -- block maxima of counts -------------------------------------------------------------
#: target postings per block: a term with df postings gets docid-range blocks of
#: 2^s documents, s = ⌊log2(_PER_BLOCK · N / df)⌋, i.e. about df/_PER_BLOCK … 2·df/_PER_BLOCK
#: blocks
_PER_BLOCK = 4
#: terms with fewer postings get no blocks (their exact look-up is as cheap)
_BLOCK_MIN_DF = 64
#: block maxima are stored as uint8; a stored 255 means "255 or more"
SATURATED = 255


@dataclass(frozen=True)
class BlockMaxima:
    """Per-term maxima of c(w,d) over docid-range blocks (parameter-free).

    Term ``t`` with ``shift[t] ≥ 0`` splits the document numbers into blocks of
    2^shift[t]; ``counts[offsets[t] + (d >> shift[t])]`` is the largest c(t, d') over t's
    postings d' in d's block (0: none; 255: 255 or more). Since every smoothing model's
    matched weight increases with c for fixed document statistics, a document d that
    contains t has m_t(d) ≤ m(c = that block maximum, |d|, |d|_u, p(t|C)).
    """
    shift: np.ndarray      # int8 V, −1: no blocks
    offsets: np.ndarray    # int64 V+1
    counts: np.ndarray     # uint8

    def block_max(self, term: int, docs: np.ndarray) -> np.ndarray | None:
        s = int(self.shift[term])
        if s < 0:
            return None
        return self.counts[int(self.offsets[term]) + (docs >> s)]


def compute_block_maxima(post_ptr, post_docs, post_counts, n_docs: int) -> BlockMaxima:
    """:class:`BlockMaxima` in one vectorised pass over the postings (chunked by terms)."""
    post_ptr = np.asarray(post_ptr, dtype=np.int64)
    n_terms = len(post_ptr) - 1
    df = np.diff(post_ptr)
    shift = np.full(n_terms, -1, dtype=np.int8)
    sel = df >= max(_BLOCK_MIN_DF, 1)
    if n_docs > 0 and sel.any():
        s = np.floor(np.log2(_PER_BLOCK * n_docs / df[sel])).astype(np.int64)
        shift[sel] = np.clip(s, 0, 62)
    n_blocks = np.where(shift >= 0,
                        ((max(n_docs, 1) - 1) >> np.maximum(shift, 0).astype(np.int64)) + 1, 0)
    offsets = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(n_blocks, out=offsets[1:])
    counts = np.zeros(int(offsets[-1]), dtype=np.uint8)
    t0 = 0
    while t0 < n_terms:
        t1 = int(np.searchsorted(post_ptr, post_ptr[t0] + _CHUNK_POSTINGS, side="right")) - 1
        t1 = min(max(t1, t0 + 1), n_terms)
        terms = np.flatnonzero(sel[t0:t1]) + t0
        if len(terms):
            lengths = df[terms]
            parts_s = post_ptr[terms]
            # postings of the selected terms of this chunk
            idx = range_positions(parts_s, lengths)
            term_of = np.repeat(terms, lengths)
            docs = np.asarray(post_docs)[idx].astype(np.int64)
            key = offsets[term_of] + (docs >> shift[term_of].astype(np.int64))
            c = np.minimum(np.asarray(post_counts)[idx], SATURATED)
            first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
            counts[key[first]] = np.maximum.reduceat(c, first)
        t0 = t1
    return BlockMaxima(shift, offsets, counts)


def _block_cache_file(index) -> Path | None:
    manifest = getattr(index, "manifest", None) or {}
    index_id, generation = manifest.get("index_id"), manifest.get("generation")
    if index.path is None or not index_id or generation is None:
        return None
    return cache_dir() / "bounds" / \
        f"{index_id}-g{int(generation)}-blockmax-v{_CACHE_VERSION}-{_PER_BLOCK}-{_BLOCK_MIN_DF}.npz"


def block_maxima(index, *, post_ptr, post_docs, post_counts) -> BlockMaxima:
    """The :class:`BlockMaxima` of ``index``: memoised per index object and, for an
    index on disk, cached like :func:`term_bounds` (they do not depend on the model)."""
    memo = _MEMORY.setdefault(index, {})
    found = memo.get("blockmax")
    if found is not None:
        return found
    n_terms = len(post_ptr) - 1
    file = _block_cache_file(index)
    blocks = None
    if file is not None and file.is_file():
        try:
            with np.load(file) as z:
                shift, offsets, counts = z["shift"], z["offsets"], z["counts"]
            if shift.shape == (n_terms,) and offsets.shape == (n_terms + 1,) \
                    and counts.shape == (int(offsets[-1]),) and counts.dtype == np.uint8:
                blocks = BlockMaxima(shift, offsets, counts)
        except (OSError, ValueError, KeyError):
            blocks = None
    if blocks is None:
        blocks = compute_block_maxima(post_ptr, post_docs, post_counts, index.num_docs)
        if file is not None:
            _write_npz(file, shift=blocks.shift, offsets=blocks.offsets, counts=blocks.counts)
    memo["blockmax"] = blocks
    return blocks


def _write_npz(file: Path, **arrays) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=file.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        pass
