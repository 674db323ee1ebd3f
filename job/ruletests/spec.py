"""Rule test files, read (pure): which rule, which fixture events, what the alerts must be.

A rule test is a TOML file in a folder named ``tests`` beside the rules (the rule loader never takes those
files for rules, as it never takes ``exceptions/`` ones)::

    rule = "../credential_access_endgame_cred_dumping_detected.toml"   # relative to this file, or a rule_id
    mapping = "endgame.mapping.json"       # optional: the events index's mappings; default: ECS types

    [[test]]
    name = "a detected credential dump alerts"
    events = '''
    {"@timestamp": "2026-01-01T10:00:00Z", "event": {"kind": "alert", "module": "endgame"}}
    '''                                    # NDJSON, one event a line; or events_file = "dump.ndjson"
    alerts = 1                             # how many alerts (0: none)

    [[test.alert]]                         # the fields of one alert (each table matches a different alert)
    "kibana.alert.severity" = "high"

Every problem is a :class:`job.text.diagnostics.Diagnostic` at its file and line: of the whole file (the other
files still run) or of one test (the file's other tests still run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from job.errors import RuleError
from job.rules.files import TESTS_DIR, parse_toml, read_text
from job.rules.positions import KeyPath, key_lines, line_of
from job.text.diagnostics import Diagnostic, error

FILE_KEYS = frozenset({"rule", "mapping", "test"})
TEST_KEYS = frozenset({"name", "events", "events_file", "mapping", "alerts", "alert"})
MAX_TEST_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Expected:
    """One ``[[test.alert]]`` table: dotted field -> (expected value, its line)."""

    line: int | None
    fields: dict[str, tuple[Any, int | None]]


@dataclass
class Case:
    """One ``[[test]]``."""

    file: Path
    name: str
    line: int | None
    events: str | None = None  # inline NDJSON
    events_file: Path | None = None
    events_line: int = 1  # the line of the file (the test's, or events_file) the NDJSON's first line is on
    mapping: str | dict[str, Any] | None = None  # a file relative to the test, the mappings themselves, or ECS
    mapping_line: int | None = None
    count: int | None = None
    count_line: int | None = None
    alerts: list[Expected] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class TestFile:
    path: Path
    rule: str | None = None
    rule_line: int | None = None
    cases: list[Case] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)


def discover(paths: list[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The test files of ``paths``: a file is one; in a folder, every ``*.toml`` under a folder named ``tests``."""
    found: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(_walk(path, inside=path.name == TESTS_DIR))
        else:
            problems.append(error(str(path), "no such file or directory"))
    return list(dict.fromkeys(map(_shown, found))), problems


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it (shorter lines), else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return path


def _walk(folder: Path, *, inside: bool) -> Iterator[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry, inside=inside or entry.name == TESTS_DIR)
        elif inside and entry.suffix == ".toml":
            yield entry


def _flatten(value: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, child in value.items():
        path = f"{prefix}{key}"
        if isinstance(child, Mapping):
            yield from _flatten(child, path + ".")
        else:
            yield path, child


def _value_line(lines: Mapping[KeyPath, int], table: KeyPath, dotted: str) -> int | None:
    for key in ((*table, dotted), (*table, *dotted.split("."))):
        if key in lines:
            return lines[key]
    return line_of(lines, table)


def _string_start(text: str, line: int | None) -> int:
    """The line a string value's first line of content is on: the next one when the value opens a multi-line
    string at the end of its key's line (TOML drops that first newline)."""
    if line is None:
        return 1
    source = text.split("\n")[line - 1]
    value = source.split("=", 1)[1].strip() if "=" in source else ""
    return line + 1 if value in ("'''", '"""') else line


def read_test_file(path: Path) -> TestFile:
    """A test file read; problems of the file or of its tests are noted, never raised."""
    test_file = TestFile(path)
    try:
        text = read_text(path, limit=MAX_TEST_FILE_BYTES, what="rule test files")
        data = parse_toml(path, text)
    except RuleError as exc:
        test_file.problems.append(exc.diagnostic)
        return test_file
    lines = key_lines(text)
    where = str(path)
    for key in data:
        if key not in FILE_KEYS:
            test_file.problems.append(
                error(where, f"{key}: unknown key (expected rule, mapping, [[test]])", line_of(lines, (key,)))
            )
    rule = data.get("rule")
    test_file.rule_line = line_of(lines, ("rule",))
    if isinstance(rule, str) and rule.strip():
        test_file.rule = rule.strip()
    else:
        message = 'names no rule: give rule = "<rule file, relative to this file>" or rule = "<rule_id>"'
        test_file.problems.append(error(where, message, test_file.rule_line or 1))
    tests = data.get("test")
    if not isinstance(tests, list) or not tests or not all(isinstance(item, dict) for item in tests):
        test_file.problems.append(error(where, "holds no [[test]] tables", line_of(lines, ("test",)) or 1))
        return test_file
    file_mapping = _mapping(data.get("mapping"), ("mapping",), lines, where, test_file.problems)
    names: set[str] = set()
    for position, item in enumerate(tests):
        case = _case(path, text, lines, position, item, file_mapping, line_of(lines, ("mapping",)))
        if case.name in names:
            case.problems.append(error(where, f"name: a second test named {case.name!r}", case.line))
            case.name = f"{case.name} ({position + 1})"
        names.add(case.name)
        test_file.cases.append(case)
    return test_file


def _mapping(
    value: Any, key: KeyPath, lines: Mapping[KeyPath, int], where: str, problems: list[Diagnostic]
) -> str | dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    problems.append(error(where, "mapping: expected a file name or a table of mappings", line_of(lines, key)))
    return None


def _case(
    path: Path,
    text: str,
    lines: Mapping[KeyPath, int],
    position: int,
    item: dict[str, Any],
    file_mapping: str | dict[str, Any] | None,
    file_mapping_line: int | None,
) -> Case:
    where = str(path)
    at: KeyPath = ("test", position)
    name = item.get("name")
    case = Case(
        path, name.strip() if isinstance(name, str) and name.strip() else f"test {position + 1}", line_of(lines, at)
    )
    problems = case.problems
    if not (isinstance(name, str) and name.strip()):
        problems.append(error(where, "[[test]] has no name", case.line))
    for key in item:
        if key not in TEST_KEYS:
            expected = ", ".join(sorted(TEST_KEYS))
            problems.append(
                error(where, f"{key}: unknown key of [[test]] (expected {expected})", line_of(lines, (*at, key)))
            )
    events, events_file = item.get("events"), item.get("events_file")
    if (events is None) == (events_file is None):
        problems.append(error(where, "give the fixture events: events = '''NDJSON''' or events_file = FILE", case.line))
    elif isinstance(events, str):
        case.events = events
        case.events_line = _string_start(text, line_of(lines, (*at, "events")))
    elif isinstance(events_file, str) and events_file.strip():
        case.events_file = path.parent / events_file.strip()
    else:
        key = "events" if events is not None else "events_file"
        problems.append(error(where, f"{key}: expected a string", line_of(lines, (*at, key))))
    if "mapping" in item:
        case.mapping = _mapping(item["mapping"], (*at, "mapping"), lines, where, problems)
        case.mapping_line = line_of(lines, (*at, "mapping"))
    else:
        case.mapping, case.mapping_line = file_mapping, file_mapping_line
    count = item.get("alerts")
    case.count_line = line_of(lines, (*at, "alerts"))
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        problems.append(error(where, "alerts: expected how many alerts, a whole number (0: none)", case.count_line))
    elif count is not None:
        case.count = count
    tables = item.get("alert", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        problems.append(error(where, "alert: expected [[test.alert]] tables", line_of(lines, (*at, "alert"))))
        tables = []
    for number, table in enumerate(tables):
        table_key: KeyPath = (*at, "alert", number)
        fields = {dotted: (value, _value_line(lines, table_key, dotted)) for dotted, value in _flatten(table)}
        case.alerts.append(Expected(line_of(lines, table_key), fields))
    if case.count is None and not case.alerts and count is None:
        problems.append(
            error(where, "expects nothing: give alerts = N (0: none) and/or [[test.alert]] tables", case.line)
        )
    if case.count is not None and len(case.alerts) > case.count:
        message = f"{len(case.alerts)} [[test.alert]] tables for alerts = {case.count}"
        problems.append(error(where, message, case.count_line))
    return case


def normalize_expected(value: Any) -> Any:
    """A TOML value as the alert document would hold it: a date-time as ISO 8601 UTC with milliseconds."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, list):
        return [normalize_expected(item) for item in value]
    return value
