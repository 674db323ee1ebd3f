"""The parameters of threshold and new_terms rules, checked as Kibana checks them, in Kibana's words.

Both rule-file shapes load: Kibana's API keys (``threshold = {field, value, cardinality}``,
``new_terms_fields`` + ``history_window_start``) and elastic/detection-rules' TOML tables (``[rule.threshold]``
is the API shape; ``[rule.new_terms]`` holds ``field = "new_terms_fields"``, ``value = [...]`` and
``[[rule.new_terms.history_window_start]]`` entries ``{field = "history_window_start", value = "now-14d"}``).

Messages are Kibana 8.19's: the zod schema's (``Number must be greater than or equal to 1``, ``Array must
contain at most 3 element(s)``) and the rule-type checks' (``Cardinality of a field that is being aggregated
on is always 1``, ``Number of fields must be 3 or less``, the history-window messages of
``new_terms/utils.ts``). docs/rules.md lists them with their sources.

Threshold ``field`` holds at most 3 fields on Kibana up to 9.1 and 5 from 9.2 (kibana#227465). The limit is a
property of the Kibana release a rule is written for, so :func:`threshold_field_problem` takes the rule's
``metadata.min_stack_version`` (as detection-rules decides it, ``ThresholdQueryRuleData.validate``): a rule that
declares 9.2 or later may group by 5 fields, any other by 3, the limit of 8.19, whose alerts this job writes.
The model itself refuses more than 5, which no release accepts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from job.rules.model import Frozen, StrictInt, SuppressionDuration

# The Kibana release whose alerts this job writes (job.alerts.build.KIBANA_VERSION), and the first release that
# groups a threshold rule by 5 fields instead of 3.
DEFAULT_RELEASE: Final = (8, 19)
FIVE_THRESHOLD_FIELDS_SINCE: Final = (9, 2)
MAX_THRESHOLD_FIELDS: Final = 5
MAX_NEW_TERMS_FIELDS: Final = 3

CARDINALITY_ON_GROUP_BY: Final = "Cardinality of a field that is being aggregated on is always 1"
HISTORY_WINDOW_TOO_SMALL: Final = (
    "History window size is smaller than rule interval + additional lookback, "
    "'historyWindowStart' must be earlier than 'from'"
)
_PARSE_FAILED = "Failed to parse '{name}'"
_AT_LEAST = "Number must be greater than or equal to {bound}"
_VERSION = re.compile(r"^\s*(\d{1,6})(?:\.(\d{1,6}))?")

NonEmptyField = Annotated[str, Field(min_length=1)]


def fields_limit_message(limit: int) -> str:
    return f"Number of fields must be {limit} or less"


def _at_least(value: int, bound: int) -> int:
    if value < bound:
        raise ValueError(_AT_LEAST.format(bound=bound))
    return value


def _distinct(fields: tuple[str, ...]) -> tuple[str, ...]:
    # Kibana accepts a repeated field and the run then fails (composite sources need distinct names).
    repeated = sorted({field for field in fields if fields.count(field) > 1})
    if repeated:
        raise ValueError(f"each field may appear once ({', '.join(repeated)} repeated)")
    return fields


class ThresholdCardinality(Frozen):
    """``[[rule.threshold.cardinality]]``: a bucket counts only with at least ``value`` distinct ``field`` values."""

    field: NonEmptyField
    value: StrictInt

    @field_validator("value")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        return _at_least(value, 0)


class ThresholdParams(Frozen):
    """``threshold``: events grouped by ``field`` (none: all events are one group); a group of at least
    ``value`` events (and ``cardinality[0].value`` distinct values, when given) gives an alert.

    ``field`` may be written as a string; ``""`` means no field, as in Kibana's ``normalizeThresholdField``.
    Only the first cardinality entry is used (Kibana's), the others are kept as written.
    """

    field: tuple[NonEmptyField, ...] = Field(default=(), max_length=MAX_THRESHOLD_FIELDS)
    value: StrictInt
    cardinality: tuple[ThresholdCardinality, ...] = ()

    @field_validator("field", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        if isinstance(value, str):
            return () if value == "" else (value,)
        if isinstance(value, list | tuple) and len(value) > MAX_THRESHOLD_FIELDS:
            raise ValueError(fields_limit_message(MAX_THRESHOLD_FIELDS))
        return value

    @field_validator("field")
    @classmethod
    def _distinct_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _distinct(value)

    @field_validator("value")
    @classmethod
    def _positive(cls, value: int) -> int:
        return _at_least(value, 1)

    @model_validator(mode="after")
    def _cardinality_not_grouped(self) -> ThresholdParams:
        if self.cardinality and self.cardinality[0].field in self.field:
            raise ValueError(CARDINALITY_ON_GROUP_BY)
        return self

    @property
    def counted_cardinality(self) -> ThresholdCardinality | None:
        """The cardinality condition the run applies (Kibana reads ``cardinality[0]`` only)."""
        return self.cardinality[0] if self.cardinality else None


class ThresholdAlertSuppression(Frozen):
    """``[rule.alert_suppression]`` of a threshold rule: a ``duration`` only (the threshold fields group)."""

    duration: SuppressionDuration


def release_of(min_stack_version: str | None) -> tuple[int, int]:
    """The Kibana release a rule is written for: its ``min_stack_version`` (``"9.2.0"`` → (9, 2)) when that is
    later than :data:`DEFAULT_RELEASE`, else :data:`DEFAULT_RELEASE`."""
    match = _VERSION.match(min_stack_version or "")
    if match is None:
        return DEFAULT_RELEASE
    return max(DEFAULT_RELEASE, (int(match.group(1)), int(match.group(2) or 0)))


def threshold_field_limit(release: tuple[int, int]) -> int:
    """How many threshold fields Kibana ``release`` accepts: 5 from 9.2, 3 before."""
    return MAX_THRESHOLD_FIELDS if release >= FIVE_THRESHOLD_FIELDS_SINCE else 3


def threshold_field_problem(params: ThresholdParams, min_stack_version: str | None) -> str | None:
    """Kibana's message when the rule groups by more fields than the release it is written for accepts."""
    limit = threshold_field_limit(release_of(min_stack_version))
    return fields_limit_message(limit) if len(params.field) > limit else None


class HistoryWindowStartEntry(Frozen):
    """One ``[[rule.new_terms.history_window_start]]`` entry of detection-rules' TOML."""

    field: Literal["history_window_start"]
    value: NonEmptyField


class NewTermsTable(Frozen):
    """detection-rules' ``[rule.new_terms]`` table, as written."""

    field: Literal["new_terms_fields"]
    value: tuple[Any, ...]
    history_window_start: tuple[HistoryWindowStartEntry, ...] = Field(min_length=1, max_length=1)


class NewTermsParams(Frozen):
    """``new_terms_fields`` (1 to 3) and ``history_window_start`` (date math, e.g. ``now-14d``)."""

    fields: tuple[Any, ...]
    history_window_start: NonEmptyField

    @field_validator("fields")
    @classmethod
    def _count(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(value) < 1:
            raise ValueError("Array must contain at least 1 element(s)")
        if len(value) > MAX_NEW_TERMS_FIELDS:
            raise ValueError(f"Array must contain at most {MAX_NEW_TERMS_FIELDS} element(s)")
        if not all(isinstance(field, str) and field for field in value):
            raise ValueError("each field must be a non-empty string")
        return _distinct(value)

    @field_validator("history_window_start")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_date_math(value, _REFERENCE_NOW, "historyWindowStart")
        return value

    @classmethod
    def from_rule(
        cls,
        table: NewTermsTable | dict[str, Any] | None = None,
        fields: Any = None,
        history_window_start: Any = None,
    ) -> NewTermsParams:
        """From detection-rules' ``[rule.new_terms]`` table, or from the API keys (not both)."""
        if table is not None:
            if fields is not None or history_window_start is not None:
                raise ValueError("give either [rule.new_terms] or new_terms_fields and history_window_start, not both")
            parsed = table if isinstance(table, NewTermsTable) else NewTermsTable.model_validate(table)
            return cls(fields=parsed.value, history_window_start=parsed.history_window_start[0].value)
        if fields is None or history_window_start is None:
            raise ValueError("a new_terms rule needs new_terms_fields and history_window_start")
        return cls.model_validate({"fields": fields, "history_window_start": history_window_start})


# Parseability of date math does not depend on the clock, except at the edges of the representable dates; the
# load-time check resolves against a fixed instant, the run against its own clock.
_REFERENCE_NOW = datetime(2000, 1, 1, tzinfo=UTC)


def parse_date_math(expression: str, now: datetime, name: str) -> datetime:
    """``expression`` resolved against ``now``; ``ValueError("Failed to parse '<name>'")`` when it is not date
    math (Kibana parses with @elastic/datemath: ``now-14d``, ``now/d``, an ISO date, ``<date>||-1d``)."""
    # Imported here: the window module imports the rule model, which will hold these parameters.
    from job.window import resolve_date_math

    try:
        return resolve_date_math(expression, now)
    except ValueError:
        raise ValueError(_PARSE_FAILED.format(name=name)) from None


def history_window_problem(history_window_start: str, from_: str, now: datetime) -> str | None:
    """Kibana's check at save time and at each run (``validateHistoryWindowStart``): both resolved against ``now``,
    the history window must start strictly before ``from``. The message, or None."""
    try:
        start = parse_date_math(history_window_start, now, "historyWindowStart")
        rule_from = parse_date_math(from_, now, "from")
    except ValueError as exc:
        return str(exc)
    return HISTORY_WINDOW_TOO_SMALL if start >= rule_from else None
