"""The write-ahead execution record: killed and interrupted runs are visible, and lose no window; a run
stopped early (its lease, its cap) is continued where it stopped."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.cli import main as cli_main
from job.client.retry import RetryPolicy
from job.config.settings import load_settings
from job.execlog import record
from job.execlog.history import read_histories
from job.indices.install import install
from job.rules import load_rule
from job.run.runner import RunContext, run_rule
from job.writing.writer import MAX_ALERTS_WARNING
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import EVENT_MAPPING, JobEnv, cred_event, iso
from tests.jobprocess import KillPoint, run_job

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
INTERRUPTED = "Run interrupted: no completion was recorded"


def _alerted(job_env: JobEnv, rule_id: str) -> list[str]:
    return sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))


def test_a_killed_first_run_loses_nothing_and_is_recorded_failed(job_env: JobEnv, es_url: str) -> None:
    job_env.set(page_size="100")
    rule_id = job_env.write_rule()
    # 600 events over the first run's window, most of them before the next run's plain window (now-15m).
    events = [cred_event(NOW - timedelta(minutes=15) + timedelta(seconds=1.5 * i), _id=f"e{i}") for i in range(600)]
    job_env.index_events(events)
    killed = run_job(es_url, ["run", "--now", iso(NOW)], kill=KillPoint("bulk", r"^/_bulk", nth=2))
    assert killed.killed
    assert len(job_env.alert_docs(rule_id)) == 100
    [running] = job_env.executions_docs(rule_id)
    assert running["execution"]["status"] == "running"

    next_run = NOW + timedelta(minutes=10)
    assert job_env.run("--now", iso(next_run)) == 0
    assert _alerted(job_env, rule_id) == sorted(f"e{i}" for i in range(600))
    interrupted, completed = job_env.executions_docs(rule_id)
    assert interrupted["execution"]["status"] == "failed"
    assert interrupted["execution"]["message"] == INTERRUPTED
    assert completed["execution"]["status"] == "succeeded"
    assert completed["window"]["from"] == iso(NOW - timedelta(minutes=15))  # the killed run's start
    assert completed["window"]["covered_from"] == iso(NOW - timedelta(minutes=15))
    assert "execution_gap_duration_s" not in completed["metrics"]


def test_a_run_whose_final_record_was_lost_is_marked_by_the_next_run(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="e1")])
    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url, retry_attempts="2")
        # Every full write of the record fails (alone, or in a pass's bulk of final records), as if the node
        # died after the alerts were written.
        proxy.fail(rf"^/{job_env.executions}(-[0-9]+)?/(_doc/|_bulk\?filter_path=items\.index)", times=100, status=503)
        assert job_env.run("--now", iso(NOW)) == 1
    [running] = job_env.executions_docs(rule_id)
    assert running["execution"]["status"] == "running"
    job_env.set(es_hosts=es_url)
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    first, second = job_env.executions_docs(rule_id)
    assert first["execution"]["status"] == "failed"
    assert first["execution"]["message"] == INTERRUPTED
    assert first["execution"]["interrupted_by"] == second["execution"]["uuid"]
    assert second["execution"]["status"] == "succeeded"
    assert _alerted(job_env, rule_id) == ["e1"]


def _foreign_running_record(job_env: JobEnv, rule_id: str, *, window_from: datetime, lease: datetime) -> str:
    """A running record as a concurrent job process on another host would have written it."""
    uuid = f"elsewhere-{rule_id}"
    job_env.es.index(
        index=job_env.executions,
        id=uuid,
        refresh=True,
        document={
            "@timestamp": iso(window_from),
            "space_id": "default",
            "rule": {"rule_id": rule_id, "name": "Test credential theft"},
            "execution": {
                "uuid": uuid,
                "start": iso(datetime.now(UTC)),
                "status": "running",
                "lease_expires": iso(lease),
                "host": "another-host.invalid",
                "pid": 1,
            },
            "window": {"from": iso(window_from), "to": iso(window_from + timedelta(minutes=15))},
        },
    )
    return uuid


def test_a_live_concurrent_run_is_left_alone_and_never_shrinks_the_window(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    assert cli_main(["setup"]) == 0
    other = _foreign_running_record(
        job_env, rule_id, window_from=NOW - timedelta(minutes=40), lease=datetime.now(UTC) + timedelta(minutes=9)
    )
    job_env.index_events([cred_event(NOW - timedelta(minutes=35), _id="seen-by-the-other-run-only")])
    assert job_env.run("--now", iso(NOW)) == 0
    assert _alerted(job_env, rule_id) == ["seen-by-the-other-run-only"]
    records = {doc["execution"]["uuid"]: doc for doc in job_env.executions_docs(rule_id)}
    assert records[other]["execution"]["status"] == "running"  # its lease runs: not ours to judge
    [mine] = [doc for uuid, doc in records.items() if uuid != other]
    assert mine["window"]["from"] == iso(NOW - timedelta(minutes=40))

    # Once its lease has run out, the next run marks it.
    job_env.es.update(
        index=job_env.executions,
        id=other,
        doc={"execution": {"lease_expires": iso(datetime.now(UTC) - timedelta(seconds=1))}},
        refresh=True,
    )
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    marked = {doc["execution"]["uuid"]: doc for doc in job_env.executions_docs(rule_id)}[other]
    assert marked["execution"]["status"] == "failed"
    assert marked["execution"]["message"] == INTERRUPTED


def test_marking_never_overwrites_a_run_that_finished_meanwhile(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    job_env.run("--now", iso(NOW))
    other = _foreign_running_record(job_env, rule_id, window_from=NOW, lease=datetime.now(UTC) - timedelta(minutes=1))
    es, policy = job_env.es, RetryPolicy()
    [stale] = read_histories(es, policy, job_env.executions, [rule_id], "default")[rule_id].running
    finished = es.get(index=job_env.executions, id=other)["_source"]
    finished["execution"]["status"] = "succeeded"
    es.index(index=job_env.executions, id=other, document=finished)  # the run finishes after we read it
    assert not record.mark_interrupted(es, policy, job_env.executions, stale, by="me", now=datetime.now(UTC))
    assert es.get(index=job_env.executions, id=other)["_source"]["execution"]["status"] == "succeeded"


def _clock(start: datetime, step: timedelta) -> Iterator[datetime]:
    return (start + step * n for n in itertools.count())


def test_a_run_stops_paging_before_its_lease_runs_out_and_the_next_one_continues(job_env: JobEnv) -> None:
    job_env.set(page_size="10", run_timeout="10m")
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=10, seconds=-i), _id=f"e{i:02}") for i in range(35)])
    settings = load_settings()
    ticks = _clock(datetime.now(UTC), timedelta(minutes=3))  # every look at the clock: three minutes later
    es, policy = job_env.es, RetryPolicy.from_settings(settings)
    install(es, policy, settings.alerts_index, settings.executions_index)
    rule = load_rule(job_env.rules_dir / f"{rule_id}.toml")
    context = RunContext(es=es, settings=settings, now=NOW, policy=policy, clock=lambda: next(ticks))
    execution = run_rule(context, rule)
    assert execution.status == "partial failure"
    assert any("stopped searching before its lease" in warning for warning in execution.warnings)
    assert 0 < execution.metrics.alerts_created < 35
    assert execution.searched_to is not None and execution.searched_to < NOW
    record.refresh(es, policy, settings.executions_index)
    assert job_env.run("--now", iso(NOW)) == 0
    assert _alerted(job_env, rule_id) == [f"e{i:02}" for i in range(35)]


def test_a_killed_first_run_that_the_next_run_could_not_see_is_searched_by_the_run_after(
    job_env: JobEnv, es_url: str
) -> None:
    job_env.set(page_size="100")
    rule_id = job_env.write_rule()
    events = [cred_event(NOW - timedelta(minutes=15) + timedelta(seconds=1.5 * i), _id=f"e{i}") for i in range(600)]
    job_env.index_events(events)
    assert cli_main(["setup"]) == 0
    job_env.set(auto_setup="false")  # setup's retention step refreshes the log; runs never do
    # Nothing makes the killed run's record searchable until a pass refreshes the log at its end: the next
    # run reads the log as if the killed run had not started (as a run starting within the refresh
    # interval would).
    job_env.es.indices.put_settings(index=job_env.executions, settings={"index.refresh_interval": "-1"})
    assert run_job(es_url, ["run", "--now", iso(NOW)], kill=KillPoint("bulk", r"^/_bulk", nth=2)).killed
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    blind = job_env.executions_docs(rule_id)[-1]
    assert blind["window"]["from"] == iso(NOW - timedelta(minutes=5))  # the plain window: it saw nothing
    assert len(_alerted(job_env, rule_id)) < 600
    # The killed run's range starts before anything a completed run covered: the run after searches it.
    assert job_env.run("--now", iso(NOW + timedelta(minutes=20))) == 0
    assert _alerted(job_env, rule_id) == sorted(f"e{i}" for i in range(600))
    killed, _, repairing = job_env.executions_docs(rule_id)
    assert killed["execution"]["status"] == "failed"
    assert killed["execution"]["interrupted_by"] == repairing["execution"]["uuid"]
    assert repairing["window"]["from"] == iso(NOW - timedelta(minutes=15))


def test_a_rule_whose_run_was_interrupted_is_due_at_the_next_pass(job_env: JobEnv, es_url: str) -> None:
    """Cadence counts from runs that ended by themselves: a killed run did not do its work, so the next
    pass (a CronJob every 5 minutes, a 10-minute rule) runs the rule again instead of waiting an interval."""
    job_env.set(page_size="100")
    rule_id = job_env.write_rule(interval="10m")
    job_env.index_events([cred_event(NOW - timedelta(seconds=i), _id=f"e{i}") for i in range(300)])
    assert run_job(es_url, ["run", "--now", iso(NOW)], kill=KillPoint("bulk", r"^/_bulk", nth=2)).killed
    job_env.es.indices.refresh(index=job_env.executions)  # five minutes pass: the killed run's record is visible
    assert job_env.run_due("--now", iso(NOW + timedelta(minutes=5))) == 0  # marks the killed run, runs the rule
    assert _alerted(job_env, rule_id) == sorted(f"e{i}" for i in range(300))
    interrupted, completed = job_env.executions_docs(rule_id)
    assert interrupted["execution"]["message"] == INTERRUPTED
    assert completed["execution"]["status"] == "succeeded"
    # That run ended by itself: the rule's cadence counts from it.
    assert job_env.run_due("--now", iso(NOW + timedelta(minutes=10))) == 0
    assert len(job_env.executions_docs(rule_id)) == 2


OVERRIDE = 'timestamp_override = "event.ingested"'  # with the @timestamp fallback (not disabled)
INGESTED_MAPPING = {
    "dynamic_templates": EVENT_MAPPING["dynamic_templates"],
    "properties": {"@timestamp": {"type": "date"}, "event": {"properties": {"ingested": {"type": "date"}}}},
}


def _ingested_events(job_env: JobEnv) -> dict[str, datetime]:
    """300 events ingested in order over the 100 minutes before ``NOW - 10m`` (each some seconds after it
    happened), and 3 without ``event.ingested`` an hour before ``NOW`` (their ``@timestamp`` decides, and
    they sort after every event that has the field); indexed, then one run at ``NOW - 2h`` (before them all),
    so the next run at ``NOW`` catches up two hours. Where each event lies in the window, by id."""
    start = NOW - timedelta(minutes=110)
    ingested = {f"e{i:03}": start + timedelta(seconds=20 * i) for i in range(300)}
    events = [
        cred_event(
            moment - timedelta(seconds=7),
            _id=doc_id,
            event={"kind": "alert", "action": "cred_theft_event", "ingested": iso(moment)},
        )
        for doc_id, moment in ingested.items()
    ]
    lacking = {f"n{i}": NOW - timedelta(minutes=60, seconds=i) for i in range(3)}
    events += [cred_event(moment, _id=doc_id) for doc_id, moment in lacking.items()]
    job_env.index_events(events, mapping=INGESTED_MAPPING)
    assert job_env.run("--now", iso(NOW - timedelta(hours=2))) == 0
    return ingested | lacking


def _continues_where_it_stopped(
    job_env: JobEnv, rule_id: str, record: dict[str, Any], key: dict[str, datetime], before: set[str]
) -> set[str]:
    """The events alerted now, after checking that the run of ``record`` alerted some more than ``before`` and
    that the next run starts after its start and before every event not alerted yet."""
    alerted = set(_alerted(job_env, rule_id))
    assert before < alerted < set(key), "the run alerted nothing new, or everything"
    searched_to = record["window"]["searched_to"]
    assert searched_to > record["window"]["from"], "the run did not advance: the next run starts over"
    waiting = min(iso(key[doc_id]) for doc_id in set(key) - alerted)
    assert waiting >= searched_to, "an event not alerted yet lies before where the next run starts"
    return alerted


def test_a_stopped_run_of_a_rule_with_a_timestamp_override_is_continued_mid_window(
    job_env: JobEnv, es_url: str
) -> None:
    """A rule with ``timestamp_override`` (and the ``@timestamp`` fallback) catching up two hours: each run
    stops on its lease after a page or two (the proxy holds its second page past the stop time). The next
    run continues where it stopped, never later than an event not alerted yet (those lacking the override
    field included), so the runs make progress and the window is closed."""
    job_env.set(page_size="50", run_timeout="8s")
    rule_id = job_env.write_rule(extra=OVERRIDE)
    key = _ingested_events(job_env)

    def stopped_run(now: datetime, proxy: FaultProxy) -> dict[str, Any]:
        # The second page of the point in time comes back once the run's stop time (0.9 of its lease) has passed.
        proxy.delay(r"^/_search", method="POST", after=1, seconds=7.2)
        job_env.run("--now", iso(now))
        record = job_env.executions_docs(rule_id)[-1]
        assert record["execution"]["status"] == "partial failure", record["execution"]
        assert any("stopped searching before its lease" in warning for warning in record["execution"]["warnings"])
        return record

    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        alerted = _continues_where_it_stopped(job_env, rule_id, stopped_run(NOW, proxy), key, set())
        later = stopped_run(NOW + timedelta(minutes=10), proxy)
        _continues_where_it_stopped(job_env, rule_id, later, key, alerted)

    job_env.set(es_hosts=es_url)
    assert job_env.run("--now", iso(NOW + timedelta(minutes=20))) == 0
    assert _alerted(job_env, rule_id) == sorted(key)


def test_a_capped_run_of_a_rule_with_a_timestamp_override_is_continued_where_the_cap_stopped_it(
    job_env: JobEnv,
) -> None:
    """The same rule reaching its cap (100) while catching up: the next run starts at the first event not
    alerted (or earlier, at the first event lacking the override field), not at the window start, which
    would read everything again and move the window back by the look-back at every run."""
    rule_id = job_env.write_rule(extra=OVERRIDE, max_signals=100)
    key = _ingested_events(job_env)
    alerted: set[str] = set()
    for minutes in (0, 10):
        job_env.run("--now", iso(NOW + timedelta(minutes=minutes)))
        record = job_env.executions_docs(rule_id)[-1]
        assert MAX_ALERTS_WARNING in record["execution"]["warnings"]
        alerted = _continues_where_it_stopped(job_env, rule_id, record, key, alerted)
        assert len(alerted) == 100 * (minutes // 10 + 1)
