"""KQL against the real node: the generated DSL selects exactly the documents Kibana's query would.

Every query runs twice, as the detection engine would run it: with no field types (older Kibana,
``fields: []``) and with the field types the job reads from ``_field_caps``. Where the two differ
(dates, keyword wildcards with spaces, nested checks) the row says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.client.fieldcaps import fetch_field_types
from job.kql import KqlSemanticError, KqlSyntaxError, to_dsl

pytestmark = pytest.mark.integration

MAPPING: dict[str, Any] = {
    "properties": {
        "@timestamp": {"type": "date"},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "process": {"properties": {"name": {"type": "keyword"}}},
        "user": {"properties": {"name": {"type": "keyword"}}},
        "event": {"properties": {"code": {"type": "keyword"}}},
        "file": {"properties": {"path": {"type": "keyword"}}},
        "message": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "bytes": {"type": "long"},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "is_admin": {"type": "boolean"},
        "tags": {"type": "nested", "properties": {"key": {"type": "keyword"}, "value": {"type": "keyword"}}},
    }
}

DOCS: dict[str, dict[str, Any]] = {
    "d1": {
        "@timestamp": "2024-01-01T00:00:00Z",
        "host": {"name": "web-1"},
        "process": {"name": "cmd.exe"},
        "user": {"name": "alice"},
        "file": {"path": "C:\\Windows\\System32\\cmd.exe"},
        "message": "User logged in successfully",
        "bytes": 100,
        "source": {"ip": "10.0.0.1"},
        "is_admin": True,
        "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "red"}],
    },
    "d2": {
        "@timestamp": "2024-01-01T12:30:00Z",
        "host": {"name": "web-2"},
        "process": {"name": "powershell.exe"},
        "user": {"name": "bob"},
        "file": {"path": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"},
        "message": "Error: access denied for user",
        "bytes": 2000,
        "source": {"ip": "10.0.0.2"},
        "is_admin": False,
        "tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "prod"}],
    },
    "d3": {
        "@timestamp": "2024-01-02T08:00:00Z",
        "host": {"name": "db-1"},
        "process": {"name": "Amazon S3 Browser.exe"},
        "user": {"name": "SYSTEM"},
        "file": {"path": "D:\\tools\\s3browser.exe"},
        "message": "backup completed",
        "bytes": 30000,
        "source": {"ip": "192.168.1.5"},
        "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "blue"}],
    },
    "d4": {
        "@timestamp": "2024-01-03T00:00:00Z",
        "host": {"name": "web 1"},
        "process": {"name": "cmd.exe"},
        "event": {"code": "4624"},
        "message": "cannot open file",
        "bytes": 5,
        "is_admin": True,
    },
    "d5": {"@timestamp": "2024-01-04T00:00:00Z", "host": {"name": "mail-1"}, "process": {"name": "true"}},
    "d6": {
        "@timestamp": "2024-01-05T00:00:00Z",
        "host": {"name": "WEB-1"},
        "process": {"name": "CMD.EXE"},
        "user": {"name": "Alice"},
        "message": "The quick brown fox",
    },
}

ALL = "d1 d2 d3 d4 d5 d6"
SYNTAX = "syntax error"
NESTED = "nested error"

# (query, ids without field types, ids with field types -- None: the same)
ROWS: list[tuple[str, str, str | None]] = [
    # whole-index queries
    ("", ALL, None),
    ("*:*", ALL, None),
    ("*", ALL, None),
    # keyword fields: match vs term select alike
    ("process.name:cmd.exe", "d1 d4", None),
    ('process.name:"cmd.exe"', "d1 d4", None),
    ("host.name:web 1", "d4", None),
    ('host.name:"web 1"', "d4", None),
    ('"host.name":web-1', "d1", None),
    ("host.name:web-1 or host.name:db-1", "d1 d3", None),
    ("host.name:(web-1 or db-1) and bytes > 50", "d1 d3", None),
    ("user.name:(alice or bob)", "d1 d2", None),
    ("user.name:(alice or bob) and not host.name:web-2", "d1", None),
    ("not user.name:SYSTEM", "d1 d2 d4 d5 d6", None),
    ("event.code:4624", "d4", None),
    ("event.code:04624", "", None),
    ("process.name:true", "d5", None),
    ('process.name:"true"', "d5", None),
    # keyword wildcards
    ("host.name:web*", "d1 d2 d4", None),
    ("process.name:CMD*", "d6", None),
    ("process.name:*S3 Browser*", "", "d3"),  # query_string splits at the space; wildcard does not
    ("process.name:*S3*", "d3", None),
    (r"file.path:C\:\\Windows\\*", "d1 d2", None),
    (r"file.path:C\:\\Windows\\System32\\cmd.exe", "d1", None),
    (r'file.path:"C:\\Windows\\System32\\cmd.exe"', "d1", None),
    (r'file.path:"C:\Windows\System32\cmd.exe"', "d1", None),  # unknown escapes keep their backslash
    # exists
    ("user.name:*", "d1 d2 d3 d6", None),
    ("not user.name:*", "d4 d5", None),
    ("source.ip:* and not is_admin:*", "d3", None),
    # text field with a keyword sub-field
    ("message:Error", "d2", None),
    ("message:user", "d1 d2", None),
    ('message:"access denied"', "d2", None),
    ('message:"denied access"', "", None),
    ("message:ERR*", "d2", None),
    ("message:cannot", "d4", None),
    ("message:cannot open", SYNTAX, SYNTAX),
    ('message.keyword:"cannot open file"', "d4", None),
    # numbers, ips, booleans
    ("bytes:100", "d1", None),
    ("bytes:0100", "d1", None),
    ("bytes > 1000", "d2 d3", None),
    ("bytes >= 2000 and bytes < 30000", "d2", None),
    ("source.ip:10.0.0.1", "d1", None),
    ('source.ip:"10.0.0.0/24"', "d1 d2", None),
    ("source.ip >= 10.0.0.2", "d2 d3", None),
    ("is_admin:true", "d1 d4", None),
    ("not is_admin:true", "d2 d3 d5 d6", None),
    ("host.name >= web", "d1 d2 d4", None),
    # dates: Kibana sends a range gte=lte for known dates; Elasticsearch's term on a date is that range too
    ('@timestamp:"2024-01-01"', "d1 d2", None),
    ("@timestamp:2024-01-01T00\\:00\\:00Z", "d1", None),
    ("@timestamp:1704067200000", "d1", None),
    ('@timestamp < "2024-01-02"', "d1 d2", None),
    ('@timestamp >= "2024-01-02T09:00:00+01:00"', "d3 d4 d5 d6", None),
    ("@timestamp <= 2024-01-01", "d1 d2", None),
    # free text
    ("denied", "d2", None),
    ('"access denied"', "d2", None),
    ("web-1 and alice", "d1", None),
    # boolean structure
    ("not (not host.name:web-1)", "d1", None),
    ("host.name:web-1 and not (user.name:bob or bytes >= 1000)", "d1", None),
    ("host.name:web-1 or host.name:web-2 and user.name:bob", "d1 d2", None),
    ("(host.name:web-1 or host.name:web-2) and user.name:bob", "d2", None),
    ("process.name:cmd.exe or denied", "d1 d2 d4", None),
    # wildcard field names expand only with field types
    ("user.*:alice", "", "d1"),
    # nested
    ("tags:{ key:env and value:prod }", "d1 d3", None),
    ("tags:{ key:team and value:prod }", "d2", None),
    ("tags:{ key:env and not value:prod }", "d2", None),
    ("tags:{ key:env } and tags:{ value:red }", "d1", None),
    ("not tags:{ key:env }", "d4 d5 d6", None),
    ("tags:{ value:(prod or red) }", "d1 d2 d3", None),
    ("tags*:prod", "", "d1 d2 d3"),  # automatic nested queries for wildcard names
    ("tags.key:env", "", NESTED),
]


@pytest.fixture(scope="module")
def corpus(es: Elasticsearch) -> Iterator[str]:
    index = f"test-kql-{uuid.uuid4().hex[:12]}"
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


def test_fetch_field_types_reads_the_mapping(field_types: dict[str, str]) -> None:
    assert field_types == {
        "@timestamp": "date",
        "host.name": "keyword",
        "process.name": "keyword",
        "user.name": "keyword",
        "event.code": "keyword",
        "file.path": "keyword",
        "message": "text",
        "message.keyword": "keyword",
        "bytes": "long",
        "source.ip": "ip",
        "is_admin": "boolean",
        "tags": "nested",
        "tags.key": "keyword",
        "tags.value": "keyword",
    }


def test_fetch_field_types_of_a_missing_index(es: Elasticsearch) -> None:
    assert fetch_field_types(es, [f"missing-{uuid.uuid4().hex}*"]) == {}


def _hits(es: Elasticsearch, index: str, query: str, fields: dict[str, str] | None) -> str:
    try:
        dsl = to_dsl(query, fields)
    except KqlSyntaxError:
        return SYNTAX
    except KqlSemanticError:
        return NESTED
    # The detection engine puts the KQL clause into bool.filter (buildEsQuery).
    response = es.search(index=index, query={"bool": {"filter": [dsl]}}, size=100, source=False)
    return " ".join(sorted(hit["_id"] for hit in response["hits"]["hits"]))


@pytest.mark.parametrize(("query", "plain", "typed"), ROWS, ids=[row[0] or "<empty>" for row in ROWS])
def test_query_selects_the_expected_documents(
    es: Elasticsearch, corpus: str, field_types: dict[str, str], query: str, plain: str, typed: str | None
) -> None:
    assert _hits(es, corpus, query, None) == plain
    assert _hits(es, corpus, query, field_types) == (plain if typed is None else typed)
