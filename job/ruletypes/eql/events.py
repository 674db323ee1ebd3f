"""Execute one planned run of an EQL event query: the query rule's run path (page the window in the order of
its timestamp, hand each page's new events to the writer up to the cap, resume at the first event not
handled), with what EQL adds: each page's events pass the query's residual (what Elasticsearch would run as
a script, evaluated on the client) before the exception lists applied per page, and only those that pass
become would-be alerts, so the cap counts only them.

The pipes: ``| head N`` alerts on the window's first N matching events and ``| tail N`` on its last N (the
rest of the window is not alerted on, as Elasticsearch returns only those); without a pipe, every matching
event of the window is alerted on, up to the cap, and a run stopped by the cap is continued by the next run.
Kibana asks Elasticsearch for ``max_signals`` events and gets the window's *last* ones (Elasticsearch's
default ``result_position`` is ``tail``): the others are never alerted on.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from job.eql import QueryPlan
from job.rules.model import Rule
from job.ruletypes.contract import Hit, Outcome, RunPlan, RunTools
from job.ruletypes.eql.search import EqlSearch
from job.ruletypes.paging import Selection, page_events
from job.writing.writer import Candidate, event_candidates


def passing(planned: QueryPlan, hits: Sequence[Hit]) -> list[Hit]:
    """The hits the query's residual keeps (all of them when Elasticsearch would run no script)."""
    residual = planned.stages[0].push.residual
    if residual is None:
        return list(hits)
    return [hit for hit in hits if residual.matches(hit.get("_source") or {})]


def window_candidates(rule: Rule, tools: RunTools, planned: QueryPlan, hits: Sequence[Hit]) -> list[Candidate]:
    """The would-be alerts of a window read whole (a probe's page), after the residual, the exceptions applied
    per page and the pipes."""
    kept = tools.page_filter(passing(planned, hits))
    if planned.head is not None:
        kept = kept[: planned.head]
    if planned.tail is not None:
        kept = kept[-planned.tail :] if planned.tail else []
    return event_candidates(rule.rule_id, tools.settings.space_id, kept)


def selection(planned: QueryPlan, tools: RunTools) -> Selection:
    """Each page's events that pass the residual, then the exceptions applied per page, then the pipes."""
    head = planned.head
    tail: collections.deque[Hit] | None = collections.deque(maxlen=planned.tail) if planned.tail is not None else None
    taken = 0

    def page(hits: list[Hit]) -> list[Hit]:
        nonlocal taken
        kept = tools.page_filter(passing(planned, hits))
        if tail is not None:
            tail.extend(kept)
            return []
        if head is not None:
            kept = kept[: head - taken]
        taken += len(kept)
        return kept

    def done() -> bool:
        return head is not None and taken >= head

    def end() -> list[Hit]:
        return list(tail) if tail is not None else []

    return Selection(page, done, end)


def execute_events(rule: Rule, run: RunPlan, search: EqlSearch, tools: RunTools) -> Outcome:
    """Search ``run.window`` and write one alert per matching event (:func:`job.ruletypes.paging.page_events`)."""
    if search.query is None or search.plan is None:
        return Outcome(searched_to=run.window.end)
    return page_events(rule, run, search, tools, selection(search.plan, tools))
