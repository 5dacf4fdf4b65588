"""retrieval: language-model ranking (KL divergence / negative cross-entropy) and
trec_eval-exact evaluation.

>>> from retrieval import Index, Searcher, Dirichlet
>>> index = Index.build([("a", "glaciers move slowly"), ("b", "rivers move fast")])
>>> [r.docid for r in Searcher(index, Dirichlet(mu=1000)).search("glacier", k=5)]
['a']
"""

from ._version import __version__
from .analysis import Analyzer
from .errors import IndexFormatError, InputError, ParameterError, RetrievalError
from .builder import IndexBuilder
from .duplicates import CollapsedResult, DuplicateGroups, collapsed_search
from .fields import DEFAULT_FIELD_WEIGHTS, FieldedDocument, FieldWeights
from .index import Index
from .reading import FolderReader
from .records import Document, Qrel, Query, ScoredDoc, SearchResult
from .search import Explanation, QueryModel, Searcher, TermContribution
from .search.fields import FieldSearcher
from .smoothing import (AbsoluteDiscount, Dirichlet, JelinekMercer, SmoothingModel,
                        TwoStage, make_model)

__all__ = [
    "__version__", "Analyzer", "Index", "IndexBuilder", "FolderReader", "Searcher",
    "QueryModel", "Explanation", "TermContribution", "SmoothingModel", "Dirichlet",
    "JelinekMercer", "AbsoluteDiscount", "TwoStage", "make_model", "Document", "Query",
    "Qrel", "ScoredDoc", "SearchResult", "RetrievalError", "InputError", "ParameterError",
    "IndexFormatError", "FieldSearcher", "FieldWeights", "FieldedDocument",
    "DEFAULT_FIELD_WEIGHTS", "collapsed_search", "DuplicateGroups", "CollapsedResult",
]
