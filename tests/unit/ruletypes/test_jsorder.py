"""JavaScript's String(), default sort and lodash sortBy, as Kibana's ids use them."""

from __future__ import annotations

from typing import Any

import pytest

from job.alerts.jsorder import js_default_sort, js_string, lodash_sort_by


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("h1", "h1"),
        (10, "10"),
        (2.0, "2"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (1704067200000, "1704067200000"),
    ],
)
def test_js_string(value: Any, text: str) -> None:
    assert js_string(value) == text


@pytest.mark.parametrize(
    ("values", "ordered"),
    [
        (["h1", "bob"], ["bob", "h1"]),
        ([10, 9], [10, 9]),  # compared as text: "10" < "9"
        ([9, 10, 100], [10, 100, 9]),
        (["b", "B", "a"], ["B", "a", "b"]),
        ([True, "s", 5], [5, "s", True]),
        (["\U0001f600", "\uffff"], ["\U0001f600", "\uffff"]),  # UTF-16: a surrogate pair sorts before U+FFFF
        ([], []),
    ],
)
def test_js_default_sort(values: list[Any], ordered: list[Any]) -> None:
    assert js_default_sort(values) == ordered


@pytest.mark.parametrize(
    ("values", "ordered"),
    [
        ([10, 9, 100], [9, 10, 100]),  # numbers by value
        (["b", "a", "c"], ["a", "b", "c"]),
        (["10", "9"], ["10", "9"]),  # two strings by code units
        ([None, "a", None, "b"], ["a", "b", None, None]),
        ([2.5, 1, True], [1, True, 2.5]),  # 1 and true compare equal: kept in their order
        (["x", 1], ["x", 1]),  # NaN compares to nothing: kept in place
    ],
)
def test_lodash_sort_by(values: list[Any], ordered: list[Any]) -> None:
    assert lodash_sort_by(values) == ordered
