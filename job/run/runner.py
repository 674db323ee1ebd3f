"""One pass over the rules: each rule planned, recorded, executed and recorded at its end (:mod:`job.run.steps`).

One rule after another (``DETECTION_CONCURRENCY=1``), or in batches with several rules at once
(:mod:`job.run.batches`). Each rule runs on its own: an error in one becomes that rule's ``failed``
status and the other rules run. Once a stop is requested (SIGTERM, SIGINT), no further rule starts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from elasticsearch import ApiError, TransportError

from job import stop
from job.client.retry import describe
from job.execlog import record
from job.execlog.execution import Execution
from job.execlog.history import RuleHistory
from job.rules.model import Rule
from job.run.batches import run_batches
from job.run.steps import RunContext, record_refused, run_rule

__all__ = ["RunContext", "record_refused", "run_rule", "run_rules"]

log = logging.getLogger(__name__)


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
    ctx: RunContext,
    rules: Sequence[Rule],
    refused: Sequence[tuple[Rule, Sequence[str]]] = (),
    histories: Mapping[str, RuleHistory] | None = None,
) -> list[Execution]:
    """Record the ``refused`` rules (they load but do not validate), then run every rule; one rule's failure
    never stops the others. ``histories``: what the execution log says of the rules, when the pass read it
    already (a rule absent from it never ran); None reads it here. The pass's alerts and records are made
    searchable at its end, so a pass started right after this one plans from them."""
    if histories is None:
        histories = ctx.histories([*rules, *(rule for rule, _ in refused)])

    def history(rule: Rule) -> RuleHistory | None:
        return None if histories is None else histories.get(rule.rule_id, RuleHistory())

    # Once a stop is requested (SIGTERM, SIGINT), no further rule starts.
    executions = [
        record_refused(ctx, rule, problems, history(rule)) for rule, problems in refused if not stop.requested()
    ]
    if ctx.settings.concurrency <= 1:  # one rule after another, each on its own: the sequential path
        executions += [run_rule(ctx, rule, history(rule), refresh=False) for rule in rules if not stop.requested()]
    else:
        executions += run_batches(ctx, rules, history)
    _refresh_alerts(ctx, executions)
    record.refresh(ctx.es, ctx.policy, ctx.settings.executions_index)
    return executions
