"""Reading ES|QL answers: rows without null cells, partial results, the async envelope, bad shapes."""

from __future__ import annotations

from typing import Any

import pytest

from job.ruletypes.esql import response

COLUMNS = [
    {"name": "@timestamp", "type": "date"},
    {"name": "host.name", "type": "keyword"},
    {"name": "_id", "type": "keyword"},
]


@pytest.mark.parametrize(
    ("values", "rows"),
    [
        (
            [["2025-01-01T00:00:00.000Z", "h1", "a"]],
            ({"@timestamp": "2025-01-01T00:00:00.000Z", "host.name": "h1", "_id": "a"},),
        ),
        ([[None, ["h1", "h2"], "a"]], ({"host.name": ["h1", "h2"], "_id": "a"},)),  # null cells left out
        ([[None, None, None]], ({},)),
        ([], ()),
    ],
)
def test_rows(values: list[Any], rows: tuple[dict[str, Any], ...]) -> None:
    result = response.parse_response({"columns": COLUMNS, "values": values, "is_partial": False})
    assert result.rows == rows
    assert result.column_names == ("@timestamp", "host.name", "_id")
    assert not result.running and not result.is_partial


def test_a_running_async_query_has_its_id() -> None:
    result = response.parse_response({"id": "Fq1", "is_running": True, "columns": [], "values": []})
    assert result.running and result.query_id == "Fq1" and result.rows == ()


def test_partial_results_and_their_warning() -> None:
    failure = {"shard": 0, "index": "logs-a", "reason": {"type": "x", "reason": "boom"}}
    result = response.parse_response(
        {
            "columns": [],
            "values": [],
            "is_partial": True,
            "_clusters": {"details": {"(local)": {"failures": [failure]}, "remote": {"failures": []}}},
        }
    )
    assert result.is_partial and result.shard_failures == (failure,)
    assert response.partial_results_warning(result.shard_failures) == (
        "The ES|QL event query was only executed on the available shards. The query failed to run successfully on "
        'the following shards: [{"shard":0,"index":"logs-a","reason":{"type":"x","reason":"boom"}}]'
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "not an object"),
        ({"columns": "x", "values": []}, "columns is a str"),
        ({"columns": [{"type": "keyword"}], "values": []}, "column 0 has no name"),
        ({"columns": COLUMNS, "values": [["only one"]]}, "row 0 does not have one value per column"),
        ({"columns": COLUMNS, "values": {}}, "values is a dict"),
        ({"columns": [], "values": [[]] * 10_001}, "more than the 10000"),
        ({"is_running": True}, "no query id"),
    ],
)
def test_what_is_not_an_esql_result_is_refused_with_what_is_wrong(body: Any, problem: str) -> None:
    with pytest.raises(response.EsqlResponseError, match=problem):
        response.parse_response(body)


def test_metadata_columns_are_taken_apart() -> None:
    metadata, columns = response.split_metadata({"_id": "a", "_index": "i", "_version": 1, "host.name": "h"})
    assert metadata == {"_id": "a", "_index": "i", "_version": 1}
    assert columns == {"host.name": "h"}


@pytest.mark.parametrize(
    ("columns", "values", "warned"),
    [(COLUMNS, [["t", "h", "a"]], False), (COLUMNS[:2], [["t", "h"]], True), (COLUMNS[:2], [], False)],
)
def test_missing_id_warning(columns: list[dict[str, str]], values: list[Any], warned: bool) -> None:
    result = response.parse_response({"columns": columns, "values": values})
    assert (response.missing_id_warning(result) is not None) is warned
