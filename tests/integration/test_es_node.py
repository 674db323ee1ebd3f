"""The local node really is Elasticsearch, and has every API the job relies on."""

from __future__ import annotations

import urllib.request

import pytest
from elasticsearch import ConflictError, Elasticsearch, helpers

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
