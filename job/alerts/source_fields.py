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
    Iterative: arrays nested a thousand deep cost no recursion.
    """
    segments = path.split(".")
    found: list[Scalar] = []
    pending: list[tuple[Any, int]] = [(source, 0)]  # (node, how many segments of the path it is below)
    while pending:
        node, depth = pending.pop()
        if isinstance(node, list):
            pending.extend((item, depth) for item in reversed(node))
        elif depth == len(segments):
            if isinstance(node, str | int | float | bool):
                found.append(node)
        elif isinstance(node, Mapping):
            children = []
            for taken in range(depth + 1, len(segments) + 1):
                key = ".".join(segments[depth:taken])
                if key in node:
                    children.append((node[key], taken))
            pending.extend(reversed(children))
    return found


def leaves(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` for every leaf under ``node``; arrays are leaves, empty objects have none.

    Iterative, in document order.
    """
    stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [(prefix, iter(node.items()))]
    while stack:
        base, items = stack[-1]
        for key, value in items:
            path = f"{base}.{key}" if base else key
            if isinstance(value, Mapping):
                stack.append((path, iter(value.items())))
                break
            yield path, value
        else:
            stack.pop()


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
