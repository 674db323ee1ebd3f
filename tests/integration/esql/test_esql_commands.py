"""Every command class production ES|QL rules use runs on the 8.19 engine, through the request the rule would
send, and the answers read as rows; what the engine refuses comes back with Elasticsearch's reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.ruletypes.esql import errors, request
from job.window import Window
from tests.integration.esql.conftest import DEFAULT_TIMESTAMPS, EsqlFailure, run_query, send

EVENTS = [
    {
        "@timestamp": "2025-01-01T00:00:00Z",
        "host": {"name": "h1"},
        "user": {"name": "root"},
        "message": "login /bin/sh",
        "process": {"args": ["sh", "-c", "id"]},
        "bytes": 2048,
    },
    {
        "@timestamp": "2025-01-01T00:01:00Z",
        "host": {"name": "h1"},
        "user": {"name": "bob"},
        "message": "logout /home/bob",
        "process": {"args": ["bash"]},
        "bytes": 1024,
    },
    {
        "@timestamp": "2025-01-01T00:02:00Z",
        "host": {"name": "h2"},
        "user": {"name": "root"},
        "message": "login /usr/bin/ssh",
        "bytes": 512,
    },
]


@pytest.fixture(scope="module")
def index(esql: Elasticsearch) -> Any:
    """One index for the whole module (read only)."""
    name = "esql-commands"
    esql.options(ignore_status=404).indices.delete(index=name)
    esql.indices.create(
        index=name,
        mappings={
            "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
            "properties": {"@timestamp": {"type": "date"}, "optional": {"type": "keyword"}},
        },
    )
    for i, doc in enumerate(EVENTS):
        esql.create(index=name, id=f"e{i}", document=doc)
    esql.indices.refresh(index=name)
    yield name
    esql.indices.delete(index=name)


COMMANDS: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "FROM ... METADATA",
        "FROM {i} METADATA _id, _index, _version | KEEP _id, _index, _version | SORT _id",
        [{"_id": f"e{n}", "_index": "esql-commands", "_version": 1} for n in range(3)],
    ),
    ("WHERE", 'FROM {i} METADATA _id | WHERE host.name == "h1" AND bytes > 1024 | KEEP _id', [{"_id": "e0"}]),
    (
        "EVAL",
        'FROM {i} METADATA _id | EVAL kb = bytes / 1024.0, who = CONCAT(user.name, "@", host.name)'
        " | KEEP _id, kb, who | SORT _id",
        [
            {"_id": "e0", "kb": 2.0, "who": "root@h1"},
            {"_id": "e1", "kb": 1.0, "who": "bob@h1"},
            {"_id": "e2", "kb": 0.5, "who": "root@h2"},
        ],
    ),
    (
        "STATS ... BY",
        "FROM {i} | STATS n = COUNT(*), total = SUM(bytes), users = COUNT_DISTINCT(user.name) BY host.name"
        " | SORT host.name",
        [{"n": 2, "total": 3072, "users": 2, "host.name": "h1"}, {"n": 1, "total": 512, "users": 1, "host.name": "h2"}],
    ),
    ("KEEP", "FROM {i} | WHERE bytes == 512 | KEEP host.*, user.name", [{"host.name": "h2", "user.name": "root"}]),
    ("SORT", "FROM {i} METADATA _id | SORT bytes DESC | KEEP _id", [{"_id": "e0"}, {"_id": "e1"}, {"_id": "e2"}]),
    ("LIMIT", "FROM {i} METADATA _id | SORT _id | LIMIT 2 | KEEP _id", [{"_id": "e0"}, {"_id": "e1"}]),
    (
        "MV_EXPAND",
        'FROM {i} METADATA _id | WHERE _id == "e0" | MV_EXPAND process.args'
        " | KEEP _id, process.args | SORT process.args",
        [{"_id": "e0", "process.args": value} for value in ["-c", "id", "sh"]],
    ),
    (
        "DISSECT",
        'FROM {i} METADATA _id | DISSECT message "%{{verb}} %{{target}}" | KEEP _id, verb, target | SORT _id',
        [
            {"_id": "e0", "verb": "login", "target": "/bin/sh"},
            {"_id": "e1", "verb": "logout", "target": "/home/bob"},
            {"_id": "e2", "verb": "login", "target": "/usr/bin/ssh"},
        ],
    ),
    (
        "GROK",
        'FROM {i} METADATA _id | GROK message "%{{WORD:verb}} %{{NOTSPACE:path}}"'
        ' | WHERE verb == "logout" | KEEP _id, verb, path',
        [{"_id": "e1", "verb": "logout", "path": "/home/bob"}],
    ),
    (
        "RENAME",
        "FROM {i} METADATA _id | RENAME user.name AS who | KEEP _id, who | SORT _id | LIMIT 1",
        [{"_id": "e0", "who": "root"}],
    ),
    (
        "DROP",
        "FROM {i} | WHERE bytes == 512 | DROP message, process.*, bytes, @timestamp",
        [{"host.name": "h2", "user.name": "root"}],
    ),
    (
        "KQL()",
        'FROM {i} METADATA _id | WHERE KQL("host.name: h1 and not user.name: root") | KEEP _id',
        [{"_id": "e1"}],
    ),
    # drop_null_columns: a column without a value in any row is left out, a row's null cells too
    ("drop_null_columns", "FROM {i} METADATA _id | WHERE bytes == 512 | KEEP _id, optional", [{"_id": "e2"}]),
]


@pytest.mark.parametrize(("command", "query", "rows"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_command(esql: Elasticsearch, index: str, command: str, query: str, rows: list[dict[str, Any]]) -> None:
    result = run_query(esql, query.format(i=index))
    assert list(result.rows) == rows, command
    assert set(result.column_names) == {name for row in rows for name in row}


def test_a_null_cell_is_left_out_of_its_row_and_several_values_are_a_list(esql: Elasticsearch, index: str) -> None:
    """A keyword's values come from doc values: sorted, not in the event's order."""
    result = run_query(esql, f"FROM {index} METADATA _id | KEEP _id, process.args | SORT _id")
    assert [row.get("process.args") for row in result.rows] == [["-c", "id", "sh"], "bash", None]
    assert "process.args" not in result.rows[2]


REFUSED = [
    ("syntax", "FROM {i} | WHERE", "parsing_exception", "line 1:"),
    ("unknown column", "FROM {i} | WHERE nope == 1", "verification_exception", "Unknown column [nope]"),
    ("unknown function", "FROM {i} | EVAL y = NOFUNC(message)", "verification_exception", "Unknown function [NOFUNC]"),
    (
        "unknown index",
        "FROM no-such-index-anywhere | LIMIT 1",
        "verification_exception",
        "Unknown index [no-such-index-anywhere]",
    ),
    (
        "INLINE STATS (not in 8.19)",
        "FROM {i} | INLINE STATS c = COUNT(*) BY host.name",
        "parsing_exception",
        "mismatched input 'INLINE'",
    ),
    (
        "INLINESTATS (snapshot builds only)",
        "FROM {i} | INLINESTATS c = COUNT(*)",
        "parsing_exception",
        "mismatched input 'INLINESTATS'",
    ),
    ("type mismatch", 'FROM {i} | WHERE bytes == "x"', "verification_exception", "bytes"),
]


@pytest.mark.parametrize(("case", "query", "kind", "fragment"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_elasticsearch_reason(
    esql: Elasticsearch, index: str, case: str, query: str, kind: str, fragment: str
) -> None:
    with pytest.raises(EsqlFailure) as refused:
        run_query(esql, query.format(i=index))
    failure = refused.value
    assert failure.message.startswith(f"{kind}\n"), case
    assert failure.reason.startswith(f"{kind}: ") and fragment in failure.reason and "\n" not in failure.reason
    assert errors.is_user_error(failure.message)


def test_a_kql_syntax_error_is_a_shard_failure_whose_root_cause_says_where(esql: Elasticsearch, index: str) -> None:
    with pytest.raises(EsqlFailure) as refused:
        run_query(esql, f'FROM {index} | WHERE KQL("host.name: (h1")')
    assert refused.value.message.startswith("query_shard_exception\n\tCaused by:\n\t\tkql_parsing_exception: ")
    assert refused.value.reason == "kql_parsing_exception: line 1:15: missing ')' at '<EOF>'"
    assert errors.is_user_error(refused.value.message)  # "parsing_exception" is in "kql_parsing_exception"


def test_the_sync_endpoint_takes_the_same_request(esql: Elasticsearch, index: str) -> None:
    window = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
    call = request.build_request(
        f"FROM {index} METADATA _id | KEEP _id | SORT _id", window, DEFAULT_TIMESTAMPS, None, 2, aggregating=False
    )
    assert send(esql, call, sync=True).rows == send(esql, call).rows == ({"_id": "e0"}, {"_id": "e1"})
