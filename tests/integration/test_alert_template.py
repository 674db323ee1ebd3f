"""The alert template on the real node: awkward events still give alerts that index and can be found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from job.alerts.build import build_alert
from job.alerts.template import (
    TEMPLATE_VERSION,
    alert_index_template,
    write_index_aliases,
)
from job.config.indexnames import template_name, write_index_name
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, endgame_hit, seed_rule

pytestmark = pytest.mark.integration

RULE = seed_rule()
LONG = "x" * 40_000


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": "deep"}
    for level in range(depth):
        node = {f"l{level}": node}
    return node


# (host.name to find the alert by, or None; changes to the seed event's _source)
AWKWARD: list[tuple[str | None, dict[str, Any]]] = [
    ("plain", {"host": {"name": "plain"}}),
    (
        "strings-for-typed",
        {
            "host": {"name": "strings-for-typed", "ip": "not-an-ip"},
            "process": {"pid": "four", "name": "p"},
            "event": {"created": "yesterday", "severity": "high"},
            "source": {"ip": "local", "port": "http"},
            "@timestamp": "garbage",
        },
    ),
    (
        "objects-for-keywords",
        {
            "host": {"name": "objects-for-keywords"},
            "user": {"name": {"first": "a"}},
            "process": {"name": {"x": 1}, "command_line": ["ok", {"no": 1}]},
        },
    ),
    (None, {"host": {"name": {"first": "h"}}}),
    (None, {"host": "scalar-where-object-mapped"}),
    ("dotted", {"host": {}, "host.name": "dotted", "host.name.first": "x", "process.pid": {"a": 1}}),
    (
        "many-fields",
        {
            "host": {"name": "many-fields"},
            "custom": {f"f{i}": i for i in range(1000)},
            **{f"flat.f{i}": str(i) for i in range(1000)},
        },
    ),
    ("conflict-a", {"host": {"name": "conflict-a"}, "custom_field": "text", "process": {"pid": 12}}),
    ("conflict-b", {"host": {"name": "conflict-b"}, "custom_field": {"nested": [1, "x"]}, "process": {"pid": "x"}}),
    (
        "huge-values",
        {
            "host": {"name": "huge-values"},
            "process": {"command_line": LONG, "name": LONG},
            "message": LONG,
            "user": {"name": LONG},
        },
    ),
    ("deep", {"host": {"name": "deep"}, "d": _nested(30)}),
    ("ユニコード", {"host": {"name": "ユニコード"}, "user": {"name": "jürgen"}, "message": "😀"}),
    (
        "forged",
        {
            "host": {"name": "forged"},
            "kibana.alert.workflow_status": "closed",
            "kibana": {"alert": {"rule": {"rule_id": "other"}}},
            "signal": {"rule": {"id": "x"}},
        },
    ),
    ("no-timestamp", {"host": {"name": "no-timestamp"}, "@timestamp": None}),
]


@pytest.fixture
def alias(es: Elasticsearch, index_name: str) -> Iterator[str]:
    """An alerts alias with the template installed and its first index created; the template is removed after."""
    es.indices.put_index_template(name=template_name(index_name), body=alert_index_template(index_name))
    try:
        es.indices.create(index=write_index_name(index_name), aliases=write_index_aliases(index_name))
        yield index_name
    finally:
        es.indices.delete_index_template(name=template_name(index_name))


def _alerts() -> list[dict[str, Any]]:
    alerts = []
    for position, (_, changes) in enumerate(AWKWARD):
        hit = endgame_hit(doc_id=f"doc-{position}", **changes)
        alerts.append(build_alert(RULE, hit, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID))
    return alerts


def _count(es: Elasticsearch, alias: str, query: dict[str, Any]) -> int:
    return int(es.count(index=alias, query=query)["count"])


def test_the_write_index_gets_the_template(es: Elasticsearch, alias: str) -> None:
    index = write_index_name(alias)
    settings = es.indices.get_settings(index=index, flat_settings=True)[index]["settings"]
    assert settings["index.mapping.ignore_malformed"] == "true"
    assert settings["index.mapping.total_fields.limit"] == "2500"
    mappings = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mappings["dynamic"] == "false"
    assert mappings["_meta"]["template_version"] == TEMPLATE_VERSION
    assert mappings["properties"]["host"]["properties"]["ip"]["type"] == "ip"
    assert es.indices.get_alias(name=alias)[index]["aliases"][alias]["is_write_index"] is True


def test_awkward_alerts_are_all_accepted_and_searchable(es: Elasticsearch, alias: str) -> None:
    alerts = _alerts()
    actions = [{"_op_type": "create", "_index": alias, "_id": a["kibana.alert.uuid"], "_source": a} for a in alerts]
    created, errors = helpers.bulk(es, actions, refresh=True, raise_on_error=False)
    assert errors == []
    assert created == len(AWKWARD)

    assert _count(es, alias, {"term": {"kibana.alert.rule.rule_id": RULE.rule_id}}) == len(AWKWARD)
    assert _count(es, alias, {"term": {"kibana.alert.workflow_status": "open"}}) == len(AWKWARD)
    assert _count(es, alias, {"term": {"signal.rule.rule_id": RULE.rule_id}}) == len(AWKWARD)
    for host, _ in AWKWARD:
        if host is not None:
            assert _count(es, alias, {"term": {"host.name": host}}) == 1, host
    assert _count(es, alias, {"term": {"kibana.alert.rule.rule_id": "other"}}) == 0
    assert _count(es, alias, {"match": {"process.command_line.text": "lsass.exe"}}) >= 1


def test_malformed_values_stay_in_source(es: Elasticsearch, alias: str) -> None:
    alerts = _alerts()
    target = alerts[1]  # strings where ECS types are ip / long / date
    es.create(index=alias, id=target["kibana.alert.uuid"], document=target, refresh=True)
    hit = es.get(index=alias, id=target["kibana.alert.uuid"])
    assert hit["_source"]["host"]["ip"] == "not-an-ip"
    assert hit["_source"]["kibana.alert.original_time"] == "garbage"
    for field in ("host.ip", "process.pid", "event.created", "source.port", "kibana.alert.original_time"):
        assert _count(es, alias, {"term": {"_ignored": field}}) == 1, field
