"""The pieces threshold and new_terms share: the query over a range, the timestamp without scripts, pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.rules.model import Rule
from job.search.aggregations import (
    EventQuery,
    composite_page,
    earliest_time,
    event_query,
    first_event,
    latest_time,
    millis_time,
    timestamp_aggregations,
)
from job.search.clauses import TimestampFields
from job.window import Window

PLAIN = TimestampFields("@timestamp", None)
OVERRIDE = TimestampFields("event.ingested", "@timestamp")
WINDOW = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
RULE_QUERY = {"term": {"event.kind": "alert"}}


def _range(field: str) -> dict[str, Any]:
    bounds = {
        "gte": "2025-01-01T00:00:00.000Z",
        "lte": "2025-01-01T00:05:00.000Z",
        "format": "strict_date_optional_time",
    }
    return {"range": {field: bounds}}


@pytest.mark.parametrize(
    ("query", "extra", "expected"),
    [
        (
            EventQuery((RULE_QUERY,), (), PLAIN),
            {},
            {"bool": {"filter": [RULE_QUERY, _range("@timestamp")]}},
        ),
        (
            EventQuery((RULE_QUERY, {"term": {"a": 1}}), ({"term": {"b": 2}},), PLAIN),
            {"filters": [{"term": {"c": 3}}], "must_not": [{"term": {"d": 4}}]},
            {
                "bool": {
                    "filter": [RULE_QUERY, _range("@timestamp"), {"term": {"a": 1}}, {"term": {"c": 3}}],
                    "must_not": [{"term": {"b": 2}}, {"term": {"d": 4}}],
                }
            },
        ),
        (
            EventQuery((), (), OVERRIDE),
            {},
            {
                "bool": {
                    "filter": [
                        {"match_all": {}},
                        {
                            "bool": {
                                "should": [
                                    _range("event.ingested"),
                                    {
                                        "bool": {
                                            "filter": [_range("@timestamp")],
                                            "must_not": [{"exists": {"field": "event.ingested"}}],
                                        }
                                    },
                                ],
                                "minimum_should_match": 1,
                            }
                        },
                    ]
                }
            },
        ),
    ],
)
def test_query_for_window(query: EventQuery, extra: dict[str, Any], expected: dict[str, Any]) -> None:
    assert query.for_window(WINDOW, **extra) == expected


TOP = {"size": 1, "sort": [{"@timestamp": {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}}]}


@pytest.mark.parametrize(
    ("timestamps", "kwargs", "expected"),
    [
        (PLAIN, {"earliest": True}, {"min_timestamp": {"min": {"field": "@timestamp"}}}),
        (
            PLAIN,
            {"earliest": True, "latest": True},
            {"min_timestamp": {"min": {"field": "@timestamp"}}, "max_timestamp": {"max": {"field": "@timestamp"}}},
        ),
        (PLAIN, {"first_event_fields": []}, {"first_event": {"top_hits": TOP}}),
        (PLAIN, {"first_event_fields": ["host.name"]}, {"first_event": {"top_hits": {**TOP, "fields": ["host.name"]}}}),
        (
            OVERRIDE,
            {"latest": True},
            {
                "max_timestamp": {"max": {"field": "event.ingested"}},
                "fallback": {
                    "filter": {"bool": {"must_not": [{"exists": {"field": "event.ingested"}}]}},
                    "aggs": {"max_timestamp": {"max": {"field": "@timestamp"}}},
                },
            },
        ),
    ],
)
def test_timestamp_aggregations(timestamps: TimestampFields, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    assert timestamp_aggregations(timestamps, **kwargs) == expected


T0 = 1735689600000.0  # 2025-01-01T00:00:00Z


def _at(millis: float) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


@pytest.mark.parametrize(
    ("bucket", "earliest", "latest"),
    [
        ({"min_timestamp": {"value": T0}, "max_timestamp": {"value": T0 + 5000}}, _at(T0), _at(T0 + 5000)),
        (
            {
                "min_timestamp": {"value": T0 + 1000},
                "max_timestamp": {"value": T0 + 2000},
                "fallback": {"min_timestamp": {"value": T0}, "max_timestamp": {"value": T0 + 9000}},
            },
            _at(T0),
            _at(T0 + 9000),
        ),
        (
            {"min_timestamp": {"value": None}, "fallback": {"min_timestamp": {"value": T0 + 7}}},
            _at(T0 + 7),
            None,
        ),
        ({"min_timestamp": {"value": T0 + 0.9}}, _at(T0), None),  # date_nanos: cut to the millisecond
        ({}, None, None),
        ({"min_timestamp": {"value": "x"}, "max_timestamp": {"value": float("inf")}}, None, None),
    ],
)
def test_earliest_and_latest(bucket: dict[str, Any], earliest: datetime | None, latest: datetime | None) -> None:
    assert (earliest_time(bucket), latest_time(bucket)) == (earliest, latest)


@pytest.mark.parametrize(("value", "expected"), [(0, datetime(1970, 1, 1, tzinfo=UTC)), (True, None), (1e300, None)])
def test_millis_time(value: Any, expected: datetime | None) -> None:
    assert millis_time(value) == expected


def _hits(name: str, sort: Any) -> dict[str, Any]:
    return {"hits": {"hits": [{"_id": name, "sort": [sort]}]}}


@pytest.mark.parametrize(
    ("bucket", "chosen"),
    [
        ({"first_event": _hits("a", 5)}, "a"),
        ({"first_event": _hits("a", 5), "fallback": {"first_event": _hits("b", 4)}}, "b"),
        ({"first_event": _hits("a", 5), "fallback": {"first_event": _hits("b", 5)}}, "a"),  # a tie: the primary's
        ({"first_event": {"hits": {"hits": []}}, "fallback": {"first_event": _hits("b", 9)}}, "b"),
        ({"first_event": {"hits": {"hits": []}}}, None),
        ({"first_event": _hits("a", "not a number"), "fallback": {"first_event": _hits("b", 9)}}, "b"),
    ],
)
def test_first_event(bucket: dict[str, Any], chosen: str | None) -> None:
    event = first_event(bucket)
    assert (None if event is None else event["_id"]) == chosen


@pytest.mark.parametrize(
    ("response", "count", "after"),
    [
        ({"aggregations": {"x": {"buckets": [{"key": {"a": 1}}], "after_key": {"a": 1}}}}, 1, {"a": 1}),
        ({"aggregations": {"x": {"buckets": [], "after_key": {"a": 1}}}}, 0, None),
        ({"aggregations": {"x": {"buckets": [{"key": {"a": 1}}, "junk"]}}}, 1, None),
    ],
)
def test_composite_page(response: dict[str, Any], count: int, after: dict[str, Any] | None) -> None:
    page = composite_page(response, "x", "missing")
    assert (len(page.buckets), page.after_key) == (count, after)


@pytest.mark.parametrize(("size", "after"), [(None, {"a": 2}), (3, {"a": 2}), (2, {"a": 2}), (4, None)])
def test_a_page_with_fewer_buckets_than_asked_is_the_last(size: int | None, after: dict[str, Any] | None) -> None:
    response = {"aggregations": {"x": {"buckets": [{"key": {"a": 1}}, {"key": {"a": 2}}, {"key": {"a": 3}}]}}}
    response["aggregations"]["x"]["after_key"] = {"a": 2}
    assert composite_page(response, "x", "missing", size).after_key == after


@pytest.mark.parametrize("response", [{}, {"aggregations": {}}, {"aggregations": {"x": []}}])
def test_composite_page_missing(response: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="^Aggregations were missing$"):
        composite_page(response, "x", "Aggregations were missing")


OWN_ALERTS = {
    "bool": {"filter": [{"wildcard": {"_index": {"value": "alerts-*"}}}, {"term": {"kibana.alert.rule.rule_id": "r"}}]}
}


@pytest.mark.parametrize(
    ("rule_keys", "exception_clause", "filters", "must_not", "timestamps"),
    [
        ({}, None, (RULE_QUERY,), (), PLAIN),
        (
            {
                "timestamp_override": "event.ingested",
                "filters": (
                    {"meta": {"negate": True}, "query": {"term": {"x": 1}}},
                    {"meta": {}, "query": {"term": {"y": 2}}},
                    {"meta": {"disabled": True}, "query": {"term": {"z": 3}}},
                ),
            },
            {"bool": {"should": [{"term": {"user.name": "svc"}}]}},
            (RULE_QUERY, {"term": {"y": 2}}),
            ({"term": {"x": 1}}, {"bool": {"should": [{"term": {"user.name": "svc"}}]}}),
            OVERRIDE,
        ),
        (
            {"timestamp_override": "event.ingested", "timestamp_override_fallback_disabled": True},
            None,
            (RULE_QUERY,),
            (),
            TimestampFields("event.ingested", None),
        ),
    ],
)
def test_event_query_of_a_rule(
    rule_keys: dict[str, Any],
    exception_clause: dict[str, Any] | None,
    filters: tuple[dict[str, Any], ...],
    must_not: tuple[dict[str, Any], ...],
    timestamps: TimestampFields,
) -> None:
    rule = Rule.model_validate(
        {
            "rule_id": "r",
            "name": "R",
            "description": "",
            "type": "threshold",
            "severity": "low",
            "risk_score": 21,
            "threshold": {"field": [], "value": 1},
            **rule_keys,
        }
    )
    assert event_query(rule, RULE_QUERY, exception_clause, None) == EventQuery(filters, must_not, timestamps)
    # a run also hides the rule's own alerts, last
    own = EventQuery(filters, (*must_not, OWN_ALERTS), timestamps)
    assert event_query(rule, RULE_QUERY, exception_clause, "alerts") == own


def test_a_query_over_date_math_as_translate_prints_it() -> None:
    query = EventQuery((RULE_QUERY,), (), OVERRIDE).for_date_math("now-6m", "now", filters=[{"term": {"a": 1}}])
    bounds = {"gte": "now-6m", "lte": "now", "format": "strict_date_optional_time"}
    time_range = {
        "bool": {
            "should": [
                {"range": {"event.ingested": bounds}},
                {
                    "bool": {
                        "filter": [{"range": {"@timestamp": bounds}}],
                        "must_not": [{"exists": {"field": "event.ingested"}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }
    assert query == {"bool": {"filter": [RULE_QUERY, time_range, {"term": {"a": 1}}]}}


NO_SHARD = {"_shards": {"total": 0, "successful": 0, "skipped": 0, "failed": 0}, "hits": {"hits": []}}


def test_a_search_on_no_shard_found_nothing() -> None:
    page = composite_page(NO_SHARD, "x", "missing")
    assert (page.buckets, page.after_key) == ((), None)
    with pytest.raises(ValueError, match="missing"):
        composite_page({**NO_SHARD, "_shards": {"total": 1}}, "x", "missing")
