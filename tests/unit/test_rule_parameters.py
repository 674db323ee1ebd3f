"""building_block_type and the parameters Kibana only copies (investigation_fields, required_fields,
related_integrations, setup), and validate's required_fields check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from job.alerts.build import build_alert
from job.rules.validation import required_field_findings
from job.ruletypes.checks import validate_rule
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, endgame_hit, seed_rule

BUILDING_BLOCK_KEYS = (
    "kibana.alert.building_block_type",
    "kibana.alert.rule.building_block_type",
)


def _alert(**rule_changes: Any) -> dict[str, Any]:
    return build_alert(
        seed_rule(**rule_changes), endgame_hit(), now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID
    )


def test_building_block_type_reaches_the_three_fields() -> None:
    alert = _alert(building_block_type="default")
    assert [alert[key] for key in BUILDING_BLOCK_KEYS] == ["default", "default"]
    assert alert["kibana.alert.rule.parameters"]["building_block_type"] == "default"
    # Nothing else changes: same id, same severity, same everything but these three.
    plain = _alert()
    changed = {key for key in alert if alert[key] != plain.get(key)}
    assert changed == {*BUILDING_BLOCK_KEYS, "kibana.alert.rule.parameters"}


def test_without_building_block_type_the_keys_are_absent() -> None:
    alert = _alert()
    assert not [key for key in BUILDING_BLOCK_KEYS if key in alert]
    assert "building_block_type" not in alert["kibana.alert.rule.parameters"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"related_integrations": [], "required_fields": [], "setup": ""}),
        (
            {
                "required_fields": [
                    {"name": "process.name", "type": "keyword", "ecs": True},
                    {"name": "x", "type": "long"},
                ],
                "related_integrations": [
                    {"package": "endpoint", "version": "^8.2.0"},
                    {"package": "aws", "version": "^2.0.0", "integration": "cloudtrail"},
                ],
                "setup": "Install the Defend integration.",
                "investigation_fields": {"field_names": ["user.name", "host.name"]},
            },
            {
                "required_fields": [
                    {"name": "process.name", "type": "keyword", "ecs": True},
                    {"name": "x", "type": "long", "ecs": False},
                ],
                "related_integrations": [
                    {"package": "endpoint", "version": "^8.2.0"},
                    {"package": "aws", "version": "^2.0.0", "integration": "cloudtrail"},
                ],
                "setup": "Install the Defend integration.",
                "investigation_fields": {"field_names": ["user.name", "host.name"]},
            },
        ),
        # Kibana 8.10's plain list of names is migrated; an empty one is dropped.
        ({"investigation_fields": ["user.name"]}, {"investigation_fields": {"field_names": ["user.name"]}}),
        ({"investigation_fields": []}, {"investigation_fields": None}),
    ],
)
def test_copied_parameters(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    parameters = _alert(**changes)["kibana.alert.rule.parameters"]
    for key, value in expected.items():
        assert parameters.get(key) == value, key


@pytest.mark.parametrize(
    "changes",
    [
        {"investigation_fields": {"field_names": []}},
        {"investigation_fields": {"field_names": [""]}},
        {"required_fields": [{"name": "", "type": "keyword"}]},
        {"required_fields": [{"name": "a"}]},
        {"related_integrations": [{"package": "aws"}]},
        {"severity_mapping": [{"field": "event.severity", "value": 21, "severity": "low"}]},
        {"severity_mapping": [{"field": "event.severity", "value": "21", "severity": "urgent"}]},
        {"severity_mapping": [{"field": "event.severity", "operator": "contains", "value": "21", "severity": "low"}]},
        {"risk_score_mapping": [{"field": "", "value": ""}]},
        {"risk_score_mapping": [{"field": "a", "value": "", "risk_score": 101}]},
    ],
)
def test_malformed_parameters_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        seed_rule(**changes)


FIELDS = {"process.name": "keyword", "process.pid": "long", "message": "keyword,text"}


@pytest.mark.parametrize(
    ("required", "expected"),
    [
        ({"name": "process.name", "type": "keyword"}, None),
        ({"name": "message", "type": "text"}, None),  # a type of a conflicting field counts
        (
            {"name": "user.name", "type": "keyword"},
            'Field "user.name" is not found within the rule\'s specified index patterns',
        ),
        (
            {"name": "process.pid", "type": "keyword"},
            'Field "process.pid" with type "keyword" is not found within the rule\'s specified index patterns',
        ),
    ],
)
def test_required_fields_check_uses_kibanas_words(required: dict[str, Any], expected: str | None) -> None:
    findings = required_field_findings(seed_rule(required_fields=[required]), FIELDS)
    assert [finding.message for finding in findings] == ([] if expected is None else [f"required_fields: {expected}"])
    assert all(not finding.error and finding.key == ("rule", "required_fields", 0) for finding in findings)


def test_required_fields_are_checked_only_with_field_types() -> None:
    rule = seed_rule(required_fields=[{"name": "nope", "type": "keyword"}])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not [f for f in validate_rule(rule, alerts_max=10000, now=now) if "required_fields" in f.message]
    found = validate_rule(rule, alerts_max=10000, now=now, field_types=FIELDS)
    assert [f.message for f in found if "required_fields" in f.message] == [
        'required_fields: Field "nope" is not found within the rule\'s specified index patterns'
    ]
