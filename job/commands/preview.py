"""``detection-job preview RULE_FILE... [--from ISO|date-math] [--to ...] [--json] [--limit N]``: what rules would
have alerted on over a past range, each run exactly as ``run`` and ``backfill`` run it (:mod:`job.run.preview`),
writing nothing: no alerts, no execution records, no dead letters. Read privileges suffice.

Each rule runs in backfill's windows over ``[--from, --to]`` (default: the last 24 hours). A table per rule
says how many alerts a run would create, how many would-be alerts exist already (a run skips them), what
suppressed groups would fold into existing alerts, the dead letters a run would write, the top values of
``host.name``, ``user.name`` and ``process.name``, every warning (the max-signals one among them) and the
first would-be alerts. With ``--json``, stdout holds one ``{"_id": ..., "_source": ...}`` line per would-be
alert: the document a run would create, byte for byte but for the run's own times and ids; the summary of each
rule goes to stderr.

Rules are rule files, folders of them, or rule_ids of ``DETECTION_RULES_DIR``; disabled rules preview too.
Exit code 0; 1 when a rule failed in some window; 2 on bad input (a rule that does not load, a type this job
does not run, a rule that does not validate, a bad range: the other rules still run).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import ApiError, TransportError

from job import stop
from job.alerts.source_fields import values_at
from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands import run as run_command
from job.commands.check import unavailable
from job.config.durations import shown
from job.config.settings import Settings
from job.errors import ConfigError
from job.execlog.execution import Execution
from job.rules import load_rules
from job.rules.model import Rule
from job.ruletypes.checks import check_rules
from job.run.backfill import MAX_WINDOWS, backfill_windows, window_count
from job.run.preview import preview_rule
from job.run.steps import RunContext
from job.text.table import Column, clip, human_duration, printable, render
from job.window import isoformat, look_back, resolve_date_math
from job.writing.collect import Collector
from job.writing.writer import MAX_ALERTS_WARNING

NAME = "preview"
HELP = "what rules would have alerted on over a past range, run as run runs them; writes nothing"

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_FROM = "now-24h"
TOP = 5
LISTED = 10  # would-be alerts listed per rule in the table, unless --limit says otherwise
SUMMARY_FIELDS = ("host.name", "user.name", "process.name")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "rules", nargs="+", metavar="RULE_FILE", help="rule files, folders of them, or rule_ids of DETECTION_RULES_DIR"
    )
    parser.add_argument(
        "--from", dest="start", default=DEFAULT_FROM, metavar="ISO|DATE_MATH", help=f"start (default {DEFAULT_FROM})"
    )
    parser.add_argument("--to", dest="end", default="now", metavar="ISO|DATE_MATH", help="end (default now)")
    parser.add_argument("--json", action="store_true", help='one {"_id", "_source"} line per would-be alert on stdout')
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"at most N would-be alerts listed per rule (default: {LISTED} in the table, every one with --json)",
    )


def _moment(flag: str, text: str, now: datetime) -> datetime:
    try:
        moment = resolve_date_math(text, now)
    except ValueError:
        raise ConfigError(f"--{flag}: {shown(text)} is neither an ISO 8601 time nor date math (now-24h)") from None
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)  # as backfill's windows


def load(settings: Settings, wanted: Sequence[str]) -> tuple[list[Rule], list[str]]:
    """The rules of the files, folders and rule_ids ``wanted`` (disabled ones too), and a line per bad input."""
    paths = [Path(item) for item in wanted if Path(item).exists() or Path(item).is_symlink()]
    ids = [item for item in wanted if not (Path(item).exists() or Path(item).is_symlink())]
    loaded = load_rules(paths) if paths else None
    rules = list(loaded.rules) if loaded else []
    bad = [str(problem) for problem in loaded.problems] if loaded else []
    if ids:
        by_id = {rule.rule_id: rule for rule in load_rules([settings.rules_dir]).rules}
        for rule_id in ids:
            if rule_id in by_id:
                rules.append(by_id[rule_id])
            else:
                bad.append(f"{rule_id}: no such rule file, and no rule with this rule_id in {settings.rules_dir}")
    unique = list({rule.rule_id: rule for rule in reversed(rules)}.values())[::-1]  # a rule named twice runs once
    for rule in unique:
        if not rule.supported:
            bad.append(f"{rule.source}: {rule.refusal or f'rule type {rule.type!r} is not run by this job'}")
    return [rule for rule in unique if rule.supported], bad


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit: must be 0 or more")
    now = datetime.now(UTC)
    start, end = _moment("from", args.start, now), _moment("to", args.end, now)
    if start >= end:
        raise ConfigError("--from: must lie before --to")
    if end > now:
        raise ConfigError("--to: lies in the future; a preview searches what has happened")
    rules, bad = load(settings, args.rules)
    with stop.handled():
        code = _preview(settings, rules, bad, start, end, now, args)
        return run_command.interrupted_exit(code)


def _preview(
    settings: Settings,
    rules: list[Rule],
    bad: list[str],
    start: datetime,
    end: datetime,
    now: datetime,
    args: argparse.Namespace,
) -> int:
    policy = RetryPolicy.from_settings(settings)
    failed = False
    try:
        with make_client(settings, read_only=True) as es:
            ctx = RunContext(es=es, settings=settings, now=now, policy=policy)
            checked = check_rules(
                rules, alerts_max=settings.alerts_max, now=now, compiler=ctx.compiler, field_types=ctx.field_types
            )
            invalid = {diagnostic.path for diagnostic in checked if diagnostic.is_error}
            bad += [str(diagnostic) for diagnostic in checked if diagnostic.is_error]
            for line in bad:
                print(f"not previewed: {line}", file=sys.stderr)
            for rule in rules:
                if rule.source in invalid or stop.requested():
                    continue
                count = window_count(rule, start, end)
                if count > MAX_WINDOWS:
                    message = f"{rule.source}: {count} windows of {rule.interval}; at most {MAX_WINDOWS}"
                    print(f"not previewed: {message}", file=sys.stderr)
                    bad.append(rule.source)
                    continue
                report = Report(rule, count, json=args.json, limit=args.limit)
                report.executions = preview_rule(ctx, rule, backfill_windows(rule, start, end), report.collector)
                report.show(start, end)
                failed = failed or report.failed
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    return EXIT_BAD_INPUT if bad else EXIT_FAILED if failed else EXIT_OK


def first_value(source: Mapping[str, Any], path: str) -> str:
    values = values_at(source, path)
    return str(values[0]) if values else ""


@dataclass
class Report:
    """What one rule's preview found, printed as a table (or its alerts as JSON lines, the summary on stderr)."""

    rule: Rule
    windows: int
    json: bool
    limit: int | None
    executions: list[Execution] = field(default_factory=list)
    top: dict[str, Counter[str]] = field(default_factory=lambda: {name: Counter() for name in SUMMARY_FIELDS})
    listed: list[list[str]] = field(default_factory=list)
    shown_alerts: int = 0
    collector: Collector = field(init=False)

    def __post_init__(self) -> None:
        self.collector = Collector(self.take)

    def take(self, doc_id: str, body: bytes, source: Mapping[str, Any]) -> None:
        """One would-be alert (from the collector, under its lock)."""
        for name, counter in self.top.items():
            counter.update(str(value) for value in values_at(source, name))
        wanted = self.limit if self.limit is not None else (None if self.json else LISTED)
        if wanted is not None and self.shown_alerts >= wanted:
            return
        self.shown_alerts += 1
        if self.json:
            sys.stdout.buffer.write(b'{"_id":' + orjson.dumps(doc_id) + b',"_source":' + body + b"}\n")
            return
        row = [first_value(source, "kibana.alert.original_time"), *(first_value(source, n) for n in SUMMARY_FIELDS)]
        self.listed.append([*row, first_value(source, "kibana.alert.reason")])

    @property
    def failed(self) -> bool:
        return any(execution.status == "failed" for execution in self.executions)

    def total(self, name: str) -> int:
        """The sum of one count of the windows' metrics."""
        return sum(getattr(execution.metrics, name) or 0 for execution in self.executions)

    def show(self, start: datetime, end: datetime) -> None:
        lines = self.lines(start, end)
        if self.json:
            sys.stdout.flush()
            print("\n".join(f"preview: {line}" for line in lines), file=sys.stderr)
            return
        if self.listed:
            lines.append(f"  the first {len(self.listed)} would-be alerts:")
            columns = [Column("original time", 24), *(Column(name, 24) for name in SUMMARY_FIELDS)]
            table = render([*columns, Column("reason", 100)], self.listed)
            lines += [f"    {line}" for line in table.splitlines()]
        print("\n".join(lines), flush=True)

    def lines(self, start: datetime, end: datetime) -> list[str]:
        rule, collector = self.rule, self.collector
        ran = len(self.executions)
        overlap = human_duration(look_back(rule, end).total_seconds())
        lines = [
            f"{printable(rule.name)} ({rule.rule_id}) {printable(rule.source)}",
            f"  range         {isoformat(start)} .. {isoformat(end)}: {ran} of {self.windows} windows of "
            f"{rule.interval}, look-back {overlap}",
            f"  alerts        {collector.alerts} would be created",
            f"  duplicates    {len(collector.existed)} would-be alerts exist already (a run skips them)",
        ]
        if self.rule.alert_suppression is not None:
            folds = f" ({', '.join(sorted(collector.folds)[:3])})" if collector.folds else ""
            lines.append(
                f"  suppression   {self.total('suppressed_docs')} events suppressed; {len(collector.folds)} "
                f"existing alerts would take in later events{folds}"
            )
        if collector.lettered_before:
            skipped = len(collector.lettered_before)
            lines.append(f"  dead letters  {skipped} events skipped: dead-lettered already (deadletter retry)")
        if collector.letters:
            samples = "; ".join(clip(printable(letter.reason), 120) for letter in list(collector.letters.values())[:3])
            lines.append(f"  dead letters  {len(collector.letters)} events could not become alerts: {samples}")
        for name, counter in self.top.items():
            if counter:
                values = ", ".join(f"{clip(printable(value), 40)} ({n})" for value, n in counter.most_common(TOP))
                lines.append(f"  {name:<13} {values}")
        lines += self._problems()
        return lines

    def _problems(self) -> list[str]:
        warnings: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for execution in self.executions:
            warnings.update(dict.fromkeys(execution.warnings, 1))
            errors.update(dict.fromkeys(execution.errors, 1))
        lines = []
        if MAX_ALERTS_WARNING in warnings:
            lines.append(f"  max signals   hit in {warnings.pop(MAX_ALERTS_WARNING)} windows: {MAX_ALERTS_WARNING}")
        lines += [f"  warning       {clip(printable(text), 300)} ({n} windows)" for text, n in warnings.items()]
        lines += [f"  FAILED        {clip(printable(text), 300)} ({n} windows)" for text, n in errors.items()]
        return lines
