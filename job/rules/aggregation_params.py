"""The parameters of threshold and new_terms rules: their shapes (checked when a rule file loads) and Kibana's
rules for their values, in Kibana's words (reported by ``validate``, so that a rule that breaks them loads, is
refused, and is recorded ``failed`` by ``run`` while the other rules run).

Both rule-file shapes load: Kibana's API keys (``threshold = {field, value, cardinality}``,
``new_terms_fields`` + ``history_window_start``) and elastic/detection-rules' TOML tables (``[rule.threshold]``
is the API shape; ``[rule.new_terms]`` holds ``field = "new_terms_fields"``, ``value = [...]`` and
``[[rule.new_terms.history_window_start]]`` entries ``{field = "history_window_start", value = "now-14d"}``).

Messages are Kibana 8.19's: the zod schema's (``Number must be greater than or equal to 1``, ``Array must
contain at most 3 element(s)``) and the rule-type checks' (``Cardinality of a field that is being aggregated
on is always 1``, ``Number of fields must be 3 or less``). docs/rules.md lists them with their sources. The
history window's date math is checked by the new-terms type (``job.ruletypes.new_terms.history``).

Threshold ``field`` holds at most 3 fields on Kibana up to 9.1 and 5 from 9.2 (kibana#227465). The limit is a
property of the Kibana release a rule is written for, so :func:`threshold_problems` takes the rule's
``metadata.min_stack_version`` (as detection-rules decides it, ``ThresholdQueryRuleData.validate``): a rule that
declares 9.2 or later may group by 5 fields, any other by 3, the limit of 8.19, whose alerts this job writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from job.errors import JobError
from job.rules.parts import Frozen, StrictInt

# The Kibana release whose alerts this job writes (job.alerts.build.KIBANA_VERSION), and the first release that
# groups a threshold rule by 5 fields instead of 3.
DEFAULT_RELEASE: Final = (8, 19)
FIVE_THRESHOLD_FIELDS_SINCE: Final = (9, 2)
MAX_THRESHOLD_FIELDS: Final = 5
MAX_NEW_TERMS_FIELDS: Final = 3

CARDINALITY_ON_GROUP_BY: Final = "Cardinality of a field that is being aggregated on is always 1"
EMPTY_STRING: Final = "String must contain at least 1 character(s)"
_AT_LEAST = "Number must be greater than or equal to {bound}"
_VERSION = re.compile(r"^\s*(\d{1,6})(?:\.(\d{1,6}))?")

# A problem with a parameter: where it is (a key path below the parameter's own key) and Kibana's message.
Problem = tuple[tuple[str | int, ...], str]


class ParameterError(JobError, ValueError):
    """A rule's parameters do not hold at run time (Kibana's message): the run fails with it."""


def fields_limit_message(limit: int) -> str:
    return f"Number of fields must be {limit} or less"


def _field_list_problems(fields: Sequence[str]) -> list[str]:
    """Empty or repeated names: Kibana accepts a repeated field and the run then fails (composite sources need
    distinct names)."""
    problems = [EMPTY_STRING] if any(not name for name in fields) else []
    repeated = sorted({name for name in fields if name and fields.count(name) > 1})
    if repeated:
        problems.append(f"each field may appear once ({', '.join(repeated)} repeated)")
    return problems


class ThresholdCardinality(Frozen):
    """``[[rule.threshold.cardinality]]``: a group counts only with at least ``value`` distinct ``field`` values."""

    field: str
    value: StrictInt


class ThresholdParams(Frozen):
    """``threshold``: events grouped by ``field`` (none: all events are one group); a group of at least
    ``value`` events (and ``cardinality[0].value`` distinct values, when given) gives an alert.

    ``field`` may be written as a string; ``""`` means no field, as in Kibana's ``normalizeThresholdField``.
    Only the first cardinality entry is used (Kibana's), the others are kept as written.
    """

    field: tuple[str, ...] = ()
    value: StrictInt
    cardinality: tuple[ThresholdCardinality, ...] = ()

    @field_validator("field", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        if isinstance(value, str):
            return () if value == "" else (value,)
        return value

    @property
    def counted_cardinality(self) -> ThresholdCardinality | None:
        """The cardinality condition the run applies (Kibana reads ``cardinality[0]`` only)."""
        return self.cardinality[0] if self.cardinality else None


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


def threshold_problems(params: ThresholdParams, min_stack_version: str | None) -> list[Problem]:
    """Everything Kibana refuses in ``threshold``, each with its key below ``threshold``."""
    problems: list[Problem] = []
    if params.value < 1:
        problems.append((("value",), _AT_LEAST.format(bound=1)))
    limit = threshold_field_limit(release_of(min_stack_version))
    if len(params.field) > limit:
        problems.append((("field",), fields_limit_message(limit)))
    problems += [(("field",), message) for message in _field_list_problems(params.field)]
    for position, entry in enumerate(params.cardinality):
        if entry.value < 0:
            problems.append((("cardinality", position, "value"), _AT_LEAST.format(bound=0)))
        if not entry.field:
            problems.append((("cardinality", position, "field"), EMPTY_STRING))
    condition = params.counted_cardinality
    if condition is not None and condition.field in params.field:
        problems.append((("cardinality", 0, "field"), CARDINALITY_ON_GROUP_BY))
    return problems


class HistoryWindowStartEntry(Frozen):
    """One ``[[rule.new_terms.history_window_start]]`` entry of detection-rules' TOML."""

    field: Literal["history_window_start"]
    value: str


class NewTermsTable(Frozen):
    """detection-rules' ``[rule.new_terms]`` table, as written."""

    field: Literal["new_terms_fields"]
    value: tuple[str, ...]
    history_window_start: tuple[HistoryWindowStartEntry, ...] = Field(min_length=1, max_length=1)


class NewTermsParams(Frozen):
    """``new_terms_fields`` (1 to 3) and ``history_window_start`` (date math, e.g. ``now-14d``)."""

    fields: tuple[str, ...]
    history_window_start: str

    @classmethod
    def from_rule(
        cls,
        table: NewTermsTable | None = None,
        fields: Sequence[str] | None = None,
        history_window_start: str | None = None,
    ) -> NewTermsParams:
        """From detection-rules' ``[rule.new_terms]`` table, or from the API keys (not both); ``ValueError`` when
        the rule gives both, or neither."""
        if table is not None:
            if fields is not None or history_window_start is not None:
                raise ValueError("give either [rule.new_terms] or new_terms_fields and history_window_start, not both")
            return cls(fields=table.value, history_window_start=table.history_window_start[0].value)
        if fields is None or history_window_start is None:
            raise ValueError("a new_terms rule needs new_terms_fields and history_window_start")
        return cls(fields=tuple(fields), history_window_start=history_window_start)


def new_terms_problems(params: NewTermsParams) -> list[Problem]:
    """What Kibana refuses in the new-terms fields, and an empty history window start: ``(("fields",), message)``
    or ``(("history_window_start",), message)``. Whether the history window starts before ``from`` takes date
    math, and is the new-terms type's check (``job.ruletypes.new_terms.history``)."""
    problems: list[Problem] = []
    count = len(params.fields)
    if count < 1:
        problems.append((("fields",), "Array must contain at least 1 element(s)"))
    if count > MAX_NEW_TERMS_FIELDS:
        problems.append((("fields",), f"Array must contain at most {MAX_NEW_TERMS_FIELDS} element(s)"))
    problems += [(("fields",), message) for message in _field_list_problems(params.fields)]
    if not params.history_window_start:
        problems.append((("history_window_start",), EMPTY_STRING))
    return problems
