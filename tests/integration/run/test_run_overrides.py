"""Severity, risk score and name overrides, and building blocks, through whole runs on the real node.

The expected values of every event are written out by hand below (an oracle independent of the job's code),
from Kibana 8.19's rules: sorted severity mapping, last match wins, event.severity numbers only; the
largest valid risk score of the first mapping's field; a string name override.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULE_NAME = "Test credential theft"

OVERRIDES = """
rule_name_override = "rule.name"

[[rule.risk_score_mapping]]
field = "event.risk_score"
operator = "equals"
value = ""

[[rule.severity_mapping]]
field = "event.severity"
operator = "equals"
value = "99"
severity = "critical"

[[rule.severity_mapping]]
field = "event.severity"
operator = "equals"
value = "21"
severity = "low"

[[rule.severity_mapping]]
field = "vendor.level"
operator = "equals"
value = "High"
severity = "high"

[[rule.severity_mapping]]
field = "event.severity"
operator = "equals"
value = "47"
severity = "medium"
"""

# (event id, extra event fields, expected severity, risk score, alert name); the rule says high / 73.
EVENTS: list[tuple[str, dict[str, Any], str, float, str]] = [
    ("plain", {}, "high", 73, RULE_NAME),
    ("sev-99", {"event.severity": 99}, "critical", 73, RULE_NAME),
    ("sev-21-string", {"event.severity": "21"}, "high", 73, RULE_NAME),  # a string: no match
    ("sev-21", {"event.severity": 21}, "low", 73, RULE_NAME),
    ("sev-array", {"event.severity": [21, 47]}, "medium", 73, RULE_NAME),  # highest match
    ("vendor-and-low", {"event.severity": 21, "vendor": {"level": "High"}}, "high", 73, RULE_NAME),
    ("vendor-wrong-case", {"vendor": {"level": "high"}}, "high", 73, RULE_NAME),
    ("vendor-and-critical", {"event.severity": 99, "vendor": {"level": "High"}}, "critical", 73, RULE_NAME),
    ("risk-number", {"event.risk_score": 12}, "high", 12, RULE_NAME),
    ("risk-float", {"event.risk_score": 47.5}, "high", 47.5, RULE_NAME),
    ("risk-empty-string", {"event.risk_score": ""}, "high", 0, RULE_NAME),
    ("risk-array", {"event.risk_score": ["", "150", 42]}, "high", 42, RULE_NAME),
    ("risk-too-high", {"event.risk_score": 101}, "high", 73, RULE_NAME),
    ("name", {"rule": {"name": "Mimikatz seen"}}, "high", 73, "Mimikatz seen"),
    ("name-dotted", {"rule.name": "Dotted name"}, "high", 73, "Dotted name"),
    ("name-empty", {"rule": {"name": ""}}, "high", 73, ""),
    ("name-array", {"rule": {"name": ["One", "Two"]}}, "high", 73, RULE_NAME),
    ("name-number", {"rule": {"name": 7}}, "high", 73, RULE_NAME),
    (
        "all-three",
        {"event.severity": 47, "event.risk_score": "88", "rule": {"name": "Everything"}},
        "medium",
        88,
        "Everything",
    ),
]

MAPPING: dict[str, Any] = {"dynamic": True, "properties": {"@timestamp": {"type": "date"}}}


def test_overrides_set_severity_risk_score_and_name_per_event(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=OVERRIDES)
    moment = NOW - timedelta(minutes=3)
    job_env.index_events([cred_event(moment, _id=doc_id, **fields) for doc_id, fields, *_ in EVENTS], mapping=MAPPING)
    assert job_env.run("--now", iso(NOW)) == 0
    alerts = {doc["kibana.alert.ancestors"][0]["id"]: doc for doc in job_env.alert_docs(rule_id)}
    assert sorted(alerts) == sorted(doc_id for doc_id, *_ in EVENTS)
    for doc_id, _, severity, risk_score, name in EVENTS:
        alert = alerts[doc_id]
        assert alert["kibana.alert.severity"] == severity, doc_id
        assert alert["kibana.alert.risk_score"] == risk_score, doc_id
        assert alert["kibana.alert.rule.name"] == name, doc_id
        assert alert["kibana.alert.reason"].endswith(f" created {severity} alert {name}."), doc_id
        # The rule's own values stay where Kibana keeps them.
        assert (alert["kibana.alert.rule.severity"], alert["kibana.alert.rule.risk_score"]) == ("high", 73)
        parameters = alert["kibana.alert.rule.parameters"]
        assert (parameters["severity"], parameters["risk_score"]) == ("high", 73)
        assert [item["severity"] for item in parameters["severity_mapping"]] == ["low", "medium", "high", "critical"]
        assert alert["kibana.alert.rule.severity_mapping"] == parameters["severity_mapping"]
        assert alert["kibana.alert.rule.rule_name_override"] == "rule.name"

    # The legacy signal.rule.* names show the effective values, as in Kibana.
    def count(query: dict[str, Any]) -> int:
        return int(job_env.es.count(index=job_env.alerts, query=query)["count"])

    critical = sum(1 for *_, severity, _, _ in EVENTS if severity == "critical")
    assert count({"term": {"signal.rule.severity": "critical"}}) == critical == 2
    assert count({"term": {"signal.rule.name": "Everything"}}) == 1
    assert count({"range": {"signal.rule.risk_score": {"lt": 1}}}) == 1


def test_a_building_block_rule_marks_its_alerts_and_nothing_else(job_env: JobEnv) -> None:
    block = job_env.write_rule(name="Building block", extra='building_block_type = "default"')
    plain = job_env.write_rule(name="Plain")
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="e1")])
    assert job_env.run("--now", iso(NOW)) == 0
    [block_alert] = job_env.alert_docs(block)
    [plain_alert] = job_env.alert_docs(plain)
    assert block_alert["kibana.alert.building_block_type"] == "default"
    assert block_alert["kibana.alert.rule.building_block_type"] == "default"
    assert block_alert["kibana.alert.rule.parameters"]["building_block_type"] == "default"
    assert not [key for key in plain_alert if "building_block_type" in key]
    assert "building_block_type" not in plain_alert["kibana.alert.rule.parameters"]
    # Kibana's alert table hides building blocks with this filter; the mapped field makes it work here too.
    shown = job_env.es.search(
        index=job_env.alerts, query={"bool": {"must_not": {"exists": {"field": "kibana.alert.building_block_type"}}}}
    )
    assert [hit["_id"] for hit in shown["hits"]["hits"]] == [plain_alert["_id"]]
