"""Execute one planned rule run: page through the window, skip events that already have an alert (or a
dead-letter entry), write one alert per new event up to the cap, dead-letter the events that cannot
become one, and say how far the window was searched.

Failures are per event: an event whose alert cannot be built or serialized, or that Elasticsearch
refuses, is written to the dead-letter index and the window advances past it. Only when that write
fails too does the run fail (no ``searched_to``), so the event is searched again.
"""

from __future__ import annotations

import contextvars
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from job.alerts.build import RunAlerts
from job.alerts.ids import alert_id
from job.execlog.metrics import RunMetrics
from job.retry import RetryPolicy
from job.rules.model import Rule
from job.run.plan import RunPlan, SearchPlan
from job.search.clauses import SORT_MISSING, timestamp_fields
from job.search.pager import PitPager
from job.settings import Settings
from job.window import isoformat
from job.writing import deadletter
from job.writing.bulk import MAX_ERROR_SAMPLES, AlertWrite, WriteStats, bulk_create, existing_ids
from job.writing.deadletter import DeadLetter, one_line

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ALERTS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."
DEAD_LETTER_SAMPLES = 3
# Alerts per bulk request: about this many bytes (a page of 1,000 Endgame alerts is 17 MB), so requests in
# flight hold little memory and writing overlaps building at a finer grain; the first request of a run
# holds FIRST_SLICE events, which tells the size of its alerts.
REQUEST_BYTES = 4 * 1024 * 1024
FIRST_SLICE = 100


@dataclass
class Outcome:
    """How far the run searched everything (the next run continues from there) and what it warns about."""

    searched_to: datetime
    warnings: list[str] = field(default_factory=list)


def stopped_message(resume: datetime) -> str:
    return (
        "The run stopped searching before its lease (DETECTION_RUN_TIMEOUT) ran out; "
        f"the next run continues from {isoformat(resume)}"
    )


def dead_letter_message(count: int, index: str, samples: Sequence[str]) -> str:
    return f"{count} events could not become alerts and were dead-lettered in {index}: " + "; ".join(samples)


def resume_point(rule: Rule, hit: dict[str, Any], window_start: datetime) -> datetime:
    """Where the next run must start so that ``hit`` (the first event not alerted) is searched again."""
    value = hit.get("sort", [None])[0]
    if timestamp_fields(rule).fallback is None and isinstance(value, int) and 0 <= value < SORT_MISSING:
        return EPOCH + timedelta(microseconds=value // 1000)  # exact; never after the event
    return window_start


def build_writes(
    rule: Rule,
    batch: Sequence[tuple[str, dict[str, Any]]],
    *,
    now: datetime,
    execution_uuid: str,
    space_id: str,
    alerts: RunAlerts | None = None,
) -> tuple[list[AlertWrite], list[tuple[dict[str, Any], str]]]:
    """Build and serialize each ``(alert id, hit)``'s alert on its own; the events that cannot become one
    come back with the reason (anything raised: the page and the other events are not affected).
    ``alerts`` holds the run's shared part of every alert (built here when not given)."""
    if alerts is None:
        alerts = RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id)
    writes: list[AlertWrite] = []
    failures: list[tuple[dict[str, Any], str]] = []
    for doc_id, hit in batch:
        try:
            writes.append(AlertWrite(doc_id, alerts.body(hit, now=now), str(hit["_index"]), str(hit["_id"])))
        except Exception as exc:  # noqa: BLE001 - one event's failure is that event's, never the page's
            failures.append((hit, f"{type(exc).__name__}: {exc}"))
    return writes, failures


def letter_for(
    rule: Rule,
    space_id: str,
    execution_uuid: str,
    hit: dict[str, Any],
    stage: deadletter.Stage,
    reason: str,
    time: datetime,
) -> DeadLetter:
    """The dead-letter entry of an event that could not become an alert."""
    return DeadLetter(
        event_index=str(hit["_index"]),
        event_id=str(hit["_id"]),
        rule_id=rule.rule_id,
        rule_name=rule.name,
        space_id=space_id,
        execution_uuid=execution_uuid,
        stage=stage,
        reason=reason,
        time=time,
    )


def letter_samples(letters: Sequence[DeadLetter], samples: list[str]) -> None:
    """Add the first letters to ``samples`` (at most :data:`DEAD_LETTER_SAMPLES` in all)."""
    for letter in letters[: max(0, DEAD_LETTER_SAMPLES - len(samples))]:
        samples.append(one_line(f"{letter.event_index}/{letter.event_id}: {letter.reason}", 300))


def fill_metrics(
    metrics: RunMetrics,
    writes: WriteStats,
    *,
    duplicates: int,
    dead_lettered: int,
    dead_letters_skipped: int,
) -> None:
    """The write counts of a run (its search counts are the pager's)."""
    metrics.total_indexing_duration_ms = round(writes.indexing_ms)
    metrics.alerts_created = writes.created
    metrics.duplicates_skipped = duplicates + writes.duplicates
    metrics.errors = writes.errors
    metrics.dead_lettered = dead_lettered
    metrics.dead_letters_skipped = dead_letters_skipped


@dataclass
class _Batch:
    """What writing one batch of alerts did; filled by the thread that wrote it, merged by the run."""

    reserved: int  # alerts sent: they may all be created, so the cap counts them until the answer
    stats: WriteStats = field(default_factory=WriteStats)
    letters: list[DeadLetter] = field(default_factory=list)


@dataclass
class _Run:
    """One execution in progress: what it needs and what it has done so far.

    Writes overlap with paging: up to ``DETECTION_BULK_CONCURRENCY`` batches are in flight (each at most
    one page of alerts, so memory stays bounded) while the next page is read and built. The cap stays
    exact: alerts in flight count against it until their answer says how many were created.
    """

    es: Elasticsearch
    policy: RetryPolicy
    settings: Settings
    rule: Rule
    execution_uuid: str
    clock: Callable[[], datetime]
    cap: int
    alerts: RunAlerts | None = None  # the shared part of the run's alerts, built on the first write
    writes: WriteStats = field(default_factory=WriteStats)
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letters_skipped: int = 0
    dead_letter_samples: list[str] = field(default_factory=list)
    reserved: int = 0
    slice: int = FIRST_SLICE  # events per bulk request, adjusted to the size of the alerts
    in_flight: deque[Future[_Batch]] = field(default_factory=deque)
    pool: ThreadPoolExecutor | None = None

    def letter(self, hit: dict[str, Any], stage: deadletter.Stage, reason: str) -> DeadLetter:
        return letter_for(self.rule, self.settings.space_id, self.execution_uuid, hit, stage, reason, self.clock())

    def new_events(self, page: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        """The page's events that have neither an alert nor a dead-letter entry yet."""
        settings = self.settings
        candidates = [(alert_id(hit["_index"], hit["_id"], self.rule.rule_id, settings.space_id), hit) for hit in page]
        found = existing_ids(
            self.es, self.policy, [settings.alerts_index, settings.dead_letter_index], [i for i, _ in candidates]
        )
        for indices in found.values():
            if indices == {settings.dead_letter_index}:
                self.dead_letters_skipped += 1  # ``deadletter retry`` deals with it
            else:
                self.duplicates += 1
        return [(doc_id, hit) for doc_id, hit in candidates if doc_id not in found]

    @property
    def room(self) -> int:
        """Alerts the cap still allows, counting those in flight as created."""
        return self.cap - self.writes.created - self.reserved

    def write(self, batch: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Build the batch's alerts here and send them, in requests of about :data:`REQUEST_BYTES`; the
        answers are awaited later (:meth:`settle_oldest`)."""
        start = 0
        while start < len(batch):
            part = batch[start : start + self.slice]
            start += len(part)
            self._write_part(part)

    def _write_part(self, batch: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """A part is built only once fewer than ``DETECTION_BULK_CONCURRENCY`` are in flight, so at most that
        many requests' alerts exist at once."""
        while len(self.in_flight) >= self.settings.bulk_concurrency:
            self.settle_oldest()
        now = self.clock()
        if self.alerts is None:
            self.alerts = RunAlerts.for_run(
                self.rule, now=now, execution_uuid=self.execution_uuid, space_id=self.settings.space_id
            )
        writes, failures = build_writes(
            self.rule,
            batch,
            now=now,
            execution_uuid=self.execution_uuid,
            space_id=self.settings.space_id,
            alerts=self.alerts,
        )
        size = sum(len(write.body) for write in writes)
        if writes:  # the next parts hold about REQUEST_BYTES of alerts of this size
            self.slice = max(1, min(self.settings.page_size, REQUEST_BYTES * len(writes) // max(size, 1)))
        letters = [self.letter(hit, "build", reason) for hit, reason in failures]
        hits = {doc_id: hit for doc_id, hit in batch}
        self.reserved += len(writes)
        if self.settings.bulk_concurrency <= 1:
            done: Future[_Batch] = Future()
            try:
                done.set_result(self._send(writes, letters, hits))
            except BaseException as exc:  # noqa: BLE001 - raised where the answer is taken, as in a thread
                done.set_exception(exc)
            self.in_flight.append(done)
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.settings.bulk_concurrency, thread_name_prefix="bulk")
        # The worker logs with this rule's context (job.logs keeps it in a ContextVar).
        context = contextvars.copy_context()
        self.in_flight.append(self.pool.submit(context.run, self._send, writes, letters, hits))

    def _send(self, writes: list[AlertWrite], letters: list[DeadLetter], hits: dict[str, dict[str, Any]]) -> _Batch:
        """Runs in a worker thread: bulk-create, then dead-letter what could not become an alert."""
        result = _Batch(reserved=len(writes))
        refused = bulk_create(self.es, self.policy, self.settings.alerts_index, writes, result.stats)
        letters = letters + [self.letter(hits[item.write.doc_id], "index", item.reason) for item in refused]
        if letters:
            deadletter.write(self.es, self.policy, self.settings.dead_letter_index, letters)
            result.letters = letters
            log.error(
                "rule %s: %d events dead-lettered in %s",
                self.rule.rule_id,
                len(letters),
                self.settings.dead_letter_index,
            )
        return result

    def settle_oldest(self) -> None:
        """Wait for the oldest batch in flight and count what it did; raises what writing it raised."""
        future = self.in_flight.popleft()
        batch = future.result()  # an error ends the run; its metrics count only what was answered
        self.reserved -= batch.reserved
        stats = batch.stats
        self.writes.created += stats.created
        self.writes.duplicates += stats.duplicates
        self.writes.errors += stats.errors
        self.writes.indexing_ms += stats.indexing_ms
        self.writes.error_samples.extend(stats.error_samples[: MAX_ERROR_SAMPLES - len(self.writes.error_samples)])
        self.dead_lettered += len(batch.letters)
        letter_samples(batch.letters, self.dead_letter_samples)

    def settle_all(self) -> None:
        """Wait for every batch in flight; the first error is raised once all have ended."""
        error: BaseException | None = None
        while self.in_flight:
            try:
                self.settle_oldest()
            except BaseException as exc:  # noqa: BLE001 - the others are still awaited and counted
                error = error or exc
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        if error is not None:
            raise error

    def refresh(self) -> None:
        """Make this run's alerts and dead letters visible to the next run's duplicate check."""
        indices = [self.settings.alerts_index] if self.writes.created or self.writes.duplicates else []
        indices += [self.settings.dead_letter_index] if self.dead_lettered else []
        if indices:
            self.policy.call(lambda: self.es.indices.refresh(index=indices))


def execute(
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
    refresh: bool = True,
) -> Outcome:
    """Search ``plan.window`` with ``search`` and write the alerts; ``metrics`` is filled as it goes, also
    when an error ends the run early.

    ``should_stop`` is asked after each full page; when it says yes (the run's lease is running out), the
    run ends there and the next run continues from the last timestamp it handled. ``page_filter`` drops
    the hits of a page that exceptions applied per page (large value lists) exclude. ``refresh``: make the
    alerts searchable at the end (a pass of many rules refreshes once, at its end, instead). A window read
    whole by its first page is written by :mod:`job.writing.together` instead, with other rules' alerts.
    """
    if search.query is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=plan.window.end)
    pager = PitPager(es, policy, rule.index, search.query, search.sort, settings.page_size)
    run = _Run(es, policy, settings, rule, execution_uuid, clock, cap=plan.cap)
    outcome = Outcome(searched_to=plan.window.end)

    def pages() -> Iterator[tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]]:
        for page in pager.pages():
            yield page, run.new_events(page_filter(page))

    try:
        try:
            for page, new in pages():
                while new:
                    if run.room <= 0:
                        if not run.in_flight:
                            break
                        run.settle_oldest()  # alerts in flight that were not created give room back
                        continue
                    batch, new = new[: run.room], new[run.room :]
                    run.write(batch)
                if new:
                    outcome.searched_to = resume_point(rule, new[0][1], plan.window.start)
                    outcome.warnings.append(MAX_ALERTS_WARNING)
                    break
                if len(page) >= settings.page_size and should_stop():
                    outcome.searched_to = resume_point(rule, page[-1], plan.window.start)
                    outcome.warnings.append(stopped_message(outcome.searched_to))
                    break
        finally:
            run.settle_all()
        if refresh:
            run.refresh()
    finally:
        metrics.pages = pager.stats.pages
        metrics.hits = pager.stats.hits
        metrics.pit_reopened = pager.stats.pit_reopened
        metrics.total_search_duration_ms = round(pager.stats.search_ms)
        fill_metrics(
            metrics,
            run.writes,
            duplicates=run.duplicates,
            dead_lettered=run.dead_lettered,
            dead_letters_skipped=run.dead_letters_skipped,
        )
    if run.dead_lettered:
        outcome.warnings.append(
            dead_letter_message(run.dead_lettered, settings.dead_letter_index, run.dead_letter_samples)
        )
    return outcome
