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

from elasticsearch import Elasticsearch

from job.alerts.build import build_alert
from job.errors import JobError
from job.execlog.metrics import RunMetrics
from job.jsoncodec import document_bytes
from job.lists.plan import ExceptionPlan
from job.retry import RetryPolicy
from job.rules.model import AlertSuppression, Rule
from job.ruletypes.query.execute import MAX_ALERTS_WARNING, Outcome, dead_letter_message, execute, stopped_message
from job.ruletypes.query.groups import (
    AGGREGATION,
    Group,
    OpenAlert,
    Terms,
    bucket_aggregations,
    bucket_terms,
    duration_start,
    first_timestamp,
    grouping_aggregation,
    instance_id,
    is_open,
    missing_fields_filter,
    parse_group,
    remaining_clause,
    resume_point,
    suppressed_alert_id,
    suppression_fields,
    update_document,
)
from job.run.plan import RunPlan, SearchPlan
from job.search.clauses import TimestampFields, timestamp_fields
from job.settings import Settings
from job.window import Window
from job.writing import deadletter
from job.writing.bulk import AlertWrite, WriteStats, bulk_create, existing_ids
from job.writing.deadletter import DeadLetter, one_line
from job.writing.suppressed import SuppressionStore, Update

log = logging.getLogger(__name__)

RECOUNT_CHUNK = 100  # groups counted again per request
TAIL_PAGE = 10_000  # groups per page when only their first timestamps are needed
CONFLICT_ATTEMPTS = 3
DEAD_LETTER_SAMPLES = 3
# The metrics job.ruletypes.query.execute.execute fills: those of the ordinary alerts of a doNotSuppress run, to which
# the groups' own are added.
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


class SuppressionConflict(JobError):
    """An alert kept changing under this run's updates; the run fails and the next one counts again."""


@dataclass
class _Run:
    """One suppressed execution in progress: what it needs and what it has done so far."""

    es: Elasticsearch
    policy: RetryPolicy
    settings: Settings
    rule: Rule
    suppression: AlertSuppression
    window: Window
    query: dict[str, Any]
    execution_uuid: str
    clock: Callable[[], datetime]
    store: SuppressionStore
    fields: TimestampFields = field(init=False)
    boundaries: dict[str, datetime] = field(default_factory=dict)  # instance id -> counted up to
    writes: WriteStats = field(default_factory=WriteStats)
    search_ms: float = 0.0
    pages: int = 0
    hits: int = 0
    groups: int = 0  # groups this run gave an alert or folded into one
    updated: int = 0
    suppressed_docs: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letter_samples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fields = timestamp_fields(self.rule)

    def instance(self, terms: Terms) -> str:
        return instance_id(terms, self.rule.rule_id, self.settings.space_id)

    def search(self, aggs: dict[str, Any]) -> dict[str, Any]:
        """A ``size: 0`` search of the rule's indices with the run's query and these aggregations."""
        started = time.monotonic()
        try:
            response = self.policy.call(
                lambda: self.es.search(
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
        self.boundaries.update(self.store.boundaries([self.instance(group.terms) for group in groups], self.window))
        known = [group.terms for group in groups if self.instance(group.terms) in self.boundaries]
        again = dict(zip(known, self.recount(known), strict=True))
        result = [again.get(group.terms, group) for group in groups]
        return [group for group in result if group is not None]

    def recount(self, groups: Sequence[Terms]) -> list[Group | None]:
        """Each group's events after its boundary (None: it has none)."""
        found: list[Group | None] = []
        for start in range(0, len(groups), RECOUNT_CHUNK):
            chunk = groups[start : start + RECOUNT_CHUNK]
            filters = {
                str(i): remaining_clause(terms, self.fields, self.window, self.boundaries.get(self.instance(terms)))
                for i, terms in enumerate(chunk)
            }
            aggregation = {"filters": {"filters": filters}, "aggs": bucket_aggregations(self.fields)}
            buckets = self.search({"remaining": aggregation})["aggregations"]["remaining"]["buckets"]
            found += [parse_group(buckets[str(i)], terms, self.window) for i, terms in enumerate(chunk)]
        return found

    def write(self, groups: Sequence[Group]) -> None:
        """Fold each group into its open alert (with a duration) or give it an alert of its own."""
        self.hits += sum(group.count for group in groups)
        now = self.clock()
        duration = self.suppression.duration
        if duration is None:
            self.create(groups, now)
            return
        since = duration_start(now, duration)
        open_alerts = self.store.open_alerts([self.instance(group.terms) for group in groups], since)
        pairs = [(group, open_alerts.get(self.instance(group.terms))) for group in groups]
        self.create([group for group, alert in pairs if alert is None], now)
        updates = [(group, alert) for group, alert in pairs if alert is not None]
        answers = self.store.update([Update(alert, update_document(alert, group, now)) for group, alert in updates])
        for (group, alert), (status, reason) in zip(updates, answers, strict=True):
            self.settle(group, alert, status, reason, now, since)

    def settle(self, group: Group, alert: OpenAlert, status: int, reason: str, now: datetime, since: datetime) -> None:
        """Account for one update's answer. A changed (409), busy (429) or vanished (404) alert is read again,
        the group is counted again after the alert's end, and the update retried or a new alert written."""
        for _ in range(CONFLICT_ATTEMPTS):
            if status == 200:
                self.groups += 1
                self.updated += 1
                self.suppressed_docs += group.count
                return
            if status not in (404, 409, 429):
                self.dead_letter([self.letter(group, "index", f"HTTP {status} {reason}")])
                return
            current = self.store.current(alert) if status != 404 else None
            key = self.instance(group.terms)
            if current is not None and current.alert.end is not None:
                self.boundaries[key] = max(current.alert.end, self.boundaries.get(key, current.alert.end))
            [again] = self.recount([group.terms])
            if again is None:
                return  # whoever changed the alert counted these events already
            if current is None or not is_open(current.source, since):
                self.create([again], now)
                return
            group, alert = again, current.alert
            status, reason = self.store.update_one(Update(alert, update_document(alert, group, now)))
        raise SuppressionConflict(f"alert {alert.doc_id} changed under {CONFLICT_ATTEMPTS} updates of this run")

    def create(self, groups: Sequence[Group], now: datetime) -> None:
        """One new alert per group; an alert that exists already is left as it is (Kibana's duplicate check)."""
        space_id = self.settings.space_id
        ids = [suppressed_alert_id(group, self.rule.rule_id, space_id) for group in groups]
        found = existing_ids(self.es, self.policy, [self.settings.alerts_index], ids) if ids else {}
        writes: list[AlertWrite] = []
        by_id: dict[str, Group] = {}
        letters: list[DeadLetter] = []
        for group, doc_id in zip(groups, ids, strict=True):
            if doc_id in found:
                self.duplicates += 1
                continue
            try:
                alert = build_alert(
                    self.rule, group.event, now=now, execution_uuid=self.execution_uuid, space_id=space_id
                )
                alert.update(suppression_fields(group, self.rule.rule_id, space_id))
                alert["kibana.alert.uuid"] = doc_id
                event = group.event
                writes.append(AlertWrite(doc_id, document_bytes(alert), str(event["_index"]), str(event["_id"])))
                by_id[doc_id] = group
            except Exception as exc:  # noqa: BLE001 - one group's failure is that group's, never the page's
                letters.append(self.letter(group, "build", f"{type(exc).__name__}: {exc}"))
        answers = bulk_create(self.es, self.policy, self.settings.alerts_index, writes, self.writes)
        refused = {item.write.doc_id: item for item in answers}
        letters += [self.letter(by_id[doc_id], "index", item.reason) for doc_id, item in refused.items()]
        for doc_id, group in by_id.items():
            if doc_id not in refused:
                self.groups += 1
                self.suppressed_docs += group.count - 1
        self.dead_letter(letters)

    def letter(self, group: Group, stage: deadletter.Stage, reason: str) -> DeadLetter:
        """A dead-letter entry for a group, under its earliest event."""
        terms = ", ".join(f"{name}={value!r}" for name, value in group.terms)
        return DeadLetter(
            event_index=str(group.event["_index"]),
            event_id=str(group.event["_id"]),
            rule_id=self.rule.rule_id,
            rule_name=self.rule.name,
            space_id=self.settings.space_id,
            execution_uuid=self.execution_uuid,
            stage=stage,
            reason=f"the alert of the group {terms} ({group.count} events): {reason}",
            time=self.clock(),
        )

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        index = self.settings.dead_letter_index
        deadletter.write(self.es, self.policy, index, letters)
        self.dead_lettered += len(letters)
        for letter in letters[: DEAD_LETTER_SAMPLES - len(self.dead_letter_samples)]:
            self.dead_letter_samples.append(one_line(f"{letter.event_index}/{letter.event_id}: {letter.reason}", 300))
        log.error("rule %s: %d groups dead-lettered in %s", self.rule.rule_id, len(letters), index)

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

    def group_and_write(self, cap: int, outcome: Outcome, should_stop: Callable[[], bool]) -> int | None:
        """Page through the groups, writing up to ``cap`` of them: how many, or None when groups were left
        over (the cap was reached, or the run was asked to stop); ``outcome`` then says where to resume."""
        handled, after = 0, None
        while True:
            size = min(self.settings.page_size, cap + 1 - handled)
            buckets, after = self.page(size, after)
            groups = self.groups_of(buckets)
            room = cap - handled
            self.write(groups[:room])
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
        indices = [self.settings.alerts_index] if self.groups or self.writes.duplicates else []
        indices += [self.settings.dead_letter_index] if self.dead_lettered else []
        if indices:
            self.policy.call(lambda: self.es.indices.refresh(index=indices))
        if self.dead_lettered:
            index = self.settings.dead_letter_index
            outcome.warnings.append(dead_letter_message(self.dead_lettered, index, self.dead_letter_samples))

    def metrics_into(self, metrics: RunMetrics) -> None:
        metrics.pages += self.pages
        metrics.hits += self.hits
        metrics.total_search_duration_ms += round(self.search_ms + self.store.search_ms)
        metrics.total_indexing_duration_ms += round(self.writes.indexing_ms + self.store.indexing_ms)
        metrics.alerts_created += self.writes.created
        metrics.alerts_updated = self.updated
        metrics.duplicates_skipped += self.duplicates + self.writes.duplicates
        metrics.errors += self.writes.errors
        metrics.dead_lettered += self.dead_lettered
        metrics.suppression_groups = self.groups
        metrics.suppressed_docs = self.suppressed_docs


def execute_suppressed(
    es: Elasticsearch,
    policy: RetryPolicy,
    settings: Settings,
    rule: Rule,
    plan: RunPlan,
    search: SearchPlan,
    *,
    execution_uuid: str,
    clock: Callable[[], datetime],
    metrics: RunMetrics,
    should_stop: Callable[[], bool] = lambda: False,
    page_filter: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda hits: hits,
) -> Outcome:
    """:func:`job.ruletypes.query.execute.execute` for a rule with ``alert_suppression``: the same arguments
    and outcome.

    At most ``plan.cap`` groups get or update an alert; a group beyond means the cap was reached (Kibana's
    warning) and the next run starts at the first timestamp of the groups left over. With ``doNotSuppress``
    the events lacking a ``group_by`` field get ordinary alerts (:func:`execute`) within what the groups
    left of the cap. ``should_stop`` is asked after each page of groups. ``page_filter`` (exception items of
    large value lists) cannot apply to groups, only to those ordinary alerts; Kibana's warning says so.
    """
    suppression = rule.alert_suppression
    if suppression is None or not suppression.group_by:
        raise ValueError(f"rule {rule.rule_id} has no alert_suppression.group_by")
    if search.query is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=plan.window.end)
    store = SuppressionStore(es, policy, settings.alerts_index, rule.rule_id, settings.space_id)
    run = _Run(es, policy, settings, rule, suppression, plan.window, search.query, execution_uuid, clock, store)
    # Kibana's warning for the exception items it cannot apply to an aggregation.
    outcome = Outcome(plan.window.end, ExceptionPlan(not_applied=search.exceptions.post_filter).warnings)
    ungrouped = RunMetrics()
    try:
        store.refresh()
        handled = run.group_and_write(plan.cap, outcome, should_stop)
        run.finish(outcome)
        if handled is not None and handled < plan.cap and not suppression.suppresses_missing:
            lacking = {"bool": {"filter": [search.query, missing_fields_filter(suppression.group_by)]}}
            more = execute(
                es,
                policy,
                settings,
                rule,
                dataclasses.replace(plan, cap=plan.cap - handled),
                dataclasses.replace(search, query=lacking),
                execution_uuid=execution_uuid,
                clock=clock,
                metrics=ungrouped,
                should_stop=should_stop,
                page_filter=page_filter,
            )
            outcome.searched_to = min(outcome.searched_to, more.searched_to)
            outcome.warnings += [warning for warning in more.warnings if warning not in outcome.warnings]
    finally:
        for name in EXECUTE_COUNTS:
            setattr(metrics, name, getattr(ungrouped, name))
        run.metrics_into(metrics)
    return outcome
