"""Copy a document without the values the alert mapping would reject, so an alert can never fail to index.

``index.mapping.ignore_malformed`` already keeps a malformed *scalar* (``"n/a"`` where an ip, a date or a
number is mapped): it stays in ``_source`` and is only left out of the index. Elasticsearch still refuses a
whole document for a wrong *shape*, whatever that setting says:

* an object where a leaf field (keyword, ip, date, ...) is mapped, e.g. ``host.name: {"first": "a"}``,
  or a path that runs through a leaf (``"host.name.first": "a"``);
* a scalar where an object is mapped, e.g. ``host: "web-1"``;
* a scalar where a ``flattened`` field is mapped; any value written to a field alias.

Those values are removed (array elements one by one). Unmapped fields are never touched: ``dynamic:
false`` keeps them in ``_source`` as they are. Kibana goes further and strips every value that is not
valid for its ECS type; we keep malformed scalars in ``_source`` because they are evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from job.run.alert_template import is_mapping_object

MappedPaths = Mapping[str, Mapping[str, Any]]

_DROP: Final = object()


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
    """A deep copy of ``document`` without the values the mapping (given as ``mapped_paths``) would refuse."""
    return _object(document, "", paths)


def _object(node: Mapping[str, Any], prefix: str, paths: MappedPaths) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        mapped = paths.get(path)
        if mapped is None:
            if not ("." in key and _through_leaf(prefix, key, paths)):
                kept[key] = _copy(value)  # not mapped: kept in _source as it is
            continue
        result = _value(value, mapped, path, paths)
        if result is not _DROP:
            kept[key] = result
    return kept


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


def _value(value: Any, node: Mapping[str, Any], path: str, paths: MappedPaths) -> Any:
    if isinstance(value, list):
        return [item for item in (_value(v, node, path, paths) for v in value) if item is not _DROP]
    if value is None:
        return None
    kind = node.get("type")
    if kind == "alias":
        return _DROP
    if is_mapping_object(node):
        return _object(value, path, paths) if isinstance(value, Mapping) else _DROP
    if kind == "flattened":
        return _copy(value) if isinstance(value, Mapping) else _DROP
    return _DROP if isinstance(value, Mapping) else value


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
