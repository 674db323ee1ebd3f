"""Build, start, stop, kill and restart local Elasticsearch nodes and clusters (standard library only).

Command line (``make es-up`` / ``make es-down`` call it)::

    python esnode/esnode.py up      # build if needed, start in the background, print the URL last
    python esnode/esnode.py down    # stop every node ``up`` started; no JVM is left behind
    python esnode/esnode.py url     # print the URL of the running node (comma-separated for a cluster)
    python esnode/esnode.py build   # resolve the jars and compile the launcher

``ES_VERSION`` (or ``--es-version``) picks the release: ``8.19.21`` (the default, also ``8``) or
``9.5.4`` (also ``9``); any other exact release is built on demand. Each release is built in its
own folder (``esnode/target/<version>``), so switching never rebuilds the other. ``NODES=3`` (or
``--nodes 3``) starts a cluster of three nodes instead of one. ``ESQL=1`` (or ``--esql``) starts the
ES|QL node instead: one 8.19 node that also loads the x-pack plugins serving ``POST /_query`` (built
in ``esnode/target/<version>-esql``, its data beside the plain node's; 9.x has none, an error). A node
started again on an existing data folder gets its previous HTTP port back, so a URL stays valid across
restarts.

The JDK: ``ES_JAVA_HOME`` if set (it must be new enough), else ``JAVA_HOME`` or the ``javac`` on
the PATH if new enough (Java 17 for 8.x, 21 for 9.x), else the newest suitable JDK installed in
the usual JVM folders.

Python API (the pytest fixtures use it; ``watch_stdin=True`` makes the JVMs die with the test run
even if pytest is killed)::

    node = esnode.start(workdir, watch_stdin=True, version="9")    # RunningNode, ready to serve
    node = esnode.start(workdir, watch_stdin=True, esql=True)      # the ES|QL node (8.x only)
    node.url, node.port, node.version, node.name, node.pid
    node.kill()       # SIGKILL, as the OOM killer or a lost host would
    node.restart()    # start again (stopping it first if alive): same data, same ports; waits until it serves
    node.pause()      # SIGSTOP: the process hangs, connections stay open, nothing answers
    node.resume()     # SIGCONT
    node.stop()       # graceful shutdown; False when it had to be SIGKILLed after 30 s

    cluster = esnode.start_cluster(workdir, nodes=3, watch_stdin=True)   # Cluster, green
    cluster.hosts                          # "http://127.0.0.1:p0,http://...": DETECTION_ES_HOSTS
    cluster.nodes, cluster.node("es1")
    cluster.master()                       # the RunningNode that is the elected master now
    cluster.holding("alerts", shard=0, primary=False)   # the RunningNode holding that copy
    cluster.health(wait_for_status="green", wait_for_nodes="3")   # GET _cluster/health via a live node
    cluster.wait_for(status="green", nodes=3)   # blocks until so, NodeError after a timeout
    cluster.stop()

    with esnode.running_node(workdir) as node: ...   # and running_cluster(workdir): stopped on exit

A rolling restart is ``for n in cluster.nodes: n.restart(); cluster.wait_for(status="green")``.

In pytest (tests/conftest.py): ``es_node`` is the session's RunningNode (None with
``DETECTION_ES_HOSTS``), ``es_url`` its URL behind the recording proxy, which stays valid across
``es_node.kill()`` + ``es_node.restart()`` (while the node is down the proxy drops connections, as
a dead node would). A test that kills or pauses the session node must restart or resume it, in a
``finally``; a test that means to kill or pause a node starts one of its own (``start``, module scope).
``cluster`` is the session's three-node cluster (started once, by the first test that asks), green
with three nodes before and after each test (dead nodes restarted, paused ones resumed); give the job
``cluster.hosts``. ``esql_url`` is the URL of the session's ES|QL node (started once, by the first
ES|QL test; skipped in a 9.x session).

Modules: build.py (releases, JDK, Maven and javac), node.py (RunningNode), cluster.py (Cluster);
this file re-exports their API and is the command line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the package, not this file
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from esnode.build import (  # noqa: E402
    DEFAULT_VERSION,
    ES8_VERSION,
    ES9_VERSION,
    ESQL_PLUGINS,
    TESTED_VERSIONS,
    Build,
    NodeError,
    build,
    find_java,
    required_java,
    resolve_version,
)
from esnode.cluster import Cluster, running_cluster, start_cluster  # noqa: E402
from esnode.node import NodeSpec, RunningNode, get_json, healthy, read_port, running_node, start  # noqa: E402

__all__ = [
    "DEFAULT_VERSION",
    "ESQL_PLUGINS",
    "ES8_VERSION",
    "ES9_VERSION",
    "TESTED_VERSIONS",
    "Build",
    "Cluster",
    "NodeError",
    "NodeSpec",
    "RunningNode",
    "build",
    "find_java",
    "get_json",
    "healthy",
    "required_java",
    "resolve_version",
    "running_cluster",
    "running_node",
    "start",
    "start_cluster",
]

DEFAULT_WORKDIR = Path(__file__).resolve().parent.parent / ".esnode"


# --- background nodes for make es-up / es-down ---------------------------------------------------


def esql_wanted(value: str | None = None) -> bool:
    """Whether ``ESQL`` (or ``value``) asks for the ES|QL node: 1/true/yes, or 0/false/no/empty."""
    text = (os.environ.get("ESQL", "") if value is None else value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("", "0", "false", "no"):
        return False
    raise ValueError(f"ESQL must be 1 or 0, not {text!r}")


def _background_dir(root: Path, version: str, nodes: int, esql: bool = False) -> Path:
    if esql:
        return root / f"{version}-esql"
    return root / (version if nodes == 1 else f"{version}-{nodes}nodes")


def _node_dirs(folder: Path, nodes: int) -> list[Path]:
    return [folder] if nodes == 1 else [folder / f"es{i}" for i in range(nodes)]


def _running_pid(workdir: Path) -> int | None:
    try:
        pid = int((workdir / "node.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def current_url(
    root: Path = DEFAULT_WORKDIR, version: str | None = None, nodes: int = 1, esql: bool = False
) -> str | None:
    """URL (comma-separated for a cluster) of the background node(s) ``up`` started, if all run and serve."""
    urls = []
    for folder in _node_dirs(_background_dir(root, resolve_version(version), nodes, esql), nodes):
        port = read_port(folder / "http.port")
        if _running_pid(folder) is None or port is None:
            return None
        urls.append(f"http://127.0.0.1:{port}")
    return ",".join(urls) if healthy(urls[0]) else None


def up(root: Path = DEFAULT_WORKDIR, version: str | None = None, nodes: int = 1, esql: bool = False) -> str:
    """Start the background node (or cluster, or ES|QL node) unless it already runs; return its URL(s)."""
    version = resolve_version(version)
    if esql and nodes != 1:
        raise ValueError("the ES|QL node is a single node: ESQL=1 with NODES=1")
    url = current_url(root, version, nodes, esql)
    if url is not None:
        return url
    folder = _background_dir(root, version, nodes, esql)
    for workdir in _node_dirs(folder, nodes):
        _stop_pid(workdir)
    if nodes == 1:
        started = [start(folder, watch_stdin=False, version=version, esql=esql)]
    else:
        started = start_cluster(folder, nodes=nodes, watch_stdin=False, version=version).nodes
    for node in started:
        (node.workdir / "node.pid").write_text(str(node.pid))
    return ",".join(node.url for node in started)


def _stop_pid(workdir: Path, timeout: float = 30.0) -> bool:
    pid = _running_pid(workdir)
    (workdir / "node.pid").unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True


def down(root: Path = DEFAULT_WORKDIR) -> int:
    """Stop every background node ``up`` started under ``root`` (any version); return how many ran."""
    if not root.is_dir():
        return 0
    return sum(_stop_pid(pid_file.parent) for pid_file in sorted(root.rglob("node.pid")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "url", "build"])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="root of the background nodes' data")
    parser.add_argument("--es-version", default=None, help="8, 9 or an exact release (default: $ES_VERSION or 8)")
    parser.add_argument("--nodes", type=int, default=None, help="1 (default: $NODES or 1) or a cluster of 2 or more")
    parser.add_argument("--esql", action="store_true", help="the ES|QL node (default: $ESQL, 1 or 0)")
    args = parser.parse_args(argv)
    try:
        nodes = args.nodes or int(os.environ.get("NODES") or 1)
        esql = args.esql or esql_wanted()
        if args.command == "build":
            build(args.es_version, esql=esql)
        elif args.command == "up":
            began = time.monotonic()
            url = up(args.workdir, args.es_version, nodes, esql)
            what = f"local Elasticsearch {resolve_version(args.es_version)}" + (f", {nodes} nodes," * (nodes > 1))
            what += " with ES|QL" * esql
            print(f"{what} ready in {time.monotonic() - began:.1f}s", file=sys.stderr)
            print(url)
        elif args.command == "down":
            stopped = down(args.workdir)
            print(f"stopped {stopped} node{'s' if stopped != 1 else ''}" if stopped else "not running")
        else:
            running = current_url(args.workdir, args.es_version, nodes, esql)
            if running is None:
                print("not running", file=sys.stderr)
                return 1
            print(running)
    except (NodeError, ValueError) as exc:
        print(f"esnode: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
