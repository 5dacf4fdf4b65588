"""Errors a user can cause and fix.

Every exception the library raises on purpose derives from :class:`RetrievalError`.
Its ``str()`` is one line that says what is wrong and what to do; the CLI prints
that line to stderr and exits with status 2. Anything else escaping is a bug.
"""

from __future__ import annotations

import os


class RetrievalError(Exception):
    """Base class for errors caused by input, parameters or the environment."""


class InputError(RetrievalError, ValueError):
    """Malformed or unusable input data, optionally located at ``path:line``.

    >>> str(InputError("expected 4 columns, found 3", path="qrels.txt", line=7))
    'qrels.txt:7: expected 4 columns, found 3'
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        return where + self.message


class ParameterError(RetrievalError, ValueError):
    """A parameter value that is out of range or of the wrong kind."""


class IndexFormatError(RetrievalError):
    """A path that is not a readable index of this format version."""


def check_number(name: str, value, *, low=None, high=None, low_open=False,
                 high_open=False, integer=False, hint: str = "") -> float:
    """Validate a numeric parameter and return it; raise ParameterError otherwise.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open`` is set.
    The message names the parameter, the value and the allowed range.
    """
    if isinstance(value, bool) or (not isinstance(value, (int, float))
                                   and not hasattr(value, "__float__")):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    if integer and number != int(number):
        raise ParameterError(f"{name} must be a whole number, got {value!r}")
    bad = (
        (low is not None and (number < low or (low_open and number == low)))
        or (high is not None and (number > high or (high_open and number == high)))
    )
    if bad:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"  # infinities are refused above
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        msg = f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}"
        if hint:
            msg += f"; {hint}"
        raise ParameterError(msg)
    return int(number) if integer else number


def check_floor(name: str, value: float, floor: float, use: str) -> float:
    """Refuse a positive ``value`` below ``floor`` where the arithmetic breaks down.

    Called after :func:`check_number` has accepted the range; the message says why the
    value is refused and what to use instead (``use``).
    """
    if float(value) < floor:
        raise ParameterError(f"{name} = {value!r} is below {floor:g}, where the scores "
                             f"overflow or drown in rounding error; {use}")
    return value
