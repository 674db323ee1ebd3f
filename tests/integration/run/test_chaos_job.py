"""Chaos, job process: SIGKILL at 30 seeded points of a schedule of runs over thousands of alerts with
small pages, including kills during a rule's first run followed by the next scheduled run, and kills
followed by reruns at the same ``--now``. After every run that completes, the alerts equal a clean
reference run's exactly (none missing, none twice), the only events without an alert are in the
dead-letter index, and every killed run that had started is recorded as ``failed``."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.window import parse_timestamp
from tests.chaos import (
    COMPLETED,
    ChaosHarness,
    KillJob,
    LateAnswer,
    Phase,
    Step,
    aggregation_kill_kinds,
    alert_id_of,
    kill_kinds,
    schedule_events,
)
from tests.integration.run.aggregation_rules import auth, new_terms_rule, threshold_rule
from tests.integration.run.conftest import JobEnv, cred_event, iso
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


AGG_SCHEDULE = [T0 + timedelta(minutes=5 * k) for k in range(4)]  # every 5 minutes, from = now-10m
AGG_FIRST = AGG_SCHEDULE[0] - timedelta(minutes=10)  # the first window's start
AGG_KILLS_PER_RUN = 3


def _aggregation_events() -> list[dict[str, Any]]:
    """Events every 13 seconds from the first window's start to the last run (never on a window's edge): six
    hosts in turn, and users each first seen at one event and seen twice more; users seen in the history
    (35 minutes before the first run) come back too and are never new."""
    events: list[dict[str, Any]] = []
    span = (AGG_SCHEDULE[-1] - AGG_FIRST).total_seconds()
    for i in range(int(span // 13)):
        moment = AGG_FIRST + timedelta(seconds=13 * i + 6.5)
        user = f"old-{i % 4}" if i % 5 == 4 else f"u{i // 3:03d}"
        events.append(auth(moment, _id=f"e{i}", host={"name": f"h{i % 6}"}, user={"name": user}, tags=["chaos"]))
    old = AGG_SCHEDULE[0] - timedelta(minutes=35)
    events += [
        auth(old, _id=f"old-{j}", host={"name": "h0"}, user={"name": f"old-{j}"}, tags=["chaos"]) for j in range(4)
    ]
    return events


SUPPRESSED_HOUR = '\n[rule.alert_suppression.duration]\nvalue = 1\nunit = "h"\n'
TERMS_BY_HOST = '\n[rule.alert_suppression]\ngroup_by = ["host.name"]\nduration = {value = 1, unit = "h"}\n'
# The first bulk request that folds would-be alerts into open alerts, applied by Elasticsearch before the kill: the
# run leaves no final record, so the next run reads the threshold history back from the alerts.
FOLD = KillPoint("fold", r"^/_bulk\?filter_path=items\.update", 1, forward_first=True)


def test_threshold_and_new_terms_rules_converge_under_kills(job_env: JobEnv, es_url: str) -> None:
    """SIGKILL at seeded points of a schedule of threshold and new-terms runs, with and without suppression (3
    per scheduled time, and from the second on one more once the first fold into open alerts is applied; then a
    run to completion at the same time). After every run that completes: every event is counted into exactly one
    threshold alert of its host (value 1: every group alerts, so no count is lost and none counted twice however
    the runs were cut), the new-terms alerts are exactly each user's first event, once; the suppressed threshold
    rule has one alert per host that took in one group per scheduled run since its first (its end the host's
    latest event), and the suppressed new-terms rule one alert per host that counted each new user first seen
    on it once."""
    started = time.monotonic()
    threshold = threshold_rule(job_env, "chaos-threshold", ["host.name"], 1, query="tags:chaos", from_="now-10m")
    new_terms = new_terms_rule(job_env, "chaos-terms", ["user.name"], "now-1h", query="tags:chaos", from_="now-10m")
    folding = threshold_rule(
        job_env, "chaos-folding", ["host.name"], 1, query="tags:chaos", from_="now-10m", tables=SUPPRESSED_HOUR
    )
    by_host = new_terms_rule(
        job_env, "chaos-by-host", ["user.name"], "now-1h", query="tags:chaos", from_="now-10m", tables=TERMS_BY_HOST
    )
    events = _aggregation_events()
    job_env.index_events([dict(event) for event in events])
    harness = ChaosHarness(job_env, es_url, threshold, frozenset(), AGG_SCHEDULE)
    rng = random.Random(SEED)
    kinds = aggregation_kill_kinds(job_env)
    log: list[str] = []

    def expected(now: datetime) -> tuple[Counter[str], dict[str, tuple[str, str]], set[tuple[str, str]]]:
        counts: Counter[str] = Counter()
        spans: dict[str, tuple[str, str]] = {}
        first: dict[str, dict[str, Any]] = {}
        for event in events:
            at = parse_timestamp(event["@timestamp"])
            if AGG_FIRST <= at <= now:
                host = event["host"]["name"]
                counts[host] += 1
                spans[host] = (spans.get(host, (event["@timestamp"], ""))[0], event["@timestamp"])
                first.setdefault(event["user"]["name"], event)
        new = {user: event for user, event in first.items() if not user.startswith("old-")}
        return counts, spans, {(event["_id"], user) for user, event in new.items()}

    def by_terms(found: list[tuple[str, str, str]]) -> dict[str, tuple[str, str, int]]:
        """Per host, the span of its new users' first events and how many there are beyond the first."""
        spans: dict[str, tuple[str, str, int]] = {}
        for host, moment, _ in sorted(found, key=lambda term: term[1]):
            start, _, count = spans.get(host, (moment, moment, -1))
            spans[host] = (start, moment, count + 1)
        return spans

    def suppressed(rule_id: str) -> dict[str, tuple[str, str, int]]:
        alerts = job_env.alert_docs(rule_id)
        found = {
            str(alert["kibana.alert.suppression.terms"][0]["value"]).strip("[]'"): (
                alert["kibana.alert.suppression.start"],
                alert["kibana.alert.suppression.end"],
                alert["kibana.alert.suppression.docs_count"],
            )
            for alert in alerts
        }
        assert len(found) == len(alerts), f"{rule_id}: a second alert of a group after: {log}"
        return found

    def check(now: datetime, runs: int) -> None:
        counts, spans, terms = expected(now)
        counted: Counter[str] = Counter()
        for alert in job_env.alert_docs(threshold):
            counted[alert["host.name"]] += alert["kibana.alert.threshold_result"]["count"]
        assert counted == counts, f"threshold counts {dict(counted)} != {dict(counts)} after: {log}"
        found = [
            (alert["kibana.alert.ancestors"][0]["id"], alert["kibana.alert.new_terms"][0])
            for alert in job_env.alert_docs(new_terms)
        ]
        assert len(found) == len(set(found)), f"a new term alerted twice after: {log}"
        assert set(found) == terms, f"missing {terms - set(found)}, extra {set(found) - terms} after: {log}"
        folded = {host: (start, end, runs - 1) for host, (start, end) in spans.items()}
        assert suppressed(folding) == folded, f"suppressed threshold after: {log}"
        first_events = {event["_id"]: event for event in events}
        news = [(first_events[i]["host"]["name"], first_events[i]["@timestamp"], user) for i, user in terms]
        assert suppressed(by_host) == by_terms(news), f"suppressed new terms after: {log}"
        assert harness.running_records() == 0, log

    kills = 0
    for runs, now in enumerate(AGG_SCHEDULE, start=1):
        points = [kind.point(rng).point for kind in rng.sample(kinds, AGG_KILLS_PER_RUN)]
        for point in points + ([FOLD] if runs > 1 else []):
            result = harness.run_job(now, kill=point)
            harness.settle()
            log.append(f"{iso(now)} kill at {point}: {'killed' if result.killed else 'done'}")
            if result.killed:
                kills += 1
            else:  # the point was not reached (a threshold run that trusts its record reads no alerts)
                assert result.returncode in (0, 1), result.stderr
                check(now, runs)
        result = harness.run_job(now)
        assert result.returncode in (0, 1), result.stderr
        harness.settle()
        log.append(f"{iso(now)} clean run")
        check(now, runs)
    assert kills >= 11 and log.count(f"{iso(AGG_SCHEDULE[-1])} kill at {FOLD}: killed") == 1, log
    print(f"{kills} kills, {time.monotonic() - started:.0f}s")
SEQ_T0 = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
SEQ_SCHEDULE = [SEQ_T0 + timedelta(minutes=10 * k) for k in range(3)]
SEQUENCE = (
    'sequence by host.id with maxspan=2m [process where process.name == "a.exe"] '
    '[process where process.name == "b.exe"]'
)


def _sequence_events() -> list[dict[str, Any]]:
    """Per scheduled window 90 hosts starting a.exe, 60 of them b.exe 30 s later (a sequence each), a few
    a.exe again in between (a newer candidate); events tied on one timestamp across page boundaries."""
    events = []
    for window, end in enumerate(SEQ_SCHEDULE):
        start = end - timedelta(minutes=9)
        for host in range(90):
            at = start + timedelta(seconds=2 * host)
            name = f"w{window}-h{host}"
            events.append(cred_event(at, _id=f"{name}-a", host={"id": name}, process={"name": "a.exe"}))
            if host % 3 == 0:
                again = at + timedelta(seconds=10)
                events.append(cred_event(again, _id=f"{name}-a2", host={"id": name}, process={"name": "a.exe"}))
            if host % 3 != 2:  # the last twenty hosts' b.exe all at one time
                later = at + timedelta(seconds=30) if host < 70 else start + timedelta(seconds=190)
                events.append(cred_event(later, _id=f"{name}-b", host={"id": name}, process={"name": "b.exe"}))
    return events


def test_a_sequence_rule_killed_mid_run_converges_to_the_exact_alert_set(job_env: JobEnv, es_url: str) -> None:
    """A sequence rule killed at seven points of its runs (writing its shells and blocks, before and after
    Elasticsearch applied them, reading the sequences' events back, paging its stream, checking duplicates,
    writing its final record): every run that completes leaves exactly the clean reference's shells and
    building blocks, each written once and each shell with both its blocks."""
    job_env.set(page_size="50")
    rule_id = job_env.write_eql_rule(SEQUENCE, from_="now-10m")
    job_env.index_events(_sequence_events())
    harness = ChaosHarness(job_env, es_url, rule_id, frozenset(), SEQ_SCHEDULE, key=alert_id_of)
    reference = harness.reference()
    assert [len(alerts) for alerts, _ in reference] == [180, 360, 540]  # 60 sequences a window, 3 alerts each

    executions, alerts, dead = job_env.executions, job_env.alerts, job_env.dead_letters
    during = Phase.DURING
    kills = [
        (0, KillPoint("bulk", r"^/_bulk", 1)),
        (0, KillPoint("read-back", r"^/_mget", 1, forward_first=True)),
        (1, KillPoint("bulk", r"^/_bulk", 2, forward_first=True)),
        (1, KillPoint("duplicate-check", rf"^/{alerts},{dead}/_search", 2)),
        (1, KillPoint("page", r"^/_search", 3)),
        (2, KillPoint("read-back", r"^/_mget", 2)),
        (2, KillPoint("final-record", rf"^/{executions}/_bulk\?filter_path=items\.index", 1)),
    ]
    steps: list[Step] = []
    for time_index in range(len(SEQ_SCHEDULE)):
        steps += [Step(t, KillJob(point, during)) for t, point in kills if t == time_index]
        steps.append(Step(time_index))
    played = harness.play(steps, reference)
    assert played.fired == len(kills), played.log
    assert played.interrupted == len(kills), played.log
    groups: dict[str, int] = {}
    for hit in harness._all(job_env.alerts, {"term": {"kibana.alert.rule.rule_id": rule_id}}):
        group = hit["_source"]["kibana.alert.group.id"]
        groups[group] = groups.get(group, 0) + 1
    assert set(groups.values()) == {3}, played.log  # every shell with both its blocks
