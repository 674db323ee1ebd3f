"""Copy a document without the values the alert mapping would reject, so an alert can never fail to index.

``index.mapping.ignore_malformed`` already keeps a malformed *scalar* (``"n/a"`` where an ip, a date or a
number is mapped): it stays in ``_source`` and is only left out of the index. Elasticsearch still refuses a
whole document for a wrong *shape*, whatever that setting says:

* an object where a leaf field (keyword, ip, date, ...) is mapped, e.g. ``host.name: {"first": "a"}``,
  or a path that runs through a leaf (``"host.name.first": "a"``);
* a scalar where an object is mapped, e.g. ``host: "web-1"``;
* a scalar where a ``flattened`` field is mapped; any value written to a field alias.

Those values are removed (array elements one by one), and so are numbers that are not finite, mapped or
not (JSON has no infinity). Unmapped fields are otherwise never touched: ``dynamic: false`` keeps them in
``_source`` as they are. Kibana goes further and strips every value that is not
valid for its ECS type; we keep malformed scalars in ``_source`` because they are evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from job.alerts.template import is_mapping_object

MappedPaths = Mapping[str, Mapping[str, Any]]

def mapped_paths(properties: Mapping[str, Any], prefix: str = "") -> dict[str, Mapping[str, Any]]:
    """Every field of a mapping's ``properties`` (objects and leaves) by dotted path."""
    paths: dict[str, Mapping[str, Any]] = {}
    for name, node in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        paths[path] = node
        if "properties" in node:
            paths.update(mapped_paths(node["properties"], path))
    return paths


def conform(document: Mapping[str, Any], paths: MappedPaths) -> dict[str, Any]:
    """A deep copy of ``document`` without the values the mapping (given as ``mapped_paths``) would refuse.

    Iterative, so an event nested as deep as Elasticsearch accepts (1,000 levels) is copied like any
    other. Numbers that are not finite (``1e400`` in an event reads as infinity) are dropped wherever they
    are: JSON cannot carry them, so Elasticsearch would refuse the whole alert.
    """
    root: dict[str, Any] = {}
    tasks: list[_Task] = [(_OBJECT, document, root, "")]
    while tasks:
        kind, source, target, path = tasks.pop()
        if kind == _OBJECT:
            assert isinstance(source, Mapping) and isinstance(target, dict)
            _fill_object(source, target, path, paths, tasks)
        elif kind == _VALUES:
            assert isinstance(source, list) and isinstance(target, list)
            node = paths[path]
            for item in source:
                _put_value(tasks, target, None, item, node, path, paths)
        elif isinstance(source, Mapping):
            assert isinstance(target, dict)
            for key, item in source.items():
                _put_copy(tasks, target, key, item)
        else:
            for item in source:
                _put_copy(tasks, target, None, item)
    return root


# A task fills ``target`` (already placed in the result) from ``source``: a mapped object (``_OBJECT``, by
# the mapping under ``path``), the array of a mapped field (``_VALUES``), or an unmapped value (``_COPY``).
_OBJECT, _VALUES, _COPY = 0, 1, 2
_Task = tuple[int, Any, dict[str, Any] | list[Any], str]


def _put(target: dict[str, Any] | list[Any], key: str | None, value: Any) -> None:
    if key is None:
        assert isinstance(target, list)
        target.append(value)
    else:
        assert isinstance(target, dict)
        target[key] = value


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _fill_object(
    source: Mapping[str, Any], target: dict[str, Any], prefix: str, paths: MappedPaths, tasks: list[_Task]
) -> None:
    for key, value in source.items():
        path = f"{prefix}.{key}" if prefix else key
        mapped = paths.get(path)
        if mapped is None:
            if not ("." in key and _through_leaf(prefix, key, paths)):
                _put_copy(tasks, target, key, value)  # not mapped: kept in _source as it is
            continue
        _put_value(tasks, target, key, value, mapped, path, paths)


def _through_leaf(prefix: str, key: str, paths: MappedPaths) -> bool:
    """Whether the dotted ``key`` under ``prefix`` continues below a mapped leaf field."""
    path = prefix
    for segment in key.split(".")[:-1]:
        path = f"{path}.{segment}" if path else segment
        node = paths.get(path)
        if node is None:
            return False
        if not is_mapping_object(node):
            return True
    return False


def _put_value(
    tasks: list[_Task],
    target: dict[str, Any] | list[Any],
    key: str | None,
    value: Any,
    node: Mapping[str, Any],
    path: str,
    paths: MappedPaths,
) -> None:
    """Place the value of a mapped field, or nothing if the mapping would refuse it."""
    if isinstance(value, list):
        kept: list[Any] = []
        _put(target, key, kept)
        tasks.append((_VALUES, value, kept, path))
        return
    if value is None:
        _put(target, key, None)
        return
    kind = node.get("type")
    if kind == "alias":
        return
    if is_mapping_object(node):
        if isinstance(value, Mapping):
            copied: dict[str, Any] = {}
            _put(target, key, copied)
            tasks.append((_OBJECT, value, copied, path))
        return
    if kind == "flattened":
        if isinstance(value, Mapping):
            _put_copy(tasks, target, key, value)
        return
    if not isinstance(value, Mapping) and not _non_finite(value):
        _put(target, key, value)


def _put_copy(tasks: list[_Task], target: dict[str, Any] | list[Any], key: str | None, value: Any) -> None:
    """Place a copy of an unmapped value (without its non-finite numbers)."""
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        _put(target, key, copied)
        tasks.append((_COPY, value, copied, ""))
    elif isinstance(value, list):
        items: list[Any] = []
        _put(target, key, items)
        tasks.append((_COPY, value, items, ""))
    elif not _non_finite(value):
        _put(target, key, value)
