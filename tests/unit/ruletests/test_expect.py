"""Expectations against alerts: dotted and nested fields, one alert per table, and the closest alert's diff."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from job.config.settings import SHIPPED_RULES_DIR
from job.rules import load_rules
from job.ruletests.ecs import ECS_TYPES
from job.ruletests.expect import MISSING, can_have, compare, pair, value_at
from job.ruletests.report import ending, junit
from job.ruletests.runner import Result
from job.ruletests.spec import Expected

ALERT: dict[str, Any] = {
    "_id": "a1",
    "kibana.alert.severity": "high",
    "host": {"name": "ws-01", "ip": ["10.0.0.1", "10.0.0.2"]},
    "process.parent": {"name": "cmd.exe"},
    "kibana.alert.ancestors": [{"id": "e1", "index": "i"}, {"id": "e0", "index": "i"}],
    "kibana.alert.reason": "process event ...",
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("kibana.alert.severity", "high"),
        ("host.name", "ws-01"),
        ("host", {"name": "ws-01", "ip": ["10.0.0.1", "10.0.0.2"]}),
        ("host.ip", ["10.0.0.1", "10.0.0.2"]),
        ("process.parent.name", "cmd.exe"),
        ("kibana.alert.ancestors.id", ["e1", "e0"]),
        ("user.name", MISSING),
    ],
)
def test_value_at(path: str, value: Any) -> None:
    assert value_at(ALERT, path) == value


def _expected(**fields: Any) -> Expected:
    return Expected(7, {name.replace("__", "."): (value, 8) for name, value in fields.items()})


def test_each_table_takes_a_different_alert() -> None:
    alerts = [{"_id": "a", "host.name": "x", "n": 1}, {"_id": "b", "host.name": "x", "n": 2}]
    # The first table could take either; the second only "a": the matching gives each one.
    assert pair(alerts, [_expected(host__name="x"), _expected(n=1)]) == {0: 1, 1: 0}
    assert pair(alerts, [_expected(n=1), _expected(n=1)]) == {0: 0}


@pytest.mark.parametrize(
    ("count", "tables", "passed", "lines"),
    [
        (1, [_expected(kibana__alert__severity="high")], True, []),
        (None, [_expected(host__name="ws-01")], True, []),
        (2, [], False, ["expected 2 alerts, got 1", "  a1 (event e1): process event ..."]),
        (
            1,
            [_expected(kibana__alert__severity="low", user__name="bob", host__name="ws-01")],
            False,
            [
                "[[test.alert]] 1 (line 7) matches no alert; the closest differs so:",
                "  a1 (event e1): process event ...",
                '    kibana.alert.severity (line 8): expected "low", got "high"',
                '    user.name (line 8): expected "bob", got (missing)',
            ],
        ),
    ],
)
def test_compare(count: int | None, tables: list[Expected], passed: bool, lines: list[str]) -> None:
    verdict = compare([ALERT], count, tables)
    assert (verdict.passed, verdict.lines) == (passed, lines)


def test_no_alert_to_match() -> None:
    assert compare([], 0, [_expected(a=1)]).lines == ["[[test.alert]] 1 (line 7): no alert to match"]


@pytest.mark.parametrize(
    ("path", "possible"),
    [
        ("kibana.alert.severity", True),  # the alert mapping
        ("kibana.alert.rule.parameters.anything", True),  # a flattened field
        ("vendor.field", True),  # an event's field
        ("kibana.alert.original_event.action", True),  # the copy of event.action
        ("kibana.alert.original_event.nonsense", False),
        ("kibana.alert.sevrity", False),
        ("other.field", False),
    ],
)
def test_what_an_alert_can_have(path: str, possible: bool) -> None:
    assert can_have(path, {"vendor", "vendor.field", "event", "event.action"}) is possible


def test_the_ecs_table_holds_every_field_the_shipped_rules_query() -> None:
    used = {field for rule in load_rules([SHIPPED_RULES_DIR]).rules for field in re.findall(r"([\w.@]+):", rule.query)}
    assert used and sorted(used - set(ECS_TYPES)) == []


def test_the_junit_report_and_the_ending(tmp_path: Path) -> None:
    results = [
        Result("t.toml", "ok", 3, "passed", seconds=0.5),
        Result("t.toml", "bad", 9, "failed", ["expected 1 alert, got 0"], 0.25),
        Result("u.toml", "(file)", None, "error", ["u.toml:1: names no rule", "\x1b[31m"]),
    ]
    path = tmp_path / "junit.xml"
    junit(results, 1.5, path)
    root = ET.parse(path).getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "3", "1", "1")
    cases = list(root.iter("testcase"))
    assert [(case.get("classname"), case.get("name"), case.get("line")) for case in cases] == [
        ("t.toml", "ok", "3"),
        ("t.toml", "bad", "9"),
        ("u.toml", "(file)", None),
    ]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "expected 1 alert, got 0"
    error = cases[2].find("error")
    assert error is not None and error.text == "u.toml:1: names no rule\n\\x1b[31m"  # no control character in XML
    text = ending(results, 1.5)
    assert text.splitlines()[-1].strip("= ") == "1 passed, 1 failed, 1 errors in 1.50s"
    assert "u.toml:1: names no rule" in text
