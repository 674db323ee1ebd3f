"""``detection-job run``: one pass over the selected rules."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import ApiError, TransportError

from job.commands.check import unavailable
from job.durations import shown
from job.errors import ConfigError
from job.esclient import make_client
from job.logs import rule_context
from job.metrics import RuleMetrics, push
from job.rules import load_rules
from job.rules.model import Rule
from job.rules.validation import check_rules
from job.run.execlog import Execution
from job.run.install import install
from job.run.lifecycle import maintain
from job.run.retry import RetryPolicy
from job.run.runner import RunContext, run_rules
from job.run.window import isoformat, now_problem, parse_timestamp
from job.settings import Settings

NAME = "run"
HELP = "run the rules once: search each rule's window and write alerts"

# 1: a rule failed, a rule file does not validate, or events were dead-lettered.
EXIT_OK, EXIT_RULE_FAILED = 0, 1

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE_ID|PATH",
        help="run only this rule (a rule_id from the rules directory, or a rule file); repeatable",
    )
    parser.add_argument("--now", metavar="ISO8601", help="the run's clock (default: the current time), for backfills")


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = parse_timestamp(text)
    except ValueError:
        raise ConfigError(f"--now: {shown(text)} is not an ISO 8601 timestamp (e.g. 2026-01-01T10:00:00Z)") from None
    problem = now_problem(moment)
    if problem is not None:
        raise ConfigError(f"--now: {shown(text)} {problem}")
    return moment


@dataclass
class Selection:
    runnable: list[Rule]
    refused: list[tuple[Rule, list[str]]]  # rules that load but do not validate, with their problems
    problems: list[str]  # every line of why a rule file cannot run
    skipped: list[str]  # rules that are not meant to run here (other types, disabled)


def select_rules(settings: Settings, wanted: list[str], now: datetime) -> Selection:
    """The rules to run, and the ones that cannot run and why."""
    paths = [Path(item) for item in wanted if Path(item).exists()]
    ids = [item for item in wanted if not Path(item).exists()]
    loaded = load_rules([settings.rules_dir] if ids or not wanted else [])
    extra = load_rules(paths) if paths else None
    problems = [str(problem) for problem in loaded.problems]
    rules = list(loaded.rules)
    if ids:
        by_id = {rule.rule_id: rule for rule in rules}
        unknown = [rule_id for rule_id in ids if rule_id not in by_id]
        if unknown:
            raise ConfigError(f"--rule: no rule with rule_id {', '.join(unknown)} in {settings.rules_dir}")
        rules = [by_id[rule_id] for rule_id in ids]
        problems = []  # problems of rules that were not asked for are not this run's business
    elif wanted:
        rules = []
    if extra is not None:
        rules.extend(extra.rules)
        problems.extend(str(problem) for problem in extra.problems)
    skipped = [
        f"{rule.source}: rule type {rule.type!r} is not supported by this job" for rule in rules if not rule.supported
    ]
    skipped += [f"{rule.source}: disabled" for rule in rules if rule.supported and not rule.enabled]
    candidates = [rule for rule in rules if rule.supported and rule.enabled]
    invalid, _ = check_rules(candidates, alerts_max=settings.alerts_max, now=now)
    problems.extend(str(error) for error in invalid)
    refused = [(rule, [str(e) for e in invalid if e.path == rule.source]) for rule in candidates]
    refused = [(rule, messages) for rule, messages in refused if messages]
    refused_sources = {rule.source for rule, _ in refused}
    runnable = [rule for rule in candidates if rule.source not in refused_sources]
    return Selection(runnable, refused, problems, skipped)


def summary(executions: list[Execution]) -> str:
    lines = [f"{'status':<16} {'alerts':>6} {'dups':>6}  {'window':<51} rule"]
    for ex in executions:
        window = f"{isoformat(ex.window.start)} .. {isoformat(ex.window.end)}" if ex.window else "-"
        created = ex.metrics.alerts_created
        dups = ex.metrics.duplicates_skipped
        lines.append(f"{ex.status:<16} {created:>6} {dups:>6}  {window:<51} {ex.rule_name}")
        if ex.status != "succeeded":
            lines.extend(f"    {message}" for message in [*ex.errors, *ex.warnings])
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    metrics = RuleMetrics()
    try:
        return run_pass(settings, args.rule, parse_now(args.now), metrics)
    finally:
        if settings.pushgateway_url is not None and metrics.rule_ids():
            push(metrics, settings.pushgateway_url.get_secret_value(), settings.space_id)


def run_pass(settings: Settings, wanted: list[str], now: datetime, metrics: RuleMetrics) -> int:
    """One pass over the rules (all of them, or the ``wanted`` ids and files); the exit code."""
    selection = select_rules(settings, wanted, now)
    for problem in selection.problems:
        print(f"not run, does not validate: {problem}", file=sys.stderr)
    for line in selection.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    policy = RetryPolicy.from_settings(settings)
    try:
        with make_client(settings) as es:
            install(es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
            maintain(es, policy, settings.alerts_index, settings.alerts_rollover, settings.alerts_retention)
            context = RunContext(es=es, settings=settings, now=now, policy=policy)
            executions = run_rules(context, selection.runnable, refused=selection.refused)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    intervals = {rule.rule_id: rule.interval_delta for rule in selection.runnable}
    intervals.update((rule.rule_id, rule.interval_delta) for rule, _ in selection.refused)
    for execution in executions:
        report(execution, metrics, intervals.get(execution.rule_id))
    print(summary(executions))
    failed = bool(selection.problems) or any(ex.status == "failed" for ex in executions)
    dead_lettered = any(ex.metrics.dead_lettered for ex in executions)
    return EXIT_RULE_FAILED if failed or dead_lettered else EXIT_OK


def report(execution: Execution, metrics: RuleMetrics, interval: timedelta | None) -> None:
    """One log line and the metrics of a finished execution: every warning and error reaches both."""
    metrics.observe(execution.to_document(), interval)
    level = {"succeeded": logging.INFO, "partial failure": logging.WARNING}.get(execution.status, logging.ERROR)
    with rule_context(execution.rule_id, execution.rule_name, execution.uuid):
        log.log(
            level,
            "rule execution %s: %d alerts created, %d duplicates skipped%s",
            execution.status,
            execution.metrics.alerts_created,
            execution.metrics.duplicates_skipped,
            "".join(f"; {message}" for message in [*execution.errors, *execution.warnings]),
        )
