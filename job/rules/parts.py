"""The parts of a rule: the tables and values a rule file holds besides its own keys (exception items and
lists, ATT&CK references, overrides, alert suppression, metadata), typed and immutable.

Field names are the snake_case names of the Kibana detection-engine API and of elastic/detection-rules TOML.
Lists are tuples; models are frozen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from job.config.durations import MAX_DURATION
from job.lists.model import ListType

Severity = Literal["low", "medium", "high", "critical"]
EntryType = Literal["match", "match_any", "exists", "wildcard", "nested", "list"]
Operator = Literal["included", "excluded"]
OsType = Literal["windows", "linux", "macos"]
NamespaceType = Literal["single", "agnostic"]
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
            return 'a list entry needs list = { id = "<list id>", type = "<list type>" }'
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
