"""The sharded-index parts of ``retrieval index`` (``--shards N``, ``--join``) and
``retrieval search`` (a sharded INDEX; ``--scheduler ADDRESS`` or ``--cluster local``
to run the shards' searches on Dask).

The sharded code (and the folder reader it indexes with) is imported inside the
functions that use it: ``retrieval search`` on an ordinary index only asks
:func:`is_sharded`, and its start-up should not pay for the rest
(``scripts/bench_startup.py``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import ParameterError
from ._common import dump_json, format_table


def add_index_options(parser) -> None:
    """``--shards N`` and ``--join`` for ``retrieval index``."""
    g = parser.add_argument_group("sharding")
    g.add_argument("--shards", type=int, metavar="N",
                   help="write a sharded index of N shards (documents routed by a hash "
                        "of their id); search it like any index")
    g.add_argument("--join", action="store_true",
                   help="the PATHs are indexes built separately (one per folder or "
                        "machine): join them into one sharded index at INDEX")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --shards: build each shard as a task on the Dask cluster at "
                        "ADDRESS (PATHs and INDEX at the same paths on every worker)")
    g.add_argument("--cluster", choices=("local",),
                   help="with --shards: build the shards on a Dask LocalCluster here")
    g.add_argument("--workers", type=int, default=2,
                   help="worker processes of --cluster local (default 2)")


def add_search_options(parser) -> None:
    """``--scheduler`` and ``--cluster`` for ``retrieval search``."""
    g = parser.add_argument_group("sharded indexes on Dask (extra 'distributed')")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="search the shards on the Dask cluster at ADDRESS "
                        "(e.g. tcp://host:8786)")
    g.add_argument("--cluster", choices=("local",),
                   help="search the shards on a Dask LocalCluster on this machine")
    g.add_argument("--workers", type=int, default=2,
                   help="worker processes of --cluster local (default 2)")


def is_sharded(path) -> bool:
    """Whether ``path`` is a sharded index folder (:func:`retrieval.shards.is_sharded`)."""
    from ..shards.store import is_sharded as sharded_folder
    return sharded_folder(path)


def wants_sharded_index(args) -> bool:
    return bool(args.shards is not None or args.join or args.scheduler or args.cluster)


def index_main(args) -> int:
    """``retrieval index --shards N PATH... -o INDEX`` or ``--join INDEX... -o INDEX``."""
    from ..analysis import Analyzer
    from ..reading import STREAM_BYTES, FolderReader
    from ..shards import ShardedIndex
    start = time.perf_counter()
    if args.shards is not None and args.join:
        raise ParameterError("give either --shards N (index folders) or --join (join "
                             "indexes), not both")
    on_cluster = bool(args.scheduler or args.cluster)
    if on_cluster and args.shards is None:
        raise ParameterError("--scheduler/--cluster build the shards of --shards N on Dask; "
                             "give --shards N")
    if args.shards is not None and args.shards < 1:
        raise ParameterError(f"--shards must be a whole number >= 1, got {args.shards}")
    if args.workers < 1:
        raise ParameterError(f"--workers must be a whole number >= 1, got {args.workers}")
    analyzer = Analyzer(args.stopwords, args.stemmer, language=args.language)
    if args.join:
        sharded = ShardedIndex.join(args.paths)
        sharded.save(args.output, overwrite=args.force)
    elif on_cluster:
        from ..shards.build import build_sharded
        sharded = build_sharded(args.paths, args.output, args.shards,
                                scheduler=args.scheduler, n_workers=args.workers,
                                analyzer=analyzer, store_text=not args.no_text,
                                overwrite=args.force)
    else:
        reader = FolderReader([Path(p) for p in args.paths], stream_threshold=STREAM_BYTES)
        sharded = ShardedIndex.build(reader.documents(), args.shards, analyzer=analyzer,
                                     store_text=not args.no_text)
        sharded.save(args.output, overwrite=args.force)
    summary = {"index": str(args.output), "shards": sharded.num_shards,
               "documents": sharded.num_docs, "distinct_terms": sharded.stats.num_terms,
               "tokens": int(sharded.stats.num_tokens),
               "documents_per_shard": [ix.num_docs for ix in sharded.shards],
               "seconds": round(time.perf_counter() - start, 3)}
    if args.format == "json":
        print(dump_json(summary))
    else:
        print(f"indexed into {args.output} ({summary['shards']} shards)")
        rows = [(k.replace("_", " "), str(v)) for k, v in summary.items() if k != "index"]
        print(format_table(("", ""), rows, align="ll").split("\n", 2)[2])
    return 0


def search_main(args, queries, model, feedback) -> int:
    """Search a sharded index (in this process, or on Dask with --scheduler/--cluster)."""
    from ..shards import ShardedIndex, ShardedSearcher
    if args.explain:
        raise ParameterError("--explain is not available for a sharded index; explain "
                             "a document on the shard that holds it")
    if args.mu == "auto":
        raise ParameterError("--mu auto is not available for a sharded index; give --mu")
    fb = feedback if feedback.name != "none" else None
    options = {"unknown_terms": args.unknown_terms, "candidates": args.candidates}
    texts = [q.text for q in queries]
    if args.scheduler or args.cluster:
        from ..shards.distributed import DaskSearcher
        with DaskSearcher(args.index, model, scheduler=args.scheduler,
                          n_workers=args.workers, feedback=fb, **options) as ds:
            res = ds.batch_search_arrays(texts, args.k)
    else:
        res = ShardedSearcher(ShardedIndex.open(args.index), model, feedback=fb,
                              **options).batch_search_arrays(texts, args.k)
    rows_by_q: list[list] = [[] for _ in queries]
    for j, docid, score in zip(res.query_index.tolist(), res.docids, res.scores.tolist()):
        rows_by_q[j].append((len(rows_by_q[j]) + 1, docid, score))
    if args.format == "trec":
        for q, rows in zip(queries, rows_by_q):
            for rank, docid, score in rows:
                print(f"{q.qid} Q0 {docid} {rank} {score!r} {args.tag}")
        return 0
    if args.format == "json":
        payload = [{"qid": q.qid, "query": q.text, "model": model.label(),
                    "results": [{"rank": r, "docid": d, "score": s} for r, d, s in rows]}
                   for q, rows in zip(queries, rows_by_q)]
        print(dump_json(payload if args.queries else payload[0]))
        return 0
    for q, rows in zip(queries, rows_by_q):
        if args.queries:
            print(f"# {q.qid}: {q.text}")
        if not rows:
            print("no results: no document holds a query term", file=sys.stderr)
            continue
        print(format_table(["rank", "score", "docid"],
                           [[r, f"{s:.4f}", d] for r, d, s in rows], align="rrl"))
    return 0
