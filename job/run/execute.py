"""Execute one planned rule run: page through the window, skip events that already have an alert (or a
dead-letter entry), write one alert per new event up to the cap, dead-letter the events that cannot
become one, and say how far the window was searched.

Failures are per event: an event whose alert cannot be built or serialized, or that Elasticsearch
refuses, is written to the dead-letter index and the window advances past it. Only when that write
fails too does the run fail (no ``searched_to``), so the event is searched again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from job.jsoncodec import document_bytes
from job.rules.model import Rule
from job.run import deadletter
from job.run.alerts import build_alert
from job.run.deadletter import DeadLetter, one_line
from job.run.ids import alert_id
from job.run.metrics import RunMetrics
from job.run.pager import PitPager
from job.run.plan import RunPlan, SearchPlan
from job.run.query import SORT_MISSING, timestamp_fields
from job.run.retry import RetryPolicy
from job.run.window import isoformat
from job.run.writer import AlertWrite, WriteStats, bulk_create, existing_ids
from job.settings import Settings

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ALERTS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."
DEAD_LETTER_SAMPLES = 3


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
    rule: Rule, batch: Sequence[tuple[str, dict[str, Any]]], *, now: datetime, execution_uuid: str, space_id: str
) -> tuple[list[AlertWrite], list[tuple[dict[str, Any], str]]]:
    """Build and serialize each ``(alert id, hit)``'s alert on its own; the events that cannot become one
    come back with the reason (anything raised: the page and the other events are not affected)."""
    writes: list[AlertWrite] = []
    failures: list[tuple[dict[str, Any], str]] = []
    for doc_id, hit in batch:
        try:
            alert = build_alert(rule, hit, now=now, execution_uuid=execution_uuid, space_id=space_id)
            writes.append(AlertWrite(doc_id, document_bytes(alert), str(hit["_index"]), str(hit["_id"])))
        except Exception as exc:  # noqa: BLE001 - one event's failure is that event's, never the page's
            failures.append((hit, f"{type(exc).__name__}: {exc}"))
    return writes, failures


@dataclass
class _Run:
    """One execution in progress: what it needs and what it has done so far."""

    es: Elasticsearch
    policy: RetryPolicy
    settings: Settings
    rule: Rule
    execution_uuid: str
    clock: Callable[[], datetime]
    writes: WriteStats = field(default_factory=WriteStats)
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letters_skipped: int = 0
    dead_letter_samples: list[str] = field(default_factory=list)

    def letter(self, hit: dict[str, Any], stage: deadletter.Stage, reason: str) -> DeadLetter:
        return DeadLetter(
            event_index=str(hit["_index"]),
            event_id=str(hit["_id"]),
            rule_id=self.rule.rule_id,
            rule_name=self.rule.name,
            space_id=self.settings.space_id,
            execution_uuid=self.execution_uuid,
            stage=stage,
            reason=reason,
            time=self.clock(),
        )

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

    def write(self, batch: Sequence[tuple[str, dict[str, Any]]]) -> None:
        writes, failures = build_writes(
            self.rule, batch, now=self.clock(), execution_uuid=self.execution_uuid, space_id=self.settings.space_id
        )
        letters = [self.letter(hit, "build", reason) for hit, reason in failures]
        refused = bulk_create(self.es, self.policy, self.settings.alerts_index, writes, self.writes)
        if refused:
            hits = {doc_id: hit for doc_id, hit in batch}
            letters += [self.letter(hits[item.write.doc_id], "index", item.reason) for item in refused]
        if letters:
            deadletter.write(self.es, self.policy, self.settings.dead_letter_index, letters)
            self.dead_lettered += len(letters)
            for letter in letters[: DEAD_LETTER_SAMPLES - len(self.dead_letter_samples)]:
                self.dead_letter_samples.append(
                    one_line(f"{letter.event_index}/{letter.event_id}: {letter.reason}", 300)
                )
            log.error(
                "rule %s: %d events dead-lettered in %s",
                self.rule.rule_id,
                len(letters),
                self.settings.dead_letter_index,
            )

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
) -> Outcome:
    """Search ``plan.window`` with ``search`` and write the alerts; ``metrics`` is filled as it goes, also
    when an error ends the run early.

    ``should_stop`` is asked after each full page; when it says yes (the run's lease is running out), the
    run ends there and the next run continues from the last timestamp it handled. ``page_filter`` drops
    the hits of a page that exceptions applied per page (large value lists) exclude.
    """
    if search.query is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=plan.window.end)
    pager = PitPager(es, policy, rule.index, search.query, search.sort, settings.page_size)
    run = _Run(es, policy, settings, rule, execution_uuid, clock)
    outcome = Outcome(searched_to=plan.window.end)
    try:
        for page in pager.pages():
            new = run.new_events(page_filter(page))
            while new and run.writes.created < plan.cap:
                room = plan.cap - run.writes.created
                batch, new = new[:room], new[room:]
                run.write(batch)
            if new:
                outcome.searched_to = resume_point(rule, new[0][1], plan.window.start)
                outcome.warnings.append(MAX_ALERTS_WARNING)
                break
            if len(page) >= settings.page_size and should_stop():
                outcome.searched_to = resume_point(rule, page[-1], plan.window.start)
                outcome.warnings.append(stopped_message(outcome.searched_to))
                break
        run.refresh()
    finally:
        metrics.pages = pager.stats.pages
        metrics.hits = pager.stats.hits
        metrics.pit_reopened = pager.stats.pit_reopened
        metrics.total_search_duration_ms = round(pager.stats.search_ms)
        metrics.total_indexing_duration_ms = round(run.writes.indexing_ms)
        metrics.alerts_created = run.writes.created
        metrics.duplicates_skipped = run.duplicates + run.writes.duplicates
        metrics.errors = run.writes.errors
        metrics.dead_lettered = run.dead_lettered
        metrics.dead_letters_skipped = run.dead_letters_skipped
    if run.dead_lettered:
        outcome.warnings.append(
            dead_letter_message(run.dead_lettered, settings.dead_letter_index, run.dead_letter_samples)
        )
    return outcome
