"""Execute one planned run of a query rule: page through the window, hand each page's new events to the
run's writer up to the cap, and say how far the window was searched.

Failures are per event (the writer dead-letters an event whose alert cannot be built or is refused, and the
window advances past it); only when that fails too does the run fail, so the event is searched again.

**Where the next run resumes** when this one stops early (the cap, or the lease running out) is the
timestamp of the first event it did not handle (:mod:`job.search.resume`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from job.rules.model import Rule
from job.ruletypes.contract import Hit, Outcome, RunPlan, RunTools, SearchPlan, count_writes, stopped_message
from job.search.pager import PitPager
from job.search.resume import earliest_lacking_override, resume_point
from job.writing.writer import MAX_ALERTS_WARNING, Candidate, event_candidates, for_events


def candidates(rule: Rule, space_id: str, hits: list[Hit]) -> list[Candidate]:
    """The would-be alerts of a page: one per event, with its deterministic id."""
    return event_candidates(rule.rule_id, space_id, hits)


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
        assert search.query is not None
        query = search.query

        def unsorted() -> datetime | None:
            return earliest_lacking_override(tools.es, tools.policy, rule, rule.index, query)

        return resume_point(rule, hit, run.window.start, unsorted)

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
