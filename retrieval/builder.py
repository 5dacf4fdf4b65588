"""Building an index: analysis of each document once, counting, and the final arrays.

:class:`IndexBuilder` streams documents: it keeps only the (term id, count) pairs of each
document, the ids and (optionally) the text, then :meth:`IndexBuilder.finish` turns them
into the arrays described in :mod:`retrieval.index` with vectorised numpy/scipy code.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp

from ._version import __version__
from .analysis import Analyzer, tokenize
from .errors import InputError
from .index import FORMAT, FORMAT_VERSION, Index
from .records import Document


def _segment_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Exact int64 sums of ``values`` over the CSR segments ``indptr``."""
    cumulative = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, dtype=np.int64, out=cumulative[1:])
    return cumulative[indptr[1:]] - cumulative[indptr[:-1]]


def _pack_strings(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return offsets, blob


class IndexBuilder:
    """Accumulates documents and produces an :class:`Index`.

    Documents are counted as they arrive (``add``) so memory holds only the counts, the
    ids, and — when ``store_text`` — the text. Each distinct raw token is analysed once:
    a token → term id map fuses stopping, stemming and the vocabulary lookup.
    """

    def __init__(self, analyzer: Analyzer | None = None, store_text: bool = True):
        self.analyzer = analyzer if analyzer is not None else Analyzer()
        self.store_text = store_text
        self._token_ids: dict[str, int] = {}     # raw token -> term id (-1: stop word)
        self._term_ids: dict[str, int] = {}      # term -> term id (first-seen order)
        self._doc_terms = array("i")
        self._doc_counts = array("i")
        self._doc_nnz = array("q")
        self._docids: list[str] = []
        self._docid_set: set[str] = set()
        self._text: list[bytes] = []
        self._text_len = array("q")

    @property
    def num_docs(self) -> int:
        return len(self._docids)

    def add(self, docid: str, text: str) -> None:
        if not isinstance(docid, str) or not docid:
            raise InputError(f"document ids must be non-empty strings, got {docid!r}")
        if not isinstance(text, str):
            raise InputError(f"document {docid!r}: text must be a string, got "
                             f"{type(text).__name__}")
        if docid in self._docid_set:
            raise InputError(f"document id {docid!r} appears twice; ids must be unique")
        self._docid_set.add(docid)
        self._docids.append(docid)
        token_counts = Counter(tokenize(text))
        tokens = list(token_counts)
        tids = list(map(self._token_ids.get, tokens))
        if None in tids:  # tokens never seen before: analyse each once
            tids = [self._new_token(tok) if tid is None else tid
                    for tid, tok in zip(tids, tokens)]
        # stop words (id -1) stay in the buffers and are dropped, vectorised, in finish()
        self._doc_terms.extend(tids)
        self._doc_counts.extend(token_counts.values())
        self._doc_nnz.append(len(tids))
        if self.store_text:
            raw = text.encode("utf-8", errors="surrogatepass")
            self._text.append(raw)
            self._text_len.append(len(raw))

    def _new_token(self, token: str) -> int:
        term = self.analyzer.term(token)
        if term is None:
            tid = -1
        else:
            tid = self._term_ids.get(term)
            if tid is None:
                tid = len(self._term_ids)
                self._term_ids[term] = tid
        self._token_ids[token] = tid
        return tid

    def add_documents(self, documents: Iterable[Document | tuple[str, str]],
                      on_document: Callable[[int], None] | None = None) -> None:
        for item in documents:
            try:
                docid, text = item
            except (TypeError, ValueError):
                raise InputError(f"expected (docid, text) pairs, got {item!r:.80}") from None
            self.add(docid, text)
            if on_document is not None:
                on_document(1)

    def finish(self, sources: Iterable[str] = (), read_stats: dict | None = None) -> "Index":
        """The in-memory index of everything added so far."""
        n_docs = len(self._docids)
        n_terms = len(self._term_ids)
        # vocabulary in code-point order; remap first-seen ids to sorted positions
        terms_first_seen = list(self._term_ids)
        order = sorted(range(n_terms), key=terms_first_seen.__getitem__)
        remap = np.empty(n_terms, dtype=np.int32)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(n_terms, dtype=np.int32)
        vocab = [terms_first_seen[i] for i in order]

        tids = np.frombuffer(self._doc_terms, dtype=np.int32) if len(self._doc_terms) \
            else np.zeros(0, dtype=np.int32)
        cnts = np.frombuffer(self._doc_counts, dtype=np.int32) if len(self._doc_counts) \
            else np.zeros(0, dtype=np.int32)
        nnz = np.frombuffer(self._doc_nnz, dtype=np.int64) if n_docs \
            else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(n_docs, dtype=np.int32), nnz)
        kept = tids >= 0  # drop stop words
        rows, tids, cnts = rows[kept], tids[kept], cnts[kept]
        cols = remap[tids] if len(tids) else tids
        # several raw tokens can map to one term (stemming): sum duplicates
        fwd = sp.csr_matrix((cnts.astype(np.int64), (rows, cols)), shape=(n_docs, n_terms))
        fwd.sum_duplicates()
        fwd.sort_indices()
        post = fwd.tocsc()
        post.sort_indices()

        arrays: dict[str, np.ndarray] = {}
        arrays["forward_indptr"] = fwd.indptr.astype(np.int64)
        arrays["forward_terms"] = fwd.indices.astype(np.int32)
        arrays["forward_counts"] = fwd.data.astype(np.int32)
        arrays["postings_indptr"] = post.indptr.astype(np.int64)
        arrays["postings_docs"] = post.indices.astype(np.int32)
        arrays["postings_counts"] = post.data.astype(np.int32)
        arrays["doc_lengths"] = _segment_sums(arrays["forward_counts"], arrays["forward_indptr"])
        arrays["doc_unique"] = np.diff(arrays["forward_indptr"]).astype(np.int32)
        arrays["term_cf"] = _segment_sums(arrays["postings_counts"], arrays["postings_indptr"])
        arrays["term_df"] = np.diff(arrays["postings_indptr"]).astype(np.int32)
        arrays["vocab_offsets"], arrays["vocab_bytes"] = _pack_strings(vocab)
        arrays["docid_offsets"], arrays["docid_bytes"] = _pack_strings(self._docids)
        sorted_docs = np.asarray(sorted(range(n_docs), key=self._docids.__getitem__),
                                 dtype=np.int32)
        rank = np.empty(n_docs, dtype=np.int32)
        rank[sorted_docs] = np.arange(n_docs, dtype=np.int32)
        arrays["docid_sorted"] = sorted_docs
        arrays["docid_rank"] = rank
        if self.store_text:
            offsets = np.zeros(n_docs + 1, dtype=np.int64)
            if n_docs:
                np.cumsum(np.frombuffer(self._text_len, dtype=np.int64), out=offsets[1:])
            arrays["text_offsets"] = offsets
            arrays["text_bytes"] = np.frombuffer(b"".join(self._text), dtype=np.uint8).copy()

        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "analyzer": self.analyzer.config(),
            "counts": {
                "documents": n_docs,
                "terms": n_terms,
                "tokens": int(arrays["doc_lengths"].sum()),
                "postings": int(len(arrays["postings_docs"])),
                "empty_documents": int(np.count_nonzero(arrays["doc_lengths"] == 0)),
            },
            "store_text": self.store_text,
            "sources": [str(s) for s in sources],
            "read_stats": read_stats or {},
        }
        return Index(arrays, manifest, path=None)
