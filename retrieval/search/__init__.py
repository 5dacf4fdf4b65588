"""Ranking by negative cross-entropy (the KL-divergence retrieval model).

:class:`Searcher` is the facade; the modules below it each hold one job:

* :mod:`~retrieval.search.searcher` — :class:`Searcher`: parameters, results, and
  :meth:`Searcher.rank`, which runs the path the plan chooses;
* :mod:`~retrieval.search.queries` — :class:`QueryModel` and the prepared
  :class:`QueryBatch` (term ids and weights as flat arrays);
* :mod:`~retrieval.search.plan` — the tuning :class:`Thresholds` (one frozen record)
  and the pure functions that choose a path from measured costs;
* :mod:`~retrieval.search.tables` — the per-(index, model) arrays and tables shared by
  every path and by feedback;
* :mod:`~retrieval.search.exhaustive` — numpy paths: dense and sparse blocks of queries,
  the per-query accumulator and dense scoring;
* :mod:`~retrieval.search.maxscore` — exact MaxScore pruning for one query;
  :mod:`~retrieval.search.bounds` — its score bounds, cached on disk;
* :mod:`~retrieval.search.compiled` — drivers of the numba kernels and their argument
  records; :mod:`~retrieval.search.kernels` — the kernels (imported lazily);
* :mod:`~retrieval.search.parallel` — threads or forked workers for ``jobs`` > 1;
* :mod:`~retrieval.search.ranking` — result records and the tie rule.

Public seams for feedback, scripts and tests: ``Searcher.prepare(queries)`` and
``Searcher.batch_from_arrays(...)`` make a :class:`QueryBatch`; ``Searcher.rank(batch,
k)`` ranks it; ``Searcher.kernels()`` is the kernels module when the searcher uses them;
``Searcher.tables_`` the shared tables (``tables_.scratch``: per-thread work arrays);
:func:`kernels_available` loads the kernels when numba is there.
"""

from .compiled import kernels_available, kernels_loaded, load_kernels
from .plan import DEFAULT_THRESHOLDS, Thresholds
from .queries import UNKNOWN_TERM_RULES, PreparedQuery, QueryBatch, QueryModel
from .ranking import BatchResult, Explanation, TermContribution, rank_order
from .searcher import CANDIDATE_RULES, Searcher, check_jobs, check_k

__all__ = [
    "BatchResult", "CANDIDATE_RULES", "DEFAULT_THRESHOLDS", "Explanation", "PreparedQuery",
    "QueryBatch", "QueryModel", "Searcher", "TermContribution", "Thresholds",
    "UNKNOWN_TERM_RULES", "check_jobs", "check_k", "kernels_available", "kernels_loaded",
    "load_kernels", "rank_order",
]
