"""Building an index in bounded memory: segments, then one k-way merge.

Documents are analysed a *segment* at a time (at most ``segment_docs`` documents, or as
many as fit ``segment_bytes`` of estimated memory); each segment's complete array set
(:func:`~retrieval.index.sources.build_part`: counts, postings, ids, stored text,
lifecycle data, the title and name fields) is written to a temporary folder beside the
output and dropped from memory. When every document is read, the S segments are merged
in one pass (:func:`~retrieval.index.kmerge.merge_segments`: each segment is read once,
memory-mapped, and the index written once — O(S) I/O) into the first generation of the
index, which is then renamed into place atomically.

Memory: the peak is the larger of one segment's build and the merge. The merge holds
O(V) vocabulary arrays and 16 bytes per document (``doc_lengths``, ``docid_sorted``,
``docid_rank``), everything else streamed in chunks. :func:`segment_bytes` turns a memory
budget into a segment size from the measured peak RSS of a segment build
(:data:`BASE_BYTES` + :data:`BYTES_PER_DOC` per document + :data:`BYTES_PER_CHAR` per
character of text: a segment ends when its documents' estimate reaches
``BUDGET_SHARE · budget - BASE_BYTES``); whole builds are measured by
``scripts/bench_scale.py --builds`` (``results/scale/``). With ``jobs`` > 1 the worker
processes come on top (each about :data:`BASE_BYTES` plus its chunk of documents).

Exactness: language-model statistics are additive and documents keep their arrival
order, so the arrays are *identical* to those of one build over the same documents
(same vocabulary and term ids, counts, lengths, cf, |C|, ids, text, lifecycle arrays;
tested for several segment counts, with and without stored text), and every score is
the same. One exception in numbering only: files over
:data:`~retrieval.reading.STREAM_BYTES` are streamed, and a build numbers streamed
documents after the others — a plain build after all others, a segmented build after
the others of their segment; the documents, statistics and scores are the same.

Safety: nothing is written at the output until the merged index is complete (it is
written beside it and renamed, as every build is); a failure or interruption — a
repeated id, a bad file, Ctrl-C — removes the segments folder, and a folder left by a
killed build is removed by the next segmented build of the same output.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .analysis import Analyzer
from .errors import InputError, ParameterError
from .index import Index, index_state
from .index.arrays import new_manifest
from .index.kmerge import RepeatedIdError, merge_segments, open_segment, sorted_ids
from .index.sources import NewDoc, build_part, read_docs
from .reading import STREAM_BYTES, FolderReader
from .records import Document

#: peak RSS of a segment build ≈ BASE_BYTES + Σ_d (BYTES_PER_DOC + BYTES_PER_CHAR·|text_d|),
#: measured (``/usr/bin/time -v``, one segment of 50k and 200k synthetic documents of 860
#: characters, and 25k documents of 6,900 characters: 366, 1,089 and 951 MiB) and
#: solved for the three constants: 125 MiB, 829 bytes per document, 4.9 bytes per
#: character (the documents' text held until the segment is counted, its stored copy,
#: the token and count buffers, and the segment's arrays); rounded up here
BASE_BYTES = 128 * 2**20
BYTES_PER_DOC = 900
BYTES_PER_CHAR = 5.0
#: the share of a memory budget given to segments (the rest: the measurement's spread,
#: the merge's O(V) vocabulary and 16 bytes per document of the collection)
BUDGET_SHARE = 0.85
#: a budget must leave room for at least this many average documents per segment
MIN_SEGMENT_DOCS = 1000

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_memory(text: str) -> int:
    """Bytes of a memory size such as ``2GB``, ``1.5G``, ``500MB`` or ``4096`` (bytes);
    K, M, G, T are powers of 1024."""
    m = _SIZE.match(str(text))
    if not m:
        raise ParameterError(f"cannot read the memory size {text!r}; write it like 2GB, "
                             f"1.5G or 500MB")
    return int(float(m.group(1)) * 1024 ** "bkmgt".index((m.group(2) or "b").lower()))


def segment_bytes(memory: int) -> int:
    """The estimated bytes a segment may hold (:func:`estimate`) so that a build's peak
    RSS stays within ``memory`` bytes: ``BUDGET_SHARE · memory - BASE_BYTES``."""
    room = int(BUDGET_SHARE * memory) - BASE_BYTES
    if room < MIN_SEGMENT_DOCS * (BYTES_PER_DOC + 1000 * BYTES_PER_CHAR):
        need = (BASE_BYTES + MIN_SEGMENT_DOCS * (BYTES_PER_DOC + 1000 * BYTES_PER_CHAR)) \
            / BUDGET_SHARE
        raise ParameterError(f"a memory budget of {memory / 2**20:.0f} MB is too small to "
                             f"index in; give at least {need / 2**20:.0f} MB")
    return room


def estimate(doc: NewDoc) -> float:
    """The estimated memory one document takes in a segment build (streamed documents:
    their counts only)."""
    chars = len(doc.text) if isinstance(doc.text, str) else 0
    return BYTES_PER_DOC + BYTES_PER_CHAR * chars


def _segments(docs: Iterable[NewDoc], segment_docs: int | None, segment_bytes: int | None
              ) -> Iterator[list[NewDoc]]:
    segment: list[NewDoc] = []
    size = 0.0
    for doc in docs:
        segment.append(doc)
        if segment_bytes:
            size += estimate(doc)
        if (segment_docs and len(segment) >= segment_docs) or \
                (segment_bytes and size >= segment_bytes):
            yield segment
            segment, size = [], 0.0
    if segment:
        yield segment


def _remove_stale(output: Path) -> None:
    """Remove segment folders of ``output`` left by builds that were killed."""
    for folder in output.parent.glob(f".{output.name}.segments-*-*"):
        try:
            pid = int(folder.name.rsplit(".segments-", 1)[1].split("-", 1)[0])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue


def _check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output that cannot be written before any document is read (the save at
    the end checks again)."""
    state = index_state(output)
    if state in ("other", "file"):
        kind = "file" if state == "file" else "folder"
        raise InputError(f"{output} exists and is a {kind} that is not an index; choose "
                         f"another output path (nothing was written)")
    if state != "absent" and not overwrite:
        raise InputError(f"{output} already holds an index; pass --force (overwrite=True) "
                         f"to replace it")


def _write_segment(folder: Path, arrays: dict) -> None:
    folder.mkdir()
    for name, arr in {**arrays, **sorted_ids(arrays)}.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr))


def build_from_docs(docs: Iterable[NewDoc], output: str | os.PathLike, *,
                    segment_docs: int | None, segment_bytes: int | None = None,
                    analyzer: Analyzer | None = None, store_text: bool = True,
                    fields: bool = True, overwrite: bool = False, jobs: int = 1,
                    manifest_extra: Callable[[], dict] | None = None,
                    on_segment: Callable[[int, int], None] | None = None) -> Index:
    """Index ``docs`` (:class:`~retrieval.index.sources.NewDoc`) into ``output`` in
    segments (module docstring) and return the opened index. ``on_segment(segments,
    documents)`` is called after each segment is written and once more (with -1
    segments) when the merge begins. ``manifest_extra()``, called when every document is
    read, gives more manifest entries (sources, read statistics)."""
    if segment_docs is not None and (isinstance(segment_docs, bool) or not isinstance(
            segment_docs, int) or segment_docs < 1):
        raise InputError(f"segment_docs must be a whole number >= 1, got {segment_docs!r}")
    if segment_docs is None and not segment_bytes:
        raise InputError("give segment_docs or segment_bytes")
    output = Path(output)
    _check_output(output, overwrite)
    analyzer = analyzer if analyzer is not None else Analyzer()
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(output)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.segments-{os.getpid()}-",
                                 dir=output.parent))
    try:
        folders, n_docs = [], 0
        for segment in _segments(docs, segment_docs, segment_bytes):
            arrays, ids = build_part(segment, analyzer, store_text, jobs=jobs,
                                     fields=fields)
            del segment
            folders.append(work / f"s{len(folders):06d}")
            _write_segment(folders[-1], arrays)
            del arrays
            n_docs += len(ids)
            if on_segment is not None:
                on_segment(len(folders), n_docs)
        if not folders:  # no documents: the one (empty) part
            arrays, _ = build_part([], analyzer, store_text, fields=fields)
            folders.append(work / "s000000")
            _write_segment(folders[-1], arrays)
        if on_segment is not None:
            on_segment(-1, n_docs)
        parts = [open_segment(f) for f in folders]
        names = ("title", "name") if fields else ()
        merged = merge_segments(parts, store_text=store_text, fields=names)
        manifest = new_manifest(analyzer, store_text, merged, fields=names,
                                **(manifest_extra() if manifest_extra else {}))
        Index(merged, manifest, path=None).save(output, overwrite=overwrite)
        del parts, merged
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Index.open(output)


def build_segmented(documents: Iterable[Document | tuple[str, str]],
                    output: str | os.PathLike, *, segment_docs: int,
                    analyzer: Analyzer | None = None, store_text: bool = True,
                    fields: bool = False, overwrite: bool = False) -> Path:
    """Index ``(docid, text)`` pairs into ``output`` a segment of ``segment_docs`` at a
    time (module docstring); returns the path. Ids must be unique: a repeated id is an
    error naming it, and nothing is written."""
    docs = (NewDoc(*_pair(d)) for d in documents)
    build_from_docs(docs, output, segment_docs=segment_docs, analyzer=analyzer,
                    store_text=store_text, fields=fields, overwrite=overwrite)
    return Path(output)


def _pair(item) -> tuple[str, str]:
    try:
        docid, text = item[0], item[1]
    except (TypeError, IndexError, KeyError):
        raise InputError(f"expected (docid, text) pairs, got {item!r:.80}") from None
    if not isinstance(text, str):
        raise InputError(f"document {docid!r}: the text must be a string, got "
                         f"{type(text).__name__}")
    return docid, text


def build_index_segmented(paths: Iterable[str | os.PathLike], output: str | os.PathLike,
                          *, segment_docs: int | None, segment_bytes: int | None = None,
                          analyzer: Analyzer | None = None, store_text: bool = True,
                          overwrite: bool = False, on_file: Callable | None = None,
                          on_segment: Callable | None = None,
                          reader: FolderReader | None = None, jobs: int = 1,
                          fields: bool = True) -> tuple[Index, FolderReader]:
    """:func:`~retrieval.lifecycle.build_index` in segments: the same index (the same
    arrays, sources and lifecycle data, so ``update`` works), built in bounded memory."""
    if reader is None:
        reader = FolderReader(paths, stream_threshold=STREAM_BYTES)
    resolved = [str(p.resolve()) for p in reader.paths]
    try:
        index = build_from_docs(
            read_docs(reader, 0, on_file, check_ids=False), output,
            segment_docs=segment_docs, segment_bytes=segment_bytes, analyzer=analyzer,
            store_text=store_text, fields=fields, overwrite=overwrite, jobs=jobs,
            on_segment=on_segment,
            manifest_extra=lambda: {"sources": resolved, "source_groups": [resolved],
                                    "read_stats": reader.stats_.as_dict()})
    except RepeatedIdError as exc:
        # ids are not kept while reading (that set is O(N) memory, about 100 bytes per
        # document); the line is found by reading the one file again, on this error only
        nth = 2 if exc.earlier == exc.later else 1
        line = reader.id_line(exc.later, exc.docid, nth) if exc.later else None
        if line is None:
            raise
        raise RepeatedIdError(exc.docid, exc.earlier, exc.later, line) from None
    return index, reader
