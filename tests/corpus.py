"""The rule corpus of tests/fixtures/corpus and events generated to match its rules.

The corpus holds rule files of our own, shaped like the detection-rules rules that use the features the
job reproduces from Kibana: promotion rules with severity and risk-score mappings and a name override,
building blocks, rules carrying investigation fields, required fields, related integrations and setup
notes, and rules with value-list exceptions. ``matching_event`` builds an event from a rule's query
(every ``and`` branch, the first ``or`` branch, nothing a ``not`` names), so each rule can be run on an
event of its own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from job.alerts.overrides import sorted_severity_mapping
from job.kql import parse
from job.kql.ast import And, Is, Literal, Nested, Node, Not, Or, Range, Value, Wildcard, js_string
from job.rules import Rule, load_rules

CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
LISTS = CORPUS / "lists"


def corpus_rules() -> list[Rule]:
    result = load_rules([CORPUS])
    assert not result.problems, result.problems
    return sorted(result.rules, key=lambda rule: rule.rule_id)


def _value(value: Value) -> str:
    if isinstance(value, Wildcard):
        return "x" if value.is_lone else "x".join(value.parts)
    assert isinstance(value, Literal)
    return js_string(value)


def _fields(node: Node, prefix: str, found: dict[str, Any]) -> None:
    if isinstance(node, And):
        for child in node.children:
            _fields(child, prefix, found)
    elif isinstance(node, Or):
        _fields(node.children[0], prefix, found)
    elif isinstance(node, Nested):
        _fields(node.query, f"{prefix}{_value(node.path)}." if node.path else prefix, found)  # type: ignore[arg-type]
    elif isinstance(node, Is | Range) and node.field is not None:
        value = _value(node.value)
        if isinstance(node, Range):
            value = str(int(value) + (1 if node.op in ("gt", "gte") else -1))
        found[prefix + _value(node.field)] = value
    elif not isinstance(node, Not):
        raise ValueError(f"the corpus generator does not handle {node!r}")


def put(event: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted field as nested objects."""
    *parents, leaf = path.split(".")
    for part in parents:
        event = event.setdefault(part, {})
    event[leaf] = value


def matching_event(rule: Rule) -> dict[str, Any]:
    """An event the rule's query selects (Lucene queries of the corpus are also valid KQL)."""
    found: dict[str, Any] = {}
    _fields(parse(rule.query), "", found)
    event: dict[str, Any] = {}
    for path, value in found.items():
        put(event, path, value)
    return event


def override_fields(rule: Rule) -> tuple[dict[str, Any], tuple[str, float, str]]:
    """Event fields that make every override of the rule apply, and the (severity, risk score, name) expected:
    the highest entry of the severity mapping, 55 for the risk score, a name of the event's own."""
    fields: dict[str, Any] = {}
    severity: str = rule.severity
    if rule.severity_mapping:
        top = sorted_severity_mapping(rule.severity_mapping)[-1]
        fields[top.field] = int(top.value) if top.field == "event.severity" else top.value
        severity = top.severity
    risk_score: float = rule.risk_score
    if rule.risk_score_mapping:
        fields[rule.risk_score_mapping[0].field] = 55
        risk_score = 55
    name = rule.name
    if rule.rule_name_override:
        name = f"From the event: {rule.name}"
        fields[rule.rule_name_override] = name
    return fields, (severity, risk_score, name)


def list_values(list_id: str) -> list[str]:
    return [line.strip() for line in (LISTS / f"{list_id}.txt").read_text().splitlines() if line.strip()]


def a_listed_value(list_id: str, list_type: str) -> Any:
    """One event value the list holds (for a range or CIDR: an address inside it)."""
    first = list_values(list_id)[0]
    if list_type == "ip_range":
        if "/" in first:
            return str(next(ipaddress.ip_network(first).hosts()))
        return first.split("-")[0]
    return int(first) if list_type == "long" else first


def list_refs(rules: list[Rule]) -> dict[str, str]:
    """list id -> list type, for every value list the corpus rules name."""
    return {
        entry.list.id: entry.list.type
        for rule in rules
        for item in rule.exceptions
        for entry in item.entries
        if entry.list is not None
    }
