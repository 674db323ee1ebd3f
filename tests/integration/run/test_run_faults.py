"""Elasticsearch hiccups, through a real proxy in front of the real node: retries, rejections, a kill, and
writes that Elasticsearch applies while the job has given up waiting for the answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from job.cli import main as cli_main
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso
from tests.integration.run.test_run_suppression import ONE_HOUR, PER_EXECUTION

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def proxy(job_env: JobEnv, es_url: str) -> FaultProxy:
    with FaultProxy(es_url) as running:
        job_env.set(es_hosts=running.url, retry_attempts="8", retry_max_seconds="60")
        yield running


@pytest.mark.parametrize("status", [429, 503, 502, 504, None])
def test_transient_errors_are_retried_and_the_run_succeeds(
    job_env: JobEnv, proxy: FaultProxy, status: int | None
) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id=f"e{i}") for i in range(5)])
    proxy.fail(r"^/_msearch", times=2, status=status)  # the search of the rules' first pages
    proxy.fail(r"^/_bulk", times=2, status=status)  # the alerts
    proxy.fail(r"/_field_caps", times=1, status=status)
    assert job_env.run("--now", iso(NOW)) == 0
    assert proxy.state.injected == 5
    assert len(job_env.alert_docs(rule_id)) == 5
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "succeeded"


def test_retries_are_bounded_and_the_rule_fails(job_env: JobEnv, proxy: FaultProxy) -> None:
    job_env.set(retry_attempts="3")
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1))])
    proxy.fail(r"^/_m?search", times=1000, status=503)
    assert job_env.run("--now", iso(NOW)) == 1
    assert proxy.count(r"^/_m?search") == 3  # three attempts, then the rule fails; no client-side retries on top
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "failed"
    assert "503" in execution["execution"]["message"]
    assert execution["window"]["searched_to"] is None


def test_bulk_items_rejected_with_429_are_retried(job_env: JobEnv, proxy: FaultProxy) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1)) for _ in range(7)])
    proxy.reject_bulk_items(times=2)
    assert job_env.run("--now", iso(NOW)) == 0
    assert len(job_env.alert_docs(rule_id)) == 7
    [execution] = job_env.executions_docs(rule_id)
    assert execution["metrics"]["errors"] == 0


def test_a_refused_alert_is_dead_lettered_and_the_window_advances(
    job_env: JobEnv, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="rejected-event")])
    proxy.reject_bulk_items(times=1, status=400, kind="mapper_parsing_exception")
    assert job_env.run("--now", iso(NOW)) == 1  # dead letters make the exit code 1
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert execution["metrics"]["errors"] == 1
    assert execution["metrics"]["dead_lettered"] == 1
    assert execution["window"]["searched_to"] == iso(NOW)
    assert "rejected-event" in execution["execution"]["message"]
    assert "rejected-event" in caplog.text
    # The next run does not try it again (and does not report it again): the dead-letter entry is found.
    assert job_env.run("--now", iso(NOW + timedelta(minutes=1))) == 0
    assert job_env.executions_docs(rule_id)[-1]["metrics"]["dead_letters_skipped"] == 1
    assert job_env.alert_docs(rule_id) == []
    capsys.readouterr()
    assert cli_main(["deadletter", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{job_env.events_index()}/rejected-event" in listed
    assert "HTTP 400 mapper_parsing_exception: injected by the test proxy" in listed
    assert cli_main(["deadletter", "retry"]) == 0
    assert "1 alerts created, 0 already existed, 0 entries still failing" in capsys.readouterr().out
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["rejected-event"]
    assert job_env.es.count(index=job_env.dead_letters)["count"] == 0


def test_bulk_items_still_rejected_with_429_fail_the_run_and_the_next_run_writes_them(
    job_env: JobEnv, proxy: FaultProxy
) -> None:
    job_env.set(retry_attempts="2")
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="busy")])
    proxy.reject_bulk_items(times=2)
    assert job_env.run("--now", iso(NOW)) == 1
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "failed"
    assert "rejected with HTTP 429" in execution["execution"]["message"]
    assert execution["window"]["searched_to"] is None
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["busy"]


def test_killed_between_two_bulk_pages_then_rerun_gives_the_exact_set(job_env: JobEnv, es_url: str) -> None:
    job_env.set(page_size="50")
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=2), _id=f"e{i}") for i in range(200)])
    env = dict(os.environ)
    started: list[subprocess.Popen[bytes]] = []
    with FaultProxy(es_url) as proxy:
        env["DETECTION_ES_HOSTS"] = proxy.url
        # The second bulk request kills the job before it is forwarded: exactly one page was written.
        proxy.on_request(r"^/_bulk", after=1, action=lambda: os.kill(started[0].pid, signal.SIGKILL))
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "job", "run", "--now", iso(NOW)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        assert started[0].wait(timeout=120) == -signal.SIGKILL
    assert len(job_env.alert_docs(rule_id)) == 50
    [killed] = job_env.executions_docs(rule_id)
    assert killed["execution"]["status"] == "running"  # written before the search began
    assert killed["window"]["from"] == iso(NOW - timedelta(minutes=15))
    assert job_env.run("--now", iso(NOW)) == 0
    alerted = sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))
    assert alerted == sorted(f"e{i}" for i in range(200))
    interrupted, rerun = job_env.executions_docs(rule_id)
    assert interrupted["execution"]["uuid"] == killed["execution"]["uuid"]
    assert interrupted["execution"]["status"] == "failed"
    assert interrupted["execution"]["message"] == "Run interrupted: no completion was recorded"
    assert interrupted["execution"]["interrupted_by"] == rerun["execution"]["uuid"]
    assert rerun["execution"]["status"] == "succeeded"


@dataclass(frozen=True)
class LateBulk:
    """A run whose first alerts bulk request Elasticsearch applies while the job times out and retries it."""

    extra: str  # of the rule file
    max_signals: int
    before: int  # events alerted by a clean run before (the alert a suppressed run then updates)
    events: int  # new events of the faulted run
    metrics: dict[str, int]  # of the faulted run's record


LATE_BULKS = {
    # 250 events paged: the first request holds the first 100 alerts, which is the cap.
    "capped run": LateBulk("", 100, 0, 250, {"alerts_created": 100, "duplicates_skipped": 0}),
    # 20 events read whole by the first page, written with the pass's other small runs.
    "small run": LateBulk("", 10000, 0, 20, {"alerts_created": 20, "duplicates_skipped": 0}),
    "suppressed, new alert": LateBulk(
        PER_EXECUTION,
        100,
        0,
        3,
        {"alerts_created": 1, "duplicates_skipped": 0, "suppression_groups": 1, "suppressed_docs": 2},
    ),
    "suppressed, updated alert": LateBulk(
        ONE_HOUR,
        100,
        1,
        2,
        {"alerts_created": 0, "alerts_updated": 1, "suppression_groups": 1, "suppressed_docs": 2},
    ),
}


@pytest.mark.parametrize("case", LATE_BULKS.values(), ids=LATE_BULKS.keys())
def test_a_bulk_applied_after_the_client_gave_up_counts_as_created_by_the_run(
    job_env: JobEnv, proxy: FaultProxy, case: LateBulk
) -> None:
    """Elasticsearch applies the alerts' bulk request; its answer comes after the job's request timeout, so the
    job retries and gets 409 for every alert it wrote itself. Those alerts are this run's: the cap stays
    exact and the record counts them as created (or updated), not as duplicates."""
    rule_id = job_env.write_rule(extra=case.extra, max_signals=case.max_signals)
    earlier = NOW - timedelta(minutes=10)
    if case.before:
        job_env.index_events([cred_event(earlier - timedelta(minutes=4, seconds=i)) for i in range(case.before)])
        assert job_env.run("--now", iso(earlier)) == 0
    start = NOW - timedelta(minutes=8)
    events = [cred_event(start + timedelta(seconds=i), _id=f"e{i:03}") for i in range(case.events)]
    job_env.index_events(events)
    job_env.set(es_request_timeout="3")
    proxy.answer_late(r"^/_bulk", seconds=6)  # the alerts' bulk requests (execution records go to their index)
    code = job_env.run("--now", iso(NOW))
    assert proxy.state.injected == 1 and proxy.count(r"^/_bulk") >= 2  # applied, timed out, retried
    record = job_env.executions_docs(rule_id)[-1]
    assert code == 0, record["execution"]
    if case.events > case.max_signals:  # exactly the cap: the earliest events, and the next run starts after them
        alerted = sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))
        assert len(alerted) == case.max_signals, f"{len(alerted)} alerts for a cap of {case.max_signals}"
        assert alerted == [f"e{i:03}" for i in range(case.max_signals)]
        assert record["window"]["searched_to"] == iso(start + timedelta(seconds=case.max_signals))
    assert {name: record["metrics"].get(name, 0) for name in case.metrics} == case.metrics
