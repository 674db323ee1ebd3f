"""Threshold and new_terms parameters: both file shapes load; bad values give Kibana's messages."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from job.rules.aggregation_params import (
    CARDINALITY_ON_GROUP_BY,
    HISTORY_WINDOW_TOO_SMALL,
    NewTermsParams,
    ThresholdAlertSuppression,
    ThresholdParams,
    history_window_problem,
    release_of,
    threshold_field_limit,
    threshold_field_problem,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _messages(error: ValidationError) -> list[str]:
    return [str(item["msg"]).removeprefix("Value error, ") for item in error.errors()]


@pytest.mark.parametrize(
    ("toml", "fields", "value", "cardinality"),
    [
        ('field = ["host.name", "user.name"]\nvalue = 25', ("host.name", "user.name"), 25, None),
        ('field = "source.ip"\nvalue = 1', ("source.ip",), 1, None),
        ('field = ""\nvalue = 100', (), 100, None),
        ("field = []\nvalue = 3", (), 3, None),
        (
            'field = ["source.ip"]\nvalue = 10\n[[cardinality]]\nfield = "user.name"\nvalue = 0',
            ("source.ip",),
            10,
            ("user.name", 0),
        ),
        (
            'field = []\nvalue = 2\n[[cardinality]]\nfield = "a"\nvalue = 5\n[[cardinality]]\nfield = "b"\nvalue = 9',
            (),
            2,
            ("a", 5),
        ),
        ('field = ["a", "b", "c", "d", "e"]\nvalue = 1', ("a", "b", "c", "d", "e"), 1, None),
    ],
)
def test_threshold_loads(toml: str, fields: tuple[str, ...], value: int, cardinality: tuple[str, int] | None) -> None:
    params = ThresholdParams.model_validate(tomllib.loads(toml))
    assert (params.field, params.value) == (fields, value)
    counted = params.counted_cardinality
    assert (None if counted is None else (counted.field, counted.value)) == cardinality


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"field": ["a"], "value": 0}, "Number must be greater than or equal to 1"),
        ({"field": ["a"], "value": -4}, "Number must be greater than or equal to 1"),
        (
            {"field": ["a"], "value": 1, "cardinality": [{"field": "b", "value": -1}]},
            "Number must be greater than or equal to 0",
        ),
        ({"field": ["a", "b"], "value": 1, "cardinality": [{"field": "b", "value": 2}]}, CARDINALITY_ON_GROUP_BY),
        ({"field": "a", "value": 1, "cardinality": [{"field": "a", "value": 2}]}, CARDINALITY_ON_GROUP_BY),
        ({"field": ["a", "b", "c", "d", "e", "f"], "value": 1}, "Number of fields must be 5 or less"),
        ({"field": ["a", "a"], "value": 1}, "each field may appear once (a repeated)"),
        ({"field": ["a", ""], "value": 1}, "String should have at least 1 character"),
        ({"field": ["a"], "value": "3"}, "Input should be a valid integer"),
        ({"field": ["a"], "value": 3.0}, "Input should be a valid integer"),
        ({"field": ["a"]}, "Field required"),
    ],
)
def test_threshold_refused_with_kibana_message(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ThresholdParams.model_validate(data)
    assert message in _messages(caught.value)


@pytest.mark.parametrize(
    ("min_stack_version", "release", "limit"),
    [
        (None, (8, 19), 3),
        ("8.12.0", (8, 19), 3),
        ("9.1.5", (9, 1), 3),
        ("9.2.0", (9, 2), 5),
        ("9.2", (9, 2), 5),
        ("10", (10, 0), 5),
        ("not a version", (8, 19), 3),
    ],
)
def test_field_limit_follows_the_release_the_rule_targets(
    min_stack_version: str | None, release: tuple[int, int], limit: int
) -> None:
    assert release_of(min_stack_version) == release
    assert threshold_field_limit(release) == limit


@pytest.mark.parametrize(
    ("fields", "min_stack_version", "problem"),
    [
        (["a", "b", "c"], None, None),
        (["a", "b", "c", "d"], None, "Number of fields must be 3 or less"),
        (["a", "b", "c", "d"], "9.1.0", "Number of fields must be 3 or less"),
        (["a", "b", "c", "d"], "9.2.0", None),
        (["a", "b", "c", "d", "e"], "9.4.0", None),
    ],
)
def test_threshold_field_problem(fields: list[str], min_stack_version: str | None, problem: str | None) -> None:
    params = ThresholdParams.model_validate({"field": fields, "value": 1})
    assert threshold_field_problem(params, min_stack_version) == problem


@pytest.mark.parametrize(
    ("toml", "ok"),
    [
        ('[duration]\nvalue = 5\nunit = "m"', True),
        ('group_by = ["host.name"]\n[duration]\nvalue = 5\nunit = "m"', False),
        ('missing_fields_strategy = "suppress"\n[duration]\nvalue = 5\nunit = "m"', False),
        ("", False),
    ],
)
def test_threshold_suppression_takes_a_duration_only(toml: str, ok: bool) -> None:
    data = tomllib.loads(toml)
    if ok:
        assert ThresholdAlertSuppression.model_validate(data).duration.value == 5
    else:
        with pytest.raises(ValidationError):
            ThresholdAlertSuppression.model_validate(data)


DETECTION_RULES_NEW_TERMS = """
[rule.new_terms]
field = "new_terms_fields"
value = ["host.id", "user.name"]
[[rule.new_terms.history_window_start]]
field = "history_window_start"
value = "now-14d"
"""


@pytest.mark.parametrize(
    ("kwargs", "fields", "start"),
    [
        ({"table": tomllib.loads(DETECTION_RULES_NEW_TERMS)["rule"]["new_terms"]}, ("host.id", "user.name"), "now-14d"),
        ({"fields": ["host.ip"], "history_window_start": "now-7d"}, ("host.ip",), "now-7d"),
        ({"fields": ("a", "b", "c"), "history_window_start": "now-30d/d"}, ("a", "b", "c"), "now-30d/d"),
        ({"fields": ["a"], "history_window_start": "2019-10-13T05:00:04.000Z"}, ("a",), "2019-10-13T05:00:04.000Z"),
    ],
)
def test_new_terms_loads(kwargs: dict[str, Any], fields: tuple[str, ...], start: str) -> None:
    params = NewTermsParams.from_rule(**kwargs)
    assert (params.fields, params.history_window_start) == (fields, start)


_TABLE = {"field": "new_terms_fields", "history_window_start": [{"field": "history_window_start", "value": "now-7d"}]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": [], "history_window_start": "now-7d"}, "Array must contain at least 1 element(s)"),
        ({"fields": ["a", "b", "c", "d"], "history_window_start": "now-7d"}, "Array must contain at most 3 element(s)"),
        ({"fields": ["a", "a"], "history_window_start": "now-7d"}, "each field may appear once (a repeated)"),
        ({"fields": ["a", ""], "history_window_start": "now-7d"}, "each field must be a non-empty string"),
        ({"fields": ["a", 3], "history_window_start": "now-7d"}, "each field must be a non-empty string"),
        ({"fields": ["a"], "history_window_start": "last week"}, "Failed to parse 'historyWindowStart'"),
        ({"fields": ["a"], "history_window_start": "now-99999999999999y"}, "Failed to parse 'historyWindowStart'"),
        ({"fields": ["a"], "history_window_start": ""}, "String should have at least 1 character"),
        ({"table": {**_TABLE, "value": ["a", "b", "c", "d"]}}, "Array must contain at most 3 element(s)"),
    ],
)
def test_new_terms_refused_with_kibana_message(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewTermsParams.from_rule(**kwargs)
    assert message in _messages(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": {**_TABLE, "value": ["a"]}, "fields": ["a"]}, "not both"),
        ({"fields": ["a"]}, "needs new_terms_fields and history_window_start"),
        ({"table": {**_TABLE, "field": "other", "value": ["a"]}}, "Input should be 'new_terms_fields'"),
        ({"table": {"field": "new_terms_fields", "value": ["a"], "history_window_start": []}}, "at least 1 item"),
    ],
)
def test_new_terms_shape_problems(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        NewTermsParams.from_rule(**kwargs)


@pytest.mark.parametrize(
    ("history_window_start", "from_", "problem"),
    [
        ("now-14d", "now-9m", None),
        ("now-10m", "now-9m", None),
        ("now-9m", "now-9m", HISTORY_WINDOW_TOO_SMALL),  # the same instant is not earlier
        ("now-5m", "now-6m", HISTORY_WINDOW_TOO_SMALL),
        ("now", "now-6m", HISTORY_WINDOW_TOO_SMALL),
        ("now/d", "now-6m", None),  # midnight lies before 11:54
        ("2026-05-01T11:53:00Z", "now-6m", None),
        ("2026-05-01T11:54:00Z", "now-6m", HISTORY_WINDOW_TOO_SMALL),
        ("yesterday", "now-6m", "Failed to parse 'historyWindowStart'"),
        ("now-7d", "soon", "Failed to parse 'from'"),
    ],
)
def test_history_window_problem(history_window_start: str, from_: str, problem: str | None) -> None:
    assert history_window_problem(history_window_start, from_, NOW) == problem


DETECTION_RULES_THRESHOLD = """
[metadata]
min_stack_version = "9.2.0"

[rule]
type = "threshold"
query = "event.category:authentication and event.outcome:failure"

[rule.threshold]
field = ["source.ip", "user.name", "host.name", "host.id"]
value = 25

[[rule.threshold.cardinality]]
field = "user.domain"
value = 2

[rule.alert_suppression.duration]
unit = "h"
value = 1
"""


def test_a_detection_rules_threshold_file() -> None:
    document = tomllib.loads(DETECTION_RULES_THRESHOLD)
    params = ThresholdParams.model_validate(document["rule"]["threshold"])
    suppression = ThresholdAlertSuppression.model_validate(document["rule"]["alert_suppression"])
    assert (params.field[-1], params.value, params.counted_cardinality) == ("host.id", 25, params.cardinality[0])
    assert suppression.duration.delta.total_seconds() == 3600
    assert threshold_field_problem(params, document["metadata"]["min_stack_version"]) is None
    assert threshold_field_problem(params, None) == "Number of fields must be 3 or less"
