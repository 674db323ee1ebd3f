"""Alert suppression of query rules, the pure part: the grouping search, the groups it finds, the alert of a
group and the update of an alert that already holds the group (Kibana 8.19's query-rule suppression).

Nothing here talks to Elasticsearch or reads a clock: :mod:`job.ruletypes.query.suppressed` does the I/O. See
docs/rules.md (alert suppression) for the behaviour and where it differs from Kibana.

* The search is Kibana's: ``size: 0`` and a ``composite`` aggregation named ``eventGroups`` with one
  ``terms`` source per ``group_by`` field (``missing_bucket`` with ``missing_order: last`` when events
  lacking a field are grouped too), and per bucket the earliest event (``topHits``) and the earliest and
  latest timestamps. Kibana reads the timestamps from a runtime field that takes the timestamp override or,
  where an event lacks it, ``@timestamp``; that needs a script, so with a fallback we ask for both and
  combine them here (a ``fallback`` sub-aggregation over the events lacking the override).
* A group's ``kibana.alert.instance.id`` is Kibana's object-hash of ``[terms, rule, space]`` and its alert id
  object-hash of ``[event index, event id, "undefined", "<space>:<rule>", terms, start, end]``, with our
  ``rule_id`` where Kibana has the rule's saved-object id.
* A group's events up to the end of the last alert that counted them are counted already: the run counts
  only the events after that boundary (:func:`remaining_clause`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from job.alerts.objecthash import JsDate, object_hash
from job.rules.model import SuppressionDuration
from job.search.clauses import SORT_MISSING, TimestampFields, range_clause
from job.window import Window, isoformat, parse_timestamp

AGGREGATION: Final = "eventGroups"
TERMS: Final = "kibana.alert.suppression.terms"
START: Final = "kibana.alert.suppression.start"
END: Final = "kibana.alert.suppression.end"
DOCS_COUNT: Final = "kibana.alert.suppression.docs_count"
INSTANCE_ID: Final = "kibana.alert.instance.id"
ALERT_START: Final = "kibana.alert.start"
LAST_DETECTED: Final = "kibana.alert.last_detected"
WORKFLOW_STATUS: Final = "kibana.alert.workflow_status"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

Terms = tuple[tuple[str, Any], ...]  # (field, value) in group_by order; None: the event lacks the field


def _top_hit(field: str) -> dict[str, Any]:
    # Kibana's sort, plus numeric_type so that date and date_nanos indices compare (as in job.search.clauses).
    sort = {field: {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}}
    return {"top_hits": {"size": 1, "sort": [sort]}}


def _timestamp_aggregations(field: str, light: bool) -> dict[str, Any]:
    if light:
        return {"min_timestamp": {"min": {"field": field}}}
    return {
        "topHits": _top_hit(field),
        "max_timestamp": {"max": {"field": field}},
        "min_timestamp": {"min": {"field": field}},
    }


def bucket_aggregations(fields: TimestampFields, *, light: bool = False) -> dict[str, Any]:
    """What each group carries: the earliest event and the first and last timestamps (``light``: the first
    timestamp only). With a fallback timestamp, the same again over the events lacking the primary one."""
    aggregations = _timestamp_aggregations(fields.primary, light)
    if fields.fallback is not None:
        lacking = {"bool": {"must_not": [{"exists": {"field": fields.primary}}]}}
        aggregations["fallback"] = {"filter": lacking, "aggs": _timestamp_aggregations(fields.fallback, light)}
    return aggregations


def grouping_aggregation(
    group_by: Sequence[str],
    *,
    size: int,
    fields: TimestampFields,
    missing_bucket: bool,
    after: Mapping[str, Any] | None = None,
    light: bool = False,
) -> dict[str, Any]:
    """The ``aggs`` of one page of the grouping search: ``size`` groups after the composite key ``after``."""
    missing = {"missing_bucket": True, "missing_order": "last"} if missing_bucket else {}
    sources = [{field: {"terms": {"field": field, **missing}}} for field in group_by]
    composite: dict[str, Any] = {"sources": sources, "size": size}
    if after is not None:
        composite["after"] = dict(after)
    return {AGGREGATION: {"composite": composite, "aggs": bucket_aggregations(fields, light=light)}}


def missing_fields_filter(group_by: Sequence[str]) -> dict[str, Any]:
    """Events lacking at least one ``group_by`` field (Kibana's filter for ``doNotSuppress``)."""
    return {"bool": {"should": [{"bool": {"must_not": [{"exists": {"field": field}}]}} for field in group_by]}}


def group_clause(terms: Terms, *, must_not: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The events of one group: each field holds the group's value, or lacks a value where it has none."""
    filters = [{"term": {field: value}} for field, value in terms if value is not None]
    lacking = [{"exists": {"field": field}} for field, value in terms if value is None]
    clause: dict[str, Any] = {"filter": filters}
    if lacking or must_not:
        clause["must_not"] = [*lacking, *must_not]
    return {"bool": clause}


def remaining_clause(
    terms: Terms, fields: TimestampFields, window: Window, boundary: datetime | None
) -> dict[str, Any]:
    """The group's events that are not counted yet: not at or before ``boundary`` (Kibana's exclusion of a
    group already alerted on, a range from the window start to the group's last counted time)."""
    if boundary is None or boundary < window.start:
        return group_clause(terms)
    return group_clause(terms, must_not=[range_clause(fields, Window(window.start, boundary))])


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


def _millis(aggregation: Any) -> datetime | None:
    value = aggregation.get("value") if isinstance(aggregation, Mapping) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return EPOCH + timedelta(milliseconds=math.floor(value))


def _both(bucket: Mapping[str, Any], name: str) -> list[datetime]:
    values = [_millis(bucket.get(name)), _millis((bucket.get("fallback") or {}).get(name))]
    return [value for value in values if value is not None]


def first_timestamp(bucket: Mapping[str, Any]) -> datetime | None:
    """The earliest timestamp of a bucket (override, or ``@timestamp`` where the override is missing)."""
    return min(_both(bucket, "min_timestamp"), default=None)


def _top(aggregation: Any) -> tuple[int, Mapping[str, Any]] | None:
    hits = (aggregation or {}).get("hits", {}).get("hits", []) if isinstance(aggregation, Mapping) else []
    if not hits:
        return None
    sort = hits[0].get("sort") or [SORT_MISSING]
    value = sort[0] if isinstance(sort[0], int) and not isinstance(sort[0], bool) else SORT_MISSING
    return value, hits[0]


def earliest_event(bucket: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The bucket's earliest event: the first by the override, unless an event lacking it comes earlier
    by ``@timestamp`` (what Kibana's combined timestamp would sort first; on a tie, the override's)."""
    candidates = [top for top in (_top(bucket.get("topHits")), _top((bucket.get("fallback") or {}).get("topHits")))]
    found = [top for top in candidates if top is not None]
    with_time = [top for top in found if top[0] < SORT_MISSING]
    best = min(with_time, key=lambda top: top[0]) if with_time else (found[0] if found else None)
    return best[1] if best else None


def parse_group(bucket: Mapping[str, Any], terms: Terms, window: Window) -> Group | None:
    """The group of one bucket (of the composite, or of a recount); None when it holds no event. As in
    Kibana, a group without timestamps spans the window."""
    count = int(bucket.get("doc_count", 0))
    event = earliest_event(bucket)
    if count <= 0 or event is None:
        return None
    start = min(_both(bucket, "min_timestamp"), default=window.start)
    end = max(_both(bucket, "max_timestamp"), default=window.end)
    return Group(terms=terms, count=count, start=start, end=end, event=event)


def bucket_terms(key: Mapping[str, Any], group_by: Sequence[str]) -> Terms:
    return tuple((field, key.get(field)) for field in group_by)


def instance_id(terms: Terms, rule_id: str, space_id: str) -> str:
    """``kibana.alert.instance.id``: object-hash of ``[terms, rule, space]`` (Kibana's
    ``createSuppressedAlertInstanceId``, with the ``rule_id`` as the rule)."""
    return object_hash([terms_list(terms), rule_id, space_id])


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
        end = _millis(bucket.get("end"))
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
        "source": [INSTANCE_ID, END, DOCS_COUNT],
    }


def open_alert(hit: Mapping[str, Any]) -> OpenAlert:
    source = hit.get("_source") or {}
    count = source.get(DOCS_COUNT)
    end = source.get(END)
    return OpenAlert(
        index=str(hit["_index"]),
        doc_id=str(hit["_id"]),
        seq_no=int(hit["_seq_no"]),
        primary_term=int(hit["_primary_term"]),
        end=_timestamp(end),
        docs_count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
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


def resume_point(starts: Sequence[datetime], window: Window) -> datetime:
    """Where the next run starts when groups were left over: the earliest of their first timestamps."""
    return min(max(min(starts, default=window.start), window.start), window.end)
