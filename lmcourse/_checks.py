"""Argument checks shared across the package, each raising one clear message.

Private to ``lmcourse`` (imports nothing else from it). The messages are part of the tests:
keep them word for word.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["is_int", "check_str", "check_positive_int", "check_int", "check_float"]


def is_int(value: Any) -> bool:
    """True for a real ``int`` (``bool`` is excluded: ``True`` is not a size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_str(text: Any, who: str) -> str:
    """`text` itself, or a ``TypeError`` naming `who` (the function that needs a str) when it is not one.

    >>> check_str(b"hi", "encode")
    Traceback (most recent call last):
    ...
    TypeError: encode expects a str, got bytes: b'hi'
    """
    if not isinstance(text, str):
        raise TypeError(f"{who} expects a str, got {type(text).__name__}: {text!r:.60}")
    return text


def check_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError("<name> must be a positive int, got ...")`` unless `value` is an int >= 1.

    >>> check_positive_int("num_heads", 0)
    Traceback (most recent call last):
    ...
    ValueError: num_heads must be a positive int, got 0
    """
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    """Raise ``ValueError("<name> must be an int >= <minimum>...")`` unless `value` is such an int
    (or None, where `allow_none` says None means "off")."""
    if value is None and allow_none:
        return
    if not is_int(value) or value < minimum:
        extra = " or None (off)" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")


def check_float(name: str, value: Any, low: float, high: float = math.inf,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ValueError`` unless `value` is a finite number in the interval from `low` to
    `high` (each end closed unless its ``*_open`` flag is set)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}")
