"""Rows into would-be alerts: Kibana's ids (object-hash vectors), sources merged with rows, dedupe in a page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.alerts.objecthash import UNDEFINED, object_hash
from job.ruletypes.esql.alerts import expanded_columns, rows_to_alerts
from job.ruletypes.esql.response import parse_response
from job.ruletypes.esql.sources import FetchedEvent, fetched_events
from job.window import Window

WINDOW = Window(datetime(2025, 1, 1, 0, 0, tzinfo=UTC), datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
INDEX = ".ds-logs-x-2025.01.01-000001"
KEY = "default:4f1e"


def _result(columns: list[str], *values: list[Any]) -> Any:
    return parse_response({"columns": [{"name": c, "type": "keyword"} for c in columns], "values": list(values)})


def _events(*events: FetchedEvent) -> dict[str, list[FetchedEvent]]:
    found: dict[str, list[FetchedEvent]] = {}
    for event in events:
        found.setdefault(event.id, []).append(event)
    return found


def test_kibana_vector_of_object_hash() -> None:
    """wrap_esql_alerts.test.ts: an event with _version 1."""
    parts = [
        "d5e8eb51-a6a0-456d-8a15-4b79bfec3d71",
        1,
        "myFakeSignalIndex",
        "default:04128c15-0d1b-4716-a4c5-46997ac7f3bd",
    ]
    assert object_hash(parts) == "ed7fbf575371c898e0f0aea48cdf0bf1865939a9"


def test_a_non_aggregating_row_is_its_event_merged_with_the_row() -> None:
    query = "FROM logs-* METADATA _id, _index | EVAL agent.name = TO_UPPER(agent.name)"
    event = FetchedEvent(
        INDEX, "AbC123", {"agent": {"name": "a", "type": "t"}, "@timestamp": "T"}, {"@timestamp": ["T"]}
    )
    result = _result(["agent.name", "_id", "_index"], ["A", "AbC123", INDEX])
    [alert] = rows_to_alerts(result, _events(event), query=query, aggregating=False, window=WINDOW, key=KEY)
    assert alert.id == "ee78c15ff03a9796ce65d6be4cef474d83ce1d1d"  # [_id, undefined, _index, key]
    assert (alert.index, alert.event_id, alert.row) == (INDEX, "AbC123", 0)
    assert alert.source == {"agent": {"type": "t"}, "@timestamp": "T", "agent.name": "A"}
    assert alert.fields == {"@timestamp": ["T"]}
    assert event.source == {"agent": {"name": "a", "type": "t"}, "@timestamp": "T"}  # the event is not changed


def test_mv_expand_rows_of_one_event_get_one_id_per_value() -> None:
    query = "FROM logs-* METADATA _id | MV_EXPAND tag"
    event = FetchedEvent(INDEX, "AbC123", {"tag": ["part-0", "part-1", ""]})
    result = _result(["tag", "_id"], ["part-0", "AbC123"], ["part-1", "AbC123"], ["", "AbC123"])
    alerts = rows_to_alerts(result, _events(event), query=query, aggregating=False, window=WINDOW, key=KEY)
    assert alerts[0].id == "6202d3d3dca3b4e4952e8997ae39e9b2a253633e"  # [..., "part-0"]
    assert alerts[1].id == object_hash(["AbC123", UNDEFINED, INDEX, KEY, "part-1"])
    # a falsy expanded value is dropped: the id is the one without expanded values
    assert alerts[2].id == "ee78c15ff03a9796ce65d6be4cef474d83ce1d1d"
    assert [alert.source["tag"] for alert in alerts] == ["part-0", "part-1", ""]


def test_an_expanded_column_missing_from_the_answer_hashes_the_whole_hit() -> None:
    query = "FROM logs-* METADATA _id | MV_EXPAND tag | RENAME tag AS t"
    assert expanded_columns(query, ("t", "_id")) == []
    assert expanded_columns(query, ("tag", "_id")) == ["tag"]
    assert expanded_columns("FROM a", ("tag",)) is None
    event = FetchedEvent(INDEX, "AbC123", {"x": 1})
    result = _result(["t", "_id"], ["v", "AbC123"])
    [alert] = rows_to_alerts(result, _events(event), query=query, aggregating=False, window=WINDOW, key=KEY)
    hit = {"_source": {"x": 1, "t": "v"}, "fields": UNDEFINED, "_id": "AbC123", "_index": INDEX, "_version": UNDEFINED}
    assert alert.id == object_hash(["AbC123", UNDEFINED, INDEX, KEY, hit])


def test_aggregating_rows_are_their_columns_and_their_ids_change_with_the_window() -> None:
    query = "FROM logs-* | STATS c = COUNT(*) BY host.name"
    result = _result(["c", "host.name"], [3, "h1"], [1, "h2"])
    alerts = rows_to_alerts(result, {}, query=query, aggregating=True, window=WINDOW, key=KEY)
    assert alerts[0].id == "bf1ed406fa36f6d42af825057d9124f531117b58"  # [from+to, query, key, 0]
    assert alerts[1].id == object_hash(["2025-01-01T00:00:00.000Z2025-01-01T00:05:00.000Z", query, KEY, 1])
    assert [(a.source, a.index, a.event_id, a.fields) for a in alerts] == [
        ({"c": 3, "host.name": "h1"}, "", "", None),
        ({"c": 1, "host.name": "h2"}, "", "", None),
    ]
    later = Window(WINDOW.start.replace(minute=1), WINDOW.end.replace(minute=6))
    assert rows_to_alerts(result, {}, query=query, aggregating=True, window=later, key=KEY)[0].id != alerts[0].id


@pytest.mark.parametrize("row_id", [None, ""])
def test_a_non_aggregating_row_without_id_is_hashed_like_an_aggregating_one(row_id: str | None) -> None:
    query = "FROM logs-* | KEEP host.name"
    result = _result(["host.name", "_id"], ["h1", row_id])
    [alert] = rows_to_alerts(result, {}, query=query, aggregating=False, window=WINDOW, key=KEY)
    assert alert.id == object_hash(["2025-01-01T00:00:00.000Z2025-01-01T00:05:00.000Z", query, KEY, 0])
    assert alert.source == {"host.name": "h1"}


def test_rows_of_one_id_are_kept_once_and_an_unfetched_event_leaves_the_columns() -> None:
    query = "FROM logs-* METADATA _id"
    result = _result(["n", "_id"], [1, "gone"], [2, "gone"])
    alerts = rows_to_alerts(result, {}, query=query, aggregating=False, window=WINDOW, key=KEY)
    assert [(a.row, a.source, a.index) for a in alerts] == [(0, {"n": 1}, "")]


def test_the_row_index_picks_the_event_among_indices() -> None:
    answer = {
        "hits": {
            "hits": [
                {"_index": "logs-a", "_id": "1", "_source": {"where": "a"}, "fields": {}},
                {"_index": "logs-b", "_id": "1", "_source": {"where": "b"}},
                {"_id": "no-index"},
                "not a hit",
            ]
        }
    }
    found = fetched_events(answer)
    assert [event.index for event in found["1"]] == ["logs-a", "logs-b"]
    result = _result(["_id", "_index"], ["1", "logs-b"], ["1", None])
    alerts = rows_to_alerts(
        result, found, query="FROM logs-* METADATA _id, _index", aggregating=False, window=WINDOW, key=KEY
    )
    assert [(a.source["where"], a.index) for a in alerts] == [("b", "logs-b"), ("a", "logs-a")]
