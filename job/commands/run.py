"""``detection-job run``: one pass over the selected rules."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import ApiError, TransportError

from job import stop
from job.backends import FieldTypesSource
from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.durations import shown
from job.config.settings import Settings
from job.config.shards import Shard, in_shard, parse_shard
from job.errors import ConfigError
from job.execlog.execution import Execution
from job.execlog.last_runs import LastRuns, last_runs
from job.indices import preflight
from job.ops.logs import rule_context
from job.ops.metrics import RuleMetrics, push
from job.rules import load_rules
from job.rules.model import Rule
from job.ruletypes.checks import check_rules
from job.ruletypes.registry import Compiler
from job.run.runner import RunContext, run_rules
from job.run.selection import Choice, Mode, cadence, choose
from job.text.table import printable
from job.window import isoformat, now_problem, parse_timestamp

NAME = "run"
HELP = "one pass over the rules that are due (or --all, or --rule): search each window and write alerts"

# 1: a rule failed, a rule file does not validate, or events were dead-lettered.
EXIT_OK, EXIT_RULE_FAILED = 0, 1

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE_ID|PATH",
        help="run only this rule now, due or not, whatever its shard (a rule_id from the rules directory, or a "
        "rule file); repeatable",
    )
    which.add_argument("--all", action="store_true", help="run every rule of the shard now, due or not")
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the rules of shard I of N (default: DETECTION_SHARD, or JOB_COMPLETION_INDEX of "
        "DETECTION_SHARDS in an Indexed Job)",
    )
    parser.add_argument("--now", metavar="ISO8601", help="the run's clock (default: the current time), for backfills")


def parse_now(text: str | None, flag: str = "--now") -> datetime:
    """The moment a command-line ``flag`` gives (None: the current time); ``ConfigError`` naming the flag."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = parse_timestamp(text)
    except ValueError:
        raise ConfigError(f"{flag}: {shown(text)} is not an ISO 8601 timestamp (e.g. 2026-01-01T10:00:00Z)") from None
    problem = now_problem(moment)
    if problem is not None:
        raise ConfigError(f"{flag}: {shown(text)} {problem}")
    return moment


def pass_shard(settings: Settings, flag: str | None) -> Shard | None:
    """The shard this process runs: ``--shard``, else ``DETECTION_SHARD`` or the Indexed Job's."""
    if flag is not None:
        try:
            return parse_shard(flag)
        except ValueError as exc:
            raise ConfigError(f"--shard: {exc}") from None
    if settings.shards is not None and settings.shard is None:
        raise ConfigError("DETECTION_SHARDS: set, but neither DETECTION_SHARD nor JOB_COMPLETION_INDEX names the shard")
    return settings.shard


@dataclass
class Loaded:
    """The rules that could run (supported, enabled), and why the others cannot."""

    rules: list[Rule]
    load_problems: list[str]  # files that do not load at all (no rule, so no shard either)
    skipped: list[tuple[Rule, str]]  # rules that are not meant to run here (other types, disabled)
    other_shards: int = 0  # rule files of other shards, passed over unparsed


def load_wanted(settings: Settings, wanted: list[str], shard: Shard | None = None) -> Loaded:
    """Every rule of the rules folder (with ``shard``: the files of the other shards passed over by a pre-scan
    of their rule_id), or the ``wanted`` ids and files, each once (not yet validated: that takes the cluster's
    field types). ``ConfigError`` for a ``--rule`` that names no rule, before connecting."""
    wanted = list(dict.fromkeys(wanted))
    paths = list({Path(item).resolve(): Path(item) for item in wanted if Path(item).exists()}.values())
    ids = [item for item in wanted if not Path(item).exists()]
    keep = (lambda rule_id: in_shard(rule_id, shard)) if shard is not None and not wanted else None
    loaded = load_rules([settings.rules_dir] if ids or not wanted else [], keep=keep)
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
        named = {rule.rule_id for rule in rules}
        rules.extend(rule for rule in extra.rules if rule.rule_id not in named)
        problems.extend(str(problem) for problem in extra.problems)
    skipped = [(rule, f"rule type {rule.type!r} is not supported by this job") for rule in rules if not rule.supported]
    skipped += [(rule, "disabled") for rule in rules if rule.supported and not rule.enabled]
    candidates = [rule for rule in rules if rule.supported and rule.enabled]
    return Loaded(candidates, problems, skipped, loaded.passed_over)


@dataclass
class Selection:
    runnable: list[Rule]
    refused: list[tuple[Rule, list[str]]]  # rules that load but do not validate, with their problems
    problems: list[str]  # every line of why a rule file cannot run (files that do not load, chosen rules)
    skipped: list[str]  # this shard's rules that are not meant to run here (other types, disabled)
    choice: Choice  # what the shard and the schedule left out


def select_rules(
    loaded: Loaded,
    histories: Mapping[str, LastRuns],
    now: datetime,
    shard: Shard | None,
    mode: Mode,
    *,
    settings: Settings,
    compiler: Compiler | None = None,
    field_types: FieldTypesSource | None = None,
) -> Selection:
    """The rules to run now (``job.run.selection.choose``), validated as they will run (with the run's
    ``compiler`` and ``field_types``: each query is compiled once), and why the others cannot run."""
    choice = choose(loaded.rules, histories, now, shard=shard, mode=mode, override=settings.schedule_interval)
    checked = check_rules(
        choice.run, alerts_max=settings.alerts_max, now=now, compiler=compiler, field_types=field_types
    )
    invalid: dict[str, list[str]] = {}
    for diagnostic in checked:
        if diagnostic.is_error:
            invalid.setdefault(diagnostic.path, []).append(str(diagnostic))

    def mine(rule: Rule) -> bool:
        return mode == "named" or in_shard(rule.rule_id, shard)

    problems = [*loaded.load_problems, *(message for rule in choice.run for message in invalid.get(rule.source, []))]
    skipped = [f"{rule.source}: {why}" for rule, why in loaded.skipped if mine(rule)]
    refused = [(rule, invalid[rule.source]) for rule in choice.run if rule.source in invalid]
    runnable = [rule for rule in choice.run if rule.source not in invalid]
    return Selection(runnable, refused, problems, skipped, choice)


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


def left_out(choice: Choice, shard: Shard | None, other_shards: int = 0) -> list[str]:
    """One line for the rules not due, one for the other shards' rules (neither is a failure)."""
    lines = []
    if choice.not_due:
        rule, due = min(choice.not_due, key=lambda item: item[1])
        lines.append(
            f"not due: {len(choice.not_due)} rules (the next, {printable(rule.name)}, at {isoformat(due)}); "
            "--all runs them now"
        )
    others = len(choice.other_shards) + other_shards
    if others:
        lines.append(f"shard {shard}: {others} rules belong to other shards")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.rule and args.shard is not None:
        raise ConfigError("--shard: a rule named with --rule runs whatever its shard; give one or the other")
    mode: Mode = "named" if args.rule else "all" if args.all else "due"
    shard = pass_shard(settings, args.shard) if mode != "named" else None
    metrics = RuleMetrics()
    now = parse_now(args.now)
    with stop.handled():
        try:
            code = run_pass(settings, args.rule, now, metrics, mode=mode, shard=shard)
        finally:
            if settings.pushgateway_url is not None and metrics.rule_ids():
                push(metrics, settings.pushgateway_url.get_secret_value(), settings.space_id)
        return interrupted_exit(code)


def interrupted_exit(code: int) -> int:
    """``code``, or 143 / 130 when SIGTERM / SIGINT stopped the command (with one line saying so)."""
    signal_name = stop.requested()
    if signal_name is None:
        return code
    print(
        f"detection-job: stopped by {signal_name}; the rules it interrupted will catch up at the next run",
        file=sys.stderr,
    )
    return stop.exit_code(signal_name)


def run_pass(
    settings: Settings,
    wanted: list[str],
    now: datetime,
    metrics: RuleMetrics,
    *,
    mode: Mode = "due",
    shard: Shard | None = None,
) -> int:
    """One pass over the rules (those due, all of them, or the ``wanted`` ids and files); the exit code."""
    loaded = load_wanted(settings, wanted, shard)
    policy = RetryPolicy.from_settings(settings)
    try:
        with make_client(settings) as es:
            preflight.prepare(es, policy, settings)
            # Due-ness and planning read the execution log together: one read per pass.
            histories = (
                last_runs(
                    es,
                    policy,
                    settings.executions_index,
                    sorted({rule.rule_id for rule in loaded.rules if in_shard(rule.rule_id, shard)}),
                    settings.space_id,
                    with_history=True,
                )
                if mode == "due"
                else {}
            )
            context = RunContext(es=es, settings=settings, now=now, policy=policy)
            selection = select_rules(
                loaded,
                histories,
                now,
                shard,
                mode,
                settings=settings,
                compiler=context.compiler,
                field_types=context.field_types,
            )
            for problem in selection.problems:
                print(f"not run, does not validate: {problem}", file=sys.stderr)
            for line in selection.skipped:
                print(f"skipped: {line}", file=sys.stderr)
            planned = (
                {rule_id: runs.history for rule_id, runs in histories.items() if runs.history is not None}
                if mode == "due"
                else None
            )
            executions = run_rules(context, selection.runnable, refused=selection.refused, histories=planned)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    intervals = {rule.rule_id: cadence(rule, settings.schedule_interval) for rule in selection.choice.run}
    for execution in executions:
        report(execution, metrics, intervals.get(execution.rule_id))
    print(summary(executions))
    for line in left_out(selection.choice, shard, loaded.other_shards):
        print(line)
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
