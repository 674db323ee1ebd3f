"""``validate``: everything that keeps a loaded rule from running here as Kibana would run it.

:func:`validate_rule` is pure: the rule's type compiles its query (with the field types of the rule's
indices when a cluster is reachable) and adds its own findings to the ones every type shares;
:func:`check_rules` turns the findings of many rules into ``Diagnostic`` records on the lines of the keys
they concern.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from job.backends import FieldTypes, FieldTypesSource
from job.errors import QueryError
from job.rules.model import Rule
from job.rules.validation import Finding, Lines, query_finding, shared_findings
from job.ruletypes.contract import Cluster, ClusterChecks
from job.ruletypes.registry import Compiler, type_of
from job.text.diagnostics import Diagnostic


def validate_rule(
    rule: Rule,
    *,
    alerts_max: int,
    now: datetime,
    compiler: Compiler | None = None,
    field_types: FieldTypes | None = None,
    cluster: Cluster | None = None,
) -> tuple[Finding, ...]:
    """Everything that keeps a loaded rule from running here as Kibana would run it.

    Errors: a rule type this job does not run, a query that does not compile, what the rule's type refuses.
    Warnings: those every type shares (:func:`job.rules.validation.shared_findings`) and the type's own.
    ``compiler`` compiles the query (default: without field types, as ``validate --offline``). ``cluster``: a
    reachable cluster, which a type whose query only Elasticsearch can judge (ES|QL) asks.
    """
    rule_type = type_of(rule)
    if rule_type is None:
        return (
            Finding(("rule", "type"), f"type: {rule.refusal or f'rule type {rule.type!r} is not run by this job'}"),
        )
    compiler = compiler or Compiler()

    def compiled() -> Any:
        return compiler.compile(rule)

    findings: list[Finding] = []
    try:
        findings += rule_type.check(rule, field_types, compiled)
    except QueryError as exc:
        findings.append(query_finding(exc))
    if cluster is not None and isinstance(rule_type, ClusterChecks):
        findings += rule_type.check_on_cluster(rule, cluster)
    findings += shared_findings(rule, alerts_max=alerts_max, now=now, field_types=field_types)
    return tuple(findings)


def check_rules(
    rules: Sequence[Rule],
    *,
    alerts_max: int,
    now: datetime,
    compiler: Compiler | None = None,
    field_types: FieldTypesSource | None = None,
    cluster: Cluster | None = None,
) -> list[Diagnostic]:
    """:func:`validate_rule` for every rule, as diagnostics on the lines of the keys they concern.

    ``field_types`` gives the field types of a rule's index patterns (``_field_caps`` of the cluster);
    without it, queries are compiled without types and ``required_fields`` are not checked. ``cluster``: the
    reachable cluster that checks the queries only it can judge (ES|QL).
    """
    compiler = compiler or Compiler(field_types)
    diagnostics: list[Diagnostic] = []
    lines = Lines()
    for rule in rules:
        runs = type_of(rule) is not None
        types = field_types(rule.index) if field_types is not None and runs and rule.index else None
        found = validate_rule(
            rule, alerts_max=alerts_max, now=now, compiler=compiler, field_types=types, cluster=cluster
        )
        for finding in found:
            line, column = lines.of(rule.source, finding.key), None
            if finding.query_position is not None:
                line, column = lines.of_query(rule.source, finding.query_position)
            diagnostics.append(Diagnostic(rule.source, line, column, finding.severity, finding.message))
    return diagnostics
