"""Verifying an index completely: :func:`check` (``retrieval check``) and
:func:`verify_arrays`, the internal consistency of an array set."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, RetrievalError
from ..safeio import MAX_METADATA_BYTES, load_json
from .arrays import segment_sums
from .layout import (ARRAY_SPECS, CORE_ARRAYS, GENERATION_INFO, LIFECYCLE_ARRAYS, MANIFEST,
                     TEXT_ARRAYS, StringTable)
from .manifest import read_manifest
from .integrity import file_checksum


def check(index_path: str | os.PathLike) -> list[str]:
    """Verify an index completely; return one line per problem (empty: all is well).

    Checks the manifest, the generation's identity, every array file's existence, size,
    dtype, shape and full BLAKE2b checksum, then the arrays' internal consistency
    (:func:`verify_arrays`). Takes no lock (it is a reader): when problems are found but
    a writer published another generation meanwhile (its files may have been removed
    under the check), the new generation is checked instead, up to three times.
    """
    path = Path(index_path)
    for _ in range(3):
        before = _generation_dir_or_none(path)
        problems = _check_once(path)
        if not problems or before is None or _generation_dir_or_none(path) == before:
            return problems
    return problems


def _generation_dir_or_none(path: Path) -> str | None:
    try:
        gen = load_json(path / MANIFEST, max_bytes=MAX_METADATA_BYTES, nofollow=True)
    except RetrievalError:
        return None
    return gen.get("generation_dir") if isinstance(gen, dict) else None


def _check_once(path: Path) -> list[str]:
    try:
        manifest = read_manifest(path)
    except IndexFormatError as exc:
        return [str(exc)]
    gen = path / manifest["generation_dir"]
    if not gen.is_dir():
        return [f"{path}: the generation folder {gen.name} is missing"]
    problems = []
    try:
        info = load_json(gen / GENERATION_INFO, max_bytes=MAX_METADATA_BYTES, nofollow=True)
        if info.get("index_id") != manifest["index_id"]:
            problems.append(f"{gen.name}: belongs to another index")
        if info.get("generation") != manifest["generation"]:
            problems.append(f"{gen.name}: holds generation {info.get('generation')}, the "
                            f"manifest says {manifest['generation']}")
    except (RetrievalError, AttributeError) as exc:
        problems.append(f"{gen.name}/{GENERATION_INFO}: unreadable ({exc})")
    names = list(CORE_ARRAYS) + (list(TEXT_ARRAYS) if manifest.get("store_text") else []) \
        + list(LIFECYCLE_ARRAYS)
    arrays = {}
    for name in names:
        want = manifest["arrays"].get(name)
        file = gen / f"{name}.npy"
        if want is None:
            problems.append(f"{name}: not described in the manifest")
            continue
        if not file.is_file():
            problems.append(f"{file.name}: missing")
            continue
        try:
            size = file.stat().st_size
            if size != want.get("bytes"):
                problems.append(f"{file.name}: {size} bytes, the manifest says "
                                f"{want.get('bytes')}")
                continue
            if file_checksum(file) != want.get("blake2b"):
                problems.append(f"{file.name}: checksum mismatch (the file changed on disk)")
                continue
        except OSError as exc:
            problems.append(f"{file.name}: unreadable ({exc.strerror})")
            continue
        try:
            arr = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            problems.append(f"{file.name}: unreadable ({exc})")
            continue
        if list(arr.shape) != want.get("shape") or str(arr.dtype) != want.get("dtype"):
            problems.append(f"{file.name}: shape {list(arr.shape)} {arr.dtype}, the manifest "
                            f"says {want.get('shape')} {want.get('dtype')}")
            continue
        arrays[name] = arr
    if problems or len(arrays) != len(names):
        return problems
    return verify_arrays(arrays, manifest)



def verify_arrays(arrays: dict[str, np.ndarray], manifest: dict) -> list[str]:
    """Internal consistency of an index's arrays; one line per problem."""
    a = {k: np.asarray(v) for k, v in arrays.items()}
    counts = manifest.get("counts", {})
    problems = _shapes(a, manifest)
    if problems:
        return problems
    fwd_ok = _offsets_ok(a, "forward_indptr", len(a["forward_terms"]), problems)
    post_ok = _offsets_ok(a, "postings_indptr", len(a["postings_docs"]), problems)
    if len(a["postings_docs"]) != len(a["forward_terms"]):
        problems.append(f"postings_docs: {len(a['postings_docs'])} postings, the forward "
                        f"index has {len(a['forward_terms'])}")
        post_ok = False
    fwd_ok = fwd_ok and _forward_ok(a, counts, problems)
    post_ok = post_ok and _postings_ok(a, counts, problems)
    if fwd_ok and post_ok:
        _transpose_ok(a, counts, problems)
    _counts_ok(a, counts, problems)
    _strings_ok(a, counts, problems)
    if "text_offsets" in a:
        _offsets_ok(a, "text_offsets", len(a["text_bytes"]), problems)
    _offsets_ok(a, "doc_file_offsets", len(a["doc_file_bytes"]), problems)
    groups = manifest.get("source_groups", [])
    if counts.get("documents") and (a["doc_group"].min() < -1
                                    or a["doc_group"].max() >= len(groups)):
        problems.append("doc_group: group numbers out of range")
    empty = int(np.count_nonzero(a["doc_lengths"] == 0))
    if counts.get("empty_documents") is not None and counts["empty_documents"] != empty:
        problems.append(f"counts: {empty} empty documents, the manifest says "
                        f"{counts['empty_documents']}")
    return problems


def _shapes(a: dict, manifest: dict) -> list[str]:
    """Every array present with its dtype and length (N, V, P)."""
    problems: list[str] = []
    counts = manifest.get("counts", {})
    n, v = counts.get("documents"), counts.get("terms")
    for name, (dtype, shape) in ARRAY_SPECS.items():
        if name not in a:
            if name in TEXT_ARRAYS and not manifest.get("store_text"):
                continue
            problems.append(f"{name}: missing")
            continue
        if str(a[name].dtype) != dtype:
            problems.append(f"{name}: dtype {a[name].dtype}, expected {dtype}")
    if problems:
        return problems
    p = len(a["forward_terms"])
    want_len = {"N": n, "N+1": None if n is None else n + 1, "V": v,
                "V+1": None if v is None else v + 1, "P": p}
    for name, (_, shape) in ARRAY_SPECS.items():
        if name in a and want_len.get(shape[0]) is not None \
                and a[name].shape[0] != want_len[shape[0]]:
            problems.append(f"{name}: length {a[name].shape[0]}, expected "
                            f"{want_len[shape[0]]} ({shape[0]} with N={n}, V={v}, P={p})")
    return problems


def _offsets_ok(a: dict, name: str, end: int, problems: list[str]) -> bool:
    off = a[name]
    if len(off) == 0 or off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] != end:
        problems.append(f"{name}: not a non-decreasing sequence from 0 to {end}")
        return False
    return True


def _forward_ok(a: dict, counts: dict, problems: list[str]) -> bool:
    """The document-major rows: term ids in range and ascending, lengths and |d|_u."""
    ok = True
    t, p = a["forward_terms"], len(a["forward_terms"])
    if p and (t.min() < 0 or t.max() >= counts.get("terms")):
        problems.append("forward_terms: term ids out of range")
        ok = False
    elif not _ascending_within(t, a["forward_indptr"]):
        problems.append("forward_terms: not strictly ascending within a document")
        ok = False
    if p and a["forward_counts"].min() <= 0:
        problems.append("forward_counts: counts must be positive")
    if not np.array_equal(a["doc_lengths"], segment_sums(a["forward_counts"],
                                                         a["forward_indptr"])):
        problems.append("doc_lengths: not the sums of the documents' counts")
    if not np.array_equal(a["doc_unique"], np.diff(a["forward_indptr"])):
        problems.append("doc_unique: not the documents' numbers of distinct terms")
    return ok


def _postings_ok(a: dict, counts: dict, problems: list[str]) -> bool:
    """The term-major postings: documents in range and ascending, cf and df."""
    ok = True
    d, p = a["postings_docs"], len(a["forward_terms"])
    if p and (d.min() < 0 or d.max() >= counts.get("documents")):
        problems.append("postings_docs: document numbers out of range")
        ok = False
    elif not _ascending_within(d, a["postings_indptr"]):
        problems.append("postings_docs: not strictly ascending within a term")
        ok = False
    if not np.array_equal(a["term_cf"], segment_sums(a["postings_counts"],
                                                     a["postings_indptr"])):
        problems.append("term_cf: not the sums of the terms' postings")
    if not np.array_equal(a["term_df"], np.diff(a["postings_indptr"])):
        problems.append("term_df: not the terms' numbers of postings")
    if counts.get("terms") and np.diff(a["postings_indptr"]).min() <= 0:
        problems.append("postings_indptr: a term without postings")
    return ok


def _transpose_ok(a: dict, counts: dict, problems: list[str]) -> None:
    import scipy.sparse as sp   # here only: searching needs no scipy
    fwd = sp.csr_matrix((a["forward_counts"], a["forward_terms"], a["forward_indptr"]),
                        shape=(counts.get("documents"), counts.get("terms"))).tocsc()
    fwd.sort_indices()
    if not (np.array_equal(fwd.indptr, a["postings_indptr"])
            and np.array_equal(fwd.indices, a["postings_docs"])
            and np.array_equal(fwd.data, a["postings_counts"])):
        problems.append("postings: the term-major postings disagree with the "
                        "document-major rows")


def _counts_ok(a: dict, counts: dict, problems: list[str]) -> None:
    """The manifest's counts against the arrays."""
    p = len(a["forward_terms"])
    tokens = int(a["doc_lengths"].sum())
    if tokens != counts.get("tokens") or int(a["term_cf"].sum()) != tokens:
        problems.append(f"counts: |C| is {tokens} by documents, {int(a['term_cf'].sum())} by "
                        f"terms, the manifest says {counts.get('tokens')}")
    if counts.get("postings") is not None and counts["postings"] != p:
        problems.append(f"counts: {p} postings, the manifest says {counts['postings']}")


def _strings_ok(a: dict, counts: dict, problems: list[str]) -> None:
    """The vocabulary (sorted, non-empty terms) and the document ids and their order."""
    n = counts.get("documents")
    if _offsets_ok(a, "vocab_offsets", len(a["vocab_bytes"]), problems):
        terms = _strings(a["vocab_offsets"], a["vocab_bytes"], "vocabulary", problems)
        if terms is not None:
            if any(x >= y for x, y in zip(terms, terms[1:])):
                problems.append("vocabulary: terms not strictly sorted")
            if any(not t for t in terms):
                problems.append("vocabulary: an empty term")
    if _offsets_ok(a, "docid_offsets", len(a["docid_bytes"]), problems):
        ids = _strings(a["docid_offsets"], a["docid_bytes"], "document ids", problems)
        order = a["docid_sorted"]
        if ids is not None:
            if any(not d for d in ids):
                problems.append("document ids: an empty id")
            if not np.array_equal(np.sort(order), np.arange(n)):
                problems.append("docid_sorted: not a permutation of the documents")
            else:
                ordered = [ids[i] for i in order.tolist()]
                if any(x >= y for x, y in zip(ordered, ordered[1:])):
                    problems.append("docid_sorted: ids not in strictly ascending order "
                                    "(or repeated)")
                rank = np.empty(n, dtype=np.int64)
                rank[order] = np.arange(n)
                if not np.array_equal(rank, a["docid_rank"]):
                    problems.append("docid_rank: not the inverse of docid_sorted")


def _ascending_within(values: np.ndarray, indptr: np.ndarray) -> bool:
    """Strictly ascending inside every CSR segment."""
    if len(values) < 2:
        return True
    step_ok = np.diff(values.astype(np.int64)) > 0
    starts = np.asarray(indptr[1:-1], dtype=np.int64)
    starts = starts[(starts > 0) & (starts < len(values))]
    step_ok[starts - 1] = True  # a new segment may start lower
    return bool(step_ok.all())


def _strings(offsets, blob, what: str, problems: list[str]) -> list[str] | None:
    try:
        return StringTable(offsets, blob).all()
    except UnicodeDecodeError:
        problems.append(f"{what}: not valid UTF-8")
        return None

