"""The shipped rules: all load strictly, translate, round-trip, and say what the specification says."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from job.backends import translate_rule_query
from job.config.settings import SHIPPED_RULES_DIR
from job.rules import Rule, load_rule, load_rules, rule_to_toml
from job.rules.loader import rule_from_data
from job.rules.positions import key_lines

RULE_FILES = sorted(SHIPPED_RULES_DIR.glob("*.toml"))
SEED = SHIPPED_RULES_DIR / "credential_access_endgame_cred_dumping_detected.toml"

# file → (rule_id, severity, risk_score, version), as the Endgame rule set specifies them.
ENDGAME = {
    "credential_access_endgame_cred_dumping_detected": ("571afc56-5ed9-465d-a2a9-045f099f6e7e", "high", 73, 104),
    "credential_access_endgame_cred_dumping_prevented": ("db8c33a8-03cd-4988-9e2c-d0a4863adb13", "medium", 47, 105),
    "endgame_adversary_behavior_detected": ("77a3c3df-8ec4-4da4-b758-878f551dee69", "medium", 47, 106),
    "endgame_malware_detected": ("0a97b20f-4144-49ea-be32-b540ecc445de", "critical", 99, 105),
    "endgame_malware_prevented": ("3b382770-efbb-44f4-beed-f5e0a051b895", "high", 73, 105),
    "endgame_ransomware_detected": ("8cb4f625-7743-4dfb-ae1b-ad92be9df7bd", "critical", 99, 105),
    "endgame_ransomware_prevented": ("e3c5d5cb-41d5-4206-805c-f30561eae3ac", "high", 73, 105),
    "execution_endgame_exploit_detected": ("2003cdc8-8d83-4aa5-b132-1f9a8eb48514", "high", 73, 106),
    "execution_endgame_exploit_prevented": ("2863ffeb-bf77-44dd-b7a5-93ef94b72036", "medium", 47, 106),
    "privilege_escalation_endgame_cred_manipulation_detected": (
        "c0be5f31-e180-48ed-aa08-96b36899d48f",
        "high",
        73,
        105,
    ),
    "privilege_escalation_endgame_cred_manipulation_prevented": (
        "c9e38e64-3f4c-4bf3-ad48-0e61a60ea1fa",
        "medium",
        47,
        105,
    ),
    "privilege_escalation_endgame_permission_theft_detected": (
        "c3167e1b-f73c-41be-b60b-87f4df707fe3",
        "high",
        73,
        106,
    ),
    "privilege_escalation_endgame_permission_theft_prevented": (
        "453f659e-0429-40b1-bfdb-b6957286e04b",
        "medium",
        47,
        106,
    ),
    "privilege_escalation_endgame_process_injection_detected": (
        "80c52164-c82a-402c-9964-852533d58be1",
        "high",
        73,
        105,
    ),
    "privilege_escalation_endgame_process_injection_prevented": (
        "990838aa-a953-4f3e-b3cb-6ddf7584de9e",
        "medium",
        47,
        105,
    ),
}


def test_all_fifteen_endgame_rules_ship() -> None:
    assert sorted(path.stem for path in RULE_FILES) == sorted(ENDGAME)


def test_the_folder_loads_strictly_without_problems_or_warnings() -> None:
    result = load_rules([SHIPPED_RULES_DIR])
    assert result.problems == ()
    assert result.warnings == ()
    assert len(result.rules) == len(ENDGAME)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_rule_loads_and_its_query_translates(path: Path) -> None:
    rule = load_rule(path)
    assert rule.supported
    dsl = translate_rule_query(rule)
    assert isinstance(dsl, dict) and dsl


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_round_trip_load_model_toml_load(path: Path) -> None:
    rule = load_rule(path)
    text = rule_to_toml(rule)
    again, warnings = rule_from_data(tomllib.loads(text), source=rule.source, lines=key_lines(text))
    assert warnings == ()
    assert again == rule
    # The shipped files are in the writer's layout, so writing them changes nothing.
    assert text == path.read_text()


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_specified_facts(path: Path) -> None:
    rule = load_rule(path)
    rule_id, severity, risk_score, version = ENDGAME[path.stem]
    assert (rule.rule_id, rule.severity, rule.risk_score, rule.version) == (rule_id, severity, risk_score, version)
    # One schedule and cap for all, so that one 10-minute run serves the whole set.
    assert (rule.interval, rule.from_, rule.to, rule.max_signals) == ("10m", "now-15m", "now", 10000)
    assert rule.timestamp_override is None
    assert (rule.type, rule.language, rule.index) == ("query", "kuery", ("endgame-*",))
    assert rule.query.startswith("event.kind:alert and event.module:endgame and ")
    assert rule.name.endswith(" - Elastic Endgame")
    assert rule.author == ("Elastic",) and rule.license == "Elastic License v2"
    assert "Data Source: Elastic Endgame" in rule.tags
    assert rule.metadata.maturity == "production" and rule.metadata.promotion is True
    assert rule.description.count(".") == 1 and rule.description.endswith(".")
    assert rule.note and rule.setup and "DETECTION_ALERTS_MAX=10000" in rule.setup
    assert {f"Tactic: {threat.tactic.name}" for threat in rule.threat} == {
        t for t in rule.tags if t.startswith("Tactic: ")
    }


def test_seed_rule_field_by_field() -> None:
    rule: Rule = load_rule(SEED)
    assert rule.name == "Credential Dumping - Detected - Elastic Endgame"
    assert rule.rule_id == "571afc56-5ed9-465d-a2a9-045f099f6e7e"
    assert rule.type == "query"
    assert rule.language == "kuery"
    assert rule.index == ("endgame-*",)
    assert rule.severity == "high"
    assert rule.risk_score == 73
    assert rule.interval == "10m"
    assert rule.from_ == "now-15m"
    assert rule.to == "now"
    assert rule.max_signals == 10000
    assert rule.version == 104
    assert rule.author == ("Elastic",)
    assert rule.license == "Elastic License v2"
    assert rule.references == ()
    assert rule.timestamp_override is None
    assert rule.enabled is True
    assert rule.exceptions == () and rule.exceptions_list == ()
    assert rule.tags == (
        "Data Source: Elastic Endgame",
        "Use Case: Threat Detection",
        "Tactic: Credential Access",
        "Resources: Investigation Guide",
    )
    assert rule.query == (
        "event.kind:alert and event.module:endgame and endgame.metadata.type:detection and "
        "(event.action:cred_theft_event or endgame.event_subtype_full:cred_theft_event)"
    )
    (threat,) = rule.threat
    assert threat.framework == "MITRE ATT&CK"
    assert (threat.tactic.id, threat.tactic.name, threat.tactic.reference) == (
        "TA0006",
        "Credential Access",
        "https://attack.mitre.org/tactics/TA0006/",
    )
    (technique,) = threat.technique
    assert (technique.id, technique.name, technique.reference) == (
        "T1003",
        "OS Credential Dumping",
        "https://attack.mitre.org/techniques/T1003/",
    )
    (sub,) = technique.subtechnique
    assert (sub.id, sub.name, sub.reference) == (
        "T1003.001",
        "LSASS Memory",
        "https://attack.mitre.org/techniques/T1003/001/",
    )
    assert rule.metadata.creation_date == "2020/02/18"
    assert rule.metadata.updated_date == "2025/03/21"
    assert rule.metadata.maturity == "production"
    assert rule.metadata.promotion is True
    note = rule.note or ""
    for heading in ("## Triage and analysis", "### False positive analysis", "### Response and remediation"):
        assert heading in note
    setup = rule.setup or ""
    assert "max_signals = 10000" in setup and "DETECTION_ALERTS_MAX" in setup and "1000" in setup
