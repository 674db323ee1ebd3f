"""Pure parts of status, alerts and the alert-index lifecycle: health, tables, fields, updates, what is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.triage import field_value, workflow_update
from job.commands.status import RuleStatus as StatusRow
from job.commands.status import as_json, assess, table_row
from job.execlog.last_runs import NEVER_RAN, LastRuns
from job.indices.rollover import due_for_deletion, rollover_conditions
from job.text.table import Column, clip, human_duration, printable, render
from tests.alert_samples import seed_rule

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def record(status: str, minutes_ago: float) -> dict[str, Any]:
    start = NOW - timedelta(minutes=minutes_ago)
    end = start + timedelta(seconds=2) if status != "running" else None
    return {
        "rule": {"rule_id": "r1", "name": "Rule one"},
        "execution": {
            "uuid": f"{status}-{minutes_ago}",
            "status": status,
            "start": start.isoformat(),
            "end": end.isoformat() if end else None,
            "warnings": ["w"] if status == "partial failure" else [],
        },
        "window": {"from": (start - timedelta(minutes=15)).isoformat(), "to": start.isoformat()},
        "metrics": {"alerts_created": 3, "execution_gap_duration_s": 0},
    }


def history(
    latest: dict[str, Any] | None, completed: dict[str, Any] | None, success_minutes_ago: float | None
) -> LastRuns:
    success = NOW - timedelta(minutes=success_minutes_ago) if success_minutes_ago is not None else None
    return LastRuns(latest, completed, success)


@pytest.mark.parametrize(
    ("rule_changes", "rule_history", "health"),
    [
        ({}, NEVER_RAN, "never ran"),
        ({}, history(record("succeeded", 5), record("succeeded", 5), 5), "ok"),
        ({}, history(record("partial failure", 5), record("partial failure", 5), 5), "ok"),
        ({}, history(record("failed", 5), record("failed", 5), 30), "failed"),
        ({}, history(record("failed", 5), record("failed", 5), None), "failed"),
        # interval 10m: a success older than 20 minutes is stale
        ({}, history(record("succeeded", 25), record("succeeded", 25), 25), "stale"),
        ({}, history(record("succeeded", 19), record("succeeded", 19), 19), "ok"),
        ({"interval": "1h"}, history(record("succeeded", 100), record("succeeded", 100), 100), "ok"),
        # a running record is shown, but judged by the last completed execution
        ({}, history(record("running", 1), record("succeeded", 11), 11), "ok"),
        ({}, history(record("running", 1), record("failed", 11), 40), "failed"),
        ({}, history(record("running", 1), record("succeeded", 40), 40), "stale"),
        ({}, history(record("running", 1), None, None), "running"),
        ({"enabled": False}, NEVER_RAN, "disabled"),
        ({"type": "threat_match", "threat_index": ["ti-*"]}, NEVER_RAN, "unsupported"),
    ],
)
def test_rule_health(rule_changes: dict[str, Any], rule_history: LastRuns, health: str) -> None:
    rule = seed_rule(interval=rule_changes.pop("interval", "10m"), **rule_changes)
    assert assess(rule, rule_history, NOW) == health
    assert StatusRow(rule, rule_history, health).healthy == (health not in ("failed", "stale"))


def test_status_view_shows_the_running_record_and_the_last_completed_one() -> None:
    rule = seed_rule(interval="10m")
    rule_history = history(record("running", 1), record("partial failure", 11), 11)
    view = as_json(StatusRow(rule, rule_history, "ok"))
    assert view["running"]["status"] == "running"
    assert view["last_execution"]["status"] == "partial failure"
    assert view["last_execution"]["duration_s"] == 2.0
    assert view["last_execution"]["warnings"] == 1
    assert view["last_success"] == "2026-05-01T11:49:00.000Z"
    row = table_row(view)
    assert row[:3] == ["ok", "running", "2026-05-01T11:59:00Z"]
    assert row[3] == "2026-05-01T11:34:00Z .. 2026-05-01T11:49:00Z"
    assert row[4:8] == [3, "2s", "0s", 1]


def test_status_view_of_a_rule_that_never_ran() -> None:
    view = as_json(StatusRow(seed_rule(), NEVER_RAN, "never ran"))
    assert view["last_execution"] is None and view["running"] is None and view["last_success"] is None
    assert table_row(view)[:9] == ["never ran", "-", "-", "-", "-", "-", "-", "-", "-"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "0.2s"), (2, "2s"), (12.4, "12s"), (185, "3m05s"), (7800, "2h10m"), (273600, "3d04h")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [("plain", "plain"), ("a\nb", "a\\nb"), ("\x1b[31mred", "\\x1b[31mred"), ("tab\there", "tab\\there"), ("é", "é")],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_render_clips_and_aligns() -> None:
    table = render((Column("name", 5), Column("n", 3, right=True)), [["abcdefgh", 7], ["x\ny", None]])
    assert table.splitlines() == ["name   n", "abcd…  7", "x\\ny"]
    assert clip("abc", 3) == "abc"


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ({"host.name": "ws-1"}, "host.name", "ws-1"),
        ({"host": {"name": "ws-1"}}, "host.name", "ws-1"),
        ({"kibana.alert.rule.name": "R"}, "kibana.alert.rule.name", "R"),
        ({"kibana.alert": {"rule.name": "R"}}, "kibana.alert.rule.name", "R"),
        ({"kibana": {"alert": {"rule": {"name": "R"}}}}, "kibana.alert.rule.name", "R"),
        ({"host": "not an object"}, "host.name", None),
        ({"user": {"name": ["a", "b"]}}, "user.name", ["a", "b"]),
        ({}, "user.name", None),
    ],
)
def test_field_value_reads_dotted_and_nested_sources(source: dict[str, Any], path: str, expected: Any) -> None:
    assert field_value(source, path) == expected


@pytest.mark.parametrize(
    ("status", "reason", "kept_reason"),
    [
        ("closed", "false_positive", "false_positive"),
        ("closed", None, None),
        ("acknowledged", None, None),
        ("open", None, None),
    ],
)
def test_workflow_update_is_kibanas_status_change(status: Any, reason: str | None, kept_reason: str | None) -> None:
    assert workflow_update(status, reason, NOW) == {
        "kibana.alert.workflow_status": status,
        "kibana.alert.workflow_status_updated_at": "2026-05-01T12:00:00.000Z",
        "kibana.alert.workflow_user": None,
        "kibana.alert.workflow_reason": kept_reason,
    }


def test_retention_deletes_what_is_older_than_the_cutoff() -> None:
    cutoff = NOW - timedelta(days=30)
    newest = {
        "a-000001": NOW - timedelta(days=40),
        "a-000002": NOW - timedelta(days=10),
        "a-000003": None,
        "a-000004": None,
    }
    created = {
        "a-000001": NOW - timedelta(days=60),
        "a-000002": NOW - timedelta(days=50),
        "a-000003": NOW - timedelta(days=31),
        "a-000004": NOW - timedelta(days=1),
    }
    assert due_for_deletion(newest, created, cutoff) == ["a-000001", "a-000003"]


def test_an_empty_write_index_is_never_rolled_over() -> None:
    assert rollover_conditions((("max_age", "30d"),)) == {"max_age": "30d", "min_docs": 1}
    assert rollover_conditions((("max_docs", 5), ("min_docs", 3))) == {"max_docs": 5, "min_docs": 3}
