"""The steps of one rule's run: plan it, record it, execute it, and record the end.

Each rule runs on its own: an error in one becomes that rule's ``failed`` status and the next rule
runs. The steps live in their own places: :mod:`job.run.plan` (window and cap; pure), the rule's type
(:mod:`job.ruletypes`: its search planned, then executed through the shared writer) and
:mod:`job.execlog.record` (the execution record); this module wires them together and turns errors into
statuses.

Order of one rule's run: read the execution log (once for the whole pass), mark the rule's abandoned
``running`` records ``failed``, plan the window, write the ``running`` record (nothing is searched
unless it is stored), plan the search, execute, write the final record. With ``DETECTION_CONCURRENCY``
above 1 a pass runs its rules in batches (:mod:`job.run.batches`): the same steps, with the records and
first pages of many rules in one request each, and several rules paged at once.

A stop requested by SIGTERM or SIGINT (:mod:`job.stop`) ends paging after the current page; the
rule's record ends ``failed`` (``Run interrupted by SIGTERM``) without ``searched_to``, and no further
rule (or batch) starts. A backfill runs the same steps over a fixed window (``run_rule(...,
window=...)``); its records are marked ``execution.type: backfill`` and never move the scheduled runs'
windows.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job import stop
from job.client.fieldcaps import field_types_from_caps
from job.client.retry import RetryPolicy, describe
from job.config.settings import Settings
from job.errors import JobError
from job.execlog import lease, record
from job.execlog.execution import BACKFILL, Execution
from job.execlog.history import RuleHistory, read_histories
from job.lists.store import ListStore
from job.ops.logs import rule_context
from job.rules.model import Rule
from job.ruletypes.contract import PlanInputs, RunPlan, RunTools, SearchPlan
from job.ruletypes.registry import Compiler, type_for
from job.run.plan import plan_fixed, plan_run
from job.window import Window
from job.writing.sink import ELASTICSEARCH, Sink

log = logging.getLogger(__name__)

# A run stops paging once this share of its lease (DETECTION_RUN_TIMEOUT) has passed, leaving time to
# write its alerts and its record before the lease runs out.
STOP_SEARCHING_AT = 0.9


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
    # Each rule query compiled once per pass, with the field types of its indices (shared with validation).
    compiler: Compiler = field(init=False)
    # Value lists, each read once per pass.
    lists: ListStore = field(init=False)

    def __post_init__(self) -> None:
        self.compiler = Compiler(self.field_types)
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


def new_execution(ctx: RunContext, rule: Rule) -> Execution:
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
    execution = new_execution(ctx, rule)
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


def begin(
    ctx: RunContext, rule: Rule, execution: Execution, history: RuleHistory | None, window: Window | None = None
) -> RunPlan:
    """Mark the rule's abandoned runs, plan this one and note the plan on ``execution`` (before its record).
    ``window``: a backfill's fixed window instead of one planned from the execution log."""
    if history is None:
        settings = ctx.settings
        history = read_histories(
            ctx.es,
            ctx.policy,
            settings.executions_index,
            [rule.rule_id],
            settings.space_id,
            backfill=window is not None,
        ).get(rule.rule_id, RuleHistory())
    _mark_abandoned(ctx, rule, history, execution.uuid)
    plan = _plan(ctx, rule, history) if window is None else plan_fixed(rule, window, alerts_max=ctx.settings.alerts_max)
    note_plan(execution, plan)
    return plan


def note_plan(execution: Execution, plan: RunPlan) -> None:
    """Note the run's window, gap, cap and their warnings on ``execution``."""
    execution.window, execution.gap = plan.window, plan.gap
    execution.metrics.max_alerts = plan.cap
    if plan.gap is not None:
        execution.metrics.record_gap(plan.gap)
    execution.warnings.extend(plan.warnings)


def search_plan(ctx: RunContext, rule: Rule, execution: Execution, plan: RunPlan) -> SearchPlan:
    """The rule's type plans the search of the run's window."""
    indices = rule.searched_indices
    inputs = PlanInputs(
        caps=ctx.field_caps(indices) if indices else {},
        alerts_alias=ctx.settings.alerts_index,
        compiled=lambda: ctx.compiler.compile(rule),
        exceptions=lambda: ctx.lists.plan(rule.exceptions, now=ctx.now),
    )
    search = type_for(rule).plan(rule, plan.window, inputs)
    execution.warnings.extend(search.warnings)
    execution.metrics.exceptions_expired = list(search.exceptions_expired)
    if search.exceptions_expired:
        log.info("rule %s: skipped %d expired exception items", rule.rule_id, len(search.exceptions_expired))
    return search


def run_tools(
    ctx: RunContext, execution: Execution, search: SearchPlan, *, refresh: bool = True, sink: Sink = ELASTICSEARCH
) -> RunTools:
    """What the rule's type gets from the pass to execute its window. It stops searching once a stop is
    requested or :data:`STOP_SEARCHING_AT` of its lease has passed (counted from the lease's start: the run's
    own start, also in a batch). ``sink``: where its writes go (``preview`` collects them)."""
    lease_expires = execution.lease_expires or execution.start + ctx.settings.run_timeout
    stop_at = lease_expires - ctx.settings.run_timeout * (1 - STOP_SEARCHING_AT)
    return RunTools(
        es=ctx.es,
        policy=ctx.policy,
        settings=ctx.settings,
        clock=ctx.clock,
        execution_uuid=execution.uuid,
        metrics=execution.metrics,
        should_stop=lambda: stop.requested() is not None or ctx.clock() >= stop_at,
        page_filter=lambda hits: ctx.lists.filter_page(search.exceptions, hits),
        refresh=refresh,
        sink=sink,
        deadline=stop_at,
    )


def execute_run(
    ctx: RunContext,
    rule: Rule,
    execution: Execution,
    plan: RunPlan,
    search: SearchPlan,
    *,
    refresh: bool = True,
    sink: Sink = ELASTICSEARCH,
) -> None:
    """Search and write: the rule's type executes the window through the shared writer (into ``sink``); note
    the outcome on ``execution``. Raises :class:`job.stop.RunInterrupted` when a stop was requested meanwhile."""
    tools = run_tools(ctx, execution, search, refresh=refresh, sink=sink)
    outcome = type_for(rule).execute(rule, plan, search, tools)
    stop.check()
    execution.warnings.extend(outcome.warnings)
    execution.searched_to = outcome.searched_to
    execution.keep_state(rule.type, outcome.state)


def failed(rule: Rule, execution: Execution, exc: Exception) -> None:
    """Note on ``execution`` the error that ended it: an interruption as itself, anything else as Kibana words it."""
    if isinstance(exc, stop.RunInterrupted):
        execution.errors.append(str(exc))
    else:
        reason = _error_reason(rule, exc)
        execution.errors.append(f'An error occurred during rule execution: message: "{reason}"')
    execution.searched_to = None
    execution.type_state = None


def end(ctx: RunContext, execution: Execution) -> None:
    execution.end = ctx.clock()
    if execution.lease_expires is not None and execution.end > execution.lease_expires:
        execution.warnings.append(
            f"The run took longer than DETECTION_RUN_TIMEOUT ({ctx.settings.run_timeout}); "
            "another run may have taken it for interrupted"
        )


def run_rule(
    ctx: RunContext,
    rule: Rule,
    history: RuleHistory | None = None,
    *,
    window: Window | None = None,
    refresh: bool = True,
) -> Execution:
    """Run one rule and record its execution. Never raises for problems of this rule.

    ``history`` is the rule's execution-log history read for the whole pass; None reads it here. ``window``:
    search exactly this window (a backfill's) instead of planning one from the execution log. ``refresh``:
    make its alerts searchable at its end (a pass refreshes once, at its end, instead).
    """
    execution = new_execution(ctx, rule)
    if window is not None:
        execution.kind = BACKFILL
    with rule_context(rule.rule_id, rule.name, execution.uuid):
        try:
            plan = begin(ctx, rule, execution, history, window)
            record.write_ahead(ctx.es, ctx.policy, ctx.settings.executions_index, execution)
            lease.started(execution.uuid)
            stop.check()
            execute_run(ctx, rule, execution, plan, search_plan(ctx, rule, execution, plan), refresh=refresh)
        except Exception as exc:  # noqa: BLE001 - the runner turns any error of one rule into its status
            failed(rule, execution, exc)
        try:
            end(ctx, execution)
            return record.write_final(ctx.es, ctx.policy, ctx.settings.executions_index, execution)
        finally:
            lease.finished(execution.uuid)
