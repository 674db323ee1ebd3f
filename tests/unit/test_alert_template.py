"""The alert index template: settings, only field types every node has, and every alert field mapped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from job.alerts.build import build_alert
from job.alerts.template import (
    TEMPLATE_VERSION,
    alert_index_template,
    alert_properties,
    is_mapping_object,
    write_index_aliases,
)
from job.config.indexnames import template_name, write_index_name
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, endgame_hit, seed_rule

AVAILABLE_TYPES = {"keyword", "text", "date", "long", "float", "ip", "boolean", "object", "flattened", "alias"}
# Alert fields kept in _source only: long texts and Kibana's list-of-objects rule settings.
UNMAPPED_ON_PURPOSE = {
    "kibana.alert.rule.note",
    "kibana.alert.rule.setup",
    "kibana.alert.rule.actions",
    "kibana.alert.rule.risk_score_mapping",
    "kibana.alert.rule.severity_mapping",
}


def _leaf_nodes(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, node in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        if is_mapping_object(node):
            yield from _leaf_nodes(node.get("properties", {}), path)
        else:
            yield path, node


def _mapping_node(properties: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = None
    current = properties
    for segment in path.split("."):
        node = current.get(segment)
        if node is None:
            return None
        current = node.get("properties", {})
    return node


def test_template_body() -> None:
    body = alert_index_template("detection-alerts-default")
    assert body["index_patterns"] == ["detection-alerts-default-*"]
    assert body["version"] == TEMPLATE_VERSION
    assert body["_meta"]["template_version"] == TEMPLATE_VERSION
    settings = body["template"]["settings"]
    assert settings["index.mapping.ignore_malformed"] is True
    assert settings["index.mapping.total_fields.limit"] == 2500
    assert settings["index.auto_expand_replicas"] == "0-1"
    mappings = body["template"]["mappings"]
    assert mappings["dynamic"] is False
    assert mappings["_meta"]["template_version"] == TEMPLATE_VERSION
    assert template_name("a") == "a-template"
    assert write_index_name("a") == "a-000001"
    assert write_index_aliases("a") == {"a": {"is_write_index": True}}


def test_only_field_types_every_node_has() -> None:
    leaves = dict(_leaf_nodes(alert_properties()))
    assert {node["type"] for node in leaves.values()} <= AVAILABLE_TYPES
    assert len(leaves) < 1000  # far below the 2,500 total-fields limit


def test_every_keyword_has_a_length_limit() -> None:
    for path, node in _leaf_nodes(alert_properties()):
        if node["type"] in ("keyword", "flattened"):
            assert 0 < node["ignore_above"] <= 8191, path


@pytest.mark.parametrize(
    ("path", "expected_type"),
    [
        ("@timestamp", "date"),
        ("host.ip", "ip"),
        ("host.os.family", "keyword"),
        ("process.pid", "long"),
        ("process.command_line", "keyword"),
        ("process.parent.command_line", "keyword"),
        ("source.port", "long"),
        ("destination.ip", "ip"),
        ("event.severity", "long"),
        ("event.ingested", "date"),
        ("file.hash.sha256", "keyword"),
        ("message", "text"),
        ("kibana.alert.risk_score", "float"),
        ("kibana.alert.ancestors.depth", "long"),
        ("kibana.alert.rule.parameters", "flattened"),
        ("signal.rule.rule_id", "alias"),
    ],
)
def test_field_types(path: str, expected_type: str) -> None:
    node = _mapping_node(alert_properties(), path)
    assert node is not None and node["type"] == expected_type


def test_command_lines_are_searchable_as_text_too() -> None:
    node = _mapping_node(alert_properties(), "process.command_line")
    assert node is not None and node["fields"]["text"]["type"] == "text"


def test_every_alert_field_is_mapped() -> None:
    alert = build_alert(
        seed_rule(building_block_type="default", note="n", setup="s"),
        endgame_hit(),
        now=NOW,
        execution_uuid=EXECUTION_UUID,
        space_id=SPACE_ID,
    )
    properties = alert_properties()
    written = {key for key in alert if key.startswith("kibana.") or key in ("@timestamp", "event.kind")}
    unmapped = {key for key in written if _mapping_node(properties, key) is None}
    assert unmapped == UNMAPPED_ON_PURPOSE


def test_aliases_point_at_mapped_fields() -> None:
    properties = alert_properties()
    for path, node in _leaf_nodes(properties):
        if node["type"] == "alias":
            target = _mapping_node(properties, node["path"])
            assert target is not None and target["type"] != "alias", path
