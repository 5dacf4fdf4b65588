"""``retrieval index``: build an index from folders, text files or JSON Lines files."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ..analysis import (DEFAULT_LANGUAGE, DEFAULT_STEMMER, LANGUAGES, STEMMERS, STOPLISTS,
                        Analyzer)
from ..errors import InputError, ParameterError
from ..index import index_state
from ..index.arrays import complete_arrays
from ..lifecycle import build_index
from ..reading import STREAM_BYTES, FolderReader
from ..safeio import clamp_jobs
from ..segmented import build_index_segmented, parse_memory, segment_bytes
from . import sharded
from ._common import Progress, dump_json, format_table, make_parser, positive_int, run

DESCRIPTION = """\
Index a folder of text: every document becomes a unigram language model.

Folders are read recursively (plain text, Markdown, reStructuredText, HTML, PDF, and
files compressed with gzip, bzip2, xz or zstd as the file inside); a .jsonl file holds
one record per line: {"id", "text"}, {"id", "contents"}, {"_id", "title", "text"} or
{"docno", "text"}. Document ids are paths relative to the folder given. The analyzer
chosen here (--language, --stopwords, --stemmer) is saved in the index and used for
queries.
"""


def build_parser():
    p = make_parser("index", DESCRIPTION)
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to index")
    p.add_argument("-o", "--output", required=True, metavar="INDEX",
                   help="the index folder to write (written atomically)")
    p.add_argument("--language", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                   help="language of the Snowball stemmer and stop list (default: "
                        "english); CJK text is split into bigrams in every language")
    p.add_argument("--stopwords", choices=STOPLISTS, default=None,
                   help="stop list (default: smart for english, the language's "
                        "Snowball list otherwise; 'snowball' = the language's list)")
    p.add_argument("--stemmer", choices=STEMMERS, default=DEFAULT_STEMMER,
                   help=f"stemmer (default: {DEFAULT_STEMMER})")
    p.add_argument("--no-text", action="store_true",
                   help="do not store the documents' text (smaller index, no snippets)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing index at INDEX, as a new generation (readers of "
                        "the old one are not disturbed); never a folder that is not an index")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="how to print the summary (default: table)")
    p.add_argument("-j", "--jobs", type=positive_int, default=1,
                   help="processes analysing documents in parallel (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("bounded memory (segments merged into one index)")
    g.add_argument("--memory", metavar="SIZE",
                   help="build within about SIZE of memory (e.g. 2GB): documents are "
                        "indexed in segments sized for SIZE, then merged in one pass; "
                        "the index is identical to a build without it")
    g.add_argument("--segment-docs", type=positive_int, metavar="N",
                   help="the same with N documents per segment (instead of --memory)")
    sharded.add_index_options(p)
    return p


def shown(path) -> str:
    """A path as printable text (bytes that are not UTF-8 as \\xNN escapes)."""
    return os.fsencode(str(path)).decode("utf-8", errors="backslashreplace")


def check_output(output: Path, inputs: list[Path], force: bool) -> None:
    try:
        out = output.resolve()
    except (OSError, RuntimeError) as exc:
        raise InputError(f"cannot use {shown(output)} as the output ({exc}); choose "
                         f"another output path") from None
    for p in inputs:
        try:
            src = p.resolve()
        except (OSError, RuntimeError):
            continue  # the reader reports it
        if src.is_dir() and (out == src or src in out.parents):
            raise InputError(f"the output {shown(output)} is inside the indexed folder "
                             f"{shown(p)}; write the index somewhere else")
        if out in src.parents:
            raise InputError(f"the indexed path {shown(p)} is inside the output "
                             f"{shown(output)}; write the index somewhere else")
    state = index_state(output)
    if state in ("index", "old", "damaged"):
        if not force:
            what = {"index": "an index", "old": "an index of an older format",
                    "damaged": "a damaged index"}[state]
            raise InputError(f"{shown(output)} already holds {what}; pass --force to "
                             f"replace it")
    elif state in ("file", "other"):
        kind = "folder" if state == "other" else "file"
        raise InputError(f"{shown(output)} exists and is a {kind} that is not an index; "
                         f"choose another output path (nothing was written)")


def _work_units(reader: FolderReader) -> int | None:
    """Files to analyse when each is one document; None when a JSON Lines file holds an
    unknown number of documents."""
    if any(f.file.lower().endswith(".jsonl") for f in reader.files_):
        return None
    return len(reader.files_)


def _segmenting(args) -> tuple[int | None, int | None] | None:
    """(documents, estimated bytes) per segment of a bounded-memory build, or None."""
    if args.memory is not None and args.segment_docs is not None:
        raise ParameterError("give either --memory or --segment-docs, not both")
    if args.memory is not None:
        return None, segment_bytes(parse_memory(args.memory))
    if args.segment_docs is not None:
        return args.segment_docs, None
    return None


def _segment_progress(bar: Progress, segments: int, documents: int) -> None:
    """Show the segments written (or the merge) in the progress bar's label."""
    bar.label = (f"merging {documents:,} documents" if segments < 0 else
                 f"indexing ({segments} segments, {documents:,} documents)")
    bar.update(0)


def _main(args) -> int:
    if sharded.wants_sharded_index(args):
        if args.memory is not None or args.segment_docs is not None:
            raise ParameterError("--memory and --segment-docs build one index; they do "
                                 "not combine with --shards or --join")
        return sharded.index_main(args)
    start = time.perf_counter()
    output = Path(args.output)
    inputs = [Path(p) for p in args.paths]
    analyzer = Analyzer(args.stopwords, args.stemmer, language=args.language)
    reader = FolderReader(inputs, stream_threshold=STREAM_BYTES)
    check_output(output, inputs, args.force)
    jobs = clamp_jobs(args.jobs, work=_work_units(reader))
    if jobs.clamped:
        print(jobs.note(), file=sys.stderr)
    segments = _segmenting(args)
    with Progress(len(reader.files_), "indexing", enabled=None if not args.quiet else False,
                  unit=" files") as bar:
        # crash-safe, records sources and content hashes for 'retrieval update'
        try:
            if segments is None:
                index, _ = build_index(inputs, output, reader=reader, analyzer=analyzer,
                                       store_text=not args.no_text, overwrite=args.force,
                                       on_file=lambda _f: bar.update(1), jobs=jobs.jobs)
            else:
                index, _ = build_index_segmented(
                    inputs, output, segment_docs=segments[0], segment_bytes=segments[1],
                    reader=reader, analyzer=analyzer, store_text=not args.no_text,
                    overwrite=args.force, on_file=lambda _f: bar.update(1),
                    on_segment=lambda s, n: _segment_progress(bar, s, n), jobs=jobs.jobs)
        except InputError:
            if not args.force and index_state(output) != "absent":
                # another process created the index while this one was building
                raise InputError(f"{shown(output)} was created by another process while "
                                 f"this one was indexing; nothing was written (pass "
                                 f"--force to replace it)") from None
            raise
    elapsed = time.perf_counter() - start
    counts = index.manifest["counts"]
    stats = reader.stats_
    summary = {
        "index": shown(output),
        "documents": counts["documents"],
        "empty_documents": counts["empty_documents"],
        "distinct_terms": counts["terms"],
        "tokens": counts["tokens"],
        "files_read": stats.files,
        "decoded_with_fallback": stats.fallback_decoded,
        "utf16": stats.utf16,
        "compressed": dict(sorted(stats.compressed.items())),
        "pdf": stats.pdf,
        "skipped": dict(sorted(stats.skipped.items())),
        "duplicate_documents": duplicate_count(index),
        "analyzer": index.manifest["analyzer"],
        "seconds": round(elapsed, 3),
    }
    if summary["documents"] == 0:
        given = ", ".join(shown(p) for p in inputs)
        print(f"warning: no documents were indexed: {given} holds no readable text files "
              f"(an empty index; add documents with 'retrieval add')", file=sys.stderr)
    if args.format == "json":
        print(dump_json(summary))
        return 0
    skipped = ", ".join(f"{n} {reason}" for reason, n in summary["skipped"].items()) or "none"
    rows = [
        ("documents", f"{summary['documents']:,} ({summary['empty_documents']:,} empty)"),
        ("distinct terms", f"{summary['distinct_terms']:,}"),
        ("tokens", f"{summary['tokens']:,}"),
        ("files", f"{stats.files:,} read, {stats.fallback_decoded:,} decoded with "
                  f"fallback (cp1252), {stats.utf16:,} UTF-16"),
        ("read inside", ", ".join([f"{n:,} .{k}" for k, n in summary["compressed"].items()]
                                  + [f"{stats.pdf:,} PDF"])),
        ("skipped", skipped),
        ("duplicates", f"{summary['duplicate_documents']:,} documents repeat the text of "
                       f"another (search --collapse shows one of each)"),
        ("analyzer", ", ".join(f"{k}={v}" for k, v in index.manifest["analyzer"].items()
                               if k != "tokenizer")),
        ("elapsed", f"{elapsed:.2f} s"),
    ]
    print(f"indexed into {shown(output)}")
    print(format_table(("", ""), rows, align="ll").split("\n", 2)[2])
    return 0


def duplicate_count(index) -> int:
    """Documents of ``index`` beyond the first of their group of identical text: the
    count of :class:`~retrieval.duplicates.DuplicateGroups` (all-zero hash: unknown,
    never grouped) without its per-document group arrays. The 16-byte hashes are
    sorted as two uint64 words and equal neighbours counted: peak about 26 bytes per
    document and 0.46 s CPU for 1M documents, against 89 bytes (0.9 GB at 10M
    documents) and 1.13 s for ``DuplicateGroups`` (tracemalloc, random hashes)."""
    arrays, _ = complete_arrays(index.arrays, index.manifest)
    words = np.ascontiguousarray(np.asarray(arrays["doc_hash"], dtype=np.uint8)
                                 ).view("<u8")  # (n, 2)
    if len(words) < 2:
        return 0
    order = np.lexsort((words[:, 1], words[:, 0]))
    order = order[words.any(axis=1)[order]]
    ranked = words[order]
    del order
    return int(np.count_nonzero((ranked[1:] == ranked[:-1]).all(axis=1)))


def main(argv=None) -> int:
    return run("index", build_parser(), _main, argv)
