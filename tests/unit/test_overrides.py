"""severity_mapping, risk_score_mapping and rule_name_override: Kibana 8.19's results, case by case."""

from __future__ import annotations

import math
from typing import Any

import pytest

from job.alerts.build import build_alert
from job.alerts.overrides import (
    js_number,
    lodash_get,
    name_from_override,
    risk_score_from_mapping,
    severity_from_mapping,
    sorted_severity_mapping,
)
from job.rules.parts import RiskScoreMappingItem, SeverityMappingItem
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, seed_rule


def _severity(field: str, value: str, severity: str) -> SeverityMappingItem:
    return SeverityMappingItem.model_validate(
        {"field": field, "operator": "equals", "value": value, "severity": severity}
    )


# The spec's mapping: authored out of order, rule severity low.
EVENT_SEVERITY = [
    _severity("event.severity", "47", "medium"),
    _severity("event.severity", "99", "critical"),
    _severity("event.severity", "73", "high"),
]
LABELS = [_severity("labels.level", "1", "high")]


@pytest.mark.parametrize(
    ("source", "mapping", "expected"),
    [
        # Worked examples of the spec.
        ({"event": {"severity": [47, 99]}}, EVENT_SEVERITY, "critical"),
        ({"event": {"severity": "99"}}, EVENT_SEVERITY, "low"),  # a string never matches event.severity
        ({"event": {"severity": 73.0}}, EVENT_SEVERITY, "high"),  # JSON 73.0 is the number 73
        ({"labels": {"level": 1}}, LABELS, "high"),
        ({"labels": {"level": "1"}}, LABELS, "high"),
        ({"labels": {"level": 1.0001}}, LABELS, "low"),
        ({"labels": {"level": True}}, LABELS, "low"),
        ({"labels": {"level": " 1"}}, LABELS, "low"),
        # event.severity takes numbers only; other fields take numbers and texts.
        ({"event": {"severity": 47}}, EVENT_SEVERITY, "medium"),
        ({"event": {"severity": [99, 47]}}, EVENT_SEVERITY, "critical"),  # the highest severity wins, not the order
        ({"event": {"severity": 47.5}}, EVENT_SEVERITY, "low"),
        ({"event": {"severity": None}}, EVENT_SEVERITY, "low"),
        ({"event": {"severity": [None, "73", 73]}}, EVENT_SEVERITY, "high"),
        ({"event": {"severity": 2**53}}, [_severity("event.severity", str(2**53), "high")], "low"),  # not safe
        ({"event": {"severity": 2**53 - 1}}, [_severity("event.severity", str(2**53 - 1), "high")], "high"),
        ({"event": {"severity": 73}}, [_severity("event.severity", "73.9", "high")], "high"),  # floor(73.9)
        ({"event": {"severity": 73}}, [_severity("event.severity", "abc", "high")], "low"),  # NaN never matches
        ({"event": {"severity": 0}}, [_severity("event.severity", "", "high")], "high"),  # Number("") is 0
        ({"event": {"severity": 16}}, [_severity("event.severity", "0x10", "high")], "high"),
        ({"labels": {"level": "High"}}, [_severity("labels.level", "high", "high")], "low"),  # case-sensitive
        ({"labels": {"level": -3}}, [_severity("labels.level", "-3", "medium")], "medium"),
        ({"labels": {"level": {"x": 1}}}, LABELS, "low"),
        # lodash get: a literal dotted key first, then the nested path; no look into arrays of objects.
        ({"event.severity": 99}, EVENT_SEVERITY, "critical"),
        ({"event.severity": 47, "event": {"severity": 99}}, EVENT_SEVERITY, "medium"),
        ({"event": [{"severity": 99}]}, EVENT_SEVERITY, "low"),
        ({"labels": {"level.x": 1}}, [_severity("labels.level.x", "1", "high")], "low"),
        ({"a": [{"b": "x"}]}, [_severity("a.0.b", "x", "high")], "high"),  # an explicit index
        ({}, EVENT_SEVERITY, "low"),
        ({"event": {"severity": 99}}, [], "low"),
    ],
)
def test_severity_from_mapping(source: dict[str, Any], mapping: list[SeverityMappingItem], expected: str) -> None:
    assert severity_from_mapping(source, "low", mapping) == expected


def test_mapping_is_sorted_low_to_critical_keeping_the_order_of_equals() -> None:
    mapping = [
        _severity("a", "1", "high"),
        _severity("b", "1", "low"),
        _severity("c", "1", "high"),
        _severity("d", "1", "critical"),
        _severity("e", "1", "medium"),
    ]
    assert [item.field for item in sorted_severity_mapping(mapping)] == ["b", "e", "a", "c", "d"]


def _risk(*fields: str) -> list[RiskScoreMappingItem]:
    return [RiskScoreMappingItem(field=field) for field in fields]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Worked examples of the spec.
        (["", "150", 42], 42),
        ([""], 0),
        ("73", 73),
        (-1, 21),
        # Boundaries.
        ([47, 99], 99),
        (47.5, 47.5),  # unrounded
        ("47.5", 47.5),
        ("", 0),
        ("  ", 0),
        ("0x10", 16),
        ("1e2", 100),
        (100, 100),
        (0, 0),
        (100.5, 21),
        ("101", 21),
        ("Infinity", 21),
        ("12px", 21),
        (True, 21),
        (None, 21),
        ({"score": 50}, 21),
        ([None, True, "x"], 21),
        (73.0, 73),
        (10**400, 21),
    ],
)
def test_risk_score_from_mapping(value: Any, expected: float) -> None:
    result = risk_score_from_mapping({"event": {"risk_score": value}}, 21, _risk("event.risk_score"))
    assert result == expected
    assert type(result) is type(expected)  # 73.0 is written as 73, 47.5 as 47.5


def test_only_the_first_risk_entry_counts() -> None:
    source = {"a": "x", "b": 90}
    assert risk_score_from_mapping(source, 21, _risk("a", "b")) == 21
    assert risk_score_from_mapping(source, 21, _risk("b", "a")) == 90
    assert risk_score_from_mapping(source, 21, []) == 21


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mimikatz detected", "Mimikatz detected"),
        ("", ""),  # the empty string overrides
        (["x"], "Rule"),  # arrays fall back, even of one string
        (5, "Rule"),
        ({"a": "b"}, "Rule"),
        (None, "Rule"),
    ],
)
def test_name_from_override(value: Any, expected: str) -> None:
    assert name_from_override({"message": value}, "Rule", "message") == expected


def test_name_without_override_or_field() -> None:
    assert name_from_override({"message": "x"}, "Rule", None) == "Rule"
    assert name_from_override({}, "Rule", "message") == "Rule"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0.0),
        (" \t\n", 0.0),
        ("42", 42.0),
        (" 42 ", 42.0),
        ("-7.5", -7.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("1e2", 100.0),
        ("0x1F", 31.0),
        ("0b101", 5.0),
        ("0o17", 15.0),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
    ],
)
def test_js_number(text: str, expected: float) -> None:
    assert js_number(text) == expected


@pytest.mark.parametrize("text", ["abc", "1_0", "inf", "nan", ".", "-0x10", "0x", "12px", "1e", "0x1g"])
def test_js_number_nan(text: str) -> None:
    assert math.isnan(js_number(text))


def test_lodash_get_prefers_the_literal_key() -> None:
    assert lodash_get({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
    assert lodash_get({"a": {"b": 2}}, "a.b") == 2
    assert lodash_get({"a": {"b.c": 3}}, "a.b.c") is None
    assert lodash_get({"a": [{"b": 1}]}, "a.b") is None


MAPPED = {
    "severity_mapping": [
        {"field": "event.severity", "operator": "equals", "value": "99", "severity": "critical"},
        {"field": "event.severity", "operator": "equals", "value": "21", "severity": "low"},
    ],
    "risk_score_mapping": [{"field": "event.risk_score", "operator": "equals", "value": ""}],
    "rule_name_override": "message",
}


def test_overrides_drive_the_alert_and_the_rule_keeps_its_values() -> None:
    rule = seed_rule(**MAPPED)
    hit = {
        "_index": "logs-1",
        "_id": "e1",
        "_source": {
            "event": {"severity": 99, "risk_score": 88.5},
            "message": "Ransomware prevented",
            "user": {"name": "u"},
        },
    }
    alert = build_alert(rule, hit, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID)
    assert (alert["kibana.alert.severity"], alert["kibana.alert.risk_score"]) == ("critical", 88.5)
    assert alert["kibana.alert.rule.name"] == "Ransomware prevented"
    assert alert["kibana.alert.reason"] == "event by u created critical alert Ransomware prevented."
    assert (alert["kibana.alert.rule.severity"], alert["kibana.alert.rule.risk_score"]) == ("high", 73)
    parameters = alert["kibana.alert.rule.parameters"]
    assert (parameters["severity"], parameters["risk_score"]) == ("high", 73)
    assert "name" not in parameters
    assert [item["severity"] for item in parameters["severity_mapping"]] == ["low", "critical"]  # sorted
    assert alert["kibana.alert.rule.severity_mapping"] == parameters["severity_mapping"]
    assert alert["kibana.alert.rule.risk_score_mapping"] == MAPPED["risk_score_mapping"]
    assert alert["kibana.alert.rule.rule_name_override"] == parameters["rule_name_override"] == "message"
    assert rule.severity_mapping[0].severity == "critical"  # the rule itself keeps its written order


@pytest.mark.parametrize(
    "forged",
    [
        {"kibana.alert.severity": "low", "kibana.alert.rule.severity": "low"},
        {"kibana": {"alert": {"risk_score": 1, "rule": {"name": "forged", "risk_score": 1}}}},
        {"signal": {"rule": {"severity": "low", "name": "forged"}}},
    ],
)
def test_the_event_sets_the_three_values_and_nothing_else(forged: dict[str, Any]) -> None:
    rule = seed_rule(**MAPPED)
    source = {"event": {"severity": 21, "risk_score": "5"}, "message": "From the event"}
    clean = build_alert(rule, {"_index": "i", "_id": "1", "_source": source}, now=NOW, execution_uuid="x", space_id="s")
    forged_alert = build_alert(
        rule, {"_index": "i", "_id": "1", "_source": {**source, **forged}}, now=NOW, execution_uuid="x", space_id="s"
    )
    assert forged_alert == clean
    assert (clean["kibana.alert.severity"], clean["kibana.alert.risk_score"]) == ("low", 5)
    assert (clean["kibana.alert.rule.severity"], clean["kibana.alert.rule.risk_score"]) == ("high", 73)
