"""Exact dynamic pruning for one query: MaxScore, vectorised per query term.

The bounds and the proof that no document of the top k (nor one tied with its last
member) is dropped are in :mod:`retrieval.search.bounds`. Candidates are scored by the
same formula, in the same order of operations (terms in query-model order), as the
exhaustive paths, so scores are bit-identical and ties resolve identically (by docid).
"""

from __future__ import annotations

import math

import numpy as np

from .bounds import SATURATED
from .plan import Thresholds
from .ranking import top_k
from .tables import SearchTables


def _eps(t: float) -> float:
    return 1e-9 * (1.0 + abs(t))


def score_docs(tables: SearchTables, prep, starts: np.ndarray, ends: np.ndarray,
               docs: np.ndarray, own: int = -1) -> np.ndarray:
    """Exact scores of ``docs`` (ascending, unique, postings dtype).

    Each term's postings are found by ``searchsorted`` in its ascending posting list
    (term ``own``'s list *is* ``docs``). Contributions are added term by term in the
    query-model order, exactly as the exhaustive ``bincount`` adds them, so the
    scores are bit-identical to the exhaustive path's.
    """
    acc = np.zeros(len(docs))
    for i, (tid, qw) in enumerate(zip(prep.term_ids.tolist(), prep.weights.tolist())):
        s, e = int(starts[i]), int(ends[i])
        if i == own:
            hit = None
            where = slice(s, e)
            dh = docs
        else:
            plist = tables.post_docs[s:e]
            pos = np.searchsorted(plist, docs)
            np.minimum(pos, e - s - 1, out=pos)
            hit = plist[pos] == docs
            if not hit.any():
                continue
            where = pos[hit] + s
            dh = docs[hit]
        w = tables.weights(tid, qw, where, dh)
        if hit is None:
            acc += w
        else:
            acc[hit] += w
    return acc + prep.mass * tables.log_alpha[docs] + prep.constant


class MaxScore:
    """Top ``k`` of one query by MaxScore pruning (:meth:`run`).

    Query terms are taken by gain q_w·g_w descending (rare terms first), t_0 … t_{m−1};
    G_j, the documents whose first query term in that order is t_j, contain only
    t_j … t_{m−1}, so every score in G_j is ≤ K + M·A + Σ_{i≥j} q_{t_i} g_{t_i}
    (see :mod:`retrieval.search.bounds`). A threshold θ ≤ the true k-th best score is
    kept from lower bounds: matched weights are ≥ 0, so a document scores at least
    LB(d) = K + M·log α_d + Σ (weights of its terms looked up so far), and the k-th
    largest LB over distinct documents is such a θ. For j = 0, 1, …:

    1. stop when K + M·A + Σ_{i≥j} q g < θ − ε: no later group can reach the top k;
    2. G_j's candidates are t_j's postings, with LB(d) = q m_{t_j}(d) + M log α_d + K
       and UB(d) = LB(d) + Σ_{i>j} q_{t_i}·min(M_{t_i}, T_{t_i} − log α_d), where
       M_w is w's largest matched weight (m_w(d) ≤ M_w and m_w(d) + log α_d ≤ T_w);
       candidates with UB < θ − ε are dropped;
    3. the survivors found in an earlier term's postings (they belong to an earlier
       group) are dropped; the later terms are looked up one at a time
       (``searchsorted`` in their ascending posting lists), each step tightening LB,
       UB and θ and dropping candidates with UB < θ − ε;
    4. the survivors are scored exactly (:func:`score_docs`).

    Finally all groups' survivors are ranked like the exhaustive path. ε = 1e-9·(1 +
    |θ|) absorbs rounding, so a document tied with the k-th best is never dropped.
    """

    def __init__(self, tables: SearchTables, t: Thresholds, prep, k: int, forced: bool):
        self.tables, self.thresholds, self.prep, self.k = tables, t, prep, k
        self.forced = forced
        bounds, gains_all, self.blocks = tables.pruning_bounds()
        ids = prep.term_ids
        ptr = tables.post_ptr
        self.starts, self.ends = ptr[ids], ptr[ids + 1]
        gains = prep.weights * gains_all[ids]
        self.order = np.argsort(-gains, kind="stable").tolist()
        self.suffix = np.cumsum(gains[self.order][::-1])[::-1].tolist()
        self.m_max = bounds.matched[ids].tolist()
        self.qw = prep.weights.tolist()
        self.tids = ids.tolist()
        self.base = prep.constant + prep.mass * bounds.alpha_max
        self.pool = np.zeros(0)          # the best ≤ k lower bounds of finished groups
        self.theta = -math.inf
        self.out_docs, self.out_scores = [], []
        self.lists = [tables.post_docs[int(self.starts[i]):int(self.ends[i])]
                      for i in range(len(ids))]

    def term_weights(self, i: int, docs: np.ndarray, where) -> np.ndarray:
        """q_w · m_w(d) of query term ``i`` for its postings ``where`` (docs ``docs``)."""
        return self.tables.weights(self.tids[i], self.qw[i], where, docs)

    def raise_theta(self, lb: np.ndarray) -> None:
        pool, k = self.pool, self.k
        n = len(pool) + len(lb)
        if n < k:
            return
        vals = np.concatenate((pool, lb)) if len(pool) else lb
        self.theta = max(self.theta, float(np.partition(vals, n - k)[n - k]))

    def caps(self, later, cand) -> np.ndarray:
        """q_i × a bound of m_i(d) for each later term i and candidate d."""
        tables, tids, m_max = self.tables, self.tids, self.m_max
        model = tables.model
        uses = model.uses
        p_c = tables.p_collection
        out = np.empty((len(later), len(cand)))
        for r, i in enumerate(later):
            cm = self.blocks.block_max(tids[i], cand)
            if cm is None:
                out[r] = m_max[i]
            elif not uses:
                # the weight depends on the count only: a table over the 256 values
                c = np.arange(SATURATED + 1, dtype=np.float64)
                table = np.minimum(model.matched_weight(np.maximum(c, 1), None, None,
                                                        p_c[tids[i]]), m_max[i])
                table[0] = 0.0
                table[SATURATED] = m_max[i]
                out[r] = table[cm]
            else:
                mw = model.matched_weight(
                    np.maximum(cm, 1), tables.doc_len[cand] if "doc_len" in uses else None,
                    tables.doc_unique[cand] if "doc_unique" in uses else None,
                    p_c[tids[i]])
                np.minimum(mw, m_max[i], out=out[r])
                out[r][cm == 0] = 0.0
                out[r][cm == SATURATED] = m_max[i]
            out[r] *= self.qw[i]
        return out

    def probe(self, cand, lb, rest, cap):
        """The first group: score the candidates with the best upper bounds exactly, for
        a θ close to the final one before anything else is looked up; the others are
        returned."""
        k = self.k
        n = len(cand)
        n_probe = min(n, max(2 * k, self.thresholds.probe))
        top = np.sort(np.argpartition(lb + rest, n - n_probe)[n - n_probe:])
        probe = np.ascontiguousarray(cand[top])
        exact = score_docs(self.tables, self.prep, self.starts, self.ends, probe)
        self.out_docs.append(probe)
        self.out_scores.append(exact)
        self.pool = np.partition(exact, n_probe - k)[n_probe - k:]
        self.theta = max(self.theta, float(self.pool[0]))
        keep = np.ones(n, dtype=bool)
        keep[top] = False
        return cand[keep], lb[keep], rest[keep], cap[:, keep]

    def group(self, j: int, t: int, cand, lb):
        """Steps 2–4 for group j (first term ``t``, candidates ``cand`` with LB ``lb``);
        the work done (in vector element operations)."""
        order = self.order
        later = order[j + 1:]
        cap = self.caps(later, cand)
        rest = cap.sum(axis=0)
        if j == 0:
            self.raise_theta(lb)
            if later and len(cand) > min(len(cand), max(2 * self.k, self.thresholds.probe)):
                cand, lb, rest, cap = self.probe(cand, lb, rest, cap)
        if self.theta > -math.inf:
            keep = lb + rest >= self.theta - _eps(self.theta)
            cand, lb, rest, cap = cand[keep], lb[keep], rest[keep], cap[:, keep]
        for i in order[:j]:
            if not len(cand):
                break
            plist = self.lists[i]
            pos = np.searchsorted(plist, cand)
            np.minimum(pos, len(plist) - 1, out=pos)
            new = plist[pos] != cand
            if not new.all():
                cand, lb, rest, cap = cand[new], lb[new], rest[new], cap[:, new]
        if j > 0:
            self.raise_theta(lb)
        work = 0.0
        for r, i in enumerate(later):
            if not len(cand):
                break
            rest -= cap[r]
            work += 6.0 * len(cand)
            plist = self.lists[i]
            pos = np.searchsorted(plist, cand)
            np.minimum(pos, len(plist) - 1, out=pos)
            hit = plist[pos] == cand
            if hit.any():
                lb[hit] += self.term_weights(i, cand[hit], pos[hit] + int(self.starts[i]))
            self.raise_theta(lb)
            keep = lb + rest >= self.theta - _eps(self.theta)
            if not keep.all():
                cand, lb, rest, cap = cand[keep], lb[keep], rest[keep], cap[:, keep]
        if len(cand):
            self.out_docs.append(cand)
            self.out_scores.append(score_docs(self.tables, self.prep, self.starts,
                                              self.ends, np.ascontiguousarray(cand)))
            vals = np.concatenate((self.pool, lb))
            k = self.k
            self.pool = vals if len(vals) <= k else np.partition(vals, len(vals) - k)[-k:]
        return work

    def run(self):
        """(docs, scores) ranked, or None when pruning gives up (not ``forced``).

        Cost model, in "vector element operations": the exhaustive path does about
        exhaustive_ops per posting plus a pass over the documents; pruning gives up
        before a group would take its own work past that."""
        tables, prep = self.tables, self.prep
        la = tables.log_alpha
        mass, const = prep.mass, prep.constant
        budget = self.thresholds.exhaustive_ops * float((self.ends - self.starts).sum()) + \
            0.25 * len(la)
        work = 0.0
        n_order = len(self.order)
        for j, t in enumerate(self.order):
            if self.base + self.suffix[j] < self.theta - _eps(self.theta):
                break
            s, e = int(self.starts[t]), int(self.ends[t])
            work += (e - s) * (4.0 + 2.0 * (n_order - j - 1))
            if work > budget and not self.forced:
                return None
            cand = self.lists[t]
            lb = self.term_weights(t, cand, slice(s, e))
            lb += mass * la[cand]
            lb += const
            work += self.group(j, t, cand, lb)
        docs = np.concatenate(self.out_docs).astype(np.int64)
        scores = np.concatenate(self.out_scores)
        return top_k(docs, scores, tables.tie, self.k)


def pruned(tables: SearchTables, t: Thresholds, prep, k: int, forced: bool):
    """Top ``k`` of one query by :class:`MaxScore`: (docs, scores) ranked, or None when
    the cost model gives up (never when ``forced``)."""
    return MaxScore(tables, t, prep, k, forced).run()
