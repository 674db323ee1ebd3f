"""Whole ES|QL rule runs on the 8.19 engine, paged as Kibana pages them: excluded events across pages and runs,
overlapping windows and a run whose state was lost converge on the exact alert set; aggregating rules, the
timestamp override's fallback, exceptions, and rows merged with their events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from job.ruletypes.esql import errors
from job.search.clauses import TimestampFields
from job.window import Window
from tests.integration.esql.conftest import run_rule

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _window(start: float, end: float) -> Window:
    return Window(T0 + timedelta(minutes=start), T0 + timedelta(minutes=end))


def _logins(n: int) -> list[dict[str, Any]]:
    return [{"@timestamp": _at(i), "event": {"action": "login"}, "user": {"name": f"u{i}"}} for i in range(n)]


def test_pages_and_runs_exclude_events_already_alerted_on(esql: Elasticsearch, events: Callable[..., str]) -> None:
    index = events(_logins(7))
    query = f'FROM {index} METADATA _id | WHERE event.action == "login"'
    window = _window(0, 10)
    existing: set[str] = set()
    first = run_rule(esql, query, window, max_signals=3, existing=existing)
    assert len(first.alerts) == 3 and first.warnings == [errors.MAX_SIGNALS_WARNING]
    # the page's last event is not excluded: its alert was not written (the cap), so it must come back
    kept = {entry["id"] for entry in first.state["excludedDocuments"][index]}
    assert kept == {alert.event_id for alert in first.alerts}
    second = run_rule(esql, query, window, max_signals=3, state=first.state, existing=existing)
    third = run_rule(esql, query, window, max_signals=3, state=second.state, existing=existing)
    events_alerted = [a.event_id for run in (first, second, third) for a in run.alerts]
    assert sorted(events_alerted) == [f"e{i}" for i in range(7)]  # each event once, none lost
    assert third.warnings == [] and third.pages == 1
    assert second.state["lastQuery"] is None


def test_overlapping_windows_and_a_lost_state_converge_on_the_same_alerts(
    esql: Elasticsearch, events: Callable[..., str]
) -> None:
    index = events(_logins(10))
    query = f"FROM {index} METADATA _id"
    existing: set[str] = set()
    a = run_rule(esql, query, _window(0, 6), max_signals=100, existing=existing)
    # the next run overlaps the first by three minutes; its state keeps it off the events already alerted on
    b = run_rule(esql, query, _window(3, 10), max_signals=100, state=a.state, existing=existing)
    assert {x.event_id for x in a.alerts} == {f"e{i}" for i in range(7)}
    assert {x.event_id for x in b.alerts} == {"e7", "e8", "e9"}
    excluded_in_b = {entry["id"] for entry in b.state["excludedDocuments"][index]}
    assert excluded_in_b >= {"e3", "e4", "e5", "e6"}  # timestamps inside b's window are kept
    # a run killed before its state was saved: the next run starts without state, finds the same events,
    # and gets the same ids, which the writer's pre-check drops
    again = run_rule(esql, query, _window(0, 10), max_signals=100, existing=existing)
    assert again.alerts == []
    fresh: set[str] = set()
    replay = run_rule(esql, query, _window(0, 10), max_signals=100, existing=fresh)
    assert {x.id for x in replay.alerts} == {x.id for x in a.alerts + b.alerts}


def test_mv_expand_rows_over_pages_and_runs(esql: Elasticsearch, events: Callable[..., str]) -> None:
    index = events(
        [
            {"@timestamp": _at(1), "process": {"args": ["a", "b", "c"]}},
            {"@timestamp": _at(2), "process": {"args": ["d", "e", "f"]}},
        ]
    )
    query = f"FROM {index} METADATA _id | MV_EXPAND process.args | SORT @timestamp, process.args"
    existing: set[str] = set()
    first = run_rule(esql, query, _window(0, 10), max_signals=5, existing=existing)
    assert [a.source["process.args"] for a in first.alerts] == ["a", "b", "c", "d", "e"]
    assert first.state["lastQuery"] == query
    # e0 is excluded, e1 (behind the last row) is not: its row "f" comes on the next run
    assert [entry["id"] for entry in first.state["excludedDocuments"][index]] == ["e0"]
    second = run_rule(esql, query, _window(0, 10), max_signals=5, state=first.state, existing=existing)
    assert [a.source["process.args"] for a in second.alerts] == ["f"]
    assert len({a.id for a in first.alerts + second.alerts}) == 6
    # a changed MV_EXPAND query drops the state
    changed = run_rule(esql, query + " | LIMIT 100", _window(0, 10), max_signals=10, state=second.state)
    assert len(changed.alerts) == 6


def test_aggregating_rule_one_alert_per_row_re_alerting_each_run(
    esql: Elasticsearch, events: Callable[..., str]
) -> None:
    index = events(_logins(5) + [{"@timestamp": _at(1), "event": {"action": "login"}, "user": {"name": "u0"}}])
    query = f"FROM {index} | STATS logins = COUNT(*) BY user.name | WHERE logins > 1"
    first = run_rule(esql, query, _window(0, 10), max_signals=10)
    assert [(a.source, a.event_id, a.index) for a in first.alerts] == [({"logins": 2, "user.name": "u0"}, "", "")]
    assert first.state["excludedDocuments"] == {}
    later = run_rule(esql, query, _window(0, 11), max_signals=10, state=first.state)
    assert later.alerts[0].source == first.alerts[0].source and later.alerts[0].id != first.alerts[0].id


def test_the_timestamp_override_falls_back_to_timestamp(esql: Elasticsearch, events: Callable[..., str]) -> None:
    index = events(
        [
            {"@timestamp": _at(50), "event": {"ingested": _at(5)}},  # override inside
            {"@timestamp": _at(5), "event": {"ingested": _at(50)}},  # override outside
            {"@timestamp": _at(6)},  # no override: its @timestamp counts
            {"@timestamp": _at(60)},
        ]
    )
    query = f"FROM {index} METADATA _id"
    both = run_rule(
        esql, query, _window(0, 10), max_signals=10, timestamps=TimestampFields("event.ingested", "@timestamp")
    )
    assert sorted(a.event_id for a in both.alerts) == ["e0", "e2"]
    only = run_rule(esql, query, _window(0, 10), max_signals=10, timestamps=TimestampFields("event.ingested", None))
    assert [a.event_id for a in only.alerts] == ["e0"]
    # the excluded events' timestamps are the override's; an event without it has none, and is not kept past
    # this run (Kibana keeps only entries with a timestamp): the next run finds it again, with the same id
    kept = {entry["id"]: entry["timestamp"] for entry in both.state["excludedDocuments"][index]}
    assert kept == {"e0": "2025-01-01T00:05:00.000Z", "e2": None}


def test_exceptions_filter_source_events_not_computed_columns(esql: Elasticsearch, events: Callable[..., str]) -> None:
    index = events(_logins(3))
    exception = {"bool": {"should": [{"term": {"user.name": "u1"}}], "minimum_should_match": 1}}
    query = f"FROM {index} METADATA _id"
    filtered = run_rule(esql, query, _window(0, 10), max_signals=10, exception_clause=exception)
    assert sorted(a.event_id for a in filtered.alerts) == ["e0", "e2"]
    computed = {"bool": {"should": [{"term": {"who": "u1"}}], "minimum_should_match": 1}}
    renamed = run_rule(
        esql, f"{query} | RENAME user.name AS who", _window(0, 10), max_signals=10, exception_clause=computed
    )
    assert len(renamed.alerts) == 3  # "who" is no field of the events: the exception matches nothing


def test_a_row_is_merged_into_its_whole_event(esql: Elasticsearch, events: Callable[..., str]) -> None:
    index = events([{"@timestamp": _at(1), "agent": {"name": "test-1", "version": "8"}, "message": "m"}])
    kept = f"FROM {index} METADATA _id | EVAL agent.name = TO_UPPER(agent.name) | KEEP _id, agent.name"
    [alert] = run_rule(esql, kept, _window(0, 10), max_signals=10).alerts
    # Kibana's FTR shape: the column as a flat key, the rest of the event as it was
    assert alert.source == {"@timestamp": _at(1), "agent": {"version": "8"}, "message": "m", "agent.name": "TEST-1"}
    assert alert.index == index and alert.event_id == "e0"
    assert alert.fields is not None and alert.fields["agent.name"] == ["test-1"]  # the event's own fields
    # without KEEP every column is set flat (a date in ES|QL's form); a DROPped field stays from the event
    everything = f"FROM {index} METADATA _id | EVAL agent.name = TO_UPPER(agent.name) | DROP message"
    [alert] = run_rule(esql, everything, _window(0, 10), max_signals=10).alerts
    assert alert.source == {
        "message": "m",
        "@timestamp": "2025-01-01T00:01:00.000Z",
        "agent.version": "8",
        "agent.name": "TEST-1",
    }
