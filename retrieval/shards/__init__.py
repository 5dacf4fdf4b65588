"""Sharded indexes: ordinary indexes scored with the global collection statistics, so a
merged top k equals the single index's ranking (:mod:`~retrieval.shards.stats` the
statistics and shard views, :mod:`~retrieval.shards.store` the folder and its atomic
publication, :mod:`~retrieval.shards.search` the exact merge, and
:mod:`~retrieval.shards.distributed` the same search on Dask, the ``distributed`` extra).
"""

from .search import ShardedResult, ShardedSearcher, merge_top_k, results_lists
from .stats import CollectionStats, merge_statistics, shard_view, subset_index
from .store import SHARDS_FILE, ShardedIndex, is_sharded, shard_of

__all__ = ["CollectionStats", "SHARDS_FILE", "ShardedIndex", "ShardedResult",
           "ShardedSearcher", "is_sharded", "merge_statistics", "merge_top_k",
           "results_lists", "shard_of", "shard_view", "subset_index"]
