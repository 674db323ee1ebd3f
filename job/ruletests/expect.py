"""A rule test's expectations against the alerts the run wrote (pure): which fields an alert can have, each
``[[test.alert]]`` table matched to a different alert, and the differences said plainly.

An alert spells a field nested (``{"host": {"name": ...}}``, the event's own shape) or dotted
(``"kibana.alert.severity"``); an expectation names it dotted either way. A field seen through a list of
objects (``kibana.alert.ancestors.id``) is the list of its values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from job.alerts.source_fields import leaves
from job.alerts.template import ALERT_FIELDS, ECS_FIELDS
from job.ruletests.spec import Expected, normalize_expected
from job.text.table import clip, printable

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(missing)"})()
# The fields of the alert mapping that hold any keys below them.
_OPEN = tuple(f"{path}." for path, kind in {**ALERT_FIELDS, **ECS_FIELDS}.items() if kind == "flattened")
ORIGINAL_EVENT = "kibana.alert.original_event."
SHOWN_ALERTS = 10


def _found(node: Any, segments: Sequence[str]) -> list[Any]:
    if not segments:
        return [node]
    if isinstance(node, list):
        return [value for item in node for value in _found(item, segments)]
    if not isinstance(node, Mapping):
        return []
    found = []
    for taken in range(1, len(segments) + 1):
        key = ".".join(segments[:taken])
        if key in node:
            found += _found(node[key], segments[taken:])
    return found


def value_at(source: Mapping[str, Any], path: str) -> Any:
    """The value of the dotted field ``path`` in ``source``, :data:`MISSING` when it has none."""
    found = _found(source, path.split("."))
    if not found:
        return MISSING
    return found[0] if len(found) == 1 else found


def paths_of(document: Mapping[str, Any]) -> set[str]:
    """Every dotted field of a document: its leaves and the objects above them."""
    found: set[str] = set()
    for path, _ in leaves(document):
        parts = path.split(".")
        found.update(".".join(parts[: end + 1]) for end in range(len(parts)))
    return found


def _with_parents(paths: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        parts = path.split(".")
        found.update(".".join(parts[: end + 1]) for end in range(len(parts)))
    return found


MAPPED = _with_parents({**ALERT_FIELDS, **ECS_FIELDS})


def can_have(path: str, known: set[str]) -> bool:
    """Whether an alert can have the field: the alert mapping maps it, an alert built from the fixtures has it
    (``known``), or an event of the fixtures does (and then its ``kibana.alert.original_event`` copy)."""
    if path in MAPPED or path in known or path.startswith(_OPEN):
        return True
    return path.startswith(ORIGINAL_EVENT) and f"event.{path[len(ORIGINAL_EVENT) :]}" in known


def matches(alert: Mapping[str, Any], expected: Expected) -> bool:
    return all(value_at(alert, name) == normalize_expected(value) for name, (value, _) in expected.fields.items())


def _shown(value: Any) -> str:
    if value is MISSING:
        return "(missing)"
    return clip(printable(json.dumps(value, ensure_ascii=False, default=str)), 200)


def differences(alert: Mapping[str, Any], expected: Expected) -> list[str]:
    """One line per expected field the alert does not hold."""
    lines = []
    for name, (value, line) in expected.fields.items():
        actual, wanted = value_at(alert, name), normalize_expected(value)
        if actual != wanted:
            where = f" (line {line})" if line else ""
            lines.append(f"    {name}{where}: expected {_shown(wanted)}, got {_shown(actual)}")
    return lines


def pair(alerts: Sequence[Mapping[str, Any]], expected: Sequence[Expected]) -> dict[int, int]:
    """A matching of expected tables to different alerts, as large as can be (expected -> alert position)."""
    candidates = [[a for a, alert in enumerate(alerts) if matches(alert, table)] for table in expected]
    taken: dict[int, int] = {}  # alert -> expected

    def place(e: int, seen: set[int]) -> bool:
        for a in candidates[e]:
            if a in seen:
                continue
            seen.add(a)
            if a not in taken or place(taken[a], seen):
                taken[a] = e
                return True
        return False

    for e in range(len(expected)):
        place(e, set())
    return {e: a for a, e in taken.items()}


def summary(alert: Mapping[str, Any]) -> str:
    """An alert in one line: its id, its event, and its reason."""
    ancestors = value_at(alert, "kibana.alert.ancestors.id")
    event = ancestors[0] if isinstance(ancestors, list) and ancestors else ancestors
    reason = value_at(alert, "kibana.alert.reason")
    return clip(printable(f"{alert.get('_id', '?')} (event {event}): {reason}"), 220)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    lines: list[str]


def compare(alerts: Sequence[Mapping[str, Any]], count: int | None, expected: Sequence[Expected]) -> Verdict:
    """Whether the alerts are what the test expects, and if not, why, in a few lines."""
    lines: list[str] = []
    if count is not None and len(alerts) != count:
        lines.append(f"expected {count} alert{'s' if count != 1 else ''}, got {len(alerts)}")
        lines += [f"  {summary(alert)}" for alert in alerts[:SHOWN_ALERTS]]
        if len(alerts) > SHOWN_ALERTS:
            lines.append(f"  ... and {len(alerts) - SHOWN_ALERTS} more")
    paired = pair(alerts, expected)
    for position, table in enumerate(expected):
        if position in paired:
            continue
        where = f" (line {table.line})" if table.line else ""
        if not alerts:
            lines.append(f"[[test.alert]] {position + 1}{where}: no alert to match")
            continue
        free = [a for a in range(len(alerts)) if a not in paired.values()] or list(range(len(alerts)))
        closest = min(free, key=lambda a: (len(differences(alerts[a], table)), a))
        lines.append(f"[[test.alert]] {position + 1}{where} matches no alert; the closest differs so:")
        lines.append(f"  {summary(alerts[closest])}")
        lines += differences(alerts[closest], table)
    return Verdict(not lines, lines)
