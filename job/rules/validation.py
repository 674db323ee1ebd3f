"""Checks of a loaded rule beyond its schema: will this job run it, and run it as Kibana would?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from job.errors import RuleError
from job.kql import lucene_to_dsl, to_dsl
from job.rules.caps import effective_max_signals
from job.rules.exceptions import build_exception_filter
from job.rules.files import read_text
from job.rules.model import Rule
from job.rules.positions import KeyPath, key_lines, line_of

# Keys that change what Kibana alerts on or writes, and that this job does not apply.
UNAPPLIED_KEYS = {
    "alert_suppression": "alerts are not suppressed",
    "risk_score_mapping": "the risk score is always risk_score",
    "severity_mapping": "the severity is always severity",
    "rule_name_override": "the alert name is always name",
}


@dataclass(frozen=True)
class Finding:
    """One result of ``validate_rule``: the TOML key it concerns, a message, and whether it is an error."""

    key: KeyPath
    message: str
    error: bool = True


def translate_query(rule: Rule) -> dict[str, Any]:
    """The rule's query as Elasticsearch DSL (KQL or Lucene); ``ValueError`` if it does not translate."""
    if rule.language == "lucene":
        return lucene_to_dsl(rule.query)
    return to_dsl(rule.query)


def query_problem(rule: Rule) -> str | None:
    """One line describing why the query does not translate, or None."""
    try:
        translate_query(rule)
    except ValueError as exc:
        message = str(getattr(exc, "message", "") or str(exc).splitlines()[0])
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        where = f"query line {line}, column {column}" if line is not None and column is not None else "query"
        return f"{where}: {message}"
    return None


def _query_rule_findings(rule: Rule, alerts_max: int) -> list[Finding]:
    findings: list[Finding] = []
    if not rule.index:
        if rule.data_view_id:
            message = (
                "data_view_id: data views live in Kibana, which this job cannot read; give index patterns in index"
            )
            findings.append(Finding(("rule", "data_view_id"), message))
        else:
            findings.append(Finding(("rule",), "rule.index: a query rule needs index (the index patterns to search)"))
    if not rule.query.strip() and not rule.filters:
        findings.append(Finding(("rule", "query"), "query: empty, and no filters: the rule would alert on every event"))
    elif rule.query.strip():
        problem = query_problem(rule)
        if problem:
            findings.append(Finding(("rule", "query"), problem))
    _, cap = effective_max_signals(rule, alerts_max)
    if cap:
        hint = f" Set DETECTION_ALERTS_MAX={rule.max_signals} to let it write them all."
        findings.append(Finding(("rule", "max_signals"), cap + hint, error=False))
    for key, effect in UNAPPLIED_KEYS.items():
        if getattr(rule, key):
            findings.append(Finding(("rule", key), f"{key}: not applied by this job ({effect})", error=False))
    return findings


def validate_rule(rule: Rule, *, alerts_max: int, now: datetime) -> tuple[Finding, ...]:
    """Everything that keeps a loaded rule from running here as Kibana would run it.

    Errors: a rule type this job does not run, a query that does not translate, no index. Warnings:
    ``max_signals`` above the global cap (Kibana's own text), keys this job does not apply, and
    exception items already expired at ``now``.
    """
    if not rule.supported:
        message = f"type: rule type {rule.type!r} is not supported by this job (only query rules run); it will not run"
        return (Finding(("rule", "type"), message),)
    findings = _query_rule_findings(rule, alerts_max)
    _, expired = build_exception_filter(rule.exceptions, now=now)
    inline = [item for item in rule.exceptions if item.list_id is None]
    for item in expired:
        if item.list_id is None:
            key: KeyPath = ("rule", "exceptions", inline.index(item))
            message = f"exception item {item.item_id!r} expired at {item.expire_time}; it is skipped"
        else:
            key = ("rule", "exceptions_list")
            message = (
                f"exception item {item.item_id!r} of list {item.list_id!r} expired at {item.expire_time}; it is skipped"
            )
        findings.append(Finding(key, message, error=False))
    return tuple(findings)


class _Lines:
    """Line numbers of keys, per file, read once."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[KeyPath, int]] = {}

    def of(self, path: str, key: KeyPath) -> int | None:
        if path not in self._cache:
            try:
                self._cache[path] = key_lines(read_text(Path(path)))
            except RuleError:
                self._cache[path] = {}
        return line_of(self._cache[path], key)


def check_rules(rules: Sequence[Rule], *, alerts_max: int, now: datetime) -> tuple[list[RuleError], list[RuleError]]:
    """``validate_rule`` for every rule, as ``FILE:LINE`` errors: (problems, warnings)."""
    problems: list[RuleError] = []
    warnings: list[RuleError] = []
    lines = _Lines()
    for rule in rules:
        for finding in validate_rule(rule, alerts_max=alerts_max, now=now):
            error = RuleError(rule.source, finding.message, lines.of(rule.source, finding.key))
            (problems if finding.error else warnings).append(error)
    return problems, warnings
