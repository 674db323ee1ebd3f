"""The threshold search, pure (``find_threshold_signals.ts`` and ``build_threshold_aggregation.ts`` of Kibana 8.19).

With group-by fields: ``size: 0`` and a ``composite`` aggregation ``thresholdTerms``, one ``terms`` source per
field in order (no ``missing_bucket``: an event lacking a field is never counted), 10,000 buckets a page, per
bucket the earliest and latest timestamps and, with a cardinality condition, ``cardinality_count``. Kibana keeps
a bucket with ``bucket_selector`` scripts (``docCount >= value``, ``cardinalityCount >= N``); our node has no
scripts, so :func:`parse_page` applies the same conditions to each page. Pages are asked while fewer than
``max_signals + 1`` buckets passed; the first ``max_signals`` in composite order are kept, and more than that is
Kibana's max-signals warning. A run asked to stop (SIGTERM, its lease running out) stops between pages.

Without fields: one search with ``track_total_hits``; one bucket with key ``{}`` when the total reaches the value
(and the cardinality condition holds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from job.rules.aggregation_params import ThresholdParams
from job.search.aggregations import (
    composite_page,
    earliest_time,
    latest_time,
    searched_no_shard,
    timestamp_aggregations,
)
from job.search.clauses import TimestampFields

AGGREGATION: Final = "thresholdTerms"
CARDINALITY: Final = "cardinality_count"
PAGE_SIZE: Final = 10_000
MISSING_AGGREGATIONS: Final = "Aggregations were missing on threshold rule search result"

Search = Callable[[dict[str, Any]], Mapping[str, Any]]
Terms = tuple[tuple[str, Any], ...]  # (field, value) in the order of the threshold fields


def _bucket_aggregations(params: ThresholdParams, timestamps: TimestampFields) -> dict[str, Any]:
    aggregations = timestamp_aggregations(timestamps, earliest=True, latest=True)
    cardinality = params.counted_cardinality
    if cardinality is not None:
        aggregations[CARDINALITY] = {"cardinality": {"field": cardinality.field}}
    return aggregations


def buckets_request(
    params: ThresholdParams,
    query: dict[str, Any],
    timestamps: TimestampFields,
    *,
    after: Mapping[str, Any] | None = None,
    size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """The body of one page of buckets (a rule with group-by fields): ``size`` buckets after the key ``after``."""
    composite: dict[str, Any] = {
        "sources": [{field: {"terms": {"field": field}}} for field in params.field],
        "size": size,
    }
    if after is not None:
        composite["after"] = dict(after)
    aggregation = {"composite": composite, "aggs": _bucket_aggregations(params, timestamps)}
    return {"size": 0, "query": query, "aggs": {AGGREGATION: aggregation}}


def total_request(params: ThresholdParams, query: dict[str, Any], timestamps: TimestampFields) -> dict[str, Any]:
    """The body of the one search of a rule without group-by fields."""
    return {"size": 0, "track_total_hits": True, "query": query, "aggs": _bucket_aggregations(params, timestamps)}


@dataclass(frozen=True, slots=True)
class ThresholdBucket:
    """A group of events that reached the threshold."""

    terms: Terms
    count: int
    first: datetime | None  # the earliest timestamp (``min_timestamp``)
    last: datetime | None  # the latest (``max_timestamp``)
    cardinality: int | None  # distinct values of the cardinality field, when the rule has the condition

    @property
    def values(self) -> list[Any]:
        return [value for _, value in self.terms]


def _cardinality(bucket: Mapping[str, Any], params: ThresholdParams) -> int | None:
    if params.counted_cardinality is None:
        return None
    part = bucket.get(CARDINALITY)
    value = part.get("value") if isinstance(part, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def passes(bucket: ThresholdBucket, params: ThresholdParams) -> bool:
    """Kibana's conditions: at least ``value`` events, and at least the cardinality condition's distinct values."""
    condition = params.counted_cardinality
    return bucket.count >= params.value and (condition is None or (bucket.cardinality or 0) >= condition.value)


def parse_bucket(bucket: Mapping[str, Any], params: ThresholdParams, count: Any = None) -> ThresholdBucket:
    """One composite bucket (or the top level of the search without fields, with ``count`` the total)."""
    key = bucket.get("key")
    key = key if isinstance(key, Mapping) else {}
    raw = bucket.get("doc_count") if count is None else count
    return ThresholdBucket(
        terms=tuple((field, key.get(field)) for field in params.field),
        count=raw if isinstance(raw, int) and not isinstance(raw, bool) else 0,
        first=earliest_time(bucket),
        last=latest_time(bucket),
        cardinality=_cardinality(bucket, params),
    )


def parse_page(
    response: Mapping[str, Any], params: ThresholdParams, size: int | None = None
) -> tuple[list[ThresholdBucket], Mapping[str, Any] | None]:
    """The buckets of one page (of ``size`` asked) that pass, and the key to ask the next page after (None: the
    last page)."""
    page = composite_page(response, AGGREGATION, MISSING_AGGREGATIONS, size)
    found = [parse_bucket(raw, params) for raw in page.buckets]
    return [bucket for bucket in found if passes(bucket, params)], page.after_key


def parse_total(response: Mapping[str, Any], params: ThresholdParams) -> ThresholdBucket | None:
    """The one bucket of a rule without fields, if it passes."""
    aggregations = response.get("aggregations")
    if not isinstance(aggregations, Mapping):
        if searched_no_shard(response):
            return None
        raise ValueError(MISSING_AGGREGATIONS)
    total = (response.get("hits") or {}).get("total")
    count = total.get("value") if isinstance(total, Mapping) else total
    bucket = parse_bucket(aggregations, params, count=count)
    return bucket if passes(bucket, params) else None


@dataclass(frozen=True, slots=True)
class FoundBuckets:
    """The buckets a run alerts on (at most ``max_signals``, in composite order), the searches it took, whether
    more buckets passed than that (Kibana's max-signals warning), and whether it stopped before the last page."""

    buckets: tuple[ThresholdBucket, ...]
    searches: int
    more: bool = False
    stopped: bool = False


def find_buckets(
    search: Search,
    params: ThresholdParams,
    query: dict[str, Any],
    timestamps: TimestampFields,
    *,
    max_signals: int,
    page_size: int = PAGE_SIZE,
    should_stop: Callable[[], bool] = lambda: False,
) -> FoundBuckets:
    """Page through the buckets of ``query`` (the rule's events of the window, minus those already alerted on)
    with ``search`` (a request body in, a search response out) until more than ``max_signals`` passed or the
    pages end; ``should_stop`` is asked between pages."""
    if not params.field:
        bucket = parse_total(search(total_request(params, query, timestamps)), params)
        return _found([bucket] if bucket else [], 1, max_signals)
    found: list[ThresholdBucket] = []
    after: Mapping[str, Any] | None = None
    searches = 0
    while True:
        response = search(buckets_request(params, query, timestamps, after=after, size=page_size))
        searches += 1
        passing, after = parse_page(response, params, page_size)
        found.extend(passing)
        if after is None or len(found) > max_signals:
            return _found(found, searches, max_signals)
        if should_stop():
            return _found(found, searches, max_signals, stopped=True)


def _found(buckets: Sequence[ThresholdBucket], searches: int, max_signals: int, stopped: bool = False) -> FoundBuckets:
    return FoundBuckets(tuple(buckets[:max_signals]), searches, len(buckets) > max_signals, stopped)
