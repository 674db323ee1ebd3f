"""The rule corpus (tests/fixtures/corpus): every file loads and validates, and it covers each feature."""

from __future__ import annotations

from datetime import UTC, datetime

from job.ruletypes.checks import check_rules
from tests.corpus import CORPUS, LISTS, corpus_rules, list_refs, matching_event


def test_the_corpus_loads_and_validates_without_problems() -> None:
    rules = corpus_rules()
    assert len(rules) >= 30
    diagnostics = check_rules(rules, alerts_max=10_000, now=datetime(2026, 5, 1, tzinfo=UTC))
    assert [str(d) for d in diagnostics if d.is_error] == []
    assert [str(d) for d in diagnostics] == []
    assert all(rule.source.startswith(str(CORPUS)) for rule in rules)


def test_the_corpus_covers_every_feature() -> None:
    rules = corpus_rules()

    def count(test: object) -> int:
        return sum(1 for rule in rules if test(rule))  # type: ignore[operator]

    assert count(lambda r: r.severity_mapping and r.severity_mapping[0].field == "event.severity") >= 6
    assert count(lambda r: r.severity_mapping and r.severity_mapping[0].field != "event.severity") >= 3
    assert count(lambda r: r.risk_score_mapping) >= 8
    assert count(lambda r: r.rule_name_override) >= 10
    assert count(lambda r: r.building_block_type == "default") >= 8
    assert count(lambda r: r.investigation_fields) >= 2
    assert count(lambda r: r.required_fields) >= 4
    assert count(lambda r: r.related_integrations) >= 4
    assert count(lambda r: r.setup) >= 3
    assert count(lambda r: r.language == "lucene") >= 2
    suppressed = [rule.alert_suppression for rule in rules if rule.alert_suppression]
    assert len(suppressed) >= 5
    assert {len(suppression.group_by) for suppression in suppressed} == {1, 2, 3}
    assert {suppression.duration is None for suppression in suppressed} == {True, False}
    assert {suppression.suppresses_missing for suppression in suppressed} == {True, False}
    assert set(list_refs(rules).values()) == {"keyword", "ip", "ip_range", "text", "long"}
    assert {f"{list_id}.txt" for list_id in list_refs(rules)} == {path.name for path in LISTS.iterdir()}


def test_every_corpus_query_gives_an_event() -> None:
    for rule in corpus_rules():
        assert matching_event(rule), rule.name
