"""Typed values out of events anyone may have written: the readers' one decoding boundary.

An event line can be well-formed JSON and still carry null, "abc", a list or a 400-digit number
where a number belongs (another writer, an old version, a hand edit). Readers take every field
through these functions, which return a value of the promised type or None, so nothing later
has to guard its arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

MAX_COUNT = 2 ** 53  # steps, rows, parameters: beyond this a float64 no longer holds them exactly
MAX_MAGNITUDE = 1e300  # a reading drawn on a chart: any two such values still have a finite span
MAX_TIMESTAMP = 1e11  # unix seconds (year 5138): anything later is not a time an event was written


def measure(value: Any) -> float | None:
    """A number as float, NaN and inf included (the writer spells those "nan"/"inf"); None when
    the value is not a number (null, text, bool, list) or too large for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def finite(value: Any) -> float | None:
    """A finite number, else None."""
    number = measure(value)
    return number if number is not None and math.isfinite(number) else None


def count(value: Any) -> int | None:
    """A whole, non-negative number (a step, a total, a row count) that fits a float exactly."""
    number = finite(value)
    if number is None or number < 0 or number > MAX_COUNT or number != int(number):
        return None
    return int(number)


def timestamp(value: Any) -> float | None:
    """Unix seconds of a plausible event time, else None."""
    number = finite(value)
    return number if number is not None and 0 < number < MAX_TIMESTAMP else None


def text(value: Any) -> str | None:
    """A string field; other JSON values (numbers, lists) shown as their JSON-ish text."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def text_lines(value: Any) -> list[str] | None:
    """A traceback: a list of lines, or one string split into lines."""
    if isinstance(value, str):
        return value.splitlines()
    if isinstance(value, list):
        return [line if isinstance(line, str) else str(line) for line in value]
    return None
