"""Threshold and new_terms parameters: both file shapes load; values Kibana refuses give its messages as problems
(validate reports them; the rule loads, so run records it refused)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from job.rules.aggregation_params import (
    CARDINALITY_ON_GROUP_BY,
    EMPTY_STRING,
    NewTermsParams,
    NewTermsTable,
    Problem,
    ThresholdParams,
    new_terms_problems,
    release_of,
    threshold_field_limit,
    threshold_problems,
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
    ("data", "problems"),
    [
        ({"field": ["a"], "value": 0}, [(("value",), "Number must be greater than or equal to 1")]),
        ({"field": ["a"], "value": -4}, [(("value",), "Number must be greater than or equal to 1")]),
        (
            {"field": ["a"], "value": 1, "cardinality": [{"field": "b", "value": -1}]},
            [(("cardinality", 0, "value"), "Number must be greater than or equal to 0")],
        ),
        (
            {"field": ["a", "b"], "value": 1, "cardinality": [{"field": "b", "value": 2}]},
            [(("cardinality", 0, "field"), CARDINALITY_ON_GROUP_BY)],
        ),
        (
            {"field": "a", "value": 1, "cardinality": [{"field": "a", "value": 2}]},
            [(("cardinality", 0, "field"), CARDINALITY_ON_GROUP_BY)],
        ),
        # Kibana reads the first cardinality entry only
        ({"field": "a", "value": 1, "cardinality": [{"field": "c", "value": 2}, {"field": "a", "value": 2}]}, []),
        ({"field": ["a", "b", "c", "d"], "value": 1}, [(("field",), "Number of fields must be 3 or less")]),
        ({"field": ["a", "a"], "value": 1}, [(("field",), "each field may appear once (a repeated)")]),
        ({"field": ["a", ""], "value": 1}, [(("field",), EMPTY_STRING)]),
        (
            {"field": ["a", "b", "c", "d", "d"], "value": 0},
            [
                (("value",), "Number must be greater than or equal to 1"),
                (("field",), "Number of fields must be 3 or less"),
                (("field",), "each field may appear once (d repeated)"),
            ],
        ),
    ],
)
def test_threshold_problems_in_kibanas_words(data: dict[str, Any], problems: list[Problem]) -> None:
    assert threshold_problems(ThresholdParams.model_validate(data), None) == problems


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"field": ["a"], "value": "3"}, "Input should be a valid integer"),
        ({"field": ["a"], "value": 3.0}, "Input should be a valid integer"),
        ({"field": ["a"]}, "Field required"),
        ({"field": ["a"], "value": 3, "cardinality": [{"field": "b"}]}, "Field required"),
    ],
)
def test_threshold_shape_refused_at_load(data: dict[str, Any], message: str) -> None:
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
        (["a", "b", "c", "d", "e", "f"], "9.4.0", "Number of fields must be 5 or less"),
    ],
)
def test_threshold_field_limit(fields: list[str], min_stack_version: str | None, problem: str | None) -> None:
    params = ThresholdParams.model_validate({"field": fields, "value": 1})
    assert threshold_problems(params, min_stack_version) == ([(("field",), problem)] if problem else [])


_TABLE = {"field": "new_terms_fields", "history_window_start": [{"field": "history_window_start", "value": "now-7d"}]}


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
        (
            {"table": NewTermsTable.model_validate(tomllib.loads(DETECTION_RULES_NEW_TERMS)["rule"]["new_terms"])},
            ("host.id", "user.name"),
            "now-14d",
        ),
        ({"fields": ["host.ip"], "history_window_start": "now-7d"}, ("host.ip",), "now-7d"),
        ({"fields": ("a", "b", "c"), "history_window_start": "now-30d/d"}, ("a", "b", "c"), "now-30d/d"),
        ({"fields": ["a"], "history_window_start": "2019-10-13T05:00:04.000Z"}, ("a",), "2019-10-13T05:00:04.000Z"),
    ],
)
def test_new_terms_loads(kwargs: dict[str, Any], fields: tuple[str, ...], start: str) -> None:
    params = NewTermsParams.from_rule(**kwargs)
    assert (params.fields, params.history_window_start) == (fields, start)
    assert new_terms_problems(params) == []


@pytest.mark.parametrize(
    ("fields", "start", "problems"),
    [
        ([], "now-7d", [(("fields",), "Array must contain at least 1 element(s)")]),
        (["a", "b", "c", "d"], "now-7d", [(("fields",), "Array must contain at most 3 element(s)")]),
        (["a", "a"], "now-7d", [(("fields",), "each field may appear once (a repeated)")]),
        (["a", ""], "now-7d", [(("fields",), EMPTY_STRING)]),
        (["a"], "", [(("history_window_start",), EMPTY_STRING)]),
    ],
)
def test_new_terms_problems_in_kibanas_words(fields: list[str], start: str, problems: list[Problem]) -> None:
    params = NewTermsParams.from_rule(fields=fields, history_window_start=start)
    assert new_terms_problems(params) == problems


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": NewTermsTable.model_validate({**_TABLE, "value": ["a"]}), "fields": ["a"]}, "not both"),
        ({"fields": ["a"]}, "needs new_terms_fields and history_window_start"),
    ],
)
def test_new_terms_takes_one_form(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NewTermsParams.from_rule(**kwargs)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**_TABLE, "field": "other", "value": ["a"]}, "Input should be 'new_terms_fields'"),
        ({"field": "new_terms_fields", "value": ["a"], "history_window_start": []}, "at least 1 item"),
        ({**_TABLE, "value": ["a", 3]}, "Input should be a valid string"),
    ],
)
def test_new_terms_table_shape_refused_at_load(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NewTermsTable.model_validate(table)
    assert any(message in text for text in _messages(caught.value))


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
    assert (params.field[-1], params.value, params.counted_cardinality) == ("host.id", 25, params.cardinality[0])
    assert threshold_problems(params, document["metadata"]["min_stack_version"]) == []
    assert threshold_problems(params, None) == [(("field",), "Number of fields must be 3 or less")]
