"""The shared writer: would-be alerts in; alerts, dead letters and counts out.

Every rule type hands its would-be alerts to the writer as :class:`Candidate` s (the alert id, and the item
its :class:`AlertMaker` builds the alert from: a search hit, a group, a sequence). Whatever the type, the
writer does one thing in one order:

1. **dedupe**: one ``ids`` search over the alerts alias and the dead-letter index; a candidate whose alert
   exists is a duplicate, one whose event was dead-lettered is left to ``deadletter retry``;
2. **build**: each candidate's documents built and serialized on its own; one that raises is dead-lettered
   (``stage: build``) and the others go on;
3. **bulk create** (:func:`job.writing.bulk.bulk_create`): 409 a duplicate (or this run's own retried
   write), 429 retried per item, any other refusal dead-lettered (``stage: index``);
4. **dead letter** what could not become an alert, in one request; only if that fails does the run fail
   (its events are then searched again);
5. **count** into the run's :class:`RunWrites`.

Steps 1, 3 and 4 (and the reads and updates of suppressed alerts) go through a :class:`job.writing.sink.Sink`:
Elasticsearch (:data:`job.writing.sink.ELASTICSEARCH`, what every run uses), or one that keeps the documents
instead of sending them (``preview``, :mod:`job.writing.collect`): the same candidates, deduped and built the
same way.

A *unit* is what the cap counts: one candidate (a sequence of several documents is one unit, created when
its first document is). A unit of several documents names the ids of the others (``more_ids``): it counts as
a duplicate only when every one of its documents exists, so a unit a killed run wrote in part is completed by
the next run (the documents that exist answer 409), never left half written.

:class:`job.writing.run_writer.AlertWriter` is one run's writer: it keeps the cap exact while requests are in
flight; :mod:`job.run.small_runs` runs the same steps for many runs at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from elasticsearch import Elasticsearch

from job.alerts.build import RunAlerts
from job.alerts.ids import alert_id
from job.client.retry import RetryPolicy
from job.config.settings import Settings
from job.rules.model import Rule
from job.text.redact import short_line
from job.writing.bulk import AlertWrite, WriteStats
from job.writing.deadletter import DeadLetter, Stage
from job.writing.sink import ELASTICSEARCH, Sink

log = logging.getLogger(__name__)

MAX_ALERTS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."
# Kibana's words when a suppressing rule of a type other than query reaches its cap (EQL event queries here).
MAX_ALERTS_SUPPRESSED_WARNING = (
    "This rule reached the maximum alert limit for the rule execution. Some alerts were not created or suppressed."
)
DEAD_LETTER_SAMPLES = 3
EXECUTION_UUID = "kibana.alert.rule.execution.uuid"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A would-be alert: its id (what the dedupe looks for, and what the cap counts) and what it is built from;
    ``more_ids``: the ids of its other documents, when it has several (a sequence's building blocks)."""

    doc_id: str
    item: Any
    more_ids: tuple[str, ...] = ()


class AlertMaker(Protocol):
    """How one run's candidates become documents (each rule type brings its own)."""

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        """The alert documents of one candidate, the one with ``doc_id`` first; raises if they cannot be built."""
        ...

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        """The event a dead-letter entry for ``item`` is filed under (index, id), and the entry's reason."""
        ...


class EventAlerts:
    """One alert per event (query rules, EQL event queries): the candidate's item is a search hit."""

    def __init__(self, alerts: RunAlerts) -> None:
        self.alerts = alerts

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        return [AlertWrite(doc_id, self.alerts.body(item, now=now), str(item["_index"]), str(item["_id"]))]

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        return str(item["_index"]), str(item["_id"]), reason


def dead_letter_message(count: int, index: str, samples: Sequence[str]) -> str:
    return f"{count} events could not become alerts and were dead-lettered in {index}: " + "; ".join(samples)


@dataclass
class RunWrites:
    """One run's writing: whose alerts, how they are built (``make``, called once, at the first write, with
    that moment), and what was done so far."""

    rule_id: str
    rule_name: str
    space_id: str
    execution_uuid: str
    make: Callable[[datetime], AlertMaker]
    stats: WriteStats = field(default_factory=WriteStats)
    units: int = 0  # candidates created (what the cap counts)
    duplicates: int = 0  # candidates whose alert existed before this run wrote it
    dead_lettered: int = 0
    dead_letters_skipped: int = 0
    samples: list[str] = field(default_factory=list)
    _maker: AlertMaker | None = None

    def maker(self, now: datetime) -> AlertMaker:
        if self._maker is None:
            self._maker = self.make(now)
        return self._maker

    def letter(self, item: Any, stage: Stage, reason: str, time: datetime) -> DeadLetter:
        index, doc_id, why = self.maker(time).dead_letter(item, reason)
        return DeadLetter(
            event_index=index,
            event_id=doc_id,
            rule_id=self.rule_id,
            rule_name=self.rule_name,
            space_id=self.space_id,
            execution_uuid=self.execution_uuid,
            stage=stage,
            reason=why,
            time=time,
        )

    def lettered(self, letters: Sequence[DeadLetter]) -> None:
        """Count dead letters that were written, and keep the first as samples for the run's warning."""
        self.dead_lettered += len(letters)
        for letter in letters[: max(0, DEAD_LETTER_SAMPLES - len(self.samples))]:
            self.samples.append(short_line(f"{letter.event_index}/{letter.event_id}: {letter.reason}", 300))

    def warnings(self, index: str) -> list[str]:
        return [dead_letter_message(self.dead_lettered, index, self.samples)] if self.dead_lettered else []


def event_candidates(rule_id: str, space_id: str, hits: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The would-be alerts of search hits: one per event, with its deterministic id."""
    return [Candidate(alert_id(str(hit["_index"]), str(hit["_id"]), rule_id, space_id), hit) for hit in hits]


def for_events(rule: Rule, space_id: str, execution_uuid: str) -> RunWrites:
    """The writing of a run that writes one alert per event."""

    def make(now: datetime) -> AlertMaker:
        return EventAlerts(RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id))

    return RunWrites(rule.rule_id, rule.name, space_id, execution_uuid, make)


def dedupe(
    es: Elasticsearch,
    policy: RetryPolicy,
    settings: Settings,
    parts: Sequence[tuple[RunWrites, Sequence[Candidate]]],
    sink: Sink = ELASTICSEARCH,
) -> list[list[Candidate]]:
    """Per part, its candidates that have neither an alert nor a dead-letter entry (one search for all, through
    ``sink``); the others are counted on their run."""
    wanted = [doc_id for _, candidates in parts for candidate in candidates for doc_id in _ids(candidate)]
    found = sink.existing(es, policy, settings.alerts_index, settings.dead_letter_index, wanted) if wanted else {}
    new: list[list[Candidate]] = []
    for run, candidates in parts:
        fresh = []
        for candidate in candidates:
            where = found.get(candidate.doc_id)
            if where is None or any(doc_id not in found for doc_id in candidate.more_ids):
                fresh.append(candidate)
            elif where == {settings.dead_letter_index}:
                run.dead_letters_skipped += 1  # ``deadletter retry`` deals with it
            else:
                run.duplicates += 1
        new.append(fresh)
    return new


def _ids(candidate: Candidate) -> tuple[str, ...]:
    return (candidate.doc_id, *candidate.more_ids)


@dataclass
class Built:
    """One run's candidates, built: their documents, the dead letters of what could not be built, and once
    sent, what became of them (merged into the run by :meth:`merge`, in the thread that owns the run)."""

    run: RunWrites
    writes: list[AlertWrite]
    letters: list[DeadLetter]
    items: dict[str, Any]  # document id -> the candidate's item (for the dead letter of a refused document)
    units: int  # candidates with documents
    firsts: set[int] = field(default_factory=set)  # the first document of each candidate (by object id)
    stats: WriteStats = field(default_factory=WriteStats)
    created: list[str] = field(default_factory=list)  # the ids of the candidates created (their first document)
    lettered: bool = False

    def merge(self) -> None:
        """Count what was sent on the run."""
        run = self.run
        run.stats.add(self.stats)
        run.units += len(self.created)
        if self.lettered:
            run.lettered(self.letters)


def build(run: RunWrites, candidates: Sequence[Candidate], now: datetime) -> Built:
    """Build each candidate on its own; raises only what building the run's shared part raises (that run's error)."""
    maker = run.maker(now)
    writes: list[AlertWrite] = []
    letters: list[DeadLetter] = []
    items: dict[str, Any] = {}
    firsts: set[int] = set()
    for candidate in candidates:
        try:
            documents = maker.documents(candidate.item, candidate.doc_id, now)
        except Exception as exc:  # noqa: BLE001 - one candidate's failure is that candidate's, never the page's
            letters.append(run.letter(candidate.item, "build", f"{type(exc).__name__}: {exc}", now))
            continue
        if documents:
            firsts.add(id(documents[0]))
        writes += documents
        items.update((write.doc_id, candidate.item) for write in documents)
    return Built(run, writes, letters, items, len(firsts), firsts)


def send(
    es: Elasticsearch,
    policy: RetryPolicy,
    settings: Settings,
    parts: Sequence[Built],
    clock: Callable[[], datetime],
    sink: Sink = ELASTICSEARCH,
) -> None:
    """Create the documents of every part in one bulk request, then dead-letter what was refused or could not
    be built in one more (both through ``sink``); what happened is noted on each part (:meth:`Built.merge`
    counts it on its run). Raises what a shared request raises."""
    writes = [write for part in parts for write in part.writes]
    if writes:
        owner = {id(write): part for part in parts for write in part.writes}
        shared = WriteStats()
        result = sink.create(es, policy, settings.alerts_index, writes, shared, lambda w: owner[id(w)].stats)
        for write in _settle_ambiguous(es, policy, settings.alerts_index, result.ambiguous, owner):
            result.created.append(write)
        for write in result.created:
            part = owner[id(write)]
            if id(write) in part.firsts:
                part.created.append(write.doc_id)
        for part in parts:  # the request's time, shared by the runs in proportion to their documents
            part.stats.indexing_ms += shared.indexing_ms * len(part.writes) / len(writes)
        now = clock()
        for item in result.refused:
            part = owner[id(item.write)]
            part.letters.append(part.run.letter(part.items[item.write.doc_id], "index", item.reason, now))
    lettered = [part for part in parts if part.letters]
    if lettered:
        sink.dead_letter(es, policy, settings.dead_letter_index, [x for part in lettered for x in part.letters])
        for part in lettered:
            part.lettered = True
            log.error(
                "rule %s: %d events dead-lettered in %s",
                part.run.rule_id,
                len(part.letters),
                settings.dead_letter_index,
            )


def dead_letter_alone(
    es: Elasticsearch,
    policy: RetryPolicy,
    settings: Settings,
    run: RunWrites,
    item: Any,
    reason: str,
    clock: Callable[[], datetime],
    sink: Sink = ELASTICSEARCH,
) -> None:
    """Dead-letter one would-be alert that was never sent to be created (an update of the alert it was to fold
    into, refused), counted on its run."""
    built = build(run, [], clock())
    built.letters.append(run.letter(item, "index", reason, clock()))
    try:
        send(es, policy, settings, [built], clock, sink)
    finally:
        built.merge()


def _settle_ambiguous(
    es: Elasticsearch, policy: RetryPolicy, alias: str, writes: Sequence[AlertWrite], owner: Mapping[int, Built]
) -> list[AlertWrite]:
    """The alerts answered 409 after a lost answer that this run created (each alert names the execution
    that wrote it); the others are counted as duplicates."""
    if not writes:
        return []
    ids = [write.doc_id for write in writes]
    response = policy.call(
        lambda: es.search(
            index=alias,
            query={"ids": {"values": ids}},
            size=len(ids),
            source_includes=[EXECUTION_UUID],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
    )
    writers = {hit["_id"]: (hit.get("_source") or {}).get(EXECUTION_UUID) for hit in response["hits"]["hits"]}
    ours = []
    for write in writes:
        part = owner[id(write)]
        if writers.get(write.doc_id) == part.run.execution_uuid:
            part.stats.created += 1
            ours.append(write)
        else:
            part.stats.duplicates += 1
    return ours


def build_writes(
    rule: Rule,
    batch: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    now: datetime,
    execution_uuid: str,
    space_id: str,
    alerts: RunAlerts | None = None,
) -> tuple[list[AlertWrite], list[tuple[Mapping[str, Any], str]]]:
    """Build and serialize each ``(alert id, hit)``'s alert on its own; the events that cannot become one
    come back with the reason (anything raised: the other events are not affected)."""
    maker = EventAlerts(alerts or RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id))
    writes: list[AlertWrite] = []
    failures: list[tuple[Mapping[str, Any], str]] = []
    for doc_id, hit in batch:
        try:
            writes += maker.documents(hit, doc_id, now)
        except Exception as exc:  # noqa: BLE001 - one event's failure is that event's, never the page's
            failures.append((hit, f"{type(exc).__name__}: {exc}"))
    return writes, failures
