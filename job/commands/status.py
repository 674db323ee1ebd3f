"""``detection-job status [--json]``: is detection healthy? Every rule with its last execution.

Exit 1 when a rule's last completed execution failed, when its last success is older than two
intervals (stale), or when a rule file does not load; usable as a Kubernetes or Nagios check.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, TransportError

from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.commands.run import pass_shard
from job.config.settings import Settings
from job.config.shards import in_shard
from job.execlog.last_runs import NEVER_RAN, LastRuns, last_runs
from job.rules import Rule, load_rules
from job.run.selection import cadence, is_due, last_start, next_due
from job.text.table import Column, human_duration, printable, render
from job.window import isoformat, parse_timestamp

NAME = "status"
HELP = "every rule's last execution; exit 1 when one failed or is stale (no success for 2 intervals)"

STALE_INTERVALS = 2
EXIT_OK, EXIT_UNHEALTHY = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--shard", metavar="I/N", help="only the rules of shard I of N")


@dataclass(frozen=True, slots=True)
class RuleStatus:
    rule: Rule
    history: LastRuns
    health: str  # ok, failed, stale, never ran, running, disabled, unsupported
    next_due: datetime | None = None  # when a ``run`` pass runs it next (None: not scheduled, disabled say)
    due: bool = False  # a ``run`` pass now would run it

    @property
    def healthy(self) -> bool:
        return self.health not in ("failed", "stale")


def assess(rule: Rule, history: LastRuns, now: datetime, interval: timedelta | None = None) -> str:
    """The rule's health, judged by its last *completed* execution (a ``running`` one has no outcome yet).

    ``interval``: the rule's cadence when it is not its own (``DETECTION_SCHEDULE_INTERVAL``).
    """
    if not rule.supported:
        return "unsupported"
    if not rule.enabled:
        return "disabled"
    if history.completed is None:
        return "running" if history.latest is not None else "never ran"
    if history.completed.get("execution", {}).get("status") == "failed":
        return "failed"
    if history.last_success is None or history.last_success < now - STALE_INTERVALS * (interval or rule.interval_delta):
        return "stale"
    return "ok"


def schedule_of(rule: Rule, history: LastRuns, now: datetime, interval: timedelta) -> tuple[datetime | None, bool]:
    """When the rule is next due and whether it is due now (``job.run.selection``); never for rules that do not run."""
    if not rule.supported or not rule.enabled:
        return None, False
    last = last_start(history)
    return next_due(last, interval) or now, is_due(last, interval, now)


def _time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _seconds(start: Any, end: Any) -> float | None:
    began, ended = _time(start), _time(end)
    return (ended - began).total_seconds() if began and ended else None


def describe_execution(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ``status`` shows of one execution record."""
    if document is None:
        return None
    execution, window, metrics = (document.get(key) or {} for key in ("execution", "window", "metrics"))
    warnings = execution.get("warnings")
    return {
        "uuid": execution.get("uuid"),
        "status": execution.get("status"),
        "start": execution.get("start"),
        "end": execution.get("end"),
        "window": {"from": window.get("from"), "to": window.get("to")},
        "alerts_created": metrics.get("alerts_created"),
        "duration_s": _seconds(execution.get("start"), execution.get("end")),
        "gap_s": metrics.get("execution_gap_duration_s", 0),
        "warnings": len(warnings) if isinstance(warnings, list) else 0,
        "message": execution.get("message"),
    }


def as_json(status: RuleStatus) -> dict[str, Any]:
    history = status.history
    latest = history.latest or {}
    running = latest if (latest.get("execution") or {}).get("status") == "running" else None
    return {
        "rule_id": status.rule.rule_id,
        "name": status.rule.name,
        "interval_s": status.rule.interval_delta.total_seconds(),
        "health": status.health,
        "healthy": status.healthy,
        "last_execution": describe_execution(history.completed),
        "running": describe_execution(running),
        "last_success": isoformat(history.last_success) if history.last_success else None,
        "next_due": isoformat(status.next_due) if status.next_due else None,
        "due": status.due,
        # Shown, never judged: a backfill's windows do not make a rule healthy, failed or due.
        "last_backfill": describe_execution(history.last_backfill),
    }


COLUMNS = (
    Column("health", 11),
    Column("status", 16),
    Column("last run", 20),
    Column("window", 51),
    Column("alerts", 8, right=True),
    Column("duration", 8, right=True),
    Column("gap", 8, right=True),
    Column("warn", 4, right=True),
    Column("last success", 20),
    Column("next due", 20),
    Column("rule", 80),
)


def _short_time(value: Any) -> str:
    moment = _time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def table_row(view: dict[str, Any]) -> list[object]:
    last, running = view["last_execution"], view["running"]
    status = "running" if running else (last["status"] if last else "-")
    window = f"{_short_time(last['window']['from'])} .. {_short_time(last['window']['to'])}" if last else "-"
    return [
        view["health"],
        status,
        _short_time((running or last or {}).get("start")),
        window if last and last["window"]["from"] else "-",
        last["alerts_created"] if last else "-",
        human_duration(last["duration_s"]) if last and last["duration_s"] is not None else "-",
        human_duration(last["gap_s"]) if last else "-",
        last["warnings"] if last else "-",
        _short_time(view["last_success"]),
        "now" if view.get("due") else _short_time(view.get("next_due")),
        f"{view['name']} ({view['rule_id']})",
    ]


def run(args: argparse.Namespace, settings: Settings) -> int:
    shard = pass_shard(settings, args.shard) if args.shard is not None else None
    loaded = load_rules([settings.rules_dir])
    rules = [rule for rule in loaded.rules if in_shard(rule.rule_id, shard)]
    now = datetime.now(UTC)
    try:
        with make_client(settings) as es:
            histories = last_runs(
                es,
                RetryPolicy.from_settings(settings),
                settings.executions_index,
                sorted({rule.rule_id for rule in rules}),
                settings.space_id,
            )
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    statuses = [
        RuleStatus(rule, history, assess(rule, history, now, interval), *schedule_of(rule, history, now, interval))
        for rule in sorted(rules, key=lambda rule: (rule.name, rule.rule_id))
        for history in [histories.get(rule.rule_id, NEVER_RAN)]
        for interval in [cadence(rule, settings.schedule_interval)]
    ]
    views = [as_json(status) for status in statuses]
    problems = [str(problem) for problem in loaded.problems]
    healthy = not problems and all(status.healthy for status in statuses)
    if args.json:
        print(json.dumps({"healthy": healthy, "checked_at": isoformat(now), "rules": views, "problems": problems}))
    else:
        print(render(COLUMNS, [table_row(view) for view in views]))
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status.health] = counts.get(status.health, 0) + 1
        summary = ", ".join(f"{count} {health}" for health, count in sorted(counts.items()))
        print(f"{len(statuses)} rules: {summary or 'none'}; {len(problems)} rule files do not load")
        for view in views:
            if view["last_backfill"]:
                backfill = view["last_backfill"]
                window = f"{_short_time(backfill['window']['from'])} .. {_short_time(backfill['window']['to'])}"
                rule = printable(f"{view['name']} ({view['rule_id']})")
                print(f"last backfill window of {rule}: {printable(str(backfill['status']))}, {window}")
        for problem in problems:
            print(f"does not load: {problem}", file=sys.stderr)
    return EXIT_OK if healthy else EXIT_UNHEALTHY
