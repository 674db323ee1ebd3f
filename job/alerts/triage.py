"""Reading alerts back and changing their workflow status, as Kibana's alerts table does.

Kibana 8.19 sets ``kibana.alert.workflow_status``, ``kibana.alert.workflow_status_updated_at`` and
``kibana.alert.workflow_user`` (its user profile id; the job has none, so null as Kibana writes when
there is no user). Kibana 9.2 and later keep the closing reason in ``kibana.alert.workflow_reason``
and drop it on any other change; 8.19 has no such field, and we write it there as 9.2 does.

Changes are partial-document ``_update`` calls on the alert's backing index with ``if_seq_no`` and
``if_primary_term`` from the read, so a change someone made in between is reported, not overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from job.client.retry import RetryPolicy
from job.window import isoformat

WorkflowStatus = Literal["open", "acknowledged", "closed"]
WORKFLOW_STATUSES: tuple[WorkflowStatus, ...] = ("open", "acknowledged", "closed")
STATUS, UPDATED_AT, USER, REASON = (
    f"kibana.alert.workflow_{name}" for name in ("status", "status_updated_at", "user", "reason")
)
ALERT_UUID = "kibana.alert.uuid"
MIN_PREFIX = 8  # an id prefix shorter than this matches too much to be meant
MAX_REASON = 1024  # the keyword limit of the alert mapping
LISTED_FIELDS = (
    "@timestamp",
    ALERT_UUID,
    "kibana.alert.severity",
    "kibana.alert.rule.name",
    "kibana.alert.rule.rule_id",
    "kibana.alert.reason",
    STATUS,
    REASON,
    "host.name",
    "user.name",
)


def field_value(source: Mapping[str, Any], path: str) -> Any:
    """A field of ``_source`` whether it is stored dotted (``"host.name"``), nested, or a mix of both."""
    if path in source:
        return source[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head, rest = ".".join(parts[:cut]), ".".join(parts[cut:])
        node = source.get(head)
        if isinstance(node, Mapping):
            found = field_value(node, rest)
            if found is not None:
                return found
    return None


def listing_query(since: datetime, rule_id: str | None, status: str | None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"range": {"@timestamp": {"gte": isoformat(since)}}}]
    if rule_id:
        filters.append({"term": {"kibana.alert.rule.rule_id": rule_id}})
    if status:
        filters.append({"term": {STATUS: status}})
    return {"bool": {"filter": filters}}


def newest_alerts(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    *,
    since: timedelta,
    now: datetime,
    rule_id: str | None,
    status: str | None,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many alerts match, the newest ``limit`` of them as ``_source`` with ``_id`` and ``_index``)."""
    response = policy.call(
        lambda: es.search(
            index=alias,
            query=listing_query(now - since, rule_id, status),
            sort=[{"@timestamp": {"order": "desc"}}, {ALERT_UUID: {"order": "desc", "unmapped_type": "keyword"}}],
            size=limit,
            track_total_hits=True,
            source_includes=list(LISTED_FIELDS),
            ignore_unavailable=True,
            allow_no_indices=True,
        )
    )
    hits = response["hits"]["hits"]
    return int(response["hits"]["total"]["value"]), [
        {**hit["_source"], "_id": hit["_id"], "_index": hit["_index"]} for hit in hits
    ]


def workflow_update(status: WorkflowStatus, reason: str | None, now: datetime) -> dict[str, Any]:
    """The partial document Kibana's status change amounts to (a reason only when closing)."""
    return {
        STATUS: status,
        UPDATED_AT: isoformat(now),
        USER: None,
        REASON: reason if status == "closed" else None,
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    requested: str  # the id or id prefix asked for
    result: Literal["updated", "unchanged", "conflict", "not found", "ambiguous"]
    alert_id: str | None = None
    before: str | None = None
    after: str | None = None  # the status now (someone else's, for a conflict)

    @property
    def ok(self) -> bool:
        return self.result in ("updated", "unchanged")


def _lookup(es: Elasticsearch, policy: RetryPolicy, alias: str, requested: str) -> list[dict[str, Any]]:
    """The alerts ``requested`` names: its exact id, or the one alert whose id starts with it."""
    query: dict[str, Any] = {"ids": {"values": [requested]}}
    if len(requested) >= MIN_PREFIX:
        query = {"bool": {"should": [query, {"prefix": {ALERT_UUID: requested}}]}}
    response = policy.call(
        lambda: es.search(
            index=alias,
            query=query,
            size=2,
            seq_no_primary_term=True,
            source_includes=[STATUS, UPDATED_AT],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
    )
    hits: list[dict[str, Any]] = response["hits"]["hits"]
    exact = [hit for hit in hits if hit["_id"] == requested]
    return exact or hits


def set_status(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    requested: str,
    status: WorkflowStatus,
    reason: str | None,
    now: datetime,
) -> Outcome:
    """Change one alert's workflow status, unless someone changed the alert since we read it."""
    found = _lookup(es, policy, alias, requested)
    if not found:
        return Outcome(requested, "not found")
    if len(found) > 1:
        return Outcome(requested, "ambiguous")
    hit = found[0]
    alert_id, before = str(hit["_id"]), field_value(hit["_source"], STATUS)
    if before == status and reason is None:
        return Outcome(requested, "unchanged", alert_id, before, status)
    document = workflow_update(status, reason, now)
    try:
        policy.call(
            lambda: es.update(
                index=hit["_index"],
                id=alert_id,
                doc=document,
                if_seq_no=hit["_seq_no"],
                if_primary_term=hit["_primary_term"],
                refresh=True,
            )
        )
    except ConflictError:
        try:
            current = policy.call(
                lambda: es.get(index=hit["_index"], id=alert_id, source_includes=[STATUS, UPDATED_AT])
            )["_source"]
        except NotFoundError:
            return Outcome(requested, "not found", alert_id, before)
        now_status = field_value(current, STATUS)
        if now_status == status and field_value(current, UPDATED_AT) == document[UPDATED_AT]:
            # Our own first attempt went through before its answer was lost; the retry found it done.
            return Outcome(requested, "updated", alert_id, before, status)
        return Outcome(requested, "conflict", alert_id, before, now_status)
    return Outcome(requested, "updated", alert_id, before, status)
