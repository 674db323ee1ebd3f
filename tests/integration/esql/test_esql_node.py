"""The ES|QL node is a real 8.19 engine: it answers _query and _query/async with a basic license, and the
plain node does not load ES|QL at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from job.ruletypes.esql import response
from tests.integration.esql.conftest import JSON


def test_the_esql_node_runs_8_19_with_a_basic_license(esql: Elasticsearch, esql_node: object) -> None:
    if esql_node is None:
        pytest.skip("DETECTION_ES_HOSTS names a cluster: its release and license are its own")
    nodes = esql.nodes.info(node_id="_local")["nodes"]
    assert [node["version"] for node in nodes.values()][0].startswith("8.19.")
    license_ = esql.license.get()["license"]
    assert (license_["type"], license_["status"]) == ("basic", "active")


def test_query_answers_rows(esql: Elasticsearch) -> None:
    answer = esql.perform_request(
        "POST", "/_query", headers=JSON, body={"query": 'ROW a = 1, b = "x" | EVAL c = a + 1 | LIMIT 1'}
    )
    result = response.parse_response(answer.body)
    assert result.column_names == ("a", "b", "c")
    assert result.rows == ({"a": 1, "b": "x", "c": 2},)


def test_async_query_that_finishes_in_time_answers_without_an_id(
    esql: Elasticsearch, events: Callable[..., str]
) -> None:
    index = events([{"@timestamp": "2025-01-01T00:00:00Z", "host": {"name": "h1"}}])
    body: dict[str, Any] = {
        "query": f"FROM {index} METADATA _id | KEEP _id, host.name | LIMIT 10",
        "wait_for_completion_timeout": "4m",
    }
    answer = esql.perform_request(
        "POST", "/_query/async", headers=JSON, body=body, params={"drop_null_columns": "true"}
    )
    assert answer.body["is_running"] is False
    assert "id" not in answer.body  # nothing kept, so Kibana has nothing to delete
    assert response.parse_response(answer.body).rows == ({"_id": "e0", "host.name": "h1"},)


def test_async_query_kept_on_completion_is_read_back_and_deleted(
    esql: Elasticsearch, events: Callable[..., str]
) -> None:
    index = events([{"@timestamp": "2025-01-01T00:00:00Z", "n": 1}])
    body = {
        "query": f"FROM {index} | KEEP n | LIMIT 10",
        "wait_for_completion_timeout": "4m",
        "keep_on_completion": True,
    }
    started = esql.perform_request("POST", "/_query/async", headers=JSON, body=body)
    query_id = started.body["id"]
    again = esql.perform_request("GET", f"/_query/async/{query_id}", headers=JSON)
    assert response.parse_response(again.body).rows == ({"n": 1},)
    assert esql.perform_request("DELETE", f"/_query/async/{query_id}", headers=JSON).body == {"acknowledged": True}
    with pytest.raises(ApiError) as gone:
        esql.perform_request("GET", f"/_query/async/{query_id}", headers=JSON)
    assert gone.value.status_code == 404


def test_the_plain_node_has_no_esql(es: Elasticsearch) -> None:
    """The default node stays as it was: no x-pack, so no _query (ESQL=1 is what adds it). The path is then
    read as an index named ``_query``, which takes no POST."""
    with pytest.raises(ApiError) as refused:
        es.perform_request("POST", "/_query", headers=JSON, body={"query": "ROW a = 1"})
    assert refused.value.status_code == 405
    assert "Incorrect HTTP method for uri [/_query] and method [POST]" in str(refused.value.body)
