"""Alert suppression as Kibana's persistence layer runs it (``alertWithSuppression``, ``suppressAlertsInMemory``,
``executeBulkCreateAlerts``), for the rule types whose would-be alerts each carry their group
(:class:`job.alerts.suppression.Suppression`): threshold rules (a group of events over the threshold) and
new-terms rules (a new term's earliest event). The type finds its would-be alerts; :class:`SuppressingWriter`
takes them a batch at a time (Kibana: one call of the persistence layer):

1. **Duplicates.** A would-be alert whose alert exists is dropped (the writer's dedupe; Kibana's
   ``filterDuplicateAlerts``).
2. **Counted before** (``counted_before``, new terms): a would-be alert at or before its group's *boundary* is
   dropped: the latest ``suppression.end`` among the rule's alerts of the group (open or closed) that reach into
   the window, as it was when this run first met the group (later pages of the run fold into what earlier
   ones wrote). Kibana drops such an alert when the group's open alert ends at or after it; the boundary is
   that rule made to hold for closed alerts and for the alerts this run has already moved. Threshold rules
   leave it to their signal history, which never hands a group's counted events back.
3. **In memory.** Per group the earliest would-be alert stays and counts the others (``docs_count`` + their
   own + 1 each; the latest end).
4. **Fold or create.** The group's open alert (not closed; ``kibana.alert.start`` within the ``duration``, or,
   per rule execution, written by this very run since the window's start) takes the staying alert in: one
   conditional partial update (``docs_count``, ``suppression.end``, ``last_detected``, and ``suppression.start``
   when the open alert is this run's). A group without one gets the staying alert created through the run's
   :class:`job.writing.run_writer.AlertWriter`, which keeps the cap: updates do not count against it, as in
   Kibana. An update refused because the alert changed is followed to its end by
   :meth:`job.writing.suppressed.SuppressionStore.settle`; one refused otherwise is dead-lettered.

The alerts index is refreshed before a batch's reads whenever anything was written since the last refresh
(Kibana writes each batch with ``refresh: wait_for``), so a batch sees what the earlier ones wrote, and the
first sees what a run killed a moment ago wrote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from job.alerts.suppression import (
    OpenAlert,
    Suppression,
    duration_start,
    fold_update,
    is_open,
    suppress_in_memory,
    uncounted,
)
from job.rules.parts import SuppressionDuration
from job.window import Window
from job.writing.bulk import Answer
from job.writing.run_writer import AlertWriter
from job.writing.suppressed import Current, SuppressionStore, Update
from job.writing.writer import Candidate, dead_letter_alone


class Suppressible(Protocol):
    """The item of a would-be alert that a group's alert can take in: it gives the same alert with its group's
    suppression fields."""

    def suppressed(self, suppression: Suppression) -> Any: ...


# What ``translate`` says of a rule whose would-be alerts carry their groups.
TRANSLATE_NOTE: Final = (
    "With alert_suppression, each batch of would-be alerts is folded in memory per group, then into the group's "
    "open alert (a search of the alerts alias by kibana.alert.instance.id, then a conditional partial update); "
    "a group without one gets its alert created."
)

Grouped = tuple[Candidate, Suppression]  # a would-be alert (its item a Suppressible) and its group
End = tuple[Grouped, str]  # how a staying alert ended: one of the four below
ALERTED, LEFT, COUNTED, DEAD_LETTERED = "alerted", "left over at the cap", "counted", "dead-lettered"


@dataclass
class SuppressingWriter:
    """One run's writing of would-be alerts that carry their groups; what it did, for the run's metrics."""

    writer: AlertWriter  # creates the alerts, within the run's cap
    store: SuppressionStore
    window: Window
    duration: SuppressionDuration | None  # None: per rule execution
    counted_before: bool = False
    boundaries: dict[str, datetime | None] = field(default_factory=dict)  # instance id -> as first met
    dirty: bool = True  # something may have been written since the alerts were last refreshed
    groups: int = 0  # groups given an alert or folded into one
    updated: int = 0
    suppressed: int = 0  # would-be alerts counted into another one's alert (Kibana's suppressed alerts)

    def write(self, alerts: Sequence[Grouped]) -> list[Candidate]:
        """Fold or create ``alerts``; the staying alerts the cap left over (their groups' others with them)."""
        if not alerts:
            return []
        self._refresh()
        fresh = {candidate.doc_id for candidate in self.writer.new([candidate for candidate, _ in alerts])}
        pending = [(candidate, suppression) for candidate, suppression in alerts if candidate.doc_id in fresh]
        if self.counted_before and pending:
            self._read_boundaries([suppression.instance for _, suppression in pending])
            pending, counted = uncounted(pending, self.boundaries)
            self.writer.run.duplicates += len(counted)
        kept, folded = suppress_in_memory(pending)
        if not kept:
            return []
        now = self.writer.clock()
        since = duration_start(now, self.duration) if self.duration is not None else self.window.start
        open_alerts = self._open_alerts([suppression.instance for _, suppression in kept], since)
        self.dirty = True
        folds = [
            (pair, Update(alert, fold_update(alert, pair[1], now=now, execution_uuid=self._execution)))
            for pair in kept
            if (alert := open_alerts.get(pair[1].instance)) is not None
        ]
        answers = self.store.update([update for _, update in folds])
        ends = [
            self._settle(pair, update, answer, now, since)
            for (pair, update), answer in zip(folds, answers, strict=True)
        ]
        creates = [pair for pair in kept if pair[1].instance not in open_alerts]
        left = {candidate.doc_id for candidate in self._create(creates)}
        ends += [(pair, ALERTED if pair[0].doc_id not in left else LEFT) for pair in creates]
        alerted = Counter(suppression.instance for _, suppression in folded)
        self.suppressed += sum(alerted[pair[1].instance] for pair, end in ends if end == ALERTED)
        return [pair[0] for pair, end in ends if end == LEFT]

    @property
    def _execution(self) -> str:
        return self.writer.run.execution_uuid

    def _refresh(self) -> None:
        if self.dirty:
            self.store.refresh()
            self.dirty = False

    def _read_boundaries(self, instances: Sequence[str]) -> None:
        """Read the boundaries of the groups this run meets for the first time (before it writes any of them)."""
        unmet = list(dict.fromkeys(instance for instance in instances if instance not in self.boundaries))
        if unmet:
            found = self.store.boundaries(unmet, self.window)
            self.boundaries.update((instance, found.get(instance)) for instance in unmet)

    def _open(self, alert: OpenAlert) -> bool:
        """Per rule execution, only this run's alerts take others in."""
        return self.duration is not None or alert.execution_uuid == self._execution

    def _open_alerts(self, instances: Sequence[str], since: datetime) -> dict[str, OpenAlert]:
        found = self.store.open_alerts(instances, since)
        return {instance: alert for instance, alert in found.items() if self._open(alert)}

    def _settle(self, pair: Grouped, update: Update, answer: Answer, now: datetime, since: datetime) -> End:
        """Follow one fold to its end: the group's alert took it in (or, the open alert having closed meanwhile,
        it got one of its own), it was left over at the cap, found counted, or dead-lettered."""
        candidate, suppression = pair
        read = update.alert
        end = ALERTED

        def again(current: Current | None) -> Update | None:
            nonlocal end
            if current is None or not is_open(current.source, since) or not self._open(current.alert):
                end = LEFT if self._create([pair]) else ALERTED  # closed, gone or expired meanwhile: its own alert
                return None
            moved = current.alert.end
            if self.counted_before and moved is not None and moved != read.end and moved >= suppression.end:
                self.writer.run.duplicates += 1 + suppression.docs_count  # another run counted them meanwhile
                end = COUNTED
                return None
            return Update(
                current.alert, fold_update(current.alert, suppression, now=now, execution_uuid=self._execution)
            )

        settled = self.store.settle(update, answer, again)
        if settled.applied is not None:
            self.groups += 1
            self.updated += 1
            self.suppressed += 1
        elif settled.refused is not None:
            refused = settled.refused
            reason = f"HTTP {refused.status} {refused.error_type}: {refused.reason}"
            writer = self.writer
            item = candidate.item.suppressed(suppression)
            dead_letter_alone(
                writer.es, writer.policy, writer.settings, writer.run, item, reason, writer.clock, writer.sink
            )
            end = DEAD_LETTERED
        return pair, end

    def _create(self, pairs: Sequence[Grouped]) -> list[Candidate]:
        """Create the alerts of groups without an open alert, within the cap; the ones left over."""
        if not pairs:
            return []
        writer = self.writer
        before = writer.run.units
        try:
            left = writer.offer([Candidate(candidate.doc_id, candidate.item.suppressed(s)) for candidate, s in pairs])
        finally:
            writer.settle_all()
        self.groups += writer.run.units - before
        return left
