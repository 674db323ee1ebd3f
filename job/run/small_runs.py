"""Write the alerts of many small rule runs together: runs whose whole window came back in their first
page (:mod:`job.search.probes`) share one duplicate check, one bulk request and one dead-letter write.

A pass of a thousand rules that each match a few events would otherwise make two requests per rule (the
``ids`` check and the bulk ``create``). Each run's would-be alerts come from its rule type
(``RuleType.read_whole``), and go through the same steps of the shared writer as a paged run's
(:mod:`job.writing.writer`): the same duplicate check, each alert built on its own, per-event dead
letters, 429 retries per item. A run with more new candidates than its cap is handed back to be paged
(which of its events a capped run alerts is decided by paging).

A run fails alone when building its shared part fails; a failure of a shared request fails every run that
needed it (the cluster refused or could not take it: each run alone would have failed the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.config.settings import Settings
from job.execlog.metrics import RunMetrics
from job.ruletypes.contract import Outcome, count_writes
from job.writing.writer import Built, Candidate, RunWrites, build, dedupe, send

log = logging.getLogger(__name__)


@dataclass
class SmallRun:
    """One run whose window was read whole: its writing, its would-be alerts and its cap; ``outcome`` or
    ``error`` once written."""

    execution_uuid: str
    writes: RunWrites
    candidates: list[Candidate]
    cap: int
    window_end: datetime
    metrics: RunMetrics
    hits: int  # hits of the window (before exceptions applied per page)
    search_ms: float
    outcome: Outcome | None = None
    error: Exception | None = None


def write_small_runs(
    es: Elasticsearch, policy: RetryPolicy, settings: Settings, runs: Sequence[SmallRun], clock: Callable[[], datetime]
) -> list[SmallRun]:
    """Write the alerts of ``runs`` and fill each run's metrics and ``outcome`` (or ``error``). Returns the
    runs that must be paged instead (more new candidates than their cap), untouched."""
    try:
        fresh = dedupe(es, policy, settings, [(run.writes, run.candidates) for run in runs])
    except Exception as exc:  # noqa: BLE001 - every run needed this check
        for run in runs:
            run.error = exc
        return []
    to_page = [run for run, new in zip(runs, fresh, strict=True) if len(new) > run.cap]
    writing = [(run, new) for run, new in zip(runs, fresh, strict=True) if len(new) <= run.cap]
    now = clock()
    built: list[tuple[SmallRun, Built]] = []
    for run, new in writing:
        if not new:
            continue
        try:
            built.append((run, build(run.writes, new, now)))
        except Exception as exc:  # noqa: BLE001 - building this run's shared part failed: this run's error
            run.error = exc
    if built:
        try:
            send(es, policy, settings, [part for _, part in built], clock)
        except Exception as exc:  # noqa: BLE001 - every run with alerts in the request needed it
            for run, _ in built:
                run.error = exc
        finally:
            for _, part in built:
                part.merge()
    for run, _ in writing:
        _finish(run, settings)
    for run in to_page:  # counted again when paged
        run.writes.duplicates = run.writes.dead_letters_skipped = 0
    return to_page


def _finish(run: SmallRun, settings: Settings) -> None:
    metrics = run.metrics
    metrics.pages = 1 if run.hits else 0
    metrics.hits = run.hits
    metrics.total_search_duration_ms = round(run.search_ms)
    count_writes(metrics, run.writes)
    if run.error is None:
        run.outcome = Outcome(run.window_end, run.writes.warnings(settings.dead_letter_index))
