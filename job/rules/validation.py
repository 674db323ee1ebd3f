"""Checks of a loaded rule beyond its schema: will this job run it, and run it as Kibana would?

``validate_rule`` is pure: the query is translated by the rule language's backend (``job.backends``), with
the field types of the rule's indices when a cluster is reachable; ``check_rules`` turns the findings of
many rules into ``Diagnostic`` records on the lines of the keys they concern.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from job.backends import FieldTypes, FieldTypesSource, QueryTranslator
from job.diagnostics import Diagnostic, Severity
from job.errors import QueryError, RuleError
from job.rules.caps import effective_max_signals
from job.rules.exceptions import is_expired
from job.rules.files import read_text
from job.rules.model import Rule
from job.rules.positions import KeyPath, key_lines, line_of


@dataclass(frozen=True)
class Finding:
    """One result of ``validate_rule``: the TOML key it concerns, a message, and whether it is an error.

    ``query_position`` is the 1-based (line, column) in the query text of a query that does not translate.
    """

    key: KeyPath
    message: str
    error: bool = True
    query_position: tuple[int, int] | None = None

    @property
    def severity(self) -> Severity:
        return "error" if self.error else "warning"


def _query_finding(rule: Rule, translator: QueryTranslator) -> Finding | None:
    """Why the query does not translate (one line, with its position in the query), or None."""
    try:
        translator.translate(rule)
    except QueryError as exc:
        message = (exc.message.splitlines() or [type(exc).__name__])[0]
        if exc.line is not None and exc.column is not None:
            where = f"query line {exc.line}, column {exc.column}"
            return Finding(("rule", "query"), f"{where}: {message}", query_position=(exc.line, exc.column))
        return Finding(("rule", "query"), f"query: {message}")
    return None


def required_field_findings(rule: Rule, field_types: FieldTypes) -> list[Finding]:
    """Warnings for ``required_fields`` entries the rule's indices lack, in Kibana's per-field words.

    Kibana shows these only in its rule editor; the run never checks them. A field counts as found when
    some index maps it, and as found with its type when one of its mapped types is that type.
    """
    findings = []
    for position, required in enumerate(rule.required_fields):
        mapped = field_types.get(required.name)
        if mapped is None:
            message = f'Field "{required.name}" is not found within the rule\'s specified index patterns'
        elif required.type not in {kind.strip() for kind in mapped.split(",")}:
            message = (
                f'Field "{required.name}" with type "{required.type}" is not found within the rule\'s '
                "specified index patterns"
            )
        else:
            continue
        findings.append(Finding(("rule", "required_fields", position), f"required_fields: {message}", error=False))
    return findings


def suppression_findings(rule: Rule, field_types: FieldTypes) -> list[Finding]:
    """Warnings for ``alert_suppression.group_by`` fields that cannot group events: not mapped in the rule's
    indices (every event then falls in the group of no value), or mapped as ``text`` (not aggregatable:
    Elasticsearch refuses the grouping search, so every run fails). Kibana's editor offers aggregatable
    fields only."""
    findings = []
    for position, name in enumerate(rule.alert_suppression.group_by if rule.alert_suppression else ()):
        mapped = field_types.get(name)
        if mapped is None:
            message = f'Field "{name}" is not found within the rule\'s specified index patterns'
        elif "text" in {kind.strip() for kind in mapped.split(",")}:
            message = f'Field "{name}" is mapped as text, which cannot be grouped on; every run of the rule would fail'
        else:
            continue
        key = ("rule", "alert_suppression", "group_by", position)
        findings.append(Finding(key, f"alert_suppression.group_by: {message}", error=False))
    return findings


def _query_rule_findings(rule: Rule, alerts_max: int, translator: QueryTranslator) -> list[Finding]:
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
        problem = _query_finding(rule, translator)
        if problem:
            findings.append(problem)
    _, cap = effective_max_signals(rule, alerts_max)
    if cap:
        hint = f" Set DETECTION_ALERTS_MAX={rule.max_signals} to let it write them all."
        findings.append(Finding(("rule", "max_signals"), cap + hint, error=False))
    return findings


def validate_rule(
    rule: Rule,
    *,
    alerts_max: int,
    now: datetime,
    translator: QueryTranslator | None = None,
    field_types: FieldTypes | None = None,
) -> tuple[Finding, ...]:
    """Everything that keeps a loaded rule from running here as Kibana would run it.

    Errors: a rule type this job does not run, a query that does not translate, no index. Warnings:
    ``max_signals`` above the global cap (Kibana's own text), exception items already expired at ``now``,
    and, when ``field_types`` (of the rule's indices) are given, ``required_fields`` the indices lack and
    ``alert_suppression.group_by`` fields that cannot group events. ``translator`` translates the query
    (default: without field types, as ``validate --offline``).
    """
    if not rule.supported:
        message = f"type: rule type {rule.type!r} is not supported by this job (only query rules run); it will not run"
        return (Finding(("rule", "type"), message),)
    findings = _query_rule_findings(rule, alerts_max, translator or QueryTranslator())
    if field_types is not None:
        findings += required_field_findings(rule, field_types)
        findings += suppression_findings(rule, field_types)
    inline = [item for item in rule.exceptions if item.list_id is None]
    for item in rule.exceptions:
        if not is_expired(item, now):
            continue
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
    """Line numbers of keys, and the text lines, per file, read once."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[dict[KeyPath, int], list[str]]] = {}

    def _read(self, path: str) -> tuple[dict[KeyPath, int], list[str]]:
        if path not in self._cache:
            try:
                text = read_text(Path(path))
                self._cache[path] = key_lines(text), text.splitlines()
            except RuleError:
                self._cache[path] = {}, []
        return self._cache[path]

    def of(self, path: str, key: KeyPath) -> int | None:
        return line_of(self._read(path)[0], key)

    def of_query(self, path: str, position: tuple[int, int]) -> tuple[int | None, int | None]:
        """The file line and column of a position in a multi-line ``query`` block (its text starts on the next
        line), or the line of the ``query`` key and no column for a one-line query."""
        keys, text = self._read(path)
        line = line_of(keys, ("rule", "query"))
        if line is None or line > len(text):
            return line, None
        opening = text[line - 1].split("=", 1)[-1].strip()
        if opening in ("'''", '"""'):
            return line + position[0], position[1]
        return line, None


def check_rules(
    rules: Sequence[Rule],
    *,
    alerts_max: int,
    now: datetime,
    translator: QueryTranslator | None = None,
    field_types: FieldTypesSource | None = None,
) -> list[Diagnostic]:
    """``validate_rule`` for every rule, as diagnostics on the lines of the keys they concern.

    ``field_types`` gives the field types of a rule's index patterns (``_field_caps`` of the cluster);
    without it, queries are translated without types and ``required_fields`` are not checked.
    """
    translator = translator or QueryTranslator(field_types)
    diagnostics: list[Diagnostic] = []
    lines = _Lines()
    for rule in rules:
        types = field_types(rule.index) if field_types is not None and rule.supported and rule.index else None
        for finding in validate_rule(rule, alerts_max=alerts_max, now=now, translator=translator, field_types=types):
            line, column = lines.of(rule.source, finding.key), None
            if finding.query_position is not None:
                line, column = lines.of_query(rule.source, finding.query_position)
            diagnostics.append(Diagnostic(rule.source, line, column, finding.severity, finding.message))
    return diagnostics


def split(diagnostics: Sequence[Diagnostic]) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(errors, warnings)."""
    return [d for d in diagnostics if d.is_error], [d for d in diagnostics if not d.is_error]

