"""Exception items as one Elasticsearch clause for the search's ``bool.must_not`` (Kibana's semantics).

An event is dropped when it matches ANY active item; an item matches when ALL its entries match.
Clause shapes follow Kibana's exception filter builder (lists plugin, ``build_exception_filter.ts``):

============  ======================================================================  ====================
entry type    clause (operator ``included``)                                          ``excluded``
============  ======================================================================  ====================
match         ``bool{should:[match_phrase{f: v}], minimum_should_match: 1}``           ``bool{must_not: …}``
match_any     ``bool{should:[match_phrase{f: v} per value], minimum_should_match: 1}`` ``bool{must_not: …}``
wildcard      ``bool{filter: wildcard{f: v}}``                                         ``bool{must_not: …}``
exists        ``bool{should:[exists{field: f}], minimum_should_match: 1}``             ``bool{must_not: …}``
nested        ``nested{path: f, query: <sub-entries on "f.<sub>">, score_mode: none}`` (sub-entries' own)
list          ``job.lists.clauses`` (the values of the list, read by the caller)
============  ======================================================================  ====================

An item with ``os_types`` becomes one AND-branch per OS on ``host.os.type`` and one per OS on
``host.os.name.caseless`` (the Endgame/Endpoint spelling), each with all the item's entries.
Items whose ``expire_time`` is before ``now`` are skipped and returned so that the run can report them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from job.lists.clauses import list_clause
from job.rules.parts import ExceptionEntry, ExceptionItem

Clause = dict[str, Any]
# list id -> the values of the list (as read back), for the clauses of ``list`` entries.
ListValues = Mapping[str, Sequence[str]]
OS_FIELDS = ("host.os.type", "host.os.name.caseless")


def _negate(clause: Clause, operator: str) -> Clause:
    return {"bool": {"must_not": clause}} if operator == "excluded" else clause


def _should(clauses: list[Clause]) -> Clause:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def entry_clause(entry: ExceptionEntry, parent: str | None = None, lists: ListValues | None = None) -> Clause:
    """The clause of one entry (``parent`` prefixes the field of a nested entry's sub-entries).

    A ``list`` entry needs the values of its list in ``lists``; ``job.lists.clauses.TooManyRanges`` when
    the list is an ip_range list with too many ranges for a clause.
    """
    field = f"{parent}.{entry.field}" if parent else entry.field
    if entry.type == "match":
        return _negate(_should([{"match_phrase": {field: entry.value}}]), entry.operator)
    if entry.type == "match_any":
        values = (entry.value,) if isinstance(entry.value, str) else tuple(entry.value or ())
        return _negate(_should([{"match_phrase": {field: value}} for value in values]), entry.operator)
    if entry.type == "wildcard":
        return _negate({"bool": {"filter": {"wildcard": {field: entry.value}}}}, entry.operator)
    if entry.type == "exists":
        return _negate(_should([{"exists": {"field": field}}]), entry.operator)
    if entry.type == "nested":
        inner = [entry_clause(sub, parent=entry.field) for sub in entry.entries]
        query = inner[0] if len(inner) == 1 else {"bool": {"filter": inner}}
        return {"nested": {"path": entry.field, "query": query, "score_mode": "none"}}
    if entry.type == "list" and entry.list is not None and lists is not None and entry.list.id in lists:
        return list_clause(entry, field, lists[entry.list.id])
    raise ValueError(f"exception entry of type {entry.type!r} on {field!r} needs the values of its list")


def _all_of(entries: Sequence[ExceptionEntry], lists: ListValues | None) -> Clause:
    clauses = [entry_clause(entry, lists=lists) for entry in entries]
    return clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}


def item_clauses(item: ExceptionItem, lists: ListValues | None = None) -> list[Clause]:
    """The OR-branches of one item: one, or two per OS when ``os_types`` is set."""
    if not item.os_types:
        return [_all_of(item.entries, lists)]
    branches = []
    for os_field in OS_FIELDS:
        for os_type in item.os_types:
            condition = ExceptionEntry(field=os_field, type="match", value=os_type)
            branches.append({"bool": {"filter": [entry_clause(e, lists=lists) for e in (condition, *item.entries)]}})
    return branches


def is_expired(item: ExceptionItem, now: datetime) -> bool:
    return item.expire_time is not None and item.expire_time < now


def split_expired(
    items: Iterable[ExceptionItem], now: datetime
) -> tuple[tuple[ExceptionItem, ...], tuple[ExceptionItem, ...]]:
    """(active items, items whose ``expire_time`` is before ``now``), each in order."""
    active: list[ExceptionItem] = []
    expired: list[ExceptionItem] = []
    for item in items:
        (expired if is_expired(item, now) else active).append(item)
    return tuple(active), tuple(expired)


def should_of(clauses: list[Clause]) -> Clause | None:
    """The one clause for ``bool.must_not``: any item's clause matching excludes the event."""
    return {"bool": {"should": clauses}} if clauses else None


def build_exception_filter(
    items: Iterable[ExceptionItem], *, now: datetime, lists: ListValues | None = None
) -> tuple[dict[str, Any] | None, tuple[ExceptionItem, ...]]:
    """One clause for ``bool.must_not`` (None when no item is active) and the expired items skipped.

    Items with ``list`` entries need the values of their lists in ``lists``; ``job.lists.plan`` decides
    which such items become clauses and reads the lists.
    """
    active, expired = split_expired(items, now)
    return should_of([clause for item in active for clause in item_clauses(item, lists)]), expired
