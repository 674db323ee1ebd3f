"""Threshold searches on the real node: composite pages past 10,000 buckets, the conditions, the combined timestamp,
the signal history across overlapping windows and as read back from alerts (request builders and parsers, no run)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.alerts.build import build_alert
from job.alerts.template import alert_properties
from job.rules.aggregation_params import ThresholdParams
from job.rules.model import Rule
from job.ruletypes.aggsearch import MAX_SIGNALS_WARNING, EventQuery
from job.ruletypes.threshold.execute import execute_window
from job.ruletypes.threshold.history import SignalHistory, history_request, parse_history_page, read_history
from job.ruletypes.threshold.search import find_buckets
from job.window import Window, isoformat
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


KEYS = 12_000  # keys k00000..k11999; the even ones have 2 events, the odd ones 1


@pytest.fixture(scope="module")
def many_buckets(es: Elasticsearch) -> Iterator[str]:
    name = f"test-threshold-many-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=name, mappings=MAPPING)
    docs = [
        {"@timestamp": _at(1 + (i % 5)), "host": {"name": f"k{i:05d}"}}
        for i in range(KEYS)
        for _ in range(2 if i % 2 == 0 else 1)
    ]
    _index(es, name, docs)
    yield name
    es.indices.delete(index=name)


@pytest.mark.parametrize(
    ("max_signals", "found", "searches", "warning"),
    [
        (100_000, KEYS // 2, 3, None),  # 10,000 + 2,000 buckets, then an empty page
        (KEYS // 2, KEYS // 2, 3, None),
        (4_999, 4_999, 1, MAX_SIGNALS_WARNING),  # the first page holds 5,000 that pass: more than 4,999
    ],
)
def test_composite_pages_past_ten_thousand_buckets(
    es: Elasticsearch, many_buckets: str, max_signals: int, found: int, searches: int, warning: str | None
) -> None:
    query = EventQuery(({"match_all": {}},), (), PLAIN).for_window(WINDOW)
    result = find_buckets(searcher(es, many_buckets), _params(["host.name"], 2), query, PLAIN, max_signals=max_signals)
    assert (len(result.buckets), result.searches, result.warning) == (found, searches, warning)
    expected = [f"k{i:05d}" for i in range(0, KEYS, 2)][:found]  # composite order: the keys' byte order
    assert [bucket.terms[0][1] for bucket in result.buckets] == expected
    assert all(bucket.count == 2 for bucket in result.buckets)


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
    es: Elasticsearch, events: str, params: ThresholdParams, expected: dict[tuple[str, ...], int]
) -> None:
    _index(
        es,
        events,
        [
            {"@timestamp": _at(m), "host": {"name": h}, "user": {"name": u}, "source": {"ip": ip}}
            for h, u, ip, m in GROUPS
        ],
    )
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


def _run(es: Elasticsearch, index: str, params: ThresholdParams, window: Window, history: SignalHistory) -> Any:
    return execute_window(
        searcher(es, index),
        params,
        EventQuery(({"match_all": {}},), (), PLAIN),
        window,
        history,
        max_signals=100,
        index_patterns=[index],
        rule_id="rule-1",
        space_id="default",
        started_at=window.end,
    )


@pytest.mark.parametrize("fields", [["host.name"], []])
def test_overlapping_windows_never_count_an_event_twice(es: Elasticsearch, events: str, fields: list[str]) -> None:
    params = _params(fields, 3)
    _index(es, events, [{"@timestamp": _at(m), "host": {"name": "h1"}} for m in (9, 8, 7)])
    first = _run(es, events, params, WINDOW, SignalHistory.empty())
    assert [(bucket.count, bucket.last) for bucket in first.buckets] == [(3, NOW - timedelta(minutes=7))]
    history = first.history.with_buckets(first.buckets)

    later = Window(WINDOW.start + timedelta(minutes=5), WINDOW.end + timedelta(minutes=5))  # overlaps by 5 minutes
    rerun = _run(es, events, params, WINDOW, history)
    assert rerun.alerts == ()  # the same window again: its events were counted
    _index(es, events, [{"@timestamp": isoformat(NOW + timedelta(minutes=m)), "host": {"name": "h1"}} for m in (1, 2)])
    assert _run(es, events, params, later, history).alerts == ()  # 2 new events, and the 3 old ones do not count
    _index(es, events, [{"@timestamp": isoformat(NOW + timedelta(minutes=3)), "host": {"name": "h1"}}])
    second = _run(es, events, params, later, history)
    assert [(bucket.count, bucket.first) for bucket in second.buckets] == [(3, NOW + timedelta(minutes=1))]
    assert second.alerts[0].alert_id != first.alerts[0].alert_id


def test_the_history_read_back_from_alerts(es: Elasticsearch, events: str) -> None:
    """Alerts as the builder writes them, in an index with the alert mapping: the history request pages through
    them and finds the same entries the run kept, so a first run after a lost record counts nothing twice."""
    params = _params(["host.name", "destination.port"], 2)
    docs = [
        {"@timestamp": _at(m), "host": {"name": f"h{i}"}, "destination": {"port": 22 + i}}
        for i in range(5)
        for m in (9 - i, 8 - i)
    ]
    _index(es, events, docs)
    found = _run(es, events, params, WINDOW, SignalHistory.empty())
    assert len(found.alerts) == 5
    # The alert builder makes query-rule alerts until the rule types are wired in; the fields the history reads
    # (rule, space, original_time, parameters.threshold, and the threshold result added here) are the same.
    rule = Rule.model_validate(
        {
            "rule_id": "rule-1",
            "name": "Many logons",
            "description": "",
            "type": "query",
            "index": [events],
            "severity": "low",
            "risk_score": 21,
            "threshold": {"field": params.field, "value": 2},
        }
    )
    alerts_index = f"{events}-alerts"
    es.indices.create(index=alerts_index, mappings={"dynamic": False, "properties": alert_properties()})
    try:
        documents = []
        for alert in found.alerts:
            document = build_alert(rule, alert.hit, now=NOW, execution_uuid="e", space_id="default")
            document.update(alert.fields)
            document["kibana.alert.uuid"] = alert.alert_id
            documents.append({"_index": alerts_index, "_id": alert.alert_id, "_source": document})
        bulk_index(es, documents)
        search = searcher(es, alerts_index)
        requests: list[dict[str, Any]] = []

        def recorded(body: dict[str, Any]) -> Mapping[str, Any]:
            requests.append(body)
            return search(body)

        read = read_history(recorded, "rule-1", "default", params.field, WINDOW, size=2)
        assert len(requests) == 3  # 5 alerts, 2 a page
        assert read == found.history.with_buckets(found.buckets)
        assert _run(es, events, params, WINDOW, read).alerts == ()
        other = parse_history_page(search(history_request("other-rule", "default", params.field, WINDOW)), params.field)
        assert other == ([], None)
        fewer = parse_history_page(search(history_request("rule-1", "default", ["host.name"], WINDOW)), ["host.name"])
        assert fewer == ([], None)  # alerts of the rule when it grouped by other fields are not its history
    finally:
        es.indices.delete(index=alerts_index)


@pytest.mark.parametrize("fields", [["host.name"], []])
def test_a_pattern_that_matches_no_index_finds_no_bucket(es: Elasticsearch, fields: list[str]) -> None:
    """The indices vanished after the preflight: the search runs on no shard and finds nothing."""
    query = EventQuery(({"match_all": {}},), (), PLAIN).for_window(WINDOW)
    result = find_buckets(
        searcher(es, f"test-none-{uuid.uuid4().hex}-*"), _params(fields, 1), query, PLAIN, max_signals=10
    )
    assert (result.buckets, result.warning) == ((), None)
