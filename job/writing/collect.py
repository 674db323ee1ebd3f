"""A sink that writes nothing: ``preview``'s runs hand it what ``run`` would write, and it keeps it.

The writer dedupes against the alerts that exist (a read) and builds every document exactly as a run does; the
collector then takes the place of Elasticsearch:

* **what exists**: the dedupe's search reads the alerts and dead letters that exist, and the collector adds
  the would-be alerts and dead letters it took already (an event found again by the next window's look-back
  is a duplicate, as in a backfill, whose earlier window wrote its alert).
* **alerts**: each would-be alert is handed on (``emit``) as the bytes ``run`` would send. A suppressed alert
  (it carries ``kibana.alert.instance.id``) may still take in events from later windows, so it is held and
  handed on by :meth:`Collector.finish`.
* **dead letters**: kept, once per id.
* **suppressed alerts** (:class:`PreviewSuppression`): the alerts that exist are read as a run reads them, and
  the would-be alerts held here are read as if they had been written; an update of a held alert changes it
  here, an update of an existing alert is noted in :attr:`Collector.folds` (the fields it would change)
  instead of being sent. Nothing is refreshed.

Thread-safe: a writer with requests in flight calls it from its threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from job.alerts.suppression import ALERT_START, DOCS_COUNT, END, INSTANCE_ID, WORKFLOW_STATUS, OpenAlert
from job.client.retry import RetryPolicy
from job.text.jsoncodec import document_bytes
from job.window import Window, parse_timestamp
from job.writing.bulk import AlertWrite, Answer, Created, WriteStats, existing_ids
from job.writing.deadletter import DeadLetter
from job.writing.suppressed import Current, SuppressionStore, Update

# The index an alert held by the collector is "read" from.
COLLECTED = "(preview)"
# emit(alert id, document as run would send it, the document decoded)
Emit = Callable[[str, bytes, Mapping[str, Any]], None]


def decoded(body: bytes) -> dict[str, Any]:
    """A built alert document as an object (``json`` where ``orjson`` refuses: lone surrogates, big integers)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = json.loads(body)
    return value if isinstance(value, dict) else {}


def _moment(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class Collector:
    """Keeps what a preview's runs of one rule would write (see the module's docstring)."""

    emit: Emit
    letters: dict[str, DeadLetter] = field(default_factory=dict)  # by dead-letter id
    # Existing alerts that suppressed groups would fold into: alert id -> the fields the updates would set.
    folds: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: int = 0  # would-be alerts taken
    repeats: int = 0  # would-be alerts found again by a later window (a duplicate of this preview's own)
    existed: set[str] = field(default_factory=set)  # would-be alerts that exist already
    lettered_before: set[str] = field(default_factory=set)  # would-be alerts whose event is dead-lettered already
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # suppressed would-be alerts, by id
    _ids: set[str] = field(default_factory=set)
    _instances: dict[str, str] = field(default_factory=dict)  # existing alert id -> its instance id
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- the sink --------------------------------------------------------------------------------------

    def existing(
        self, es: Elasticsearch, policy: RetryPolicy, alerts: str, dead_letters: str, ids: Sequence[str]
    ) -> dict[str, set[str]]:
        """The alerts and dead letters that exist (read), and those this preview took already, as a run would
        find them had they been written."""
        found = existing_ids(es, policy, [alerts, dead_letters], ids)
        with self._lock:
            for doc_id, where in found.items():
                (self.lettered_before if where == {dead_letters} else self.existed).add(doc_id)
            for doc_id in ids:
                if doc_id in found:
                    continue
                if doc_id in self._ids:
                    found[doc_id] = {COLLECTED}
                    self.repeats += 1
                elif doc_id in self.letters:
                    found[doc_id] = {dead_letters}
        return found

    def create(
        self,
        es: Elasticsearch,
        policy: RetryPolicy,
        alias: str,
        writes: Sequence[AlertWrite],
        stats: WriteStats,
        stats_of: Callable[[AlertWrite], WriteStats],
    ) -> Created:
        result = Created()
        with self._lock:
            for write in writes:
                if write.doc_id in self._ids:  # a second create of one id (the dedupe found it: never here)
                    stats_of(write).duplicates += 1
                    continue
                self._ids.add(write.doc_id)
                stats_of(write).created += 1
                result.created.append(write)
                self.alerts += 1
                source = decoded(write.body)
                if INSTANCE_ID in source:
                    self.held[write.doc_id] = source
                else:
                    self.emit(write.doc_id, write.body, source)
        return result

    def dead_letter(self, es: Elasticsearch, policy: RetryPolicy, index: str, letters: Sequence[DeadLetter]) -> None:
        with self._lock:
            for letter in letters:
                self.letters.setdefault(letter.id, letter)

    def suppression_store(
        self, es: Elasticsearch, policy: RetryPolicy, alias: str, rule_id: str, space_id: str
    ) -> SuppressionStore:
        return PreviewSuppression(es, policy, alias, rule_id, space_id, collector=self)

    def refresh(self, es: Elasticsearch, policy: RetryPolicy, alias: str) -> None:
        """Nothing to make searchable: the would-be alerts are here (and a preview may not refresh)."""

    def finish(self) -> None:
        """Hand on the held (suppressed) alerts, as the runs left them."""
        with self._lock:
            held, self.held = self.held, {}
            for doc_id, source in held.items():
                self.emit(doc_id, document_bytes(source), source)

    # -- what the suppression store reads and changes --------------------------------------------------

    def held_ends(self, instance_ids: Sequence[str], since: datetime) -> dict[str, datetime]:
        """Per group, the latest ``suppression.end`` at or after ``since`` of the held alerts and of the
        existing alerts an update moved."""
        wanted = set(instance_ids)
        found: dict[str, datetime] = {}
        with self._lock:
            sources = [
                *self.held.values(),
                *({**fold, INSTANCE_ID: self._instances.get(key)} for key, fold in self.folds.items()),
            ]
            for source in sources:
                instance, end = source.get(INSTANCE_ID), _moment(source.get(END))
                if instance in wanted and end is not None and end >= since:
                    found[str(instance)] = max(end, found.get(str(instance), end))
        return found

    def held_open(self, instance_ids: Sequence[str], since: datetime) -> dict[str, tuple[datetime, OpenAlert]]:
        """Per group, the latest held alert that is open and started at or after ``since``."""
        wanted = set(instance_ids)
        found: dict[str, tuple[datetime, OpenAlert]] = {}
        with self._lock:
            for doc_id, source in self.held.items():
                instance, start = source.get(INSTANCE_ID), _moment(source.get(ALERT_START))
                if instance not in wanted or start is None or start < since:
                    continue
                if source.get(WORKFLOW_STATUS) == "closed":
                    continue
                if str(instance) not in found or found[str(instance)][0] < start:
                    found[str(instance)] = (start, self._open(doc_id, source))
        return found

    def _open(self, doc_id: str, source: Mapping[str, Any]) -> OpenAlert:
        return OpenAlert(COLLECTED, doc_id, 0, 0, _moment(source.get(END)), _count(source.get(DOCS_COUNT)))

    def held_current(self, doc_id: str) -> Current | None:
        with self._lock:
            source = self.held.get(doc_id)
            return None if source is None else Current(self._open(doc_id, source), dict(source))

    def as_updated(self, alert: OpenAlert, instance: str | None = None) -> OpenAlert:
        """An existing alert as read, with what this preview's updates changed in it."""
        with self._lock:
            if instance is not None:
                self._instances[alert.doc_id] = instance
            fold = self.folds.get(alert.doc_id)
        if fold is None:
            return alert
        end = _moment(fold.get(END)) or alert.end
        return OpenAlert(alert.index, alert.doc_id, alert.seq_no, alert.primary_term, end, _count(fold.get(DOCS_COUNT)))

    def apply(self, update: Update) -> Answer:
        """An update, applied to the held alert it names or noted for the existing alert it names."""
        with self._lock:
            alert = update.alert
            if alert.index == COLLECTED:
                source = self.held.get(alert.doc_id)
                if source is None:
                    return Answer(404, "document_missing_exception", f"[{alert.doc_id}]: document missing")
                source.update(update.document)
            else:
                self.folds.setdefault(alert.doc_id, {}).update(update.document)
        return Answer(200)


@dataclass
class PreviewSuppression(SuppressionStore):
    """The suppressed alerts of one rule as a run would find them had the preview's earlier windows been
    written: the existing ones (read) and the collector's; updates go to the collector."""

    collector: Collector = field(default_factory=lambda: Collector(lambda *_: None))

    def refresh(self) -> None:
        """Nothing to refresh: preview writes nothing, and may not refresh (read privileges only)."""

    def boundaries(self, instance_ids: Sequence[str], window: Window) -> dict[str, datetime]:
        found = super().boundaries(instance_ids, window)
        for instance, end in self.collector.held_ends(instance_ids, window.start).items():
            found[instance] = max(end, found.get(instance, end))
        return found

    def open_alerts(self, instance_ids: Sequence[str], since: datetime) -> dict[str, OpenAlert]:
        found = {
            instance: self.collector.as_updated(alert, instance)
            for instance, alert in super().open_alerts(instance_ids, since).items()
        }
        # A held alert started during this preview, after every existing one: it is the latest.
        found.update(
            (instance, alert) for instance, (_, alert) in self.collector.held_open(instance_ids, since).items()
        )
        return found

    def current(self, alert: OpenAlert) -> Current | None:
        if alert.index == COLLECTED:
            return self.collector.held_current(alert.doc_id)
        current = super().current(alert)
        if current is None:
            return None
        fold = self.collector.folds.get(alert.doc_id, {})
        return Current(self.collector.as_updated(current.alert), {**current.source, **fold})

    def update(self, updates: Sequence[Update]) -> list[Answer]:
        return [self.collector.apply(update) for update in updates]
