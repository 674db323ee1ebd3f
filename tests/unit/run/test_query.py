"""The search body of a rule run (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.rules.model import Rule
from job.search.clauses import build_query, build_sort, filter_clauses, timestamp_fields
from job.window import Window
from tests.alert_samples import seed_rule

WINDOW = Window(datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 15, tzinfo=UTC))
RULE_DSL: dict[str, Any] = {"bool": {"filter": [{"match": {"a": "b"}}]}}
RANGE_TS = {
    "range": {
        "@timestamp": {
            "gte": "2026-01-01T00:00:00.000Z",
            "lte": "2026-01-01T00:15:00.000Z",
            "format": "strict_date_optional_time",
        }
    }
}


def _rule(**overrides: object) -> Rule:
    return seed_rule(**overrides)


@pytest.mark.parametrize(
    ("overrides", "primary", "fallback"),
    [
        ({}, "@timestamp", None),
        ({"timestamp_override": "event.ingested"}, "event.ingested", "@timestamp"),
        (
            {"timestamp_override": "event.ingested", "timestamp_override_fallback_disabled": True},
            "event.ingested",
            None,
        ),
        ({"timestamp_override": "@timestamp"}, "@timestamp", None),
    ],
)
def test_timestamp_fields(overrides: dict[str, object], primary: str, fallback: str | None) -> None:
    fields = timestamp_fields(_rule(**overrides))
    assert (fields.primary, fields.fallback) == (primary, fallback)


def test_plain_query_body() -> None:
    assert build_query(_rule(), RULE_DSL, WINDOW, None) == {"bool": {"filter": [RULE_DSL, RANGE_TS]}}


def test_exceptions_and_negated_filters_go_to_must_not() -> None:
    exception = {"bool": {"should": [{"match_phrase": {"user.name": "admin"}}], "minimum_should_match": 1}}
    rule = _rule(
        filters=[
            {"meta": {"negate": False}, "query": {"term": {"host.name": "h1"}}},
            {"meta": {"negate": True}, "query": {"term": {"host.name": "h2"}}},
            {"meta": {"disabled": True}, "query": {"term": {"host.name": "h3"}}},
        ]
    )
    body = build_query(rule, RULE_DSL, WINDOW, exception)
    assert body == {
        "bool": {
            "filter": [RULE_DSL, RANGE_TS, {"term": {"host.name": "h1"}}],
            "must_not": [{"term": {"host.name": "h2"}}, exception],
        }
    }


def test_legacy_filter_without_a_query_key() -> None:
    positive, negative = filter_clauses(_rule(filters=[{"meta": {}, "exists": {"field": "x"}}]))
    assert (positive, negative) == ([{"exists": {"field": "x"}}], [])


def test_override_with_fallback_range() -> None:
    body = build_query(_rule(timestamp_override="event.ingested"), RULE_DSL, WINDOW, None)
    range_clause = body["bool"]["filter"][1]
    assert range_clause["bool"]["minimum_should_match"] == 1
    primary, fallback = range_clause["bool"]["should"]
    assert primary["range"]["event.ingested"]["gte"] == "2026-01-01T00:00:00.000Z"
    assert fallback["bool"]["filter"] == [RANGE_TS]
    assert fallback["bool"]["must_not"] == [{"exists": {"field": "event.ingested"}}]


def test_sort_has_the_shard_doc_tiebreaker() -> None:
    assert build_sort(_rule())[-1] == {"_shard_doc": "asc"}
    assert [next(iter(s)) for s in build_sort(_rule(timestamp_override="event.ingested"))] == [
        "event.ingested",
        "@timestamp",
        "_shard_doc",
    ]


def test_excluded_clauses_follow_the_exceptions_in_must_not() -> None:
    from job.search.clauses import own_alerts_clause

    own = own_alerts_clause("detection-alerts-default", "r1")
    assert own == {
        "bool": {
            "filter": [
                {"wildcard": {"_index": {"value": "detection-alerts-default-*"}}},
                {"term": {"kibana.alert.rule.rule_id": "r1"}},
            ]
        }
    }
    exception = {"exists": {"field": "x"}}
    assert build_query(_rule(), RULE_DSL, WINDOW, exception, [own])["bool"]["must_not"] == [exception, own]
