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
============  ======================================================================  ====================

An item with ``os_types`` becomes one AND-branch per OS on ``host.os.type`` and one per OS on
``host.os.name.caseless`` (the Endgame/Endpoint spelling), each with all the item's entries.
Items whose ``expire_time`` is before ``now`` are skipped and returned so that the run can report them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from job.rules.model import ExceptionEntry, ExceptionItem

Clause = dict[str, Any]
OS_FIELDS = ("host.os.type", "host.os.name.caseless")


def _negate(clause: Clause, operator: str) -> Clause:
    return {"bool": {"must_not": clause}} if operator == "excluded" else clause


def _should(clauses: list[Clause]) -> Clause:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def entry_clause(entry: ExceptionEntry, parent: str | None = None) -> Clause:
    """The clause of one entry (``parent`` prefixes the field of a nested entry's sub-entries)."""
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
    # The model refuses value lists; this guards callers that build entries by hand.
    raise ValueError(f"exception entry type {entry.type!r} cannot be turned into a query")


def _all_of(entries: Sequence[ExceptionEntry]) -> Clause:
    clauses = [entry_clause(entry) for entry in entries]
    return clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}


def item_clauses(item: ExceptionItem) -> list[Clause]:
    """The OR-branches of one item: one, or two per OS when ``os_types`` is set."""
    if not item.os_types:
        return [_all_of(item.entries)]
    branches = []
    for os_field in OS_FIELDS:
        for os_type in item.os_types:
            condition = ExceptionEntry(field=os_field, type="match", value=os_type)
            branches.append({"bool": {"filter": [entry_clause(e) for e in (condition, *item.entries)]}})
    return branches


def is_expired(item: ExceptionItem, now: datetime) -> bool:
    return item.expire_time is not None and item.expire_time < now


def build_exception_filter(
    items: Iterable[ExceptionItem], *, now: datetime
) -> tuple[dict[str, Any] | None, tuple[ExceptionItem, ...]]:
    """One clause for ``bool.must_not`` (None when no item is active) and the expired items skipped."""
    active: list[ExceptionItem] = []
    expired: list[ExceptionItem] = []
    for item in items:
        (expired if is_expired(item, now) else active).append(item)
    clauses = [clause for item in active for clause in item_clauses(item)]
    return ({"bool": {"should": clauses}} if clauses else None), tuple(expired)
