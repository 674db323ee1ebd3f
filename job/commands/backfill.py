"""``detection-job backfill --rule ID --from ISO --to ISO``: one rule over a past range (:mod:`job.run.backfill`).

Windows run oldest first, each as one rule run with its own execution record (``execution.type:
backfill``) and the rule's alerts cap. On a terminal a progress bar shows them; otherwise each window
is one log line. A rerun skips the windows already done, so a killed backfill resumes. Windows cut short
by the alerts cap are named with where they stopped; rerunning the same backfill continues them.
Exit code 0 when every window is done, 1 when one failed, stopped early or dead-lettered events, 2 for a
configuration or connection error, 143 / 130 when SIGTERM / SIGINT stopped it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from elasticsearch import ApiError, TransportError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from job import stop
from job.client.esclient import make_client
from job.client.fieldcaps import field_types_from_caps
from job.client.retry import RetryPolicy
from job.commands import run as run_command
from job.commands.check import unavailable
from job.config.durations import shown
from job.config.settings import Settings
from job.errors import ConfigError
from job.execlog import record
from job.execlog.execution import Execution
from job.indices import preflight
from job.ops.logs import rule_context
from job.rules.model import Rule
from job.run.backfill import MAX_WINDOWS, backfill_windows, done_windows, window_count
from job.run.runner import RunContext, run_rule
from job.text.table import printable
from job.window import Window, isoformat
from job.writing.writer import MAX_ALERTS_WARNING

NAME = "backfill"
HELP = "run one rule over a past range, window by window (resumable; never moves the scheduled runs)"

EXIT_OK, EXIT_INCOMPLETE = 0, 1
_Advance = Callable[[str], None]  # one window is done: its line

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rule", required=True, metavar="RULE_ID|PATH", help="the rule (a rule_id or a rule file)")
    parser.add_argument("--from", dest="start", required=True, metavar="ISO8601", help="start of the range")
    parser.add_argument("--to", dest="end", required=True, metavar="ISO8601", help="end of the range (not after now)")


def _moment(flag: str, text: str) -> datetime:
    moment = run_command.parse_now(text, flag)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)  # as the log stores it


def _the_rule(settings: Settings, wanted: str) -> Rule:
    loaded = run_command.load_wanted(settings, [wanted])
    if loaded.load_problems:
        raise ConfigError(f"--rule: {loaded.load_problems[0]}")
    if loaded.skipped:
        rule, why = loaded.skipped[0]
        raise ConfigError(f"--rule: {printable(rule.name)} ({rule.rule_id}) cannot be backfilled: {why}")
    if len(loaded.rules) != 1:
        raise ConfigError(f"--rule: {shown(wanted)} names {len(loaded.rules)} rules, not one")
    return loaded.rules[0]


def run(args: argparse.Namespace, settings: Settings) -> int:
    start, end = _moment("--from", args.start), _moment("--to", args.end)
    if start >= end:
        raise ConfigError("--from: must lie before --to")
    if end > datetime.now(UTC):
        raise ConfigError("--to: lies in the future; scheduled runs search what is still to come")
    rule = _the_rule(settings, args.rule)
    count = window_count(rule, start, end)
    if count > MAX_WINDOWS:
        raise ConfigError(f"--from/--to: {count} windows of {rule.interval}; at most {MAX_WINDOWS} per backfill")
    with stop.handled():
        code = _backfill(settings, rule, backfill_windows(rule, start, end))
        return run_command.interrupted_exit(code)


def _backfill(settings: Settings, rule: Rule, windows: list[Window]) -> int:
    policy = RetryPolicy.from_settings(settings)
    try:
        with make_client(settings) as es:
            preflight.prepare(es, policy, settings)
            context = RunContext(es=es, settings=settings, now=datetime.now(UTC), policy=policy)
            selection = run_command.select_rules(
                run_command.Loaded([rule], [], []),
                {},
                context.now,
                None,
                "named",
                settings=settings,
                compiler=context.compiler,
                field_types=lambda indices: field_types_from_caps(context.field_caps(indices)),
            )
            for problem in selection.problems:
                print(f"not run, does not validate: {problem}", file=sys.stderr)
            if selection.problems:
                return EXIT_INCOMPLETE
            done = done_windows(es, policy, settings.executions_index, rule.rule_id, settings.space_id, windows)
            todo = [window for window in windows if window not in done]
            with _progress(rule, len(windows), len(done)) as advance:
                executions = []
                for position, window in enumerate(windows, start=1):
                    if window in done or stop.requested():
                        continue
                    execution = run_rule(context, rule, window=window)
                    executions.append(execution)
                    advance(_window_line(position, len(windows), execution))
            record.refresh(es, policy, settings.executions_index)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    return _summary(rule, len(windows), len(done), len(todo), executions)


def _window_line(position: int, total: int, execution: Execution) -> str:
    window = execution.window
    bounds = f"{isoformat(window.start)} .. {isoformat(window.end)}" if window else "-"
    return (
        f"backfill window {position}/{total} {bounds}: {execution.status}, "
        f"{execution.metrics.alerts_created} alerts created, {execution.metrics.duplicates_skipped} duplicates skipped"
    )


@contextmanager
def _progress(rule: Rule, total: int, done: int) -> Iterator[_Advance]:
    """A progress bar on a terminal; otherwise one log line per window. Warnings and errors are logged either way."""
    if not sys.stderr.isatty():
        yield lambda line: log.info("%s", line)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), redirect_stdout=False, redirect_stderr=False) as progress:
        task = progress.add_task(f"backfill {printable(rule.name)[:40]}", total=total, completed=done)
        yield lambda line: progress.advance(task)


def _stopped_early(execution: Execution) -> bool:
    window = execution.window
    return execution.searched_to is not None and window is not None and execution.searched_to < window.end


def _summary(rule: Rule, total: int, done: int, todo: int, executions: list[Execution]) -> int:
    """Report each window that did not end well, then one line for the whole backfill; the exit code."""
    incomplete = False
    for execution in executions:
        with rule_context(execution.rule_id, execution.rule_name, execution.uuid):
            window = execution.window
            bounds = f"{isoformat(window.start)} .. {isoformat(window.end)}" if window else "-"
            if execution.status == "failed":
                log.error("backfill window %s failed: %s", bounds, execution.message)
            elif _stopped_early(execution) and execution.searched_to is not None:
                cause = "the alerts cap" if MAX_ALERTS_WARNING in execution.warnings else "the run timeout"
                print(
                    f"window {bounds}: stopped at {cause} ({execution.metrics.alerts_created} alerts created) at "
                    f"{isoformat(execution.searched_to)}; run the same backfill again to continue from there"
                )
            elif execution.warnings:
                log.warning("backfill window %s: %s", bounds, execution.message)
        incomplete = incomplete or execution.status == "failed" or _stopped_early(execution)
        incomplete = incomplete or bool(execution.metrics.dead_lettered)
    created = sum(execution.metrics.alerts_created for execution in executions)
    failed = sum(1 for execution in executions if execution.status == "failed")
    not_run = todo - len(executions)
    print(
        f"backfill {printable(rule.name)} ({rule.rule_id}): {total} windows, {done} already done, "
        f"{len(executions)} run ({failed} failed), {not_run} not run; {created} alerts created"
    )
    return EXIT_INCOMPLETE if incomplete or not_run else EXIT_OK
