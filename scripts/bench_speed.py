#!/usr/bin/env python3
"""Speed side by side, end to end: this engine, bm25s, PISA, tantivy (and rank_bm25).

Every system is timed from query *strings* to ranked ``(docid string, score)`` lists, one
thread, on the same corpus, queries and k. Each system's index build and each query phase
run in their own subprocess (this script with ``--worker``), so peak memory is that
process's own ``VmHWM``; times are measured in-process around the calls themselves.

Rows (``--systems``; builds are shared within a family):

``ours``            this engine's public API: ``Searcher.batch_search`` → lists of
                    ``SearchResult`` (one Python object per result, as it is today)
``ours-columnar``   ``Searcher.batch_search_arrays`` + ``retrieval.results.columnar`` with
                    its ``docids`` read: numpy columns and an object array of docid strings
                    (what ``batch_search`` is to return once it is wired in)
``ours-arrays``     EXTRA, not end to end: ``batch_search_arrays`` alone (internal document
                    numbers, no docid strings); kept to show what the result type costs
``ours-cli``        whole processes: ``retrieval index`` and ``retrieval search --format trec``
``bm25s``           bm25s with ``backend="numba"`` (its fastest); docids by one ``take``
                    from an object array, like ``ours-columnar``
``bm25s-numpy``     the same index with the numpy backend
``pisa``            PISA raw: pyterrier-pisa's ``_pisathon.retrieve`` (C++ tokenising,
                    stemming, block-max WAND; fills numpy arrays of docnos/scores; no pandas)
``pisa-pyterrier``  the same through ``PisaRetrieve.transform`` (a pandas DataFrame)
``tantivy``         tantivy-py (Rust, BM25 k1=1.2 b=0.75, block-max WAND with ``count=False``);
                    hits mapped to docid strings through the single segment's doc order
``rank_bm25``       ``BM25Okapi`` (exhaustive; small corpora, a sample of queries)

Analyzers — the same for every system: the 33 Lucene stop words and Snowball English
(Porter2) stemming. ``default`` mode: each system analyses raw text itself, configured
that way (this engine ``Analyzer("lucene", "snowball")``; bm25s ``bm25s.tokenize`` with
the ``[^\\W_]+`` token pattern, the Lucene list and PyStemmer English; PISA
``stemmer="porter2", stops="lucene"``; tantivy a ``simple`` tokenizer + lowercase +
the Lucene list + its ``english`` stemmer); tokenisers still differ in details. ``common``
mode: every system gets the *same pre-analysed tokens* (this engine's analyzer run once,
its time reported apart) as whitespace-joined text (a whitespace tokenizer in tantivy,
``Analyzer("none", "none")`` here, PISA with stemmer and stops off, bm25s ``\\S+``).

Methods: this engine ranks by query likelihood, Dirichlet μ = 1000. PISA runs ``qld``
(μ = 1000) and ``bm25`` (k1 = 0.9, b = 0.4). bm25s: BM25 ``method="lucene"`` k1 = 1.5,
b = 0.75. Scores differ between systems; the work (postings of the query terms, top k)
is the same kind.

Fairness rules (issue 15):

- *caches warmed alike*: before any timed pass every system answers the whole query set
  once at each k, so every query-analysis cache is warm for every system (this engine's
  token → term-id memo, ``Searcher``'s per-searcher dictionary, and its analyzer memo;
  PyStemmer's cache for bm25s; tantivy and PISA analyse in native code and keep none);
- *interleaved rounds*: ``--repeat`` rounds (default 3); in each round every row's query
  process runs once, in a rotated order; the best round's throughput is reported, the
  load average (1 min) is recorded at each process's start and end and shown per row;
- *latency* over ``--latency-queries`` queries sampled uniformly (seeded) across the whole
  query set, the same sample for every system; percentiles are the median over rounds;
- this engine only through its public API (``Searcher``, ``retrieval.results``); the
  compiled kernels are loaded by a warm-up search with ``compiled=True`` when numba is
  importable (``importlib.util.find_spec``), so their one-off loading is in the open time.

Metrics: build time (tokenising / indexing / saving), index size, peak RSS of the build
and of the query process, batch throughput (queries/s), latency p50/p95/p99, per k in
``--k``. A Markdown table with each peer's ratio to this engine and an "engine ÷ peer"
headline table are printed and written with a JSON file.

``--sizes 10000,100000,1000000`` sweeps synthetic corpora (``make_corpus.py``) and draws
log–log plots of build time and query time against corpus size, with fitted slopes.

Examples::

    python scripts/bench_speed.py --shared
    python scripts/bench_speed.py --docs 100k --modes default
    python scripts/bench_speed.py --sizes 10000,100000,1000000
    python scripts/bench_speed.py --tiny            # CI: a few hundred documents, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = REPO / "results" / "speed"
SYSTEMS = ("ours", "ours-columnar", "ours-arrays", "ours-cli", "bm25s", "bm25s-numpy", "pisa",
           "pisa-pyterrier", "tantivy", "rank_bm25")
MODES = ("common", "default")
#: the index each row queries (rows of one family share one build)
FAMILY = {"ours": "ours", "ours-columnar": "ours", "ours-arrays": "ours", "bm25s": "bm25s",
          "bm25s-numpy": "bm25s", "pisa": "pisa", "pisa-pyterrier": "pisa",
          "tantivy": "tantivy", "rank_bm25": "rank_bm25"}
METHODS = {"ours": ["qld_mu1000"], "bm25s": ["bm25_lucene_k1.5_b0.75"],
           "pisa": ["qld_mu1000", "bm25_k0.9_b0.4"], "tantivy": ["bm25_k1.2_b0.75"],
           "rank_bm25": ["bm25okapi_k1.5_b0.75"]}
#: rows with more methods than their family's first: the engine's default model (SPUD
#: ω=0.8, ``retrieval.smoothing.default_model``) beside Dirichlet μ=1000 on the public
#: columnar path, so issue 16's speed budget (default model ≤ 1.5× Dirichlet's query time)
#: is visible in the tables
ROW_METHODS = {"ours-columnar": ["qld_mu1000", "spud_omega0.8"]}
#: the default model's method label (the CLI row runs it: no --model given)
DEFAULT_METHOD = "spud_omega0.8"
#: the rows of the "engine ÷ peer" headline table: (engine row, peer row, method)
HEADLINE = [("ours-columnar", "bm25s", None), ("ours-columnar", "pisa", "qld_mu1000"),
            ("ours-columnar", "pisa", "bm25_k0.9_b0.4"), ("ours-columnar", "tantivy", None),
            ("ours", "bm25s", None)]
LUCENE_STOPWORDS = ("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in",
                    "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the",
                    "their", "then", "there", "these", "they", "this", "to", "was", "will",
                    "with")
TOKEN_PATTERN = r"(?u)[^\W_]+"      # this engine's tokens: runs of letters and digits
THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS")}


# ----------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------
def _maxrss_mb() -> float:
    """This process's peak resident set (MB).

    ``VmHWM`` of /proc/self/status where there is one: it belongs to the process's own
    address space, while ``ru_maxrss`` on Linux also carries the parent's high-water mark
    over fork and exec (a worker started by a 130 MB parent reports at least 130 MB).
    """
    hwm = _vmhwm_mb("self")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _vmhwm_mb(pid) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def _dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _read_jsonl(path: Path) -> list[tuple[str, str]]:
    try:
        import orjson
        loads = orjson.loads
    except ImportError:  # pragma: no cover
        loads = json.loads
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                rec = loads(line)
                out.append((str(rec["id"]), rec["text"]))
    return out


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line:
                key, _, text = line.partition("\t")
                out.append((key, text))
    return out


def available(system: str) -> str | None:
    """None when ``system`` can run here, else why not."""
    import importlib.util
    need = {"bm25s": ["bm25s", "numba"], "bm25s-numpy": ["bm25s"],
            "pisa": ["pyterrier_pisa"], "pisa-pyterrier": ["pyterrier_pisa"],
            "tantivy": ["tantivy"], "rank_bm25": ["rank_bm25"]}.get(system, [])
    if system == "ours-cli":
        return None if shutil.which("retrieval") else "the 'retrieval' command is not on PATH"
    for module in need:
        if importlib.util.find_spec(module) is None:
            pkg = {"pyterrier_pisa": "pyterrier-pisa"}.get(module, module)
            return f"not installed (pip install {pkg})"
    return None


def percentiles(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64) * 1000.0
    if not len(a):
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(a.mean())}


# ----------------------------------------------------------------------------------
# corpus preparation (parent process)
# ----------------------------------------------------------------------------------
def prepare(corpus: Path, work: Path) -> dict:
    """Pre-analyse documents and queries with this engine's Analyzer, once."""
    from retrieval import Analyzer
    work.mkdir(parents=True, exist_ok=True)
    analyzer = Analyzer("lucene", "snowball")
    t0 = time.perf_counter()
    docs = _read_jsonl(corpus / "docs.jsonl")
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_tokens = 0
    with open(work / "tokens.tsv", "w", encoding="utf-8") as fh:
        for docid, text in docs:
            terms = analyzer.analyze(text)
            n_tokens += len(terms)
            fh.write(f"{docid}\t{' '.join(terms)}\n")
    t_analyse = time.perf_counter() - t0
    queries = _read_tsv(corpus / "queries.tsv")
    with open(work / "qtokens.tsv", "w", encoding="utf-8") as fh:
        for qid, text in queries:
            fh.write(f"{qid}\t{' '.join(analyzer.analyze(text))}\n")
    info = {"documents": len(docs), "queries": len(queries), "analysed_tokens": n_tokens,
            "read_s": t_read, "pre_analysis_s": t_analyse,
            "corpus_bytes": (corpus / "docs.jsonl").stat().st_size}
    del docs
    return info


# ----------------------------------------------------------------------------------
# workers (subprocesses)
# ----------------------------------------------------------------------------------
def _load_docs(spec: dict) -> list[tuple[str, str]]:
    if spec["mode"] == "common":
        return _read_tsv(Path(spec["work"]) / "tokens.tsv")
    return _read_jsonl(Path(spec["corpus"]) / "docs.jsonl")


def _load_queries(spec: dict) -> list[tuple[str, str]]:
    if spec["mode"] == "common":
        return _read_tsv(Path(spec["work"]) / "qtokens.tsv")
    return _read_tsv(Path(spec["corpus"]) / "queries.tsv")


def _engine_analyzer(mode: str):
    from retrieval import Analyzer
    return Analyzer("none", "none") if mode == "common" else Analyzer("lucene", "snowball")


def _bm25s_tokens(texts: list[str], mode: str, stemmer, ids: bool):
    import bm25s
    if mode == "common":
        return bm25s.tokenize(texts, lower=False, token_pattern=r"(?u)\S+", stopwords=[],
                              stemmer=None, return_ids=ids, show_progress=False)
    return bm25s.tokenize(texts, lower=True, token_pattern=TOKEN_PATTERN,
                          stopwords=list(LUCENE_STOPWORDS), stemmer=stemmer, return_ids=ids,
                          show_progress=False)


def _bm25s_stemmer(mode: str):
    if mode == "common":
        return None
    import Stemmer
    return Stemmer.Stemmer("english")


def _tantivy_schema(mode: str):
    """tantivy's schema and the analyzer registered under the text field's tokenizer."""
    import tantivy
    if mode == "common":
        analyzer = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
    else:
        analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                    .filter(tantivy.Filter.lowercase())
                    .filter(tantivy.Filter.custom_stopword(list(LUCENE_STOPWORDS)))
                    .filter(tantivy.Filter.stemmer("english")).build())
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("body", stored=False, tokenizer_name="bench", index_option="freq")
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    return sb.build(), analyzer


def worker_build(spec: dict) -> dict:
    system, mode, index_dir = spec["system"], spec["mode"], Path(spec["index"])
    t0 = time.perf_counter()
    docs = _load_docs(spec)
    res = {"load_input_s": time.perf_counter() - t0, "rss_input_mb": _maxrss_mb()}
    tok_s = 0.0
    if system == "ours":
        from retrieval import Index
        t0 = time.perf_counter()
        index = Index.build(docs, analyzer=_engine_analyzer(mode), store_text=False)
        t1 = time.perf_counter()
        index.save(index_dir)
        t2 = time.perf_counter()
        res["analyzer"] = repr(index.analyzer)
    elif system == "bm25s":
        import bm25s
        texts = [t for _, t in docs]
        ids = [d for d, _ in docs]
        del docs
        t0 = time.perf_counter()
        toks = _bm25s_tokens(texts, mode, _bm25s_stemmer(mode), True)
        tok_s = time.perf_counter() - t0
        del texts
        retriever = bm25s.BM25()
        retriever.index(toks, show_progress=False)
        t1 = time.perf_counter()
        retriever.save(str(index_dir), show_progress=False)
        (index_dir / "docids.json").write_text(json.dumps(ids), encoding="utf-8")
        t2 = time.perf_counter()
    elif system == "pisa":
        import pyterrier_pisa
        kw = ({"stemmer": "none", "stops": "none"} if mode == "common" else
              {"stemmer": "porter2", "stops": "lucene"})
        pidx = pyterrier_pisa.PisaIndex(str(index_dir), threads=1, **kw)
        t0 = time.perf_counter()
        pidx.index({"docno": d, "text": t} for d, t in docs)
        t1 = t2 = time.perf_counter()   # PISA writes its index as it builds
    elif system == "tantivy":
        import tantivy
        schema, analyzer = _tantivy_schema(mode)
        index_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        index = tantivy.Index(schema, path=str(index_dir))
        index.register_tokenizer("bench", analyzer)
        # one indexing thread and a large heap: one segment, documents in input order
        writer = index.writer(heap_size=2_000_000_000, num_threads=1)
        for d, t in docs:
            writer.add_document(tantivy.Document(id=d, body=t))
        t1 = time.perf_counter()
        writer.commit()
        writer.wait_merging_threads()
        (index_dir / "docids.json").write_text(json.dumps([d for d, _ in docs]),
                                               encoding="utf-8")
        t2 = time.perf_counter()
        index.reload()
        res["segments"] = index.searcher().num_segments
    elif system == "rank_bm25":
        import pickle
        from rank_bm25 import BM25Okapi
        t0 = time.perf_counter()
        toks = [t.split() for _, t in docs]
        tok_s = time.perf_counter() - t0
        model = BM25Okapi(toks)
        t1 = time.perf_counter()
        index_dir.mkdir(parents=True, exist_ok=True)
        with open(index_dir / "bm25okapi.pkl", "wb") as fh:
            pickle.dump((model, [d for d, _ in docs]), fh, protocol=pickle.HIGHEST_PROTOCOL)
        t2 = time.perf_counter()
    else:
        raise SystemExit(f"unknown system {system}")
    if system == "ours":
        res["engine"] = engine_version()
    res.update({"tokenize_s": tok_s, "index_s": t1 - t0 - tok_s, "save_s": t2 - t1,
                "build_s": t2 - t0, "index_bytes": _dir_bytes(index_dir),
                "rss_peak_mb": _maxrss_mb()})
    return res


def _ours(spec: dict, res: dict):
    """This engine through its public API: batch, single and the document count."""
    import importlib.util
    from retrieval import Dirichlet, Index, Searcher
    from retrieval.results import columnar, docid_table
    from retrieval.smoothing import default_model
    system = spec["system"]
    index = Index.open(spec["index"])
    # "qld": Dirichlet μ=1000 (as PISA's QLD row); "spud": the engine's default model
    model = default_model(index) if spec["method"] == "spud" else Dirichlet(mu=1000)
    searcher = Searcher(index, model, compiled=True)
    # a long-running process: a first search loads the compiled kernels (numba) now, so
    # their one-off loading counts in open_s, not in the query times
    searcher.batch_search_arrays(["warm up"], 1)
    res["kernels"] = "numba" if importlib.util.find_spec("numba") else "none"
    if system == "ours":
        def batch(qs, k):
            res = searcher.batch_search(qs, k)
            res.docids          # lazy in Results: the docid strings are part of the answer
            return res
    elif system == "ours-columnar":
        docid_table(index)      # decoded once per index (in open_s)

        def batch(qs, k):
            res = columnar(searcher.batch_search_arrays(qs, k), index, len(qs))
            res.docids          # the docid strings are part of the answer
            return res
    else:
        def batch(qs, k):
            return searcher.batch_search_arrays(qs, k)
    return batch, (lambda q, k: batch([q], k)), index.num_docs


def _bm25s(spec: dict, res: dict):
    import bm25s
    backend = "numpy" if spec["system"] == "bm25s-numpy" else "numba"
    retriever = bm25s.BM25.load(spec["index"], backend=backend, show_progress=False)
    res["backend"] = retriever.backend
    n_docs = int(retriever.scores["num_docs"])
    docids = np.asarray(json.loads((Path(spec["index"]) / "docids.json").read_text(
        encoding="utf-8")), dtype=object)
    mode, stemmer = spec["mode"], _bm25s_stemmer(spec["mode"])
    known = retriever.vocab_dict

    def batch(qs, k):
        toks = _bm25s_tokens(qs, mode, stemmer, False)
        # a query none of whose terms is indexed gets no results (bm25s refuses it)
        toks = [[t for t in q if t in known] for q in toks]
        keep = [j for j, q in enumerate(toks) if q]
        if not keep:
            return [], []
        docs, scores = retriever.retrieve([toks[j] for j in keep], k=min(k, n_docs),
                                          n_threads=0, show_progress=False)
        return docids.take(docs), scores

    return batch, (lambda q, k: batch([q], k)), n_docs


def _pisa(spec: dict, res: dict):
    import pyterrier_pisa
    pidx = pyterrier_pisa.PisaIndex(spec["index"], threads=1)
    n_docs = pidx.num_docs()
    retr = {}
    for k in spec["k"]:
        retr[k] = (pidx.qld(mu=1000.0, num_results=k, threads=1) if spec["method"] == "qld"
                   else pidx.bm25(num_results=k, threads=1))
    if spec["system"] == "pisa-pyterrier":
        import pandas as pd

        def batch(qs, k):
            frame = pd.DataFrame({"qid": [str(i) for i in range(len(qs))], "query": qs})
            return retr[k].transform(frame)
        return batch, (lambda q, k: batch([q], k)), n_docs
    from pyterrier_pisa import _pisathon

    def batch(qs, k):
        # what PisaRetrieve.transform does before its DataFrame: C++ analysis and search
        # into preallocated numpy arrays (docnos are Python strings in an object array)
        r = retr[k]
        r.reset_retrieval_context()
        n = len(qs) * k
        qidx = np.empty(n, dtype=np.int32)
        docnos = np.empty(n, dtype=object)
        ranks = np.empty(n, dtype=np.int32)
        scores = np.empty(n, dtype=np.float32)
        size = _pisathon.retrieve(r._ctxt, r.query_algorithm.value, list(enumerate(qs)),
                                  k=k, threads=1, query_weighted=int(r.query_weighted),
                                  pretokenised=False, result_qidxs=qidx,
                                  result_docnos=docnos, result_ranks=ranks,
                                  result_scores=scores)
        return qidx[:size], docnos[:size], scores[:size]
    return batch, (lambda q, k: batch([q], k)), n_docs


def _tantivy(spec: dict, res: dict):
    import tantivy
    schema, analyzer = _tantivy_schema(spec["mode"])
    index = tantivy.Index.open(spec["index"])
    index.register_tokenizer("bench", analyzer)
    index.reload()
    searcher = index.searcher()
    res["segments"] = searcher.num_segments
    docids = json.loads((Path(spec["index"]) / "docids.json").read_text(encoding="utf-8"))
    should, term = tantivy.Occur.Should, tantivy.Query.term_query

    def single(q, k):
        # the query's tokens by the field's own analyzer, OR-ed term queries (the query
        # parser would turn a hyphenated word into a phrase query); count=False lets
        # tantivy skip by block-max WAND instead of counting every match
        query = tantivy.Query.boolean_query(
            [(should, term(schema, "body", t)) for t in analyzer.analyze(q)])
        hits = searcher.search(query, k, count=False).hits
        if searcher.num_segments == 1:
            return [(docids[a.doc], s) for s, a in hits]
        return [(searcher.doc(a)["id"][0], s) for s, a in hits]

    return (lambda qs, k: [single(q, k) for q in qs]), single, searcher.num_docs


def _rank_bm25(spec: dict, res: dict):
    import pickle
    with open(Path(spec["index"]) / "bm25okapi.pkl", "rb") as fh:
        model, ids = pickle.load(fh)

    def single(q, k):
        s = model.get_scores(q.split())
        k = min(k, len(s))
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return [(ids[i], s[i]) for i in top.tolist()]

    return (lambda qs, k: [single(q, k) for q in qs]), single, len(ids)


RUNNERS = {"ours": _ours, "ours-columnar": _ours, "ours-arrays": _ours, "bm25s": _bm25s,
           "bm25s-numpy": _bm25s, "pisa": _pisa, "pisa-pyterrier": _pisa,
           "tantivy": _tantivy, "rank_bm25": _rank_bm25}


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def worker_query(spec: dict) -> dict:
    """One round of one row: open, warm every query at every k, then one timed batch pass
    and the latency sample per k."""
    texts = [t for _, t in _load_queries(spec)]
    if spec["system"] == "rank_bm25":
        texts = texts[:spec["rank_bm25_queries"]]
    ks = spec["k"]
    res: dict = {"rss_start_mb": _maxrss_mb(), "loadavg_start": _loadavg()}
    t0 = time.perf_counter()
    batch, single, n_docs = RUNNERS[spec["system"]](spec, res)
    res["open_s"] = time.perf_counter() - t0
    res["rss_open_mb"] = _maxrss_mb()
    res["documents"] = n_docs
    res["queries"] = len(texts)
    sample = [texts[i] for i in spec["latency_sample"] if i < len(texts)]
    # caches warmed alike: every system answers every query once at each k first
    for k in ks:
        batch(texts, k)
    per_k = {}
    clock, cpu = time.perf_counter, time.process_time
    for k in ks:
        t0, c0 = clock(), cpu()
        batch(texts, k)
        took, took_cpu = clock() - t0, cpu() - c0
        lat, lat_cpu = [], []
        for q in sample:
            t0, c0 = clock(), cpu()
            single(q, k)
            lat.append(clock() - t0)
            lat_cpu.append(cpu() - c0)
        per_k[str(k)] = {"batch_s": took, "qps": len(texts) / took if took > 0 else None,
                         "batch_cpu_s": took_cpu,
                         "cpu_qps": len(texts) / took_cpu if took_cpu > 0 else None,
                         "latency_queries": len(sample), **percentiles(lat),
                         "cpu": percentiles(lat_cpu)}
    res["k"] = per_k
    res["loadavg_end"] = _loadavg()
    res["rss_peak_mb"] = _maxrss_mb()
    if spec["system"].startswith("ours"):
        res["engine"] = engine_version()
    return res


def worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    fn = worker_build if spec["phase"] == "build" else worker_query
    out = fn(spec)
    with open(spec["result"], "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    return 0


# ----------------------------------------------------------------------------------
# running workers
# ----------------------------------------------------------------------------------
def run_process(cmd: list[str], *, timeout: float | None = None, stdout=None) -> dict:
    """Run ``cmd``; wall time, exit status and peak RSS (MB) of that process.

    The peak is the child's ``VmHWM`` polled every 10 ms until it exits (its own address
    space; see :func:`_maxrss_mb`), with ``ru_maxrss`` from ``os.wait4`` kept for reference.
    """
    env = dict(os.environ, **THREAD_ENV)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout or subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = None if timeout is None else time.monotonic() + timeout
    status = ru = None
    stderr_chunks = []
    # read stderr in a thread so a chatty child cannot block
    import threading
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()),
                              daemon=True)
    reader.start()
    hwm = 0.0
    while True:
        seen = _vmhwm_mb(proc.pid)
        if seen is not None:
            hwm = max(hwm, seen)
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            status = -9
            break
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status) if status != -9 else -9
    reader.join(timeout=5)
    err = (stderr_chunks[0] if stderr_chunks else b"").decode("utf-8", "replace")
    return {"wall_s": wall, "maxrss_mb": hwm or ru.ru_maxrss / 1024.0,
            "ru_maxrss_mb": ru.ru_maxrss / 1024.0, "returncode": proc.returncode,
            "stderr_tail": err[-2000:], "user_s": ru.ru_utime, "sys_s": ru.ru_stime}


def run_worker(spec: dict, timeout: float | None) -> dict:
    result = Path(spec["result"])
    if result.exists():
        result.unlink()
    proc = run_process([sys.executable, str(Path(__file__).resolve()), "--worker",
                        json.dumps(spec)], timeout=timeout)
    out = {"process": proc}
    if proc["returncode"] == 0 and result.exists():
        out.update(json.loads(result.read_text(encoding="utf-8")))
    else:
        out["error"] = (f"exit {proc['returncode']}: "
                        + proc["stderr_tail"].strip().splitlines()[-1:][0]
                        if proc["stderr_tail"].strip() else f"exit {proc['returncode']}")
    return out


def run_cli(corpus: Path, work: Path, ks: list[int], timeout: float | None) -> dict:
    """This engine as a user runs it: ``retrieval index`` then ``retrieval search``."""
    exe = shutil.which("retrieval")
    index_dir = work / "index-ours-cli"
    shutil.rmtree(index_dir, ignore_errors=True)
    b = run_process([exe, "index", str(corpus / "docs.jsonl"), "-o", str(index_dir),
                     "--no-text", "-q", "--stopwords", "lucene", "--stemmer", "snowball"],
                    timeout=timeout)
    out = {"build": {"build_s": b["wall_s"], "rss_peak_mb": b["maxrss_mb"],
                     "index_bytes": _dir_bytes(index_dir) if index_dir.exists() else None,
                     "process": b}}
    if b["returncode"] != 0:
        out["build"]["error"] = b["stderr_tail"].strip().splitlines()[-1:]
        return out
    n_q = sum(1 for line in open(corpus / "queries.tsv", encoding="utf-8") if line.strip())
    q = {"k": {}, "queries": n_q}
    peak = 0.0
    for k in ks:
        with open(os.devnull, "wb") as sink:
            r = run_process([exe, "search", str(index_dir), "--queries",
                             str(corpus / "queries.tsv"), "-k", str(k), "--format", "trec"],
                            timeout=timeout, stdout=sink)
        if r["returncode"] != 0:
            q["error"] = r["stderr_tail"].strip().splitlines()[-1:]
            break
        peak = max(peak, r["maxrss_mb"])
        q["k"][str(k)] = {"batch_s": r["wall_s"], "qps": n_q / r["wall_s"],
                          "note": "whole process: start-up, open, analyse, search, write TREC"}
    q["rss_peak_mb"] = peak
    out["query"] = q
    return out


# ----------------------------------------------------------------------------------
# one corpus
# ----------------------------------------------------------------------------------
def _build_all(args, label: str, work: Path, corpus: Path, modes_of) -> tuple[dict, dict]:
    """One build per (family, mode) that some requested row needs."""
    builds, skipped = {}, {}
    for system in args.systems:
        if system == "ours-cli":
            continue
        why = available(system)
        if why:
            skipped[system] = why
            log(f"[{label}] skip {system}: {why}")
            continue
        for mode in modes_of(system):
            family = FAMILY[system]
            if (family, mode) in builds:
                continue
            index_dir = work / f"index-{family}-{mode}"
            log(f"[{label}] {family}/{mode}: build")
            b = run_worker({"system": family, "mode": mode, "work": str(work),
                            "corpus": str(corpus), "index": str(index_dir), "phase": "build",
                            "result": str(work / f"build-{family}-{mode}.json")},
                           args.timeout)
            if "error" in b:
                log(f"[{label}] {family}/{mode}: build failed: {b['error']}")
            builds[(family, mode)] = b
    return builds, skipped


def _aggregate(rounds: list[dict], ks) -> dict:
    """Rounds of one row → its query figures: best round's q/s, median percentiles."""
    ok = [r for r in rounds if "error" not in r]
    if not ok:
        return dict(rounds[-1], rounds=rounds)
    out = {key: ok[0].get(key) for key in ("documents", "queries", "kernels", "backend",
                                          "segments", "engine") if key in ok[0]}
    out["open_s"] = min(r["open_s"] for r in ok)
    out["rss_peak_mb"] = max(r.get("rss_peak_mb") or 0 for r in ok)
    per_k = {}
    for k in map(str, ks):
        runs = [r["k"][k] for r in ok]
        best = min(runs, key=lambda x: x["batch_s"])
        per_k[k] = {"batch_s": best["batch_s"], "qps": best["qps"],
                    "batch_runs_s": [x["batch_s"] for x in runs],
                    "latency_queries": best["latency_queries"]}
        cpu_runs = [x["batch_cpu_s"] for x in runs if x.get("batch_cpu_s")]
        if cpu_runs:
            per_k[k]["batch_cpu_runs_s"] = cpu_runs
            per_k[k]["cpu_qps"] = ok[0]["queries"] / min(cpu_runs)
        for p in ("p50_ms", "p95_ms", "p99_ms", "mean_ms"):
            vals = [x[p] for x in runs if x.get(p) is not None]
            per_k[k][p] = float(np.median(vals)) if vals else None
            vals = [x["cpu"][p] for x in runs if (x.get("cpu") or {}).get(p) is not None]
            if vals:
                per_k[k].setdefault("cpu", {})[p] = float(np.median(vals))
    out["k"] = per_k
    loads = [x for r in ok for x in (r.get("loadavg_start"), r.get("loadavg_end"))
             if x is not None]
    out["loadavg_min"] = min(loads) if loads else None
    out["loadavg_max"] = max(loads) if loads else None
    out["rounds"] = [{"loadavg_start": r.get("loadavg_start"),
                      "loadavg_end": r.get("loadavg_end"),
                      "qps": {k: r["k"][k]["qps"] for k in r["k"]}} for r in ok]
    return out


def bench_corpus(corpus: Path, label: str, args, work_root: Path) -> dict:
    work = work_root / label
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    log(f"[{label}] pre-analysing {corpus}")
    info = prepare(corpus, work)
    log(f"[{label}] {info['documents']:,} documents, {info['queries']:,} queries, "
        f"pre-analysis {info['pre_analysis_s']:.1f} s")
    ks = args.k
    rng = np.random.default_rng(args.seed)
    n_lat = min(info["queries"], args.latency_queries)
    sample = np.sort(rng.choice(info["queries"], n_lat, replace=False)).tolist()

    def modes_of(system):
        return ["common"] if system == "rank_bm25" else args.modes

    if "rank_bm25" in args.systems and info["documents"] > args.rank_bm25_max_docs:
        args.systems = [s for s in args.systems if s != "rank_bm25"]
        why = (f"corpus has {info['documents']:,} documents > --rank-bm25-max-docs "
               f"{args.rank_bm25_max_docs:,}")
        log(f"[{label}] skip rank_bm25: {why}")
    else:
        why = None
    builds, skipped = _build_all(args, label, work, corpus, modes_of)
    if why:
        skipped["rank_bm25"] = why
    rows, specs = [], []
    for system in args.systems:
        if system == "ours-cli" or system in skipped:
            continue
        for mode in modes_of(system):
            family = FAMILY[system]
            build = builds[(family, mode)]
            for method in ROW_METHODS.get(system, METHODS[family]):
                row = {"system": system, "mode": mode, "method": method, "build": build}
                rows.append(row)
                if "error" not in build:
                    specs.append((row, {
                        "system": system, "mode": mode, "work": str(work),
                        "corpus": str(corpus), "index": str(work / f"index-{family}-{mode}"),
                        "k": ks, "latency_sample": sample, "phase": "query",
                        "method": method.split("_")[0],
                        "rank_bm25_queries": args.rank_bm25_queries,
                        "result": str(work / f"query-{system}-{mode}-{method}.json")}))
    rounds: dict[int, list] = {id(row): [] for row, _ in specs}
    n_rounds = max(1, args.repeat)
    for rnd in range(n_rounds):
        shift = rnd % max(1, len(specs))
        order = specs[shift:] + specs[:shift]       # rotated: no row always goes first
        log(f"[{label}] round {rnd + 1}/{n_rounds}, load average {_loadavg()}")
        for row, spec in order:
            log(f"[{label}] {row_name(row)}: queries")
            q = run_worker(spec, args.timeout)
            if "error" in q:
                log(f"[{label}] {row_name(row)}: query failed: {q['error']}")
            rounds[id(row)].append(q)
    for row, _ in specs:
        row["query"] = _aggregate(rounds[id(row)], ks)
    if "ours-cli" in args.systems and "default" in args.modes:
        log(f"[{label}] ours-cli: retrieval index / retrieval search")
        r = run_cli(corpus, work, ks, args.timeout)
        rows.append({"system": "ours-cli", "mode": "default", "method": DEFAULT_METHOD, **r})
    if not args.keep_indexes:
        for path in work.glob("index-*"):
            shutil.rmtree(path, ignore_errors=True)
    order = {s: i for i, s in enumerate(SYSTEMS)}
    rows.sort(key=lambda r: (MODES.index(r["mode"]), order.get(r["system"], 99)))
    return {"label": label, "corpus": str(corpus), "info": info, "k": ks, "rows": rows,
            "skipped": skipped, "latency_sample": sample, "rounds": n_rounds,
            "seconds": time.perf_counter() - t_start}


# ----------------------------------------------------------------------------------
# reporting
# ----------------------------------------------------------------------------------
def _g(d, *keys):
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def _ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def peak_mb(r: dict, phase: str) -> float | None:
    """Peak RSS of a row's build or query process (self-reported VmHWM, else polled)."""
    d = r.get(phase) or {}
    return d.get("rss_peak_mb") or _g(d, "process", "maxrss_mb")


def row_name(r: dict) -> str:
    return f"{r['system']} · {r['mode']} · {r['method']}"


def _load_cell(q: dict) -> str:
    lo, hi = q.get("loadavg_min"), q.get("loadavg_max")
    if lo is None:
        return "–"
    return f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f}–{hi:.1f}"


def _find(res: dict, system: str, mode: str, method: str | None) -> dict | None:
    for r in res["rows"]:
        if r["system"] == system and r["mode"] == mode and (method is None
                                                            or r["method"] == method):
            return r
    return None


def headline(res: dict) -> list[str]:
    """The engine's queries/s ÷ each peer's, per analyzer mode and k (> 1: engine faster)."""
    ks = res["k"]
    lines = []
    for mode in MODES:
        for ours, peer, method in HEADLINE:
            o, p = _find(res, ours, mode, None), _find(res, peer, mode, method)
            if not o or not p or "k" not in (p.get("query") or {}):
                continue
            cells = [f"{ours} ÷ {row_name(p)}"]
            for k in ks:
                for key in ("cpu_qps", "qps"):
                    a = _g(o, "query", "k", str(k), key)
                    b = _g(p, "query", "k", str(k), key)
                    rr = _ratio(a, b)
                    cells.append(f"{_fmt(rr)}× ({_fmt(a)} vs {_fmt(b)})" if rr else "–")
            lines.append("| " + " | ".join(cells) + " |")
    if not lines:
        return []
    head = ["engine ÷ peer (queries/s, one thread)"]
    for k in ks:
        head += [f"by CPU time k={k}", f"by wall time k={k}"]
    return (["", "Engine ÷ peer, end to end (query strings → docid strings and scores); "
             "> 1 means this engine is faster, < 1 that the peer is. By CPU time: queries "
             "÷ the process's CPU seconds in the timed pass (on a busy machine closer to "
             "what a quiet one gives than wall time; one thread each).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + lines)


def budget(res: dict) -> list[str]:
    """Issue 16's speed budget: the default model's (SPUD) query time ÷ Dirichlet's, on
    the public columnar path, per analyzer mode and k (≤ 1.5 is within budget)."""
    lines = []
    for mode in MODES:
        d = _find(res, "ours-columnar", mode, "qld_mu1000")
        sp = _find(res, "ours-columnar", mode, DEFAULT_METHOD)
        if not d or not sp:
            continue
        cells = [f"ours-columnar · {mode}"]
        for k in res["k"]:
            for key in ("cpu_qps", "qps"):
                a = _g(d, "query", "k", str(k), key)
                b = _g(sp, "query", "k", str(k), key)
                rr = _ratio(a, b)
                cells.append(f"{_fmt(rr)}× ({_fmt(b)} vs {_fmt(a)} q/s)" if rr else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if not lines:
        return []
    head = ["default model (SPUD ω=0.8) query time ÷ Dirichlet μ=1000's"]
    for k in res["k"]:
        head += [f"by CPU time k={k}", f"by wall time k={k}"]
    return (["", "The default model's cost (issue 16's budget: at most 1.5×): its query "
             "time ÷ Dirichlet's on the same index and path; < 1 means SPUD is faster.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + lines)


def markdown(res: dict) -> str:
    info, ks = res["info"], res["k"]
    lines = [f"### {res['label']}: {info['documents']:,} documents, {info['queries']:,} queries "
             f"({info['corpus_bytes'] / 1e6:,.0f} MB of JSON Lines)", "",
             f"Pre-analysis with this engine's Analyzer (lucene, snowball), shared by every "
             f"`common` row and not in their build times: {info['pre_analysis_s']:.2f} s. "
             f"Best of {res.get('rounds', 1)} interleaved rounds; latency percentiles are "
             f"the median over rounds of {len(res.get('latency_sample') or [])} queries "
             f"sampled across the query set; 'load' is the 1-minute load average seen by "
             f"the row's query processes (2 cores).", ""]
    head = ["system · analyzer · method", "build s", "tokenise s", "index MB",
            "build RSS MB", "query RSS MB", "load"]
    for k in ks:
        head += [f"q/s k={k}", f"CPU q/s k={k}", f"CPU p50/p95/p99 ms k={k}"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in res["rows"]:
        b, q = r.get("build", {}), r.get("query", {})
        cells = [row_name(r), _fmt(_g(b, "build_s")), _fmt(_g(b, "tokenize_s")),
                 _fmt((_g(b, "index_bytes") or 0) / 1e6 if _g(b, "index_bytes") else None),
                 _fmt(peak_mb(r, "build")), _fmt(peak_mb(r, "query")), _load_cell(q)]
        for k in ks:
            kk = _g(q, "k", str(k)) or {}
            lat = kk.get("cpu") or {}
            lat = "/".join(_fmt(lat.get(p)) for p in ("p50_ms", "p95_ms", "p99_ms")) \
                if lat.get("p50_ms") is not None else "–"
            cells += [_fmt(kk.get("qps")), _fmt(kk.get("cpu_qps")), lat]
        if "error" in b or "error" in q:
            cells[0] += " (failed: " + str(b.get("error") or q.get("error"))[:80] + ")"
        if r.get("carried_over"):
            cells[0] += " †"
        lines.append("| " + " | ".join(cells) + " |")
    lines += headline(res)
    lines += budget(res)
    # ratios to this engine's public API in the same mode
    ref = {r["mode"]: r for r in res["rows"] if r["system"] == "ours"}
    peers = [r for r in res["rows"] if r["system"] != "ours" and r["mode"] in ref]
    if peers:
        lines += ["", "Each row ÷ this engine's public API (`ours`, same analyzer mode). Times "
                  "and sizes: > 1 means the row takes longer / more; queries/s: > 1 means "
                  "the row is faster.", ""]
        head = ["row", "build time", "index size", "build RSS", "query RSS"]
        for k in ks:
            head += [f"q/s k={k}", f"p50 k={k}"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for r in peers:
            o = ref[r["mode"]]
            cells = [row_name(r)]
            pairs = [(_g(r, "build", "build_s"), _g(o, "build", "build_s")),
                     (_g(r, "build", "index_bytes"), _g(o, "build", "index_bytes")),
                     (peak_mb(r, "build"), peak_mb(o, "build")),
                     (peak_mb(r, "query"), peak_mb(o, "query"))]
            for a, b in pairs:
                rr = _ratio(a, b)
                cells.append(_fmt(rr) + "×" if rr is not None else "–")
            for k in ks:
                for key in ("qps", "p50_ms"):
                    rr = _ratio(_g(r, "query", "k", str(k), key), _g(o, "query", "k", str(k), key))
                    cells.append(_fmt(rr) + "×" if rr is not None else "–")
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += _notes(res)
    return "\n".join(lines) + "\n"


def _notes(res: dict) -> list[str]:
    lines = []
    ours_rows = [r for r in res["rows"] if r["system"].startswith("ours")
                 and r["system"] != "ours-cli"]
    eng = (_g(ours_rows[0], "build", "engine") if ours_rows else None) \
        or _g(res, "machine", "engine") or {}
    if eng:
        lines.append(f"- this engine: commit {eng.get('commit')}"
                     f"{' with uncommitted changes' if eng.get('uncommitted_changes') else ''}"
                     f", sources sha256 {eng.get('sources_sha256')}")
    lines.append(f"- run started {_g(res, 'machine', 'started')}, load average "
                 f"{', '.join(f'{x:.2f}' for x in _g(res, 'machine', 'loadavg_at_start') or [])}")
    carried = {r["carried_over"] for r in res["rows"] if r.get("carried_over")}
    for c in sorted(carried):
        lines.append(f"- † rows carried over from {c}: measured then, not re-run now")
    if res["skipped"]:
        lines += [f"- skipped {s}: {why}" for s, why in res["skipped"].items()]
    for r in res["rows"]:
        if r["system"] == "rank_bm25" and r.get("query"):
            lines.append(f"- rank_bm25: queries/s and latency over the first "
                         f"{_g(r, 'query', 'queries')} queries only (exhaustive scoring)")
            break
    if ours_rows:
        kern = sorted({str(_g(r, "query", "kernels")) for r in ours_rows})
        lines.append(f"- ours*: in-process, a long-running searcher (`compiled=True`; "
                     f"kernels: {', '.join(kern)}), loaded by a warm-up search (in the open "
                     f"time). `ours` = `Searcher.batch_search` (columnar `Results`, docid strings taken); "
                     f"`ours-columnar` = `batch_search_arrays` + `retrieval.results.columnar` "
                     f"with docids; `ours-arrays` = internal document numbers only, NOT end "
                     f"to end (an extra row)")
    if any(r["system"] == "tantivy" for r in res["rows"]):
        lines.append("- tantivy: no batch API; one `Searcher.search` per query "
                     "(`count=False`), the query built from its analyzer's tokens")
    if any(r["system"] == "ours-cli" for r in res["rows"]):
        lines.append("- ours-cli: whole processes `retrieval index … --no-text -q` and "
                     "`retrieval search … --format trec` (start-up, reading JSON Lines, "
                     "analysis, writing the run included); no latency percentiles")
    return lines


def engine_version() -> dict:
    """The engine's commit and a digest of its sources as they are now (read-only git)."""
    import hashlib
    try:
        import retrieval
        pkg = Path(retrieval.__file__).resolve().parent
    except ImportError:
        return {}
    digest = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        digest.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes())
    out = {"version": getattr(retrieval, "__version__", None),
           "sources_sha256": digest.hexdigest()[:16]}
    try:
        out["commit"] = subprocess.run(["git", "-C", str(pkg.parent), "rev-parse", "--short",
                                        "HEAD"], capture_output=True, text=True,
                                       timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(pkg.parent), "status", "--porcelain", "--",
                                str(pkg)], capture_output=True, text=True, timeout=10).stdout
        out["uncommitted_changes"] = bool(dirty.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def machine() -> dict:
    info = {"python": sys.version.split()[0], "numpy": np.__version__,
            "platform": platform.platform(), "nproc": os.cpu_count()}
    try:
        info["lscpu"] = subprocess.run(["lscpu"], capture_output=True, text=True,
                                       timeout=10).stdout.splitlines()[:14]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    versions = {}
    for mod in ("retrieval", "scipy", "numba", "bm25s", "pyterrier_pisa", "tantivy",
                "rank_bm25", "Stemmer"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", "?")
        except Exception:
            versions[mod] = None
    info["versions"] = versions
    info["engine"] = engine_version()
    info["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return info


def plots(results: list[dict], out: Path) -> list[str]:
    """Log–log plots of build time and per-query batch time against corpus size."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no plots")
        return []
    series: dict[str, list] = {}
    builds: dict[str, list] = {}     # one build per system and analyzer mode
    for res in results:
        n = res["info"]["documents"]
        seen = set()
        for r in res["rows"]:
            series.setdefault(row_name(r), []).append((n, r))
            key = f"{r['system']} · {r['mode']}"
            if key not in seen:
                seen.add(key)
                builds.setdefault(key, []).append((n, r))
    written = []
    slopes: dict = {}

    def draw(fname, title, ylabel, getter, lines=None):
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for name, pts in sorted((lines or series).items()):
            xy = [(n, getter(r)) for n, r in pts if getter(r)]
            if not xy:
                continue
            x, y = np.asarray(xy, dtype=float).T
            label = name
            if len(x) >= 2:
                slope = float(np.polyfit(np.log10(x), np.log10(y), 1)[0])
                slopes.setdefault(fname, {})[name] = slope
                label += f"  (slope {slope:.2f})"
            ax.plot(x, y, "o-", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("documents")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        written.append(fname)

    draw("build_time.png", "Index build time (tokenising included for 'default')",
         "seconds", lambda r: _g(r, "build", "build_s"), builds)
    ks = results[0]["k"]
    for k in ks:
        draw(f"query_time_k{k}.png", f"Batch query time per query, top {k}",
             "seconds per query (batch)",
             lambda r, k=k: (1.0 / _g(r, "query", "k", str(k), "qps"))
             if _g(r, "query", "k", str(k), "qps") else None)
    (out / "slopes.json").write_text(json.dumps(slopes, indent=1) + "\n", encoding="utf-8")
    return written


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------
def merge_rows(res: dict, path: Path, ran: list[str]) -> None:
    """Append ``path``'s rows for systems not in ``ran`` (same corpus size required)."""
    old = json.loads(Path(path).read_text(encoding="utf-8"))
    if old["info"]["documents"] != res["info"]["documents"] or \
            old["info"]["queries"] != res["info"]["queries"]:
        raise SystemExit(f"{path}: a different corpus ({old['info']['documents']} documents, "
                         f"{old['info']['queries']} queries); not merged")
    when = _g(old, "machine", "started") or "an earlier run"
    for r in old["rows"]:
        if r["system"] not in ran:
            r = dict(r, carried_over=f"{Path(path).name} ({when})")
            res["rows"].append(r)
    for system, why in old.get("skipped", {}).items():
        if system not in ran:
            res["skipped"].setdefault(system, why)
    order = {s: i for i, s in enumerate(SYSTEMS)}
    res["rows"].sort(key=lambda r: (MODES.index(r["mode"]), order.get(r["system"], 99)))
    res["merged_from"] = str(path)


def make_synthetic(n_docs: int, corpus_root: Path, seed: int, n_queries: int) -> Path:
    out = corpus_root / f"syn-{n_docs}-s{seed}-q{n_queries}"
    meta = out / "meta.json"
    if meta.exists() and (out / "docs.jsonl").exists():
        return out
    cmd = [sys.executable, str(HERE / "make_corpus.py"), "--docs", str(n_docs), "--out",
           str(out), "--seed", str(seed), "--queries", str(n_queries), "-q"]
    log(f"generating {n_docs:,} documents → {out}")
    subprocess.run(cmd, check=True)
    return out


def make_shared(corpus_root: Path) -> Path:
    out = corpus_root / "shared"
    if not (out / "meta.json").exists():
        subprocess.run([sys.executable, str(HERE / "make_corpus.py"), "--shared", "--out",
                        str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def _count(text: str) -> int:
    t = text.strip().lower().replace("_", "").replace(",", "")
    mult = 1000 if t.endswith("k") else 1_000_000 if t.endswith("m") else 1
    return int(float(t.rstrip("km")) * mult)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--shared", action="store_true",
                     help="the concatenation of the shared collections")
    src.add_argument("--corpus", type=Path,
                     help="a folder with docs.jsonl and queries.tsv (make_corpus.py output)")
    src.add_argument("--docs", type=_count, help="one synthetic corpus of N documents")
    src.add_argument("--sizes", help="comma-separated synthetic sizes: a sweep with plots")
    src.add_argument("--tiny", action="store_true",
                     help="CI mode: 300 synthetic documents, 30 queries, fast settings")
    src.add_argument("--replot", metavar="LABELS",
                     help="no run: draw the size plots from earlier results "
                          "(comma-separated labels of JSON files in --out)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"results folder (default {DEFAULT_OUT.relative_to(REPO)})")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder for corpora, tokens and indexes (default: a "
                        "temporary folder, removed at the end)")
    p.add_argument("--label", help="name of the result files (default from the corpus)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--modes", default="common,default", help="common, default or both")
    p.add_argument("--k", default="10,1000", help="comma-separated k values (default 10,1000)")
    p.add_argument("--repeat", type=int, default=3,
                   help="interleaved rounds: every row's query process runs once per round "
                        "(one timed batch per k); the best round is kept (default 3)")
    p.add_argument("--latency-queries", type=int, default=300,
                   help="queries timed one by one for latency percentiles, sampled across "
                        "the query set (default 300)")
    p.add_argument("--queries", type=int, default=1000, help="synthetic queries (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rank-bm25-max-docs", type=int, default=30000)
    p.add_argument("--rank-bm25-queries", type=int, default=100)
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per subprocess (default: none)")
    p.add_argument("--keep-indexes", action="store_true")
    p.add_argument("--merge-from", type=Path, metavar="JSON",
                   help="carry over the rows of systems not run now from an earlier result "
                        "file of the same corpus (e.g. re-measure this engine only after a "
                        "change, keep the peers' rows); carried rows are marked")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in args.systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s!r}")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in args.modes):
        p.error("--modes takes common and/or default")
    args.k = sorted({int(k) for k in args.k.split(",")})
    if args.tiny:
        args.queries = min(args.queries, 30)
        args.repeat = 1
        args.latency_queries = min(args.latency_queries, 10)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = [json.loads((args.out / f"{label}.json").read_text(encoding="utf-8"))
                   for label in args.replot.split(",")]
        results.sort(key=lambda r: r["info"]["documents"])
        log(f"plots: {', '.join(plots(results, args.out))}")
        return 0
    tmp = None
    if args.work is None:
        tmp = tempfile.mkdtemp(prefix="bench-speed-")
        work_root = Path(tmp)
    else:
        work_root = args.work
        work_root.mkdir(parents=True, exist_ok=True)
    try:
        corpora: list[tuple[Path, str]] = []
        if args.shared:
            corpora.append((make_shared(work_root / "corpora"), args.label or "shared"))
        elif args.corpus:
            corpora.append((args.corpus, args.label or args.corpus.name))
        elif args.tiny:
            corpora.append((make_synthetic(300, work_root / "corpora", args.seed, args.queries),
                            args.label or "tiny"))
        else:
            sizes = [args.docs] if args.docs else [_count(s) for s in args.sizes.split(",")]
            for n in sizes:
                corpora.append((make_synthetic(n, work_root / "corpora", args.seed,
                                               args.queries),
                                f"{args.label + '-' if args.label else ''}syn{_short(n)}"))
        results = []
        mach = machine()
        for corpus, label in corpora:
            res = bench_corpus(corpus, label, args, work_root)
            res["machine"] = mach
            if args.merge_from:
                merge_rows(res, args.merge_from, args.systems)
            meta = corpus / "meta.json"
            if meta.exists():
                res["corpus_meta"] = json.loads(meta.read_text(encoding="utf-8")).get("stats")
            results.append(res)
            md = markdown(res)
            print(md)
            (args.out / f"{label}.json").write_text(json.dumps(res, indent=1) + "\n",
                                                    encoding="utf-8")
            (args.out / f"{label}.md").write_text(md, encoding="utf-8")
        if len(results) > 1:
            written = plots(results, args.out)
            sweep = args.label or "sweep"
            (args.out / f"{sweep}.json").write_text(
                json.dumps({"labels": [r["label"] for r in results],
                            "plots": written}, indent=1) + "\n", encoding="utf-8")
            log(f"plots: {', '.join(written)}")
        elif args.tiny:
            plots(results, args.out)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


if __name__ == "__main__":
    sys.exit(main())
