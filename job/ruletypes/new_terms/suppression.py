"""Alert suppression of new_terms rules as Kibana 8.19 allows it, the groups of the would-be alerts, pure
(``wrap_suppressed_new_terms_alerts.ts``, ``bulk_create_suppressed_alerts_in_memory.ts``, ``getSuppressionTerms``,
``getSuppressionAlertFields``); :mod:`job.ruletypes.new_terms.execute` runs it.

* The group of an alert is read from its event's ``fields`` (the fields API, asked of the earliest event:
  ``hit_fields`` of :func:`job.ruletypes.new_terms.pages.new_terms_pages`): per ``group_by`` field its values
  sorted by lodash ``sortBy``, or ``null`` when the event has none; ``kibana.alert.instance.id`` is object-hash
  of ``[terms, rule, space]``.
* Start and end are the event's timestamp (the override, else ``@timestamp``, from ``fields``), or the alert
  time when it has none; ``docs_count`` 0. The alerts of a run then fold in memory, and into an open alert of
  their group (:mod:`job.writing.suppressing`).
* ``missing_fields_strategy = "doNotSuppress"``: an event lacking a ``group_by`` field gives an ordinary alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from job.alerts.jsorder import lodash_sort_by
from job.alerts.suppression import Suppression, instance_hash
from job.search.clauses import TimestampFields
from job.window import parse_timestamp
from job.writing.hit_alerts import HitAlert
from job.writing.writer import Candidate


def _fields(event: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = event.get("fields")
    return fields if isinstance(fields, Mapping) else {}


def suppression_terms(event: Mapping[str, Any], group_by: Sequence[str]) -> list[dict[str, Any]]:
    """``[{field, value}]``: each field's values in the event's ``fields``, sorted, or ``None``."""
    fields = _fields(event)
    terms = []
    for field in group_by:
        value = fields.get(field)
        terms.append({"field": field, "value": lodash_sort_by(value) if isinstance(value, list) else value})
    return terms


def lacks_group_field(event: Mapping[str, Any], group_by: Sequence[str]) -> bool:
    """Whether the event has no value for some ``group_by`` field (Kibana's ``partitionMissingFieldsEvents``)."""
    fields = _fields(event)
    return any(field not in fields for field in group_by)


def event_time(event: Mapping[str, Any], timestamps: TimestampFields, now: datetime) -> datetime:
    """The event's first value of the primary timestamp in ``fields``, else of the fallback, else ``now``."""
    fields = _fields(event)
    for name in (timestamps.primary, timestamps.fallback):
        values = fields.get(name) if name is not None else None
        if isinstance(values, list) and values and isinstance(values[0], str):
            try:
                return parse_timestamp(values[0])
            except ValueError:
                continue
    return now


def suppression_of(
    alert: HitAlert,
    group_by: Sequence[str],
    timestamps: TimestampFields,
    *,
    rule_id: str,
    space_id: str,
    now: datetime,
) -> Suppression:
    """The group and span of a new term's would-be alert."""
    terms = suppression_terms(alert.hit, group_by)
    moment = event_time(alert.hit, timestamps, now)
    return Suppression(instance_hash(terms, rule_id, space_id), terms, moment, moment)


def partition(
    candidates: Sequence[Candidate], group_by: Sequence[str], *, suppress_missing: bool
) -> tuple[list[Candidate], list[Candidate]]:
    """(the candidates that are grouped, the ordinary ones): with ``suppress_missing`` every one is grouped,
    otherwise those of events lacking a ``group_by`` field are ordinary."""
    if suppress_missing:
        return list(candidates), []
    grouped = [found for found in candidates if not lacks_group_field(found.item.hit, group_by)]
    ordinary = [found for found in candidates if lacks_group_field(found.item.hit, group_by)]
    return grouped, ordinary
