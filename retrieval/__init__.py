"""retrieval: language-model ranking (KL divergence / negative cross-entropy) and
trec_eval-exact evaluation.

>>> from retrieval import Index, Searcher, Dirichlet
>>> index = Index.build([("a", "glaciers move slowly"), ("b", "rivers move fast")])
>>> [r.docid for r in Searcher(index, Dirichlet(mu=1000)).search("glacier", k=5)]
['a']

The names below are imported on first use (PEP 562 ``__getattr__``), so that
``import retrieval`` — and every ``retrieval`` command, whose start-up it is part of —
does not pay for numpy, scipy or the builder before it needs them
(``scripts/bench_startup.py`` measures the whole-process start-up).
"""

from ._version import __version__

#: public name -> the module that defines it
_EXPORTS = {
    "Analyzer": ".analysis",
    "IndexFormatError": ".errors", "InputError": ".errors", "ParameterError": ".errors",
    "RetrievalError": ".errors",
    "IndexBuilder": ".builder",
    "Index": ".index",
    "FolderReader": ".reading",
    "Document": ".records", "Qrel": ".records", "Query": ".records",
    "ScoredDoc": ".records", "SearchResult": ".records",
    "Explanation": ".search", "QueryModel": ".search", "Searcher": ".search",
    "TermContribution": ".search",
    "AbsoluteDiscount": ".smoothing", "Dirichlet": ".smoothing",
    "JelinekMercer": ".smoothing", "SmoothingModel": ".smoothing", "TwoStage": ".smoothing",
    "make_model": ".smoothing",
    "CollapsedResult": ".duplicates", "DuplicateGroups": ".duplicates",
    "collapsed_search": ".duplicates",
    "DEFAULT_FIELD_WEIGHTS": ".fields", "FieldedDocument": ".fields", "FieldWeights": ".fields",
    "FieldSearcher": ".search.fields",
}

__all__ = [
    "__version__", "Analyzer", "Index", "IndexBuilder", "FolderReader", "Searcher",
    "QueryModel", "Explanation", "TermContribution", "SmoothingModel", "Dirichlet",
    "JelinekMercer", "AbsoluteDiscount", "TwoStage", "make_model", "Document", "Query",
    "Qrel", "ScoredDoc", "SearchResult", "RetrievalError", "InputError", "ParameterError",
    "IndexFormatError", "FieldSearcher", "FieldWeights", "FieldedDocument",
    "DEFAULT_FIELD_WEIGHTS", "collapsed_search", "DuplicateGroups", "CollapsedResult",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value   # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
