"""One pass over the rules: for each rule, search its window and write one alert per new event.

Each rule runs on its own: an error in one becomes that rule's ``failed`` status and the next rule
runs. Everything that decides *what* to search or write is a pure function elsewhere
(window, query, alerts); this module wires them to Elasticsearch.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.backends import QueryTranslator
from job.errors import JobError
from job.fieldcaps import field_types_from_caps
from job.lists.store import ListStore
from job.rules.caps import effective_max_signals
from job.rules.model import Rule
from job.run import execlog
from job.run.alerts import build_alert
from job.run.execlog import Execution
from job.run.ids import alert_id
from job.run.pager import PitPager
from job.run.query import SORT_MISSING, build_query, build_sort, own_alerts_clause, timestamp_fields
from job.run.retry import RetryPolicy, describe
from job.run.window import gap_message, plan_window
from job.run.writer import WriteStats, bulk_create, existing_ids
from job.settings import Settings

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ALERTS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."


def no_index_message(patterns: Sequence[str]) -> str:
    listed = ",".join(f'"{p}"' for p in patterns)
    return (
        'This rule is attempting to query data from Elasticsearch indices listed in the "Index patterns" '
        f"section of the rule definition, however no index matching: [{listed}] was found. This warning will "
        "continue to appear until a matching index is created or this rule is disabled."
    )


def missing_timestamp_message(field_name: str, indices: Sequence[str], override: bool) -> str:
    what = f'timestamp override field "{field_name}"' if override else f'timestamp field "{field_name}"'
    return f"The following indices are missing the {what}: {json.dumps(sorted(indices))}"


@dataclass
class RunContext:
    """What every rule of one pass shares: the client, settings, the run's clock and caches."""

    es: Elasticsearch
    settings: Settings
    now: datetime
    policy: RetryPolicy
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    field_caps_cache: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    # Each rule query translated once per pass, with the field types of its indices (shared with validation).
    translator: QueryTranslator = field(init=False)
    # Value lists, each read once per pass.
    lists: ListStore = field(init=False)

    def __post_init__(self) -> None:
        self.translator = QueryTranslator(lambda indices: field_types_from_caps(self.field_caps(indices)))
        self.lists = ListStore(self.es, self.policy, self.settings.lists_index, self.settings.list_items_index)

    def field_caps(self, indices: tuple[str, ...]) -> dict[str, Any]:
        """``_field_caps`` of the rule's index patterns, fetched once per pass."""
        if indices not in self.field_caps_cache:
            response = self.policy.call(
                lambda: self.es.field_caps(
                    index=list(indices),
                    fields="*",
                    ignore_unavailable=True,
                    allow_no_indices=True,
                    include_unmapped=True,
                )
            )
            self.field_caps_cache[indices] = dict(response.body)
        return self.field_caps_cache[indices]


def _check_timestamps(execution: Execution, rule: Rule, caps: dict[str, Any]) -> None:
    fields = timestamp_fields(rule)
    all_indices = caps.get("indices", [])
    entry = caps.get("fields", {}).get(fields.primary)
    if entry is None:
        missing = list(all_indices)
    else:
        missing = list(entry.get("unmapped", {}).get("indices", all_indices if set(entry) == {"unmapped"} else []))
    if missing and fields.fallback is None:
        execution.warnings.append(
            missing_timestamp_message(fields.primary, missing, rule.timestamp_override is not None)
        )


def _resume_point(rule: Rule, hit: dict[str, Any], window_start: datetime) -> datetime:
    """Where the next run must start so that ``hit`` (the first event not alerted) is searched again."""
    value = hit.get("sort", [None])[0]
    if timestamp_fields(rule).fallback is None and isinstance(value, int) and 0 <= value < SORT_MISSING:
        return EPOCH + timedelta(microseconds=value // 1000)  # exact; never after the event
    return window_start


def _new_execution(ctx: RunContext, rule: Rule) -> Execution:
    return Execution(
        rule_id=rule.rule_id,
        rule_name=rule.name,
        rule_version=rule.version,
        rule_source=rule.source,
        space_id=ctx.settings.space_id,
        uuid=str(uuid.uuid4()),
        start=ctx.clock(),
    )


def _record(ctx: RunContext, rule: Rule, execution: Execution) -> Execution:
    try:
        execlog.write(ctx.es, ctx.policy, ctx.settings.executions_index, execution)
    except (ApiError, TransportError) as exc:
        log.error("rule %s: could not write its execution record: %s", rule.rule_id, describe(exc))
        execution.errors.append(f"could not write the execution record: {describe(exc)}")
    return execution


def record_refused(ctx: RunContext, rule: Rule, problems: Sequence[str]) -> Execution:
    """A ``failed`` record for a rule that loads but does not validate, so monitoring sees it."""
    execution = _new_execution(ctx, rule)
    execution.errors.extend(f"Rule not run, it does not validate: {problem}" for problem in problems)
    execution.end = execution.start
    return _record(ctx, rule, execution)


def run_rule(ctx: RunContext, rule: Rule) -> Execution:
    """Run one rule and record its execution. Never raises for problems of this rule."""
    execution = _new_execution(ctx, rule)
    writes = WriteStats()
    try:
        _search_and_write(ctx, rule, execution, writes)
    except Exception as exc:  # noqa: BLE001 - the runner turns any error of one rule into its status
        if isinstance(exc, JobError):  # query errors, value-list errors: their own one-line message
            reason = str(exc).splitlines()[0]
        elif isinstance(exc, ApiError | TransportError):
            reason = describe(exc)
        else:
            log.exception("rule %s: unexpected error", rule.rule_id)
            reason = f"{type(exc).__name__}: {exc}"
        execution.errors.append(f'An error occurred during rule execution: message: "{reason}"')
        execution.searched_to = None
    finally:
        execution.end = ctx.clock()
        execution.metrics.update(
            total_indexing_duration_ms=round(writes.indexing_ms),
            alerts_created=writes.created,
            duplicates_skipped=execution.metrics.get("duplicates_skipped", 0) + writes.duplicates,
            errors=writes.errors,
        )
    return _record(ctx, rule, execution)


def _search_and_write(ctx: RunContext, rule: Rule, execution: Execution, writes: WriteStats) -> None:
    settings, es, policy = ctx.settings, ctx.es, ctx.policy
    cap, cap_warning = effective_max_signals(rule, settings.alerts_max)
    if cap_warning:
        execution.warnings.append(cap_warning)
    execution.metrics["max_alerts"] = cap

    searched_to = execlog.last_searched_to(es, policy, settings.executions_index, rule.rule_id, settings.space_id)
    window, gap = plan_window(rule, ctx.now, searched_to, settings.max_catchup)
    execution.window, execution.gap = window, gap
    if gap is not None:
        execution.warnings.append(gap_message(gap))

    caps = ctx.field_caps(tuple(rule.index))
    if not caps.get("indices"):
        execution.warnings.append(no_index_message(rule.index))
        execution.searched_to = window.end
        return
    _check_timestamps(execution, rule, caps)

    # Exceptions, with value lists (job.lists): a must_not clause, plus items applied to each page below.
    exceptions = ctx.lists.plan(rule.exceptions, now=ctx.now)
    execution.warnings.extend(exceptions.warnings)
    if exceptions.expired:
        execution.metrics["exceptions_expired"] = [item.item_id for item in exceptions.expired]
        log.info("rule %s: skipped %d expired exception items", rule.rule_id, len(exceptions.expired))
    own_alerts = own_alerts_clause(settings.alerts_index, rule.rule_id)
    query = build_query(rule, ctx.translator.translate(rule), window, exceptions.clause, [own_alerts])

    pager = PitPager(es, policy, rule.index, query, build_sort(rule), settings.page_size)
    alias = settings.alerts_index
    resume: datetime | None = None
    duplicates = 0
    for hits in pager.pages():
        page = ctx.lists.filter_page(exceptions, hits)  # value lists too large for the query (job.lists)
        candidates = [(alert_id(hit["_index"], hit["_id"], rule.rule_id, settings.space_id), hit) for hit in page]
        known = existing_ids(es, policy, alias, [doc_id for doc_id, _ in candidates])
        duplicates += len(known)
        new = [(doc_id, hit) for doc_id, hit in candidates if doc_id not in known]
        while new and writes.created < cap:
            batch, new = new[: cap - writes.created], new[cap - writes.created :]
            built_at = ctx.clock()
            documents = [
                (
                    doc_id,
                    build_alert(rule, hit, now=built_at, execution_uuid=execution.uuid, space_id=settings.space_id),
                )
                for doc_id, hit in batch
            ]
            bulk_create(es, policy, alias, documents, writes)
        if new:
            resume = _resume_point(rule, new[0][1], window.start)
            execution.warnings.append(MAX_ALERTS_WARNING)
            break
    if writes.created or writes.duplicates:
        policy.call(lambda: es.indices.refresh(index=alias))
    execution.metrics.update(
        pages=pager.stats.pages,
        hits=pager.stats.hits,
        pit_reopened=pager.stats.pit_reopened,
        total_search_duration_ms=round(pager.stats.search_ms),
        duplicates_skipped=duplicates,
    )
    if writes.errors:
        execution.warnings.append(
            f"{writes.errors} alerts could not be written: " + "; ".join(writes.error_samples[:3])
        )
    execution.searched_to = resume if resume is not None else window.end


def run_rules(ctx: RunContext, rules: Sequence[Rule]) -> list[Execution]:
    """Run every rule in turn; one rule's failure never stops the others."""
    return [run_rule(ctx, rule) for rule in rules]
