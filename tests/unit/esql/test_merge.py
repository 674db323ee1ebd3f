"""A row's columns merged into its event's _source as flat dotted keys (Kibana's mergeEsqlResultInSource)."""

from __future__ import annotations

from typing import Any

import pytest

from job.ruletypes.esql.merge import js_truthy, merge_row, robust_get


@pytest.mark.parametrize(
    ("document", "key", "value"),
    [
        ({"agent": {"name": "a"}}, "agent.name", "a"),
        ({"agent.name": "a"}, "agent.name", "a"),
        ({"a": {"b.c": 1}}, "a.b.c", 1),
        ({"a.b": {"c": 1}}, "a.b.c", 1),
        ({"a": "text"}, "a.b", None),  # a value that is not an object ends the search
        ({"a": [{"b": 1}]}, "a.b", None),  # arrays are not walked into
        ({}, "a", None),
    ],
)
def test_robust_get(document: dict[str, Any], key: str, value: Any) -> None:
    assert robust_get(document, key) == value


@pytest.mark.parametrize(
    ("source", "columns", "merged"),
    [
        # Kibana's FTR case: the nested value goes, the dotted key comes, the siblings stay
        (
            {"agent": {"name": "test-1", "version": "1", "type": "auditbeat"}},
            {"agent.name": "test-1"},
            {"agent": {"version": "1", "type": "auditbeat"}, "agent.name": "test-1"},
        ),
        ({"agent": {"name": "x"}}, {"agent.name": "y"}, {"agent.name": "y"}),  # an emptied parent is removed
        ({"a.b": 1, "c": 2}, {"a.b": 5}, {"c": 2, "a.b": 5}),  # removed, then set again: last, as in JavaScript
        ({"a.b": 0, "c": 2}, {"a.b": 5}, {"a.b": 5, "c": 2}),  # not removed (falsy): keeps its place
        ({"a": {"b": 0}}, {"a.b": 5}, {"a": {"b": 0}, "a.b": 5}),  # a falsy old value is not removed
        ({"a": {"b": ""}}, {"a.b": 5}, {"a": {"b": ""}, "a.b": 5}),
        (None, {"c": 3, "host.name": "h"}, {"c": 3, "host.name": "h"}),  # no event: the columns alone
    ],
)
def test_merge_row(source: dict[str, Any] | None, columns: dict[str, Any], merged: dict[str, Any]) -> None:
    result = merge_row(source, columns)
    assert result == merged
    assert list(result) == list(merged)


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        (float("nan"), False),
        ("", False),
        (True, True),
        (1, True),
        ("0", True),
        ([], True),
        ({}, True),
    ],
)
def test_js_truthy(value: Any, truthy: bool) -> None:
    assert js_truthy(value) is truthy


def test_the_event_is_never_changed() -> None:
    event = {"agent": {"name": "a", "id": {"x": 1}}, "b": 1}
    merge_row(event, {"agent.name": "z", "agent.id.x": 2, "b": 3})
    assert event == {"agent": {"name": "a", "id": {"x": 1}}, "b": 1}
