"""kibana.alert.reason, in Kibana's wording and punctuation."""

from __future__ import annotations

from typing import Any

import pytest

from job.alerts.reason import build_reason

FULL = {
    "destination.ip": ["9.99.99.9"],
    "destination.port": ["6789"],
    "event.category": ["test"],
    "file.name": ["sample"],
    "host.name": ["host"],
    "process.name": ["doingThings.exe"],
    "process.parent.name": ["didThings.exe"],
    "source.ip": ["1.11.11.1"],
    "source.port": ["1234"],
    "user.name": ["test-user"],
}
FULL_TAIL = "by test-user on host created medium alert my-rule."
HEAD = "test event with process doingThings.exe, parent process didThings.exe, file sample, "


def _with(**changes: Any) -> dict[str, Any]:
    return {**FULL, **{key.replace("__", "."): value for key, value in changes.items()}}


# The examples of Kibana's own reason-formatter tests.
KIBANA_CASES = [
    (
        FULL,
        HEAD + "source 1.11.11.1:1234, destination 9.99.99.9:6789, " + FULL_TAIL,
    ),
    (
        _with(event__category=["item one", "item two"]),
        "item one, item two event with process doingThings.exe, parent process didThings.exe, file sample, "
        "source 1.11.11.1:1234, destination 9.99.99.9:6789, " + FULL_TAIL,
    ),
    (
        _with(host__name=["-"]),
        HEAD + "source 1.11.11.1:1234, destination 9.99.99.9:6789, by test-user created medium alert my-rule.",
    ),
    (
        _with(user__name=["-"]),
        HEAD + "source 1.11.11.1:1234, destination 9.99.99.9:6789, on host created medium alert my-rule.",
    ),
    (
        _with(destination__port=["-"]),
        HEAD + "source 1.11.11.1:1234, destination 9.99.99.9 " + FULL_TAIL,
    ),
    (
        _with(destination__ip=["-"], destination__port=["-"]),
        HEAD + "source 1.11.11.1:1234, " + FULL_TAIL,
    ),
    (
        _with(source__port=["-"]),
        HEAD + "source 1.11.11.1 destination 9.99.99.9:6789, " + FULL_TAIL,
    ),
    (
        _with(source__ip=["-"], source__port=["-"]),
        HEAD + "destination 9.99.99.9:6789, " + FULL_TAIL,
    ),
    (
        _with(process__name=["-"], process__parent__name=["-"]),
        "test event with file sample, source 1.11.11.1:1234, destination 9.99.99.9:6789, " + FULL_TAIL,
    ),
    ({"event.category": ["test"], "user.name": ["test-user"]}, "test event by test-user created medium alert my-rule."),
]

# The examples our specification of the reason gives, verbatim.
SPEC_CASES = [
    (
        {
            "event": {"category": "process"},
            "process": {"name": "cmd.exe"},
            "user": {"name": "bob"},
            "host": {"name": "host-1"},
        },
        "high",
        "My Rule",
        "process event with process cmd.exe, by bob on host-1 created high alert My Rule.",
    ),
    ({}, "low", "My Rule", "event created low alert My Rule."),
    ({"user.name": "bob", "host.name": "h1"}, "low", "R", "event by bob on h1 created low alert R."),
]

OUR_CASES = [
    # Nested objects and dotted keys, mixed.
    ({"process": {"parent.name": "p.exe"}, "host.name": "h"}, "event with parent process p.exe, on h created"),
    ({"process": [{"name": "a.exe"}, {"name": "b.exe"}]}, "event with process a.exe, b.exe, created"),
    # Numbers as text (newer Kibana main drops them); integral floats without ".0".
    ({"destination": {"ip": "10.0.0.1", "port": 443}}, "event with destination 10.0.0.1:443, created"),
    ({"source": {"ip": "10.0.0.2", "port": 53.0}}, "event with source 10.0.0.2:53, created"),
    ({"destination": {"port": 8080}}, "event with:8080, created"),
    ({"user": {"name": True}}, "event by true created"),
    # Missing values: empty, "-", null, empty array, object.
    ({"host": {"name": ""}, "user": {"name": "-"}}, "event created"),
    ({"host": {"name": None}, "user": {"name": []}, "process": {"name": {"x": 1}}}, "event created"),
    ({"host": {"name": ["", "h"]}}, "event on h created"),
    ({"host": {"name": ["-", "h"]}}, "event on -, h created"),
    ({"event": {"category": []}, "file": {"name": "f.txt"}}, "event with file f.txt, created"),
    # Unicode passes through.
    ({"user": {"name": "jürgen"}, "host": {"name": "サーバー"}}, "event by jürgen on サーバー created"),
]


@pytest.mark.parametrize(("source", "expected"), KIBANA_CASES)
def test_kibana_examples(source: dict[str, Any], expected: str) -> None:
    assert build_reason(source, severity="medium", rule_name="my-rule") == expected


@pytest.mark.parametrize(("source", "severity", "name", "expected"), SPEC_CASES)
def test_spec_examples(source: dict[str, Any], severity: str, name: str, expected: str) -> None:
    assert build_reason(source, severity=severity, rule_name=name) == expected


@pytest.mark.parametrize(("source", "expected_start"), OUR_CASES)
def test_field_combinations(source: dict[str, Any], expected_start: str) -> None:
    assert build_reason(source, severity="low", rule_name="R") == f"{expected_start} low alert R."


def test_severity_and_name_come_from_the_arguments() -> None:
    reason = build_reason({}, severity="critical", rule_name="Credential Dumping - Detected")
    assert reason == "event created critical alert Credential Dumping - Detected."
