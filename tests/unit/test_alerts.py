"""build_alert: the Kibana-shaped alert for one hit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from job.alerts.build import KIBANA_VERSION, build_alert
from job.alerts.ids import alert_id
from job.alerts.rule_fields import applied_exception_ids
from job.rules.parts import ExceptionItem
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, endgame_hit, seed_rule

NOW_TEXT = "2026-03-01T12:10:00.250Z"


def _alert(hit: dict[str, Any], **rule_changes: Any) -> dict[str, Any]:
    return build_alert(seed_rule(**rule_changes), hit, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID)


def _source_alert(source: dict[str, Any]) -> dict[str, Any]:
    return _alert({"_index": "events-1", "_id": "doc-1", "_source": source})


def _paths(document: Any, prefix: str = "") -> set[str]:
    """Every dotted path of ``document``, whether spelt nested or dotted."""
    if not isinstance(document, dict):
        return {prefix}
    found = {prefix} if prefix else set()
    for key, value in document.items():
        found |= _paths(value, f"{prefix}.{key}" if prefix else key)
    return found


FORGED = [
    {"kibana.alert.workflow_status": "closed"},
    {"kibana.alert.rule.name": "x"},
    {"kibana": {"alert": {"workflow_status": "closed", "rule": {"name": "x"}}}},
    {"kibana.alert": {"severity": "low"}},
    {"kibana": {"space_ids": ["evil"]}, "kibana.version": "0"},
    {"signal.rule.id": "x"},
    {"signal": {"status": "closed", "rule": {"id": "x"}}},
    {"threshold_result": {"count": 5}},
    {"threshold_result.terms": [{"field": "host.name", "value": "h"}]},
    {"kibana.alert.ancestors": [{"id": "x", "type": "signal", "rule": "571afc56-5ed9-465d-a2a9-045f099f6e7e"}]},
    {"kibana.alert.uuid": "forged", "kibana.alert.depth": 7},
]


@pytest.mark.parametrize("forged", FORGED)
def test_forged_alert_fields_never_reach_the_alert(forged: dict[str, Any]) -> None:
    clean = _alert(endgame_hit())
    alert = _alert(endgame_hit(**forged))
    assert alert == clean
    assert not {p for p in _paths(alert) if p.startswith(("signal", "threshold_result"))}
    assert alert["kibana.alert.workflow_status"] == "open"
    assert "kibana" not in alert


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"event": {"action": "a", "category": ["c1", "c2"], "kind": "alert"}},
            {"action": "a", "category": ["c1", "c2"], "kind": "alert"},
        ),
        (
            {"event.action": "a", "event.kind": "event", "event.outcome": "success"},
            {"action": "a", "kind": "event", "outcome": "success"},
        ),
        ({"event": {"action": "a"}, "event.dataset": "d"}, {"action": "a", "dataset": "d"}),
        ({"event": {"x": {"y": 1}}}, {"x.y": 1}),
        ({"message": "no event fields"}, {}),
    ],
)
def test_original_event_copies(source: dict[str, Any], expected: dict[str, Any]) -> None:
    alert = _source_alert(source)
    prefix = "kibana.alert.original_event."
    assert {k[len(prefix) :]: v for k, v in alert.items() if k.startswith(prefix)} == expected
    assert alert["event.kind"] == "signal"
    assert "kind" not in alert.get("event", {})


def test_event_kind_removed_and_empty_event_pruned() -> None:
    alert = _source_alert({"event": {"kind": "alert"}})
    assert "event" not in alert
    assert alert["event.kind"] == "signal"
    assert alert["kibana.alert.original_event.kind"] == "alert"


@pytest.mark.parametrize(
    "source",
    [
        {"data_stream": {"type": "logs", "dataset": "endgame.esensor", "namespace": "prod"}},
        {"data_stream.type": "logs", "data_stream.dataset": "endgame.esensor", "data_stream.namespace": "prod"},
    ],
)
def test_data_stream_copies(source: dict[str, Any]) -> None:
    alert = _source_alert(source)
    assert alert["kibana.alert.original_data_stream.type"] == "logs"
    assert alert["kibana.alert.original_data_stream.dataset"] == "endgame.esensor"
    assert alert["kibana.alert.original_data_stream.namespace"] == "prod"
    for key, value in source.items():
        assert alert[key] == value  # the event's own data_stream fields stay


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-03-01T12:03:17.412Z", "2026-03-01T12:03:17.412Z"),
        ("2026-03-01T13:03:17.412123+01:00", "2026-03-01T12:03:17.412Z"),
        (1772366597412, "2026-03-01T12:03:17.412Z"),
        ("not a time", "not a time"),
        (-1e300, -1e300),
    ],
)
def test_original_time(timestamp: Any, expected: str) -> None:
    alert = _source_alert({"@timestamp": timestamp})
    assert alert["kibana.alert.original_time"] == expected
    assert alert["@timestamp"] == NOW_TEXT


@pytest.mark.parametrize(
    "source", [{}, {"message": "m"}, {"@timestamp": None}, {"@timestamp": {"a": 1}}, {"@timestamp": True}]
)
def test_events_without_timestamp(source: dict[str, Any]) -> None:
    alert = _source_alert(source)
    assert "kibana.alert.original_time" not in alert
    assert alert["@timestamp"] == NOW_TEXT


def test_hit_without_source() -> None:
    alert = build_alert(seed_rule(), {"_index": "i", "_id": "d"}, now=NOW, execution_uuid="e", space_id="s")
    assert alert["kibana.alert.reason"] == "event created high alert Credential Dumping - Detected - Elastic Endgame."
    assert alert["kibana.alert.ancestors"] == [{"id": "d", "type": "event", "index": "i", "depth": 0}]


def test_arrays_and_unicode_survive() -> None:
    source = {
        "host": {"name": "サーバー", "ip": ["10.0.0.1", "fe80::1"]},
        "user": {"name": ["jürgen", "ådmin"]},
        "tags": ["a", "b"],
        "custom": {"nested": [{"k": "ü"}, {"k": "😀"}]},
    }
    alert = _source_alert(source)
    for key, value in source.items():
        assert alert[key] == value
    assert alert["kibana.alert.reason"].endswith(
        "by jürgen, ådmin on サーバー created high alert Credential Dumping - Detected - Elastic Endgame."
    )
    json.dumps(alert)  # plain JSON all the way down


def test_the_hit_is_not_modified() -> None:
    hit = endgame_hit(**{"kibana.alert.rule.name": "x"})
    before = json.dumps(hit, sort_keys=True)
    alert = _alert(hit)
    alert["host"]["name"] = "changed"
    alert["endgame"]["metadata"]["type"] = "changed"
    alert["event"]["category"].append("changed")
    assert json.dumps(hit, sort_keys=True) == before
    assert alert["kibana.alert.original_event.category"] == ["intrusion_detection", "process"]


def test_values_the_mapping_would_refuse_are_dropped() -> None:
    alert = _source_alert({"host": {"name": {"first": "x"}, "hostname": "h"}, "source": "10.0.0.1", "x": {"y": 1}})
    assert alert["host"] == {"hostname": "h"}
    assert "source" not in alert
    assert alert["x"] == {"y": 1}


def test_seed_rule_alert_field_by_field() -> None:
    hit = endgame_hit()
    alert = _alert(hit)
    rule = seed_rule()
    expected_id = alert_id("endgame-2026.03.01", "Xk3vBZIBm2Yx0f9aQ1lc", rule.rule_id, SPACE_ID)
    expected = {
        "@timestamp": NOW_TEXT,
        "event.kind": "signal",
        "kibana.space_ids": ["default"],
        "kibana.version": KIBANA_VERSION,
        "kibana.alert.uuid": expected_id,
        "kibana.alert.original_time": "2026-03-01T12:03:17.412Z",
        "kibana.alert.ancestors": [
            {"id": "Xk3vBZIBm2Yx0f9aQ1lc", "type": "event", "index": "endgame-2026.03.01", "depth": 0}
        ],
        "kibana.alert.depth": 1,
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "kibana.alert.reason": "intrusion_detection, process event with process procdump64.exe, parent process "
        "cmd.exe, by svc_backup on WIN-DC01 created high alert Credential Dumping - Detected - Elastic Endgame.",
        "kibana.alert.severity": "high",
        "kibana.alert.risk_score": 73,
        "kibana.alert.original_event.kind": "alert",
        "kibana.alert.original_event.module": "endgame",
        "kibana.alert.original_event.action": "cred_theft_event",
        "kibana.alert.original_event.category": ["intrusion_detection", "process"],
        "kibana.alert.original_event.ingested": "2026-03-01T12:03:19.001Z",
        "kibana.alert.original_data_stream.dataset": "endgame.esensor",
        "kibana.alert.rule.name": "Credential Dumping - Detected - Elastic Endgame",
        "kibana.alert.rule.rule_id": "571afc56-5ed9-465d-a2a9-045f099f6e7e",
        "kibana.alert.rule.uuid": "571afc56-5ed9-465d-a2a9-045f099f6e7e",
        "kibana.alert.rule.type": "query",
        "kibana.alert.rule.version": 104,
        "kibana.alert.rule.revision": 0,
        "kibana.alert.rule.severity": "high",
        "kibana.alert.rule.risk_score": 73,
        "kibana.alert.rule.from": "now-15m",
        "kibana.alert.rule.to": "now",
        "kibana.alert.rule.interval": "10m",
        "kibana.alert.rule.max_signals": 10000,
        "kibana.alert.rule.indices": ["endgame-*"],
        "kibana.alert.rule.license": "Elastic License v2",
        "kibana.alert.rule.author": ["Elastic"],
        "kibana.alert.rule.immutable": False,
        "kibana.alert.rule.enabled": True,
        "kibana.alert.rule.category": "Custom Query Rule",
        "kibana.alert.rule.producer": "siem",
        "kibana.alert.rule.consumer": "siem",
        "kibana.alert.rule.rule_type_id": "siem.queryRule",
        "kibana.alert.rule.exceptions_list": [],
        "kibana.alert.rule.exception_item_ids": [],
        "kibana.alert.rule.execution.uuid": EXECUTION_UUID,
        "kibana.alert.rule.execution.timestamp": NOW_TEXT,
        "kibana.alert.rule.execution.type": "scheduled",
        "kibana.alert.intended_timestamp": NOW_TEXT,
        "kibana.alert.start": NOW_TEXT,
        "kibana.alert.last_detected": NOW_TEXT,
    }
    for key, value in expected.items():
        assert alert[key] == value, key
    threat = alert["kibana.alert.rule.threat"]
    assert [t["tactic"]["id"] for t in threat] == ["TA0006"]
    assert [t["id"] for t in threat[0]["technique"]] == ["T1003"]
    assert [s["id"] for s in threat[0]["technique"][0]["subtechnique"]] == ["T1003.001"]
    assert alert["kibana.alert.rule.tags"][0] == "Data Source: Elastic Endgame"
    parameters = alert["kibana.alert.rule.parameters"]
    assert parameters["query"] == rule.query
    assert parameters["language"] == "kuery"
    assert parameters["index"] == ["endgame-*"]
    assert parameters["filters"] == []
    assert parameters["from"] == "now-15m"
    assert parameters["immutable"] is False
    assert {"name", "tags", "interval", "enabled", "metadata", "source"}.isdisjoint(parameters)
    # The event itself, minus event.kind.
    source = hit["_source"]
    for key in ("host", "user", "process", "agent", "endgame", "data_stream"):
        assert alert[key] == source[key]
    assert alert["event"] == {k: v for k, v in source["event"].items() if k != "kind"}
    # Not set on the seed rule, so absent (Kibana leaves undefined values out).
    for absent in ("kibana.alert.building_block_type", "kibana.alert.rule.note", "kibana.alert.url"):
        assert absent not in alert


def test_building_block_type_and_optional_rule_texts() -> None:
    alert = _alert(endgame_hit(), building_block_type="default", note="# Triage", setup="Enable it.")
    assert alert["kibana.alert.building_block_type"] == "default"
    assert alert["kibana.alert.rule.building_block_type"] == "default"
    assert alert["kibana.alert.rule.note"] == "# Triage"
    assert alert["kibana.alert.rule.setup"] == "Enable it."


def test_space_and_execution_come_from_the_arguments() -> None:
    hit = endgame_hit()
    alert = build_alert(seed_rule(), hit, now=NOW, execution_uuid="run-2", space_id="soc")
    assert alert["kibana.space_ids"] == ["soc"]
    assert alert["kibana.alert.rule.execution.uuid"] == "run-2"
    assert alert["kibana.alert.uuid"] == alert_id(hit["_index"], hit["_id"], seed_rule().rule_id, "soc")
    assert alert["kibana.alert.uuid"] != _alert(hit)["kibana.alert.uuid"]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_alert(seed_rule(), endgame_hit(), now=datetime(2026, 3, 1), execution_uuid="e", space_id="s")


def test_other_rule_types_are_refused() -> None:
    with pytest.raises(ValueError, match="'threat_match'"):
        _alert(endgame_hit(), type="threat_match", language="kuery", threat_index=("ti-*",))


def test_an_eql_rule_alert_names_kibana_eql_rule_type() -> None:
    alert = _alert(endgame_hit(), type="eql", language="eql", query="process where true")
    assert alert["kibana.alert.rule.type"] == "eql"
    assert alert["kibana.alert.rule.category"] == "Event Correlation Rule"
    assert alert["kibana.alert.rule.rule_type_id"] == "siem.eqlRule"
    assert alert["kibana.alert.rule.parameters"]["language"] == "eql"
    assert alert["kibana.alert.rule.parameters"]["query"] == "process where true"


EXCEPTIONS = [
    {"item_id": "no-expiry", "entries": [{"field": "user.name", "type": "match", "value": "svc_backup"}]},
    {
        "item_id": "expired",
        "expire_time": "2026-03-01T12:00:00Z",
        "entries": [{"field": "host.name", "type": "match", "value": "a"}],
    },
    {
        "item_id": "later",
        "expire_time": "2026-03-02T00:00:00Z",
        "entries": [{"field": "host.name", "type": "match", "value": "b"}],
    },
]
EXCEPTION_LISTS = [{"id": "abc", "list_id": "trusted", "namespace_type": "single", "type": "detection"}]


def test_exceptions_in_force_are_recorded() -> None:
    alert = _alert(endgame_hit(), exceptions=EXCEPTIONS, exceptions_list=EXCEPTION_LISTS)
    assert alert["kibana.alert.rule.exception_item_ids"] == ["no-expiry", "later"]
    assert alert["kibana.alert.rule.exceptions_list"] == EXCEPTION_LISTS
    parameters = alert["kibana.alert.rule.parameters"]
    assert [item["item_id"] for item in parameters["exceptions"]] == ["no-expiry", "expired", "later"]
    assert parameters["exceptions_list"] == EXCEPTION_LISTS


@pytest.mark.parametrize(
    ("expire_time", "applies"),
    [
        (None, True),
        (datetime(2026, 3, 1, 12, 10, 0, 250000, tzinfo=UTC), True),
        (datetime(2026, 3, 1, 12, 10, 0, 249999, tzinfo=UTC), False),
        (datetime(2026, 3, 1, 12, 11), True),  # naive: read as UTC
        (datetime(2026, 3, 1, 12, 9), False),
    ],
)
def test_exception_expiry(expire_time: datetime | None, applies: bool) -> None:
    item = ExceptionItem.model_validate(
        {"item_id": "i", "expire_time": expire_time, "entries": [{"field": "f", "type": "exists"}]}
    )
    rule = seed_rule(exceptions=[item.model_dump()])
    assert applied_exception_ids(rule, now=NOW) == (["i"] if applies else [])


def test_free_form_rule_settings_cannot_break_the_alert() -> None:
    odd = [{"id": {"not": "a keyword"}, "list_id": "l", "namespace_type": "single", "type": "detection"}]
    alert = _alert(endgame_hit(), exceptions_list=odd)
    assert alert["kibana.alert.rule.exceptions_list"] == [
        {"list_id": "l", "namespace_type": "single", "type": "detection"}
    ]
    assert alert["kibana.alert.rule.parameters"]["exceptions_list"] == odd  # flattened takes any object
