"""The local node really is Elasticsearch, of the requested release, has every API the job relies on,
answers errors in the shapes the job parses, and can be killed, paused and restarted on its port."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from elasticsearch import ApiError, ConflictError, Elasticsearch, helpers

from esnode import esnode
from job.search.pager import is_pit_gone
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.integration

MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "host": {"properties": {"name": {"type": "keyword"}, "ip": {"type": "ip"}}},
        "bytes": {"type": "long"},
        "message": {"type": "text"},
        "tags": {
            "type": "nested",
            "properties": {"key": {"type": "keyword"}, "value": {"type": "keyword"}},
        },
    }
}


def _docs(n: int, timestamp: str = "2026-01-01T00:00:00.000Z") -> list[dict[str, object]]:
    return [
        {
            "@timestamp": timestamp,
            "host": {"name": f"h{i % 3}", "ip": f"10.0.0.{i % 250}"},
            "bytes": i,
            "message": f"event number {i}",
            "tags": [{"key": "k", "value": str(i)}],
        }
        for i in range(n)
    ]


def _index(es: Elasticsearch, index: str, docs: list[dict[str, object]]) -> None:
    es.indices.create(index=index, mappings=MAPPING)
    actions = [{"_op_type": "create", "_index": index, "_id": str(i), "_source": d} for i, d in enumerate(docs)]
    helpers.bulk(es, actions, refresh=True)


def test_responses_carry_the_elasticsearch_product_header(es_url: str) -> None:
    with urllib.request.urlopen(f"{es_url}/_cluster/health") as response:
        assert response.status == 200
        assert response.headers["X-Elastic-Product"] == "Elasticsearch"


def test_mapping_with_keyword_date_long_ip_nested(es: Elasticsearch, index_name: str) -> None:
    _index(es, index_name, _docs(3))
    mapping = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert mapping["host"]["properties"]["ip"]["type"] == "ip"
    assert mapping["tags"]["type"] == "nested"
    hits = es.search(
        index=index_name,
        query={"nested": {"path": "tags", "query": {"term": {"tags.value": "2"}}}},
    )["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["2"]
    caps = es.field_caps(index=index_name, fields="host.*")["fields"]
    assert caps["host.name"]["keyword"]["type"] == "keyword"


def test_bulk_create_conflicts_on_a_second_create_of_the_same_id(es: Elasticsearch, index_name: str) -> None:
    body = [
        {"create": {"_index": index_name, "_id": "same"}},
        {"n": 1},
        {"create": {"_index": index_name, "_id": "same"}},
        {"n": 2},
    ]
    result = es.bulk(operations=body, refresh=True)
    statuses = [item["create"]["status"] for item in result["items"]]
    assert statuses == [201, 409]
    assert es.get(index=index_name, id="same")["_source"] == {"n": 1}
    with pytest.raises(ConflictError):
        es.create(index=index_name, id="same", document={"n": 3})


def test_refresh_makes_documents_searchable(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"n": 1})
    es.indices.refresh(index=index_name)
    assert es.count(index=index_name)["count"] == 1


def test_bool_range_search_with_sort_and_search_after(es: Elasticsearch, index_name: str) -> None:
    docs = _docs(10)
    for i, doc in enumerate(docs):
        doc["@timestamp"] = f"2026-01-01T00:00:{i:02d}.000Z"
    _index(es, index_name, docs)
    query = {
        "bool": {
            "filter": [
                {
                    "range": {
                        "@timestamp": {
                            "gte": "2026-01-01T00:00:02.000Z",
                            "lte": "2026-01-01T00:00:07.000Z",
                            "format": "strict_date_optional_time",
                        }
                    }
                },
                {"term": {"host.name": "h1"}},
            ]
        }
    }
    first = es.search(index=index_name, query=query, sort=[{"@timestamp": "asc"}], size=1)["hits"]["hits"]
    assert [h["_source"]["bytes"] for h in first] == [4]
    rest = es.search(
        index=index_name, query=query, sort=[{"@timestamp": "asc"}], size=10, search_after=first[-1]["sort"]
    )["hits"]["hits"]
    assert [h["_source"]["bytes"] for h in rest] == [7]


def test_point_in_time_paging_with_shard_doc_tiebreaker(es: Elasticsearch, index_name: str) -> None:
    _index(es, index_name, _docs(25))  # all share one timestamp
    pit = es.open_point_in_time(index=index_name, keep_alive="1m")["id"]
    seen: list[str] = []
    search_after = None
    try:
        while True:
            page = es.search(
                pit={"id": pit, "keep_alive": "1m"},
                sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
                size=7,
                search_after=search_after,
            )
            pit = page["pit_id"]
            hits = page["hits"]["hits"]
            if not hits:
                break
            seen.extend(h["_id"] for h in hits)
            search_after = hits[-1]["sort"]
    finally:
        assert es.close_point_in_time(id=pit)["succeeded"]
    assert sorted(seen, key=int) == [str(i) for i in range(25)]
    assert len(seen) == len(set(seen))


def test_composable_template_and_write_alias(es: Elasticsearch, index_name: str) -> None:
    template = f"{index_name}-template"
    es.indices.put_index_template(
        name=template,
        index_patterns=[f"{index_name}-*"],
        template={
            "settings": {"index.mapping.ignore_malformed": True},
            "mappings": {"dynamic": False, "properties": {"n": {"type": "long"}}},
        },
    )
    try:
        es.indices.create(index=f"{index_name}-000001", aliases={index_name + "-alias": {"is_write_index": True}})
        es.index(index=f"{index_name}-alias", document={"n": "not a number", "other": 1}, refresh=True)
        assert es.count(index=f"{index_name}-alias")["count"] == 1
        aliases = es.indices.get_alias(name=f"{index_name}-alias")
        assert aliases[f"{index_name}-000001"]["aliases"][f"{index_name}-alias"]["is_write_index"] is True
        mappings = es.indices.get_mapping(index=f"{index_name}-000001")[f"{index_name}-000001"]["mappings"]
        assert mappings["dynamic"] == "false"
        assert "other" not in mappings["properties"]
    finally:
        es.indices.delete_index_template(name=template)


def test_count_and_msearch(es: Elasticsearch, index_name: str) -> None:
    _index(es, index_name, _docs(6))
    assert es.count(index=index_name, query={"term": {"host.name": "h0"}})["count"] == 2
    responses = es.msearch(
        searches=[
            {"index": index_name},
            {"query": {"term": {"host.name": "h1"}}, "size": 0},
            {"index": index_name},
            {"query": {"range": {"bytes": {"gte": 4}}}, "size": 0},
        ]
    )["responses"]
    assert [r["hits"]["total"]["value"] for r in responses] == [2, 2]


def test_the_node_runs_the_requested_release(es_node: esnode.RunningNode | None, es_version: str) -> None:
    if es_node is None:
        pytest.skip("DETECTION_ES_HOSTS names a cluster: no local node")
    nodes = esnode.get_json(es_node.url, "/_nodes/_local?filter_path=nodes.*.version")["nodes"]
    assert [n["version"] for n in nodes.values()] == [es_version] == [esnode.resolve_version(None)]


def test_data_survives_a_sigkill_and_the_restart_keeps_the_port(
    es_node: esnode.RunningNode | None, es: Elasticsearch, index_name: str
) -> None:
    if es_node is None:
        pytest.skip("DETECTION_ES_HOSTS names a cluster: no local node")
    url, pid = es_node.url, es_node.pid
    es.indices.create(index=index_name, mappings=MAPPING)
    # Acknowledged writes are durable (translog fsync per request) even though never refreshed or flushed.
    actions = [
        {"_op_type": "create", "_index": index_name, "_id": str(i), "_source": d} for i, d in enumerate(_docs(40))
    ]
    helpers.bulk(es, actions)
    es_node.kill()
    assert not es_node.alive
    with pytest.raises(OSError):
        esnode.get_json(url, "/_cluster/health", timeout=5)
    es_node.restart()
    assert (es_node.url, es_node.alive) == (url, True)
    assert es_node.pid != pid
    es.cluster.health(index=index_name, wait_for_status="yellow", timeout="60s")  # primaries recovered
    es.indices.refresh(index=index_name)
    assert es.count(index=index_name)["count"] == 40
    assert es.get(index=index_name, id="39")["_source"]["bytes"] == 39


def test_a_paused_node_answers_nothing_until_resumed(es_node: esnode.RunningNode | None) -> None:
    if es_node is None:
        pytest.skip("DETECTION_ES_HOSTS names a cluster: no local node")
    es_node.pause()
    try:
        assert es_node.alive and es_node.paused
        with pytest.raises(TimeoutError):  # the port still accepts connections; nothing answers
            esnode.get_json(es_node.url, "/_cluster/health", timeout=2)
    finally:
        es_node.resume()
    assert not es_node.paused
    assert esnode.get_json(es_node.url, "/_cluster/health", timeout=30)["status"] in ("green", "yellow")


def test_a_deprecated_request_is_recorded_with_its_warning_header(es_url: str, es_warnings: FaultProxy) -> None:
    """The session's recorder sees deprecation warnings (so the check that none occur can fail)."""
    template = f"legacy-{uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(
        f"{es_url}/_template/{template}",
        data=json.dumps({"index_patterns": [f"{template}-*"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    try:
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{es_url}/_template/{template}", method="DELETE")).close()
    recorded = es_warnings.take_warnings()
    assert ("PUT", f"/_template/{template}") in [(method, path) for method, path, _ in recorded]
    assert all("Legacy index templates are deprecated" in warning for _, _, warning in recorded), recorded


# The error shapes the job reads: ApiError.error (the type), the body's reason, bulk items' status, error.type
# and error.reason, and a 404 naming search_context_missing for a point in time that is gone.
ERRORS: list[tuple[str, str, str, object, int, str | None]] = [
    ("missing index", "GET", "/{index}-missing/_search", None, 404, "index_not_found_exception"),
    ("malformed query", "POST", "/{index}/_search", {"query": {"range": {"bytes": {"gte": {}}}}}, 400, None),
    ("unknown query", "POST", "/{index}/_search", {"query": {"no_such_query": {}}}, 400, "parsing_exception"),
    ("closed point in time", "POST", "/_search", "closed-pit", 404, None),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "status", "error_type"), ERRORS, ids=[row[0] for row in ERRORS]
)
def test_error_bodies_have_the_shape_the_job_parses(
    es: Elasticsearch,
    index_name: str,
    case: str,
    method: str,
    path: str,
    body: object,
    status: int,
    error_type: str | None,
) -> None:
    _index(es, index_name, _docs(2))
    if body == "closed-pit":
        pit = es.open_point_in_time(index=index_name, keep_alive="1m")["id"]
        es.close_point_in_time(id=pit)
        body = {"pit": {"id": pit}, "size": 1}
    with pytest.raises(ApiError) as raised:
        es.perform_request(
            method,
            path.format(index=index_name),
            body=body,
            headers={"content-type": "application/json", "accept": "application/json"},
        )
    exc = raised.value
    assert exc.meta.status == status, case
    assert isinstance(exc.body, dict) and isinstance(exc.body["error"]["reason"], str), exc.body
    assert exc.error == exc.body["error"]["type"]
    if error_type is not None:
        assert exc.error == error_type
    if case == "closed point in time":
        assert is_pit_gone(exc), exc.body


def test_bulk_item_errors_have_status_type_and_reason(es: Elasticsearch, index_name: str) -> None:
    _index(es, index_name, _docs(1))
    result = es.bulk(
        operations=[
            {"create": {"_index": index_name, "_id": "0"}},
            {"bytes": 1},
            {"create": {"_index": index_name, "_id": "new"}},
            {"bytes": "not a number"},
        ]
    )
    items = [item["create"] for item in result["items"]]
    assert result["errors"] is True
    assert [(i["status"], i["error"]["type"]) for i in items] == [
        (409, "version_conflict_engine_exception"),
        (400, "document_parsing_exception"),
    ]
    assert all(isinstance(i["error"]["reason"], str) and i["error"]["reason"] for i in items)
