"""A cluster of local Elasticsearch nodes on loopback: every node master-eligible and a data node.

Node ``esI`` lives in ``WORKDIR/esI`` (its own data path) and listens on loopback HTTP and
transport ports chosen at the first start and kept across restarts; discovery is seeded with every
node's transport address, and the first start bootstraps the cluster with all of them as initial
master nodes. See esnode.py for the API as the tests use it.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esnode.build import NodeError, build, resolve_version
from esnode.node import CLUSTER_NODE_HEAP_MB, READY_TIMEOUT_S, NodeSpec, RunningNode, free_port, get_json, read_port

# --- a cluster -----------------------------------------------------------------------------------


@dataclass
class Cluster:
    """Several master-eligible data nodes on loopback that discover each other."""

    nodes: list[RunningNode] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.nodes[0].version

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def hosts(self) -> str:
        """All nodes' URLs, comma-separated (the form ``DETECTION_ES_HOSTS`` takes)."""
        return ",".join(self.urls)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def node(self, name: str) -> RunningNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise NodeError(f"no node named {name!r}; nodes: {[n.name for n in self.nodes]}")

    def _get(self, path: str, timeout: float = 30.0, *, also: tuple[int, ...] = ()) -> Any:
        """GET through the first live, unpaused node that answers."""
        errors = []
        for node in self.nodes:
            if node.alive and not node.paused:
                try:
                    return get_json(node.url, path, timeout, also=also)
                except (OSError, ValueError) as exc:
                    errors.append(f"{node.name}: {exc}")
        raise NodeError(f"no node answered GET {path}: {'; '.join(errors) or 'none is running'}")

    def health(self, **params: str) -> dict[str, Any]:
        """``GET /_cluster/health`` with these query parameters, through a live node (``timed_out`` if it waited
        for something that did not happen; Elasticsearch answers those with 408)."""
        query = urllib.parse.urlencode(params)
        result: dict[str, Any] = self._get(f"/_cluster/health{'?' + query if query else ''}", also=(408,))
        return result

    def wait_for(self, *, status: str = "green", nodes: int | None = None, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the cluster has ``status`` (or better) and, if given, exactly ``nodes`` nodes."""
        params = {"wait_for_status": status, "timeout": "5s", "wait_for_no_initializing_shards": "true"}
        if nodes is not None:
            params["wait_for_nodes"] = str(nodes)
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.health(**params)
            except NodeError as exc:
                last = str(exc)
                time.sleep(0.5)
                continue
            if isinstance(last, dict) and not last.get("timed_out"):
                return
        raise NodeError(f"the cluster did not reach {status} with {nodes} nodes within {timeout:.0f}s: {last}")

    def master(self) -> RunningNode:
        """The node that is the elected master right now."""
        rows = self._get("/_cat/master?format=json")
        return self.node(rows[0]["node"])

    def holding(self, index: str, shard: int = 0, *, primary: bool = True) -> RunningNode:
        """The node that holds the started primary (or a started replica) of ``index``'s ``shard``."""
        rows = self._get(f"/_cat/shards/{urllib.parse.quote(index)}?format=json&h=shard,prirep,state,node")
        wanted = "p" if primary else "r"
        for row in rows:
            if int(row["shard"]) == shard and row["prirep"] == wanted and row["state"] == "STARTED":
                return self.node(row["node"])
        raise NodeError(f"no started {'primary' if primary else 'replica'} of {index}[{shard}]: {rows}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_specs(workdir: Path, version: str, nodes: int) -> list[NodeSpec]:
    """One spec per node: the ports it had before if its folder exists, fresh free ports otherwise."""
    names = [f"es{i}" for i in range(nodes)]
    specs = []
    for name in names:
        folder = workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        has_data = (folder / "data").exists()
        transport = (read_port(folder / "transport.port") if has_data else None) or free_port()
        (folder / "transport.port").write_text(str(transport))
        http = (read_port(folder / "http.port") if has_data else None) or free_port()
        specs.append(
            NodeSpec(folder, version, name, http, transport, initial_masters=tuple(names), heap_mb=CLUSTER_NODE_HEAP_MB)
        )
    seeds = tuple(f"127.0.0.1:{spec.transport_port}" for spec in specs)
    for spec in specs:
        spec.seed_hosts = seeds
    return specs


def start_cluster(workdir: Path, *, nodes: int = 3, watch_stdin: bool, version: str | None = None) -> Cluster:
    """Build if needed, start ``nodes`` master-eligible data nodes under ``workdir``; return them green."""
    if nodes < 2:
        raise NodeError("a cluster needs at least 2 nodes; use start() for one")
    version = resolve_version(version)
    build(version)
    cluster = Cluster([RunningNode(spec, watch_stdin=watch_stdin) for spec in _cluster_specs(workdir, version, nodes)])
    try:
        for node in cluster.nodes:
            node.launch()
        for node in cluster.nodes:
            node.wait_ready()
        cluster.wait_for(status="green", nodes=nodes)
    except BaseException:
        for node in cluster.nodes:
            node.kill()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(workdir: Path, *, nodes: int = 3, version: str | None = None) -> Iterator[Cluster]:
    """A cluster that dies with the calling process and is stopped when the block ends."""
    cluster = start_cluster(workdir, nodes=nodes, watch_stdin=True, version=version)
    try:
        yield cluster
    finally:
        cluster.stop()
