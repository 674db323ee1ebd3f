"""SIGTERM and SIGINT, as Kubernetes and a terminal send them, to a real job process against the real node.

The fault proxy holds a chosen request of the run and sends the signal from there, so the signal lands
mid-run at the same place every time (after the first page, while the second is being fetched), not
at a moment picked by a timer.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso
from tests.jobprocess import RunningJob, started_job

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PIT_PAGE = r"^/_search"  # the pages of a point-in-time search (every other search names its index)
EVENTS = 300
PAGE = 50


def _alerted(job_env: JobEnv, rule_id: str) -> list[str]:
    return sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))


def _signal_at_second_page(job: list[RunningJob], signum: int) -> Callable[[FaultProxy], None]:
    """Send ``signum`` to the job when its second page is requested, then let that request through."""

    def arm(proxy: FaultProxy) -> None:
        proxy.on_request(PIT_PAGE, after=1, action=lambda: job[0].signal(signum), method="POST", answer=True)

    return arm


def _events(job_env: JobEnv) -> list[str]:
    ids = [f"e{i:03}" for i in range(EVENTS)]
    start = NOW - timedelta(minutes=14)
    job_env.index_events([cred_event(start + timedelta(seconds=2 * i), _id=event) for i, event in enumerate(ids)])
    return ids


SIGNALS = [(signal.SIGTERM, "SIGTERM", 143), (signal.SIGINT, "SIGINT", 130)]


@pytest.mark.parametrize(("signum", "name", "code"), SIGNALS)
def test_a_signal_mid_run_records_the_rule_failed_and_the_next_run_catches_up(
    job_env: JobEnv, es_url: str, signum: int, name: str, code: int
) -> None:
    """One rule after another (DETECTION_CONCURRENCY=1): the rule under way stops, the next never starts."""
    job_env.set(page_size=str(PAGE), concurrency="1")
    first = job_env.write_rule(rule_id="a-first")
    second = job_env.write_rule(rule_id="b-second")  # runs after the first: never started
    ids = _events(job_env)
    job: list[RunningJob] = []
    with started_job(es_url, ["run", "--all", "--now", iso(NOW)], setup=_signal_at_second_page(job, signum)) as run:
        job.append(run)
        result = run.finish()
    assert result.returncode == code, result.stderr
    assert f"stopped by {name}" in result.stderr
    [record] = job_env.executions_docs(first)
    assert record["execution"]["status"] == "failed"
    assert record["execution"]["message"] == f"Run interrupted by {name}"
    assert record["window"]["searched_to"] is None
    assert record["metrics"]["pages"] == 2  # the page in flight was finished, no further page was taken
    assert len(_alerted(job_env, first)) == 2 * PAGE
    assert job_env.executions_docs(second) == []  # not started: no record

    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    assert _alerted(job_env, first) == ids
    assert [doc["execution"]["status"] for doc in job_env.executions_docs(second)] == ["succeeded"]
    _, caught_up = job_env.executions_docs(first)
    assert caught_up["window"]["from"] == iso(NOW - timedelta(minutes=15))  # the interrupted window, again
    assert caught_up["metrics"]["duplicates_skipped"] == 2 * PAGE


@pytest.mark.parametrize(("signum", "name", "code"), SIGNALS)
def test_a_signal_mid_batch_records_every_rule_under_way_failed_and_the_next_run_catches_up(
    job_env: JobEnv, es_url: str, signum: int, name: str, code: int
) -> None:
    """Rules of a batch at once (the default DETECTION_CONCURRENCY): each stops after the page it has in flight."""
    job_env.set(page_size=str(PAGE), concurrency="4")
    rules = [job_env.write_rule(rule_id=f"rule-{i}") for i in range(3)]
    ids = _events(job_env)
    job: list[RunningJob] = []
    with started_job(es_url, ["run", "--all", "--now", iso(NOW)], setup=_signal_at_second_page(job, signum)) as run:
        job.append(run)
        result = run.finish()
    assert result.returncode == code, result.stderr
    assert f"stopped by {name}" in result.stderr
    for rule_id in rules:
        [record] = job_env.executions_docs(rule_id)
        status = (record["execution"]["status"], record["execution"]["message"])
        assert status == ("failed", f"Run interrupted by {name}")
        assert record["window"]["searched_to"] is None
        # Each finished the page it had in flight, if any, and took no further one (3 rules, 2 pages asked).
        assert record["metrics"]["pages"] <= 2
        assert len(_alerted(job_env, rule_id)) == record["metrics"]["alerts_created"] < len(ids)

    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    for rule_id in rules:
        assert _alerted(job_env, rule_id) == ids
        _, caught_up = job_env.executions_docs(rule_id)
        assert caught_up["execution"]["status"] == "succeeded"
        assert caught_up["window"]["from"] == iso(NOW - timedelta(minutes=15))  # the interrupted window, again


def test_the_point_in_time_is_closed_after_a_sigterm(job_env: JobEnv, es_url: str) -> None:
    job_env.set(page_size=str(PAGE))
    job_env.write_rule()
    _events(job_env)
    job: list[RunningJob] = []
    seen: list[FaultProxy] = []

    def arm(proxy: FaultProxy) -> None:
        seen.append(proxy)
        _signal_at_second_page(job, signal.SIGTERM)(proxy)

    with started_job(es_url, ["run", "--all", "--now", iso(NOW)], setup=arm) as run:
        job.append(run)
        assert run.finish().returncode == 143
    requests = seen[0].requests()
    opened = [i for i, (method, path) in enumerate(requests) if method == "POST" and "/_pit" in path]
    closed = [i for i, (method, path) in enumerate(requests) if method == "DELETE" and path.startswith("/_pit")]
    assert len(opened) == 1 and len(closed) == 1 and closed[0] > opened[0]
    pages = [i for i, (method, path) in enumerate(requests) if method == "POST" and path.startswith("/_search")]
    assert len(pages) == 2 and pages[-1] < closed[0]


def _hold_first_page(held: threading.Event, release: threading.Event) -> Callable[[FaultProxy], None]:
    def hold() -> None:
        held.set()
        release.wait(timeout=300)

    def arm(proxy: FaultProxy) -> None:
        proxy.on_request(PIT_PAGE, after=0, action=hold, method="POST", answer=True)

    return arm


@pytest.mark.parametrize("within_grace", [True, False], ids=["finishes-within-grace", "grace-expires"])
def test_schedule_lets_running_rules_finish_within_the_grace_then_stops_them(
    job_env: JobEnv, es_url: str, within_grace: bool
) -> None:
    job_env.set(page_size=str(PAGE), schedule_interval="1h", shutdown_grace="1h" if within_grace else "1s")
    rule_id = job_env.write_rule(from_="now-1h")
    start = datetime.now(UTC) - timedelta(minutes=30)
    ids = [f"s{i:03}" for i in range(2 * PAGE + 10)]
    job_env.index_events([cred_event(start + timedelta(seconds=i), _id=event) for i, event in enumerate(ids)])
    held, release = threading.Event(), threading.Event()
    try:
        with started_job(es_url, ["schedule"], setup=_hold_first_page(held, release)) as scheduler:
            assert held.wait(timeout=300), "the scheduled run never searched"
            scheduler.signal(signal.SIGTERM)
            scheduler.wait_for("SIGTERM: starting no further run; 1 rules running")
            if not within_grace:
                scheduler.wait_for("the shutdown grace (DETECTION_SHUTDOWN_GRACE=0:00:01) expired")
            release.set()
            result = scheduler.finish()
    finally:
        release.set()
    assert result.returncode == 143, result.stderr
    [record] = job_env.executions_docs(rule_id)
    if within_grace:
        assert record["execution"]["status"] == "succeeded", result.stderr
        assert _alerted(job_env, rule_id) == ids
    else:
        assert record["execution"]["status"] == "failed", result.stderr
        assert record["execution"]["message"] == "Run interrupted by SIGTERM"
        assert record["metrics"]["pages"] == 1
        assert len(_alerted(job_env, rule_id)) == PAGE
        assert job_env.run() == 0  # the next run searches the interrupted window again
        assert _alerted(job_env, rule_id) == ids
