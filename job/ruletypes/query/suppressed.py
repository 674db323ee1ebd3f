"""Execute one planned run of a rule with ``[rule.alert_suppression]``: group the window's events by the
``group_by`` values, write one alert per group (the alert of the group's earliest event, plus the
suppression fields), or, with a ``duration``, fold the group into the open alert that already holds it.
Kibana's ``groupAndBulkCreate`` for query rules; docs/rules.md (alert suppression) has the behaviour.

Each event is counted once: a group's events up to the ``suppression.end`` of its latest alert are counted
(its *boundary*). The run refreshes the alerts alias, reads each group's boundary, counts each group again
over its events after the boundary only, and moves the boundary and adds the events in one document change
(a new alert written with ``create`` under a deterministic id, or a partial update conditional on the
alert's ``_seq_no``/``_primary_term``). An update refused because the alert changed (409) is never forced:
the alert is read again and the group counted again after its new end. docs/rules.md ("Every event counted
once") gives the whole argument and its limits.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from job.alerts.suppression import Group, Terms
from job.errors import JobError
from job.execlog.metrics import RunMetrics
from job.lists.plan import ExceptionPlan
from job.rules.model import Rule
from job.rules.parts import AlertSuppression
from job.ruletypes.contract import Outcome, RunPlan, RunTools, SearchPlan, count_groups, stopped_message
from job.ruletypes.query.execute import execute
from job.ruletypes.query.groups import (
    AGGREGATION,
    bucket_aggregations,
    bucket_terms,
    first_timestamp,
    grouping_aggregation,
    missing_fields_filter,
    parse_group,
    resume_point,
)
from job.search.clauses import TimestampFields, remaining_clause, timestamp_fields
from job.window import Window
from job.writing.grouped import GroupWriter
from job.writing.suppressed import SuppressionStore
from job.writing.writer import MAX_ALERTS_WARNING

log = logging.getLogger(__name__)

RECOUNT_CHUNK = 100  # groups counted again per request
TAIL_PAGE = 10_000  # groups per page when only their first timestamps are needed
# The metrics job.ruletypes.query.execute.execute fills: those of the ordinary alerts of a doNotSuppress run,
# to which the groups' own are added.
EXECUTE_COUNTS = (
    "pages",
    "hits",
    "pit_reopened",
    "total_search_duration_ms",
    "total_indexing_duration_ms",
    "alerts_created",
    "duplicates_skipped",
    "errors",
    "dead_lettered",
    "dead_letters_skipped",
)


@dataclass
class _Run:
    """One suppressed execution in progress: its grouping search, and its writing (:class:`GroupWriter`)."""

    tools: RunTools
    rule: Rule
    suppression: AlertSuppression
    window: Window
    query: dict[str, Any]
    store: SuppressionStore
    writer: GroupWriter = field(init=False)
    fields: TimestampFields = field(init=False)
    search_ms: float = 0.0
    pages: int = 0

    def __post_init__(self) -> None:
        self.fields = timestamp_fields(self.rule)
        self.writer = self.tools.group_writer(self.rule, self.suppression, self.store, self.recount_one)

    def instance(self, terms: Terms) -> str:
        return self.writer.instance(terms)

    def search(self, aggs: dict[str, Any]) -> dict[str, Any]:
        """A ``size: 0`` search of the rule's indices with the run's query and these aggregations."""
        tools = self.tools
        started = time.monotonic()
        try:
            response = tools.policy.call(
                lambda: tools.es.search(
                    index=list(self.rule.index),
                    size=0,
                    query=self.query,
                    aggs=aggs,
                    ignore_unavailable=True,
                    allow_no_indices=True,
                    allow_partial_search_results=False,
                    track_total_hits=False,
                )
            )
        finally:
            self.search_ms += (time.monotonic() - started) * 1000
        return dict(response.body)

    def page(self, size: int, after: Any, *, light: bool = False) -> tuple[list[Any], Any]:
        """One page of the grouping search: its buckets, and the composite key to continue after."""
        suppression = self.suppression
        aggregation = grouping_aggregation(
            suppression.group_by,
            size=size,
            fields=self.fields,
            missing_bucket=suppression.suppresses_missing,
            after=after,
            light=light,
        )
        found = self.search(aggregation).get("aggregations", {}).get(AGGREGATION)
        self.pages += 1
        if found is None:
            raise JobError("expected to find aggregations on search result")  # Kibana's words
        return list(found.get("buckets", [])), found.get("after_key")

    def groups_of(self, buckets: Sequence[Any]) -> list[Group]:
        """The page's groups, each counted after its boundary; a group left without events is dropped."""
        group_by = self.suppression.group_by
        parsed = [parse_group(bucket, bucket_terms(bucket["key"], group_by), self.window) for bucket in buckets]
        groups = [group for group in parsed if group is not None]
        boundaries = self.writer.boundaries
        boundaries.update(self.store.boundaries([self.instance(group.terms) for group in groups], self.window))
        known = [group.terms for group in groups if self.instance(group.terms) in boundaries]
        again = dict(zip(known, self.recount(known), strict=True))
        result = [again.get(group.terms, group) for group in groups]
        return [group for group in result if group is not None]

    def recount(self, groups: Sequence[Terms]) -> list[Group | None]:
        """Each group's events after its boundary (None: it has none)."""
        found: list[Group | None] = []
        for start in range(0, len(groups), RECOUNT_CHUNK):
            chunk = groups[start : start + RECOUNT_CHUNK]
            filters = {
                str(i): remaining_clause(
                    terms, self.fields, self.window, self.writer.boundaries.get(self.instance(terms))
                )
                for i, terms in enumerate(chunk)
            }
            aggregation = {"filters": {"filters": filters}, "aggs": bucket_aggregations(self.fields)}
            buckets = self.search({"remaining": aggregation})["aggregations"]["remaining"]["buckets"]
            found += [parse_group(buckets[str(i)], terms, self.window) for i, terms in enumerate(chunk)]
        return found

    def recount_one(self, terms: Terms) -> Group | None:
        [again] = self.recount([terms])
        return again

    def first_left_over(self, after: Any, should_stop: Callable[[], bool]) -> datetime | None:
        """The first timestamp of the groups after the composite key ``after`` and, with ``doNotSuppress``, of
        the events lacking a ``group_by`` field (they get no alert this run either); None when stopped."""
        starts: list[datetime] = []
        if not self.suppression.suppresses_missing:
            lacking = {"filter": missing_fields_filter(self.suppression.group_by)}
            lacking["aggs"] = bucket_aggregations(self.fields, light=True)
            first = first_timestamp(self.search({"lacking": lacking})["aggregations"]["lacking"])
            starts += [first] if first is not None else []
        while after is not None:
            if should_stop():
                return None
            buckets, after = self.page(TAIL_PAGE, after, light=True)
            starts += [moment for moment in map(first_timestamp, buckets) if moment is not None]
            if len(buckets) < TAIL_PAGE:
                break
        return min(starts, default=self.window.end)

    def group_and_write(self, cap: int, outcome: Outcome) -> int | None:
        """Page through the groups, writing up to ``cap`` of them: how many, or None when groups were left
        over (the cap was reached, or the run was asked to stop); ``outcome`` then says where to resume."""
        should_stop = self.tools.should_stop
        handled, after = 0, None
        while True:
            size = min(self.tools.settings.page_size, cap + 1 - handled)
            buckets, after = self.page(size, after)
            groups = self.groups_of(buckets)
            room = cap - handled
            self.writer.write(groups[:room])
            handled += min(room, len(groups))
            if len(groups) > room:  # a group beyond the cap: the rest waits for the next run
                outcome.warnings.append(MAX_ALERTS_WARNING)
                left_over = self.first_left_over(after, should_stop)
                if left_over is None:
                    self.stop(outcome)
                else:
                    outcome.searched_to = resume_point([groups[room].start, left_over], self.window)
                return None
            if after is None or len(buckets) < size:
                return handled
            if should_stop():
                self.stop(outcome)
                return None

    def stop(self, outcome: Outcome) -> None:
        # Groups come in key order, not time order: the next run searches the whole window again (the
        # groups written here are counted up to their boundaries, so nothing is counted twice).
        outcome.searched_to = self.window.start
        outcome.warnings.append(stopped_message(self.window.start))

    def finish(self, outcome: Outcome) -> None:
        """Make the alerts and dead letters visible to the next run; report the dead letters."""
        outcome.warnings += self.writer.finish(self.tools.refresh)

    def metrics_into(self, metrics: RunMetrics) -> None:
        count_groups(metrics, self.writer, pages=self.pages, search_ms=self.search_ms)


def execute_suppressed(rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
    """:func:`job.ruletypes.query.execute.execute` for a rule with ``alert_suppression``: the same arguments
    and outcome.

    At most ``run.cap`` groups get or update an alert; a group beyond means the cap was reached (Kibana's
    warning) and the next run starts at the first timestamp of the groups left over. With ``doNotSuppress``
    the events lacking a ``group_by`` field get ordinary alerts (:func:`execute`) within what the groups left
    of the cap; with the cap filled by the groups, they are past it like any other event (the warning, and the
    next run starts at the first of them). ``tools.should_stop`` is asked after each page of groups.
    ``tools.page_filter`` (exception items of large value lists) cannot apply to groups, only to those ordinary
    alerts; Kibana's warning says so.
    """
    suppression = rule.alert_suppression
    if suppression is None or not suppression.group_by:
        raise ValueError(f"rule {rule.rule_id} has no alert_suppression.group_by")
    if search.query is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=run.window.end)
    settings = tools.settings
    store = SuppressionStore(tools.es, tools.policy, settings.alerts_index, rule.rule_id, settings.space_id)
    grouped = _Run(tools, rule, suppression, run.window, search.query, store)
    # Kibana's warning for the exception items it cannot apply to an aggregation.
    outcome = Outcome(run.window.end, ExceptionPlan(not_applied=search.exceptions.post_filter).warnings)
    ungrouped = RunMetrics()
    try:
        store.refresh()
        handled = grouped.group_and_write(run.cap, outcome)
        grouped.finish(outcome)
        if handled is not None and not suppression.suppresses_missing:
            lacking = {"bool": {"filter": [search.query, missing_fields_filter(suppression.group_by)]}}
            more = execute(
                rule,
                dataclasses.replace(run, cap=run.cap - handled),
                dataclasses.replace(search, query=lacking),
                dataclasses.replace(tools, metrics=ungrouped),
            )
            outcome.searched_to = min(outcome.searched_to, more.searched_to)
            outcome.warnings += [warning for warning in more.warnings if warning not in outcome.warnings]
    finally:
        for name in EXECUTE_COUNTS:
            setattr(tools.metrics, name, getattr(ungrouped, name))
        grouped.metrics_into(tools.metrics)
    return outcome
