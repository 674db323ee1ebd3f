"""What the aggregating rule types (threshold, new_terms) share, pure: the query of a search over any time range,
the rule's timestamp in aggregations without scripts, and composite pages.

**The timestamp.** Kibana aggregates on the "aggregatable timestamp": the timestamp override, or, when events
lacking it fall back to ``@timestamp``, a runtime field ``kibana.combined_timestamp`` computed by a Painless
script. Our node has no Painless (nor ``bucket_selector``), so every timestamp aggregation is asked twice: on
the primary field, and in a ``fallback`` filter bucket over the events lacking it, on ``@timestamp``; the
parsers take the earlier or later of the two. The result is the runtime field's, without a script.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from job.rules.model import Rule
from job.search.clauses import (
    SORT_MISSING,
    TimestampFields,
    bounds_clause,
    filter_clauses,
    own_alerts_clause,
    range_clause,
    timestamp_fields,
)
from job.window import Window

MIN_TIMESTAMP: Final = "min_timestamp"
MAX_TIMESTAMP: Final = "max_timestamp"
FIRST_EVENT: Final = "first_event"
FALLBACK: Final = "fallback"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """The part of a rule's searches that does not depend on their time range: the rule query and positive
    filters (``bool.filter``), the negated filters and the exception clause (``bool.must_not``)."""

    filters: tuple[dict[str, Any], ...]
    must_not: tuple[dict[str, Any], ...]
    timestamps: TimestampFields

    def for_window(
        self,
        window: Window,
        *,
        filters: Sequence[dict[str, Any]] = (),
        must_not: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """The query of a search over ``window`` (job.search.clauses's order: rule query, range, filters), with
        ``filters`` and ``must_not`` added."""
        return self.with_range(range_clause(self.timestamps, window), filters=filters, must_not=must_not)

    def for_date_math(self, start: str, end: str, *, filters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The query over ``[start, end]`` given as date math (``now-6m``, ``now``), as ``translate`` prints a
        rule's requests: Elasticsearch resolves it when the request is sent."""
        return self.with_range(bounds_clause(self.timestamps, (start, end)), filters=filters)

    def with_range(
        self,
        time_range: dict[str, Any],
        *,
        filters: Sequence[dict[str, Any]] = (),
        must_not: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        rule_query, *positive = self.filters or ({"match_all": {}},)
        clauses = [rule_query, time_range, *positive, *filters]
        query: dict[str, Any] = {"bool": {"filter": clauses}}
        negative = [*self.must_not, *must_not]
        if negative:
            query["bool"]["must_not"] = negative
        return query


def event_query(
    rule: Rule, rule_dsl: dict[str, Any], exception_clause: dict[str, Any] | None, alerts_alias: str | None
) -> EventQuery:
    """The :class:`EventQuery` of ``rule``: its translated query, its filters, its exceptions, the clause that
    hides its own alerts in ``alerts_alias`` (as every rule's search, job.search.clauses; None: not known, as in
    ``translate``) and its timestamps."""
    positive, negative = filter_clauses(rule)
    exceptions = [exception_clause] if exception_clause else []
    own = [own_alerts_clause(alerts_alias, rule.rule_id)] if alerts_alias is not None else []
    return EventQuery(
        filters=(rule_dsl, *positive),
        must_not=(*negative, *exceptions, *own),
        timestamps=timestamp_fields(rule),
    )


def top_hit(field_name: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    """The earliest event by ``field_name`` (Kibana's ``top_hits`` of size 1, ascending, no tiebreaker); sort
    values in nanoseconds, so indices mapping the field as ``date`` and ``date_nanos`` compare (job.search.clauses)."""
    body: dict[str, Any] = {
        "size": 1,
        "sort": [{field_name: {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}}],
    }
    if fields:
        body["fields"] = list(fields)
    return {"top_hits": body}


def timestamp_aggregations(
    timestamps: TimestampFields,
    *,
    earliest: bool = False,
    latest: bool = False,
    first_event_fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Sub-aggregations over the rule's timestamp: its minimum (``earliest``), maximum (``latest``) and earliest
    event (``first_event_fields`` not None: a ``top_hits`` that also asks those fields), each on the primary
    field and, with a fallback, again on ``@timestamp`` over the events lacking the primary field."""

    def on(name: str) -> dict[str, Any]:
        aggregations: dict[str, Any] = {}
        if earliest:
            aggregations[MIN_TIMESTAMP] = {"min": {"field": name}}
        if latest:
            aggregations[MAX_TIMESTAMP] = {"max": {"field": name}}
        if first_event_fields is not None:
            aggregations[FIRST_EVENT] = top_hit(name, first_event_fields)
        return aggregations

    aggregations = on(timestamps.primary)
    if timestamps.fallback is not None:
        lacking = {"bool": {"must_not": [{"exists": {"field": timestamps.primary}}]}}
        aggregations[FALLBACK] = {"filter": lacking, "aggs": on(timestamps.fallback)}
    return aggregations


def millis_time(value: Any) -> datetime | None:
    """Epoch milliseconds (a min/max aggregation's ``value``) as a UTC time, cut to the millisecond as a
    JavaScript ``Date`` holds it; None for a missing, non-finite or unrepresentable value."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    try:
        return EPOCH + timedelta(milliseconds=math.floor(value))
    except OverflowError:
        return None


def _both(bucket: Mapping[str, Any], name: str) -> list[datetime]:
    fallback = bucket.get(FALLBACK)
    found = [bucket.get(name), fallback.get(name) if isinstance(fallback, Mapping) else None]
    times = [millis_time(part.get("value")) for part in found if isinstance(part, Mapping)]
    return [time for time in times if time is not None]


def earliest_time(bucket: Mapping[str, Any]) -> datetime | None:
    """The bucket's earliest timestamp (the combined timestamp's minimum)."""
    return min(_both(bucket, MIN_TIMESTAMP), default=None)


def latest_time(bucket: Mapping[str, Any]) -> datetime | None:
    """The bucket's latest timestamp (the combined timestamp's maximum)."""
    return max(_both(bucket, MAX_TIMESTAMP), default=None)


def _top(aggregation: Any) -> tuple[int, Mapping[str, Any]] | None:
    hits = aggregation.get("hits", {}).get("hits", []) if isinstance(aggregation, Mapping) else []
    if not hits or not isinstance(hits[0], Mapping):
        return None
    sort = hits[0].get("sort") or [SORT_MISSING]
    value = sort[0] if isinstance(sort[0], int) and not isinstance(sort[0], bool) else SORT_MISSING
    return value, hits[0]


def first_event(bucket: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The bucket's earliest event: the first by the primary timestamp, unless an event lacking it is earlier by
    ``@timestamp`` (on a tie, the primary's, as the combined timestamp's sort keeps the index order)."""
    fallback = bucket.get(FALLBACK)
    tops = [_top(bucket.get(FIRST_EVENT)), _top(fallback.get(FIRST_EVENT) if isinstance(fallback, Mapping) else None)]
    found = [top for top in tops if top is not None]
    if not found:
        return None
    return min(found, key=lambda top: top[0])[1]


@dataclass(frozen=True, slots=True)
class CompositePage:
    """One page of a composite aggregation: its buckets, and the key to ask the next page after (None: the
    last page)."""

    buckets: tuple[Mapping[str, Any], ...]
    after_key: Mapping[str, Any] | None


def searched_no_shard(response: Mapping[str, Any]) -> bool:
    """Whether a search ran on no shard at all (its indices vanished since the run's preflight, or cannot be
    read): Elasticsearch then answers without aggregations, and the search found nothing."""
    shards = response.get("_shards")
    return isinstance(shards, Mapping) and shards.get("total") == 0


def aggregation_of(response: Mapping[str, Any], name: str, missing: str) -> Mapping[str, Any]:
    """The aggregation ``name`` of a search response (empty when the search ran on no shard);
    ``ValueError(missing)`` (Kibana's message for the search) when the response lacks it."""
    aggregation = (response.get("aggregations") or {}).get(name)
    if isinstance(aggregation, Mapping):
        return aggregation
    if searched_no_shard(response):
        return {}
    raise ValueError(missing)


def composite_page(response: Mapping[str, Any], name: str, missing: str, size: int | None = None) -> CompositePage:
    """The page of the composite aggregation ``name`` in a search response (:func:`aggregation_of`). With the
    ``size`` asked for, a page holding fewer buckets is the last (Elasticsearch fills every page but the last),
    so no search is spent on the empty page after it, which Kibana asks for."""
    aggregation = aggregation_of(response, name, missing)
    buckets = tuple(bucket for bucket in aggregation.get("buckets") or () if isinstance(bucket, Mapping))
    after = aggregation.get("after_key")
    last = not buckets or (size is not None and len(buckets) < size)
    return CompositePage(buckets, after if isinstance(after, Mapping) and not last else None)
