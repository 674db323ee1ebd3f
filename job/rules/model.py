"""The typed, immutable rule: what a rule file says, checked once at load time.

Field names are the snake_case names of the Kibana detection-engine API and of elastic/detection-rules
TOML (``from`` is ``from_`` in Python). Lists are tuples; models are frozen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from job.durations import parse_duration

Severity = Literal["low", "medium", "high", "critical"]
RuleType = Literal["query", "saved_query", "eql", "esql", "threshold", "new_terms", "machine_learning", "threat_match"]
SUPPORTED_TYPES: frozenset[str] = frozenset({"query"})
Language = Literal["kuery", "lucene", "eql", "esql"]
EntryType = Literal["match", "match_any", "exists", "wildcard", "nested", "list"]
Operator = Literal["included", "excluded"]
OsType = Literal["windows", "linux", "macos"]


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


class ExceptionEntry(Frozen):
    """One condition of an exception item, in Kibana's exception-item shape."""

    field: str = Field(min_length=1)
    type: EntryType
    operator: Operator = "included"
    value: str | tuple[str, ...] | None = None
    entries: tuple[ExceptionEntry, ...] = ()


class ExceptionItem(Frozen):
    """An event matching every entry of an item is not alerted on."""

    item_id: str = Field(min_length=1)
    name: str = ""
    description: str = ""
    entries: tuple[ExceptionEntry, ...] = Field(min_length=1)
    os_types: tuple[OsType, ...] = ()
    expire_time: datetime | None = None
    comments: tuple[str, ...] = ()


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
    max_signals: int = Field(default=100, ge=1)
    severity: Severity
    risk_score: int = Field(ge=0, le=100)
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    license: str | None = None
    version: int = Field(default=1, ge=1)
    note: str | None = None
    setup: str | None = None
    false_positives: tuple[str, ...] = ()
    timestamp_override: str | None = None
    timestamp_override_fallback_disabled: bool = False
    filters: tuple[dict[str, Any], ...] = ()
    threat: tuple[Threat, ...] = ()
    building_block_type: str | None = None
    enabled: bool = True
    exceptions: tuple[ExceptionItem, ...] = ()
    exceptions_list: tuple[dict[str, Any], ...] = ()
    metadata: Metadata = Metadata()
    # Where the rule came from (a file path); not part of the rule format.
    source: str = Field(default="", exclude=True)

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def interval_delta(self) -> timedelta:
        return parse_duration(self.interval)

    @property
    def supported(self) -> bool:
        return self.type in SUPPORTED_TYPES
