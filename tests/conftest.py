"""Shared fixtures. Integration tests talk to a real Elasticsearch node, never a mock.

``DETECTION_ES_HOSTS`` set: the tests use that cluster. Not set: the session starts the local node
(esnode/esnode.py) of the release ``ES_VERSION`` names (default 8.19.x; ``ES_VERSION=9`` for the
pinned 9.x) with its data in a temporary folder, and stops it at the end.

Every request to the local node goes through a recording proxy (tests/faultproxy.py): a test during
which the node answered any request with a ``Warning`` header (a deprecation) fails, naming the
request. That covers the job's requests in this process and in the subprocesses the tests start, and
the tests' own requests. ``es_node`` is the node itself (kill, pause, restart: see esnode.py); its
URL stays the same across restarts, so ``es_url`` does too.

Any test that uses ``es_url`` is marked ``integration`` (make test runs those once per release).

``esql_url`` is the session's ES|QL node (``esnode.start(..., esql=True)``: 8.19 with the x-pack ES|QL
plugins), started once by the first test that asks for it and used only by the ES|QL tests (marked
``integration`` and ``esql``). 9.x has no local ES|QL engine, so in a 9.x session they are skipped; with
``DETECTION_ES_HOSTS`` they run on that cluster, which has ES|QL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from esnode import esnode
from tests.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent

_recorder: FaultProxy | None = None


def pytest_report_header(config: pytest.Config) -> str:
    del config
    if os.environ.get("DETECTION_ES_HOSTS"):
        return "elasticsearch: the cluster DETECTION_ES_HOSTS names"
    return f"elasticsearch: local node {esnode.resolve_version(None)} (ES_VERSION={os.environ.get('ES_VERSION', '')!r})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "es_url" in names or "esql_url" in names:
            item.add_marker(pytest.mark.integration)
        if "esql_url" in names:
            item.add_marker(pytest.mark.esql)


@pytest.fixture(scope="session")
def es_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[esnode.RunningNode | None]:
    """The session's local node (None when ``DETECTION_ES_HOSTS`` names a cluster)."""
    if os.environ.get("DETECTION_ES_HOSTS"):
        yield None
        return
    node = esnode.start(tmp_path_factory.mktemp("esnode"), watch_stdin=True)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def es_url(es_node: esnode.RunningNode | None) -> Iterator[str]:
    global _recorder
    if es_node is None:
        yield os.environ["DETECTION_ES_HOSTS"].split(",")[0].strip()
        return
    with FaultProxy(es_node.url) as recorder:
        _recorder = recorder
        try:
            yield recorder.url
        finally:
            _recorder = None


@pytest.fixture(scope="session")
def esql_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[esnode.RunningNode | None]:
    """The session's ES|QL node (None when ``DETECTION_ES_HOSTS`` names a cluster); skips in a 9.x session."""
    if os.environ.get("DETECTION_ES_HOSTS"):
        yield None
        return
    version = esnode.resolve_version(None)
    if not version.startswith("8."):
        pytest.skip(f"no local ES|QL engine for Elasticsearch {version}: the ES|QL tests run in the 8.19 session")
    node = esnode.start(tmp_path_factory.mktemp("esql"), watch_stdin=True, esql=True)
    try:
        yield node
    finally:
        # The CATEGORIZE test leaves a task the engine cannot finish: the node must still stop by itself.
        assert node.stop(), "the ES|QL node did not stop within 30 s and was killed"


@pytest.fixture(scope="session")
def esql_url(esql_node: esnode.RunningNode | None) -> str:
    """The URL of a node that answers ``POST /_query``."""
    if esql_node is None:
        return os.environ["DETECTION_ES_HOSTS"].split(",")[0].strip()
    return esql_node.url


@pytest.fixture(scope="session")
def es_version(es_node: esnode.RunningNode | None, es_url: str) -> str:
    """The release the cluster runs: the one the session started, else as the cluster's nodes report it."""
    if es_node is not None:
        return es_node.version
    nodes = esnode.get_json(es_url, "/_nodes/_local?filter_path=nodes.*.version")["nodes"]
    return str(next(iter(nodes.values()))["version"])


@pytest.fixture
def es_warnings(es_url: str) -> FaultProxy:
    """The session's recording proxy, for a test that means to provoke a warning and take it."""
    if _recorder is None:
        pytest.skip("DETECTION_ES_HOSTS names a cluster: no recording proxy")
    return _recorder


@pytest.fixture(autouse=True)
def _no_elasticsearch_warnings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if the node sent a Warning header (a deprecation) for any request made during it."""
    yield
    if _recorder is not None and (warnings := _recorder.take_warnings()):
        lines = "\n".join(f"  {method} {path}: {warning}" for method, path, warning in warnings)
        pytest.fail(f"Elasticsearch warned during {request.node.nodeid}:\n{lines}", pytrace=False)


@pytest.fixture(scope="session")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[esnode.Cluster]:
    """A three-node local cluster (esnode.start_cluster) of the session's release, started by the first test
    that needs it and shared by every cluster test (one start per session)."""
    with esnode.running_cluster(tmp_path_factory.mktemp("cluster"), nodes=3) as cluster:
        yield cluster


@pytest.fixture
def cluster(three_nodes: esnode.Cluster) -> Iterator[esnode.Cluster]:
    """The session's cluster, green with three nodes before and after each test (dead nodes restarted,
    paused ones resumed)."""
    three_nodes.wait_for(status="green", nodes=3)
    yield three_nodes
    for node in three_nodes.nodes:
        node.resume()
        if not node.alive:
            node.restart()
    three_nodes.wait_for(status="green", nodes=3)


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=60)
    yield client
    client.close()


@pytest.fixture
def index_name(es: Elasticsearch) -> Iterator[str]:
    """A fresh index-name prefix for one test; everything under it is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    existing = es.indices.get(index=f"{name}*", expand_wildcards="all", ignore_unavailable=True)
    if existing:
        es.indices.delete(index=",".join(existing))


@pytest.fixture
def es_env(es_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the job's settings at the test cluster."""
    monkeypatch.setenv("DETECTION_ES_HOSTS", es_url)
    return es_url


@pytest.fixture
def scratch_index(es: Elasticsearch) -> Iterator[Callable[[str], str]]:
    """Makes event indices named ``PREFIX-<random>`` (strings mapped as keywords), deleted afterwards.

    For tests whose rules search a fixed index pattern (``endgame-*``, or one written in a values file).
    """
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        es.indices.create(
            index=name,
            mappings={
                "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
                "properties": {"@timestamp": {"type": "date"}},
            },
        )
        made.append(name)
        return name

    yield make
    for name in made:
        es.indices.delete(index=name)
