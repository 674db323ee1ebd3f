"""JavaScript's ways of printing and ordering JSON scalars, where Kibana's ids depend on them (pure).

* ``String(x)``: a string as it is, ``true``/``false``, ``null``, numbers as JavaScript prints them.
* ``Array.prototype.sort()`` without a comparator (threshold alert ids): the elements' ``String()`` compared
  by UTF-16 code units, so ``[10, 9]`` stays ``[10, 9]``.
* lodash ``sortBy(values)`` (suppression terms, a threshold group's instance id): lodash's
  ``compareAscending``, i.e. JavaScript's ``<`` and ``>`` (numbers by value, two strings by code units, a
  string and a number as numbers), ``null`` last, incomparable values (``NaN``) kept in place; stable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cmp_to_key
from typing import Any

from job.alerts.objecthash import js_number
from job.alerts.overrides import js_number as number_of_text


def js_string(value: Any) -> str:
    """JavaScript's ``String(value)`` for a JSON scalar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    return str(value)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def js_default_sort(values: Iterable[Any]) -> list[Any]:
    """``values.sort()``: by ``String(value)`` in UTF-16 code-unit order, stable."""
    return sorted(values, key=lambda value: _utf16(js_string(value)))


def _to_number(value: Any) -> float:
    """JavaScript's ``ToNumber`` of a JSON scalar (``null`` → 0, ``true`` → 1, a string as ``Number()`` reads it)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return number_of_text(str(value))


def _less(left: Any, right: Any) -> bool:
    """JavaScript's ``left < right``."""
    if isinstance(left, str) and isinstance(right, str):
        return _utf16(left) < _utf16(right)
    a, b = _to_number(left), _to_number(right)
    return not (math.isnan(a) or math.isnan(b)) and a < b


def _reflexive(value: Any) -> bool:
    return not (isinstance(value, float) and math.isnan(value))


def _strictly_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


def _compare_ascending(left: Any, right: Any) -> int:
    """lodash's ``compareAscending`` for JSON scalars (no symbols or ``undefined`` occur in them)."""
    if _strictly_equal(left, right):
        return 0
    left_null, right_null = left is None, right is None
    if (not right_null and _less(right, left)) or (left_null and _reflexive(right)) or not _reflexive(left):
        return 1
    if (not left_null and _less(left, right)) or (right_null and _reflexive(left)) or not _reflexive(right):
        return -1
    return 0


def lodash_sort_by(values: Iterable[Any]) -> list[Any]:
    """lodash ``sortBy(values)`` with the identity iteratee."""
    return sorted(values, key=cmp_to_key(_compare_ascending))
