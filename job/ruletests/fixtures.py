"""A rule test's fixture events (pure): NDJSON read line by line, each problem at its file and line; the fields
they use; the time range a rule's run must cover to see them all.

An event may carry ``"_id"``: its document id (it is not part of the event). Without one, its id is
``<name of the file>-<line>``, so an alert's ancestor names the line of its event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from job.alerts.source_fields import leaves, values_at
from job.alerts.timestamps import normalize_timestamp
from job.rules.model import Rule
from job.search.clauses import timestamp_fields
from job.text.diagnostics import Diagnostic, error
from job.text.jsonlimits import JsonProblem
from job.text.jsonlimits import loads as bounded_json
from job.text.safefile import FileProblem, read_bounded
from job.window import parse_timestamp

MAX_FIXTURE_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 10_000


@dataclass(frozen=True, slots=True)
class Event:
    path: str  # the file it was read from
    line: int
    doc_id: str
    source: dict[str, Any]


@dataclass
class Fixture:
    events: list[Event] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)

    def fields(self) -> set[str]:
        """Every dotted field path of the events (leaves, and the objects above them)."""
        found: set[str] = set()
        for event in self.events:
            for path, _ in leaves(event.source):
                parts = path.split(".")
                found.update(".".join(parts[: end + 1]) for end in range(len(parts)))
        return found


def read_events(text: str, path: str, first_line: int) -> Fixture:
    """The events of NDJSON ``text`` whose first line is line ``first_line`` of ``path``."""
    fixture = Fixture()
    stem = Path(path).stem
    for offset, line in enumerate(text.split("\n")):
        number = first_line + offset
        if not line.strip():
            continue
        if len(fixture.events) >= MAX_EVENTS:
            fixture.problems.append(error(path, f"more than {MAX_EVENTS} events", number))
            break
        try:
            value = bounded_json(line)
        except JsonProblem as exc:
            fixture.problems.append(error(path, f"event: not JSON: {exc}", number))
            continue
        if not isinstance(value, dict):
            fixture.problems.append(error(path, "event: not a JSON object", number))
            continue
        doc_id = value.pop("_id", None)
        if doc_id is not None and (not isinstance(doc_id, str) or not doc_id or len(doc_id) > 512):
            fixture.problems.append(error(path, "_id: expected a string of 1 to 512 characters", number))
            continue
        fixture.events.append(Event(path, number, doc_id or f"{stem}-{number}", value))
    if not fixture.events and not fixture.problems:
        fixture.problems.append(error(path, "no events", first_line))
    return fixture


def read_events_file(path: Path) -> Fixture:
    try:
        data = read_bounded(path, MAX_FIXTURE_BYTES, what="fixture files")
        text = data.decode("utf-8-sig")
    except FileProblem as exc:
        return Fixture(problems=[error(str(path), str(exc))])
    except UnicodeDecodeError as exc:
        return Fixture(problems=[error(str(path), "not UTF-8 text", data[: exc.start].count(b"\n") + 1)])
    return read_events(text, str(path), 1)


def _times(source: Mapping[str, Any], fields: Iterable[str]) -> list[datetime]:
    found = []
    for name in fields:
        for value in values_at(source, name):
            text = normalize_timestamp(value)
            if text is not None:
                found.append(parse_timestamp(text))
    return found


def time_range(rule: Rule, events: list[Event]) -> tuple[datetime, datetime] | None:
    """The earliest and latest time of the events on the rule's timestamp fields (its override, and
    ``@timestamp`` unless the fallback is off), the latest plus a millisecond: backfill's windows over it see
    every event. None when no event has a time there."""
    fields = timestamp_fields(rule)
    names = [fields.primary, *([fields.fallback] if fields.fallback else [])]
    times = [moment for event in events for moment in _times(event.source, names)]
    if not times:
        return None
    return min(times), max(times) + timedelta(milliseconds=1)
