"""Where :class:`IndexBuilder` used to live: it is :class:`retrieval.index.builder.IndexBuilder`
(also ``from retrieval import IndexBuilder``). Kept so existing imports work."""

from .index.builder import IndexBuilder

__all__ = ["IndexBuilder"]
