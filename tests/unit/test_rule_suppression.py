"""``[rule.alert_suppression]`` in rule files: what loads, what is a problem (on its line), what validate says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from job.errors import RuleError
from job.rules import load_rule, rule_to_toml
from job.ruletypes.checks import check_rules, validate_rule
from tests.unit.test_rule_loader import BASE, _line

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _load(tmp_path: Path, suppression: str, base: str = BASE) -> tuple[str, object]:
    text = base + suppression
    path = tmp_path / "rule.toml"
    path.write_text(text)
    try:
        return text, load_rule(path)
    except RuleError as error:
        return text, error


@pytest.mark.parametrize(
    ("suppression", "group_by", "duration", "suppresses_missing"),
    [
        ('[rule.alert_suppression]\ngroup_by = ["host.name"]\n', ("host.name",), None, True),
        (
            '[rule.alert_suppression]\ngroup_by = ["a", "b", "c"]\nduration = {value = 5, unit = "m"}\n'
            'missing_fields_strategy = "suppress"\n',
            ("a", "b", "c"),
            timedelta(minutes=5),
            True,
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nmissing_fields_strategy = "doNotSuppress"\n\n'
            '[rule.alert_suppression.duration]\nunit = "h"\nvalue = 24\n',
            ("a",),
            timedelta(hours=24),
            False,
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {value = 1, unit = "s"}\n',
            ("a",),
            timedelta(seconds=1),
            True,
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {value = 8784, unit = "h"}\n',
            ("a",),
            timedelta(days=366),
            True,
        ),
    ],
)
def test_valid_suppression_loads_and_round_trips(
    tmp_path: Path, suppression: str, group_by: tuple[str, ...], duration: timedelta | None, suppresses_missing: bool
) -> None:
    _, rule = _load(tmp_path, suppression)
    assert not isinstance(rule, RuleError), rule
    setting = rule.alert_suppression  # type: ignore[attr-defined]
    assert setting.group_by == group_by
    assert (setting.duration.delta if setting.duration else None) == duration
    assert setting.suppresses_missing is suppresses_missing
    again = tmp_path / "again.toml"
    again.write_text(rule_to_toml(rule))  # type: ignore[arg-type]
    assert load_rule(again).alert_suppression == setting


@pytest.mark.parametrize(
    ("suppression", "key", "message"),
    [
        ("[rule.alert_suppression]\ngroup_by = []\n", "[rule.alert_suppression]", "1 to 3 fields"),
        ('[rule.alert_suppression]\nduration = {value = 5, unit = "m"}\n', "[rule.alert_suppression]", "1 to 3 fields"),
        ('[rule.alert_suppression]\ngroup_by = ["a", "b", "c", "d"]\n', "group_by", "at most 3 items"),
        ('[rule.alert_suppression]\ngroup_by = ["a", "a"]\n', "group_by", "each field may appear once"),
        ('[rule.alert_suppression]\ngroup_by = [""]\n', "group_by", "at least 1 character"),
        ('[rule.alert_suppression]\ngroup_by = "a"\n', "group_by", "valid tuple"),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nmissing_fields_strategy = "drop"\n',
            "missing_fields_strategy",
            "'suppress' or 'doNotSuppress'",
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {value = 0, unit = "m"}\n',
            "duration",
            "greater than or equal to 1",
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {value = 5, unit = "d"}\n',
            "duration",
            "'s', 'm' or 'h'",
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {value = "5", unit = "m"}\n',
            "duration",
            "valid integer",
        ),
        (
            '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {value = 8785, unit = "h"}\n',
            "duration",
            "at most 366 days",
        ),
        ('[rule.alert_suppression]\ngroup_by = ["a"]\nduration = "5m"\n', "duration", "valid dictionary"),
        ('[rule.alert_suppression]\ngroup_by = ["a"]\nwindow = 5\n', "window", "unknown key"),
    ],
)
def test_invalid_suppression_is_a_problem_on_its_line(tmp_path: Path, suppression: str, key: str, message: str) -> None:
    text, error = _load(tmp_path, suppression)
    assert isinstance(error, RuleError)
    assert message in error.message, error.message
    assert error.message.startswith("rule.alert_suppression")
    assert error.line == _line(text, key)


def test_a_threshold_rule_may_give_a_duration_only(tmp_path: Path) -> None:
    threshold = (
        BASE.replace('type = "query"', 'type = "threshold"') + '[rule.threshold]\nfield = ["host.name"]\nvalue = 5\n'
    )
    _, rule = _load(tmp_path, '[rule.alert_suppression]\nduration = {value = 5, unit = "m"}\n', base=threshold)
    assert not isinstance(rule, RuleError), rule


def test_validate_applies_suppression_and_checks_its_fields(tmp_path: Path) -> None:
    text, rule = _load(tmp_path, '[rule.alert_suppression]\ngroup_by = ["host.name", "message", "user.name"]\n')
    assert validate_rule(rule, alerts_max=1000, now=NOW) == ()  # type: ignore[arg-type]
    types = {"host.name": "keyword", "message": "text", "event.kind": "keyword"}
    diagnostics = check_rules([rule], alerts_max=1000, now=NOW, field_types=lambda _: types)  # type: ignore[list-item]
    assert [(d.severity, d.line, d.message) for d in diagnostics] == [
        (
            "warning",
            _line(text, "group_by"),
            'alert_suppression.group_by: Field "message" is mapped as text, which cannot be grouped on; '
            "every run of the rule would fail",
        ),
        (
            "warning",
            _line(text, "group_by"),
            'alert_suppression.group_by: Field "user.name" is not found within the rule\'s specified index patterns',
        ),
    ]
