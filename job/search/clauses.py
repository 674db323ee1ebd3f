"""The search of one rule run: rule query + time range + filters, minus exceptions (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from job.rules.model import Rule
from job.window import Window, isoformat

DEFAULT_TIMESTAMP = "@timestamp"
TIMESTAMP_FORMAT = "strict_date_optional_time"
# Sort values are nanoseconds since the epoch whatever the field's type (date or date_nanos), so
# indices of both types page together; an event without the field sorts last with Long.MAX_VALUE.
SORT_MISSING = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TimestampFields:
    primary: str
    fallback: str | None  # ``@timestamp`` when events lacking the override field still count


def timestamp_fields(rule: Rule) -> TimestampFields:
    """Kibana's rule: the override if set, with ``@timestamp`` as fallback unless disabled."""
    primary = rule.timestamp_override or DEFAULT_TIMESTAMP
    fallback = (
        DEFAULT_TIMESTAMP
        if rule.timestamp_override
        and rule.timestamp_override != DEFAULT_TIMESTAMP
        and not rule.timestamp_override_fallback_disabled
        else None
    )
    return TimestampFields(primary, fallback)


def _range(field: str, bounds: tuple[str, str]) -> dict[str, Any]:
    return {"range": {field: {"gte": bounds[0], "lte": bounds[1], "format": TIMESTAMP_FORMAT}}}


def range_clause(fields: TimestampFields, window: Window) -> dict[str, Any]:
    """The window on the primary field; with a fallback, also on ``@timestamp`` where the primary is missing."""
    return bounds_clause(fields, (isoformat(window.start), isoformat(window.end)))


def bounds_clause(fields: TimestampFields, bounds: tuple[str, str]) -> dict[str, Any]:
    """:func:`range_clause` between two texts Elasticsearch reads: ISO times, or date math (``now-6m``) that
    ``translate`` prints and Elasticsearch resolves when the request is sent."""
    primary = _range(fields.primary, bounds)
    if fields.fallback is None:
        return primary
    return {
        "bool": {
            "should": [
                primary,
                {
                    "bool": {
                        "filter": [_range(fields.fallback, bounds)],
                        "must_not": [{"exists": {"field": fields.primary}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def filter_clauses(rule: Rule) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Kibana filter objects of the rule → (positive clauses, negated clauses). Disabled filters are skipped."""
    positive: list[dict[str, Any]] = []
    negative: list[dict[str, Any]] = []
    for item in rule.filters:
        meta = item.get("meta", {})
        if meta.get("disabled"):
            continue
        clause = item.get("query") or {key: value for key, value in item.items() if key not in ("meta", "$state")}
        (negative if meta.get("negate") else positive).append(clause)
    return positive, negative


def own_alerts_clause(alerts_alias: str, rule_id: str) -> dict[str, Any]:
    """Matches the alerts this rule wrote, and only inside the alert indices.

    Kibana drops hits that have the rule among their ancestors, so a rule whose index patterns also
    cover the alert index does not alert on its own alerts. We never trust ancestry read from a
    document; limiting the clause to the alert indices means no event elsewhere can use it to hide.
    """
    return {
        "bool": {
            "filter": [
                {"wildcard": {"_index": {"value": f"{alerts_alias}-*"}}},
                {"term": {"kibana.alert.rule.rule_id": rule_id}},
            ]
        }
    }


def build_query(
    rule: Rule,
    rule_dsl: dict[str, Any],
    window: Window,
    exception_clause: dict[str, Any] | None,
    excluded: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """``bool.filter = [rule query, range, filters]``, ``must_not = [negated filters, exceptions, excluded]``."""
    positive, negative = filter_clauses(rule)
    must_not = [*negative, *([exception_clause] if exception_clause else []), *excluded]
    query: dict[str, Any] = {"bool": {"filter": [rule_dsl, range_clause(timestamp_fields(rule), window), *positive]}}
    if must_not:
        query["bool"]["must_not"] = must_not
    return query


def build_sort(rule: Rule) -> list[dict[str, Any]]:
    """Timestamp ascending (then the fallback), then ``_shard_doc`` so equal timestamps never tie."""
    fields = timestamp_fields(rule)
    sort: list[dict[str, Any]] = [
        {name: {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}}
        for name in (fields.primary, fields.fallback)
        if name is not None
    ]
    sort.append({"_shard_doc": "asc"})
    return sort


def group_clause(terms: Sequence[tuple[str, Any]], *, must_not: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The events of one group: each field holds the group's value (each of its values, for a list), or lacks a
    value where it has none."""
    filters = [
        {"term": {field: item}}
        for field, value in terms
        if value is not None
        for item in (value if isinstance(value, list | tuple) else [value])
    ]
    lacking = [{"exists": {"field": field}} for field, value in terms if value is None]
    clause: dict[str, Any] = {"filter": filters}
    if lacking or must_not:
        clause["must_not"] = [*lacking, *must_not]
    return {"bool": clause}


def remaining_clause(
    terms: Sequence[tuple[str, Any]], fields: TimestampFields, window: Window, boundary: datetime | None
) -> dict[str, Any]:
    """The group's events that are not counted yet: not at or before ``boundary`` (Kibana's exclusion of a
    group already alerted on, a range from the window start to the group's last counted time)."""
    if boundary is None or boundary < window.start:
        return group_clause(terms)
    return group_clause(terms, must_not=[range_clause(fields, Window(window.start, boundary))])
