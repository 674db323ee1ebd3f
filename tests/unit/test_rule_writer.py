"""Rule → TOML → Rule gives back the same rule, whatever the texts hold; long texts stay readable."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from job.rules import Rule, rule_to_toml
from job.rules.loader import rule_from_data
from job.rules.positions import key_lines


def _rule(**fields: Any) -> Rule:
    base: dict[str, Any] = {
        "rule_id": "r-1",
        "name": "R",
        "description": "d",
        "type": "query",
        "query": "a:b",
        "index": ["logs-*"],
        "severity": "low",
        "risk_score": 21,
    }
    return Rule.model_validate(base | fields)


def _reload(text: str) -> Rule:
    rule, _ = rule_from_data(tomllib.loads(text), source="", lines=key_lines(text))
    return rule


# Any text TOML can hold: no surrogates (not encodable as UTF-8).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)


@settings(max_examples=300, deadline=None)
@given(note=TEXT, description=TEXT, query=TEXT, name=TEXT.filter(str.strip))
def test_any_text_round_trips(note: str, description: str, query: str, name: str) -> None:
    rule = _rule(note=note, description=description, query=query, name=name)
    assert _reload(rule_to_toml(rule)) == rule


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("line one\nline two\n", True),
        ("C:\\Windows\\System32 and a 'quote'\n", True),
        ("two lines\nand no newline at the end", True),
        ("holds ''' three quotes\n", False),
        ("ends with a quote'", False),
        ("carriage\r\nreturns\r\n", False),
        ("a bell \x07\n", False),
    ],
)
def test_long_texts_are_literal_blocks_when_toml_allows(text: str, literal: bool) -> None:
    rule = _rule(note=text)
    toml = rule_to_toml(rule)
    assert (f"note = '''\n{text}" in toml) == literal
    assert _reload(toml).note == text


def test_query_is_a_literal_block_with_its_closing_quotes_on_their_own_line() -> None:
    toml = rule_to_toml(_rule(query='process.name:"C:\\Tools\\x.exe"'))
    assert "query = '''\nprocess.name:\"C:\\Tools\\x.exe\"\n'''\n" in toml


def test_layout_metadata_then_rule_keys_then_long_texts_then_tables() -> None:
    rule = _rule(
        note="guide\n",
        setup="setup\n",
        metadata={"creation_date": "2024/01/01"},
        threat=[{"tactic": {"id": "TA0001", "name": "Initial Access", "reference": "https://x/"}}],
        exceptions=[{"item_id": "i", "entries": [{"field": "user.name", "type": "match", "value": "a"}]}],
    )
    toml = rule_to_toml(rule)
    order = [
        "[metadata]",
        "[rule]",
        "risk_score = 21",
        "query = '''",
        "note = '''",
        "setup = '''",
        "[[rule.exceptions]]",
    ]
    positions = [toml.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "[[rule.threat]]" in toml
    assert _reload(toml) == rule


def test_items_resolved_from_lists_are_not_written_inline() -> None:
    inline = {"item_id": "mine", "entries": [{"field": "user.name", "type": "match", "value": "a"}]}
    rule = _rule(exceptions=[inline], exceptions_list=[{"list_id": "shared", "namespace_type": "single"}])
    listed = rule.exceptions[0].model_copy(update={"item_id": "theirs", "list_id": "shared"})
    resolved = rule.model_copy(update={"exceptions": (*rule.exceptions, listed)})
    toml = rule_to_toml(resolved)
    assert 'item_id = "mine"' in toml and "theirs" not in toml
    assert _reload(toml) == rule


def test_expire_time_round_trips_as_a_toml_datetime() -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    item = {"item_id": "i", "expire_time": expires, "entries": [{"field": "f", "type": "exists"}]}
    toml = rule_to_toml(_rule(exceptions=[item]))
    assert tomllib.loads(toml)["rule"]["exceptions"][0]["expire_time"] == expires
    assert _reload(toml).exceptions[0].expire_time == expires
