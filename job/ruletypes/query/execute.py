"""Execute one planned run of a query rule: page through the window, hand each page's new events to the
run's writer up to the cap, and say how far the window was searched.

Failures are per event (the writer dead-letters an event whose alert cannot be built or is refused, and the
window advances past it); only when that fails too does the run fail, so the event is searched again.

**Where the next run resumes** when this one stops early (the cap, or the lease running out) is the
timestamp of the first event it did not handle, read from that event's sort values. Events sort by the
primary timestamp (the override, if set), and with a fallback, the events lacking the override come last,
sorted by ``@timestamp``. A stop among the events sorted by the override resumes at that event's override
time, or at the earliest ``@timestamp`` of the events lacking the override if earlier (none of those has
been handled yet); a stop among the events lacking it resumes at that event's ``@timestamp``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from job.alerts.ids import alert_id
from job.rules.model import Rule
from job.ruletypes.contract import Hit, Outcome, RunPlan, RunTools, SearchPlan, count_writes, stopped_message
from job.search.clauses import SORT_MISSING, timestamp_fields
from job.search.pager import PitPager
from job.writing.writer import MAX_ALERTS_WARNING, Candidate, for_events

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def candidates(rule: Rule, space_id: str, hits: list[Hit]) -> list[Candidate]:
    """The would-be alerts of a page: one per event, with its deterministic id."""
    return [Candidate(alert_id(hit["_index"], hit["_id"], rule.rule_id, space_id), hit) for hit in hits]


def _moment(value: Any) -> datetime | None:
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
    primary = _moment(sort[0])
    if timestamp_fields(rule).fallback is None:
        return primary if primary is not None else window_start
    if primary is None:  # among the events lacking the override, sorted by @timestamp
        fallback = _moment(sort[1]) if len(sort) > 2 else None
        return max(fallback, window_start) if fallback is not None else window_start
    unsorted = earliest_unsorted()
    return max(min(primary, unsorted) if unsorted is not None else primary, window_start)


def _earliest_lacking_override(rule: Rule, search: SearchPlan, tools: RunTools) -> datetime | None:
    """The earliest ``@timestamp`` of the window's events that lack the timestamp override."""
    fields = timestamp_fields(rule)
    assert search.query is not None and fields.fallback is not None
    query = {"bool": {"filter": [search.query], "must_not": [{"exists": {"field": fields.primary}}]}}
    response = tools.policy.call(
        lambda: tools.es.search(
            index=list(rule.index),
            size=0,
            query=query,
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


def execute(rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
    """Search ``run.window`` with ``search`` and write the alerts; ``tools.metrics`` is filled as it goes, also
    when an error ends the run early.

    ``tools.should_stop`` is asked after each full page; when it says yes (a stop was requested, or the
    lease is running out), the run ends there and the next run continues from the last event it handled.
    """
    if search.query is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=run.window.end)
    settings = tools.settings
    pager = PitPager(tools.es, tools.policy, rule.index, search.query, search.sort, settings.page_size)
    writes = for_events(rule, settings.space_id, tools.execution_uuid)
    writer = tools.writer(writes, run.cap)
    outcome = Outcome(searched_to=run.window.end)

    def resume(hit: Hit) -> datetime:
        return resume_point(rule, hit, run.window.start, lambda: _earliest_lacking_override(rule, search, tools))

    def pages() -> Iterator[tuple[list[Hit], list[Candidate]]]:
        for page in pager.pages():
            yield page, writer.new(candidates(rule, settings.space_id, tools.page_filter(page)))

    try:
        try:
            for page, new in pages():
                left = writer.offer(new)
                if left:
                    outcome.searched_to = resume(left[0].item)
                    outcome.warnings.append(MAX_ALERTS_WARNING)
                    break
                if len(page) >= settings.page_size and tools.should_stop():
                    outcome.searched_to = resume(page[-1])
                    outcome.warnings.append(stopped_message(outcome.searched_to))
                    break
        finally:
            writer.settle_all()
        if tools.refresh:
            writer.refresh()
    finally:
        metrics = tools.metrics
        metrics.pages = pager.stats.pages
        metrics.hits = pager.stats.hits
        metrics.pit_reopened = pager.stats.pit_reopened
        metrics.total_search_duration_ms = round(pager.stats.search_ms)
        count_writes(metrics, writes)
    outcome.warnings += writes.warnings(settings.dead_letter_index)
    return outcome
