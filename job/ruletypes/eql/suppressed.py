"""Alert suppression of EQL event queries, in memory as Kibana does it (``bulkCreateSuppressedAlertsInMemory``):
page the window's matching events (the residual and the exception lists applied per page, which no
aggregation could), group them by their ``group_by`` values, and write one alert per group, or with a
``duration`` fold the group into its open alert (:class:`job.writing.grouped.GroupWriter`, shared with query
rules).

* **Terms** are read from the event as Kibana reads them from the ``fields`` API: the field's values as a
  sorted list (``["ws-01"]``), null when it has none. So the groups, and their instance ids, are not the
  query rules' (whose terms come from an aggregation's buckets); they are Kibana's for EQL rules.
* **Every event counted once**: before a group's first event of a page is counted, its boundary (the latest
  ``suppression.end`` of an alert that counted it) is read; events at or before it are not counted again.
* ``doNotSuppress``: events lacking a ``group_by`` field get ordinary alerts, first, as Kibana writes them
  first; the groups get what they left of the cap.
* **The cap** counts groups (and ordinary alerts). Groups beyond it are left to the next run, which starts at
  the first timestamp of the groups left over; ordinary alerts beyond it stop the paging, and the next run
  starts at the first of them (or at an earlier group's first event: groups are written only once the window
  is paged whole). A run stopped before then (its lease running out, a signal) writes no group and the next
  run searches its window again.

Memory holds one entry per group of the window (its count, span and earliest event), never the events.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from job.alerts.source_fields import values_at
from job.alerts.suppression import Group, Terms
from job.rules.model import Rule
from job.rules.parts import AlertSuppression
from job.ruletypes.contract import (
    Hit,
    Outcome,
    RunPlan,
    RunTools,
    count_groups,
    count_search,
    count_writes,
    stopped_message,
)
from job.ruletypes.eql.events import passing
from job.ruletypes.eql.search import EqlSearch
from job.search.clauses import TimestampFields, remaining_clause, timestamp_fields
from job.search.pager import PageStats, PitPager
from job.search.resume import resumer, sort_moment
from job.window import Window
from job.writing.grouped import GroupWriter
from job.writing.suppressed import SuppressionStore
from job.writing.writer import MAX_ALERTS_SUPPRESSED_WARNING, event_candidates, for_events


def _sorted(values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sorted(values, key=lambda value: (type(value).__name__, value)))


def event_terms(group_by: Sequence[str], source: Mapping[str, Any]) -> Terms:
    """The event's group: each field's values, sorted (None when it has none), as Kibana reads them."""
    terms = []
    for name in group_by:
        values = values_at(source, name)
        terms.append((name, _sorted(values) if values else None))
    return tuple(terms)


def event_time(hit: Hit, fields: TimestampFields) -> datetime | None:
    """The event's time in the window's order: the override, else (with a fallback) ``@timestamp``."""
    sort = hit.get("sort") or [None]
    primary = sort_moment(sort[0])
    if primary is not None or fields.fallback is None:
        return primary
    return sort_moment(sort[1]) if len(sort) > 1 else None


@dc.dataclass
class _Tally:
    """A group being counted: how many events after its boundary, their span, the earliest."""

    count: int
    start: datetime
    end: datetime
    event: Hit

    def add(self, moment: datetime, hit: Hit) -> None:
        self.count += 1
        if moment < self.start:
            self.start, self.event = moment, hit
        self.end = max(self.end, moment)

    def group(self, terms: Terms) -> Group:
        return Group(terms=terms, count=self.count, start=self.start, end=self.end, event=self.event)


@dc.dataclass
class _Suppressed:
    """One suppressed run in progress: the window's groups, counted as pages come, and their writing."""

    rule: Rule
    suppression: AlertSuppression
    search: EqlSearch
    tools: RunTools
    window: Window
    store: SuppressionStore
    fields: TimestampFields = dc.field(init=False)
    writer: GroupWriter = dc.field(init=False)
    tallies: dict[Terms, _Tally] = dc.field(default_factory=dict)
    stats: PageStats = dc.field(default_factory=PageStats)

    def __post_init__(self) -> None:
        self.fields = timestamp_fields(self.rule)
        self.writer = self.tools.group_writer(self.rule, self.suppression, self.store, self.recount)

    def lacking(self, terms: Terms) -> bool:
        return not self.suppression.suppresses_missing and any(value is None for _, value in terms)

    def passing(self, page: Sequence[Hit]) -> list[Hit]:
        assert self.search.plan is not None
        return self.tools.page_filter(passing(self.search.plan, page))

    def add(self, hits: Sequence[Hit]) -> list[Hit]:
        """Count the page's events into their groups; the events that get ordinary alerts (``doNotSuppress``)."""
        group_by = self.suppression.group_by
        ordinary: list[Hit] = []
        keyed: list[tuple[Terms, Hit]] = []
        for hit in hits:
            terms = event_terms(group_by, hit.get("_source") or {})
            if self.lacking(terms):
                ordinary.append(hit)
            else:
                keyed.append((terms, hit))
        writer = self.writer
        new = list(dict.fromkeys(writer.instance(terms) for terms, _ in keyed if terms not in self.tallies))
        if new:
            writer.boundaries.update(self.store.boundaries(new, self.window))
        for terms, hit in keyed:
            moment = event_time(hit, self.fields) or self.window.start
            boundary = writer.boundaries.get(writer.instance(terms))
            if boundary is not None and moment <= boundary:
                continue  # counted by an earlier alert of the group
            tally = self.tallies.get(terms)
            if tally is None:
                self.tallies[terms] = _Tally(1, moment, moment, hit)
            else:
                tally.add(moment, hit)
        return ordinary

    def groups(self) -> list[Group]:
        """The groups by their first timestamp (the order the cap takes them in)."""
        found = [tally.group(terms) for terms, tally in self.tallies.items()]
        return sorted(found, key=lambda group: group.start)

    def recount(self, terms: Terms) -> Group | None:
        """The group's events after its (new) boundary, paged again (after a 409 on its alert)."""
        assert self.search.query is not None
        boundary = self.writer.boundaries.get(self.writer.instance(terms))
        clause = remaining_clause(terms, self.fields, self.window, boundary)
        query = {"bool": {"filter": [self.search.query, clause]}}
        tools = self.tools
        pager = PitPager(tools.es, tools.policy, self.rule.index, query, self.search.sort, tools.settings.page_size)
        tally: _Tally | None = None
        group_by = [name for name, _ in terms]
        for page in pager.pages():
            for hit in self.passing(page):
                if event_terms(group_by, hit.get("_source") or {}) != terms:
                    continue  # holds the group's values and more
                moment = event_time(hit, self.fields) or self.window.start
                if tally is None:
                    tally = _Tally(1, moment, moment, hit)
                else:
                    tally.add(moment, hit)
        self.stats.pages += pager.stats.pages
        self.stats.search_ms += pager.stats.search_ms
        return tally.group(terms) if tally is not None else None


def execute_suppressed_events(rule: Rule, run: RunPlan, search: EqlSearch, tools: RunTools) -> Outcome:
    """:func:`job.ruletypes.eql.events.execute_events` for an event query with ``alert_suppression``: the same
    arguments and outcome; see the module's documentation."""
    suppression = rule.alert_suppression
    if suppression is None or not suppression.group_by:
        raise ValueError(f"rule {rule.rule_id} has no alert_suppression.group_by")
    if search.query is None or search.plan is None:
        return Outcome(searched_to=run.window.end)
    settings = tools.settings
    store = SuppressionStore(tools.es, tools.policy, settings.alerts_index, rule.rule_id, settings.space_id)
    state = _Suppressed(rule, suppression, search, tools, run.window, store)
    pager = PitPager(tools.es, tools.policy, rule.index, search.query, search.sort, settings.page_size)
    ordinary = for_events(rule, settings.space_id, tools.execution_uuid)
    writer = tools.writer(ordinary, run.cap)
    outcome = Outcome(run.window.end)
    query = search.query

    resume = resumer(tools.es, tools.policy, rule, query, run.window.start)

    try:
        store.refresh()
        paged_whole = True
        try:
            for page in pager.pages():
                lone = state.add(state.passing(page))
                left = writer.offer(writer.new(event_candidates(rule.rule_id, settings.space_id, lone)))
                if left:  # the cap, on ordinary alerts: no group is written, all resume from here on
                    starts = [resume(left[0].item), *(group.start for group in state.groups())]
                    outcome.searched_to = max(min(starts), run.window.start)
                    outcome.warnings.append(MAX_ALERTS_SUPPRESSED_WARNING)
                    paged_whole = False
                    break
                if len(page) >= settings.page_size and tools.should_stop():
                    outcome.searched_to = run.window.start
                    outcome.warnings.append(stopped_message(run.window.start))
                    paged_whole = False
                    break
        finally:
            writer.settle_all()
        if paged_whole:
            groups = state.groups()
            room = max(0, run.cap - ordinary.units)
            state.writer.write(groups[:room])
            if len(groups) > room:
                outcome.searched_to = max(groups[room].start, run.window.start)
                outcome.warnings.append(MAX_ALERTS_SUPPRESSED_WARNING)
        outcome.warnings += state.writer.finish(tools.refresh)
        if tools.refresh:
            writer.refresh()
    finally:
        metrics = tools.metrics
        count_search(metrics, pager.stats)
        count_writes(metrics, ordinary)
        hits = metrics.hits
        count_groups(metrics, state.writer, pages=state.stats.pages, search_ms=state.stats.search_ms)
        metrics.hits = hits  # the events the search returned
    outcome.warnings += ordinary.warnings(settings.dead_letter_index)
    return outcome
