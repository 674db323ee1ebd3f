"""The EQL rule corpus (tests/fixtures/eql_corpus), without a node: every rule loads, validates offline and
with the corpus's field types, and the events generated for it match it on the client (an event query's
condition; a sequence's stages, through the matcher, one sequence), while a near miss does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from job.eql import SequenceMatcher, plan, sequence_spec, stage_matches
from job.eql.query import event_timestamp_ns
from job.rules.model import EqlRule
from job.ruletypes.checks import check_rules
from job.ruletypes.eql.compiled import category_field
from tests.eql_corpus import corpus_rules, field_types, near_miss, positives

RULES = corpus_rules()
TYPES = field_types(RULES)
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_the_corpus_is_about_forty_eql_rules_that_validate() -> None:
    assert len(RULES) >= 40
    assert sum(rule.query.startswith("sequence") for rule in RULES) >= 8
    assert [str(found) for found in check_rules(RULES, alerts_max=1000, now=NOW)] == []  # offline
    found = check_rules(RULES, alerts_max=1000, now=NOW, field_types=lambda _: TYPES)
    assert [str(diagnostic) for diagnostic in found] == []


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_generated_events_match_their_rule_and_a_near_miss_does_not(rule: EqlRule) -> None:
    planned = plan(rule.query, TYPES, category_field=category_field(rule))
    events = positives(rule, NOW, "e")
    if planned.kind == "event":
        [event] = events
        assert planned.stages[0].push.matches(event)
        assert not planned.stages[0].push.matches(near_miss(rule, event))
        return
    matcher = SequenceMatcher(sequence_spec(planned))
    found = []
    for number, event in enumerate(events):
        timestamp = event_timestamp_ns(event)
        assert timestamp is not None
        found += matcher.feed(event["_id"], timestamp, stage_matches(planned, event), surrogate=(number,))
    found += matcher.finish()
    assert [[ref for ref in match.events if ref is not None] for match in found] == [[e["_id"] for e in events]]
    assert not stage_matches(planned, near_miss(rule, events[0])).get(0)
