"""Counting documents for an index: analysis of each document once, (term id, count) pairs.

:class:`DocumentCounts` streams documents: it keeps only the (term id, count) pairs of each
document, the ids and (optionally) the text; :meth:`DocumentCounts.finish_arrays` turns
them into a document-major CSR and hands it to :func:`retrieval.index.arrays.assemble`,
which makes every array (vectorised numpy/scipy code). :class:`~retrieval.index.builder.
IndexBuilder` is this class with ``finish()`` returning an :class:`~retrieval.index.reader.
Index`; :meth:`Index.build <retrieval.index.reader.Index.build>` uses it directly.

:data:`CHUNK_DOCS` documents are counted at once (one ``numpy.unique`` per chunk); tests
set it small to cross chunk boundaries.
"""

from __future__ import annotations

from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from itertools import chain, islice

import numpy as np

from ..analysis import Analyzer, count_tokens
from ..errors import InputError, ParameterError
from ..records import Document
from ..safeio import clamp_jobs
from .arrays import assemble, new_manifest
from .bytetokens import ByteTokenMemo
from .fields import field_arrays
from ..fields import name_text

#: documents per counted chunk (and per task of a worker process)
CHUNK_DOCS = 2000


class DocumentCounts:
    """Accumulates documents and produces the arrays and manifest of an index.

    Documents are counted as they arrive (``add``) so memory holds only the counts, the
    ids, and — when ``store_text`` — the text. Each distinct raw token is analysed once:
    a token → term id map fuses stopping, stemming and the vocabulary lookup.
    """

    def __init__(self, analyzer: Analyzer | None = None, store_text: bool = True,
                 fields: bool | None = None):
        self.analyzer = analyzer if analyzer is not None else Analyzer()
        self.store_text = store_text
        self.fields = fields  # title/name fields: True, False, None = when a title is given
        self._titles: list[str] = []
        self._token_ids: dict[str | bytes, int] = {}  # raw token -> term id (-1: stop)
        self._bytes = ByteTokenMemo()                   # the same for ASCII chunks
        self._finished = False
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

    @property
    def docids(self) -> list[str]:
        """The ids added so far, in order."""
        return list(self._docids)

    def _check_open(self) -> None:
        if self._finished:
            raise ParameterError("this IndexBuilder has finished (finish() hands its "
                                 "counts to the index); make a new IndexBuilder")

    def add(self, docid: str, text: str) -> None:
        self._check_open()
        self._register(docid, text)
        self._titles.append("")
        self._docids.append(docid)
        token_counts = Counter(count_tokens(text))
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

    def _add_chunk(self, chunk: list[tuple[str, str]]) -> None:
        """:meth:`add` for many documents at once, with one vectorised count.

        :meth:`~retrieval.index.bytetokens.ByteTokenMemo.chunk_counts` tokenises the
        texts and maps them to term ids with numpy arrays (no Python object per token;
        the ASCII or Unicode path is chosen per document), new distinct tokens analysed
        once each, and counts the (document, term) pairs; stop words are dropped here.
        The index is identical to adding the documents one by one.
        """
        for docid, text in chunk:
            self._register(docid, text)
        keys, counts = self._bytes.chunk_counts([text for _, text in chunk],
                                                self._new_token, self._token_id,
                                                self._new_tokens)
        terms = (keys & 0xFFFFFFFF) - 1
        kept = terms >= 0  # stop words have id -1
        terms, counts, rows = terms[kept], counts[kept], keys[kept] >> 32
        self._doc_terms.frombytes(terms.astype(np.int32).tobytes())
        self._doc_counts.frombytes(counts.astype(np.int32).tobytes())
        self._doc_nnz.frombytes(np.bincount(rows, minlength=len(chunk)).astype(np.int64)
                                .tobytes())
        self._keep_documents(chunk)

    def _keep_documents(self, chunk) -> None:
        """Record the ids (and, when stored, the text) of documents just counted."""
        for docid, text in chunk:
            self._docids.append(docid)
            if self.store_text:
                raw = text.encode("utf-8", errors="surrogatepass")
                self._text.append(raw)
                self._text_len.append(len(raw))

    def _token_id(self, token: str | bytes) -> int:
        tid = self._token_ids.get(token)
        return self._new_token(token) if tid is None else tid

    def _new_token(self, token: str | bytes) -> int:
        """Analyse a token never seen before (bytes: an ASCII token) and memoise its id."""
        term = self.analyzer.term(token.decode("ascii") if isinstance(token, bytes) else token)
        if term is None:
            tid = -1
        else:
            tid = self._term_ids.get(term)
            if tid is None:
                tid = len(self._term_ids)
                self._term_ids[term] = tid
        self._token_ids[token] = tid
        return tid

    def _new_tokens(self, tokens: list) -> list[int]:
        """:meth:`_new_token` of many tokens at once (one :meth:`Analyzer.terms` call)."""
        words = [t.decode("ascii") if isinstance(t, bytes) else t for t in tokens]
        term_ids, token_ids = self._term_ids, self._token_ids
        out = []
        for token, term in zip(tokens, self.analyzer.terms(words)):
            if term is None:
                tid = -1
            else:
                tid = term_ids.get(term)
                if tid is None:
                    tid = term_ids[term] = len(term_ids)
            token_ids[token] = tid
            out.append(tid)
        return out

    def add_documents(self, documents: Iterable[Document | tuple[str, str]],
                      on_document: Callable[[int], None] | None = None, *,
                      jobs: int = 1) -> None:
        """Add ``(docid, text)`` pairs in order.

        ``jobs`` > 1 analyses chunks of documents in that many forked worker processes
        (each keeps its own token → term memo) while this process reads the input and
        merges the workers' vocabularies; the index is identical to a serial build. At
        most ``2 × jobs`` chunks are in flight, so memory stays bounded. Without ``fork``
        (non-POSIX platforms) the build is serial. ``jobs`` is clamped
        (:func:`retrieval.safeio.clamp_jobs`) to the CPUs this process may use and to the
        number of chunks of :data:`CHUNK_DOCS` documents (the first ``jobs`` chunks are
        read before the workers start); ``jobs_used_`` records what was used.
        """
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ParameterError(f"jobs must be a whole number >= 1, got {jobs!r}")
        self._check_open()
        pairs = (self._pair(item) for item in documents)
        import multiprocessing as mp   # only when building
        chunks = _chunks(pairs, CHUNK_DOCS)
        if jobs > 1:
            jobs, chunks = _clamped_jobs(jobs, chunks)
        self.jobs_used_ = jobs
        if jobs == 1 or "fork" not in mp.get_all_start_methods():
            for chunk in chunks:
                self._add_chunk(chunk)
                if on_document is not None:
                    on_document(len(chunk))
            return
        ctx = mp.get_context("fork")
        window: deque = deque()
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(self.analyzer.config(),)) as pool:
            for chunk in chunks:
                for docid, text in chunk:
                    self._register(docid, text)
                window.append((chunk, pool.apply_async(_analyze_chunk,
                                                       ([t for _, t in chunk],))))
                if len(window) >= 2 * jobs:
                    self._merge_chunk(*window.popleft(), on_document)
            while window:
                self._merge_chunk(*window.popleft(), on_document)

    def _pair(self, item) -> tuple[str, str]:
        """``(docid, text)`` of a pair, or of a ``(docid, text, title)``
        :class:`~retrieval.fields.FieldedDocument` (its title is kept for the fields)."""
        title = ""
        if isinstance(item, tuple) and len(item) == 3:
            item, title = item[:2], item[2]
            if not isinstance(title, str):
                raise InputError(f"document {item[0]!r}: the title must be a string, got "
                                 f"{type(title).__name__}")
        self._titles.append(title)
        try:
            docid, text = item
        except (TypeError, ValueError):
            raise InputError(f"expected (docid, text) pairs, got {item!r:.80}") from None
        return docid, text

    def _register(self, docid: str, text: str) -> None:
        """Checks and bookkeeping of :meth:`add` without the analysis."""
        if not isinstance(docid, str) or not docid:
            raise InputError(f"document ids must be non-empty strings, got {docid!r}")
        if not isinstance(text, str):
            raise InputError(f"document {docid!r}: text must be a string, got "
                             f"{type(text).__name__}")
        if docid in self._docid_set:
            raise InputError(f"document id {docid!r} appears twice; ids must be unique")
        self._docid_set.add(docid)

    def _merge_chunk(self, chunk, pending, on_document) -> None:
        terms, tids, counts, nnz = pending.get()
        term_ids = self._term_ids
        remap = np.empty(len(terms) + 1, dtype=np.int32)
        remap[-1] = -1  # stop words stay -1
        for i, term in enumerate(terms):  # once per distinct term of the chunk
            tid = term_ids.get(term)
            if tid is None:
                tid = len(term_ids)
                term_ids[term] = tid
            remap[i] = tid
        self._doc_terms.frombytes(remap[tids].tobytes())
        self._doc_counts.frombytes(counts.tobytes())
        self._doc_nnz.frombytes(nnz.tobytes())
        self._keep_documents(chunk)
        if on_document is not None:
            on_document(len(chunk))


    def finish_arrays(self, sources: Iterable[str] = (), read_stats: dict | None = None
                      ) -> tuple[dict[str, np.ndarray], dict]:
        """The arrays and manifest of everything added so far (once: the counts are spent).

        The count buffers are handed over and released as soon as they are copied: the
        peak stays near two copies of the postings, not four.
        """
        self._check_open()
        self._finished = True
        n_docs = len(self._docids)
        n_terms = len(self._term_ids)
        # vocabulary in code-point order; remap first-seen ids to sorted positions
        terms_first_seen = list(self._term_ids)
        order = sorted(range(n_terms), key=terms_first_seen.__getitem__)
        remap = np.empty(n_terms, dtype=np.int32)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(n_terms, dtype=np.int32)
        vocab = [terms_first_seen[i] for i in order]
        fwd = self._forward(n_docs, n_terms, remap)
        arrays = assemble(fwd.indptr, fwd.indices, fwd.data, vocab, self._docids,
                          self._text if self.store_text else None)
        del fwd
        fields = self.fields if self.fields is not None else any(self._titles)
        if fields:
            arrays.update(field_arrays({"title": self._titles,
                                        "name": [name_text(d) for d in self._docids]},
                                       self.analyzer))
        self._titles = []
        manifest = new_manifest(self.analyzer, self.store_text, arrays, sources=sources,
                                read_stats=read_stats,
                                fields=("title", "name") if fields else ())
        return arrays, manifest

    def _forward(self, n_docs: int, n_terms: int, remap: np.ndarray):
        """The document-major CSR of the counts (a ``scipy.sparse.csr_matrix``), stop
        words dropped, term ids remapped."""
        tids = np.frombuffer(self._doc_terms, dtype=np.int32) if len(self._doc_terms) \
            else np.zeros(0, dtype=np.int32)
        cnts = np.frombuffer(self._doc_counts, dtype=np.int32) if len(self._doc_counts) \
            else np.zeros(0, dtype=np.int32)
        nnz = np.frombuffer(self._doc_nnz, dtype=np.int64) if n_docs \
            else np.zeros(0, dtype=np.int64)
        # drop stop words (id -1): per-document counts of what remains via a prefix sum
        kept = tids >= 0
        seg = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(nnz, out=seg[1:])
        if not kept.all():
            kept_before = np.zeros(len(kept) + 1, dtype=np.int64)
            np.cumsum(kept, out=kept_before[1:])
            seg = kept_before[seg]
            tids, cnts = tids[kept], cnts[kept]
        del kept
        cols = remap[tids] if len(tids) else tids.copy()
        del tids
        self._doc_terms = array("i")
        data = np.array(cnts, dtype=np.int32)
        del cnts
        self._doc_counts = array("i")
        # documents arrive in order, so this is the document-major CSR already; several raw
        # tokens can map to one term (stemming): scipy sorts and sums duplicates in place
        import scipy.sparse as sp   # here only: searching needs no scipy
        fwd = sp.csr_matrix((data, cols, seg), shape=(n_docs, n_terms))
        del data, cols
        fwd.sum_duplicates()
        return fwd


_WORKER_ANALYZER: Analyzer | None = None


def _init_worker(config: dict) -> None:
    global _WORKER_ANALYZER
    _WORKER_ANALYZER = Analyzer.from_config(config)


def _analyze_chunk(texts: list[str]):
    """Worker: (terms in first-seen order, per-document term indices (-1: stop word),
    counts, distinct tokens per document) of one chunk, via the serial fast path."""
    builder = DocumentCounts(analyzer=_WORKER_ANALYZER, store_text=False)
    builder._add_chunk([(str(i), text) for i, text in enumerate(texts)])
    return (list(builder._term_ids), np.frombuffer(builder._doc_terms, dtype=np.int32),
            np.frombuffer(builder._doc_counts, dtype=np.int32),
            np.frombuffer(builder._doc_nnz, dtype=np.int64))


def _clamped_jobs(jobs: int, chunks):
    """``jobs`` lowered to the CPUs and to the chunks there are (at most ``jobs`` chunks
    are read ahead to count them), and the chunk iterator with those put back."""
    jobs = clamp_jobs(jobs).jobs
    ahead = list(islice(chunks, jobs))
    if len(ahead) < jobs:
        jobs = clamp_jobs(jobs, len(ahead)).jobs
    return jobs, chain(ahead, chunks)


def _chunks(iterable, size: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
