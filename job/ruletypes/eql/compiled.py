"""An EQL rule's query compiled: parsed, and with the field types of its indices planned as Elasticsearch
plans it (:mod:`job.eql`), with the rule's ``event_category_override``, ``timestamp_field`` and
``tiebreaker_field``; and what ``validate`` says about it.

Without field types (``validate --offline``, or no index matches the rule's patterns) the query is only
parsed: fields cannot be resolved, so nothing is planned and nothing that depends on the mapping is checked.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Callable, Mapping
from typing import Any

from job.eql import EqlError, EqlVerificationError, Problem, QueryPlan, parse, plan
from job.eql.ast import SampleQuery, SequenceQuery, Statement
from job.eql.errors import EqlSyntaxError
from job.kql.errors import line_and_column
from job.rules.model import EqlRule, Rule
from job.rules.validation import Finding

DEFAULT_CATEGORY_FIELD = "event.category"
DEFAULT_TIMESTAMP_FIELD = "@timestamp"

SAMPLE_REFUSAL = (
    "sample queries are not run by this job: Elasticsearch returns samples as sequences, which Kibana turns "
    "into sequence alerts, but none of Elastic's sequence semantics (order, maxspan) apply to them; "
    "write the rule as a sequence"
)
SEQUENCE_SUPPRESSION_REFUSAL = (
    "alert_suppression: Kibana suppresses the alerts of EQL sequences only behind an experimental feature flag "
    "(alertSuppressionForSequenceEqlRuleEnabled), so this job does not; remove [rule.alert_suppression] or "
    "make the query an event query"
)


@dc.dataclass(frozen=True, slots=True)
class Compiled:
    """The statement, and its plan when field types were known (None: parsed only)."""

    statement: Statement
    plan: QueryPlan | None
    field_types: Mapping[str, str]

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.statement.query, SequenceQuery)


def eql_rule(rule: Rule) -> EqlRule:
    if not isinstance(rule, EqlRule):
        raise TypeError(f"rule {rule.rule_id} is a {rule.type} rule, not an EQL rule")
    return rule


def category_field(rule: EqlRule) -> str:
    return rule.event_category_override or DEFAULT_CATEGORY_FIELD


def timestamp_field(rule: EqlRule) -> str:
    return rule.timestamp_field or DEFAULT_TIMESTAMP_FIELD


def tiebreaker_field(rule: EqlRule) -> str | None:
    return rule.tiebreaker_field or None  # Kibana sends it only when it is not empty


def compile_query(rule: Rule, field_types: Mapping[str, str] | None) -> Compiled:
    """Parse the rule's query and, with field types, plan it; :class:`job.eql.EqlError` (a
    :class:`job.errors.QueryError` with a position) when it does not parse, verify or run here."""
    eql = eql_rule(rule)
    statement = parse(eql.query)
    if isinstance(statement.query, SampleQuery):
        raise EqlVerificationError(Problem(SAMPLE_REFUSAL, 0, len("sample")), eql.query)
    if not field_types:
        return Compiled(statement, None, {})
    planned = plan(
        statement,
        field_types,
        category_field=category_field(eql),
        timestamp_field=timestamp_field(eql),
        tiebreaker_field=tiebreaker_field(eql),
    )
    return Compiled(statement, planned, field_types)


def error_findings(exc: EqlError) -> list[Finding]:
    """One finding per problem of an EQL error, each at its place in the query, in Elasticsearch's words."""
    findings = []
    for problem in exc.problems:
        if problem.offset is None or not exc.query:
            findings.append(Finding(("rule", "query"), f"query: {problem.message}"))
            continue
        line, column = line_and_column(exc.query, min(problem.offset, len(exc.query)))
        where = f"query line {line}, column {column}"
        findings.append(Finding(("rule", "query"), f"{where}: {problem.message}", query_position=(line, column)))
    return findings


def check_rule(rule: Rule, compiled: Callable[[], Any]) -> list[Finding]:
    """What ``validate`` reports about an EQL rule beyond the checks every type shares."""
    findings: list[Finding] = []
    if not rule.index:
        message = (
            "data_view_id: data views live in Kibana, which this job cannot read; give index patterns in index"
            if rule.data_view_id
            else "rule.index: an EQL rule needs index (the index patterns to search)"
        )
        findings.append(Finding(("rule", "data_view_id" if rule.data_view_id else "index"), message))
    if not rule.query.strip():
        findings.append(Finding(("rule", "query"), "query: an EQL rule needs a query"))
        return findings
    try:
        result: Compiled = compiled()
    except EqlError as exc:
        return findings + error_findings(exc)
    if result.is_sequence and rule.alert_suppression is not None:
        findings.append(Finding(("rule", "alert_suppression"), SEQUENCE_SUPPRESSION_REFUSAL))
    return findings


__all__ = [
    "Compiled",
    "EqlSyntaxError",
    "check_rule",
    "compile_query",
    "error_findings",
]
