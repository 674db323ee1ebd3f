"""The three searches of a new_terms page, as request builders and response parsers (pure; Kibana 8.19's
``build_new_terms_aggregation.ts``, ``multi_terms_composite.ts`` and the executor).

1. **Recent terms**: a ``composite`` aggregation ``new_terms`` over the fields in the rule's window, 10,000 keys a
   page, no ``missing_bucket`` (an event lacking a field has no term; an array gives one term per value, or per
   combination of values with several fields).
2. **History check** in ``[history start, window end]``: each term's first time seen (``first_seen``, the
   combined timestamp's minimum). A term is new when ``first_seen`` lies strictly after the window start.
   Kibana drops the other buckets with a ``bucket_selector`` script; our node has none, so the parsers do.
   One field: a ``terms`` aggregation whose ``include`` lists the page's values. Several fields: a composite
   over the events that match a batch of keys (``bool.should`` of ``bool.must`` of ``match`` per field; no
   script), the batch's keys picked from its buckets.
3. **Earliest event** of each new term in the window (``top_hits``, ascending timestamp, no tiebreaker).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from job.search.aggregations import (
    CompositePage,
    aggregation_of,
    composite_page,
    earliest_time,
    first_event,
    timestamp_aggregations,
)
from job.search.clauses import TimestampFields

AGGREGATION: Final = "new_terms"
PAGE_SIZE: Final = 10_000
MISSING_RECENT: Final = "Aggregations were missing on recent terms search result"
MISSING_NEW: Final = "Aggregations were missing on new terms search result"
MISSING_DOCS: Final = "Aggregations were missing on document fetch search result"

Key = tuple[Any, ...]  # a term: the values of the fields, in field order


@dataclass(frozen=True, slots=True)
class NewTermEvent:
    """A new term (``kibana.alert.new_terms``) and the earliest event holding it (a search hit)."""

    new_terms: list[Any]
    event: Mapping[str, Any]


def key_of(key: Mapping[str, Any], fields: Sequence[str]) -> Key:
    return tuple(key.get(field) for field in fields)


def _composite(fields: Sequence[str], size: int, after: Mapping[str, Any] | None) -> dict[str, Any]:
    composite: dict[str, Any] = {"sources": [{field: {"terms": {"field": field}}} for field in fields], "size": size}
    if after is not None:
        composite["after"] = dict(after)
    return composite


def _body(query: dict[str, Any], aggregation: dict[str, Any]) -> dict[str, Any]:
    return {"size": 0, "query": query, "aggs": {AGGREGATION: aggregation}}


def recent_terms_request(
    fields: Sequence[str], query: dict[str, Any], *, after: Mapping[str, Any] | None = None, size: int = PAGE_SIZE
) -> dict[str, Any]:
    """Phase 1: a page of the terms of the window (``query`` is the rule's query over the window)."""
    return _body(query, {"composite": _composite(fields, size, after)})


def parse_recent_terms(response: Mapping[str, Any], size: int | None = None) -> CompositePage:
    return composite_page(response, AGGREGATION, MISSING_RECENT, size)


def _terms(field: str, values: Sequence[Any], aggregations: dict[str, Any]) -> dict[str, Any]:
    terms = {"field": field, "size": max(len(values), 1), "include": list(values)}
    return {"terms": terms, "aggs": aggregations}


def _buckets(response: Mapping[str, Any], missing: str) -> list[Mapping[str, Any]]:
    aggregation = aggregation_of(response, AGGREGATION, missing)
    return [bucket for bucket in aggregation.get("buckets") or () if isinstance(bucket, Mapping)]


def _is_new(bucket: Mapping[str, Any], window_start: datetime) -> bool:
    first_seen = earliest_time(bucket)
    return first_seen is not None and first_seen > window_start


def new_values_request(
    field: str, values: Sequence[Any], query: dict[str, Any], timestamps: TimestampFields
) -> dict[str, Any]:
    """Phase 2, one field: ``first_seen`` of each value (``query`` covers the history window and the window)."""
    return _body(query, _terms(field, values, timestamp_aggregations(timestamps, earliest=True)))


def parse_new_values(response: Mapping[str, Any], window_start: datetime) -> list[Any]:
    """The values first seen after ``window_start``, as ``include`` values for phase 3: the bucket key's text when
    Elasticsearch gives one (a boolean's ``true``, a date's ISO form: Kibana passes the numeric key, which a
    boolean field refuses), else the key."""
    return [
        bucket.get("key_as_string", bucket.get("key"))
        for bucket in _buckets(response, MISSING_NEW)
        if _is_new(bucket, window_start)
    ]


def first_events_request(
    field: str,
    values: Sequence[Any],
    query: dict[str, Any],
    timestamps: TimestampFields,
    hit_fields: Sequence[str] = (),
) -> dict[str, Any]:
    """Phase 3, one field: the earliest event of each new value (``query`` covers the window)."""
    return _body(query, _terms(field, values, timestamp_aggregations(timestamps, first_event_fields=hit_fields)))


def parse_first_events(response: Mapping[str, Any]) -> list[NewTermEvent]:
    """Each new value's earliest event; ``new_terms`` is ``[bucket key]`` (Kibana's: a boolean as 1 or 0, a date
    as epoch milliseconds)."""
    found = []
    for bucket in _buckets(response, MISSING_DOCS):
        event = first_event(bucket)
        if event is not None:
            found.append(NewTermEvent([bucket.get("key")], event))
    return found


def batch_clause(fields: Sequence[str], keys: Sequence[Key]) -> dict[str, Any]:
    """Events holding any of ``keys`` (Kibana's batch filter: one ``bool.must`` of ``match`` per key)."""
    return {
        "bool": {
            "should": [
                {"bool": {"must": [{"match": {field: value}} for field, value in zip(fields, key, strict=True)]}}
                for key in keys
            ]
        }
    }


def combinations_request(
    fields: Sequence[str],
    query: dict[str, Any],
    timestamps: TimestampFields,
    *,
    after: Mapping[str, Any] | None,
    size: int,
) -> dict[str, Any]:
    """Phase 2, several fields: ``first_seen`` of the combinations of the events ``query`` selects (the history
    window and the window, and a :func:`batch_clause`), ``size`` a page after ``after``."""
    aggregation = {
        "composite": _composite(fields, size, after),
        "aggs": timestamp_aggregations(timestamps, earliest=True),
    }
    return _body(query, aggregation)


def combination_events_request(
    fields: Sequence[str],
    query: dict[str, Any],
    timestamps: TimestampFields,
    *,
    after: Mapping[str, Any] | None,
    size: int,
    hit_fields: Sequence[str] = (),
) -> dict[str, Any]:
    """Phase 3, several fields: the earliest event of each combination ``query`` selects (the window and a
    :func:`batch_clause` of the new keys)."""
    aggregation = {
        "composite": _composite(fields, size, after),
        "aggs": timestamp_aggregations(timestamps, first_event_fields=hit_fields),
    }
    return _body(query, aggregation)


@dataclass(frozen=True, slots=True)
class CombinationPage:
    """What one page of a phase-2 or phase-3 composite says about the keys asked for."""

    new: dict[Key, Mapping[str, Any]]  # the keys asked for that are new (phase 2) or have an event (phase 3)
    seen: set[Key]  # the keys asked for that the page holds
    after_key: Mapping[str, Any] | None


def parse_combinations(
    response: Mapping[str, Any],
    fields: Sequence[str],
    wanted: set[Key],
    window_start: datetime | None,
    size: int | None = None,
) -> CombinationPage:
    """Phase 2 (``window_start`` given: new when first seen after it) or phase 3 (None: every bucket with an
    event) over one page (of ``size`` asked); buckets of keys not asked for (combinations of array values) are
    left out."""
    missing = MISSING_NEW if window_start is not None else MISSING_DOCS
    page = composite_page(response, AGGREGATION, missing, size)
    new: dict[Key, Mapping[str, Any]] = {}
    seen: set[Key] = set()
    for bucket in page.buckets:
        raw = bucket.get("key")
        key = key_of(raw if isinstance(raw, Mapping) else {}, fields)
        if key not in wanted:
            continue
        seen.add(key)
        keep = _is_new(bucket, window_start) if window_start is not None else first_event(bucket) is not None
        if keep:
            new[key] = bucket
    return CombinationPage(new, seen, page.after_key)
