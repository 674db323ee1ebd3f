"""Whole ES|QL rule runs on the 8.19 engine, through ``detection-job run``: pages of ``max_signals + 1`` rows
with the events already alerted on excluded, within a run and across runs (kept in the execution record);
overlapping windows and a run that lost its state converge on the same alerts; MV_EXPAND rows over pages;
aggregating rules; the timestamp override's fallback; exceptions on the source events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from job.ruletypes.esql import errors
from tests.integration.esql.conftest import EsqlJob, state
from tests.integration.run.conftest import iso

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _at(minutes_before: float, now: datetime = T0) -> str:
    return iso(now - timedelta(minutes=minutes_before))


def _logins(n: int) -> list[dict[str, Any]]:
    """``n`` logins a minute apart, the last a minute before T0, ids e0 (earliest) ... e<n-1>."""
    return [{"@timestamp": _at(n - i), "event": {"action": "login"}, "user": {"name": f"u{i}"}} for i in range(n)]


def _run(job: EsqlJob, now: datetime = T0) -> None:
    assert job.run("--now", iso(now)) in (0, 1)


def _events_alerted(job: EsqlJob, rule_id: str) -> list[str]:
    return sorted(alert["kibana.alert.ancestors"][0]["id"] for alert in job.alerts(rule_id))


def test_pages_and_runs_exclude_the_events_already_alerted_on(esql_job: EsqlJob) -> None:
    esql_job.index(_logins(7))
    rule_id = esql_job.rule(
        'FROM {events} METADATA _id | WHERE event.action == "login" | SORT @timestamp', max_signals=3
    )
    _run(esql_job)
    first = esql_job.last(rule_id)
    assert first["metrics"]["alerts_created"] == 3 and first["execution"]["warnings"] == [errors.MAX_SIGNALS_WARNING]
    # the page's last event is not excluded (its alert was cut by the cap, so it must come back)
    assert [entry["id"] for entry in state(first)["excludedDocuments"][esql_job.events_index()]] == ["e0", "e1", "e2"]
    # a capped run vouches for nothing past its window's start: the next one searches the window again
    assert first["window"]["searched_to"] == first["window"]["from"]
    _run(esql_job, T0 + timedelta(minutes=1))
    _run(esql_job, T0 + timedelta(minutes=2))
    assert _events_alerted(esql_job, rule_id) == [f"e{i}" for i in range(7)]  # each event once, none lost
    second, third = esql_job.records(rule_id)[-2:]
    assert second["metrics"]["hits"] == 4 and second["metrics"]["duplicates_skipped"] == 0
    assert third["metrics"]["hits"] == 1 and third["execution"]["status"] == "succeeded"
    assert state(third)["lastQuery"] is None


def test_overlapping_windows_and_a_lost_state_converge_on_the_same_alerts(esql_job: EsqlJob) -> None:
    esql_job.index(_logins(10))
    rule_id = esql_job.rule("FROM {events} METADATA _id", from_="now-6m", interval="3m")
    _run(esql_job, T0 - timedelta(minutes=4))  # window T0-10m .. T0-4m: e0..e6
    _run(esql_job)  # T0-7m .. T0, three minutes of look-back: its state keeps it off e3..e6
    first, second = esql_job.records(rule_id)
    assert (first["metrics"]["alerts_created"], second["metrics"]["alerts_created"]) == (7, 3)
    assert second["metrics"]["hits"] == 3 and second["metrics"]["duplicates_skipped"] == 0
    alerts = {alert["_id"] for alert in esql_job.alerts(rule_id)}
    assert _events_alerted(esql_job, rule_id) == [f"e{i}" for i in range(10)]
    # a run whose state was lost (its log gone: the plain window T0-6m .. T0): e4..e9 again, under the same
    # ids, which the writer drops
    esql_job.set(executions_index=f"{esql_job.prefix}-executions-2")
    _run(esql_job)
    again = _last_in(esql_job, rule_id)
    assert again["metrics"]["alerts_created"] == 0 and again["metrics"]["duplicates_skipped"] == 6
    assert {alert["_id"] for alert in esql_job.alerts(rule_id)} == alerts


def _last_in(job: EsqlJob, rule_id: str) -> dict[str, Any]:
    index = f"{job.prefix}-executions-2"
    job.es.indices.refresh(index=index)
    hits = job.es.search(index=index, query={"term": {"rule.rule_id": rule_id}})["hits"]["hits"]
    return dict(hits[-1]["_source"])


def test_mv_expand_rows_over_pages_and_runs(esql_job: EsqlJob) -> None:
    esql_job.index(
        [
            {"@timestamp": _at(2), "process": {"args": ["a", "b", "c"]}},
            {"@timestamp": _at(1), "process": {"args": ["d", "e", "f"]}},
        ]
    )
    query = "FROM {events} METADATA _id | MV_EXPAND process.args | SORT @timestamp, process.args"
    rule_id = esql_job.rule(query, max_signals=5)
    _run(esql_job)
    first = esql_job.last(rule_id)
    assert first["metrics"]["alerts_created"] == 5
    assert state(first)["lastQuery"] == query.format(events=esql_job.events_pattern)
    # e0 is excluded, e1 (behind the last row) is not: its row "f" comes on the next run
    assert [entry["id"] for entry in state(first)["excludedDocuments"][esql_job.events_index()]] == ["e0"]
    _run(esql_job, T0 + timedelta(minutes=1))
    values = sorted(alert["process.args"] for alert in esql_job.alerts(rule_id))
    assert values == ["a", "b", "c", "d", "e", "f"]  # one alert per row, each once


def test_an_aggregating_rule_alerts_once_per_row_each_run(esql_job: EsqlJob) -> None:
    esql_job.index([*_logins(5), {"@timestamp": _at(1), "event": {"action": "login"}, "user": {"name": "u0"}}])
    rule_id = esql_job.rule("FROM {events} | STATS logins = COUNT(*) BY user.name | WHERE logins > 1")
    _run(esql_job)
    _run(esql_job, T0 + timedelta(minutes=1))
    alerts = esql_job.alerts(rule_id)
    assert [(alert["user.name"], alert["logins"]) for alert in alerts] == [("u0", 2), ("u0", 2)]
    assert len({alert["_id"] for alert in alerts}) == 2  # a new id each window: Kibana never dedupes them
    assert state(esql_job.last(rule_id)) == {"excludedDocuments": {}, "lastQuery": None}


def test_the_timestamp_override_falls_back_to_timestamp(esql_job: EsqlJob) -> None:
    esql_job.index(
        [
            {"@timestamp": _at(-50), "event": {"ingested": _at(5)}},  # override inside the window
            {"@timestamp": _at(5), "event": {"ingested": _at(-50)}},  # override outside
            {"@timestamp": _at(6)},  # no override: its @timestamp counts
            {"@timestamp": _at(-60)},
        ]
    )
    both = esql_job.rule("FROM {events} METADATA _id", extra='timestamp_override = "event.ingested"')
    only = esql_job.rule(
        "FROM {events} METADATA _id",
        extra='timestamp_override = "event.ingested"\ntimestamp_override_fallback_disabled = true',
    )
    _run(esql_job)
    assert _events_alerted(esql_job, both) == ["e0", "e2"]
    assert _events_alerted(esql_job, only) == ["e0"]
    # the excluded events' timestamps are the override's; an event without it has none and is not kept past
    # this run (Kibana keeps only entries with a timestamp): the next run finds it again, under the same id
    entries = state(esql_job.last(both))["excludedDocuments"][esql_job.events_index()]
    kept = {entry["id"]: entry["timestamp"] for entry in entries}
    assert kept == {"e0": _at(5), "e2": None}


EXCEPTION = """
[[rule.exceptions]]
item_id = "u1"
name = "User u1"

[[rule.exceptions.entries]]
field = "{field}"
type = "match"
value = "u1"
"""


def test_exceptions_filter_the_source_events_not_computed_columns(esql_job: EsqlJob) -> None:
    esql_job.index(_logins(3))
    on_events = esql_job.rule("FROM {events} METADATA _id", extra=EXCEPTION.format(field="user.name"))
    renamed = esql_job.rule("FROM {events} METADATA _id | RENAME user.name AS who", extra=EXCEPTION.format(field="who"))
    _run(esql_job)
    assert _events_alerted(esql_job, on_events) == ["e0", "e2"]
    assert _events_alerted(esql_job, renamed) == ["e0", "e1", "e2"]  # "who" is no field of the events
    [alert] = [alert for alert in esql_job.alerts(on_events) if alert["kibana.alert.ancestors"][0]["id"] == "e0"]
    assert alert["kibana.alert.rule.exception_item_ids"] == ["u1"]


def test_a_row_the_cap_cut_is_not_excluded_so_the_next_run_alerts_it(esql_job: EsqlJob) -> None:
    """Kibana excludes every fetched event but the last row's (all of them once the search is exhausted), also
    those whose rows the cap cut: past the look-back they are never alerted. Here only the events whose rows
    were handled are excluded."""
    esql_job.index(_logins(6))  # e0 .. e5, one a minute, e5 a minute before T0
    query = "FROM {events} METADATA _id | SORT @timestamp"
    rule_id = esql_job.rule(query, from_="now-3m", max_signals=2)
    _run(esql_job, T0 - timedelta(minutes=3))  # window T0-6m .. T0-3m: e0 .. e3, the cap writes e0 and e1
    # a run whose state was lost (a new log): page 1 has e0 .. e3, two duplicates, e2 and e3 written; page 2
    # (the last) has e4 and e5, and the cap leaves room for e4 only
    esql_job.set(executions_index=f"{esql_job.prefix}-executions-2")
    esql_job.rule(query, rule_id=rule_id, from_="now-10m", max_signals=3)
    _run(esql_job)
    assert _events_alerted(esql_job, rule_id) == ["e0", "e1", "e2", "e3", "e4"]
    [capped] = _records_in(esql_job, rule_id)
    assert capped["execution"]["warnings"] == [errors.MAX_SIGNALS_WARNING]
    kept = {entry["id"] for entry in state(capped)["excludedDocuments"][esql_job.events_index()]}
    assert kept == {"e0", "e1", "e2", "e3", "e4"}  # e5's row was cut: the next run must see it
    _run(esql_job, T0 + timedelta(minutes=1))  # the window again, from the capped run's start
    assert _events_alerted(esql_job, rule_id) == [f"e{i}" for i in range(6)]


def _records_in(job: EsqlJob, rule_id: str) -> list[dict[str, Any]]:
    index = f"{job.prefix}-executions-2"
    job.es.indices.refresh(index=index)
    hits = job.es.search(index=index, query={"term": {"rule.rule_id": rule_id}}, sort=[{"execution.start": "asc"}])
    return [dict(hit["_source"]) for hit in hits["hits"]["hits"]][:1]
