"""``detection-job deadletter list|retry``: the events that could not become alerts.

``list [--rule ID] [--json]`` prints one line per entry (time, rule, event index/id, reason), or one JSON
object per line. ``retry [--rule ID]`` re-fetches each event, builds its alert with the current rule
file, creates it, and deletes the entry once its alert exists; it exits 1 if entries remain.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from elasticsearch import ApiError, TransportError

from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.settings import Settings
from job.indices import preflight
from job.rules import load_rules
from job.window import isoformat
from job.writing import deadletter
from job.writing.bulk import BulkRejected
from job.writing.deadletter import DeadLetter, DeadLetterWriteError
from job.writing.deadletter_retry import retry_dead_letters

NAME = "deadletter"
HELP = "list or retry the events that could not become alerts (the dead-letter index)"

EXIT_OK, EXIT_REMAINING = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the entries, oldest first", description="show the entries")
    listing.add_argument("--rule", metavar="ID", help="only the entries of this rule_id")
    listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    retrying = actions.add_parser(
        "retry",
        help="build and create the alert of each entry again; delete the entries that succeed",
        description="build and create the alert of each entry again with the current rule files",
    )
    retrying.add_argument("--rule", metavar="ID", help="only the entries of this rule_id")


def printable(text: str) -> str:
    """Event ids and reasons come from events: control, format (bidi) and unassigned characters and lone
    surrogates are escaped, so they never move the cursor, recolour or reorder a terminal line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode() for ch in text)


def _table(letters: list[DeadLetter]) -> list[str]:
    lines = [f"{'time':<24}  {'rule':<36}  {'event (index/id)':<40}  reason"]
    for letter in letters:
        event = printable(f"{letter.event_index}/{letter.event_id}")  # exact, escaped
        lines.append(
            f"{isoformat(letter.time):<24}  {printable(letter.rule_id):<36}  {event:<40}  {printable(letter.reason)}"
        )
    return lines


def _json_line(letter: DeadLetter) -> str:
    return json.dumps({"id": letter.id, **letter.to_document()}, ensure_ascii=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    policy = RetryPolicy.from_settings(settings)
    try:
        with make_client(settings) as es:
            letters = deadletter.scan(
                es, policy, settings.dead_letter_index, space_id=settings.space_id, rule_id=args.rule
            )
            if args.action == "list":
                found = list(letters)
                if args.json:
                    for letter in found:
                        print(_json_line(letter))
                else:
                    print("\n".join(_table(found)))
                    print(f"{len(found)} dead-lettered events in {settings.dead_letter_index}")
                return EXIT_OK
            preflight.prepare(es, policy, settings)
            rules = {rule.rule_id: rule for rule in load_rules([settings.rules_dir]).rules}
            report = retry_dead_letters(
                es,
                policy,
                alias=settings.alerts_index,
                index=settings.dead_letter_index,
                letters=letters,
                rules=rules,
                clock=lambda: datetime.now(UTC),
            )
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    except (DeadLetterWriteError, BulkRejected) as exc:
        print(f"detection-job: deadletter {args.action}: {exc}", file=sys.stderr)
        return EXIT_REMAINING
    for letter in report.failing:
        event = printable(f"{letter.event_index}/{letter.event_id}")
        print(f"still failing: rule {printable(letter.rule_id)}, event {event}: {printable(letter.reason)}")
    print(
        f"{report.created} alerts created, {report.existed} already existed, "
        f"{len(report.failing)} entries still failing"
    )
    return EXIT_REMAINING if report.failing else EXIT_OK
