"""The events already alerted on: kept between runs, added page by page, excluded from the query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.ruletypes.esql import excluded
from job.ruletypes.esql.excluded import ExcludedDocument
from job.ruletypes.esql.sources import FetchedEvent

START = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)
STATE = {
    "excludedDocuments": {
        "logs-a": [
            {"id": "old", "timestamp": "2025-01-01T00:04:59.999Z"},
            {"id": "edge", "timestamp": "2025-01-01T00:05:00.000Z"},
            {"id": "new", "timestamp": "2025-01-01T00:06:00.000Z"},
            {"id": "no-time"},
        ],
        "logs-b": [{"id": "b1", "timestamp": "2025-01-01T01:00:00.000Z"}],
    },
    "lastQuery": "FROM a METADATA _id | MV_EXPAND x",
}


@pytest.mark.parametrize(
    ("state", "query", "aggregating", "mv_expand", "kept"),
    [
        (STATE, "FROM a METADATA _id", False, False, {"logs-a": ["edge", "new"], "logs-b": ["b1"]}),
        (STATE, "FROM a | STATS c = COUNT(*)", True, False, {}),  # aggregating: no state
        (None, "FROM a METADATA _id", False, False, {}),
        ({"excludedDocuments": [{"id": "x", "timestamp": "2026"}]}, "FROM a", False, False, {}),  # old flat form
        (STATE, "FROM a METADATA _id | MV_EXPAND x", False, True, {"logs-a": ["edge", "new"], "logs-b": ["b1"]}),
        (STATE, "FROM a METADATA _id | MV_EXPAND y", False, True, {}),  # MV_EXPAND query changed
    ],
)
def test_initial_excluded(
    state: Any, query: str, aggregating: bool, mv_expand: bool, kept: dict[str, list[str]]
) -> None:
    found = excluded.initial_excluded(
        state, query=query, aggregating=aggregating, has_mv_expand=mv_expand, window_start=START
    )
    assert excluded.ids_by_index(found) == kept


def _event(doc_id: str, index: str = "logs-a", at: str | None = "2025-01-01T00:06:00.000Z") -> FetchedEvent:
    return FetchedEvent(index, doc_id, {}, {"@timestamp": [at]} if at else {})


@pytest.mark.parametrize(
    ("events", "rows", "exhausted", "added"),
    [
        # the last row's event stays out: its other MV_EXPAND rows may come on the next page
        ([_event("1"), _event("2"), _event("3")], [{"_id": "1"}, {"_id": "2"}, {"_id": "3"}], False, ["1", "2"]),
        ([_event("1"), _event("2")], [{"_id": "1"}, {"_id": "2"}, {"_id": "2"}], False, ["1"]),
        # ... unless it is the only event, or the search is exhausted
        ([_event("1")], [{"_id": "1"}, {"_id": "1"}], False, ["1"]),
        ([_event("1"), _event("2")], [{"_id": "1"}, {"_id": "2"}], True, ["1", "2"]),
        ([], [], True, []),
    ],
)
def test_update_excluded(
    events: list[FetchedEvent], rows: list[dict[str, Any]], exhausted: bool, added: list[str]
) -> None:
    kept: excluded.Excluded = {}
    excluded.update_excluded(kept, events, rows, aggregating=False, exhausted=exhausted, timestamp_field="@timestamp")
    assert [entry.id for entry in kept.get("logs-a", [])] == added
    assert all(entry.timestamp == "2025-01-01T00:06:00.000Z" for entry in kept.get("logs-a", []))


def test_update_keys_by_index_reads_the_timestamp_field_and_skips_aggregating_pages() -> None:
    kept: excluded.Excluded = {}
    events = [_event("1", "logs-a"), _event("1", "logs-b", None)]
    excluded.update_excluded(
        kept, events, [{"_id": "z"}], aggregating=False, exhausted=False, timestamp_field="@timestamp"
    )
    assert kept == {
        "logs-a": [ExcludedDocument("1", "2025-01-01T00:06:00.000Z")],
        "logs-b": [ExcludedDocument("1", None)],
    }
    excluded.update_excluded(
        kept, [_event("9")], [{"_id": "z"}], aggregating=True, exhausted=True, timestamp_field="@timestamp"
    )
    assert excluded.count(kept) == 2


def test_the_limit() -> None:
    kept = {"logs-a": [ExcludedDocument(str(i), None) for i in range(excluded.MAX_EXCLUDED_DOCUMENTS)]}
    assert not excluded.over_limit(kept)
    kept["logs-b"] = [ExcludedDocument("one more", None)]
    assert excluded.over_limit(kept)
    assert excluded.EXCLUDED_LIMIT_WARNING == (
        "Excluded documents exceeded the limit of 100000, some alerts might not have been created. "
        "Consider reducing the lookback time for the rule."
    )


@pytest.mark.parametrize(
    ("query", "mv_expand", "last"), [("FROM a", False, None), ("FROM a | MV_EXPAND x", True, "FROM a | MV_EXPAND x")]
)
def test_final_state_keeps_other_keys(query: str, mv_expand: bool, last: str | None) -> None:
    state = excluded.final_state(
        {"other": 1}, {"logs-a": [ExcludedDocument("1", "t")]}, query=query, has_mv_expand=mv_expand
    )
    assert state == {"other": 1, "excludedDocuments": {"logs-a": [{"id": "1", "timestamp": "t"}]}, "lastQuery": last}


def test_the_newest_excluded_events_when_all_would_not_fit() -> None:
    kept = {
        "a": [excluded.ExcludedDocument("e1", "2025-01-01T00:01:00.000Z"), excluded.ExcludedDocument("e3", None)],
        "b": [excluded.ExcludedDocument("e2", "2025-01-01T00:02:00.000Z")],
    }
    assert excluded.newest(kept, 2) == {
        "a": [excluded.ExcludedDocument("e1", "2025-01-01T00:01:00.000Z")],
        "b": [excluded.ExcludedDocument("e2", "2025-01-01T00:02:00.000Z")],
    }
    assert excluded.newest(kept, 0) == {}
    assert excluded.count(excluded.newest(kept, 5)) == 3
