"""``detection-job alerts``: the newest alerts, and ``alerts ack|close|open ID...`` to triage them.

Listing: ``alerts [--since 24h] [--rule ID] [--status open|acknowledged|closed] [--limit 50] [--json]``.
Every cell is made printable (an event's host name may carry terminal escapes) and clipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, TransportError

from job.alerts.triage import (
    MAX_REASON,
    REASON,
    STATUS,
    WORKFLOW_STATUSES,
    WorkflowStatus,
    field_value,
    newest_alerts,
    set_status,
)
from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.durations import parse_duration
from job.config.settings import Settings
from job.errors import ConfigError
from job.text.table import Column, printable, render

NAME = "alerts"
HELP = "list the newest alerts; 'alerts ack|close|open ID...' sets their workflow status"

ACTIONS: dict[str, WorkflowStatus] = {"ack": "acknowledged", "close": "closed", "open": "open"}
DEFAULT_LIMIT, MAX_LIMIT = 50, 10_000
MAX_IDS = 1000
ID_WIDTH = 12  # the table shows this much of the 64-character id; commands take any unique prefix of 8+
COLUMNS = (
    Column("id", ID_WIDTH),
    Column("time", 20),
    Column("severity", 8),
    Column("status", 12),
    Column("rule", 40),
    Column("host", 24),
    Column("user", 20),
    Column("reason", 120),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", metavar="DURATION", help="alerts created in the last (default 24h)")
    parser.add_argument("--rule", metavar="RULE_ID", help="only this rule's alerts")
    parser.add_argument("--status", choices=WORKFLOW_STATUSES, help="only alerts in this workflow status")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many, newest first (default {DEFAULT_LIMIT})"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    for action, status in ACTIONS.items():
        sub = actions.add_parser(action, help=f"set the workflow status of alerts to {status}")
        sub.add_argument("ids", nargs="+", metavar="ID", help="alert id, or a unique prefix of 8+ characters")
        sub.add_argument("--reason", help="why (only with close; kept in kibana.alert.workflow_reason)")
        sub.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of one line per alert"
        )


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


def alert_view(source: dict[str, Any]) -> dict[str, Any]:
    """The fields ``alerts`` shows of one alert."""
    return {
        "id": source["_id"],
        "index": source["_index"],
        "time": field_value(source, "@timestamp"),
        "severity": field_value(source, "kibana.alert.severity"),
        "status": field_value(source, STATUS),
        "closing_reason": field_value(source, REASON),
        "rule_id": field_value(source, "kibana.alert.rule.rule_id"),
        "rule": field_value(source, "kibana.alert.rule.name"),
        "host": field_value(source, "host.name"),
        "user": field_value(source, "user.name"),
        "reason": field_value(source, "kibana.alert.reason"),
    }


def _list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        since = parse_duration(args.since)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    if not 1 <= args.limit <= MAX_LIMIT:
        raise ConfigError(f"--limit: expected 1 to {MAX_LIMIT}")
    try:
        with make_client(settings) as es:
            total, alerts = newest_alerts(
                es,
                RetryPolicy.from_settings(settings),
                settings.alerts_index,
                since=since,
                now=datetime.now(UTC),
                rule_id=args.rule,
                status=args.status,
                limit=args.limit,
            )
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    views = [alert_view(alert) for alert in alerts]
    if args.json:
        print(json.dumps({"total": total, "alerts": views}))
        return 0
    rows = [
        [_text(view[key]) for key in ("id", "time", "severity", "status", "rule", "host", "user", "reason")]
        for view in views
    ]
    print(render(COLUMNS, rows))
    more = f" (newest {len(views)} shown; --limit for more)" if total > len(views) else ""
    print(f"{total} alerts in the last {args.since}{more}")
    return 0


def _triage(args: argparse.Namespace, settings: Settings) -> int:
    status = ACTIONS[args.action]
    reason: str | None = args.reason
    if reason is not None and status != "closed":
        raise ConfigError("--reason: only a close has a reason (Kibana drops it on any other change)")
    if reason is not None and not 1 <= len(reason) <= MAX_REASON:
        raise ConfigError(f"--reason: expected 1 to {MAX_REASON} characters")
    if len(args.ids) > MAX_IDS:
        raise ConfigError(f"at most {MAX_IDS} alert ids at once")
    policy = RetryPolicy.from_settings(settings)
    try:
        with make_client(settings) as es:
            outcomes = [
                set_status(es, policy, settings.alerts_index, requested, status, reason, datetime.now(UTC))
                for requested in args.ids
            ]
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "requested": o.requested,
                        "result": o.result,
                        "id": o.alert_id,
                        "before": o.before,
                        "after": o.after,
                    }
                    for o in outcomes
                ]
            )
        )
    for outcome in [] if args.json else outcomes:
        name = outcome.alert_id or outcome.requested
        line = {
            "updated": f"{name}: {outcome.before} -> {outcome.after}",
            "unchanged": f"{name}: already {outcome.after}",
            "conflict": f"{name}: changed by someone else since it was read (now {outcome.after}); not updated",
            "not found": f"{outcome.requested}: no such alert in {settings.alerts_index}",
            "ambiguous": f"{outcome.requested}: matches several alerts; give more of the id",
        }[outcome.result]
        print(printable(line), file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action is None:
        return _list(args, settings)
    return _triage(args, settings)
