"""A row's columns merged into its event's ``_source``, as Kibana's ``mergeEsqlResultInSource`` does (pure).

Each column lands as one flat, dotted top-level key (``source["agent.name"] = "a"``), after any value
already at that path in the event is removed, however the path is spelled there (nested, dotted, or a mix;
Kibana's ``robustGet``/``robustUnset``). Kibana removes the old value only when it is truthy in
JavaScript's sense, so an old ``0``, ``""``, ``false`` or null stays beside the new key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def js_truthy(value: Any) -> bool:
    """JavaScript's truthiness of a JSON value: only ``null``, ``false``, ``0``, NaN and ``""`` are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0  # NaN != NaN
    return not (isinstance(value, str) and value == "")


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def robust_get(document: Mapping[str, Any], key: str) -> Any:
    """The value at ``key`` (dotted) in ``document``, whatever mix of nesting and dots spells it; None if absent.

    The whole key first; else the shortest prefix that holds a value decides: an object is searched for the
    rest of the key, anything else means absent (arrays are not walked into)."""
    if document.get(key) is not None:
        return document[key]
    parts = key.split(".")
    for cut in range(1, len(parts)):
        value = document.get(".".join(parts[:cut]))
        if value is not None:
            return robust_get(value, ".".join(parts[cut:])) if _is_object(value) else None
    return None


def robust_unset(document: dict[str, Any], key: str) -> None:
    """Remove the value at ``key`` from ``document`` (changed in place); an object emptied by that is removed
    from its parent too. The nested objects on the way are replaced by changed copies, never changed, so an
    event shared by several rows (MV_EXPAND) stays as it was without being copied whole."""
    parts = key.split(".")
    for cut in range(1, len(parts)):
        prefix = ".".join(parts[:cut])
        value = document.get(prefix)
        if value is not None and _is_object(value):
            if value:
                inner = dict(value)
                robust_unset(inner, ".".join(parts[cut:]))
                if inner:
                    document[prefix] = inner
                else:
                    del document[prefix]
            return
    document.pop(key, None)


def merge_row(source: Mapping[str, Any] | None, columns: Mapping[str, Any]) -> dict[str, Any]:
    """A new ``_source``: ``source`` (not changed) with each column set as a flat dotted key."""
    document = {} if source is None else dict(source)
    for name, value in columns.items():
        if js_truthy(robust_get(document, name)):
            robust_unset(document, name)
        document[name] = value
    return document
