"""One pass over the rules: for each rule, plan its run, record it, execute it, and record the end.

Each rule runs on its own: an error in one becomes that rule's ``failed`` status and the next rule
runs. The steps live in their own modules: :mod:`job.run.plan` (window, cap and query; pure),
:mod:`job.run.execute` (page, dedupe, write) and :mod:`job.run.record` (the execution record); this
module wires them together and turns errors into statuses.

Order of one rule's run: read the execution log (once for the whole pass), mark the rule's abandoned
``running`` records ``failed``, plan the window, write the ``running`` record (nothing is searched
unless it is stored), plan the search, execute, write the final record.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.backends import QueryTranslator
from job.errors import JobError
from job.fieldcaps import field_types_from_caps
from job.lists.store import ListStore
from job.logs import rule_context
from job.rules.model import Rule
from job.run import lease, record
from job.run.execlog import Execution
from job.run.execute import execute
from job.run.firstpage import FirstPage, Probe, read_first_pages
from job.run.history import RuleHistory, read_histories
from job.run.plan import RunPlan, SearchPlan, plan_run, plan_search
from job.run.retry import RetryPolicy, describe
from job.run.smallruns import SmallRun, write_small_runs
from job.settings import Settings

log = logging.getLogger(__name__)

# A run stops paging once this share of its lease (DETECTION_RUN_TIMEOUT) has passed, leaving time to
# write its alerts and its record before the lease runs out.
STOP_SEARCHING_AT = 0.9
# Rules of a pass whose records are written, and first pages read, with one request each.
RULES_PER_BATCH = 50


@dataclass
class RunContext:
    """What every rule of one pass shares: the client, settings, the run's clock and caches."""

    es: Elasticsearch
    settings: Settings
    now: datetime
    policy: RetryPolicy
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    field_caps_cache: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    _field_caps_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _field_types: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict, repr=False)
    runner: lease.Runner = field(default_factory=lease.this_runner)
    # Each rule query translated once per pass, with the field types of its indices (shared with validation).
    translator: QueryTranslator = field(init=False)
    # Value lists, each read once per pass.
    lists: ListStore = field(init=False)

    def __post_init__(self) -> None:
        self.translator = QueryTranslator(self.field_types)
        self.lists = ListStore(self.es, self.policy, self.settings.lists_index, self.settings.list_items_index)

    def field_caps(self, indices: tuple[str, ...]) -> dict[str, Any]:
        """``_field_caps`` of the rule's index patterns, fetched once per pass (rules running at once wait
        for one request)."""
        with self._field_caps_lock:
            return self._field_caps(indices)

    def field_types(self, indices: tuple[str, ...]) -> dict[str, str]:
        """The field types of the rule's index patterns (from :meth:`field_caps`), derived once per pass."""
        with self._field_caps_lock:
            if indices not in self._field_types:
                self._field_types[indices] = field_types_from_caps(self._field_caps(indices))
            return self._field_types[indices]

    def _field_caps(self, indices: tuple[str, ...]) -> dict[str, Any]:
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

    def histories(self, rules: Sequence[Rule]) -> dict[str, RuleHistory] | None:
        """The execution-log history of every rule of the pass (one request), or None if it cannot be read
        (each rule then tries on its own and fails with the reason)."""
        try:
            return read_histories(
                self.es,
                self.policy,
                self.settings.executions_index,
                [rule.rule_id for rule in rules],
                self.settings.space_id,
            )
        except (ApiError, TransportError) as exc:
            log.error("could not read the execution log: %s", describe(exc))
            return None


def _new_execution(ctx: RunContext, rule: Rule) -> Execution:
    start = ctx.clock()
    return Execution(
        rule_id=rule.rule_id,
        rule_name=rule.name,
        rule_version=rule.version,
        rule_source=rule.source,
        space_id=ctx.settings.space_id,
        uuid=str(uuid.uuid4()),
        start=start,
        lease_expires=start + ctx.settings.run_timeout,
        runner=ctx.runner,
        scheduled_at=ctx.now,
    )


def _plan(ctx: RunContext, rule: Rule, history: RuleHistory) -> RunPlan:
    return plan_run(rule, ctx.now, history, max_catchup=ctx.settings.max_catchup, alerts_max=ctx.settings.alerts_max)


def record_refused(
    ctx: RunContext, rule: Rule, problems: Sequence[str], history: RuleHistory | None = None
) -> Execution:
    """A ``failed`` record for a rule that loads but does not validate, so monitoring sees it. It carries
    the window the rule should have searched (when its date math allows one), so that the rule's first
    good run searches it."""
    execution = _new_execution(ctx, rule)
    execution.errors.extend(f"Rule not run, it does not validate: {problem}" for problem in problems)
    try:
        execution.window = _plan(ctx, rule, history or RuleHistory()).window
    except Exception:  # noqa: BLE001 - the rule may be refused for its very window
        execution.window = None
    execution.end = execution.start
    return record.write_final(ctx.es, ctx.policy, ctx.settings.executions_index, execution)


def _error_reason(rule: Rule, exc: Exception) -> str:
    """One line for the execution record; an unexpected error's traceback goes to the debug log only."""
    if isinstance(exc, ApiError | TransportError):
        return describe(exc)
    if isinstance(exc, JobError):  # query errors (with a caret line below), value-list errors, ...
        return str(exc).splitlines()[0]
    reason = f"{type(exc).__name__}: {exc}"
    log.error("rule %s: unexpected error: %s", rule.rule_id, reason)
    log.debug("rule %s: traceback of the unexpected error", rule.rule_id, exc_info=exc)
    return reason


def _mark_abandoned(ctx: RunContext, rule: Rule, history: RuleHistory, by: str) -> None:
    """Turn the rule's ``running`` records whose run can no longer finish into ``failed`` ones."""
    now = ctx.clock()
    for running in history.running:
        if not lease.abandoned(
            execution_uuid=running.uuid,
            lease_expires=running.lease_expires,
            runner=running.runner,
            me=ctx.runner,
            now=now,
        ):
            continue
        if record.mark_interrupted(ctx.es, ctx.policy, ctx.settings.executions_index, running, by=by, now=now):
            log.warning("rule %s: run %s ended without a record of its end; marked failed", rule.rule_id, running.uuid)


def _begin(ctx: RunContext, rule: Rule, execution: Execution, history: RuleHistory | None) -> RunPlan:
    """Mark the rule's abandoned runs, plan this one and note the plan on ``execution`` (before its record)."""
    if history is None:
        settings = ctx.settings
        history = read_histories(ctx.es, ctx.policy, settings.executions_index, [rule.rule_id], settings.space_id).get(
            rule.rule_id, RuleHistory()
        )
    _mark_abandoned(ctx, rule, history, execution.uuid)
    plan = _plan(ctx, rule, history)
    execution.window, execution.gap = plan.window, plan.gap
    execution.metrics.max_alerts = plan.cap
    if plan.gap is not None:
        execution.metrics.record_gap(plan.gap)
    execution.warnings.extend(plan.warnings)
    return plan


def _plan_search(ctx: RunContext, rule: Rule, execution: Execution, plan: RunPlan) -> SearchPlan:
    search = plan_search(
        rule,
        plan.window,
        ctx.field_caps(tuple(rule.index)),
        alerts_alias=ctx.settings.alerts_index,
        rule_dsl=lambda: ctx.translator.translate(rule),
        exceptions=lambda: ctx.lists.plan(rule.exceptions, now=ctx.now),
    )
    execution.warnings.extend(search.warnings)
    execution.metrics.exceptions_expired = list(search.exceptions_expired)
    if search.exceptions_expired:
        log.info("rule %s: skipped %d expired exception items", rule.rule_id, len(search.exceptions_expired))
    return search


def _execute(
    ctx: RunContext,
    rule: Rule,
    execution: Execution,
    plan: RunPlan,
    search: SearchPlan,
    *,
    refresh: bool = True,
) -> None:
    """Search and write (:func:`job.run.execute.execute`); note the outcome on ``execution``."""
    stop_at = execution.start + ctx.settings.run_timeout * STOP_SEARCHING_AT
    outcome = execute(
        ctx.es,
        ctx.policy,
        ctx.settings,
        rule,
        plan,
        search,
        execution_uuid=execution.uuid,
        clock=ctx.clock,
        metrics=execution.metrics,
        should_stop=lambda: ctx.clock() >= stop_at,
        page_filter=lambda hits: ctx.lists.filter_page(search.exceptions, hits),
        refresh=refresh,
    )
    execution.warnings.extend(outcome.warnings)
    execution.searched_to = outcome.searched_to


def _failed(rule: Rule, execution: Execution, exc: Exception) -> None:
    reason = _error_reason(rule, exc)
    execution.errors.append(f'An error occurred during rule execution: message: "{reason}"')
    execution.searched_to = None


def _end(ctx: RunContext, execution: Execution) -> None:
    execution.end = ctx.clock()
    if execution.lease_expires is not None and execution.end > execution.lease_expires:
        execution.warnings.append(
            f"The run took longer than DETECTION_RUN_TIMEOUT ({ctx.settings.run_timeout}); "
            "another run may have taken it for interrupted"
        )


def run_rule(ctx: RunContext, rule: Rule, history: RuleHistory | None = None) -> Execution:
    """Run one rule and record its execution. Never raises for problems of this rule.

    ``history`` is the rule's execution-log history read for the whole pass; None reads it here.
    """
    execution = _new_execution(ctx, rule)
    with rule_context(rule.rule_id, rule.name, execution.uuid):
        try:
            plan = _begin(ctx, rule, execution, history)
            record.write_ahead(ctx.es, ctx.policy, ctx.settings.executions_index, execution)
            lease.started(execution.uuid)
            _execute(ctx, rule, execution, plan, _plan_search(ctx, rule, execution, plan))
        except Exception as exc:  # noqa: BLE001 - the runner turns any error of one rule into its status
            _failed(rule, execution, exc)
        try:
            _end(ctx, execution)
            return record.write_final(ctx.es, ctx.policy, ctx.settings.executions_index, execution)
        finally:
            lease.finished(execution.uuid)


def _shared(executions: Sequence[Execution]) -> AbstractContextManager[object]:
    """The log context of a request made for several rule runs at once: none, unless it serves one run."""
    if len(executions) == 1:
        [execution] = executions
        return rule_context(execution.rule_id, execution.rule_name, execution.uuid)
    return contextlib.nullcontext()


@dataclass
class _Started:
    """A rule run of a batch whose ``running`` record is stored, with its plans."""

    rule: Rule
    execution: Execution
    plan: RunPlan
    search: SearchPlan | None = None
    first_page: FirstPage | None = None


def _start_batch(
    ctx: RunContext, rules: Sequence[Rule], history: Callable[[Rule], RuleHistory | None]
) -> tuple[list[Execution], list[_Started]]:
    """Plan the batch's runs, store their ``running`` records in one request, plan their searches and read
    their first pages in one ``_msearch``. A rule fails alone at any step; a rule whose record is not
    stored searches nothing."""
    executions: list[Execution] = []
    planned: list[_Started] = []
    for rule in rules:
        execution = _new_execution(ctx, rule)
        executions.append(execution)
        with rule_context(rule.rule_id, rule.name, execution.uuid):
            try:
                planned.append(_Started(rule, execution, _begin(ctx, rule, execution, history(rule))))
            except Exception as exc:  # noqa: BLE001 - this rule's failure, not the batch's
                _failed(rule, execution, exc)
    with _shared([item.execution for item in planned]):
        stored = record.write_ahead_many(
            ctx.es, ctx.policy, ctx.settings.executions_index, [item.execution for item in planned]
        )
    started: list[_Started] = []
    for item in planned:
        problem = stored[item.execution.uuid]
        with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
            if problem is not None:
                _failed(item.rule, item.execution, problem)
                continue
            lease.started(item.execution.uuid)
            started.append(item)
            try:
                item.search = _plan_search(ctx, item.rule, item.execution, item.plan)
            except Exception as exc:  # noqa: BLE001 - this rule's failure, not the batch's
                _failed(item.rule, item.execution, exc)
    probed: list[_Started] = []
    probes: list[Probe] = []
    for item in started:
        if item.search is not None and item.search.query is not None:
            probed.append(item)
            probes.append(Probe(item.rule.index, item.search.query, item.search.sort))
    try:
        with _shared([item.execution for item in probed]):
            pages: list[FirstPage | None] = read_first_pages(ctx.es, ctx.policy, probes, ctx.settings.page_size)
    except (ApiError, TransportError) as exc:  # after its retries: the cluster is down for all of them
        for item in probed:
            with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
                _failed(item.rule, item.execution, exc)
        return executions, started
    for item, page in zip(probed, pages, strict=True):
        item.first_page = page
    return executions, started


def _run_started(ctx: RunContext, item: _Started) -> None:
    """Execute one started run by paging its window (in a worker thread, with the rule's log context)."""
    with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
        try:
            if item.search is not None:
                _execute(ctx, item.rule, item.execution, item.plan, item.search, refresh=False)
        except Exception as exc:  # noqa: BLE001 - the runner turns any error of one rule into its status
            _failed(item.rule, item.execution, exc)


def _small_run(ctx: RunContext, item: _Started, page: FirstPage) -> SmallRun | None:
    """The run of a window read whole by its first page, with the exceptions applied per page; None when
    that fails (the rule's error)."""
    assert item.search is not None
    search = item.search
    with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
        try:
            hits = ctx.lists.filter_page(search.exceptions, page.hits)
        except Exception as exc:  # noqa: BLE001 - this rule's failure
            _failed(item.rule, item.execution, exc)
            return None
    return SmallRun(item.rule, item.plan, item.execution.uuid, item.execution.metrics, hits, page.search_ms)


def _write_small(ctx: RunContext, items: Sequence[_Started]) -> list[_Started]:
    """Write the runs read whole by their first page together; the ones to page instead."""
    runs: dict[str, tuple[_Started, SmallRun]] = {}
    for item in items:
        assert item.first_page is not None
        small = _small_run(ctx, item, item.first_page)
        if small is not None:
            runs[item.execution.uuid] = (item, small)
    with _shared([item.execution for item, _ in runs.values()]):
        to_page = write_small_runs(ctx.es, ctx.policy, ctx.settings, [small for _, small in runs.values()], ctx.clock)
    paged = {small.execution_uuid for small in to_page}
    for item, small in runs.values():
        if item.execution.uuid in paged:
            continue
        with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
            if small.error is not None:
                _failed(item.rule, item.execution, small.error)
            elif small.outcome is not None:
                item.execution.warnings.extend(small.outcome.warnings)
                item.execution.searched_to = small.outcome.searched_to
    return [runs[uuid][0] for uuid in paged]


def _run_batches(
    ctx: RunContext, rules: Sequence[Rule], history: Callable[[Rule], RuleHistory | None]
) -> list[Execution]:
    """Every rule of the pass, a batch at a time: records and first pages in one request per batch; the
    windows read whole by their first page written together; the others paged ``DETECTION_CONCURRENCY``
    at a time (threads sharing the client and the pass's caches); the final records in one request."""
    executions: list[Execution] = []
    with ThreadPoolExecutor(ctx.settings.concurrency, thread_name_prefix="rule") as pool:
        for start in range(0, len(rules), RULES_PER_BATCH):
            batch, started = _start_batch(ctx, rules[start : start + RULES_PER_BATCH], history)
            running = [item for item in started if not item.execution.errors and item.search is not None]
            read_whole = [item for item in running if item.first_page is not None]
            paged = [item for item in running if item.first_page is None]

            def submit(items: Sequence[_Started]) -> list[Future[None]]:
                # Each run gets its own copy of this thread's context (job.logs keeps the rule context there).
                return [pool.submit(contextvars.copy_context().run, _run_started, ctx, item) for item in items]

            futures = submit(paged)
            futures += submit(_write_small(ctx, read_whole))
            for future in futures:
                future.result()
            for execution in batch:
                _end(ctx, execution)
            try:
                with _shared(batch):
                    record.write_final_many(ctx.es, ctx.policy, ctx.settings.executions_index, batch)
            finally:
                for item in started:
                    lease.finished(item.execution.uuid)
            executions += batch
    return executions


def _refresh_alerts(ctx: RunContext, executions: Sequence[Execution]) -> None:
    """Make the pass's alerts and dead letters visible to the next pass's duplicate check, once (a killed
    pass's become visible within the indices' refresh interval; an alert written twice is a 409)."""
    settings = ctx.settings
    wrote = [ex.metrics for ex in executions]
    indices = [settings.alerts_index] if any(m.alerts_created or m.duplicates_skipped for m in wrote) else []
    indices += [settings.dead_letter_index] if any(m.dead_lettered for m in wrote) else []
    if indices:
        try:
            ctx.policy.call(lambda: ctx.es.indices.refresh(index=indices, ignore_unavailable=True))
        except (ApiError, TransportError) as exc:
            log.warning("could not refresh %s: %s", ",".join(indices), describe(exc))


def run_rules(
    ctx: RunContext, rules: Sequence[Rule], refused: Sequence[tuple[Rule, Sequence[str]]] = ()
) -> list[Execution]:
    """Record the ``refused`` rules (they load but do not validate), then run every rule; one rule's failure
    never stops the others. The pass's alerts and records are made searchable at its end, so a pass
    started right after this one plans from them."""
    histories = ctx.histories([*rules, *(rule for rule, _ in refused)])

    def history(rule: Rule) -> RuleHistory | None:
        return None if histories is None else histories.get(rule.rule_id, RuleHistory())

    executions = [record_refused(ctx, rule, problems, history(rule)) for rule, problems in refused]
    if ctx.settings.concurrency <= 1:  # one rule after another, each on its own: the sequential path
        executions += [run_rule(ctx, rule, history(rule)) for rule in rules]
    else:
        executions += _run_batches(ctx, rules, history)
    _refresh_alerts(ctx, executions)
    record.refresh(ctx.es, ctx.policy, ctx.settings.executions_index)
    return executions
