"""Threshold searches on the real node: composite pages past 10,000 buckets, the conditions, the combined timestamp,
a search on no shard (request builders and parsers, no run; tests/integration/run/test_run_threshold.py runs rules)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.rules.aggregation_params import ThresholdParams
from job.ruletypes.threshold.search import find_buckets
from job.search.aggregations import EventQuery
from job.window import isoformat
from tests.rule_search import KEYWORD, NOW, OVERRIDE, PLAIN, bulk_index, searcher, window

pytestmark = pytest.mark.integration

WINDOW = window(10)
MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"ingested": {"type": "date"}}},
        "host": {"properties": {"name": KEYWORD}},
        "user": {"properties": {"name": KEYWORD}},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "destination": {"properties": {"port": {"type": "long"}}},
    }
}


def _index(es: Elasticsearch, name: str, docs: list[dict[str, Any]]) -> None:
    bulk_index(es, ({"_index": name, "_source": doc} for doc in docs))


def _at(minutes: float) -> str:
    return isoformat(NOW - timedelta(minutes=minutes))


def _params(fields: list[str], value: int, cardinality: tuple[str, int] | None = None) -> ThresholdParams:
    data: dict[str, Any] = {"field": fields, "value": value}
    if cardinality is not None:
        data["cardinality"] = [{"field": cardinality[0], "value": cardinality[1]}]
    return ThresholdParams.model_validate(data)


@pytest.fixture
def events(es: Elasticsearch) -> Iterator[str]:
    name = f"test-threshold-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=name, mappings=MAPPING)
    yield name
    es.indices.delete(index=name)


@pytest.fixture(scope="module")
def group_events(es: Elasticsearch) -> Iterator[str]:
    """The events of :data:`GROUPS`, indexed once for every case of the conditions test."""
    name = f"test-threshold-groups-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=name, mappings=MAPPING)
    docs = [
        {"@timestamp": _at(m), "host": {"name": h}, "user": {"name": u}, "source": {"ip": ip}} for h, u, ip, m in GROUPS
    ]
    _index(es, name, docs)
    yield name
    es.indices.delete(index=name)


# (host, user, source ip, minutes ago) of the events of the conditions test
GROUPS = [
    *(("h1", "bob", f"10.0.0.{i}", 1 + i) for i in range(5)),  # 5 events, 5 addresses
    *(("h2", "bob", "10.0.0.1", 2) for _ in range(6)),  # 6 events, one address
    *(("h3", "al", f"10.0.1.{i % 2}", 3) for i in range(4)),  # 4 events, 2 addresses
    ("h4", "al", "10.0.2.1", 30),  # outside the window
    ("h4", "al", "10.0.2.2", 1),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (_params(["host.name"], 4), {("h1",): 5, ("h2",): 6, ("h3",): 4}),
        (_params(["host.name"], 5), {("h1",): 5, ("h2",): 6}),
        (_params(["host.name"], 1, ("source.ip", 2)), {("h1",): 5, ("h3",): 4}),
        (_params(["host.name"], 5, ("source.ip", 5)), {("h1",): 5}),
        (
            _params(["user.name", "host.name"], 1),
            {("bob", "h1"): 5, ("bob", "h2"): 6, ("al", "h3"): 4, ("al", "h4"): 1},
        ),
        (_params([], 16), {(): 16}),
        (_params([], 17), {}),
        (_params([], 1, ("user.name", 2)), {(): 16}),
        (_params([], 1, ("user.name", 3)), {}),
    ],
)
def test_the_conditions(
    es: Elasticsearch, group_events: str, params: ThresholdParams, expected: dict[tuple[str, ...], int]
) -> None:
    events = group_events
    query = EventQuery(({"match_all": {}},), (), PLAIN).for_window(WINDOW)
    result = find_buckets(searcher(es, events), params, query, PLAIN, max_signals=100)
    found = {tuple(value for _, value in bucket.terms): bucket.count for bucket in result.buckets}
    assert found == expected


def test_the_combined_timestamp_without_scripts(es: Elasticsearch, events: str) -> None:
    """With an override and its fallback, a bucket spans the override's times and, for events lacking it,
    ``@timestamp`` (Kibana's runtime field ``kibana.combined_timestamp``)."""
    _index(
        es,
        events,
        [
            {"@timestamp": _at(9), "event": {"ingested": _at(5)}, "host": {"name": "h"}},
            {"@timestamp": _at(8), "host": {"name": "h"}},  # no override: its @timestamp counts
            {"@timestamp": _at(9), "event": {"ingested": _at(2)}, "host": {"name": "h"}},
            {"@timestamp": _at(0.5), "event": {"ingested": _at(20)}, "host": {"name": "h"}},  # outside by its override
        ],
    )
    query = EventQuery(({"match_all": {}},), (), OVERRIDE).for_window(WINDOW)
    result = find_buckets(searcher(es, events), _params(["host.name"], 1), query, OVERRIDE, max_signals=10)
    [bucket] = result.buckets
    assert (bucket.count, bucket.first, bucket.last) == (3, NOW - timedelta(minutes=8), NOW - timedelta(minutes=2))


@pytest.mark.parametrize("fields", [["host.name"], []])
def test_a_pattern_that_matches_no_index_finds_no_bucket(es: Elasticsearch, fields: list[str]) -> None:
    """The indices vanished after the preflight: the search runs on no shard and finds nothing."""
    query = EventQuery(({"match_all": {}},), (), PLAIN).for_window(WINDOW)
    result = find_buckets(
        searcher(es, f"test-none-{uuid.uuid4().hex}-*"), _params(fields, 1), query, PLAIN, max_signals=10
    )
    assert (result.buckets, result.more) == ((), False)
