"""The arrays of an index's extra fields (title, name) beside its body arrays.

Each extra field ``f`` is a small index of its own over the same document numbers: the
arrays of :func:`~retrieval.index.arrays.arrays_from_forward` plus a vocabulary, stored
under the names ``field.<f>.<array>`` (e.g. ``field.title.postings_docs``; same dtypes
and meaning as the body's array of that name, with the field's own vocabulary and term
ids). The body arrays are untouched, so an index with fields searched by its body alone
is bit-identical to one built without them. The manifest lists the extra fields under
``"fields"``; an index without that key (every index written before fields existed, or
built without them) has the body only.

Builds (:class:`~retrieval.index.counting.DocumentCounts`) and changes (``add``,
``delete``, ``update``: :func:`merge_field_arrays`, which runs the one
:func:`~retrieval.index.merge.merge_arrays` on each field) keep the fields in step with
the body: every document has a row in every field (an empty one when it has no title).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..analysis import Analyzer
from .arrays import arrays_from_forward, pack
from .layout import FIELD_ARRAYS, PREFIX, field_key, is_field_array  # noqa: F401

def index_fields(manifest: dict) -> tuple[str, ...]:
    """The extra fields an index holds (() for a body-only index)."""
    return tuple(manifest.get("fields", ()))


def shape_problem(manifest: dict, field: str) -> str | None:
    """What is wrong with the shapes the manifest declares for ``field``'s arrays (None:
    they fit its document count and each other)."""
    declared = manifest.get("arrays", {})
    shapes = {}
    for name in FIELD_ARRAYS:
        want = declared.get(field_key(field, name))
        if not isinstance(want, dict) or not isinstance(want.get("shape"), list) \
                or len(want["shape"]) != 1 or not isinstance(want["shape"][0], int):
            return f"the manifest does not describe array {field_key(field, name)}"
        shapes[name] = want["shape"][0]
    n = manifest["counts"]["documents"]
    v, p = shapes["term_cf"], shapes["postings_docs"]
    expect = {"doc_lengths": n, "doc_unique": n, "forward_indptr": n + 1,
              "postings_indptr": v + 1, "term_df": v, "vocab_offsets": v + 1,
              "postings_counts": p, "forward_terms": p, "forward_counts": p}
    for name, size in expect.items():
        if shapes[name] != size:
            return (f"the manifest gives {field_key(field, name)} {shapes[name]} items, "
                    f"which does not fit {n} documents")
    return None


def one_field(texts: Sequence[str], analyzer: Analyzer) -> dict[str, np.ndarray]:
    """The arrays of one field from each document's text of that field (in document
    order). Field texts are short (a title, a file name): one ``term_counts`` each."""
    term_counts = [analyzer.term_counts(t) if t else {} for t in texts]
    vocab = sorted({t for counts in term_counts for t in counts})
    tid = {t: i for i, t in enumerate(vocab)}
    nnz = np.fromiter(map(len, term_counts), dtype=np.int64, count=len(term_counts))
    cols = np.fromiter((tid[t] for c in term_counts for t in c), dtype=np.int64,
                       count=int(nnz.sum()))
    vals = np.fromiter((n for c in term_counts for n in c.values()), dtype=np.int64,
                       count=int(nnz.sum()))
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(nnz, out=indptr[1:])
    import scipy.sparse as sp   # here only: opening an index needs no scipy
    fwd = sp.csr_matrix((vals, cols, indptr), shape=(len(texts), len(vocab)))
    fwd.sort_indices()
    arrays = arrays_from_forward(fwd.indptr, fwd.indices, fwd.data, len(vocab))
    arrays["vocab_offsets"], arrays["vocab_bytes"] = pack([t.encode("utf-8") for t in vocab])
    return arrays


def field_arrays(texts: dict[str, Sequence[str]], analyzer: Analyzer
                 ) -> dict[str, np.ndarray]:
    """The stored (prefixed) arrays of every extra field in ``texts`` (field → texts)."""
    out: dict[str, np.ndarray] = {}
    for field, field_texts in texts.items():
        for name, arr in one_field(field_texts, analyzer).items():
            out[field_key(field, name)] = arr
    return out


def sub_arrays(arrays: dict, field: str) -> dict:
    """Field ``field``'s arrays under their plain names."""
    return {name: arrays[field_key(field, name)] for name in FIELD_ARRAYS}


def merge_field_arrays(old: dict, keep, new: dict, fields: Sequence[str], merge, *,
                       lazy: bool = False) -> dict:
    """The field arrays after a change: each field of ``old`` (rows where ``keep``) and
    of ``new`` merged by ``merge`` (:func:`~retrieval.index.merge.merge_arrays`) with the
    document arrays of the body (ids, lifecycle) borrowed, so the field rows follow the
    same renumbering as the body's."""
    out: dict = {}
    shared = [k for k in old if not is_field_array(k) and k not in FIELD_ARRAYS]
    for field in fields:
        o = {**{k: old[k] for k in shared}, **sub_arrays(old, field)}
        n = {**{k: new[k] for k in shared if k in new}, **sub_arrays(new, field)}
        m = merge(o, keep, n, store_text=False, lazy=lazy)
        for name in FIELD_ARRAYS:
            out[field_key(field, name)] = m[name]
    return out
