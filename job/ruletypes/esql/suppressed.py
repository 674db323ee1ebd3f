"""ES|QL rules with ``[rule.alert_suppression]``: Kibana's suppression in memory (``esql.ts`` with
``bulkCreateSuppressedAlertsInMemory`` and ``maxNumberOfAlertsMultiplier: 1``, ``wrapSuppressedEsqlAlerts``,
and the persistence layer's ``alertWithSuppression``), written by the groups' shared writer
(:class:`job.writing.grouped.GroupWriter`). Pages are read as without suppression (:mod:`.execute`); then:

* rows whose alert exists are dropped (their ids are those of rows without suppression);
* a row's **terms** are its ``group_by`` values in its event's ``fields`` and its columns, columns first, so
  a term may be a computed column; several values are sorted. With ``doNotSuppress`` a row lacking a term
  gets an ordinary alert, at once;
* a row's **time** is its timestamp override, else ``@timestamp`` where the override falls back, else now;
* a row at or before its group's **boundary** (the latest ``suppression.end`` of the group's alerts that
  reach into the window, read once per run: the job's rule for every suppressing type; Kibana compares with
  the open alert only) was counted already and is dropped;
* paging stops once the rows counted (into groups or ordinary alerts) reach the cap (Kibana's multiplier 1),
  with Kibana's suppression variant of the max-signals warning;
* then each group is one alert, its earliest row's (under that row's id, Kibana's), ``suppression.start`` and
  ``.end`` the first and last times, ``docs_count`` the other rows; with a ``duration`` it folds into the open
  alert of its instance instead. Counting the whole run before writing gives one alert per group per run, as
  Kibana's per-execution suppression does (it folds a later page's rows into the alert an earlier page wrote).
"""

from __future__ import annotations

import contextlib
import dataclasses as dc
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from job.alerts.suppression import Group, Terms
from job.rules.model import Rule
from job.rules.parts import AlertSuppression
from job.ruletypes.contract import Outcome, RunPlan, RunTools, count_groups, count_writes, stopped_message
from job.ruletypes.esql import errors
from job.ruletypes.esql.alerts import WouldBeAlert, rows_to_alerts, rule_key
from job.ruletypes.esql.compiled import EsqlSearch
from job.ruletypes.esql.execute import engine_for, first_pages, once_each
from job.ruletypes.esql.maker import esql_writes, hit_of
from job.ruletypes.esql.merge import robust_get
from job.search.clauses import TimestampFields
from job.window import Window, parse_timestamp
from job.writing.grouped import ALERT_ID_KEY, GroupWriter
from job.writing.suppressed import SuppressionStore
from job.writing.writer import Candidate


@dc.dataclass(frozen=True)
class RowGroup:
    """The rows of one group this run counted, earliest first."""

    terms: Terms
    rows: tuple[tuple[datetime, WouldBeAlert], ...]

    def after(self, boundary: datetime | None) -> RowGroup | None:
        """The rows later than ``boundary`` (None: every row); None when none is."""
        rows = self.rows if boundary is None else tuple(row for row in self.rows if row[0] > boundary)
        return dc.replace(self, rows=rows) if rows else None

    def group(self) -> Group:
        """The group as the writer takes it: its earliest row's hit, named with that row's alert id."""
        first = self.rows[0][1]
        event = {**hit_of(first), ALERT_ID_KEY: first.id}
        return Group(self.terms, len(self.rows), self.rows[0][0], self.rows[-1][0], event)


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


@dc.dataclass
class _Counted:
    """One suppressed run's groups, counted as pages come."""

    suppression: AlertSuppression
    store: SuppressionStore
    window: Window
    fields: TimestampFields
    writer: GroupWriter = dc.field(init=False)
    groups: dict[Terms, list[tuple[datetime, WouldBeAlert]]] = dc.field(default_factory=dict)
    instances: dict[Terms, str] = dc.field(default_factory=dict)
    rows: int = 0  # rows counted into groups

    def add(self, alerts: Sequence[WouldBeAlert], now: datetime) -> list[WouldBeAlert]:
        """Count the page's rows into their groups (each after its boundary); the rows that get ordinary alerts."""
        writer = self.writer
        lone: list[WouldBeAlert] = []
        keyed: list[tuple[Terms, WouldBeAlert]] = []
        for alert in alerts:
            terms = terms_of(alert, self.suppression.group_by)
            if not self.suppression.suppresses_missing and any(value is None for _, value in terms):
                lone.append(alert)
            else:
                keyed.append((terms, alert))
        new = [terms for terms in dict.fromkeys(terms for terms, _ in keyed) if terms not in self.instances]
        self.instances.update((terms, writer.instance(terms)) for terms in new)
        if new:
            writer.boundaries.update(self.store.boundaries([self.instances[terms] for terms in new], self.window))
        for terms, alert in keyed:
            moment = time_of(alert, self.fields.primary, self.fields.fallback, now)
            boundary = writer.boundaries.get(self.instances[terms])
            if boundary is not None and moment <= boundary:
                continue  # counted by an earlier alert of the group
            self.groups.setdefault(terms, []).append((moment, alert))
            self.rows += 1
        return lone

    def row_group(self, terms: Terms) -> RowGroup:
        return RowGroup(terms, tuple(sorted(self.groups[terms], key=lambda row: row[0])))

    def recount(self, terms: Terms) -> Group | None:
        """The group's rows after its (new) boundary (after a 409 on its alert)."""
        later = self.row_group(terms).after(self.writer.boundaries.get(self.instances[terms]))
        return later.group() if later is not None else None

    def to_write(self) -> list[Group]:
        """The run's groups, by their first time."""
        return sorted((self.row_group(terms).group() for terms in self.groups), key=lambda group: group.start)


def execute_suppressed(rule: Rule, run: RunPlan, search: EsqlSearch, tools: RunTools) -> Outcome:
    """:func:`job.ruletypes.esql.execute.execute` for a rule with ``alert_suppression`` (module docstring):
    the same arguments and outcome."""
    compiled, suppression = search.compiled, rule.alert_suppression
    if search.query is None or compiled is None or suppression is None:
        return Outcome(searched_to=run.window.end)
    assert search.timestamps is not None
    settings = tools.settings
    pages = first_pages(compiled, run, search, engine_for(tools))
    store = tools.suppression_store(rule.rule_id)
    counted = _Counted(suppression, store, run.window, search.timestamps)
    counted.writer = tools.group_writer(rule, suppression, store, counted.recount)
    ordinary = esql_writes(rule, settings.space_id, tools.execution_uuid)
    writer = tools.writer(ordinary, run.cap)
    outcome = Outcome(searched_to=run.window.end)
    early = run.window.start if not compiled.aggregating else run.window.end
    key = rule_key(settings.space_id, rule.rule_id)
    offered: set[str] = set()
    try:
        tools.refresh_alerts()  # the alerts of a run killed a moment ago count too
        try:
            while True:
                result, events = pages.next()
                alerts = rows_to_alerts(
                    result, events, query=compiled.text, aggregating=compiled.aggregating, window=run.window, key=key
                )
                candidates, repeated = once_each(alerts, offered)
                ordinary.duplicates += repeated
                new = writer.new(candidates)
                offered.update(candidate.doc_id for candidate in new)
                lone = counted.add([candidate.item for candidate in new], tools.clock())
                left = writer.offer([Candidate(alert.id, alert) for alert in lone])
                grew = pages.exclude(result, events, [candidate.item for candidate in left])
                if left or ordinary.units + writer.reserved + counted.rows >= run.cap:
                    pages.warn(errors.SUPPRESSION_MAX_SIGNALS_WARNING)
                    outcome.searched_to = early
                    break
                if pages.exhausted(result) or compiled.aggregating or not grew:
                    break
                if tools.should_stop():
                    outcome.searched_to = early
                    pages.warn(stopped_message(early))
                    break
        finally:
            writer.settle_all()
        counted.writer.write(counted.to_write())  # the rows counted are excluded: their groups are written
        outcome.warnings += counted.writer.finish(tools.refresh)
        if tools.refresh:
            writer.refresh()
    finally:
        count_writes(tools.metrics, ordinary)
        count_groups(tools.metrics, counted.writer, pages=pages.pages, search_ms=pages.engine.search_ms)
        tools.metrics.hits = pages.rows
    outcome.warnings += pages.warnings + ordinary.warnings(settings.dead_letter_index)
    outcome.state = pages.state(run)
    return outcome
