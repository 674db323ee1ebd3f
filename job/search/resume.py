"""Where the next run resumes when a run stops before the end of its window (the cap, or its lease running
out), read from the sort values of the first event it did not handle (pure, but for the one search that
finds the earliest event lacking the timestamp override).

Events sort by the primary timestamp (the override, if set), and with a fallback, the events lacking the
override come last, sorted by ``@timestamp``. A stop among the events sorted by the override resumes at that
event's override time, or at the earliest ``@timestamp`` of the events lacking the override if earlier (none
of those has been handled yet); a stop among the events lacking it resumes at that event's ``@timestamp``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.rules.model import Rule
from job.search.clauses import SORT_MISSING, timestamp_fields

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Hit = dict[str, Any]


def sort_moment(value: Any) -> datetime | None:
    """A sort value (nanoseconds since the epoch) as a time, rounded down to the microsecond; None when missing."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SORT_MISSING:
        return EPOCH + timedelta(microseconds=value // 1000)
    return None


def resume_point(
    rule: Rule, hit: Hit, window_start: datetime, earliest_unsorted: Callable[[], datetime | None] = lambda: None
) -> datetime:
    """Where the next run must start so that ``hit`` (the first event not handled) and every event sorted
    after it are searched again. ``earliest_unsorted`` gives the earliest ``@timestamp`` of the window's
    events that lack the timestamp override (asked only when the rule falls back to ``@timestamp`` and
    ``hit`` has the override)."""
    sort = hit.get("sort") or [None]
    primary = sort_moment(sort[0])
    if timestamp_fields(rule).fallback is None:
        return primary if primary is not None else window_start
    if primary is None:  # among the events lacking the override, sorted by @timestamp
        fallback = sort_moment(sort[1]) if len(sort) > 2 else None
        return max(fallback, window_start) if fallback is not None else window_start
    unsorted = earliest_unsorted()
    return max(min(primary, unsorted) if unsorted is not None else primary, window_start)


def resumer(
    es: Elasticsearch, policy: RetryPolicy, rule: Rule, query: dict[str, Any], window_start: datetime
) -> Callable[[Hit], datetime]:
    """:func:`resume_point` for the events of ``query`` (a run's search of the rule's indices)."""

    def resume(hit: Hit) -> datetime:
        return resume_point(
            rule, hit, window_start, lambda: earliest_lacking_override(es, policy, rule, rule.index, query)
        )

    return resume


def earliest_lacking_override(
    es: Elasticsearch, policy: RetryPolicy, rule: Rule, indices: Sequence[str], query: dict[str, Any]
) -> datetime | None:
    """The earliest ``@timestamp`` of the events ``query`` selects that lack the timestamp override."""
    fields = timestamp_fields(rule)
    assert fields.fallback is not None
    lacking = {"bool": {"filter": [query], "must_not": [{"exists": {"field": fields.primary}}]}}
    response = policy.call(
        lambda: es.search(
            index=list(indices),
            size=0,
            query=lacking,
            aggs={"first": {"min": {"field": fields.fallback}}},
            ignore_unavailable=True,
            allow_no_indices=True,
            track_total_hits=False,
        )
    )
    value = response.get("aggregations", {}).get("first", {}).get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return EPOCH + timedelta(milliseconds=int(value))
