"""trec_eval-exact evaluation of rankings, vectorised with numpy.

>>> from retrieval.evaluation import Qrels, Run, evaluate
>>> qrels = Qrels.from_dict({"q1": {"d1": 1, "d2": 0, "d3": 2}})
>>> run = Run.from_dict({"q1": {"d1": 3.0, "d2": 2.0, "d4": 1.0}})
>>> result = evaluate(qrels, run, ["AP", "P@2", "nDCG@2"])
>>> round(result.mean["AP"], 4), result.mean["P@2"], round(result.mean["ndcg_cut_2"], 4)
(0.5, 0.5, 0.3801)

Semantics are trec_eval's (9.0.x, as built into pytrec_eval); see :func:`evaluate` for
ranking, relevance and query selection, :mod:`.measures` for each measure's formula,
and :mod:`.significance` for paired tests between runs.
"""

from .data import Qrels, Run
from .evaluator import DEFAULT_MEASURES, Evaluation, evaluate
from .measures import IPREC_LEVELS, MEASURE_HELP, Measure, parse_measure, parse_measures

__all__ = [
    "DEFAULT_MEASURES", "Evaluation", "IPREC_LEVELS", "MEASURE_HELP", "Measure", "Qrels", "Run",
    "evaluate", "parse_measure", "parse_measures",
]
