"""Execute one planned rule run: page through the window, drop events that already have an alert,
write one alert per new event up to the cap, and say how far the window was searched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from job.rules.model import Rule
from job.run.alerts import build_alert
from job.run.ids import alert_id
from job.run.metrics import RunMetrics
from job.run.pager import PitPager
from job.run.plan import RunPlan, SearchPlan
from job.run.query import SORT_MISSING, timestamp_fields
from job.run.retry import RetryPolicy
from job.run.window import isoformat
from job.run.writer import WriteStats, bulk_create, existing_ids
from job.settings import Settings

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ALERTS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."


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


def resume_point(rule: Rule, hit: dict[str, Any], window_start: datetime) -> datetime:
    """Where the next run must start so that ``hit`` (the first event not alerted) is searched again."""
    value = hit.get("sort", [None])[0]
    if timestamp_fields(rule).fallback is None and isinstance(value, int) and 0 <= value < SORT_MISSING:
        return EPOCH + timedelta(microseconds=value // 1000)  # exact; never after the event
    return window_start


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
) -> Outcome:
    """Search ``plan.window`` with ``search`` and write the alerts; ``metrics`` is filled as it goes, also
    when an error ends the run early.

    ``should_stop`` is asked after each full page; when it says yes (the run's lease is running out), the
    run ends there and the next run continues from the last timestamp it handled.
    """
    if search.query is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=plan.window.end)
    pager = PitPager(es, policy, rule.index, search.query, search.sort, settings.page_size)
    alias = settings.alerts_index
    writes = WriteStats()
    outcome = Outcome(searched_to=plan.window.end)
    duplicates = 0
    try:
        for page in pager.pages():
            candidates = [(alert_id(hit["_index"], hit["_id"], rule.rule_id, settings.space_id), hit) for hit in page]
            known = existing_ids(es, policy, alias, [doc_id for doc_id, _ in candidates])
            duplicates += len(known)
            new = [(doc_id, hit) for doc_id, hit in candidates if doc_id not in known]
            while new and writes.created < plan.cap:
                batch, new = new[: plan.cap - writes.created], new[plan.cap - writes.created :]
                built_at = clock()
                documents = [
                    (
                        doc_id,
                        build_alert(rule, hit, now=built_at, execution_uuid=execution_uuid, space_id=settings.space_id),
                    )
                    for doc_id, hit in batch
                ]
                bulk_create(es, policy, alias, documents, writes)
            if new:
                outcome.searched_to = resume_point(rule, new[0][1], plan.window.start)
                outcome.warnings.append(MAX_ALERTS_WARNING)
                break
            if len(page) >= settings.page_size and should_stop():
                outcome.searched_to = resume_point(rule, page[-1], plan.window.start)
                outcome.warnings.append(stopped_message(outcome.searched_to))
                break
        if writes.created or writes.duplicates:
            policy.call(lambda: es.indices.refresh(index=alias))
    finally:
        metrics.pages = pager.stats.pages
        metrics.hits = pager.stats.hits
        metrics.pit_reopened = pager.stats.pit_reopened
        metrics.total_search_duration_ms = round(pager.stats.search_ms)
        metrics.total_indexing_duration_ms = round(writes.indexing_ms)
        metrics.alerts_created = writes.created
        metrics.duplicates_skipped = duplicates + writes.duplicates
        metrics.errors = writes.errors
    if writes.errors:
        outcome.warnings.append(f"{writes.errors} alerts could not be written: " + "; ".join(writes.error_samples[:3]))
    return outcome
