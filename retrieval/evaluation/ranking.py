"""Joining a run with qrels and ranking it the way trec_eval does, vectorised.

The result, :class:`Ranked`, holds every evaluated row in rank order, grouped by
query, with its judgment; measures (:mod:`.measures`) are reductions over it.

trec_eval's ranking (``form_res_rels``): documents sorted by score descending, the
score compared as a 32-bit float (trec_eval <= 9.0.8 and pytrec_eval store it as
``float``), ties broken by document id descending in byte (``strcmp``) order - which
for UTF-8 is code-point order, numpy's string order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import InputError
from .data import Qrels, Run

#: judgment value stored for retrieved documents that have none
UNJUDGED = -1


@dataclass(frozen=True, eq=False)
class Ranked:
    """Rows of the evaluated queries in rank order (query by query), and per-query data.

    Queries are numbered ``0..n_queries-1`` in the order of :attr:`qids`.
    """
    qids: np.ndarray        # str, the evaluated queries (string order)
    qpos: np.ndarray        # per row: query number (non-decreasing)
    rel: np.ndarray         # per row: judgment, UNJUDGED (-1) if none
    num_ret: np.ndarray     # per query: rows
    level: int              # relevance level
    judged_q: np.ndarray    # per judgment of an evaluated query: query number
    judged_rel: np.ndarray  # per judgment of an evaluated query: value

    @property
    def n_queries(self) -> int:
        return int(self.qids.size)

    @cached_property
    def starts(self) -> np.ndarray:
        """Index of the first row of each query."""
        return np.concatenate(([0], np.cumsum(self.num_ret)[:-1])).astype(np.int64)

    @cached_property
    def rank(self) -> np.ndarray:
        """1-based rank of each row within its query."""
        return np.arange(self.qpos.size, dtype=np.int64) - self.starts[self.qpos] + 1

    @cached_property
    def is_rel(self) -> np.ndarray:
        """Row is relevant: judgment >= relevance level."""
        return self.rel >= self.level

    @cached_property
    def cum_rel(self) -> np.ndarray:
        """Relevant rows at or above each row, within its query."""
        return segmented_cumsum(self.is_rel, self.starts, self.qpos)

    @cached_property
    def rel_rows(self) -> np.ndarray:
        """Indices of the relevant rows."""
        return np.flatnonzero(self.is_rel)

    def count(self, mask: np.ndarray | None = None, weights: np.ndarray | None = None,
              rows: np.ndarray | None = None) -> np.ndarray:
        """Per-query sum of ``weights`` (or count) over rows (optionally masked/selected)."""
        qpos = self.qpos if rows is None else self.qpos[rows]
        if mask is not None:
            qpos = qpos[mask]
            if weights is not None:
                weights = weights[mask]
        return np.bincount(qpos, weights=weights, minlength=self.n_queries).astype(np.float64)

    @cached_property
    def num_rel(self) -> np.ndarray:
        """Per query: judgments >= level (negative judgments never count)."""
        return np.bincount(self.judged_q[self.judged_rel >= self.level],
                           minlength=self.n_queries).astype(np.int64)

    @cached_property
    def num_nonrel(self) -> np.ndarray:
        """Per query: judged non-relevant, 0 <= judgment < level (negatives excluded)."""
        mask = (self.judged_rel >= 0) & (self.judged_rel < self.level)
        return np.bincount(self.judged_q[mask], minlength=self.n_queries).astype(np.int64)

    @cached_property
    def num_rel_ret(self) -> np.ndarray:
        return np.bincount(self.qpos[self.is_rel], minlength=self.n_queries).astype(np.int64)

    @cached_property
    def ideal(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positive judgments in ideal order: (query number, 1-based rank, gain)."""
        mask = self.judged_rel > 0
        q = self.judged_q[mask]
        gain = self.judged_rel[mask]
        order = np.lexsort((-gain, q))
        q, gain = q[order], gain[order]
        counts = np.bincount(q, minlength=self.n_queries)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(q.size, dtype=np.int64) - starts[q] + 1
        return q, rank, gain.astype(np.float64)


def segmented_cumsum(flags: np.ndarray, starts: np.ndarray, qpos: np.ndarray) -> np.ndarray:
    total = np.cumsum(flags, dtype=np.int64)
    before = np.concatenate(([0], total))[starts]  # sum before each query's first row
    return total - before[qpos]


def _score_keys(scores: np.ndarray) -> np.ndarray:
    """uint32 keys whose ascending order is the float32 score order *descending*."""
    s32 = scores.astype(np.float32)
    s32 += np.float32(0.0)  # -0.0 -> +0.0: equal scores must get equal keys
    bits = s32.view(np.uint32)
    negative = (bits >> np.uint32(31)).astype(bool)
    ordered = np.where(negative, ~bits, bits | np.uint32(0x80000000))
    return ~ordered


def rank(qrels: Qrels, run: Run, *, level: int, complete: bool) -> Ranked:
    """Join ``run`` with ``qrels`` and rank each evaluated query like trec_eval.

    Evaluated queries: those of the run that are judged; with ``complete``, every
    judged query (the ones missing from the run get no rows). Raises
    :class:`InputError` when the run and the qrels share no query.
    """
    # run query code -> qrels query index (-1: not judged)
    qn = qrels._qids
    pos = np.searchsorted(qn, run._qnames)
    pos_c = np.minimum(pos, max(qn.size - 1, 0))
    judged = (pos < qn.size) & (qn[pos_c] == run._qnames) if qn.size else \
        np.zeros(run._qnames.size, dtype=bool)
    if not judged.any():
        raise InputError(
            f"the run and the qrels have no query in common (run: {run._qnames.size} queries, "
            f"e.g. {_examples(run._qnames)}; qrels: {qn.size} queries, e.g. {_examples(qn)}); "
            f"check that the run answers the queries these qrels judge")
    run_to_qrels = np.where(judged, pos_c, -1)

    if complete:
        evaluated = np.arange(qn.size)
    else:
        evaluated = np.unique(run_to_qrels[judged])
    number = np.full(qn.size, -1, dtype=np.int64)  # qrels index -> evaluated query number
    number[evaluated] = np.arange(evaluated.size)

    row_q = run_to_qrels[run._qcodes]  # qrels index of each row's query
    if judged.all():
        rows = None
        q_rows = row_q
        hashes, docids, scores = run._hashes, run._docids, run._scores
    else:
        rows = np.flatnonzero(row_q >= 0)
        q_rows = row_q[rows]
        hashes, docids, scores = run._hashes[rows], run._docids[rows], run._scores[rows]
    rel = qrels._lookup(q_rows, hashes, docids)
    qpos = number[q_rows]

    # rank: query number ascending, float32 score descending, docid descending
    keys = (qpos.astype(np.uint64) << np.uint64(32)) | _score_keys(scores).astype(np.uint64)
    order = np.argsort(keys, kind="stable")
    keys_sorted = keys[order]
    tied = keys_sorted[1:] == keys_sorted[:-1]
    if tied.any():
        _break_ties(order, tied, docids)

    judged_rows = number[qrels._jq] >= 0
    return Ranked(
        qids=qn[evaluated], qpos=qpos[order], rel=rel[order],
        num_ret=np.bincount(qpos, minlength=evaluated.size).astype(np.int64), level=level,
        judged_q=number[qrels._jq][judged_rows], judged_rel=qrels._jrel[judged_rows])


def _break_ties(order: np.ndarray, tied: np.ndarray, docids: np.ndarray) -> None:
    """Reorder runs of equal (query, score) keys in ``order`` by docid descending."""
    in_tie = np.zeros(order.size, dtype=bool)
    in_tie[1:] |= tied
    in_tie[:-1] |= tied
    positions = np.flatnonzero(in_tie)
    # a new group starts where the key differs from the previous position's
    new_group = np.ones(positions.size, dtype=bool)
    new_group[1:] = ~(tied[positions[1:] - 1] & (positions[1:] - 1 == positions[:-1]))
    group = np.cumsum(new_group) - 1
    members = order[positions]
    ascending = np.lexsort((docids[members], group))  # by group, then docid ascending
    # reverse each group's slice: position i of a group [start, end) takes end-1-(i-start)
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], positions.size)
    i = np.arange(positions.size)
    order[positions] = members[ascending[starts[group] + ends[group] - 1 - i]]


def _examples(names: np.ndarray, k: int = 3) -> str:
    shown = ", ".join(repr(str(x)) for x in names[:k].tolist())
    return shown + (", ..." if names.size > k else "") if names.size else "none"
