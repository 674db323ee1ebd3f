"""conform() removes exactly the values Elasticsearch would refuse under the alert mapping."""

from __future__ import annotations

from typing import Any

import pytest

from job.alerts.conform import conform, mapped_paths

PROPERTIES: dict[str, Any] = {
    "host": {"properties": {"name": {"type": "keyword"}, "ip": {"type": "ip"}, "os": {"properties": {}}}},
    "n": {"type": "long"},
    "params": {"type": "flattened"},
    "old": {"properties": {"status": {"type": "alias", "path": "host.name"}}},
    "obj": {"type": "object"},
}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # Kept: well-shaped values, malformed scalars (ignore_malformed), unmapped anything, nulls.
        ({"host": {"name": "a", "ip": "not-an-ip"}}, {"host": {"name": "a", "ip": "not-an-ip"}}),
        ({"host.name": "a", "n": "many"}, {"host.name": "a", "n": "many"}),
        (
            {"unmapped": {"x": [1, {"y": 2}]}, "host": {"other": {"z": 1}}},
            {"unmapped": {"x": [1, {"y": 2}]}, "host": {"other": {"z": 1}}},
        ),
        ({"host": None, "n": None, "host.name": None}, {"host": None, "n": None, "host.name": None}),
        ({"params": {"a": {"b": [1, "x"]}}, "obj": {"any": 1}}, {"params": {"a": {"b": [1, "x"]}}, "obj": {"any": 1}}),
        ({"host": [{"name": "a"}, {"name": "b"}]}, {"host": [{"name": "a"}, {"name": "b"}]}),
        ({"host": {"name": [["a"], "b"]}}, {"host": {"name": [["a"], "b"]}}),
        # Dropped: an object where a leaf is mapped, nested or dotted, empty or not.
        ({"host": {"name": {"first": "a"}, "ip": "1.2.3.4"}}, {"host": {"ip": "1.2.3.4"}}),
        ({"host.name": {"first": "a"}}, {}),
        ({"host": {"name": {}}}, {"host": {}}),
        ({"n": {"value": 1}}, {}),
        # Dropped: a path running through a leaf.
        ({"host.name.first": "a", "host": {"name.first": "b", "ip.v4": "1.2.3.4"}}, {"host": {}}),
        # Dropped: a scalar where an object is mapped.
        ({"host": "web-1"}, {}),
        ({"host": {"os": "windows"}}, {"host": {}}),
        ({"obj": 3}, {}),
        # Arrays lose only the bad elements.
        ({"host": [{"name": "a"}, "b"]}, {"host": [{"name": "a"}]}),
        ({"host": {"name": ["a", {"b": 1}, "c"]}}, {"host": {"name": ["a", "c"]}}),
        # flattened wants an object; aliases cannot be written.
        ({"params": "x"}, {}),
        ({"old": {"status": "open"}, "old.status": "x"}, {"old": {}}),
    ],
)
def test_conform(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert conform(document, mapped_paths(PROPERTIES)) == expected


def test_conform_copies_and_does_not_modify_its_input() -> None:
    document: dict[str, Any] = {"host": {"name": {"first": "a"}}, "unmapped": {"list": [{"a": 1}]}}
    copied = conform(document, mapped_paths(PROPERTIES))
    assert document == {"host": {"name": {"first": "a"}}, "unmapped": {"list": [{"a": 1}]}}
    copied["unmapped"]["list"][0]["a"] = 2
    assert document["unmapped"]["list"][0]["a"] == 1


def test_mapped_paths() -> None:
    paths = mapped_paths(PROPERTIES)
    assert paths["host"] is PROPERTIES["host"]
    assert paths["host.os"] == {"properties": {}}
    assert paths["old.status"]["type"] == "alias"
    assert "host.name.first" not in paths
