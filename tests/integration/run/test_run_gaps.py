"""Downtime: the next run catches up instead of leaving a blind spot; beyond the limit, a gap is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_two_hours_down_then_every_event_is_alerted_and_no_gap(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    assert job_env.run("--now", iso(T0)) == 0
    # Events every 5 minutes during the two hours the job was down.
    job_env.index_events([cred_event(T0 + timedelta(minutes=5 * i), _id=f"e{i}") for i in range(1, 25)])
    later = T0 + timedelta(hours=2)
    assert job_env.run("--now", iso(later)) == 0
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {f"e{i}" for i in range(1, 25)}
    second = job_env.executions_docs(rule_id)[-1]
    assert second["execution"]["status"] == "succeeded"
    assert second["window"]["from"] == iso(T0 - timedelta(minutes=5))
    assert "execution_gap_duration_s" not in second["metrics"]


def test_down_longer_than_the_catch_up_limit_records_the_gap(job_env: JobEnv) -> None:
    job_env.set(max_catchup="1h")
    rule_id = job_env.write_rule()
    assert job_env.run("--now", iso(T0)) == 0
    later = T0 + timedelta(hours=3)
    job_env.index_events(
        [
            cred_event(T0 + timedelta(minutes=30), _id="in-the-gap"),
            cred_event(later - timedelta(minutes=50), _id="caught-up"),
        ]
    )
    assert job_env.run("--now", iso(later)) == 0
    second = job_env.executions_docs(rule_id)[-1]
    assert second["execution"]["status"] == "partial failure"
    earliest = later - timedelta(minutes=15) - timedelta(hours=1)
    assert second["window"]["from"] == iso(earliest)
    gap_seconds = (earliest - T0).total_seconds()
    assert second["metrics"]["execution_gap_duration_s"] == gap_seconds
    assert second["metrics"]["gap_range"] == {"gte": iso(T0), "lte": iso(earliest)}
    assert second["execution"]["message"].startswith(f"2 hours ({int(gap_seconds * 1000)}ms) were not queried")
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {"caught-up"}


def test_a_failed_run_leaves_no_blind_spot(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    assert job_env.run("--now", iso(T0)) == 0
    job_env.index_events([cred_event(T0 + timedelta(minutes=7), _id="during-failure")])
    # The run at T0+10m fails (its query does not parse): nothing is searched, nothing advances.
    (job_env.rules_dir / f"{rule_id}.toml").write_text(
        (job_env.rules_dir / f"{rule_id}.toml").read_text().replace("cred_theft_event", "cred_theft_event)")
    )
    job_env.run("--now", iso(T0 + timedelta(minutes=10)))
    job_env.write_rule(rule_id=rule_id)
    # Two intervals later the window reaches back to T0 - 5m, covering the failed run's range.
    assert job_env.run("--now", iso(T0 + timedelta(minutes=30))) == 0
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {"during-failure"}


def test_a_rule_refused_on_its_first_runs_searches_their_windows_once_fixed(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(query="event.kind:(alert or")  # does not validate
    job_env.index_events([cred_event(T0 - timedelta(minutes=10), _id="while-refused")])
    assert job_env.run("--now", iso(T0)) == 1
    [refused] = job_env.executions_docs(rule_id)
    assert refused["execution"]["status"] == "failed"
    assert refused["window"]["from"] == iso(T0 - timedelta(minutes=15))  # the window it should have searched
    job_env.write_rule(rule_id=rule_id)
    assert job_env.run("--now", iso(T0 + timedelta(minutes=20))) == 0
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["while-refused"]
    assert job_env.executions_docs(rule_id)[-1]["window"]["from"] == iso(T0 - timedelta(minutes=15))
