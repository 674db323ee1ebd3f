"""Chaos, ES|QL: the job as a process on the 8.19 ES|QL node, SIGKILLed at seeded requests of a schedule of
runs (while alerts are written, at the ``_query`` call, at the source fetch, at one of the pass's
requests), with events whose alerts Elasticsearch refuses.
After every run that completes, the alerts equal a clean reference run's exactly (none missing, none twice),
the refused events are dead-lettered, and every killed run that had started is recorded ``failed``: the ids,
and the excluded events kept by the runs that completed, make overlapping and repeated runs converge."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from job.alerts.objecthash import UNDEFINED, object_hash
from tests.chaos import ChaosHarness, KillKind, Phase, Step, kill_kinds, schedule_events
from tests.integration.esql.conftest import EsqlJob, state
from tests.integration.run.conftest import JobEnv

SEED = 20260502
T0 = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
SCHEDULE = [T0 + timedelta(minutes=10 * k) for k in range(3)]  # the rule runs every 10 minutes
MATCHING = 300
POISON = [f"poison-{k}" for k in range(len(SCHEDULE))]  # one new in each window; Elasticsearch refuses their alerts
QUERY = 'FROM {events} METADATA _id | WHERE event.kind == "alert" AND event.action == "cred_theft_event"'


# The pass's requests an ES|QL run makes too (no _msearch, point in time or page of hits: those are the query
# rules' own).
PASS_KINDS = ("history", "write-ahead", "duplicate-check", "final-record")


def _kinds(env: JobEnv) -> tuple[KillKind, list[KillKind], list[KillKind]]:
    """(the kill that lands while alerts are written, kills at the ES|QL type's own requests, kills at the
    pass's requests every run makes)."""
    writing, every_run = kill_kinds(env)
    esql = [
        KillKind("esql-query", r"^/_query/async", Phase.DURING, forwarded_phase=Phase.DURING),
        KillKind("source-fetch", rf"^/{env.prefix}-events", Phase.DURING),
    ]
    [bulk] = [kind for kind in writing if kind.name == "bulk"]
    bulk = KillKind(bulk.name, bulk.path, bulk.phase, forwarded_phase=bulk.forwarded_phase)  # the first bulk
    return bulk, esql, [kind for kind in every_run if kind.name in PASS_KINDS]


def test_kills_of_esql_runs_leave_the_exact_alert_set_and_every_interrupted_run_recorded(
    esql_job: EsqlJob, esql_url: str
) -> None:
    env = esql_job.env
    rule_id = esql_job.rule(QUERY, from_="now-15m", interval="10m", max_signals=1000)
    env.index_events(schedule_events(SCHEDULE, matching=MATCHING, ties=50, others=100, poison=POISON, seed=SEED))
    index = env.events_index()

    def alert_of(index: str, event_id: str) -> str:  # Kibana's ES|QL id of a non-aggregating row
        return object_hash([event_id, UNDEFINED, index, f"default:{rule_id}"])

    harness = ChaosHarness(env, esql_url, rule_id, frozenset(POISON), SCHEDULE, alert_of=alert_of)
    reference = harness.reference()
    last_alerted, last_dead = reference[-1]
    assert len(last_alerted) == MATCHING + 50 and last_dead == set(POISON)
    assert not last_alerted & last_dead

    rng = random.Random(SEED)
    writing, esql, every_run = _kinds(env)
    # per scheduled run: a kill while alerts are written, one more (the _query call, the source fetch, then
    # one of the pass's own requests), then the run to completion
    others = [*esql, rng.choice(every_run)]
    steps: list[Step] = []
    for time_index in range(len(SCHEDULE)):
        steps += [Step(time_index, kind.point(rng)) for kind in (writing, others[time_index])]
        steps.append(Step(time_index))
    played = harness.play(steps, reference)
    assert played.fired == 2 * len(SCHEDULE), played.log
    assert played.interrupted >= 1, played.log
    assert set(harness.alerted()) == last_alerted
    [last] = played.records[-1]  # the last run kept the events it excluded for the next one
    assert index in state(last)["excludedDocuments"]
