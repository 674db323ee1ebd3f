"""Rule types: the typed rule classes and the registry of the types that run agree, and each type that does
not run says why in its own words."""

from __future__ import annotations

from typing import Any

import pytest

from job.rules.model import RULE_CLASSES, TYPE_KEYS, Rule
from job.ruletypes.checks import validate_rule
from job.ruletypes.registry import TYPES
from tests.alert_samples import NOW, SEED_RULE_FIELDS

EXTRA: dict[str, dict[str, Any]] = {
    "query": {},
    "saved_query": {"saved_id": "s"},
    "eql": {"language": "eql", "query": "process where true"},
    "esql": {"language": "esql", "query": "from logs-* | limit 1"},
    "threshold": {"threshold": {"field": ["user.name"], "value": 5}},
    "new_terms": {"new_terms_fields": ["user.name"], "history_window_start": "now-7d"},
    "machine_learning": {"language": None, "query": "", "machine_learning_job_id": "job"},
    "threat_match": {"threat_index": ["ti-*"]},
}


def _rule(kind: str) -> Rule:
    return Rule.model_validate({**SEED_RULE_FIELDS, "type": kind, **EXTRA[kind]})


def test_the_types_that_run_are_the_registered_ones() -> None:
    assert {kind for kind, cls in RULE_CLASSES.items() if cls.refusal is None} == set(TYPES)


@pytest.mark.parametrize("kind", sorted(RULE_CLASSES))
def test_each_type_loads_as_its_own_class(kind: str) -> None:
    rule = _rule(kind)
    assert type(rule) is RULE_CLASSES[kind] and rule.type == kind
    assert rule.supported == (kind in TYPES)


@pytest.mark.parametrize("kind", sorted(set(RULE_CLASSES) - set(TYPES)))
def test_a_type_that_does_not_run_is_refused_with_its_reason(kind: str) -> None:
    [finding] = validate_rule(_rule(kind), alerts_max=1000, now=NOW)
    assert finding.error and finding.key == ("rule", "type")
    assert finding.message == f"type: {RULE_CLASSES[kind].refusal}"


@pytest.mark.parametrize(("kind", "other"), [("query", "eql"), ("eql", "threshold"), ("threshold", "new_terms")])
def test_a_key_of_another_type_is_not_a_key_of_this_one(kind: str, other: str) -> None:
    key = sorted(TYPE_KEYS[other])[0]
    assert key not in RULE_CLASSES[kind].model_fields
