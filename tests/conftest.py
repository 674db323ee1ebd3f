"""Shared fixtures. Integration tests talk to a real Elasticsearch node, never a mock.

``DETECTION_ES_HOSTS`` set: the tests use that cluster. Not set: the session starts the local node
(esnode/esnode.py) with its data in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from esnode import esnode

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("DETECTION_ES_HOSTS")
    if configured:
        yield configured.split(",")[0].strip()
        return
    node = esnode.start(tmp_path_factory.mktemp("esnode"), watch_stdin=True)
    try:
        yield node.url
    finally:
        node.stop()


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
