"""The alert index template: settings and mappings of the indices behind the alerts alias.

Modelled on Kibana's security alerts index (``.internal.alerts-security.alerts-<space>-*``):
``dynamic: false`` (fields we do not map stay in ``_source``, searchable by nobody but never a mapping
conflict), ``index.mapping.ignore_malformed`` (a text where a date, number or ip is mapped is kept in
``_source`` and left out of the index) and a total-fields limit of 2,500. On top of that every keyword has
an ``ignore_above`` so a huge value can never exceed Lucene's term-length limit, and
:func:`job.alerts.conform.conform` drops the few values ``ignore_malformed`` does not cover (an object where a
leaf is mapped, a text where an object is mapped).

Only field types every Elasticsearch 8 node has are used: no ``wildcard``, ``constant_keyword`` or
``match_only_text`` (Kibana's choices for some ECS fields), which an OSS-style node lacks.

Indices are named ``<alias>-000001``, ``<alias>-000002`` (rollover); the alias is their write alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Raise when the settings or mappings below change, so an installer knows to update the template.
TEMPLATE_VERSION = 4
TEMPLATE_PRIORITY = 500
KEYWORD_LIMIT = 1024
LONG_KEYWORD_LIMIT = 8191  # 4 UTF-8 bytes per character stays under Lucene's 32,766-byte term limit

_KINDS: dict[str, dict[str, Any]] = {
    "keyword": {"type": "keyword", "ignore_above": KEYWORD_LIMIT},
    "long_keyword": {"type": "keyword", "ignore_above": LONG_KEYWORD_LIMIT},
    "keyword_text": {"type": "keyword", "ignore_above": LONG_KEYWORD_LIMIT, "fields": {"text": {"type": "text"}}},
    "text": {"type": "text"},
    "date": {"type": "date"},
    "long": {"type": "long"},
    "float": {"type": "float"},
    "ip": {"type": "ip"},
    "boolean": {"type": "boolean"},
    "flattened": {"type": "flattened", "ignore_above": LONG_KEYWORD_LIMIT, "depth_limit": 100},
}


def _group(prefix: str, kind: str, names: str) -> dict[str, str]:
    return {f"{prefix}.{name}": kind for name in names.split()}


_ATTACK = "id name reference"
_EVENT_KEYWORDS = "action agent_id_status category code dataset hash id kind module outcome provider timezone type"
_EVENT_TIMES = "created end ingested start"

# Alert fields (written by job.alerts.build).
ALERT_FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "kibana.space_ids": "keyword",
    "kibana.version": "keyword",
    **_group(
        "kibana.alert",
        "keyword",
        "uuid status workflow_status workflow_tags workflow_assignee_ids "
        "workflow_reason workflow_user severity building_block_type url case_ids maintenance_window_ids",
    ),
    **_group("kibana.alert", "date", "original_time start last_detected intended_timestamp workflow_status_updated_at"),
    "kibana.alert.reason": "keyword_text",
    "kibana.alert.risk_score": "float",
    "kibana.alert.depth": "long",
    **_group("kibana.alert.ancestors", "keyword", "id type index rule"),
    "kibana.alert.ancestors.depth": "long",
    **_group("kibana.alert.original_event", "keyword", _EVENT_KEYWORDS),
    **_group("kibana.alert.original_event", "date", _EVENT_TIMES),
    **_group("kibana.alert.original_event", "long", "duration sequence severity"),
    "kibana.alert.original_event.risk_score": "float",
    **_group("kibana.alert.original_data_stream", "keyword", "type dataset namespace"),
    **_group(
        "kibana.alert.rule",
        "keyword",
        "name rule_id uuid type category producer consumer rule_type_id "
        "severity from to interval license author tags references false_positives timestamp_override "
        "indices version created_by updated_by exception_item_ids building_block_type",
    ),
    "kibana.alert.rule.description": "text",
    **_group("kibana.alert.rule", "date", "created_at updated_at"),
    **_group("kibana.alert.rule", "long", "revision max_signals"),
    "kibana.alert.rule.risk_score": "float",
    **_group("kibana.alert.rule", "boolean", "enabled immutable"),
    "kibana.alert.rule.parameters": "flattened",
    **_group("kibana.alert.rule.execution", "keyword", "uuid type"),
    "kibana.alert.rule.execution.timestamp": "date",
    **_group("kibana.alert.rule.exceptions_list", "keyword", "id list_id namespace_type type"),
    "kibana.alert.rule.threat.framework": "keyword",
    **_group("kibana.alert.rule.threat.tactic", "keyword", _ATTACK),
    **_group("kibana.alert.rule.threat.technique", "keyword", _ATTACK),
    **_group("kibana.alert.rule.threat.technique.subtechnique", "keyword", _ATTACK),
    # Alert suppression (template version 3).
    "kibana.alert.instance.id": "keyword",
    **_group("kibana.alert.suppression.terms", "keyword", "field value"),
    **_group("kibana.alert.suppression", "date", "start end"),
    "kibana.alert.suppression.docs_count": "long",
    # Threshold and new-terms alerts (template version 4; Kibana's field maps 8.0.0 and 8.4.0).
    **_group("kibana.alert.threshold_result.terms", "keyword", "field value"),
    "kibana.alert.threshold_result.count": "long",
    "kibana.alert.threshold_result.from": "date",
    "kibana.alert.threshold_result.cardinality.field": "keyword",
    "kibana.alert.threshold_result.cardinality.value": "long",
    "kibana.alert.new_terms": "keyword",
    # EQL sequences: the shell's id on each alert of the sequence, and each building block's place (version 4).
    "kibana.alert.group.id": "keyword",
    "kibana.alert.group.index": "long",
}

# The ECS fields of the source event that operators filter and aggregate on.
ECS_FIELDS: dict[str, str] = {
    "message": "text",
    "tags": "keyword",
    "ecs.version": "keyword",
    **_group("event", "keyword", _EVENT_KEYWORDS),
    **_group("event", "date", _EVENT_TIMES),
    **_group("event", "long", "duration sequence severity"),
    "event.risk_score": "float",
    "event.reason": "long_keyword",
    **_group("data_stream", "keyword", "type dataset namespace"),
    **_group("host", "keyword", "name hostname id mac architecture domain type"),
    "host.ip": "ip",
    **_group("host.os", "keyword", "type name family version platform kernel full"),
    **_group("user", "keyword", "name domain id email full_name"),
    **_group("process", "keyword", "name executable entity_id args working_directory title"),
    **_group("process", "long", "pid args_count"),
    "process.command_line": "keyword_text",
    **_group("process.hash", "keyword", "md5 sha1 sha256 sha512"),
    **_group("process.parent", "keyword", "name executable entity_id args"),
    "process.parent.pid": "long",
    "process.parent.command_line": "keyword_text",
    **_group("file", "keyword", "name extension directory type"),
    "file.path": "long_keyword",
    "file.size": "long",
    **_group("file.hash", "keyword", "md5 sha1 sha256 sha512"),
    **{
        f"{side}.{name}": kind
        for side in ("source", "destination")
        for name, kind in (
            ("ip", "ip"),
            ("port", "long"),
            ("address", "keyword"),
            ("domain", "keyword"),
            ("bytes", "long"),
        )
    },
    **_group("network", "keyword", "direction protocol transport type"),
    **_group("agent", "keyword", "id name type version ephemeral_id"),
    **_group("rule", "keyword", "id uuid name category ruleset version"),
    **_group("service", "keyword", "name type"),
}

# Kibana's legacy ``signal.*`` names, kept as aliases so old saved searches keep working. As in Kibana, the
# severity, risk score and name ones show the alert's effective values (after the rule's overrides).
SIGNAL_ALIASES: dict[str, str] = {
    "signal.status": "kibana.alert.workflow_status",
    "signal.reason": "kibana.alert.reason",
    "signal.depth": "kibana.alert.depth",
    "signal.original_time": "kibana.alert.original_time",
    "signal.rule.id": "kibana.alert.rule.uuid",
    "signal.rule.rule_id": "kibana.alert.rule.rule_id",
    "signal.rule.name": "kibana.alert.rule.name",
    "signal.rule.severity": "kibana.alert.severity",
    "signal.rule.risk_score": "kibana.alert.risk_score",
}


def alert_properties() -> dict[str, Any]:
    """The ``properties`` of the alert mapping (a fresh copy each call)."""
    properties: dict[str, Any] = {}
    for path, kind in {**ALERT_FIELDS, **ECS_FIELDS}.items():
        _place(properties, path, dict(_KINDS[kind]))
    for path, target in SIGNAL_ALIASES.items():
        _place(properties, path, {"type": "alias", "path": target})
    return properties


def _place(properties: dict[str, Any], path: str, leaf: dict[str, Any]) -> None:
    *parents, name = path.split(".")
    node = properties
    for parent in parents:
        node = node.setdefault(parent, {"properties": {}})["properties"]
    node[name] = leaf


def alert_index_template(alias: str) -> dict[str, Any]:
    """The body of ``PUT _index_template/<alias>-template`` for the indices ``<alias>-*``."""
    meta = {"managed_by": "detection-job", "template_version": TEMPLATE_VERSION}
    return {
        "index_patterns": [f"{alias}-*"],
        "priority": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "_meta": meta,
        "template": {
            "settings": {
                "index.number_of_shards": 1,
                "index.auto_expand_replicas": "0-1",
                "index.mapping.ignore_malformed": True,
                "index.mapping.total_fields.limit": 2500,
            },
            "mappings": {"dynamic": False, "_meta": meta, "properties": alert_properties()},
        },
    }


def write_index_aliases(alias: str) -> dict[str, Any]:
    """The ``aliases`` of ``PUT <write_index_name(alias)>``: ``alias`` with this index as its write index."""
    return {alias: {"is_write_index": True}}


def is_mapping_object(node: Mapping[str, Any]) -> bool:
    """Whether a mapping node is an object (has sub-fields) rather than a leaf field."""
    return "properties" in node or node.get("type") in (None, "object")
