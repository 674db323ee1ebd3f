"""The _query request of one page, and the fetch of the rows' events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.ruletypes.esql import request
from job.search.clauses import TimestampFields
from job.window import Window

WINDOW = Window(datetime(2025, 1, 1, 0, 0, tzinfo=UTC), datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
RANGE = {
    "range": {
        "@timestamp": {
            "gte": "2025-01-01T00:00:00.000Z",
            "lte": "2025-01-01T00:05:00.000Z",
            "format": "strict_date_optional_time",
        }
    }
}
EMPTY = {"bool": {"must": [], "filter": [], "should": [], "must_not": []}}
EXCEPTION = {"bool": {"should": [{"term": {"user.name": "svc"}}], "minimum_should_match": 1}}


def test_the_request_of_a_non_aggregating_rule() -> None:
    call = request.build_request(
        "FROM logs-* METADATA _id", WINDOW, TimestampFields("@timestamp", None), None, 101, aggregating=False
    )
    assert call.path == "/_query/async"
    assert call.params == {"drop_null_columns": "true", "allow_partial_results": "true"}
    assert call.body == {
        "query": "FROM logs-* METADATA _id | limit 101",
        "filter": {"bool": {"filter": [RANGE, EMPTY]}},
        "wait_for_completion_timeout": "4m",
    }
    assert call.sync_body() == {key: call.body[key] for key in ("query", "filter")}


def test_an_aggregating_rule_refuses_partial_results_and_keep_alive_is_sent_when_given() -> None:
    call = request.build_request(
        "FROM a | STATS c = COUNT(*)",
        WINDOW,
        TimestampFields("@timestamp", None),
        None,
        11,
        aggregating=True,
        keep_alive="5m",
    )
    assert call.params["allow_partial_results"] == "false"
    assert call.body["keep_alive"] == "5m"


def test_the_override_has_the_timestamp_fallback_and_exceptions_go_in_must_not() -> None:
    call = request.build_request(
        "FROM a METADATA _id", WINDOW, TimestampFields("event.ingested", "@timestamp"), EXCEPTION, 3, aggregating=False
    )
    primary, es_filter = call.body["filter"]["bool"]["filter"]
    should = primary["bool"]["should"]
    assert list(should[0]["range"]) == ["event.ingested"]
    assert should[1]["bool"]["must_not"] == [{"exists": {"field": "event.ingested"}}]
    assert list(should[1]["bool"]["filter"][0]["range"]) == ["@timestamp"]
    assert es_filter == {"bool": {"must": [], "filter": [], "should": [], "must_not": [EXCEPTION]}}


@pytest.mark.parametrize(
    ("excluded", "must_not"),
    [
        ({}, None),
        ({"logs-a": []}, None),
        (
            {"logs-a": ["1", "2"], "": ["3"]},
            [
                {"bool": {"filter": [{"ids": {"values": ["1", "2"]}}, {"term": {"_index": "logs-a"}}]}},
                {"bool": {"filter": [{"ids": {"values": ["3"]}}]}},
            ],
        ),
    ],
)
def test_excluded_documents_one_clause_per_index(excluded: dict[str, list[str]], must_not: Any) -> None:
    call = request.build_request(
        "FROM a METADATA _id", WINDOW, TimestampFields("@timestamp", None), None, 3, excluded, aggregating=False
    )
    assert call.body["filter"]["bool"].get("must_not") == must_not


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("FROM a | LIMIT 5", "FROM a | LIMIT 5 | limit 11"),  # the lower of the two limits wins
        ("FROM a /* c */", "FROM a /* c */ | limit 11"),
        ("FROM a // c\n", "FROM a // c\n | limit 11"),
    ],
)
def test_the_limit_is_appended_without_a_newline(query: str, sent: str) -> None:
    assert request.limited_query(query, 11) == sent


@pytest.mark.parametrize("query", ["FROM a // c", "FROM a // c\n// d", "FROM a /* b */ // c"])
def test_a_trailing_line_comment_would_swallow_the_limit_and_is_refused(query: str) -> None:
    with pytest.raises(ValueError, match="comment out the appended"):
        request.limited_query(query, 11)


def test_an_unreadable_query_is_refused() -> None:
    with pytest.raises(ValueError, match="unterminated string"):
        request.limited_query('FROM a | WHERE b == "x', 11)


@pytest.mark.parametrize(("max_signals", "size"), [(1, 2), (100, 101), (10_000, 10_001)])
def test_page_size(max_signals: int, size: int) -> None:
    assert request.page_size(max_signals) == size


def test_source_fetch_body() -> None:
    body = request.source_fetch_body(["a", "b", "a"], {"x": {"type": "keyword"}})
    assert body == {
        "query": {"bool": {"filter": {"ids": {"values": ["a", "b"]}}}},
        "_source": True,
        "fields": ["*"],
        "size": 4,
        "runtime_mappings": {"x": {"type": "keyword"}},
    }
    assert "version" not in body  # so a fetched event's _version is undefined, as in Kibana
