"""Alert suppression, the part every rule type shares (pure): a group's identity (Kibana's instance id and
alert id), the fields a suppressed alert carries, and the alerts-index side of suppression (how far a group
was counted, the open alert a group folds into, and that fold as a partial document).

Nothing here talks to Elasticsearch or reads a clock: :mod:`job.writing.suppressed` does the I/O, and each
rule type finds its groups its own way (query rules: :mod:`job.ruletypes.query.groups`). docs/rules.md
(alert suppression) has the behaviour and where it differs from Kibana.

* A group's ``kibana.alert.instance.id`` is Kibana's object-hash of ``[terms, rule, space]`` and its alert id
  object-hash of ``[event index, event id, "undefined", "<space>:<rule>", terms, start, end]``, with our
  ``rule_id`` where Kibana has the rule's saved-object id.
* A group's events up to the end of the last alert that counted them are counted already: a run counts
  only the events after that boundary.
* The other rule types (threshold, new terms) suppress as Kibana's persistence layer does
  (:mod:`job.writing.suppressing`): each would-be alert carries its group's :class:`Suppression`; the alerts
  its group counted already are left out (:func:`uncounted`), a batch's alerts of one group fold into the
  earliest (:func:`suppress_in_memory`), and that one into the group's open alert (:func:`fold_update`):
  ``docs_count`` grows by the folded alert's own count plus one, the end moves later, and the start moves
  earlier only when the open alert was written by this very run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from job.alerts.objecthash import JsDate, object_hash
from job.rules.parts import SuppressionDuration
from job.window import Window, isoformat, parse_timestamp

TERMS: Final = "kibana.alert.suppression.terms"
START: Final = "kibana.alert.suppression.start"
END: Final = "kibana.alert.suppression.end"
DOCS_COUNT: Final = "kibana.alert.suppression.docs_count"
INSTANCE_ID: Final = "kibana.alert.instance.id"
ALERT_START: Final = "kibana.alert.start"
LAST_DETECTED: Final = "kibana.alert.last_detected"
EXECUTION_UUID: Final = "kibana.alert.rule.execution.uuid"
WORKFLOW_STATUS: Final = "kibana.alert.workflow_status"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

Terms = tuple[tuple[str, Any], ...]  # (field, value) in group_by order; None: the event lacks the field


@dataclass(frozen=True, slots=True)
class Group:
    """The events of one group in the run's window that no alert has counted yet."""

    terms: Terms
    count: int
    start: datetime  # the earliest timestamp
    end: datetime  # the latest timestamp
    event: Mapping[str, Any]  # the earliest event, as a search hit

    def terms_list(self) -> list[dict[str, Any]]:
        """``kibana.alert.suppression.terms``: ``[{field, value}]`` in ``group_by`` order."""
        return terms_list(self.terms)


def terms_list(terms: Terms) -> list[dict[str, Any]]:
    return [{"field": field, "value": value} for field, value in terms]


def millis(aggregation: Any) -> datetime | None:
    value = aggregation.get("value") if isinstance(aggregation, Mapping) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return EPOCH + timedelta(milliseconds=math.floor(value))


def instance_id(terms: Terms, rule_id: str, space_id: str) -> str:
    """``kibana.alert.instance.id``: object-hash of ``[terms, rule, space]`` (Kibana's
    ``createSuppressedAlertInstanceId``, with the ``rule_id`` as the rule)."""
    return instance_hash(terms_list(terms), rule_id, space_id)


def instance_hash(terms: Any, rule_id: str, space_id: str) -> str:
    """object-hash of ``[terms, rule, space]``, whatever JSON the type's terms are (``[{field, value}]``, or a
    threshold group's sorted values)."""
    return object_hash([terms, rule_id, space_id])


def suppressed_alert_id(group: Group, rule_id: str, space_id: str) -> str:
    """The alert's ``_id``: object-hash of the earliest event, the rule and space, the terms and the span
    (Kibana's ``wrapSuppressedAlerts``; the event's ``_version`` is never read, so it is "undefined")."""
    event = group.event
    return object_hash(
        [
            str(event["_index"]),
            str(event["_id"]),
            "undefined",
            f"{space_id}:{rule_id}",
            group.terms_list(),
            JsDate(group.start),
            JsDate(group.end),
        ]
    )


def suppression_fields(group: Group, rule_id: str, space_id: str) -> dict[str, Any]:
    """What a suppressed alert adds to the alert of its earliest event."""
    return {
        TERMS: group.terms_list(),
        START: isoformat(group.start),
        END: isoformat(group.end),
        DOCS_COUNT: group.count - 1,
        INSTANCE_ID: instance_id(group.terms, rule_id, space_id),
    }


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert of the rule that may take in a group's new events, as read (with its sequence number)."""

    index: str
    doc_id: str
    seq_no: int
    primary_term: int
    end: datetime | None
    docs_count: int
    start: datetime | None = None  # ``suppression.start``
    execution_uuid: str | None = None  # the run that wrote it


def update_document(alert: OpenAlert, group: Group, now: datetime) -> dict[str, Any]:
    """The partial document that folds ``group`` into ``alert``: a later end, ``last_detected`` now, and
    ``docs_count`` plus every event of the group (its earliest one included: it gets no alert of its own)."""
    document: dict[str, Any] = {LAST_DETECTED: isoformat(now), DOCS_COUNT: alert.docs_count + group.count}
    if alert.end is None or alert.end < group.end:
        document[END] = isoformat(group.end)
    return document


def duration_start(now: datetime, duration: SuppressionDuration) -> datetime:
    """The earliest ``kibana.alert.start`` of an alert that still takes in new events (``now-<value><unit>``)."""
    return now - duration.delta


def rule_alerts(rule_id: str, space_id: str, instance_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Filters for the rule's suppressed alerts of these groups in the space."""
    return [
        {"term": {"kibana.alert.rule.rule_id": rule_id}},
        {"term": {"kibana.space_ids": space_id}},
        {"terms": {INSTANCE_ID: list(instance_ids)}},
    ]


def boundaries_request(rule_id: str, space_id: str, instance_ids: Sequence[str], window: Window) -> dict[str, Any]:
    """The search for how far each group was counted: the latest ``suppression.end`` among the group's
    alerts (open or closed) that reach into the window."""
    query = {"bool": {"filter": [*rule_alerts(rule_id, space_id, instance_ids), _since(END, window.start)]}}
    aggregation = {"terms": {"field": INSTANCE_ID, "size": len(instance_ids)}, "aggs": {"end": {"max": {"field": END}}}}
    return {"size": 0, "query": query, "aggs": {"groups": aggregation}}


def parse_boundaries(response: Mapping[str, Any]) -> dict[str, datetime]:
    boundaries = {}
    for bucket in response.get("aggregations", {}).get("groups", {}).get("buckets", []):
        end = millis(bucket.get("end"))
        if end is not None:
            boundaries[str(bucket["key"])] = end
    return boundaries


def open_alerts_request(rule_id: str, space_id: str, instance_ids: Sequence[str], since: datetime) -> dict[str, Any]:
    """The search for the alert each group would update (Kibana's): not closed, started at or after
    ``since``, the latest per group."""
    query = {
        "bool": {
            "filter": [*rule_alerts(rule_id, space_id, instance_ids), _since(ALERT_START, since)],
            "must_not": [{"term": {WORKFLOW_STATUS: "closed"}}],
        }
    }
    return {
        "size": len(instance_ids),
        "query": query,
        "collapse": {"field": INSTANCE_ID},
        "sort": [{ALERT_START: {"order": "desc"}}],
        "seq_no_primary_term": True,
        "source": [INSTANCE_ID, START, END, DOCS_COUNT, EXECUTION_UUID],
    }


def open_alert(hit: Mapping[str, Any]) -> OpenAlert:
    source = hit.get("_source") or {}
    count = source.get(DOCS_COUNT)
    execution = source.get(EXECUTION_UUID)
    return OpenAlert(
        index=str(hit["_index"]),
        doc_id=str(hit["_id"]),
        seq_no=int(hit["_seq_no"]),
        primary_term=int(hit["_primary_term"]),
        end=_timestamp(source.get(END)),
        docs_count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
        start=_timestamp(source.get(START)),
        execution_uuid=execution if isinstance(execution, str) else None,
    )


def is_open(source: Mapping[str, Any], since: datetime) -> bool:
    """Whether an alert read by id may still take in events (not closed, started at or after ``since``)."""
    start = _timestamp(source.get(ALERT_START))
    return source.get(WORKFLOW_STATUS) != "closed" and start is not None and start >= since


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _since(field: str, moment: datetime) -> dict[str, Any]:
    return {"range": {field: {"gte": isoformat(moment), "format": "strict_date_optional_time"}}}


# -- the persistence layer's suppression (threshold, new terms) -------------------------------------------

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Suppression:
    """The suppression fields of one would-be alert of a rule type that suppresses in the persistence layer."""

    instance: str
    terms: list[dict[str, Any]]
    start: datetime
    end: datetime
    docs_count: int = 0

    def fields(self) -> dict[str, Any]:
        return {
            INSTANCE_ID: self.instance,
            TERMS: self.terms,
            START: isoformat(self.start),
            END: isoformat(self.end),
            DOCS_COUNT: self.docs_count,
        }


def uncounted(
    alerts: Sequence[tuple[Item, Suppression]], boundaries: Mapping[str, datetime | None]
) -> tuple[list[tuple[Item, Suppression]], list[tuple[Item, Suppression]]]:
    """(the alerts after their group's boundary, the ones at or before it): an alert whose end is at or before
    the latest ``suppression.end`` its group had before this run was counted by that alert already (Kibana
    drops such an alert when the group's open alert ends at or after it)."""
    after: list[tuple[Item, Suppression]] = []
    counted: list[tuple[Item, Suppression]] = []
    for item, suppression in alerts:
        boundary = boundaries.get(suppression.instance)
        (counted if boundary is not None and suppression.end <= boundary else after).append((item, suppression))
    return after, counted


def suppress_in_memory(
    alerts: Sequence[tuple[Item, Suppression]],
) -> tuple[list[tuple[Item, Suppression]], list[tuple[Item, Suppression]]]:
    """Kibana's ``suppressAlertsInMemory``: sorted by suppression start (stable), the first alert of each group
    stays and counts every later one (plus their own counts) and takes the latest end; returns (the alerts that
    stay, with their groups' counts, the alerts folded into them)."""
    kept: dict[str, Suppression] = {}
    order: list[tuple[str, Item]] = []
    folded: list[tuple[Item, Suppression]] = []
    for item, suppression in sorted(alerts, key=lambda pair: pair[1].start):
        group = suppression.instance
        first = kept.get(group)
        if first is None:
            kept[group] = suppression
            order.append((group, item))
            continue
        kept[group] = replace(
            first, docs_count=first.docs_count + suppression.docs_count + 1, end=max(first.end, suppression.end)
        )
        folded.append((item, suppression))
    return [(item, kept[group]) for group, item in order], folded


def fold_update(existing: OpenAlert, new: Suppression, *, now: datetime, execution_uuid: str) -> dict[str, Any]:
    """The partial document that folds the alert ``new`` would be into ``existing`` (Kibana's
    ``getUpdatedSuppressionBoundaries`` and the ``docs_count`` of ``alertWithSuppression``)."""
    document: dict[str, Any] = {LAST_DETECTED: isoformat(now), DOCS_COUNT: existing.docs_count + new.docs_count + 1}
    if existing.end is None or existing.end < new.end:
        document[END] = isoformat(new.end)
    if existing.execution_uuid == execution_uuid and existing.start is not None and existing.start >= new.start:
        document[START] = isoformat(new.start)
    return document
