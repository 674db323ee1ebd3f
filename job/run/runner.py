"""One pass over the rules: for each rule, plan its run, execute it, and record it.

Each rule runs on its own: an error in one becomes that rule's ``failed`` status and the next rule
runs. The three steps live in their own modules: :mod:`job.run.plan` (window, cap and query; pure),
:mod:`job.run.execute` (page, dedupe, write) and :mod:`job.run.record` (the execution record); this
module wires them together and turns errors into statuses.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.kql import KqlSemanticError, KqlSyntaxError
from job.rules.model import Rule
from job.run import execlog
from job.run.execlog import Execution
from job.run.execute import execute
from job.run.plan import plan_run, plan_search
from job.run.record import write_final
from job.run.retry import RetryPolicy, describe
from job.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """What every rule of one pass shares: the client, settings, the run's clock and caches."""

    es: Elasticsearch
    settings: Settings
    now: datetime
    policy: RetryPolicy
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    field_caps_cache: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)

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


def record_refused(ctx: RunContext, rule: Rule, problems: Sequence[str]) -> Execution:
    """A ``failed`` record for a rule that loads but does not validate, so monitoring sees it."""
    execution = _new_execution(ctx, rule)
    execution.errors.extend(f"Rule not run, it does not validate: {problem}" for problem in problems)
    execution.end = execution.start
    return write_final(ctx.es, ctx.policy, ctx.settings.executions_index, execution)


def _error_reason(rule: Rule, exc: Exception) -> str:
    """One line for the execution record; an unexpected error's traceback goes to the debug log only."""
    if isinstance(exc, KqlSyntaxError | KqlSemanticError):
        return str(exc).splitlines()[0]
    if isinstance(exc, ApiError | TransportError):
        return describe(exc)
    reason = f"{type(exc).__name__}: {exc}"
    log.error("rule %s: unexpected error: %s", rule.rule_id, reason)
    log.debug("rule %s: traceback of the unexpected error", rule.rule_id, exc_info=exc)
    return reason


def run_rule(ctx: RunContext, rule: Rule) -> Execution:
    """Run one rule and record its execution. Never raises for problems of this rule."""
    settings = ctx.settings
    execution = _new_execution(ctx, rule)
    try:
        searched_to = execlog.last_searched_to(
            ctx.es, ctx.policy, settings.executions_index, rule.rule_id, settings.space_id
        )
        plan = plan_run(rule, ctx.now, searched_to, max_catchup=settings.max_catchup, alerts_max=settings.alerts_max)
        execution.window, execution.gap = plan.window, plan.gap
        execution.metrics.max_alerts = plan.cap
        if plan.gap is not None:
            execution.metrics.record_gap(plan.gap)
        execution.warnings.extend(plan.warnings)
        search = plan_search(
            rule, plan.window, ctx.field_caps(tuple(rule.index)), alerts_alias=settings.alerts_index, now=ctx.now
        )
        execution.warnings.extend(search.warnings)
        execution.metrics.exceptions_expired = list(search.exceptions_expired)
        if search.exceptions_expired:
            log.info("rule %s: skipped %d expired exception items", rule.rule_id, len(search.exceptions_expired))
        outcome = execute(
            ctx.es,
            ctx.policy,
            settings,
            rule,
            plan,
            search,
            execution_uuid=execution.uuid,
            clock=ctx.clock,
            metrics=execution.metrics,
        )
        execution.warnings.extend(outcome.warnings)
        execution.searched_to = outcome.searched_to
    except Exception as exc:  # noqa: BLE001 - the runner turns any error of one rule into its status
        execution.errors.append(f'An error occurred during rule execution: message: "{_error_reason(rule, exc)}"')
        execution.searched_to = None
    finally:
        execution.end = ctx.clock()
    return write_final(ctx.es, ctx.policy, settings.executions_index, execution)


def run_rules(ctx: RunContext, rules: Sequence[Rule]) -> list[Execution]:
    """Run every rule in turn; one rule's failure never stops the others."""
    return [run_rule(ctx, rule) for rule in rules]
