"""Writing the groups of alert suppression, whatever the rule type found them with: one alert per group (the
alert of its earliest event plus the suppression fields, created under a deterministic id) or, with a
``duration``, the group folded into the open alert that already holds it.

A rule type finds its groups its own way (query rules with an aggregation, EQL event queries in memory) and
counts each group only after its *boundary*: the ``suppression.end`` of the latest alert that counted it
(:meth:`job.writing.suppressed.SuppressionStore.boundaries`). :class:`GroupWriter` writes them; when an
update is refused because the alert changed meanwhile (409), it reads the alert again and asks the type to
count the group again after the alert's new end (``recount``), never forcing the update. docs/rules.md
("Every event counted once") gives the whole argument and its limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.alerts.build import RunAlerts
from job.alerts.suppression import (
    Group,
    Terms,
    duration_start,
    instance_id,
    is_open,
    suppressed_alert_id,
    suppression_fields,
    update_document,
)
from job.client.retry import RetryPolicy
from job.config.settings import Settings
from job.rules.model import Rule
from job.rules.parts import AlertSuppression
from job.text.jsoncodec import document_bytes
from job.writing.bulk import AlertWrite, Answer
from job.writing.sink import ELASTICSEARCH, Sink
from job.writing.suppressed import Current, SuppressionStore, Update
from job.writing.writer import AlertMaker, Candidate, RunWrites, build, dead_letter_alone, dedupe, send

# A key of a group's event naming the id of the group's alert, for a type that names its alerts otherwise than
# query rules do (ES|QL: after the group's earliest row).
ALERT_ID_KEY = "_alert_id"
# Counts a group again after its (new) boundary: the group's events not counted yet, or None when it has none.
Recount = Callable[[Terms], "Group | None"]


class GroupAlerts:
    """The alert of a group: the alert of its earliest event, plus the suppression fields, under the group's id."""

    def __init__(self, rule: Rule, alerts: RunAlerts, space_id: str) -> None:
        self.rule = rule
        self.alerts = alerts
        self.space_id = space_id

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        group: Group = item
        alert = self.alerts.build(group.event, now=now)
        alert.update(suppression_fields(group, self.rule.rule_id, self.space_id))
        alert["kibana.alert.uuid"] = doc_id
        event = group.event
        return [AlertWrite(doc_id, document_bytes(alert), str(event["_index"]), str(event["_id"]))]

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        """A group is dead-lettered under its earliest event."""
        group: Group = item
        terms = ", ".join(f"{name}={value!r}" for name, value in group.terms)
        why = f"the alert of the group {terms} ({group.count} events): {reason}"
        return str(group.event["_index"]), str(group.event["_id"]), why


def group_writes(rule: Rule, space_id: str, execution_uuid: str) -> RunWrites:
    """The writing of a suppressed run: one alert per group."""

    def make(now: datetime) -> AlertMaker:
        alerts = RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id)
        return GroupAlerts(rule, alerts, space_id)

    return RunWrites(rule.rule_id, rule.name, space_id, execution_uuid, make)


@dataclass
class GroupWriter:
    """One suppressed run's writing of its groups, and what it did (for the run's metrics)."""

    es: Elasticsearch
    policy: RetryPolicy
    settings: Settings
    clock: Callable[[], datetime]
    rule: Rule
    suppression: AlertSuppression
    store: SuppressionStore
    writes: RunWrites
    recount: Recount
    sink: Sink = ELASTICSEARCH  # where its alerts, dead letters and updates go (preview: a collector)
    boundaries: dict[str, datetime] = field(default_factory=dict)  # instance id -> counted up to
    hits: int = 0  # events counted into the groups written
    groups: int = 0  # groups this run gave an alert or folded into one
    updated: int = 0
    suppressed_docs: int = 0

    def instance(self, terms: Terms) -> str:
        return instance_id(terms, self.rule.rule_id, self.settings.space_id)

    def write(self, groups: Sequence[Group]) -> None:
        """Fold each group into its open alert (with a duration) or give it an alert of its own."""
        self.hits += sum(group.count for group in groups)
        now = self.clock()
        duration = self.suppression.duration
        if duration is None:
            self.create(groups)
            return
        since = duration_start(now, duration)
        open_alerts = self.store.open_alerts([self.instance(group.terms) for group in groups], since)
        pairs = [(group, open_alerts.get(self.instance(group.terms))) for group in groups]
        self.create([group for group, alert in pairs if alert is None])
        updates = [(group, Update(alert, update_document(alert, group, now))) for group, alert in pairs if alert]
        answers = self.store.update([update for _, update in updates])
        for (group, update), answer in zip(updates, answers, strict=True):
            self.settle(group, update, answer, now, since)

    def settle(self, group: Group, update: Update, answer: Answer, now: datetime, since: datetime) -> None:
        """Account for one update's answer. A changed (409), busy (429) or vanished (404) alert is read again,
        the group is counted again after the alert's end, and the update retried or a new alert written
        (:meth:`SuppressionStore.settle`, which also tells a 409 to a retried request that had been applied)."""
        latest = group

        def again(current: Current | None) -> Update | None:
            nonlocal latest
            key = self.instance(latest.terms)
            if current is not None and current.alert.end is not None:
                self.boundaries[key] = max(current.alert.end, self.boundaries.get(key, current.alert.end))
            recounted = self.recount(latest.terms)
            if recounted is None:
                return None  # whoever changed the alert counted these events already
            if current is None or not is_open(current.source, since):
                self.create([recounted])
                return None
            latest = recounted
            return Update(current.alert, update_document(current.alert, recounted, now))

        settled = self.store.settle(update, answer, again)
        if settled.refused is not None:
            refused = settled.refused
            self.dead_letter(latest, f"HTTP {refused.status} {refused.error_type}: {refused.reason}")
        elif settled.applied is not None:
            self.folded(latest)

    def alert_id(self, group: Group) -> str:
        """The id of a group's new alert: the one under :data:`ALERT_ID_KEY` in its event, else Kibana's for
        query rules' groups."""
        explicit = group.event.get(ALERT_ID_KEY)
        if isinstance(explicit, str):
            return explicit
        return suppressed_alert_id(group, self.rule.rule_id, self.settings.space_id)

    def folded(self, group: Group) -> None:
        self.groups += 1
        self.updated += 1
        self.suppressed_docs += group.count

    def create(self, groups: Sequence[Group]) -> None:
        """One new alert per group; an alert that exists already is left as it is (Kibana's duplicate check),
        and only the groups whose alert this run created are counted."""
        if not groups:
            return
        candidates = [Candidate(self.alert_id(group), group) for group in groups]
        [new] = dedupe(self.es, self.policy, self.settings, [(self.writes, candidates)], self.sink)
        built = build(self.writes, new, self.clock())
        try:
            send(self.es, self.policy, self.settings, [built], self.clock, self.sink)
        finally:
            built.merge()
        by_id = {candidate.doc_id: candidate.item for candidate in new}
        for doc_id in built.created:
            self.groups += 1
            self.suppressed_docs += by_id[doc_id].count - 1

    def dead_letter(self, group: Group, reason: str) -> None:
        dead_letter_alone(self.es, self.policy, self.settings, self.writes, group, reason, self.clock, self.sink)

    def finish(self, refresh: bool) -> list[str]:
        """Make the alerts and dead letters visible to the next run (``refresh``); the dead letters' warnings."""
        settings = self.settings
        indices = [settings.alerts_index] if self.groups or self.writes.stats.duplicates else []
        indices += [settings.dead_letter_index] if self.writes.dead_lettered else []
        if indices and refresh:
            self.policy.call(lambda: self.es.indices.refresh(index=indices))
        return self.writes.warnings(settings.dead_letter_index)
