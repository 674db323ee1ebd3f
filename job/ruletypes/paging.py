"""One alert per event, paged: the run of every type whose alerts are events (query rules, EQL event
queries). Page through the window with a point in time, pick each page's events to alert on (the type's
:class:`Selection`), hand the new ones to the run's writer up to the cap, and say how far the window was
searched.

Failures are per event (the writer dead-letters an event whose alert cannot be built or is refused, and the
window advances past it); only when that fails too does the run fail, so the event is searched again.

**Where the next run resumes** when this one stops early (the cap, or the lease running out) is the
timestamp of the first event it did not handle (:mod:`job.search.resume`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from job.rules.model import Rule
from job.ruletypes.contract import (
    Hit,
    Outcome,
    RunPlan,
    RunTools,
    SearchPlan,
    count_search,
    count_writes,
    stopped_message,
)
from job.search.pager import PitPager
from job.search.resume import resumer
from job.writing.writer import MAX_ALERTS_WARNING, event_candidates, for_events


@dataclass
class Selection:
    """Which events of the window get an alert: ``page`` picks them from each page (in order); ``done`` says
    the rest of the window is to be left alone (its run still counts as searched to the window's end);
    ``end`` gives, once the window is paged whole, events held back until then."""

    page: Callable[[list[Hit]], list[Hit]]
    done: Callable[[], bool] = lambda: False
    end: Callable[[], list[Hit]] = list


def page_events(rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools, select: Selection) -> Outcome:
    """Search ``run.window`` with ``search`` and write an alert per selected event; ``tools.metrics`` is filled
    as it goes, also when an error ends the run early.

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
    resume = resumer(tools.es, tools.policy, rule, search.query, run.window.start)

    def offer(hits: list[Hit]) -> bool:
        left = writer.offer(writer.new(event_candidates(rule.rule_id, settings.space_id, hits)))
        if left:
            outcome.searched_to = resume(left[0].item)
            outcome.warnings.append(MAX_ALERTS_WARNING)
        return not left

    try:
        try:
            for page in pager.pages():
                if not offer(select.page(page)) or select.done():
                    break
                if len(page) >= settings.page_size and tools.should_stop():
                    outcome.searched_to = resume(page[-1])
                    outcome.warnings.append(stopped_message(outcome.searched_to))
                    break
            else:
                offer(select.end())
        finally:
            writer.settle_all()
        if tools.refresh:
            writer.refresh()
    finally:
        count_search(tools.metrics, pager.stats)
        count_writes(tools.metrics, writes)
    outcome.warnings += writes.warnings(settings.dead_letter_index)
    return outcome
