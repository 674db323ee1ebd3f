"""The job on a real three-node cluster (the session's ``cluster``), connected to all three nodes
(``DETECTION_ES_HOSTS`` lists them, each behind a proxy that counts requests): a data node holding the
alerts' primary, the node serving the events' point in time, and the elected master SIGKILLed mid-run;
all three nodes restarted one after the other during a backfill-like series of runs. Each faulted run
must complete on the surviving nodes, and each case ends with a clean reference run's alerts exactly and
honest records (none ``running``, no completed run with an alert missing).

The alerts index has one replica on a cluster (the template's ``auto_expand_replicas: 0-1``), and so
have the events, the execution log and the dead-letter index (Elasticsearch's default).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from esnode import esnode
from job.config.indexnames import write_index_name
from tests.chaos import ChaosHarness, KillNode, Phase, RestartNode, Step
from tests.integration.run.conftest import JobEnv, cred_event, sandbox
from tests.jobprocess import KillPoint

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SEED = 20260503
T0 = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=10)
PER_WINDOW = 150  # matching events per interval; pages of 50
BULK_2_HANDLED = KillPoint("bulk", r"^/_bulk", 2, forward_first=True)
PAGE_2 = KillPoint("page", r"^/_search", 2)
PAGE_3 = KillPoint("page", r"^/_search", 3)


@pytest.fixture
def cluster_env(cluster: esnode.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobEnv]:
    """A job sandbox on the cluster: every node's URL in ``DETECTION_ES_HOSTS``; its indices are deleted after."""
    prefix = f"cluster-{uuid.uuid4().hex[:12]}"
    with Elasticsearch(cluster.urls, request_timeout=60, max_retries=5, retry_on_timeout=True) as es:
        env = sandbox(es, cluster.hosts, prefix, tmp_path, monkeypatch)
        env.set(page_size="50")
        yield env
        cluster.wait_for(status="green", nodes=3)
        existing = es.indices.get(index=f"{prefix}*", expand_wildcards="all", ignore_unavailable=True)
        if existing:
            es.indices.delete(index=",".join(existing))
        for alias in (env.alerts, f"{prefix}-ref-alerts"):
            es.options(ignore_status=404).indices.delete_index_template(name=f"{alias}-template")


def _schedule(runs: int) -> list[datetime]:
    return [T0 + INTERVAL * k for k in range(runs)]


def _harness(env: JobEnv, cluster: esnode.Cluster, schedule: list[datetime]) -> tuple[ChaosHarness, list[set[str]]]:
    """A rule over events spread across the schedule's windows, and its clean reference (run into indices of
    its own on the same cluster)."""
    rule_id = env.write_rule()
    first = schedule[0] - timedelta(minutes=15)
    count = PER_WINDOW * len(schedule)
    span = (schedule[-1] - first).total_seconds()
    rng = random.Random(SEED)
    events = [cred_event(first + timedelta(seconds=rng.uniform(0, span)), _id=f"e{i}") for i in range(count)]
    events += [  # not matching
        cred_event(first + timedelta(seconds=rng.uniform(0, span)), _id=f"other-{i}", event={"kind": "alert"})
        for i in range(50)
    ]
    env.index_events(events)
    harness = ChaosHarness(env, cluster.hosts, rule_id, frozenset(), schedule)
    reference = harness.reference()
    assert len(reference[-1][0]) == count
    return harness, [alerted for alerted, _ in reference]


def _green(cluster: esnode.Cluster) -> Callable[[], None]:
    return lambda: cluster.wait_for(status="green", nodes=3)


def _replicated(cluster: esnode.Cluster, index: str) -> None:
    """Both copies of the index's shard are started, on two nodes."""
    assert cluster.holding(index, primary=True) is not cluster.holding(index, primary=False)


def _serving(cluster: esnode.Cluster, events: str) -> esnode.RunningNode:
    """The node whose copy of the events' shard the job's open point in time searches (its search context)."""
    stats = esnode.get_json(cluster.url, "/_nodes/stats/indices/search?filter_path=nodes.*.name,nodes.*.indices")
    serving = [node["name"] for node in stats["nodes"].values() if node["indices"]["search"]["open_contexts"]]
    assert len(serving) == 1, stats
    node = cluster.node(serving[0])
    assert node in (cluster.holding(events, primary=True), cluster.holding(events, primary=False))
    return node


def test_data_nodes_and_the_master_killed_mid_run_each_run_completes_on_the_others(
    cluster: esnode.Cluster, cluster_env: JobEnv
) -> None:
    """One run after another, each loses a node: the one holding the alerts' primary once it has handled the
    run's second bulk request; the one serving the events' point in time when the run asks for its third
    page; the elected master when the run asks for its second page. Each node is started again after its
    run, and the cluster is green before the next."""
    schedule = _schedule(5)
    harness, reference = _harness(cluster_env, cluster, schedule)
    expected = [(alerted, set[str]()) for alerted in reference]
    played = harness.play([Step(0)], expected)
    alerts_index, events_index = write_index_name(cluster_env.alerts), cluster_env.events_index()
    for index in (alerts_index, events_index, cluster_env.executions):
        _replicated(cluster, index)
    victims: list[esnode.RunningNode] = []

    def kill(point: KillPoint, label: str, pick: Callable[[], esnode.RunningNode]) -> KillNode:
        def chosen() -> esnode.RunningNode:
            victims.append(pick())
            return victims[-1]

        return KillNode(point, Phase.DURING, chosen, "after", healed=_green(cluster), label=label, settings={})

    def alerts_primary() -> esnode.RunningNode:
        return cluster.holding(alerts_index, primary=True)

    # After each run, what the node's death changed as the run saw it: the alerts' replica became their
    # primary; the point in time lost its search context and the run opened another; another node was elected.
    step = Step(1, kill(BULK_2_HANDLED, "the node holding the alerts' primary", alerts_primary), must_complete=True)
    played = harness.play([step], expected, played)
    assert alerts_primary() is not victims[0]
    serving = kill(PAGE_3, "the node serving the events' point in time", lambda: _serving(cluster, events_index))
    played = harness.play([Step(2, serving, must_complete=True)], expected, played)
    assert played.records[2][0]["metrics"]["pit_reopened"] >= 1, played.records[2]
    played = harness.play(
        [Step(3, kill(PAGE_2, "the elected master", cluster.master), must_complete=True)], expected, played
    )
    assert cluster.master() is not victims[2]
    played = harness.play([Step(4)], expected, played)
    assert played.fired == 3 and played.completed_under_fault == 3, played.log
    assert set(played.statuses) == {"succeeded"}, played.log
    retried = [
        sum("transient Elasticsearch error" in line for line in played.results[k].stderr.splitlines())
        for k in (1, 2, 3)
    ]
    print(f"{played.log}\nrequests retried after each kill: {retried}")


def test_a_rolling_restart_during_a_backfill_loses_no_alert(cluster: esnode.Cluster, cluster_env: JobEnv) -> None:
    """Nine runs, one interval apart (``run --all --now T+k*interval``); each node in turn restarted (stopped,
    started on its data and port, the cluster green again before the next) while the runs go on."""
    schedule = _schedule(9)
    harness, reference = _harness(cluster_env, cluster, schedule)
    restarts: list[RestartNode] = []
    for node in cluster.nodes:
        restarts.append(RestartNode(PAGE_2, node, _green(cluster), restarts[-1] if restarts else None))
    steps = [Step(k, restarts[(k - 1) // 2] if k in (1, 3, 5) else None, must_complete=True) for k in range(8)]
    expected = [(alerted, set[str]()) for alerted in reference]
    try:
        played = harness.play(steps, expected)
    finally:  # never leave a restart running behind the test
        for restart in restarts:
            restart.join()
    played = harness.play([Step(8)], expected, played)
    assert played.fired == 3, played.log
    assert set(played.statuses) == {"succeeded"}, played.log
    print(played.log)
