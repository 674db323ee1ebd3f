"""Chaos, the node: SIGKILL the Elasticsearch node at seeded request points of a schedule of runs and
start it again on the same port (after the job gave up, or while it retries), and SIGSTOP it for longer
than the job's request timeout (resumed at the job's retry, or after the job gave up). After each run
the alerts never repeat nor exceed a clean reference run's; a run whose records say it completed left
exactly the reference's alerts and dead letters; every run the node's death interrupted is marked
``failed`` by the next run; the last run ends with the reference's set.

The node is this module's own (never the session's node other tests share).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from esnode import esnode
from tests.chaos import ChaosHarness, KillKind, KillNode, PauseNode, Phase, Step, kill_kinds, schedule_events
from tests.integration.run.conftest import JobEnv, sandbox

pytestmark = pytest.mark.integration

SEED = 20260502
T0 = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
SCHEDULE = [T0 + timedelta(minutes=10 * k) for k in range(4)]  # the rule runs every 10 minutes
MATCHING = 1500
TIES = 60  # one timestamp, across page boundaries
POISON = [f"poison-{k}" for k in range(len(SCHEDULE))]  # one new in each window; their alerts are refused


@pytest.fixture(scope="module")
def chaos_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[esnode.RunningNode]:
    """A node of this module's own, which the tests kill, pause and restart."""
    if os.environ.get("DETECTION_ES_HOSTS"):
        pytest.skip("DETECTION_ES_HOSTS names a cluster: the node tests need a local node they may kill")
    node = esnode.start(tmp_path_factory.mktemp("chaos-node"), watch_stdin=True)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def node_env(chaos_node: esnode.RunningNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobEnv]:
    with Elasticsearch(chaos_node.url, request_timeout=60, max_retries=3, retry_on_timeout=True) as es:
        yield sandbox(es, chaos_node.url, f"chaos-{uuid.uuid4().hex[:12]}", tmp_path, monkeypatch)


def _steps(env: JobEnv, node: esnode.RunningNode) -> list[Step]:
    """One node fault at each scheduled time (each lands on a fresh window, so every kind of request
    comes): the first run's node dies while it writes and the next scheduled run follows; the node paused
    until the job's retry; the node killed and restarted while the job retries; the node paused until the
    job gave up, then a run at the same time."""
    rng = random.Random(SEED)
    writing, every_run = kill_kinds(env)

    def kill(kinds: list[KillKind], restart: str) -> KillNode:
        job = rng.choice(kinds).point(rng)
        return KillNode(job.point, job.phase, lambda: node, "after" if restart == "after" else "during")

    def pause(kinds: list[KillKind], resume: str) -> PauseNode:
        point = dataclasses.replace(rng.choice(kinds).point(rng).point, forward_first=False)
        return PauseNode(point, lambda: node, "after" if resume == "after" else "retry")

    mid_run = [kind for kind in writing + every_run if kind.phase is Phase.DURING]
    return [
        Step(0, kill(writing, "after")),
        Step(1, pause(writing + every_run, "retry")),
        Step(2, kill(writing + every_run, "during")),
        Step(3, pause(mid_run, "after")),  # what the job sent is handled late: never a misleading success
        Step(3),
    ]


def test_node_killed_or_paused_mid_run_leaves_the_exact_alert_set_and_every_interrupted_run_failed(
    node_env: JobEnv, chaos_node: esnode.RunningNode
) -> None:
    started = time.monotonic()
    port = chaos_node.port
    node_env.set(page_size="50")
    rule_id = node_env.write_rule()
    node_env.index_events(schedule_events(SCHEDULE, matching=MATCHING, ties=TIES, others=200, poison=POISON, seed=SEED))
    harness = ChaosHarness(node_env, chaos_node.url, rule_id, frozenset(POISON), SCHEDULE)
    reference = harness.reference()
    last_alerted, last_dead = reference[-1]
    assert len(last_alerted) == MATCHING + TIES and last_dead == set(POISON)

    steps = _steps(node_env, chaos_node)
    played = harness.play(steps, reference)

    assert played.fired == sum(step.fault is not None for step in steps), played.log
    assert played.interrupted >= 1, played.log  # the first run's node died while it wrote
    assert harness.running_records() == 0 and harness.interrupted_records() == played.interrupted
    assert chaos_node.port == port  # restarted on its port: the job's URL stayed valid
    print(f"{played.log}\n{played.statuses}, {time.monotonic() - started:.0f}s")
