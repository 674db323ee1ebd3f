"""Findings about a loaded rule beyond its schema, the kinds every rule type shares (pure), and where in
its file each one belongs. The checks of each rule type, and ``validate_rule``/``check_rules`` over them,
are in :mod:`job.ruletypes.checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from job.errors import QueryError, RuleError
from job.rules.caps import effective_max_signals
from job.rules.exceptions import is_expired
from job.rules.files import read_text
from job.rules.model import Rule
from job.rules.positions import KeyPath, key_lines, line_of
from job.text.diagnostics import Diagnostic, Severity

FieldTypes = Mapping[str, str]  # field name -> its Elasticsearch type(s), as job.client.fieldcaps gives them


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
    group_by = rule.alert_suppression.group_by if rule.alert_suppression else ()
    return grouping_findings(("rule", "alert_suppression", "group_by"), group_by, field_types)


def grouping_findings(
    key: KeyPath, names: Sequence[str], field_types: FieldTypes, label: str | None = None
) -> list[Finding]:
    """Warnings for fields a search groups or counts on (suppression, threshold and new-terms fields) that the
    rule's indices do not map, or map as ``text`` (Elasticsearch refuses to aggregate on it: every run would
    fail). ``key``: where the list of names is in the rule file; ``label``: how the messages name it (default:
    that key)."""
    findings = []
    label = label or ".".join(str(part) for part in key[1:])
    for position, name in enumerate(names):
        mapped = field_types.get(name)
        if mapped is None:
            message = f'Field "{name}" is not found within the rule\'s specified index patterns'
        elif "text" in {kind.strip() for kind in mapped.split(",")}:
            message = f'Field "{name}" is mapped as text, which cannot be grouped on; every run of the rule would fail'
        else:
            continue
        findings.append(Finding((*key, position), f"{label}: {message}", error=False))
    return findings


def searched_findings(rule: Rule, compiled: Callable[[], Any]) -> list[Finding]:
    """What a rule that searches its index patterns with a query that may be empty (threshold, new terms) needs:
    index patterns, and a query that compiles."""
    return index_findings(rule) + (compile_findings(compiled) if rule.query.strip() else [])


def index_findings(rule: Rule) -> list[Finding]:
    """A rule that searches index patterns needs some: none, or a Kibana data view instead, is an error."""
    if rule.index:
        return []
    if rule.data_view_id:
        message = "data_view_id: data views live in Kibana, which this job cannot read; give index patterns in index"
        return [Finding(("rule", "data_view_id"), message)]
    return [Finding(("rule",), f"rule.index: a {rule.type} rule needs index (the index patterns to search)")]


def query_finding(exc: QueryError) -> Finding:
    """The finding of a query that does not compile: one line, with its position in the query when known."""
    message = (exc.message.splitlines() or [type(exc).__name__])[0]
    if exc.line is not None and exc.column is not None:
        where = f"query line {exc.line}, column {exc.column}"
        return Finding(("rule", "query"), f"{where}: {message}", query_position=(exc.line, exc.column))
    return Finding(("rule", "query"), f"query: {message}")


def compile_findings(compiled: Callable[[], Any]) -> list[Finding]:
    """The finding of a query that does not compile (``compiled`` raises its error), or none."""
    try:
        compiled()
    except QueryError as exc:
        return [query_finding(exc)]
    return []


def shared_findings(rule: Rule, *, alerts_max: int, now: datetime, field_types: FieldTypes | None) -> list[Finding]:
    """What every rule type's ``validate`` reports: ``max_signals`` above the global cap (Kibana's own text),
    exception items already expired at ``now``, and, when ``field_types`` (of the rule's indices) are given,
    ``required_fields`` the indices lack and ``alert_suppression.group_by`` fields that cannot group events."""
    findings: list[Finding] = []
    _, cap = effective_max_signals(rule, alerts_max)
    if cap:
        hint = f" Set DETECTION_ALERTS_MAX={rule.max_signals} to let it write them all."
        findings.append(Finding(("rule", "max_signals"), cap + hint, error=False))
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
    return findings


class Lines:
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


def split(diagnostics: Sequence[Diagnostic]) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(errors, warnings)."""
    return [d for d in diagnostics if d.is_error], [d for d in diagnostics if not d.is_error]
