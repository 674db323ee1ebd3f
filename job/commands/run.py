"""``detection-job run``: one pass over the selected rules."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import ApiError, TransportError

from job.backends import FieldTypesSource, QueryTranslator
from job.commands.check import unavailable
from job.errors import ConfigError
from job.esclient import make_client
from job.fieldcaps import field_types_from_caps
from job.rules import load_rules
from job.rules.model import Rule
from job.rules.validation import check_rules
from job.run.execlog import Execution
from job.run.install import install
from job.run.retry import RetryPolicy
from job.run.runner import RunContext, record_refused, run_rules
from job.run.window import isoformat, parse_timestamp
from job.settings import Settings

NAME = "run"
HELP = "run the rules once: search each rule's window and write alerts"

EXIT_OK, EXIT_RULE_FAILED = 0, 1


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
        return parse_timestamp(text)
    except ValueError:
        raise ConfigError(f"--now: {text!r} is not an ISO 8601 timestamp (e.g. 2026-01-01T10:00:00Z)") from None


@dataclass
class Selection:
    runnable: list[Rule]
    refused: list[tuple[Rule, list[str]]]  # rules that load but do not validate, with their problems
    problems: list[str]  # every line of why a rule file cannot run
    skipped: list[str]  # rules that are not meant to run here (other types, disabled)


def load_selected(settings: Settings, wanted: list[str]) -> tuple[list[Rule], list[str]]:
    """The rules asked for (all of the rules folder by default) and the problems of their files.

    ``ConfigError`` for a ``--rule`` that names no rule.
    """
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
    return rules, problems


def check_selected(
    settings: Settings,
    rules: list[Rule],
    problems: list[str],
    now: datetime,
    *,
    translator: QueryTranslator | None = None,
    field_types: FieldTypesSource | None = None,
) -> Selection:
    """Which loaded rules run, and the ones that cannot run and why.

    With the run's ``translator`` and ``field_types``, queries are checked exactly as they will run.
    """
    skipped = [
        f"{rule.source}: rule type {rule.type!r} is not supported by this job" for rule in rules if not rule.supported
    ]
    skipped += [f"{rule.source}: disabled" for rule in rules if rule.supported and not rule.enabled]
    candidates = [rule for rule in rules if rule.supported and rule.enabled]
    checked = check_rules(
        candidates, alerts_max=settings.alerts_max, now=now, translator=translator, field_types=field_types
    )
    invalid = [diagnostic for diagnostic in checked if diagnostic.is_error]
    problems = [*problems, *(str(error) for error in invalid)]
    refused = [(rule, [str(e) for e in invalid if e.path == rule.source]) for rule in candidates]
    refused = [(rule, messages) for rule, messages in refused if messages]
    refused_sources = {rule.source for rule, _ in refused}
    runnable = [rule for rule in candidates if rule.source not in refused_sources]
    return Selection(runnable, refused, problems, skipped)


def summary(executions: list[Execution]) -> str:
    lines = [f"{'status':<16} {'alerts':>6} {'dups':>6}  {'window':<51} rule"]
    for ex in executions:
        window = f"{isoformat(ex.window.start)} .. {isoformat(ex.window.end)}" if ex.window else "-"
        created = ex.metrics.get("alerts_created", 0)
        dups = ex.metrics.get("duplicates_skipped", 0)
        lines.append(f"{ex.status:<16} {created:>6} {dups:>6}  {window:<51} {ex.rule_name}")
        if ex.status != "succeeded":
            lines.extend(f"    {message}" for message in [*ex.errors, *ex.warnings])
    return "\n".join(lines)


def _field_types(context: RunContext) -> FieldTypesSource:
    return lambda indices: field_types_from_caps(context.field_caps(indices))


def run(args: argparse.Namespace, settings: Settings) -> int:
    now = parse_now(args.now)
    rules, problems = load_selected(settings, args.rule)  # a --rule mistake stops the run before connecting
    policy = RetryPolicy.from_settings(settings)
    try:
        with make_client(settings) as es:
            install(es, policy, settings.alerts_index, settings.executions_index)
            context = RunContext(es=es, settings=settings, now=now, policy=policy)
            # Checked with the run's field types and translator: each query is translated once.
            selection = check_selected(
                settings, rules, problems, now, translator=context.translator, field_types=_field_types(context)
            )
            for problem in selection.problems:
                print(f"not run, does not validate: {problem}", file=sys.stderr)
            for line in selection.skipped:
                print(f"skipped: {line}", file=sys.stderr)
            executions = [record_refused(context, rule, messages) for rule, messages in selection.refused]
            executions += run_rules(context, selection.runnable)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    print(summary(executions))
    failed = bool(selection.problems) or any(ex.status == "failed" for ex in executions)
    return EXIT_RULE_FAILED if failed else EXIT_OK
