"""The whole corpus on the real node: each rule validates with the cluster and alerts on an event generated
from its query, with its overrides, building-block marks and parameters; events its value lists except do not
alert."""

from __future__ import annotations

import copy
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.build import build_alert
from job.backends import translate_rule_query
from job.cli import main as cli_main
from job.rules import rule_to_toml
from tests.corpus import CORPUS, LISTS, a_listed_value, corpus_rules, list_refs, matching_event, override_fields, put
from tests.integration.run.conftest import ECS_EVENT_MAPPING, JobEnv, iso
from tests.integration.run.test_lists_command import use_lists

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
COPIED_PARAMETERS = ("required_fields", "related_integrations", "investigation_fields", "setup")


def _listed_twins(rule: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
    """For each single-entry "is in list" item: the event again, with the entry's field set to a listed value."""
    twins = []
    for item in rule.exceptions:
        (entry, *more) = item.entries
        if more or entry.list is None or entry.operator != "included":
            continue
        twin = copy.deepcopy(event)
        put(twin, entry.field, a_listed_value(entry.list.id, entry.list.type))
        twin["_id"] = f"{rule.rule_id}-listed-{item.item_id}"
        twins.append(twin)
    return twins


def _group_values(rule: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Give the event a value for each ``group_by`` field of a rule that groups events lacking one, and return
    the suppression terms its alert must carry ([] for the rules that alert on such events one by one)."""
    if rule.alert_suppression is None or not rule.alert_suppression.suppresses_missing:
        return []
    terms = []
    for field in rule.alert_suppression.group_by:
        value = "10.0.0.7" if field.endswith(".ip") else f"{field} of {rule.rule_id}"
        put(event, field, value)
        terms.append({"field": field, "value": value})
    return terms


def test_every_corpus_rule_runs_as_kibana_would(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    rules = corpus_rules()
    use_lists(job_env)
    for list_id, list_type in list_refs(rules).items():
        path = str(LISTS / f"{list_id}.txt")
        assert cli_main(["lists", "import", path, "--type", list_type, "--list-id", list_id]) == 0

    # The corpus as it is, pointed at this test's events index.
    shutil.copytree(CORPUS / "exceptions", job_env.rules_dir / "exceptions")
    for rule in rules:
        moved = rule.model_copy(update={"index": (job_env.events_pattern,)})
        (job_env.rules_dir / f"{rule.rule_id}.toml").write_text(rule_to_toml(moved))

    events, twins, expected, groups = [], {}, {}, {}
    for rule in rules:
        event = matching_event(rule)
        groups[rule.rule_id] = _group_values(rule, event)
        fields, expected[rule.rule_id] = override_fields(rule)
        for path, value in fields.items():
            put(event, path, value)
        event["@timestamp"] = iso(NOW - timedelta(seconds=30))
        event["_id"] = rule.rule_id
        twins[rule.rule_id] = _listed_twins(rule, event)
        events += [event, *twins[rule.rule_id]]
    assert sum(len(found) for found in twins.values()) == 5  # one per "is in list" item of the corpus
    job_env.index_events(copy.deepcopy(events), mapping=ECS_EVENT_MAPPING)
    capsys.readouterr()

    assert cli_main(["validate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"{len(rules)} rules loaded: 0 problems")

    assert job_env.run("--now", iso(NOW)) == 0
    for rule in rules:
        alerts = {doc["kibana.alert.ancestors"][0]["id"]: doc for doc in job_env.alert_docs(rule.rule_id)}
        assert rule.rule_id in alerts, rule.name
        alert = alerts[rule.rule_id]
        severity, risk_score, name = expected[rule.rule_id]
        assert alert["kibana.alert.severity"] == severity, rule.name
        assert alert["kibana.alert.risk_score"] == risk_score, rule.name
        assert alert["kibana.alert.rule.name"] == name, rule.name
        assert alert.get("kibana.alert.building_block_type") == rule.building_block_type, rule.name
        # Grouped: the group's terms; not grouped (doNotSuppress, the event lacks the fields): an ordinary alert.
        assert alert.get("kibana.alert.suppression.terms", []) == groups[rule.rule_id], rule.name
        # Parameters as the job's own builder makes them for this rule and event (the document as stored).
        built = build_alert(
            rule.model_copy(update={"index": (job_env.events_pattern,)}),
            {"_index": f"{job_env.prefix}-events-a", "_id": rule.rule_id, "_source": _source_of(events, rule.rule_id)},
            now=NOW,
            execution_uuid="-",
            space_id="default",
        )
        for key in COPIED_PARAMETERS:
            stored = alert["kibana.alert.rule.parameters"].get(key)
            assert stored == built["kibana.alert.rule.parameters"].get(key), (rule.name, key)
        for twin in twins[rule.rule_id]:
            # The twin matches the rule's query; only the value list keeps it from alerting.
            query = {"bool": {"filter": [translate_rule_query(rule), {"ids": {"values": [twin["_id"]]}}]}}
            assert job_env.es.count(index=job_env.events_pattern, query=query)["count"] == 1, twin["_id"]
            assert twin["_id"] not in alerts, (rule.name, twin["_id"])
    statuses = {doc["execution"]["status"] for doc in job_env.executions_docs()}
    assert statuses == {"succeeded"}


def _source_of(events: list[dict[str, Any]], doc_id: str) -> dict[str, Any]:
    source = next(event for event in events if event["_id"] == doc_id)
    return {key: value for key, value in source.items() if key != "_id"}
