"""Fixture events: one problem per bad line at its line, ids, the fields used, and the time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from job.rules.model import Rule
from job.ruletests.ecs import ECS_TYPES, ecs_mapping
from job.ruletests.fixtures import read_events, time_range
from job.ruletests.runner import retarget

RULE = {
    "rule_id": "r",
    "name": "r",
    "type": "query",
    "description": "d",
    "risk_score": 1,
    "severity": "low",
    "index": ["x"],
    "language": "kuery",
    "query": "a:b",
}


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ('{"a": 1}\n\n{"b": 2}', []),
        ('{"a": 1}\n{nope}\n', [(11, "event: not JSON")]),
        ("[1, 2]", [(10, "event: not a JSON object")]),
        ('{"_id": 3}', [(10, "_id: expected a string")]),
        ('{"a": ' + "[" * 100 + "]" * 100 + "}", [(10, "event: not JSON")]),
        ("\n\n", [(10, "no events")]),
    ],
)
def test_problems_at_their_lines(text: str, problems: list[tuple[int, str]]) -> None:
    fixture = read_events(text, "t.toml", 10)
    assert len(fixture.problems) == len(problems)
    for problem, (line, prefix) in zip(fixture.problems, problems, strict=True):
        assert (problem.path, problem.line) == ("t.toml", line) and problem.message.startswith(prefix), problem


def test_ids_and_fields() -> None:
    fixture = read_events(
        '{"_id": "mine", "host": {"name": "a"}}\n{"process.name": "x", "tags": ["t"]}', "dir/t.toml", 4
    )
    assert [(event.doc_id, event.line) for event in fixture.events] == [("mine", 4), ("t-5", 5)]
    assert fixture.events[0].source == {"host": {"name": "a"}}
    assert fixture.fields() == {"host", "host.name", "process", "process.name", "tags"}


def test_the_ecs_mapping_of_the_fields_used() -> None:
    mapping = ecs_mapping({"host", "host.name", "host.ip", "process.pid", "vendor.thing"})
    assert mapping["properties"] == {
        "host": {"properties": {"ip": {"type": "ip"}, "name": {"type": "keyword"}}},
        "process": {"properties": {"pid": {"type": "long"}}},
    }
    assert mapping["dynamic_templates"][0]["strings"]["mapping"] == {"type": "keyword"}
    assert ECS_TYPES["@timestamp"] == "date"


@pytest.mark.parametrize(
    ("override", "fallback_off", "expected"),
    [
        (None, False, ("2026-01-01T00:00:00", "2026-01-01T00:10:00")),
        ("event.ingested", False, ("2026-01-01T00:00:00", "2026-01-01T00:20:00")),
        ("event.ingested", True, ("2026-01-01T00:05:00", "2026-01-01T00:20:00")),
    ],
)
def test_the_range_covers_the_rule_s_timestamp_fields(
    override: str | None, fallback_off: bool, expected: tuple[str, str]
) -> None:
    rule = Rule.model_validate(
        RULE | {"timestamp_override": override, "timestamp_override_fallback_disabled": fallback_off}
    )
    events = read_events(
        '{"@timestamp": "2026-01-01T00:00:00Z", "event": {"ingested": "2026-01-01T00:05:00Z"}}\n'
        '{"@timestamp": "2026-01-01T00:10:00Z", "event": {"ingested": "2026-01-01T00:20:00Z"}}\n'
        '{"@timestamp": "not a time"}',
        "t.toml",
        1,
    ).events
    start, end = time_range(rule, events) or (None, None)
    assert (start, end) == (
        datetime.fromisoformat(expected[0]).replace(tzinfo=UTC),
        datetime.fromisoformat(expected[1]).replace(tzinfo=UTC) + timedelta(milliseconds=1),
    )
    assert time_range(rule, read_events('{"a": 1}', "t.toml", 1).events) is None


@pytest.mark.parametrize(
    ("query", "retargeted"),
    [
        ("FROM logs-* | WHERE a == 1", "FROM test-events | WHERE a == 1"),
        (
            "from logs-*, winlogbeat-* metadata _id, _index | where a == 1",
            "from test-events metadata _id, _index | where a == 1",
        ),
        ("FROM logs-*\n| WHERE a == 1", "FROM test-events\n| WHERE a == 1"),
        ('FROM "logs-*"', "FROM test-events"),
        ("ROW a = 1", "ROW a = 1"),  # no FROM: left as it is (validate refuses it)
    ],
)
def test_an_esql_rule_is_pointed_at_the_test_events(query: str, retargeted: str) -> None:
    rule = Rule.model_validate(
        {**{k: v for k, v in RULE.items() if k != "index"}, "type": "esql", "language": "esql", "query": query}
    )
    assert retarget(rule, "test-events").query == retargeted


def test_other_rules_get_the_test_events_as_their_index() -> None:
    assert retarget(Rule.model_validate(RULE), "test-events").index == ("test-events",)
