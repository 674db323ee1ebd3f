"""Chaos, job process: SIGKILL at 30 seeded points of a schedule of runs over thousands of alerts with
small pages, including kills during a rule's first run followed by the next scheduled run, and kills
followed by reruns at the same ``--now``. After every run that completes, the alerts equal a clean
reference run's exactly (none missing, none twice), the only events without an alert are in the
dead-letter index, and every killed run that had started is recorded as ``failed``."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.chaos import COMPLETED, ChaosHarness, KillJob, LateAnswer, Phase, Step, kill_kinds, schedule_events
from tests.integration.run.conftest import JobEnv
from tests.jobprocess import KillPoint

pytestmark = pytest.mark.integration

SEED = 20260501
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SCHEDULE = [T0 + timedelta(minutes=10 * k) for k in range(5)]  # the rule runs every 10 minutes
MATCHING = 3000
POISON = [f"poison-{k}" for k in range(5)]  # one new in each scheduled window; Elasticsearch refuses their alerts
KILLS_PER_RUN = 6


def _steps(env: JobEnv) -> list[Step]:
    """Per scheduled run: six kills (the first two while alerts are still being written), then a run to
    completion at the same time, except at the first and fourth, where the next scheduled run follows."""
    rng = random.Random(SEED)
    writing, every_run = kill_kinds(env)
    steps: list[Step] = []
    for time_index in range(len(SCHEDULE)):
        # Two different writing kinds: a kill that Elasticsearch handled first (a dead letter stored, say) can
        # leave nothing of its kind for a second kill of the same kind in the same window.
        kinds = rng.sample(writing, 2) + rng.sample(every_run, KILLS_PER_RUN - 2)
        steps += [Step(time_index, kind.point(rng)) for kind in kinds]
        if time_index not in (0, 3):
            steps.append(Step(time_index))
    return steps


def test_thirty_kills_leave_the_exact_alert_set_and_every_interrupted_run_recorded(
    job_env: JobEnv, es_url: str
) -> None:
    started = time.monotonic()
    job_env.set(page_size="100")
    rule_id = job_env.write_rule()
    job_env.index_events(schedule_events(SCHEDULE, matching=MATCHING, ties=250, others=500, poison=POISON, seed=SEED))
    harness = ChaosHarness(job_env, es_url, rule_id, frozenset(POISON), SCHEDULE)
    reference = harness.reference()
    for alerted, dead in reference:  # the reference itself: every matching event is alerted or dead-lettered
        assert not alerted & dead
    last_alerted, last_dead = reference[-1]
    assert len(last_alerted) == MATCHING + 250 and last_dead == set(POISON)

    kills, interrupted, completed_at = 0, 0, []
    fired_phases: set[Phase] = set()
    log: list[str] = []
    for step in _steps(job_env):
        now = SCHEDULE[step.time]
        if step.fault is None:
            result = harness.run_job(now)
            assert result.returncode in (0, 1), result.stderr
            applied_interrupted, killed = 0, False
        else:
            applied = step.fault.apply(harness, now)
            result, applied_interrupted, killed = applied.result, applied.interrupted, applied.result.killed
            assert killed or result.returncode in (0, 1), f"{step.fault.name}: {result.stderr}"
        log.append(f"t{step.time} {step.fault.name if step.fault else 'clean run'}: {'killed' if killed else 'done'}")
        harness.settle()
        if killed:
            kills += 1
            assert isinstance(step.fault, KillJob)
            fired_phases.add(step.fault.phase)
            interrupted += applied_interrupted
            continue
        completed_at.append(step.time)
        alerted = harness.alerted()
        expected_alerts, expected_dead = reference[step.time]
        assert len(alerted) == len(set(alerted)), f"duplicate alerts after: {log}"
        assert set(alerted) == expected_alerts, f"missing {len(expected_alerts - set(alerted))} after: {log}"
        assert set(harness.dead_lettered()) == expected_dead, log
        assert harness.running_records() == 0, log
        assert harness.interrupted_records() == interrupted, log

    assert kills >= 25, log
    assert completed_at[-1] == len(SCHEDULE) - 1
    assert {0, 3}.isdisjoint(completed_at), f"a kill meant for a first run did not fire: {log}"
    assert fired_phases == set(Phase), log  # kills before the record, during the run, and after its end
    print(f"{kills} kills, {interrupted} interrupted runs, {time.monotonic() - started:.0f}s")


LATE_T0 = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
LATE_SCHEDULE = [LATE_T0 + timedelta(minutes=10 * k) for k in range(5)]
LATE_CAP = 200  # the first two runs reach it (a burst before the first run); the third catches up


def test_requests_applied_but_answered_after_the_client_gave_up_converge_on_the_exact_alert_set(
    job_env: JobEnv, es_url: str
) -> None:
    """At each scheduled run one request the job sends is applied by Elasticsearch and answered after the job's
    request timeout, so the job retries it: an alerts bulk request (in runs that reach the cap, and one that
    does not), the dead letters, the running records. Every run completes with exactly the clean reference's
    alerts and dead letters (the cap holds), and its record counts as created exactly the alerts that name
    it as their run."""
    job_env.set(page_size="100")
    rule_id = job_env.write_rule(max_signals=LATE_CAP)
    poison = [f"poison-{k}" for k in range(len(LATE_SCHEDULE))]
    job_env.index_events(
        schedule_events(LATE_SCHEDULE, matching=400, ties=300, others=100, poison=poison, seed=SEED + 1)
    )
    harness = ChaosHarness(job_env, es_url, rule_id, frozenset(poison), LATE_SCHEDULE)
    reference = harness.reference()
    assert len(reference[0][0]) == LATE_CAP == len(reference[1][0]) - LATE_CAP  # the first two runs are capped
    assert reference[-1][1] == set(poison)  # every poison event reached: the runs caught up

    dead, executions = job_env.dead_letters, job_env.executions
    late = [
        KillPoint("bulk", r"^/_bulk", 1),  # the first 100 alerts of a capped run
        KillPoint("bulk", r"^/_bulk", 2),  # the last alerts below the cap
        KillPoint("dead-letter", rf"^/{dead}/_bulk", 1),
        KillPoint("write-ahead", rf"^/{executions}/_bulk\?filter_path=items\.create", 1),
        KillPoint("bulk", r"^/_bulk", 1),  # a run far below the cap
    ]
    steps = [Step(time, LateAnswer(point), must_complete=True) for time, point in enumerate(late)]
    played = harness.play(steps, reference)

    assert played.fired == len(steps), played.log
    for records in played.records:
        for record in records:
            assert record["execution"]["status"] in COMPLETED, played.log
            created = harness.created_by(record["execution"]["uuid"])
            assert record["metrics"]["alerts_created"] == created, (
                f"{record['metrics']}, {created} alerts: {played.log}"
            )
    assert set(harness.alerted()) == reference[-1][0]
