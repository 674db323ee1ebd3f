"""EQL push-down against the real node: what the pushed-down DSL selects, then the residual applied, must be
what the whole condition selects evaluated on the client -- a differential test that catches a wrong
translation -- and, for each row, the events Elasticsearch's EQL selects (from its semantics: the test
node has no EQL plugin to ask).

The data set covers keyword, text (with a keyword sub-field) and ip fields, numbers, booleans and dates,
mixed case, multi-valued fields, arrays of objects, dotted keys, missing fields and explicit nulls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.client.fieldcaps import fetch_field_types
from job.eql import EqlVerificationError, plan
from job.eql.query import event_timestamp_ns, sequence_spec
from job.eql.sequence import SequenceMatcher, limit
from tests.unit.eql.test_sequence import DATA, MISSING_EVENTS, MISSING_FIELDS

pytestmark = pytest.mark.integration

MAPPING: dict[str, Any] = {
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"category": {"type": "keyword"}}},
        "process": {
            "properties": {
                "name": {"type": "keyword"},
                "pid": {"type": "long"},
                "command_line": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
            }
        },
        "user": {"properties": {"name": {"type": "keyword"}}},
        "file": {"properties": {"path": {"type": "keyword"}}},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "score": {"type": "double"},
        "is_admin": {"type": "boolean"},
        "tags": {"type": "keyword"},
    }
}

DOCS: dict[str, dict[str, Any]] = {
    "d1": {
        "@timestamp": "2024-01-01T00:00:00Z",
        "event": {"category": "process"},
        "process": {"name": "cmd.exe", "pid": 100, "command_line": "cmd.exe /c whoami"},
        "user": {"name": "alice"},
        "file": {"path": "C:\\Windows\\System32\\cmd.exe"},
        "source": {"ip": "10.0.0.1"},
        "score": 1.5,
        "is_admin": True,
        "tags": ["red", "blue"],
    },
    "d2": {
        "@timestamp": "2024-01-01T12:30:00Z",
        "event": {"category": "process"},
        "process": {"name": "CMD.EXE", "pid": 7, "command_line": "CMD.EXE /C Dir"},
        "user": {"name": "Alice"},
        "file": {"path": "C:\\WINDOWS\\system32\\CMD.EXE"},
        "source": {"ip": "192.168.1.5"},
        "score": 0.25,
        "is_admin": False,
        "tags": "green",
    },
    "d3": {
        "@timestamp": "2024-01-02T08:00:00Z",
        "event": {"category": "network"},
        "process": {"name": ["powershell.exe", "pwsh.exe"], "pid": [5, 5000]},
        "user": {"name": None},
        "source": {"ip": ["10.1.2.3", "fe80::1"]},
        "tags": ["red"],
    },
    "d4": {
        "@timestamp": "2024-01-03T00:00:00Z",
        "event.category": "file",
        "process.name": "notepad.exe",
        "file.path": "D:\\tools\\a*b.txt",
        "score": 30,
    },
    "d5": {
        "@timestamp": "2024-01-04T00:00:00Z",
        "event": {"category": "process"},
        "process": [{"name": "a"}, {"name": "bbbb"}],
    },
    "d6": {
        "@timestamp": "2024-01-05T00:00:00Z",
        "event": {"category": ["process", "network"]},
        "process": {"name": "Ssh", "pid": 22, "command_line": None},
        "user": {"name": "root"},
        "source": {"ip": "::ffff:10.0.0.9"},
        "is_admin": True,
    },
}

ALL = "d1 d2 d3 d4 d5 d6"
ERROR = "verification error"

# (query, the events Elasticsearch's EQL selects)
ROWS: list[tuple[str, str]] = [
    # categories (a term on the category field, any value)
    ("process where true", "d1 d2 d5 d6"),
    ("network where true", "d3 d6"),
    ("any where true", ALL),
    # equality, case-sensitive and not
    ('any where process.name == "cmd.exe"', "d1"),
    ('any where process.name : "cmd.exe"', "d1 d2"),
    ('any where process.name != "cmd.exe"', "d2 d3 d4 d5 d6"),
    ('any where not process.name : "CMD.exe"', "d3 d4 d5 d6"),
    ('any where process.name in ("Ssh", "a")', "d5 d6"),
    ('any where process.name in~ ("ssh", "NOTEPAD.EXE")', "d4 d6"),
    ('any where process.name not in ("pwsh.exe")', "d1 d2 d4 d5 d6"),
    ("any where user.name == null", "d3 d4 d5"),
    ("any where user.name != null", "d1 d2 d6"),
    ("any where ?no.such.field == null", ALL),
    ("any where ?no.such.field != null", ""),
    # wildcards, like, regex
    ('any where process.name : "*.exe"', "d1 d2 d3 d4"),
    ('any where process.name like "*.exe"', "d1 d3 d4"),
    ('any where process.name like~ "c?d.EXE"', "d1 d2"),
    ('any where process.name : ("ss*", "a")', "d5 d6"),
    ('any where file.path like "C:\\\\Windows\\\\*"', "d1"),
    ('any where process.name regex "p.*sh.*"', "d3"),
    ('any where process.name regex~ "cmd\\\\.exe"', "d1 d2"),
    ('any where process.name regex ("a", "b+")', "d5"),
    # ranges and numbers
    ("any where process.pid > 50", "d1 d3"),
    ("any where process.pid > 6 and process.pid < 100", "d2 d6"),
    ("any where not process.pid < 10", "d1 d3 d6"),
    ("any where process.pid + 1 == 8", "d2"),
    ("any where score >= 1.5", "d1 d4"),
    ("any where is_admin == true", "d1 d6"),
    ('any where process.name > "a"', "d1 d3 d4 d5"),
    # dates
    ('any where @timestamp == "2024-01-01"', "d1 d2"),
    ('any where @timestamp > "2024-01-02"', "d4 d5 d6"),
    ('any where @timestamp >= "2024-01-02"', "d3 d4 d5 d6"),
    # ips
    ('any where source.ip == "10.0.0.0/8"', "d1 d3 d6"),
    ('any where cidrMatch(source.ip, "192.168.0.0/16", "fe80::/10")', "d2 d3"),
    ('any where source.ip > "10.0.0.5"', "d2 d3 d6"),
    # text with a keyword sub-field
    ('any where process.command_line == "cmd.exe /c whoami"', "d1"),
    ('any where process.command_line : "cmd.exe /C DIR"', "d2"),
    ('any where startsWith~(process.command_line, "CMD")', "d1 d2"),
    # functions pushed down
    ('any where startsWith(process.name, "p")', "d3"),
    ('any where endsWith~(file.path, ".exe")', "d1 d2"),
    ('any where stringContains(file.path, "System32")', "d1"),
    ('any where endsWith(file.path, "a*b.txt")', "d4"),
    ('any where endsWith(file.path, "s*b.txt")', "d4"),  # the unescaped * in Elasticsearch's wildcard
    # scripts: the residual
    ("any where length(process.name) > 6", "d1 d2 d3 d4"),
    ("any where length(process.name) == 1 and process.pid == null", "d5"),
    ("any where not length(process.name) > 3", "d5 d6"),
    ('any where not startsWith(concat(process.name, ""), "p")', "d1 d2 d4 d5 d6"),
    ('any where concat(process.name, "|", user.name) == "Ssh|root"', "d6"),
    ('any where endsWith(concat(file.path, ""), "a*b.txt")', "d4"),
    ('any where endsWith(concat(file.path, ""), "s*b.txt")', ""),  # a script reads the * literally
    ("any where process.pid % 2 == 0 or score > 20", "d1 d3 d4 d6"),
    ('any where between(file.path, "\\\\", "\\\\") == "Windows"', "d1"),
    ('any where indexOf~(process.name, "EXE") == 4', "d1 d2"),
    ('any where substring(process.name, -4) : ".exe"', "d1 d2 d3 d4"),
    ("any where number(string(process.pid)) == 22", "d6"),
    ("any where multiply(process.pid, 2) > 100 and not is_admin", "d3"),
    ('any where process.name : "ss*" or length(user.name) == 5', "d1 d2 d6"),
    ('any where not (length(process.name) > 4 or user.name == "root")', "d5"),
    # PropagateEquals drops tags != "blue" as implied by tags == "red": with several values it is not
    ('any where tags == "red" and not tags == "blue"', "d1 d3"),
    ('any where not tags in ("green", "blue")', "d3 d4 d5 d6"),
    # refused as Elasticsearch refuses them
    ("any where process.name == user.name", ERROR),
    ('any where process.pid : "7"', ERROR),
    ("any where nope == 1", ERROR),
]


@pytest.fixture(scope="module")
def corpus(es: Elasticsearch) -> Iterator[str]:
    index = f"test-eql-{uuid.uuid4().hex[:12]}"
    es.indices.create(index=index, mappings=MAPPING, settings={"number_of_shards": 1, "number_of_replicas": 0})
    operations: list[dict[str, Any]] = []
    for doc_id, doc in DOCS.items():
        operations += [{"index": {"_index": index, "_id": doc_id}}, doc]
    result = es.bulk(operations=operations, refresh=True)
    assert not result["errors"], result
    yield index
    es.indices.delete(index=index)


@pytest.fixture(scope="module")
def field_types(es: Elasticsearch, corpus: str) -> dict[str, str]:
    return fetch_field_types(es, [corpus])


def _selected(es: Elasticsearch, index: str, query: str, fields: dict[str, str]) -> tuple[str, str]:
    """(ids the node's DSL plus the residual select, ids the client alone selects from every source)."""
    try:
        planned = plan(query, fields)
    except EqlVerificationError:
        return ERROR, ERROR
    push = planned.stages[0].push
    response = es.search(index=index, query={"bool": {"filter": [push.dsl]}}, size=100)
    hits = {hit["_id"]: hit["_source"] for hit in response["hits"]["hits"]}
    if push.residual is not None:
        hits = {doc_id: source for doc_id, source in hits.items() if push.residual.matches(source)}
    client = [doc_id for doc_id, source in DOCS.items() if push.matches(source)]
    return " ".join(sorted(hits)), " ".join(sorted(client))


@pytest.mark.parametrize(("query", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_push_down_and_residual_select_what_eql_selects(
    es: Elasticsearch, corpus: str, field_types: dict[str, str], query: str, expected: str
) -> None:
    pushed, client = _selected(es, corpus, query, field_types)
    assert pushed == client  # a wrong translation shows here
    assert pushed == expected


def test_the_dsl_alone_is_a_superset(es: Elasticsearch, corpus: str, field_types: dict[str, str]) -> None:
    for query, expected in ROWS:
        if expected == ERROR:
            continue
        push = plan(query, field_types).stages[0].push
        response = es.search(index=corpus, query=push.dsl, size=100, source=False)
        found = {hit["_id"] for hit in response["hits"]["hits"]}
        assert set(expected.split()) <= found, query
        if push.residual is None:
            assert found == set(expected.split()), query


# -- sequences: each stage's query run on the node, the matcher on the client -----------------------------


@pytest.fixture(scope="module")
def missing_events(es: Elasticsearch) -> Iterator[str]:
    """Elasticsearch's missing-events data set (test1 to test5) in an index of its own."""
    index = f"test-eql-seq-{uuid.uuid4().hex[:12]}"
    properties = {name: {"type": kind} for name, kind in MISSING_FIELDS.items() if "." not in name}
    es.indices.create(index=index, mappings={"properties": properties}, settings={"number_of_shards": 1})
    operations: list[dict[str, Any]] = []
    for data, events in DATA.items():
        for source in events:
            operations += [{"index": {"_index": index, "_id": f"{data}-{source['sequence']}"}}, source]
    result = es.bulk(operations=operations, refresh=True)
    assert not result["errors"], result
    yield index
    es.indices.delete(index=index)


def _run_on_node(es: Elasticsearch, index: str, query: str) -> list[int]:
    planned = plan(query, fetch_field_types(es, [index]), category_field="event_type")
    stages = list(planned.stages) + ([planned.until] if planned.until else [])
    matched: dict[str, tuple[int, dict[int, tuple[Any, ...]], dict[str, Any]]] = {}
    for stage in stages:
        response = es.search(index=index, query={"bool": {"filter": [stage.push.dsl]}}, size=100)
        for hit in response["hits"]["hits"]:
            source = hit["_source"]
            if stage.push.residual is not None and not stage.push.residual.matches(source):
                continue
            key = stage.key(source)
            if key is None:
                continue
            timestamp = event_timestamp_ns(source)
            assert timestamp is not None
            entry = matched.setdefault(hit["_id"], (timestamp, {}, source))
            entry[1][stage.position] = key
    matcher = SequenceMatcher(sequence_spec(planned))
    found = []
    for doc_id, (timestamp, stage_keys, source) in sorted(matched.items(), key=lambda item: (item[1][0], item[0])):
        found += matcher.feed(source["sequence"], timestamp, stage_keys, surrogate=(doc_id,))
    found += matcher.finish()
    return [
        -1 if event is None else event for match in limit(found, planned.head, planned.tail) for event in match.events
    ]


@pytest.mark.parametrize(("name", "query", "data", "expected"), MISSING_EVENTS, ids=[row[0] for row in MISSING_EVENTS])
def test_sequences_with_stage_queries_on_the_node(
    es: Elasticsearch, missing_events: str, name: str, query: str, data: str, expected: list[int]
) -> None:
    del name, data
    assert _run_on_node(es, missing_events, query) == expected
