"""Alert suppression of query rules, the grouping (pure): the search that groups the window's events by the
``group_by`` values, and the groups it finds (Kibana 8.19's ``groupAndBulkCreate``).

Nothing here talks to Elasticsearch or reads a clock: :mod:`job.ruletypes.query.suppressed` does the I/O; the
parts every type's suppression shares are in :mod:`job.alerts.suppression`. See docs/rules.md (alert
suppression) for the behaviour and where it differs from Kibana.

* The search is Kibana's: ``size: 0`` and a ``composite`` aggregation named ``eventGroups`` with one
  ``terms`` source per ``group_by`` field (``missing_bucket`` with ``missing_order: last`` when events
  lacking a field are grouped too), and per bucket the earliest event (``topHits``) and the earliest and
  latest timestamps. Kibana reads the timestamps from a runtime field that takes the timestamp override or,
  where an event lacks it, ``@timestamp``; that needs a script, so with a fallback we ask for both and
  combine them here (a ``fallback`` sub-aggregation over the events lacking the override).
* A group's events up to the end of the last alert that counted them are counted already: the run counts
  only the events after that boundary (:func:`job.search.clauses.remaining_clause`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from job.alerts.suppression import Group, Terms, millis
from job.search.clauses import SORT_MISSING, TimestampFields
from job.window import Window

AGGREGATION: Final = "eventGroups"


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


def _both(bucket: Mapping[str, Any], name: str) -> list[datetime]:
    values = [millis(bucket.get(name)), millis((bucket.get("fallback") or {}).get(name))]
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


def resume_point(starts: Sequence[datetime], window: Window) -> datetime:
    """Where the next run starts when groups were left over: the earliest of their first timestamps."""
    return min(max(min(starts, default=window.start), window.start), window.end)
