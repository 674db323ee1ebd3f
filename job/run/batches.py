"""A pass in batches (``DETECTION_CONCURRENCY`` above 1): the steps of :func:`job.run.steps.run_rule`, shared.

Per batch of :data:`RULES_PER_BATCH` rules: the ``running`` records in one ``_bulk`` request, the first
page of every rule whose type can be probed in one ``_msearch`` (:mod:`job.search.probes`); the runs whose
window came back whole are written together (:mod:`job.run.small_runs`), the others executed
``DETECTION_CONCURRENCY`` at a time in threads sharing the client and the pass's caches; the final records in
one request. A rule fails alone at every step.

A run executed in a thread renews its lease when it starts (its ``running`` record gets a new
``lease_expires``), so that its lease and the time it stops searching count from its own start, not its
batch's: a run that waited for a thread is never stopped early, nor taken for interrupted by another host.

Once a stop is requested (SIGTERM, SIGINT) no further batch starts; the batch under way stops paging, and
its runs that had not finished end ``failed`` (``Run interrupted by SIGTERM``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass

from elasticsearch import ApiError, TransportError

from job import stop
from job.execlog import lease, record
from job.execlog.execution import Execution
from job.execlog.history import RuleHistory
from job.ops.logs import rule_context
from job.rules.model import Rule
from job.ruletypes.contract import RunPlan, SearchPlan
from job.ruletypes.registry import type_for
from job.run.small_runs import SmallRun, write_small_runs
from job.run.steps import RunContext, begin, end, execute_run, failed, new_execution, run_tools, search_plan
from job.search.probes import FirstPage, Probe, read_first_pages

# Rules of a pass whose records are written, and first pages read, with one request each.
RULES_PER_BATCH = 50


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
        execution = new_execution(ctx, rule)
        executions.append(execution)
        with rule_context(rule.rule_id, rule.name, execution.uuid):
            try:
                planned.append(_Started(rule, execution, begin(ctx, rule, execution, history(rule))))
            except Exception as exc:  # noqa: BLE001 - this rule's failure, not the batch's
                failed(rule, execution, exc)
    with _shared([item.execution for item in planned]):
        stored = record.write_ahead_many(
            ctx.es, ctx.policy, ctx.settings.executions_index, [item.execution for item in planned]
        )
    started: list[_Started] = []
    for item in planned:
        problem = stored[item.execution.uuid]
        with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
            if problem is not None:
                failed(item.rule, item.execution, problem)
                continue
            lease.started(item.execution.uuid)
            started.append(item)
            try:
                item.search = search_plan(ctx, item.rule, item.execution, item.plan)
            except Exception as exc:  # noqa: BLE001 - this rule's failure, not the batch's
                failed(item.rule, item.execution, exc)
    probed: list[_Started] = []
    probes: list[Probe] = []
    for item in started:
        probe = type_for(item.rule).probe(item.rule, item.search) if item.search is not None else None
        if probe is not None:
            probed.append(item)
            probes.append(probe)
    try:
        with _shared([item.execution for item in probed]):
            pages: list[FirstPage | None] = read_first_pages(ctx.es, ctx.policy, probes, ctx.settings.page_size)
    except (ApiError, TransportError) as exc:  # after its retries: the cluster is down for all of them
        for item in probed:
            with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
                failed(item.rule, item.execution, exc)
        return executions, started
    for item, page in zip(probed, pages, strict=True):
        item.first_page = page
    return executions, started


def _run_started(ctx: RunContext, item: _Started) -> None:
    """Execute one started run (in a worker thread, with the rule's log context), its lease renewed first."""
    with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
        try:
            if item.search is not None:
                record.renew_lease(ctx.es, ctx.policy, ctx.settings.executions_index, item.execution, ctx.clock())
                execute_run(ctx, item.rule, item.execution, item.plan, item.search, refresh=False)
        except Exception as exc:  # noqa: BLE001 - the runner turns any error of one rule into its status
            failed(item.rule, item.execution, exc)
        end(ctx, item.execution)  # its own end, not its batch's


def _small_run(ctx: RunContext, item: _Started, page: FirstPage) -> SmallRun | None:
    """The run of a window read whole by its first page: its would-be alerts, from its rule type (exceptions
    applied per page); None when that fails (the rule's error)."""
    assert item.search is not None
    execution = item.execution
    with rule_context(item.rule.rule_id, item.rule.name, execution.uuid):
        try:
            tools = run_tools(ctx, execution, item.search, refresh=False)
            writes, candidates = type_for(item.rule).read_whole(item.rule, item.search, page.hits, tools)
        except Exception as exc:  # noqa: BLE001 - this rule's failure
            failed(item.rule, execution, exc)
            return None
    window_end = item.plan.window.end
    return SmallRun(
        execution.uuid,
        writes,
        candidates,
        item.plan.cap,
        window_end,
        execution.metrics,
        len(candidates),
        page.search_ms,
    )


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
                failed(item.rule, item.execution, small.error)
            elif small.outcome is not None:
                item.execution.warnings.extend(small.outcome.warnings)
                item.execution.searched_to = small.outcome.searched_to
            end(ctx, item.execution)
    return [runs[uuid][0] for uuid in paged]


def run_batches(
    ctx: RunContext, rules: Sequence[Rule], history: Callable[[Rule], RuleHistory | None]
) -> list[Execution]:
    """Every rule of the pass, a batch at a time: records and first pages in one request per batch; the
    windows read whole by their first page written together; the others paged ``DETECTION_CONCURRENCY``
    at a time (threads sharing the client and the pass's caches); the final records in one request."""
    executions: list[Execution] = []
    with ThreadPoolExecutor(ctx.settings.concurrency, thread_name_prefix="rule") as pool:
        for start in range(0, len(rules), RULES_PER_BATCH):
            if stop.requested():  # SIGTERM or SIGINT: no further batch starts
                break
            executions += _run_batch(ctx, pool, rules[start : start + RULES_PER_BATCH], history)
    return executions


def _run_batch(
    ctx: RunContext, pool: ThreadPoolExecutor, rules: Sequence[Rule], history: Callable[[Rule], RuleHistory | None]
) -> list[Execution]:
    """One batch: start its runs, execute them, and write their final records, whatever happened on the way
    (an unexpected error fails the runs it left unfinished, each with its record)."""
    batch, started = _start_batch(ctx, rules, history)
    futures: list[Future[None]] = []

    def submit(items: Sequence[_Started]) -> None:
        # Each run gets its own copy of this thread's context (job.ops.logs keeps the rule context there).
        futures.extend(pool.submit(contextvars.copy_context().run, _run_started, ctx, item) for item in items)

    error: Exception | None = None
    try:
        running = [item for item in started if not item.execution.errors and item.search is not None]
        submit([item for item in running if item.first_page is None])
        submit(_write_small(ctx, [item for item in running if item.first_page is not None]))
    except Exception as exc:  # noqa: BLE001 - a bug of the batch: the runs it left unfinished fail, with records
        error = exc
    finally:
        for future in futures:
            future.result()  # a run in a thread never raises: its errors are its status
        for item in started:
            if error is not None and item.execution.end is None and not item.execution.errors:
                with rule_context(item.rule.rule_id, item.rule.name, item.execution.uuid):
                    failed(item.rule, item.execution, error)
        for execution in batch:
            if execution.end is None:
                end(ctx, execution)
        try:
            with _shared(batch):
                record.write_final_many(ctx.es, ctx.policy, ctx.settings.executions_index, batch)
        finally:
            for item in started:
                lease.finished(item.execution.uuid)
    return batch
