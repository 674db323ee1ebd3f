"""ES|QL rules with ``[rule.alert_suppression]``: Kibana's suppression in memory (``esql.ts`` with
``bulkCreateSuppressedAlertsInMemory`` and ``maxNumberOfAlertsMultiplier: 1``, ``wrapSuppressedEsqlAlerts``,
and the persistence layer's ``alertWithSuppression``), on the job's shared suppression parts
(:mod:`job.alerts.suppression`, :mod:`job.writing.suppressed`). Pages are read as without suppression
(:mod:`job.ruletypes.esql.execute`); then, per page:

* rows whose alert exists are dropped (the ids are those of rows without suppression);
* a row's **terms** are its ``group_by`` values in its event's ``fields`` and its columns, columns first, so
  a term may be a computed column; several values are sorted. With ``doNotSuppress`` a row lacking a term
  gets an ordinary alert;
* a row's **time** is its timestamp override, else ``@timestamp`` where the override falls back, else now;
* a row at or before its group's **boundary** (the latest ``suppression.end`` of the group's alerts that
  reach into the window, read once per run: the rule the job's query-rule suppression follows; Kibana
  compares with the open alert only) was counted already and is dropped;
* the rows of a group are one alert: the earliest row's (its id is that row's), ``suppression.start`` and
  ``.end`` the first and last times, ``docs_count`` the other rows;
* a group **folds into** an open alert of its instance (a conditional partial update), else it gets its own
  alert: with a ``duration``, the newest alert not closed that started within it; without one (per rule
  execution), only an alert this run wrote;
* the run stops once alerts created and rows suppressed reach the cap (Kibana's multiplier 1), with
  Kibana's suppression variant of the max-signals warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from job.alerts.build import RunAlerts
from job.alerts.suppression import (
    Group,
    Terms,
    duration_start,
    instance_id,
    suppression_fields,
    update_document,
)
from job.jsoncodec import document_bytes
from job.rules.model import Rule
from job.rules.parts import AlertSuppression
from job.ruletypes.contract import Outcome, RunPlan, RunTools, count_writes, stopped_message
from job.ruletypes.esql import errors
from job.ruletypes.esql.alerts import WouldBeAlert, rows_to_alerts, rule_key
from job.ruletypes.esql.compiled import EsqlSearch
from job.ruletypes.esql.execute import Pages, engine_for, first_pages, once_each
from job.ruletypes.esql.maker import esql_writes, filed_under, hit_of
from job.ruletypes.esql.merge import robust_get
from job.window import Window, parse_timestamp
from job.writing.bulk import AlertWrite
from job.writing.suppressed import Current, SuppressionStore, Update, dead_letter_group, settle
from job.writing.writer import AlertMaker, Candidate, RunWrites, build, send


@dataclass(frozen=True)
class RowGroup:
    """The rows of one group in a page that no alert counted yet, earliest first."""

    instance: str
    terms: Terms
    rows: tuple[tuple[datetime, WouldBeAlert], ...]

    @property
    def first(self) -> WouldBeAlert:
        return self.rows[0][1]

    def after(self, boundary: datetime | None) -> RowGroup | None:
        """The rows later than ``boundary`` (None: every row); None when none is."""
        rows = self.rows if boundary is None else tuple(row for row in self.rows if row[0] > boundary)
        return replace(self, rows=rows) if rows else None

    def group(self) -> Group:
        return Group(self.terms, len(self.rows), self.rows[0][0], self.rows[-1][0], hit_of(self.first))


def terms_of(alert: WouldBeAlert, group_by: Sequence[str]) -> Terms:
    """Kibana's ``getSuppressionTerms`` over ``{...fields, ..._source}``: the columns win; arrays sorted."""
    combined = {**(alert.fields or {}), **alert.source}
    terms = []
    for name in group_by:
        value = robust_get(combined, name)
        if isinstance(value, list):
            with contextlib.suppress(TypeError):  # values of several types: kept in their order
                value = sorted(value)
        terms.append((name, value))
    return tuple(terms)


def _moment(value: Any) -> datetime | None:
    value = value[0] if isinstance(value, list) and value else value
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def time_of(alert: WouldBeAlert, primary: str, fallback: str | None, now: datetime) -> datetime:
    """The row's time: its primary timestamp, else the fallback's, else now (the alert's ``@timestamp``)."""
    combined = {**(alert.fields or {}), **alert.source}
    found = _moment(robust_get(combined, primary))
    if found is None and fallback is not None:
        found = _moment(robust_get(combined, fallback))
    return found or now


class GroupAlerts:
    """The alert of a group: its earliest row's alert, plus the suppression fields, under that row's id."""

    def __init__(self, alerts: RunAlerts, rule_id: str, space_id: str) -> None:
        self.alerts = alerts
        self.rule_id = rule_id
        self.space_id = space_id

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        rows: RowGroup = item
        alert = self.alerts.build(hit_of(rows.first), now=now, alert_uuid=doc_id)
        alert.update(suppression_fields(rows.group(), self.rule_id, self.space_id))
        return [AlertWrite(doc_id, document_bytes(alert), *filed_under(rows.first))]

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        rows: RowGroup = item
        terms = ", ".join(f"{name}={value!r}" for name, value in rows.terms)
        return *filed_under(rows.first), f"the alert of the group {terms} ({len(rows.rows)} rows): {reason}"


@dataclass
class _Groups:
    """The suppressed side of one run: its store, its writes, the groups' boundaries and what it did."""

    tools: RunTools
    rule: Rule
    suppression: AlertSuppression
    store: SuppressionStore
    writes: RunWrites
    window: Window
    boundaries: dict[str, datetime | None] = field(default_factory=dict)  # instance -> counted up to
    mine: dict[str, str] = field(default_factory=dict)  # instance -> the alert this run wrote for it
    created: int = 0
    updated: int = 0
    groups: int = 0
    suppressed_docs: int = 0

    def of(
        self, alerts: Sequence[WouldBeAlert], primary: str, fallback: str | None
    ) -> tuple[list[WouldBeAlert], list[RowGroup]]:
        """(the rows that get ordinary alerts, the page's groups after their boundaries)."""
        now = self.tools.clock()
        lone: list[WouldBeAlert] = []
        grouped: dict[str, tuple[Terms, list[tuple[datetime, WouldBeAlert]]]] = {}
        space_id = self.tools.settings.space_id
        for alert in alerts:
            terms = terms_of(alert, self.suppression.group_by)
            if not self.suppression.suppresses_missing and any(value is None for _, value in terms):
                lone.append(alert)
                continue
            key = instance_id(terms, self.rule.rule_id, space_id)
            grouped.setdefault(key, (terms, []))[1].append((time_of(alert, primary, fallback, now), alert))
        unknown = [key for key in grouped if key not in self.boundaries]
        if unknown:
            found = self.store.boundaries(unknown, self.window)
            self.boundaries.update((key, found.get(key)) for key in unknown)
        groups = []
        for key, (terms, rows) in grouped.items():
            rows.sort(key=lambda row: row[0])
            group = RowGroup(key, terms, tuple(rows)).after(self.boundaries.get(key))
            if group is not None:
                groups.append(group)
        return lone, groups

    def write(self, groups: Sequence[RowGroup], room: int) -> list[RowGroup]:
        """Fold each group into its open alert or give it one, at most ``room`` new alerts; the groups left over
        for want of room."""
        now = self.tools.clock()
        duration = self.suppression.duration
        since = duration_start(now, duration) if duration is not None else self.window.start
        found = self.store.open_alerts([group.instance for group in groups], since) if groups else {}
        if duration is None:  # per rule execution: only the alerts this run wrote take in more rows
            found = {key: alert for key, alert in found.items() if self.mine.get(key) == alert.doc_id}
        fresh = [group for group in groups if group.instance not in found]
        left = fresh[max(room, 0) :]
        self.create(fresh[: max(room, 0)])
        updates = [
            (group, Update(found[group.instance], update_document(found[group.instance], group.group(), now)))
            for group in groups
            if group.instance in found
        ]
        answers = self.store.update([update for _, update in updates])
        for (group, update), answer in zip(updates, answers, strict=True):
            settle(self.store, self, group, update, answer, now=now, since=since)
        return left

    def after(self, group: RowGroup, current: Current | None) -> RowGroup | None:
        """The group's rows after the end of its alert as it is now (all of them when it is gone)."""
        return group if current is None else group.after(current.alert.end)

    def summary(self, group: RowGroup) -> Group:
        return group.group()

    def folded(self, group: RowGroup) -> None:
        self.groups += 1
        self.updated += 1
        self.suppressed_docs += len(group.rows)

    def create(self, groups: Sequence[RowGroup]) -> None:
        """One new alert per group (its earliest row's id); only the ones this run created are counted."""
        if not groups:
            return
        tools = self.tools
        built = build(self.writes, [Candidate(group.first.id, group) for group in groups], tools.clock())
        try:
            send(tools.es, tools.policy, tools.settings, [built], tools.clock)
        finally:
            built.merge()
        by_id = {group.first.id: group for group in groups}
        for doc_id in built.created:
            group = by_id[doc_id]
            self.mine[group.instance] = doc_id
            self.groups += 1
            self.created += 1
            self.suppressed_docs += len(group.rows) - 1

    def dead_letter(self, group: RowGroup, reason: str) -> None:
        tools = self.tools
        dead_letter_group(tools.es, tools.policy, tools.settings, self.writes, group, reason, tools.clock)


def group_writes(rule: Rule, tools: RunTools) -> RunWrites:
    """The writing of a suppressed run's groups: one alert per group."""
    space_id = tools.settings.space_id

    def make(now: datetime) -> AlertMaker:
        alerts = RunAlerts.for_run(rule, now=now, execution_uuid=tools.execution_uuid, space_id=space_id)
        return GroupAlerts(alerts, rule.rule_id, space_id)

    return RunWrites(rule.rule_id, rule.name, space_id, tools.execution_uuid, make)


def execute_suppressed(rule: Rule, run: RunPlan, search: EsqlSearch, tools: RunTools) -> Outcome:
    """:func:`job.ruletypes.esql.execute.execute` for a rule with ``alert_suppression`` (module docstring):
    the same arguments and outcome."""
    compiled, suppression = search.compiled, rule.alert_suppression
    if search.query is None or compiled is None or suppression is None:
        return Outcome(searched_to=run.window.end)
    assert search.timestamps is not None
    settings = tools.settings
    pages = first_pages(compiled, run, search, engine_for(tools))
    store = SuppressionStore(tools.es, tools.policy, settings.alerts_index, rule.rule_id, settings.space_id)
    grouped = _Groups(tools, rule, suppression, store, group_writes(rule, tools), run.window)
    ordinary = esql_writes(rule, settings.space_id, tools.execution_uuid)
    writer = tools.writer(ordinary, run.cap)
    outcome = Outcome(searched_to=run.window.end)
    early = run.window.start if not compiled.aggregating else run.window.end
    key = rule_key(settings.space_id, rule.rule_id)
    offered: set[str] = set()
    try:
        store.refresh()  # the alerts of a run killed a moment ago count too
        while True:
            result, events = pages.next()
            alerts = rows_to_alerts(
                result, events, query=compiled.text, aggregating=compiled.aggregating, window=run.window, key=key
            )
            candidates, repeated = once_each(alerts, offered)
            ordinary.duplicates += repeated
            new = writer.new(candidates)
            offered.update(candidate.doc_id for candidate in new)
            lone, groups = grouped.of([c.item for c in new], search.timestamps.primary, search.timestamps.fallback)
            writer.cap = run.cap - grouped.created  # the groups' alerts count against the cap too
            left = writer.offer([Candidate(alert.id, alert) for alert in lone])
            writer.settle_all()
            left_groups = grouped.write(groups, run.cap - ordinary.units - grouped.created)
            truncated = bool(left or left_groups)
            cut = [candidate.item for candidate in left] + [alert for group in left_groups for _, alert in group.rows]
            grew = pages.exclude(result, events, cut)
            if truncated or ordinary.units + grouped.created + grouped.suppressed_docs >= run.cap:
                pages.warn(errors.SUPPRESSION_MAX_SIGNALS_WARNING)
                outcome.searched_to = early
                break
            if pages.exhausted(result) or compiled.aggregating or not grew:
                break
            if tools.should_stop():
                outcome.searched_to = early
                pages.warn(stopped_message(early))
                break
            store.refresh()  # the next page's groups see this page's alerts
        if tools.refresh:
            writer.refresh()
            store.refresh()
    finally:
        writer.settle_all()
        _metrics(tools, pages, grouped, ordinary)
    outcome.warnings += pages.warnings + ordinary.warnings(settings.dead_letter_index)
    outcome.warnings += grouped.writes.warnings(settings.dead_letter_index)
    outcome.state = pages.state(run)
    return outcome


def _metrics(tools: RunTools, pages: Pages, groups: _Groups, ordinary: RunWrites) -> None:
    metrics = tools.metrics
    count_writes(metrics, ordinary)
    metrics.pages = pages.pages
    metrics.hits = pages.rows
    metrics.total_search_duration_ms = round(pages.engine.search_ms + groups.store.search_ms)
    writes = groups.writes
    metrics.total_indexing_duration_ms += round(writes.stats.indexing_ms + groups.store.indexing_ms)
    metrics.alerts_created += writes.stats.created
    metrics.duplicates_skipped += writes.duplicates + writes.stats.duplicates
    metrics.errors += writes.stats.errors
    metrics.dead_lettered += writes.dead_lettered
    metrics.alerts_updated = groups.updated
    metrics.suppression_groups = groups.groups
    metrics.suppressed_docs = groups.suppressed_docs
