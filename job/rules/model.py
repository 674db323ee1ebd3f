"""The typed, immutable rule: what a rule file says, checked once at load time, one class per rule type.

:class:`Rule` holds what every rule has; each type's class (:class:`QueryRule`, :class:`EqlRule`,
:class:`ThresholdRule`, :class:`NewTermsRule`, :class:`EsqlRule`, and the types this job refuses:
:class:`SavedQueryRule`, :class:`MachineLearningRule`, :class:`ThreatMatchRule`) adds its own keys, as
elastic/detection-rules models them: a union keyed by ``type``. ``Rule.model_validate(data)`` gives the
class of ``data["type"]``; a key of another type is refused by name.

Field names are the snake_case names of the Kibana detection-engine API and of elastic/detection-rules
TOML (``from`` is ``from_`` in Python). Lists are tuples; models are frozen.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from job.config.durations import MAX_DURATION, date_math_reach, parse_duration, shown
from job.esql.text import QueryTextError, index_patterns
from job.rules.aggregation_params import NewTermsParams, NewTermsTable, ThresholdParams
from job.rules.parts import (
    AlertSuppression,
    ExceptionItem,
    Frozen,
    InvestigationFields,
    Metadata,
    RelatedIntegration,
    RequiredField,
    RiskScoreMappingItem,
    Severity,
    SeverityMappingItem,
    StrictBool,
    StrictInt,
    Threat,
)

RuleType = Literal["query", "saved_query", "eql", "esql", "threshold", "new_terms", "machine_learning", "threat_match"]
Language = Literal["kuery", "lucene", "eql", "esql"]
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
# Elasticsearch date math anchored at now, as rule files write ``from``/``to`` (now-15m, now, now/d).
_DATE_MATH = re.compile(r"^now(?:[+-][0-9]+[smhdwMy]|/[smhdwMy])*$")


def _not_yet(kind: str) -> str:
    return f"rule type {kind!r} is not supported by this job yet; it will not run"


class Rule(Frozen):
    """A detection rule: what every rule type has. Load with ``Rule.model_validate`` (the class of its type)."""

    # Why this job does not run rules of this type (None: it runs them); the type's own words.
    refusal: ClassVar[str | None] = None

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
    # The top-level ``[transform]`` table of detection-rules (investigation-guide templates).
    transform: dict[str, Any] | None = None
    # Where the rule came from (a file path); not part of the rule format.
    source: str = Field(default="", exclude=True)

    @model_validator(mode="wrap")
    @classmethod
    def _of_its_type(cls, data: Any, handler: Any) -> Any:
        # ``Rule.model_validate`` validates the data as the class of its type (an unknown type: as Rule,
        # which names the types there are).
        if cls is Rule and isinstance(data, dict):
            kind = data.get("type")
            target = RULE_CLASSES.get(kind) if isinstance(kind, str) else None
            if target is not None:
                return target.model_validate(data)
        return handler(data)

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
        """Whether this job runs rules of this type."""
        return self.refusal is None

    @property
    def searched_indices(self) -> tuple[str, ...]:
        """The index patterns a run searches (and asks ``_field_caps`` about): ``index``, unless the type names
        them elsewhere."""
        return self.index


class QueryRule(Rule):
    """A KQL or Lucene query over index patterns: one alert per matching event (or per group, with
    ``alert_suppression``)."""

    type: Literal["query"]


class SavedQueryRule(Rule):
    """A query rule whose query is a Kibana saved object."""

    refusal: ClassVar[str | None] = (
        "saved_query rules read their query from a Kibana saved object (saved_id), which this job cannot read; "
        "write the query into the rule and make it a query rule"
    )
    type: Literal["saved_query"]
    saved_id: str | None = None


class EqlRule(Rule):
    """An EQL event query or sequence (job.ruletypes.eql); the three keys are Kibana's EQL request parameters:
    the field that orders events (default ``@timestamp``), the event category field (default
    ``event.category``) and the field that breaks timestamp ties."""

    type: Literal["eql"]
    timestamp_field: str | None = None
    event_category_override: str | None = None
    tiebreaker_field: str | None = None


class ThresholdRule(Rule):
    """A query whose matches are counted per group of field values; one alert per group over the threshold
    (``job.ruletypes.threshold``)."""

    type: Literal["threshold"]
    threshold: ThresholdParams


class NewTermsRule(Rule):
    """A query whose alerts are the first appearances of field values within a history window
    (``job.ruletypes.new_terms``)."""

    type: Literal["new_terms"]
    # ``new_terms`` is the detection-rules TOML table; the other two the Kibana API's keys (one form or the other).
    new_terms: NewTermsTable | None = None
    new_terms_fields: tuple[str, ...] | None = None
    history_window_start: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> NewTermsRule:
        self.params  # noqa: B018 - raises for both forms, or neither
        return self

    @property
    def params(self) -> NewTermsParams:
        """The fields and history window, whichever form the file used."""
        return NewTermsParams.from_rule(self.new_terms, self.new_terms_fields, self.history_window_start)


class EsqlRule(Rule):
    """An ES|QL pipeline run by Elasticsearch's ``_query`` API. Its indices are named in the query's ``FROM``
    (detection-rules gives such a rule no ``index``)."""

    type: Literal["esql"]

    @property
    def searched_indices(self) -> tuple[str, ...]:
        """``FROM``'s index patterns, as Kibana reads them (``kibana.alert.rule.indices``); none when the query
        cannot be read (``validate`` says why)."""
        try:
            return tuple(index_patterns(self.query))
        except QueryTextError:
            return ()


class MachineLearningRule(Rule):
    """Alerts on the anomalies of Elastic machine-learning jobs."""

    refusal: ClassVar[str | None] = (
        "machine_learning rules alert on the results of Elastic machine-learning jobs, which this job does not "
        "run or read"
    )
    type: Literal["machine_learning"]
    anomaly_threshold: int | None = None
    machine_learning_job_id: str | tuple[str, ...] | None = None


class ThreatMatchRule(Rule):
    """Indicator match: events whose fields match threat-intelligence indicators."""

    refusal: ClassVar[str | None] = "threat_match (indicator match) rules are not run by this job"
    type: Literal["threat_match"]
    threat_index: tuple[str, ...] | None = None
    threat_query: str | None = None
    threat_language: str | None = None
    threat_indicator_path: str | None = None
    threat_filters: tuple[dict[str, Any], ...] | None = None
    threat_mapping: tuple[dict[str, Any], ...] | None = None
    concurrent_searches: int | None = None
    items_per_search: int | None = None


RULE_CLASSES: dict[str, type[Rule]] = {
    "query": QueryRule,
    "saved_query": SavedQueryRule,
    "eql": EqlRule,
    "esql": EsqlRule,
    "threshold": ThresholdRule,
    "new_terms": NewTermsRule,
    "machine_learning": MachineLearningRule,
    "threat_match": ThreatMatchRule,
}
# Keys that belong to one rule type only (API names; ``new_terms`` is the detection-rules TOML table).
TYPE_KEYS: dict[str, frozenset[str]] = {
    kind: frozenset(cls.model_fields) - frozenset(Rule.model_fields) for kind, cls in RULE_CLASSES.items()
}
