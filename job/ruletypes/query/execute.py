"""Execute one planned run of a query rule: one alert per matching event, paged (:mod:`job.ruletypes.paging`),
each page's events less those that exception items applied per page (large value lists) exclude."""

from __future__ import annotations

from job.rules.model import Rule
from job.ruletypes.contract import Hit, Outcome, RunPlan, RunTools, SearchPlan
from job.ruletypes.paging import Selection, page_events
from job.writing.writer import Candidate, event_candidates


def candidates(rule: Rule, space_id: str, hits: list[Hit]) -> list[Candidate]:
    """The would-be alerts of a page: one per event, with its deterministic id."""
    return event_candidates(rule.rule_id, space_id, hits)


def execute(rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
    """Search ``run.window`` with ``search`` and write the alerts (:func:`job.ruletypes.paging.page_events`)."""
    return page_events(rule, run, search, tools, Selection(tools.page_filter))
