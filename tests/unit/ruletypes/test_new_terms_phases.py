"""The three new_terms searches: requests as Kibana sends them (minus scripts), responses as it reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.ruletypes.new_terms.phases import (
    MISSING_DOCS,
    MISSING_NEW,
    MISSING_RECENT,
    NewTermEvent,
    batch_clause,
    combination_events_request,
    combinations_request,
    first_events_request,
    new_values_request,
    parse_combinations,
    parse_first_events,
    parse_new_values,
    parse_recent_terms,
    recent_terms_request,
)
from job.search.clauses import TimestampFields

PLAIN = TimestampFields("@timestamp", None)
QUERY = {"match_all": {}}
START = datetime(2025, 1, 1, tzinfo=UTC)
S = 1735689600000.0  # START in epoch milliseconds
TOP = {"size": 1, "sort": [{"@timestamp": {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}}]}


@pytest.mark.parametrize(
    ("fields", "after", "composite"),
    [
        (["host.ip"], None, {"sources": [{"host.ip": {"terms": {"field": "host.ip"}}}], "size": 10000}),
        (
            ["host.name", "user.name"],
            {"host.name": "h", "user.name": "u"},
            {
                "sources": [
                    {"host.name": {"terms": {"field": "host.name"}}},
                    {"user.name": {"terms": {"field": "user.name"}}},
                ],
                "size": 10000,
                "after": {"host.name": "h", "user.name": "u"},
            },
        ),
    ],
)
def test_phase_one_request(fields: list[str], after: dict[str, Any] | None, composite: dict[str, Any]) -> None:
    assert recent_terms_request(fields, QUERY, after=after) == {
        "size": 0,
        "query": QUERY,
        "aggs": {"new_terms": {"composite": composite}},
    }


def test_phase_one_response() -> None:
    page = parse_recent_terms(
        {"aggregations": {"new_terms": {"buckets": [{"key": {"a": 1}, "doc_count": 2}], "after_key": {"a": 1}}}}
    )
    assert [bucket["key"] for bucket in page.buckets] == [{"a": 1}]
    with pytest.raises(ValueError, match=MISSING_RECENT):
        parse_recent_terms({})


def test_phase_two_and_three_requests_of_one_field() -> None:
    assert new_values_request("host.ip", ["10.0.0.1", "::1"], QUERY, PLAIN) == {
        "size": 0,
        "query": QUERY,
        "aggs": {
            "new_terms": {
                "terms": {"field": "host.ip", "size": 2, "include": ["10.0.0.1", "::1"]},
                "aggs": {"min_timestamp": {"min": {"field": "@timestamp"}}},
            }
        },
    }
    assert first_events_request("host.ip", ["::1"], QUERY, PLAIN, ["host.name"]) == {
        "size": 0,
        "query": QUERY,
        "aggs": {
            "new_terms": {
                "terms": {"field": "host.ip", "size": 1, "include": ["::1"]},
                "aggs": {"first_event": {"top_hits": {**TOP, "fields": ["host.name"]}}},
            }
        },
    }


def _seen(key: Any, first_seen: float | None, key_as_string: str | None = None) -> dict[str, Any]:
    bucket: dict[str, Any] = {"key": key, "doc_count": 1, "min_timestamp": {"value": first_seen}}
    if key_as_string is not None:
        bucket["key_as_string"] = key_as_string
    return bucket


@pytest.mark.parametrize(
    ("buckets", "new"),
    [
        ([_seen("a", S + 1), _seen("b", S), _seen("c", S - 1)], ["a"]),  # first seen exactly at from: not new
        ([_seen(1, S + 1, "true"), _seen(0, S - 5, "false")], ["true"]),  # a boolean: its text, not 1
        ([_seen(1704067200000, S + 1, "2024-01-01T00:00:00.000Z")], ["2024-01-01T00:00:00.000Z"]),
        ([_seen(443, S + 1), _seen(1.5, S + 2)], [443, 1.5]),
        ([_seen("a", None)], []),
    ],
)
def test_phase_two_of_one_field_keeps_what_was_first_seen_after_from(
    buckets: list[dict[str, Any]], new: list[Any]
) -> None:
    assert parse_new_values({"aggregations": {"new_terms": {"buckets": buckets}}}, START) == new


def test_phase_three_of_one_field_gives_kibanas_new_terms() -> None:
    event = {"_index": "logs", "_id": "1", "_source": {}, "sort": [5]}
    buckets = [
        {"key": 1, "key_as_string": "true", "first_event": {"hits": {"hits": [event]}}},
        {"key": "gone", "first_event": {"hits": {"hits": []}}},
    ]
    assert parse_first_events({"aggregations": {"new_terms": {"buckets": buckets}}}) == [NewTermEvent([1], event)]


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        (lambda response: parse_new_values(response, START), MISSING_NEW),
        (parse_first_events, MISSING_DOCS),
        (lambda response: parse_combinations(response, ["a"], set(), START), MISSING_NEW),
        (lambda response: parse_combinations(response, ["a"], set(), None), MISSING_DOCS),
    ],
)
def test_kibanas_messages_when_aggregations_are_missing(parse: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse({"hits": {}})


def test_batch_clause_has_no_script() -> None:
    assert batch_clause(["host.name", "port"], [("h1", 22), ("h2", 443)]) == {
        "bool": {
            "should": [
                {"bool": {"must": [{"match": {"host.name": "h1"}}, {"match": {"port": 22}}]}},
                {"bool": {"must": [{"match": {"host.name": "h2"}}, {"match": {"port": 443}}]}},
            ]
        }
    }


def test_phase_two_and_three_requests_of_several_fields() -> None:
    sources = [{"a": {"terms": {"field": "a"}}}, {"b": {"terms": {"field": "b"}}}]
    assert combinations_request(["a", "b"], QUERY, PLAIN, after={"a": 1, "b": 2}, size=500) == {
        "size": 0,
        "query": QUERY,
        "aggs": {
            "new_terms": {
                "composite": {"sources": sources, "size": 500, "after": {"a": 1, "b": 2}},
                "aggs": {"min_timestamp": {"min": {"field": "@timestamp"}}},
            }
        },
    }
    assert combination_events_request(["a", "b"], QUERY, PLAIN, after=None, size=3) == {
        "size": 0,
        "query": QUERY,
        "aggs": {
            "new_terms": {"composite": {"sources": sources, "size": 3}, "aggs": {"first_event": {"top_hits": TOP}}}
        },
    }


def test_parse_combinations_keeps_only_the_keys_asked_for() -> None:
    event = {"_id": "e", "sort": [1]}
    buckets = [
        {"key": {"a": "x", "b": 1}, "min_timestamp": {"value": S + 1}, "first_event": {"hits": {"hits": [event]}}},
        {"key": {"a": "x", "b": 2}, "min_timestamp": {"value": S - 1}},  # asked for, not new
        {"key": {"a": "y", "b": 1}, "min_timestamp": {"value": S + 1}},  # a combination of array values not asked for
    ]
    response = {"aggregations": {"new_terms": {"buckets": buckets, "after_key": {"a": "y", "b": 1}}}}
    wanted = {("x", 1), ("x", 2), ("z", 9)}
    page = parse_combinations(response, ["a", "b"], wanted, START)
    assert (set(page.new), page.seen, page.after_key) == ({("x", 1)}, {("x", 1), ("x", 2)}, {"a": "y", "b": 1})
    events = parse_combinations(response, ["a", "b"], wanted, None)
    assert set(events.new) == {("x", 1)}  # phase 3: the buckets with an event


NO_SHARD = {"_shards": {"total": 0}, "hits": {"hits": []}}


@pytest.mark.parametrize(
    "parse",
    [
        parse_recent_terms,
        lambda response: parse_new_values(response, START),
        parse_first_events,
        lambda response: parse_combinations(response, ["a"], {("x",)}, START).new,
    ],
)
def test_a_search_on_no_shard_finds_no_term(parse: Any) -> None:
    found = parse(NO_SHARD)
    assert not (found.buckets if hasattr(found, "buckets") else found)
