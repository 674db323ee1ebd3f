"""A real three-node cluster on loopback (esnode.start_cluster): it forms, keeps serving when a node or
the elected master is SIGKILLed, takes the node back on restart, and survives a rolling restart.

The session's cluster (the ``cluster`` fixture, tests/conftest.py) serves every test; each leaves it
green with three nodes.
"""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch, helpers

from esnode import esnode

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

DOCS = 200


def _client(node: esnode.RunningNode) -> Elasticsearch:
    return Elasticsearch(node.url, request_timeout=60, retry_on_timeout=True, max_retries=5)


def _replicated_index(cluster: esnode.Cluster, name: str) -> None:
    with _client(cluster.master()) as es:
        es.indices.create(index=name, settings={"number_of_shards": 1, "number_of_replicas": 1})
        actions = ({"_op_type": "create", "_index": name, "_id": str(i), "_source": {"n": i}} for i in range(DOCS))
        helpers.bulk(es, actions, refresh=True)
    cluster.wait_for(status="green", nodes=3)


def _count(node: esnode.RunningNode, index: str) -> int:
    with _client(node) as es:
        return int(es.count(index=index)["count"])


def test_three_master_eligible_data_nodes_form_a_green_cluster(cluster: esnode.Cluster) -> None:
    health = cluster.health()
    assert (health["status"], health["number_of_nodes"], health["number_of_data_nodes"]) == ("green", 3, 3)
    rows = esnode.get_json(cluster.url, "/_cat/nodes?format=json&h=name,node.role,ip")
    assert sorted(row["name"] for row in rows) == ["es0", "es1", "es2"]
    for row in rows:
        assert "m" in row["node.role"] and "d" in row["node.role"], row
        assert row["ip"] == "127.0.0.1"
    assert cluster.master() in cluster.nodes
    for node in cluster.nodes:  # every node answers for the whole cluster, at its own URL
        assert esnode.get_json(node.url, "/_cluster/health")["number_of_nodes"] == 3
    assert len(set(cluster.urls)) == 3


def test_an_index_with_one_replica_is_green_with_its_copies_on_two_nodes(cluster: esnode.Cluster) -> None:
    _replicated_index(cluster, "replicated")
    primary = cluster.holding("replicated", primary=True)
    replica = cluster.holding("replicated", primary=False)
    assert primary is not replica
    assert _count(replica, "replicated") == DOCS


def test_a_killed_data_node_leaves_the_cluster_serving_and_rejoins_on_restart(cluster: esnode.Cluster) -> None:
    _replicated_index(cluster, "kill-data")
    victim = cluster.holding("kill-data", primary=True)
    url = victim.url
    victim.kill()
    cluster.wait_for(status="yellow", nodes=2)
    survivor = cluster.holding("kill-data", primary=True)  # the replica was promoted
    assert survivor is not victim
    assert _count(survivor, "kill-data") == DOCS
    with _client(survivor) as es:
        es.index(index="kill-data", id="after-kill", document={"n": -1}, refresh=True)
    victim.restart()
    assert victim.url == url
    cluster.wait_for(status="green", nodes=3)
    assert _count(victim, "kill-data") == DOCS + 1


def test_killing_the_elected_master_elects_another_and_it_rejoins(cluster: esnode.Cluster) -> None:
    _replicated_index(cluster, "kill-master")
    old = cluster.master()
    old.kill()
    cluster.wait_for(status="yellow", nodes=2)
    new = cluster.master()
    assert new is not old
    assert _count(new, "kill-master") == DOCS
    old.restart()
    cluster.wait_for(status="green", nodes=3)
    assert esnode.get_json(old.url, "/_cluster/health")["number_of_nodes"] == 3


def test_a_rolling_restart_keeps_every_document(cluster: esnode.Cluster) -> None:
    _replicated_index(cluster, "rolling")
    for node in cluster.nodes:
        node.restart()
        cluster.wait_for(status="green", nodes=3)
        assert _count(node, "rolling") == DOCS
