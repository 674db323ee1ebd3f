"""Field access that treats nested objects and dotted keys alike, as Elasticsearch does."""

from __future__ import annotations

from typing import Any

import pytest

from job.alerts.source_fields import leaves, subtree_leaves, values_at


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ({"process": {"name": "a"}}, "process.name", ["a"]),
        ({"process.name": "a"}, "process.name", ["a"]),
        ({"process": {"parent.name": "p"}}, "process.parent.name", ["p"]),
        ({"process.parent": {"name": "p"}}, "process.parent.name", ["p"]),
        ({"process": {"name": "a"}, "process.name": "b"}, "process.name", ["a", "b"]),
        ({"process": [{"name": "a"}, {"name": "b"}]}, "process.name", ["a", "b"]),
        ({"process": {"name": ["a", ["b", None]]}}, "process.name", ["a", "b"]),
        ({"destination": {"port": 443}}, "destination.port", [443]),
        ({"process": {"name": {"first": "a"}}}, "process.name", []),
        ({"process": {"name": None}}, "process.name", []),
        ({"process": "a"}, "process.name", []),
        ({}, "process.name", []),
        ({"@timestamp": "t"}, "@timestamp", ["t"]),
    ],
)
def test_values_at(source: dict[str, Any], path: str, expected: list[Any]) -> None:
    assert values_at(source, path) == expected


def test_leaves() -> None:
    node = {"a": {"b": 1, "c": {"d": [1, 2]}, "e": {}}, "f.g": None}
    assert list(leaves(node)) == [("a.b", 1), ("a.c.d", [1, 2]), ("f.g", None)]
    assert list(leaves({"x": 1}, "p")) == [("p.x", 1)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"event": {"action": "a", "category": ["c"]}}, {"action": "a", "category": ["c"]}),
        ({"event.action": "a", "event.outcome": "success"}, {"action": "a", "outcome": "success"}),
        ({"event": {"action": "a"}, "event.kind": "k"}, {"action": "a", "kind": "k"}),
        ({"event.x": {"y": 1, "z.w": 2}}, {"x.y": 1, "x.z.w": 2}),
        ({"event": {"action": "nested"}, "event.action": "dotted"}, {"action": "dotted"}),
        ({"event.action": "dotted", "event": {"action": "nested"}}, {"action": "nested"}),
        ({"events": {"a": 1}, "eventx.a": 1, "event": "scalar", "event.": 1}, {}),
        ({}, {}),
    ],
)
def test_subtree_leaves(source: dict[str, Any], expected: dict[str, Any]) -> None:
    assert subtree_leaves(source, "event") == expected
