"""Test collections: documents, queries and relevance judgments as immutable records.

>>> from retrieval.collections import load_collection
>>> cran = load_collection("cranfield")            # doctest: +SKIP
>>> cran.stats()                                  # doctest: +SKIP
{'documents': 1400, 'queries': 225, 'judged_queries': 225, 'judgments': 1837, ...}

See :func:`load_collection` for names, formats and options, and each collection's
``description`` for the fields indexed and the decisions taken while reading it.
"""

from .base import Collection, CollectionNotFoundError
from .beir import load_beir
from .generic import load_trec_folder
from .irds import IRDS_PREFIX, load_irds, read_irds_qrels
from .nfcorpus import load_nfcorpus
from .registry import (COLLECTION_NAMES, FORMATS, collection_folder, load_collection)
from .sample import load_sample
from .smart import (CRANFIELD_GRADES, SmartRecord, load_cacm, load_cisi, load_cranfield,
                    load_med, parse_smart)

__all__ = [
    "COLLECTION_NAMES", "CRANFIELD_GRADES", "FORMATS", "Collection",
    "CollectionNotFoundError", "IRDS_PREFIX", "SmartRecord", "load_irds", "read_irds_qrels", "collection_folder", "load_beir",
    "load_cacm", "load_cisi", "load_collection", "load_cranfield", "load_med",
    "load_nfcorpus", "load_sample", "load_trec_folder", "parse_smart",
]
