"""Write the alerts of many small rule runs together: runs whose whole window came back in their first
page (:mod:`job.search.probes`) share one duplicate check, one bulk request and one dead-letter write.

A pass of a thousand rules that each match a few events would otherwise make two requests per rule
(the ``ids`` check and the bulk ``create``). What each run writes, counts and reports is what
:func:`job.ruletypes.query.execute.execute` would write for the same page: the same duplicate check (alerts and
dead letters), each alert built and serialized on its own, per-event dead letters, 429 retries per
item, and a 409 counted as a duplicate of the run that sent it. A run with more new events than its cap
is handed back to be paged (which of its events a capped run alerts is decided by paging).

A failure of a shared request fails every run that needed it (the cluster refused or could not take
it: each run alone would have failed the same way); the runs that did not need it are unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.alerts.build import RunAlerts
from job.alerts.ids import alert_id
from job.execlog.metrics import RunMetrics
from job.logs import rule_context
from job.retry import RetryPolicy
from job.rules.model import Rule
from job.ruletypes.query.execute import (
    Outcome,
    build_writes,
    dead_letter_message,
    fill_metrics,
    letter_for,
    letter_samples,
)
from job.run.plan import RunPlan
from job.settings import Settings
from job.writing import deadletter
from job.writing.bulk import AlertWrite, WriteStats, bulk_create, existing_ids
from job.writing.deadletter import DeadLetter

log = logging.getLogger(__name__)


@dataclass
class SmallRun:
    """One run whose window was read whole; ``outcome`` or ``error`` once written."""

    rule: Rule
    plan: RunPlan
    execution_uuid: str
    metrics: RunMetrics
    hits: list[dict[str, Any]]  # every hit of the window, exceptions applied
    search_ms: float
    outcome: Outcome | None = None
    error: Exception | None = None
    writes: WriteStats = field(default_factory=WriteStats)
    duplicates: int = 0
    dead_letters_skipped: int = 0
    letters: list[DeadLetter] = field(default_factory=list)
    new: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def write_small_runs(
    es: Elasticsearch, policy: RetryPolicy, settings: Settings, runs: Sequence[SmallRun], clock: Callable[[], datetime]
) -> list[SmallRun]:
    """Write the alerts of ``runs`` and fill each run's metrics and ``outcome`` (or ``error``). Returns the
    runs that must be paged instead (more new events than their cap), untouched."""
    indices = [settings.alerts_index, settings.dead_letter_index]
    candidates = {
        run.execution_uuid: [
            (alert_id(hit["_index"], hit["_id"], run.rule.rule_id, settings.space_id), hit) for hit in run.hits
        ]
        for run in runs
    }
    wanted = [doc_id for pairs in candidates.values() for doc_id, _ in pairs]
    try:
        found = existing_ids(es, policy, indices, wanted) if wanted else {}
    except Exception as exc:  # noqa: BLE001 - every run needed this check
        for run in runs:
            _fail(run, exc)
        return []
    to_page: list[SmallRun] = []
    writing: list[SmallRun] = []
    for run in runs:
        for doc_id, hit in candidates[run.execution_uuid]:
            where = found.get(doc_id)
            if where is None:
                run.new.append((doc_id, hit))
            elif where == {settings.dead_letter_index}:
                run.dead_letters_skipped += 1  # ``deadletter retry`` deals with it
            else:
                run.duplicates += 1
        if len(run.new) > run.plan.cap:
            to_page.append(run)
        else:
            writing.append(run)
    _write(es, policy, settings, [run for run in writing if run.new], clock)
    for run in writing:
        _finish(run, settings)
    return [_reset(run) for run in to_page]


def _write(
    es: Elasticsearch, policy: RetryPolicy, settings: Settings, runs: Sequence[SmallRun], clock: Callable[[], datetime]
) -> None:
    now = clock()
    owner: dict[str, SmallRun] = {}
    writes: list[AlertWrite] = []
    for run in runs:
        alerts = RunAlerts.for_run(run.rule, now=now, execution_uuid=run.execution_uuid, space_id=settings.space_id)
        built, failures = build_writes(
            run.rule, run.new, now=now, execution_uuid=run.execution_uuid, space_id=settings.space_id, alerts=alerts
        )
        for write in built:
            owner[write.doc_id] = run
        writes += built
        run.letters += [_letter(run, settings, hit, "build", reason, now) for hit, reason in failures]
    if writes:
        shared = WriteStats()
        try:
            refused = bulk_create(es, policy, settings.alerts_index, writes, shared, lambda w: owner[w.doc_id].writes)
        except Exception as exc:  # noqa: BLE001 - every run with alerts in the request needed it
            for run in {id(run): run for run in owner.values()}.values():
                _fail(run, exc)
            return
        for run in runs:  # the request's time, shared by the runs in proportion to their alerts
            run.writes.indexing_ms += shared.indexing_ms * len(run.new) / len(writes)
        hits = {doc_id: hit for run in runs for doc_id, hit in run.new}
        for item in refused:
            run = owner[item.write.doc_id]
            run.letters.append(_letter(run, settings, hits[item.write.doc_id], "index", item.reason, clock()))
    lettered = [run for run in runs if run.letters and run.error is None]
    if lettered:
        try:
            deadletter.write(es, policy, settings.dead_letter_index, [x for run in lettered for x in run.letters])
        except Exception as exc:  # noqa: BLE001 - the runs whose events could not be dead-lettered fail
            for run in lettered:
                _fail(run, exc)
            return
        for run in lettered:
            with rule_context(run.rule.rule_id, run.rule.name, run.execution_uuid):
                log.error(
                    "rule %s: %d events dead-lettered in %s",
                    run.rule.rule_id,
                    len(run.letters),
                    settings.dead_letter_index,
                )


def _letter(
    run: SmallRun, settings: Settings, hit: dict[str, Any], stage: deadletter.Stage, reason: str, time: datetime
) -> DeadLetter:
    return letter_for(run.rule, settings.space_id, run.execution_uuid, hit, stage, reason, time)


def _fail(run: SmallRun, exc: Exception) -> None:
    if run.error is None:
        run.error = exc


def _finish(run: SmallRun, settings: Settings) -> None:
    metrics = run.metrics
    metrics.pages = 1 if run.hits else 0
    metrics.hits = len(run.hits)
    metrics.total_search_duration_ms = round(run.search_ms)
    dead_lettered = len(run.letters) if run.error is None else 0
    fill_metrics(
        metrics,
        run.writes,
        duplicates=run.duplicates,
        dead_lettered=dead_lettered,
        dead_letters_skipped=run.dead_letters_skipped,
    )
    if run.error is not None:
        return
    run.outcome = Outcome(searched_to=run.plan.window.end)
    if run.letters:
        samples: list[str] = []
        letter_samples(run.letters, samples)
        run.outcome.warnings.append(dead_letter_message(len(run.letters), settings.dead_letter_index, samples))


def _reset(run: SmallRun) -> SmallRun:
    run.new, run.duplicates, run.dead_letters_skipped = [], 0, 0
    return run
