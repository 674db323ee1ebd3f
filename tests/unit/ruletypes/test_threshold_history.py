"""The threshold signal history: keys, what is kept, the exclusion clauses, the record, the alerts index read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.ruletypes.threshold.history import (
    HistoryEntry,
    SignalHistory,
    history_request,
    parse_history_page,
    terms_hash,
)
from job.ruletypes.threshold.search import ThresholdBucket
from job.search.clauses import TimestampFields
from job.window import Window, isoformat

T = datetime(2025, 1, 1, 0, 4, tzinfo=UTC)
WINDOW = Window(datetime(2025, 1, 1, 0, 0, tzinfo=UTC), datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
PLAIN = TimestampFields("@timestamp", None)
OVERRIDE = TimestampFields("event.ingested", "@timestamp")


@pytest.mark.parametrize(
    ("terms", "key"),
    [
        (
            (("host.name", "h1"), ("user.name", "bob")),
            "34cfa98a70f573585344a68b9027fe42c74fc5637ec36255900c864960249ed0",  # the spec's test vector
        ),
        (
            (("user.name", "bob"), ("host.name", "h1")),
            "34cfa98a70f573585344a68b9027fe42c74fc5637ec36255900c864960249ed0",  # sorted by field
        ),
        ((), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),  # the hash of ""
    ],
)
def test_terms_hash(terms: tuple[tuple[str, Any], ...], key: str) -> None:
    assert terms_hash(terms) == key


def _entry(value: str, minutes: float) -> HistoryEntry:
    return HistoryEntry((("h", value),), WINDOW.start + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("entries", "kept"),
    [
        ([_entry("a", 1), _entry("a", 3)], {"a": 3}),
        ([_entry("a", 3), _entry("a", 1)], {"a": 3}),
        ([_entry("a", 1), _entry("b", 2)], {"a": 1, "b": 2}),
    ],
)
def test_one_entry_per_group_with_the_latest_time(entries: list[HistoryEntry], kept: dict[str, float]) -> None:
    history = SignalHistory.empty().with_entries(entries)
    found = {
        entry.terms[0][1]: (entry.last - WINDOW.start) / timedelta(minutes=1) for entry in history.entries.values()
    }
    assert found == kept


def test_groups_with_one_kibana_hash_keep_both_entries() -> None:
    first = HistoryEntry((("a", "x,b:y"), ("b", "z")), T)
    second = HistoryEntry((("a", "x"), ("b", "y,b:z")), T)
    assert terms_hash(first.terms) == terms_hash(second.terms)
    history = SignalHistory.empty().with_entries([first, second])
    assert sorted(entry.terms for entry in history.entries.values()) == sorted([first.terms, second.terms])


@pytest.mark.parametrize(
    ("minutes", "kept"),
    [(-1, False), (0, False), (0.001, True), (4, True)],  # at or before the window start: dropped (Kibana: > from)
)
def test_for_window_drops_what_excludes_nothing(minutes: float, kept: bool) -> None:
    history = SignalHistory.empty().with_entries([_entry("a", minutes)])
    assert bool(history.for_window(WINDOW).entries) is kept


def test_with_buckets_records_their_latest_event() -> None:
    buckets = [
        ThresholdBucket((("h", "a"),), 5, None, T, None),
        ThresholdBucket((("h", "b"),), 5, None, None, None),  # no time: nothing to exclude by
    ]
    history = SignalHistory.empty().with_buckets(buckets)
    assert list(history.entries.values()) == [HistoryEntry((("h", "a"),), T)]


def test_merged() -> None:
    one = SignalHistory.empty().with_entries([_entry("a", 1)])
    two = SignalHistory.empty().with_entries([_entry("a", 2), _entry("b", 1)])
    assert one.merged(two) == two.merged(one) == SignalHistory.empty().with_entries([_entry("a", 2), _entry("b", 1)])


def _until(field: str) -> dict[str, Any]:
    return {"range": {field: {"lte": "2025-01-01T00:04:00.000Z", "format": "strict_date_optional_time"}}}


@pytest.mark.parametrize(
    ("terms", "timestamps", "clause"),
    [
        (
            (("host.name", "h1"), ("destination.port", 443)),
            PLAIN,
            {
                "bool": {
                    "filter": [
                        _until("@timestamp"),
                        {"term": {"host.name": "h1"}},
                        {"term": {"destination.port": "443"}},  # Kibana writes the value as text
                    ]
                }
            },
        ),
        ((), PLAIN, {"bool": {"filter": [_until("@timestamp")]}}),  # no fields: every event up to the time
        (
            (("flag", True),),
            OVERRIDE,
            {
                "bool": {
                    "filter": [
                        {
                            "bool": {
                                "should": [
                                    _until("event.ingested"),
                                    {
                                        "bool": {
                                            "filter": [_until("@timestamp")],
                                            "must_not": [{"exists": {"field": "event.ingested"}}],
                                        }
                                    },
                                ],
                                "minimum_should_match": 1,
                            }
                        },
                        {"term": {"flag": "true"}},
                    ]
                }
            },
        ),
    ],
)
def test_exclusions(terms: tuple[tuple[str, Any], ...], timestamps: TimestampFields, clause: dict[str, Any]) -> None:
    assert SignalHistory.empty().with_entries([HistoryEntry(terms, T)]).exclusions(timestamps) == [clause]


def test_the_record_round_trips() -> None:
    history = SignalHistory.empty().with_entries(
        [HistoryEntry((("host.name", "h1"), ("user.name", "bob")), T), HistoryEntry((("port", 22),), T)]
    )
    record = history.to_record()
    assert record["34cfa98a70f573585344a68b9027fe42c74fc5637ec36255900c864960249ed0"] == {
        "terms": [{"field": "host.name", "value": "h1"}, {"field": "user.name", "value": "bob"}],
        "lastSignalTimestamp": 1735689840000,
    }
    assert SignalHistory.from_record(record) == history


@pytest.mark.parametrize(
    "record",
    [
        None,
        [],
        {"k": "x"},
        {"k": {"terms": "x", "lastSignalTimestamp": 1}},
        {"k": {"terms": [{"field": "a", "value": {"b": 1}}], "lastSignalTimestamp": 1}},
        {"k": {"terms": [{"value": "x"}], "lastSignalTimestamp": 1}},
        {"k": {"terms": [], "lastSignalTimestamp": "1"}},
        {"k": {"terms": [], "lastSignalTimestamp": True}},
        {"k": {"terms": [], "lastSignalTimestamp": 10**30}},
    ],
)
def test_a_malformed_record_gives_no_entry(record: Any) -> None:
    assert SignalHistory.from_record(record).entries == {}


def test_history_request() -> None:
    bounds = (isoformat(WINDOW.start), isoformat(WINDOW.end))
    body = history_request("r1", "default", ["host.name", "user.name"], bounds, after=["2025", "u"], size=50)
    assert body == {
        "size": 50,
        "query": {
            "bool": {
                "filter": [
                    {"term": {"kibana.alert.rule.rule_id": "r1"}},
                    {"term": {"kibana.space_ids": "default"}},
                    {
                        "bool": {
                            "should": [
                                {
                                    "range": {
                                        field: {
                                            "gte": "2025-01-01T00:00:00.000Z",
                                            "format": "strict_date_optional_time",
                                        }
                                    }
                                }
                                for field in ("kibana.alert.original_time", "kibana.alert.suppression.end")
                            ],
                            "minimum_should_match": 1,
                        }
                    },
                    {
                        "range": {
                            "kibana.alert.threshold_result.from": {
                                "lte": isoformat(WINDOW.end),
                                "format": "strict_date_optional_time",
                            }
                        }
                    },
                    {"term": {"kibana.alert.rule.parameters.threshold.field": "host.name"}},
                    {"term": {"kibana.alert.rule.parameters.threshold.field": "user.name"}},
                ]
            }
        },
        "sort": [{"kibana.alert.original_time": "desc"}, {"kibana.alert.uuid": "asc"}],
        "_source": ["kibana.alert.threshold_result", "kibana.alert.original_time", "kibana.alert.suppression.end"],
        "search_after": ["2025", "u"],
    }


def _alert(terms: list[Any], original: Any, sort: list[Any], end: Any = None) -> dict[str, Any]:
    source = {"kibana.alert.threshold_result": {"terms": terms}, "kibana.alert.original_time": original}
    if end is not None:
        source["kibana.alert.suppression.end"] = end
    return {"_source": source, "sort": sort}


H_A = [{"field": "h", "value": "a"}]


@pytest.mark.parametrize(
    ("hits", "size", "entries", "after"),
    [
        (
            [_alert([{"field": "h", "value": "a"}], "2025-01-01T00:04:00.123456Z", [1, "x"])],
            2,
            [HistoryEntry((("h", "a"),), datetime(2025, 1, 1, 0, 4, 0, 123000, tzinfo=UTC))],
            None,
        ),
        (
            [_alert([{"field": "h", "value": "a"}], "2025-01-01T00:04:00Z", [2, "y"])] * 2,
            2,
            [HistoryEntry((("h", "a"),), T)] * 2,
            [2, "y"],
        ),
        ([_alert([{"field": "other", "value": "a"}], "2025-01-01T00:04:00Z", [1, "x"])], 5, [], None),
        ([_alert([{"field": "h", "value": "a"}], "yesterday", [1, "x"])], 5, [], None),
        ([_alert([{"field": "h", "value": "a"}], None, [1, "x"])], 5, [], None),
        ([{"_source": {}}], 5, [], None),
        # suppressed alerts: later groups folded in moved suppression.end, up to where the group was counted
        (
            [_alert(H_A, "2025-01-01T00:02:00Z", [1, "x"], end="2025-01-01T00:04:00Z")],
            5,
            [HistoryEntry((("h", "a"),), T)],
            None,
        ),
        # its own bucket's end (nothing folded in yet): the original time
        (
            [_alert(H_A, "2025-01-01T00:04:00Z", [1, "x"], end="2025-01-01T00:04:00Z")],
            5,
            [HistoryEntry((("h", "a"),), T)],
            None,
        ),
        # a fold after the window's end (a later run's, read by a backfill): says nothing of the window
        (
            [_alert(H_A, "2025-01-01T00:04:00Z", [1, "x"], end="2025-01-01T09:00:00Z")],
            5,
            [HistoryEntry((("h", "a"),), T)],
            None,
        ),
        ([_alert(H_A, "2025-01-01T00:04:00Z", [1, "x"], end="garbage")], 5, [HistoryEntry((("h", "a"),), T)], None),
    ],
)
def test_parse_history_page(hits: list[dict[str, Any]], size: int, entries: list[HistoryEntry], after: Any) -> None:
    assert parse_history_page({"hits": {"hits": hits}}, ["h"], WINDOW.end, size) == (entries, after)
