"""New-terms searches on the real node: history windows of 7 and 14 days with events before, inside and after them,
array values and missing fields, several fields in batches, booleans, the combined timestamp, and the fields
suppression reads (request builders and parsers with the node's answers, no run)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.ruletypes.new_terms.history import history_window
from job.ruletypes.new_terms.pages import new_terms_pages
from job.ruletypes.new_terms.suppression import suppression_terms
from job.search.aggregations import EventQuery
from job.search.clauses import TimestampFields
from job.window import isoformat
from tests.rule_search import KEYWORD, NOW, OVERRIDE, PLAIN, Search, bulk_index, searcher, window

pytestmark = pytest.mark.integration

WINDOW = window(9)
MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"ingested": {"type": "date"}}},
        "host": {"properties": {"name": KEYWORD, "ip": {"type": "ip"}}},
        "user": {"properties": {"name": KEYWORD}},
        "destination": {"properties": {"port": {"type": "long"}}},
        "flag": {"type": "boolean"},
    }
}


def _ago(days: float = 0, minutes: float = 0) -> str:
    return isoformat(NOW - timedelta(days=days, minutes=minutes))


# (document id, @timestamp, host.ip) of the one-field data set; "A-w" is A's event in the window, and so on
IP_EVENTS: list[tuple[str, str, Any]] = [
    ("A-old", _ago(days=10), "10.0.0.1"),  # A: seen 10 days ago: new against 7 days, not against 14
    ("A-w", _ago(minutes=5), "10.0.0.1"),
    ("B-old", _ago(days=3), "10.0.0.2"),  # B: seen 3 days ago: never new
    ("B-w", _ago(minutes=5), "10.0.0.2"),
    ("C-w2", _ago(minutes=3), "10.0.0.3"),  # C: only in the window: new, its earliest event is C-w1
    ("C-w1", _ago(minutes=5), "10.0.0.3"),
    ("D-after", isoformat(NOW + timedelta(hours=1)), "10.0.0.4"),  # D: only after the window: no term
    ("E-old", _ago(days=5), "10.0.0.5"),  # E: only in the history: no term
    ("F-from", isoformat(WINDOW.start), "10.0.0.6"),  # F: first seen exactly at from: not new
    ("F-w", _ago(minutes=2), "10.0.0.6"),
    ("G-w", _ago(minutes=4), "10.0.0.7"),  # G: in the window and after it: new, from the window's event
    ("G-after", isoformat(NOW + timedelta(minutes=1)), "10.0.0.7"),
    ("H-older", _ago(days=15), "10.0.0.8"),  # H: seen 15 days ago, before both histories: new
    ("H-w", _ago(minutes=1), "10.0.0.8"),
    ("I-old", _ago(days=2), "10.0.0.9"),  # an array: .9 is old, .10 new
    ("I-w", _ago(minutes=6), ["10.0.0.9", "10.0.0.10"]),
    ("J-w", _ago(minutes=7), ["10.0.1.1", "10.0.1.2"]),  # an array of two new values: two alerts, one event
    ("K-w", _ago(minutes=1), None),  # no value: no term
]


@pytest.fixture(scope="module")
def ip_events(es: Elasticsearch) -> Iterator[str]:
    name = f"test-new-terms-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=name, mappings=MAPPING)
    docs = [
        {"_index": name, "_id": doc_id, "_source": {"@timestamp": at, **({"host": {"ip": ip}} if ip else {})}}
        for doc_id, at, ip in IP_EVENTS
    ]
    bulk_index(es, docs)
    yield name
    es.indices.delete(index=name)


def _found(
    search: Search, fields: list[str], start: str, timestamps: TimestampFields = PLAIN, **kwargs: Any
) -> dict[Any, str]:
    query = EventQuery(({"match_all": {}},), (), timestamps)
    history = history_window(start, WINDOW, WINDOW.start)
    found: dict[Any, str] = {}
    for page in new_terms_pages(search, fields, query, WINDOW, history, **kwargs):
        for item in page.found:
            key = tuple(item.new_terms) if len(item.new_terms) > 1 else item.new_terms[0]
            assert key not in found
            found[key] = str(item.event["_id"])
    return found


NEW_BOTH = {
    "10.0.0.3": "C-w1",
    "10.0.0.7": "G-w",
    "10.0.0.8": "H-w",
    "10.0.0.10": "I-w",
    "10.0.1.1": "J-w",
    "10.0.1.2": "J-w",
}


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ("now-7d", {**NEW_BOTH, "10.0.0.1": "A-w"}),
        ("now-14d", NEW_BOTH),
        ("now-14d/d", NEW_BOTH),
    ],
)
def test_history_windows_of_7_and_14_days(
    es: Elasticsearch, ip_events: str, history: str, expected: dict[str, str]
) -> None:
    assert _found(searcher(es, ip_events), ["host.ip"], history) == expected


def test_small_pages_find_the_same_terms(es: Elasticsearch, ip_events: str) -> None:
    assert _found(searcher(es, ip_events), ["host.ip"], "now-7d", page_size=2) == {**NEW_BOTH, "10.0.0.1": "A-w"}


# (document id, @timestamp, host.name, user.name) of the two-field data set
PAIR_EVENTS: list[tuple[str, str, Any, Any]] = [
    ("p1-old", _ago(days=3), "h1", "u1"),  # (h1, u1): seen before
    ("p1-w", _ago(minutes=5), "h1", "u1"),
    ("p2-w", _ago(minutes=5), "h1", "u2"),  # (h1, u2): new
    ("p3-old", _ago(days=2), "h2", "u1"),
    ("p3-w", _ago(minutes=4), "h2", ["u1", "u2"]),  # (h2, u1) old, (h2, u2) new
    ("p4-w", _ago(minutes=3), "h5", None),  # no user: no combination
    ("p5-w", _ago(minutes=2), ["h3", "h4"], ["u5", "u6"]),  # four new combinations, one event
    ("p6-old", _ago(days=10), "h9", "u9"),  # (h9, u9): new against 7 days only
    ("p6-w", _ago(minutes=1), "h9", "u9"),
    ("p7-old", _ago(days=3), "h1", "u3"),  # a combination of history only: (h1, u3) never shows up
]


@pytest.fixture(scope="module")
def pair_events(es: Elasticsearch) -> Iterator[str]:
    name = f"test-new-terms-pairs-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=name, mappings=MAPPING)
    docs = []
    for doc_id, at, host, user in PAIR_EVENTS:
        source: dict[str, Any] = {"@timestamp": at, "host": {"name": host}}
        if user is not None:
            source["user"] = {"name": user}
        docs.append({"_index": name, "_id": doc_id, "_source": source})
    bulk_index(es, docs)
    yield name
    es.indices.delete(index=name)


PAIRS_BOTH = {
    ("h1", "u2"): "p2-w",
    ("h2", "u2"): "p3-w",
    ("h3", "u5"): "p5-w",
    ("h3", "u6"): "p5-w",
    ("h4", "u5"): "p5-w",
    ("h4", "u6"): "p5-w",
}


@pytest.mark.parametrize(
    ("history", "batch_size", "expected"),
    [
        ("now-7d", 500, {**PAIRS_BOTH, ("h9", "u9"): "p6-w"}),
        ("now-14d", 500, PAIRS_BOTH),
        ("now-7d", 2, {**PAIRS_BOTH, ("h9", "u9"): "p6-w"}),  # batches of 2 keys, each after the last
        ("now-14d", 1, PAIRS_BOTH),
    ],
)
def test_several_fields_in_batches(
    es: Elasticsearch, pair_events: str, history: str, batch_size: int, expected: dict[Any, str]
) -> None:
    found = _found(searcher(es, pair_events), ["host.name", "user.name"], history, batch_size=batch_size)
    assert found == expected


@pytest.mark.parametrize(
    ("field", "events", "expected"),
    [
        # a boolean: Kibana's new term is the terms key, 0 for false
        ("flag", [(3 * 24 * 60, True), (5, True), (4, False)], {0: 4}),
        ("destination.port", [(3 * 24 * 60, 443), (5, 443), (4, 8443), (3, 8443)], {8443: 4}),
    ],
)
def test_booleans_and_numbers(
    es: Elasticsearch, index_name: str, field: str, events: list[tuple[int, Any]], expected: dict[Any, int]
) -> None:
    es.indices.create(index=index_name, mappings=MAPPING)
    docs = []
    for minutes, value in events:
        source: dict[str, Any] = {"@timestamp": _ago(minutes=minutes)}
        node = source
        *parents, leaf = field.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
        docs.append({"_index": index_name, "_id": str(minutes), "_source": source})
    bulk_index(es, docs)
    found = _found(searcher(es, index_name), [field], "now-7d")
    assert found == {key: str(minutes) for key, minutes in expected.items()}


def test_the_combined_timestamp_decides_first_seen_and_the_earliest_event(es: Elasticsearch, index_name: str) -> None:
    """With an override and its fallback: an old event lacking the override counts in the history by its
    ``@timestamp``, and the earliest event of a new term may be one that lacks the override."""
    es.indices.create(index=index_name, mappings=MAPPING)
    events = [
        ("old-no-override", {"@timestamp": _ago(days=2), "host": {"name": "seen"}}),
        ("w-seen", {"@timestamp": _ago(minutes=3), "event": {"ingested": _ago(minutes=3)}, "host": {"name": "seen"}}),
        ("w-late", {"@timestamp": _ago(minutes=8), "event": {"ingested": _ago(minutes=2)}, "host": {"name": "new"}}),
        ("w-early", {"@timestamp": _ago(minutes=6), "host": {"name": "new"}}),  # no override: 6 minutes ago
        # ingested in the window long after its @timestamp: its override decides, and it is new
        ("w-ingested", {"@timestamp": _ago(days=20), "event": {"ingested": _ago(minutes=1)}, "host": {"name": "late"}}),
    ]
    bulk_index(es, ({"_index": index_name, "_id": i, "_source": s} for i, s in events))
    assert _found(searcher(es, index_name), ["host.name"], "now-7d", OVERRIDE) == {
        "new": "w-early",
        "late": "w-ingested",
    }


def test_the_earliest_event_carries_the_fields_suppression_reads(es: Elasticsearch, pair_events: str) -> None:
    query = EventQuery(({"match_all": {}},), (), PLAIN)
    history = history_window("now-14d", WINDOW, WINDOW.start)
    pages = new_terms_pages(
        searcher(es, pair_events), ["user.name"], query, WINDOW, history, hit_fields=["host.name", "@timestamp"]
    )
    found = {item.new_terms[0]: item.event for page in pages for item in page.found}
    assert sorted(found) == ["u2", "u5", "u6"]
    assert suppression_terms(found["u5"], ["host.name", "agent.name"]) == [
        {"field": "host.name", "value": ["h3", "h4"]},
        {"field": "agent.name", "value": None},
    ]
    assert found["u2"]["fields"]["@timestamp"] == [_ago(minutes=5)]


@pytest.mark.parametrize("fields", [["host.ip"], ["host.name", "user.name"]])
def test_a_pattern_that_matches_no_index_finds_no_term(es: Elasticsearch, fields: list[str]) -> None:
    assert _found(searcher(es, f"test-none-{uuid.uuid4().hex}-*"), fields, "now-7d") == {}


def test_a_batch_with_too_many_clauses_is_split(es: Elasticsearch, index_name: str) -> None:
    """A batch of 10,000 keys of two fields is some 30,000 clauses, past the node's limit (about 16,000 on the local
    node): Elasticsearch refuses it in its own words, and the batch is split in two. The first page of terms is
    made up here (no need to index 10,000 of them); the history checks and the events are the node's."""
    es.indices.create(index=index_name, mappings=MAPPING)
    keys = [{"host.name": f"h{i:05d}", "user.name": f"u{i:05d}"} for i in range(10_000)]
    new = range(0, 10_000, 1000)
    bulk_index(
        es,
        (
            {
                "_index": index_name,
                "_source": {
                    "@timestamp": _ago(minutes=1),
                    "host": {"name": f"h{i:05d}"},
                    "user": {"name": f"u{i:05d}"},
                },
            }
            for i in new
        ),
    )
    search, outcomes = searcher(es, index_name), []
    first_page = {"aggregations": {"new_terms": {"buckets": [{"key": key, "doc_count": 1} for key in keys]}}}

    def recorded(body: dict[str, Any]) -> Mapping[str, Any]:
        batches = [c["bool"]["should"] for c in body["query"]["bool"]["filter"] if "should" in c.get("bool", {})]
        if not batches:
            outcomes.append((0, "made up"))
            return first_page
        try:
            response = search(body)
        except Exception:
            outcomes.append((len(batches[0]), "refused"))
            raise
        outcomes.append((len(batches[0]), "ok"))
        return response

    found = _found(recorded, ["host.name", "user.name"], "now-7d", batch_size=10_000)
    assert sorted(found) == [(f"h{i:05d}", f"u{i:05d}") for i in new]
    # the first page; the batch refused; each half: the history check, then the events of its 5 new combinations
    assert outcomes == [(0, "made up"), (10_000, "refused"), (5_000, "ok"), (5, "ok"), (5_000, "ok"), (5, "ok")]
