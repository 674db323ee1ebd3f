"""Each rule on its own cadence: a ``run`` pass runs only the rules that are due (read from the execution log
once), each once; ``schedule`` one job per rule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.cli import main as cli_main
from job.window import parse_timestamp
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def windows(records: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    return [(parse_timestamp(r["window"]["from"]), parse_timestamp(r["window"]["to"])) for r in records]


def test_an_hour_of_five_minute_passes_runs_each_rule_on_its_interval_without_gaps(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    # One event a minute, from well before the first window to the end of the hour.
    job_env.index_events([cred_event(T0 + timedelta(minutes=m), _id=f"m{m}") for m in range(-70, 56)])
    rules = {
        "5m": job_env.write_rule(name="Every 5 minutes", interval="5m", from_="now-6m"),
        "10m": job_env.write_rule(name="Every 10 minutes", interval="10m", from_="now-15m"),
        "60m": job_env.write_rule(name="Every hour", interval="60m", from_="now-65m"),
    }
    passes = [T0 + timedelta(minutes=5 * k) for k in range(12)]
    for moment in passes:
        assert job_env.run_due("--now", iso(moment)) == 0
    second_pass = capsys.readouterr().out
    assert "not due: 2 rules (the next, Every 10 minutes, at 2026-05-01T12:10:00.000Z)" in second_pass

    expected_runs = {"5m": passes, "10m": passes[::2], "60m": passes[:1]}
    for interval, rule_id in rules.items():
        records = job_env.executions_docs(rule_id)
        assert [r["execution"]["status"] for r in records] == ["succeeded"] * len(expected_runs[interval])
        # The cadence counts from the run's logical time (--now), recorded in execution.scheduled_at.
        assert [r["execution"]["scheduled_at"] for r in records] == [iso(m) for m in expected_runs[interval]]
        spans = windows(records)
        assert [end for _, end in spans] == expected_runs[interval]
        assert all(start <= previous_end for (start, _), (_, previous_end) in zip(spans[1:], spans, strict=False))
        # No gap: the windows cover everything from the first one's start to the last run, and the alerts
        # are exactly the events in there.
        first, last = spans[0][0], spans[-1][1]
        alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
        assert alerted == {f"m{m}" for m in range(-70, 56) if first <= T0 + timedelta(minutes=m) <= last}
    assert len(job_env.executions_docs(rules["5m"])) == 12
    assert len(job_env.executions_docs(rules["10m"])) == 6
    assert len(job_env.executions_docs(rules["60m"])) == 1


def test_all_and_rule_run_rules_that_are_not_due(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    first = job_env.write_rule(name="First")
    second = job_env.write_rule(name="Second")
    assert job_env.run_due("--now", iso(T0)) == 0  # never ran: due
    capsys.readouterr()
    assert job_env.run_due("--now", iso(T0 + timedelta(minutes=1))) == 0
    out = capsys.readouterr().out
    assert "not due: 2 rules" in out and "--all runs them now" in out
    assert len(job_env.executions_docs()) == 2  # a rule that is not due is no failure and leaves no record
    assert cli_main(["run", "--all", "--now", iso(T0 + timedelta(minutes=1))]) == 0
    assert cli_main(["run", "--rule", first, "--now", iso(T0 + timedelta(minutes=2))]) == 0
    assert "not due" not in capsys.readouterr().out
    assert len(job_env.executions_docs(first)) == 3
    assert len(job_env.executions_docs(second)) == 2
    # The forced runs count: at T0+10m30s the second rule (last run T0+1m) is due, the first (T0+2m) is not.
    assert job_env.run_due("--now", iso(T0 + timedelta(minutes=10, seconds=30))) == 0
    assert len(job_env.executions_docs(second)) == 3
    assert len(job_env.executions_docs(first)) == 3


def test_schedule_runs_each_rule_on_its_own_interval(job_env: JobEnv) -> None:
    fast = job_env.write_rule(name="Every 2 seconds", interval="2s")
    slow = job_env.write_rule(name="Every 6 seconds", interval="6s")
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1), _id="scheduled")])
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "job", "schedule"],
        env=dict(os.environ, DETECTION_LOG_FORMAT="text"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts = {fast: 0, slow: 0}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (counts[fast] < 4 or counts[slow] < 2):
            time.sleep(0.5)
            if job_env.es.indices.exists(index=job_env.executions):
                counts = {rule_id: len(job_env.executions_docs(rule_id)) for rule_id in counts}
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert process.returncode == 130, err  # stopped by SIGINT: 128 + 2
    assert "scheduled 2 rules" in err
    final = {rule_id: job_env.executions_docs(rule_id) for rule_id in counts}
    assert len(final[fast]) >= 4 and len(final[slow]) >= 2, err
    # Never more often than its own interval allows (the first run comes at start, within a tenth of it):
    # on one shared 2-second cadence the slow rule would have run about three times as often.
    assert len(final[fast]) <= elapsed / 2 + 1
    assert len(final[slow]) <= elapsed / 6 + 1
    for records in final.values():
        assert {r["execution"]["status"] for r in records} == {"succeeded"}
    assert {doc["kibana.alert.rule.rule_id"] for doc in job_env.alert_docs()} == {fast, slow}


@pytest.mark.parametrize("second", ["rule_id", "file"], ids=["the same rule_id twice", "its rule_id and its file"])
def test_a_rule_named_twice_runs_once(job_env: JobEnv, second: str) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(T0 - timedelta(minutes=1, seconds=n), _id=f"e{n}") for n in range(5)])
    again = rule_id if second == "rule_id" else str(job_env.rules_dir / f"{rule_id}.toml")
    assert job_env.run("--rule", rule_id, "--rule", again, "--now", iso(T0)) == 0
    counts = [
        (doc["metrics"]["alerts_created"], doc["metrics"]["duplicates_skipped"])
        for doc in job_env.executions_docs(rule_id)
    ]
    assert counts == [(5, 0)]  # one run, which created every alert
    assert len(job_env.alert_docs(rule_id)) == 5


def test_a_pass_reads_the_execution_log_once(job_env: JobEnv, es_url: str) -> None:
    """``run`` without ``--all`` needs the log for two things: which rules are due, and where each rule's window
    starts. One search of the log serves both, in a pass that finds the log empty and in one that does not."""
    for n in range(3):
        job_env.write_rule(name=f"Rule {n}")
    job_env.index_events([cred_event(T0 - timedelta(minutes=1))])
    searches = rf"^/{job_env.executions}[^/]*/_search"
    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        per_pass = []
        for now in (T0, T0 + timedelta(minutes=10)):  # every rule is due at both
            before = proxy.count(searches)
            assert job_env.run_due("--now", iso(now)) == 0
            per_pass.append(proxy.count(searches) - before)
    assert len(job_env.executions_docs()) == 6
    assert per_pass == [1, 1]
