"""A preview: one rule over a past range, run exactly as ``run`` and ``backfill`` run it, writing nothing.

The range is cut into backfill's windows (:func:`job.run.backfill.backfill_windows`: the rule's interval, each
with the rule's look-back), oldest first. Each window is one run through the same steps as
:func:`job.run.steps.run_rule`: the rule's cap, its search planned by its type (the same compile, exceptions,
value lists and field types), executed through the shared writer, which dedupes against the alerts that exist
and builds every document as a run would. What differs is only what a run writes:

* no execution record: no ``running`` record, no final one, no lease; the execution log is not read either
  (the windows are fixed, as a backfill's are);
* the writer's sink is a :class:`job.writing.collect.Collector`: alerts, dead letters and the updates of
  suppressed alerts are kept, not sent, and nothing is refreshed.

So the windows see each other's alerts as the windows of a backfill do: an event found again by the next
window's look-back is a duplicate of the first, and a suppressed group folds into the would-be alert of an
earlier window. A type that keeps a state from one run to the next (``RunPlan.state``: threshold's signal
history) gets the one its previous window kept, where a backfill's window rebuilds it from the alerts the
previous windows wrote: preview has none written to rebuild it from. Every request is a read
(``_field_caps``, searches, points in time, value lists).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from job import stop
from job.execlog.execution import BACKFILL, Execution
from job.ops.logs import rule_context
from job.rules.model import Rule
from job.run.plan import plan_fixed
from job.run.steps import RunContext, end, execute_run, failed, new_execution, note_plan, search_plan
from job.window import Window
from job.writing.collect import Collector


def preview_window(
    ctx: RunContext, rule: Rule, window: Window, collector: Collector, state: dict[str, Any] | None = None
) -> Execution:
    """One window run as :func:`job.run.steps.run_rule` runs it, into ``collector``, with the state the rule's
    type kept in the previous window. Never raises for problems of this rule: they end up on the execution, as
    a run's do."""
    execution = new_execution(ctx, rule)
    execution.kind = BACKFILL
    with rule_context(rule.rule_id, rule.name, execution.uuid):
        try:
            plan = dataclasses.replace(plan_fixed(rule, window, alerts_max=ctx.settings.alerts_max), state=state)
            note_plan(execution, plan)
            stop.check()
            search = search_plan(ctx, rule, execution, plan)
            execute_run(ctx, rule, execution, plan, search, refresh=False, sink=collector)
        except Exception as exc:  # noqa: BLE001 - as a run: any error of the rule becomes its status
            failed(rule, execution, exc)
        end(ctx, execution)
    return execution


def preview_rule(
    ctx: RunContext,
    rule: Rule,
    windows: Sequence[Window],
    collector: Collector,
    done: Callable[[Execution], None] = lambda execution: None,
) -> list[Execution]:
    """Every window, oldest first (until a stop is requested); then the collector hands on the alerts it held."""
    executions = []
    state: dict[str, Any] | None = None
    for window in windows:
        if stop.requested():
            break
        execution = preview_window(ctx, rule, window, collector, state)
        state = execution.type_state.value if execution.type_state is not None else None
        executions.append(execution)
        done(execution)
    collector.finish()
    return executions
