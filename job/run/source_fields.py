"""Reading fields out of an event ``_source`` that may spell a path nested, dotted, or both.

Elasticsearch treats ``{"process": {"name": "x"}}``, ``{"process.name": "x"}`` and
``{"process": {"parent.name": "y"}}``-style mixes as the same fields; so do these functions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Scalar = str | int | float | bool


def values_at(source: Mapping[str, Any], path: str) -> list[Scalar]:
    """Every scalar value of the field ``path`` (dotted), in document order, arrays flattened.

    Objects and nulls found at ``path`` are not values (the ``fields`` API would not return them either).
    """
    found: list[Scalar] = []
    _collect(source, path.split("."), found)
    return found


def _collect(node: Any, segments: list[str], found: list[Scalar]) -> None:
    if not segments:
        _add_leaf(node, found)
    elif isinstance(node, list):
        for item in node:
            _collect(item, segments, found)
    elif isinstance(node, Mapping):
        for taken in range(1, len(segments) + 1):
            key = ".".join(segments[:taken])
            if key in node:
                _collect(node[key], segments[taken:], found)


def _add_leaf(value: Any, found: list[Scalar]) -> None:
    if isinstance(value, list):
        for item in value:
            _add_leaf(item, found)
    elif isinstance(value, str | int | float | bool):
        found.append(value)


def leaves(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` for every leaf under ``node``; arrays are leaves, empty objects have none."""
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            yield from leaves(value, path)
        else:
            yield path, value


def subtree_leaves(source: Mapping[str, Any], root: str) -> dict[str, Any]:
    """The leaves of the top-level field ``root`` keyed by their path below it, e.g. ``{"action": ...}`` for
    ``event``. Both ``{"event": {...}}`` and top-level ``"event.action"`` keys count; when one path is spelt
    both ways, the spelling later in the document wins.
    """
    found: dict[str, Any] = {}
    dotted = root + "."
    for key, value in source.items():
        if key == root and isinstance(value, Mapping):
            found.update(leaves(value))
        elif key.startswith(dotted) and len(key) > len(dotted):
            rest = key[len(dotted) :]
            if isinstance(value, Mapping):
                found.update(leaves(value, rest))
            else:
                found[rest] = value
    return found
