"""Parameters in the sklearn style, shared by smoothing models and feedback methods.

A subclass lists its parameter names in ``params``; ``__init__`` stores each untouched
under that name. Two objects are equal when they are of the same class with equal
parameters, and they hash alike.
"""

from __future__ import annotations


class Parameters:
    """``get_params``, ``repr``, equality and hashing from the names in ``params``."""

    #: parameter names in display order
    params: tuple[str, ...] = ()

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params() == self.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.get_params().items())))
