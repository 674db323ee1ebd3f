"""Large value lists, applied to each page of hits after the search (Kibana's large-list filter), pure.

For each item to apply this way (all its entries are ``list`` entries), the event values of each entry's
field are looked up in the entry's list, and then an event is **kept** (alerted on) when any entry of the
item says keep:

* ``included`` ("is in list"): keep when the field is missing or none of its values is in the list;
* ``excluded`` ("is not in list"): keep when the field is present and one of its values is in the list.

So the entries of one item are ANDed for the exclusion, as in a query clause, and an event is dropped
when any item drops it. Like Kibana, the item's ``os_types`` are not looked at on this path.

Differences from Kibana, on purpose:

* Event values come from the hit's ``_source`` (nested or dotted, arrays flattened), as everywhere in this
  job; Kibana reads the ``fields`` API.
* A value that cannot be of the list's type (``"n/a"`` for an ip list, ``"1.5"`` for a long list) is not in
  the list, instead of making Elasticsearch refuse the lookup and fail the run.
* The lookup is one ``filters`` aggregation per thousand distinct values (a bucket per value), so it has no
  limit on how many list items match; Kibana fetches at most 10,000 matching items per page.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from job.alerts.source_fields import Scalar, values_at
from job.alerts.timestamps import normalize_timestamp
from job.lists.plan import list_entries
from job.rules.parts import ExceptionItem

Hit = Mapping[str, Any]
H = TypeVar("H", bound=Hit)
# (list id, list type as the entry names it) -> keys (``value_key``) of the looked-up values found in it.
Matches = Mapping[tuple[str, str], set[str]]

LOOKUP_CHUNK = 1_000
_LONG = re.compile(r"[+-]?[0-9]+")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def lookup_value(list_type: str, value: Scalar) -> Scalar | None:
    """``value`` in the form to look up in a list of ``list_type``, or None when no item can hold it."""
    if list_type in ("ip", "ip_range"):
        if not isinstance(value, str) or "%" in value:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return None
        return value
    if list_type == "long":
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and _LONG.fullmatch(value.strip()):
            number = int(value.strip())
        return number if number is not None and _LONG_MIN <= number <= _LONG_MAX else None
    if list_type == "date":
        return normalize_timestamp(value)
    return value  # keyword, text: Elasticsearch compares any scalar as text


def value_key(value: Scalar) -> str:
    """A key that tells values of different JSON types apart (``1``, ``1.0``, ``true`` and ``"1"``)."""
    return json.dumps(value)


@dataclass(frozen=True)
class Lookup:
    """The distinct values of one page to look up in one list."""

    list_id: str
    list_type: str
    values: tuple[Scalar, ...]


def _event_values(hit: Hit, field: str, list_type: str) -> tuple[list[Scalar], list[Scalar]]:
    """(the field's values in the event, those that can be looked up in a list of ``list_type``)."""
    found = values_at(hit.get("_source") or {}, field)
    usable = [v for v in (lookup_value(list_type, value) for value in found) if v is not None]
    return found, usable


def lookups(items: Iterable[ExceptionItem], hits: Sequence[Hit]) -> list[Lookup]:
    """What to look up for one page: per list (and type), the distinct usable values of its entries' fields."""
    wanted: dict[tuple[str, str], dict[str, Scalar]] = {}
    for item in items:
        for entry in list_entries(item):
            assert entry.list is not None
            values = wanted.setdefault((entry.list.id, entry.list.type), {})
            for hit in hits:
                for value in _event_values(hit, entry.field, entry.list.type)[1]:
                    values.setdefault(value_key(value), value)
    return [Lookup(list_id, kind, tuple(values.values())) for (list_id, kind), values in wanted.items()]


def _value_clause(list_type: str, value: Scalar) -> dict[str, Any]:
    if list_type == "text":  # every token of the event value in one item, in any order
        return {"match": {"text": {"query": value, "operator": "and"}}}
    return {"term": {list_type: value}}  # for ip_range: the ranges that contain the IP


def lookup_requests(lookup: Lookup) -> Iterator[tuple[tuple[Scalar, ...], dict[str, Any]]]:
    """(values, search body) per chunk: a ``filters`` aggregation with one bucket per value, keyed by position."""
    for start in range(0, len(lookup.values), LOOKUP_CHUNK):
        chunk = lookup.values[start : start + LOOKUP_CHUNK]
        filters = {str(n): _value_clause(lookup.list_type, value) for n, value in enumerate(chunk)}
        body = {
            "size": 0,
            "query": {"bool": {"filter": [{"term": {"list_id": lookup.list_id}}]}},
            "aggs": {"values": {"filters": {"filters": filters}}},
        }
        yield chunk, body


def matched_values(response: Mapping[str, Any], values: Sequence[Scalar]) -> set[str]:
    """The keys of the values whose bucket found at least one list item."""
    buckets = response.get("aggregations", {}).get("values", {}).get("buckets", {})
    return {value_key(values[int(key)]) for key, bucket in buckets.items() if bucket.get("doc_count", 0) > 0}


def _item_keeps(item: ExceptionItem, hit: Hit, matches: Matches) -> bool:
    for entry in list_entries(item):
        assert entry.list is not None
        found, usable = _event_values(hit, entry.field, entry.list.type)
        listed = matches.get((entry.list.id, entry.list.type), set())
        in_list = any(value_key(value) in listed for value in usable)
        if entry.operator == "included" and (not found or not in_list):
            return True
        if entry.operator == "excluded" and found and in_list:
            return True
    return False


def filter_hits(items: Sequence[ExceptionItem], hits: Sequence[H], matches: Matches) -> list[H]:
    """The hits no item drops, in order."""
    return [hit for hit in hits if all(_item_keeps(item, hit, matches) for item in items)]
