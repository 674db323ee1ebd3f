"""The typed, immutable rule: what a rule file says, checked once at load time.

Field names are the snake_case names of the Kibana detection-engine API and of elastic/detection-rules
TOML (``from`` is ``from_`` in Python). Lists are tuples; models are frozen.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from job.durations import MAX_DURATION, date_math_reach, parse_duration, shown
from job.lists.model import ListType

Severity = Literal["low", "medium", "high", "critical"]
RuleType = Literal["query", "saved_query", "eql", "esql", "threshold", "new_terms", "machine_learning", "threat_match"]
SUPPORTED_TYPES: frozenset[str] = frozenset({"query"})
Language = Literal["kuery", "lucene", "eql", "esql"]
EntryType = Literal["match", "match_any", "exists", "wildcard", "nested", "list"]
Operator = Literal["included", "excluded"]
OsType = Literal["windows", "linux", "macos"]
NamespaceType = Literal["single", "agnostic"]
# Query-family types take a KQL or Lucene query; the others have their own language or none.
QUERY_LANGUAGES: dict[str, frozenset[str]] = {
    "query": frozenset({"kuery", "lucene"}),
    "saved_query": frozenset({"kuery", "lucene"}),
    "threshold": frozenset({"kuery", "lucene"}),
    "new_terms": frozenset({"kuery", "lucene"}),
    "threat_match": frozenset({"kuery", "lucene"}),
    "eql": frozenset({"eql"}),
    "esql": frozenset({"esql"}),
}
# Keys that belong to one rule type only (API names; ``new_terms`` is the detection-rules TOML table).
TYPE_KEYS: dict[str, frozenset[str]] = {
    "saved_query": frozenset({"saved_id"}),
    "eql": frozenset({"timestamp_field", "event_category_override", "tiebreaker_field"}),
    "threshold": frozenset({"threshold"}),
    "new_terms": frozenset({"new_terms", "new_terms_fields", "history_window_start"}),
    "machine_learning": frozenset({"anomaly_threshold", "machine_learning_job_id"}),
    "threat_match": frozenset(
        {
            "threat_index",
            "threat_query",
            "threat_language",
            "threat_indicator_path",
            "threat_filters",
            "threat_mapping",
            "concurrent_searches",
            "items_per_search",
        }
    ),
}
# Elasticsearch date math anchored at now, as rule files write ``from``/``to`` (now-15m, now, now/d).
_DATE_MATH = re.compile(r"^now(?:[+-][0-9]+[smhdwMy]|/[smhdwMy])*$")
StrictInt = Annotated[int, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AttackRef(Frozen):
    id: str
    name: str
    reference: str


class Subtechnique(AttackRef):
    pass


class Technique(AttackRef):
    subtechnique: tuple[Subtechnique, ...] = ()


class Threat(Frozen):
    framework: str = "MITRE ATT&CK"
    tactic: AttackRef
    technique: tuple[Technique, ...] = ()


class ListRef(Frozen):
    """The value list an entry of type ``list`` refers to: its id, and the type the entry trusts it to have."""

    id: str = Field(min_length=1)
    type: ListType


class ExceptionEntry(Frozen):
    """One condition of an exception item, in Kibana's exception-item shape."""

    field: str = Field(min_length=1)
    type: EntryType
    operator: Operator = "included"
    value: str | tuple[str, ...] | None = None
    entries: tuple[ExceptionEntry, ...] = ()
    list: ListRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_shape(cls, data: Any) -> Any:
        # Checked before the fields so that the message names the rule, not a union member.
        if isinstance(data, dict):
            problem = entry_shape_problem(data)
            if problem:
                raise ValueError(problem)
        return data


def entry_shape_problem(entry: dict[str, Any], *, nested: bool = False) -> str | None:
    """Why an exception entry (a TOML table) has the wrong shape for its type, or None."""
    kind, value = entry.get("type"), entry.get("value")
    if kind == "list":
        ref = entry.get("list")
        if not isinstance(ref, dict) or not ref.get("id") or not ref.get("type"):
            return "a list entry needs list = { id = \"<list id>\", type = \"<list type>\" }"
        if value is not None:
            return "a list entry takes no value (the values are in the list)"
    elif entry.get("list") is not None:
        return f"a {kind} entry takes no list (only list entries do)"
    if kind in ("match", "wildcard") and not (isinstance(value, str) and value):
        return f"a {kind} entry needs a non-empty string value"
    if kind == "match_any" and not (
        isinstance(value, list | tuple) and value and all(isinstance(v, str) and v for v in value)
    ):
        return "a match_any entry needs a non-empty list of non-empty strings as value"
    if kind in ("exists", "nested") and value is not None:
        return f"a {kind} entry takes no value"
    if kind != "nested" and entry.get("entries"):
        return f"a {kind} entry takes no sub-entries (only nested entries do)"
    if kind == "nested":
        if nested:
            return "nested entries cannot contain nested entries"
        if entry.get("operator", "included") != "included":
            return "a nested entry takes no operator; put operators on its sub-entries"
        subs = entry.get("entries")
        if not isinstance(subs, list | tuple) or not subs:
            return "a nested entry needs sub-entries (entries)"
        for sub in subs:
            if isinstance(sub, dict):
                if sub.get("type") not in ("match", "match_any", "exists", "nested"):
                    return f"nested sub-entries must be match, match_any or exists, not {sub.get('type')!r}"
                problem = entry_shape_problem(sub, nested=True)
                if problem:
                    return problem
    return None


class ExceptionItem(Frozen):
    """An event matching every entry of an item is not alerted on."""

    item_id: str = Field(min_length=1)
    name: str = ""
    description: str = ""
    entries: tuple[ExceptionEntry, ...] = Field(min_length=1)
    os_types: tuple[OsType, ...] = ()
    expire_time: datetime | None = None
    comments: tuple[str, ...] = ()
    # Set for items that come from an exception-list file (never written inline in a rule).
    list_id: str | None = None
    namespace_type: NamespaceType = "single"
    tags: tuple[str, ...] = ()
    type: Literal["simple"] = "simple"

    @field_validator("comments", mode="before")
    @classmethod
    def _comment_texts(cls, value: Any) -> Any:
        # Kibana writes comments as {comment = "..."} objects; keep the text.
        if isinstance(value, list | tuple):
            return tuple(c["comment"] if isinstance(c, dict) and "comment" in c else c for c in value)
        return value

    @field_validator("expire_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A time without an offset is UTC, as Kibana stores it.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ExceptionList(Frozen):
    """An exception list (Kibana's container plus its items), one per file in ``exceptions/``."""

    list_id: str = Field(min_length=1)
    name: str = ""
    description: str = ""
    type: str = "detection"
    namespace_type: NamespaceType = "single"
    tags: tuple[str, ...] = ()
    os_types: tuple[OsType, ...] = ()
    items: tuple[ExceptionItem, ...] = ()


class SeverityMappingItem(Frozen):
    """``[[rule.severity_mapping]]``: an event whose ``field`` holds ``value`` gets ``severity``."""

    field: str = Field(min_length=1)
    operator: Literal["equals"] = "equals"
    value: str
    severity: Severity


class RiskScoreMappingItem(Frozen):
    """``[[rule.risk_score_mapping]]``: the risk score comes from ``field``; ``value`` and ``risk_score`` are
    kept as written (Kibana reads only the first entry's ``field``)."""

    field: str = Field(min_length=1)
    operator: Literal["equals"] = "equals"
    value: str = ""
    risk_score: StrictInt | None = Field(default=None, ge=0, le=100)


class RequiredField(Frozen):
    """A field the rule needs, with its Elasticsearch type; ``ecs`` says whether ECS defines it so."""

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    ecs: StrictBool = False


class RelatedIntegration(Frozen):
    """A Fleet integration the rule's data comes from (Kibana shows whether it is installed)."""

    package: str = Field(min_length=1)
    version: str = Field(min_length=1)
    integration: str | None = Field(default=None, min_length=1)


class InvestigationFields(Frozen):
    """Fields Kibana's alert flyout shows first."""

    field_names: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)


SuppressionUnit = Literal["s", "m", "h"]
MissingFieldsStrategy = Literal["suppress", "doNotSuppress"]
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


class SuppressionDuration(Frozen):
    """``[rule.alert_suppression.duration]``: how long an alert keeps taking in its group's new events."""

    value: StrictInt = Field(ge=1)
    unit: SuppressionUnit

    @model_validator(mode="after")
    def _bounded(self) -> SuppressionDuration:
        if self.value * _UNIT_SECONDS[self.unit] > MAX_DURATION.total_seconds():
            raise ValueError(f"duration: at most {MAX_DURATION.days} days (got {self.value}{self.unit})")
        return self

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.value * _UNIT_SECONDS[self.unit])


class AlertSuppression(Frozen):
    """``[rule.alert_suppression]``: one alert per group of events with equal ``group_by`` values.

    ``missing_fields_strategy`` is kept as written (None: Kibana's default, ``suppress``); threshold rules
    carry a ``duration`` only.
    """

    group_by: tuple[Annotated[str, Field(min_length=1)], ...] = Field(default=(), max_length=3)
    duration: SuppressionDuration | None = None
    missing_fields_strategy: MissingFieldsStrategy | None = None

    @field_validator("group_by")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each field may appear once")
        return value

    @property
    def suppresses_missing(self) -> bool:
        """Whether events lacking a ``group_by`` field are grouped (on ``null``) rather than alerted one by one."""
        return self.missing_fields_strategy != "doNotSuppress"


class Metadata(Frozen):
    """The ``[metadata]`` table: repository bookkeeping, never sent to Elasticsearch."""

    model_config = ConfigDict(frozen=True, extra="allow")

    creation_date: str | None = None
    updated_date: str | None = None
    maturity: str | None = None
    integration: tuple[str, ...] | str | None = None
    min_stack_version: str | None = None
    min_stack_comments: str | None = None
    promotion: bool | None = None


class Rule(Frozen):
    """A detection rule. Only ``type = "query"`` rules run; the other types load and are reported."""

    rule_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str
    type: RuleType
    language: Language | None = None
    query: str = ""
    index: tuple[str, ...] = ()
    interval: str = "5m"
    from_: str = Field(default="now-6m", alias="from")
    to: str = "now"
    max_signals: StrictInt = Field(default=100, ge=1)
    severity: Severity
    risk_score: StrictInt = Field(ge=0, le=100)
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    license: str | None = None
    version: StrictInt = Field(default=1, ge=1)
    note: str | None = None
    setup: str | None = None
    false_positives: tuple[str, ...] = ()
    timestamp_override: str | None = None
    timestamp_override_fallback_disabled: StrictBool = False
    filters: tuple[dict[str, Any], ...] = ()
    threat: tuple[Threat, ...] = ()
    building_block_type: str | None = None
    enabled: StrictBool = True
    # Overrides: severity, risk score and name of each alert from the event's own fields.
    severity_mapping: tuple[SeverityMappingItem, ...] = ()
    risk_score_mapping: tuple[RiskScoreMappingItem, ...] = ()
    rule_name_override: str | None = None
    # Copied into every alert's kibana.alert.rule.parameters; the run does not read them.
    investigation_fields: InvestigationFields | None = None
    required_fields: tuple[RequiredField, ...] = ()
    related_integrations: tuple[RelatedIntegration, ...] = ()
    # Inline items (``[[rule.exceptions]]``, our extension) followed by the items of the lists named in
    # ``exceptions_list``, which the loader resolves from the ``exceptions/`` folder.
    exceptions: tuple[ExceptionItem, ...] = ()
    exceptions_list: tuple[dict[str, Any], ...] = ()
    metadata: Metadata = Metadata()
    # One alert per group of events (job.ruletypes.query.suppressed); Kibana's threshold rules give only a duration.
    alert_suppression: AlertSuppression | None = None
    # Keys of the format that this job reads but does not act on; kept so that files load and round-trip.
    data_view_id: str | None = None
    timeline_id: str | None = None
    timeline_title: str | None = None
    # Keys of the rule types that this job does not run (TYPE_KEYS), kept as written.
    saved_id: str | None = None
    timestamp_field: str | None = None
    event_category_override: str | None = None
    tiebreaker_field: str | None = None
    threshold: dict[str, Any] | None = None
    new_terms: dict[str, Any] | None = None
    new_terms_fields: tuple[str, ...] | None = None
    history_window_start: str | None = None
    anomaly_threshold: int | None = None
    machine_learning_job_id: str | tuple[str, ...] | None = None
    threat_index: tuple[str, ...] | None = None
    threat_query: str | None = None
    threat_language: str | None = None
    threat_indicator_path: str | None = None
    threat_filters: tuple[dict[str, Any], ...] | None = None
    threat_mapping: tuple[dict[str, Any], ...] | None = None
    concurrent_searches: int | None = None
    items_per_search: int | None = None
    # The top-level ``[transform]`` table of detection-rules (investigation-guide templates).
    transform: dict[str, Any] | None = None
    # Where the rule came from (a file path); not part of the rule format.
    source: str = Field(default="", exclude=True)

    @field_validator("investigation_fields", mode="before")
    @classmethod
    def _legacy_investigation_fields(cls, value: Any) -> Any:
        # Kibana 8.10 wrote a plain list of names; later versions migrate it, and drop an empty one.
        if isinstance(value, list | tuple):
            return {"field_names": value} if value else None
        return value

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("from_", "to")
    @classmethod
    def _check_date_math(cls, value: str) -> str:
        if not _DATE_MATH.match(value):
            raise ValueError(f"expected date math relative to now (e.g. now-15m, now), got {shown(value)}")
        if date_math_reach(value) > MAX_DURATION.total_seconds():
            raise ValueError(
                f"date math {shown(value)} reaches more than {MAX_DURATION.days} days from now "
                "(counting a month as 30 days and a year as 365)"
            )
        return value

    @field_validator("query")
    @classmethod
    def _strip_query(cls, value: str) -> str:
        # A TOML multi-line string keeps the newline before its closing quotes.
        return value.rstrip("\r\n")

    @field_validator("exceptions_list")
    @classmethod
    def _check_list_refs(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for ref in value:
            if not isinstance(ref.get("list_id"), str) or not ref["list_id"]:
                raise ValueError("each exceptions_list entry needs a list_id")
            unknown = set(ref) - {"id", "list_id", "namespace_type", "type"}
            if unknown:
                raise ValueError(f"unknown key(s) in an exceptions_list entry: {', '.join(sorted(unknown))}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_language(cls, data: Any) -> Any:
        # Kibana takes KQL when a query-family rule names no language.
        kind = str(data.get("type")) if isinstance(data, dict) else ""
        if isinstance(data, dict) and data.get("language") is None and "kuery" in QUERY_LANGUAGES.get(kind, ()):
            return {**data, "language": "kuery"}
        return data

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        allowed = QUERY_LANGUAGES.get(kind) if isinstance(kind, str) else None
        if allowed is not None and value not in allowed:
            raise ValueError(f"{value!r} does not fit a {kind} rule (expected {' or '.join(sorted(allowed))})")
        if kind == "machine_learning" and value is not None:
            raise ValueError("machine_learning rules take no language")
        return value

    @field_validator("alert_suppression")
    @classmethod
    def _suppression_fits_type(cls, value: AlertSuppression | None, info: ValidationInfo) -> AlertSuppression | None:
        kind = info.data.get("type")
        if value is not None and kind != "threshold" and not value.group_by:
            raise ValueError("group_by: 1 to 3 fields to group events by are needed")
        return value

    @field_validator("exceptions")
    @classmethod
    def _unique_items(cls, value: tuple[ExceptionItem, ...]) -> tuple[ExceptionItem, ...]:
        seen: set[str] = set()
        for item in value:
            if item.item_id in seen:
                raise ValueError(f"item_id {item.item_id!r} appears twice")
            seen.add(item.item_id)
        return value

    @property
    def interval_delta(self) -> timedelta:
        return parse_duration(self.interval)

    @property
    def supported(self) -> bool:
        return self.type in SUPPORTED_TYPES
