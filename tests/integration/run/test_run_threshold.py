"""Threshold rules through the run, on the real node: rule file -> run -> alerts.

The specification's worked examples (the synthetic hit's UUID and the alert id, threshold_result, the reasons,
the signal history's key), the history across overlapping runs and after a run that left no usable record,
composite pages past 10,000 groups with the cap reached and resumed, overrides, building blocks, exceptions
and value lists, and rules that Kibana refuses recorded ``failed`` while the others run.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.writing.writer import MAX_ALERTS_WARNING
from tests.integration.run.aggregation_rules import (
    auth,
    index_many,
    last_record,
    module_env,
    new_terms_rule,
    run,
    threshold_rule,
)
from tests.integration.run.conftest import JobEnv, iso
from tests.integration.run.test_lists_command import import_list, use_lists

pytestmark = pytest.mark.integration
env = module_env  # the module's sandbox, shared by its tests

# The specification's test vector: rule ``abc`` started at this time, grouping by host.name and user.name.
NOW = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)
VECTOR_UUID = "7fa90157-65cc-55ef-bf76-6f20c6ded197"
VECTOR_HISTORY_KEY = "34cfa98a70f573585344a68b9027fe42c74fc5637ec36255900c864960249ed0"


def _at(minutes: float, base: datetime = NOW) -> datetime:
    return base - timedelta(minutes=minutes)


def _alerts(env: JobEnv, rule_id: str) -> list[dict[str, Any]]:
    return sorted(env.alert_docs(rule_id), key=lambda alert: str(alert["kibana.alert.threshold_result"]["terms"]))


def _groups(alerts: list[dict[str, Any]]) -> dict[tuple[Any, ...], int]:
    return {
        tuple(term["value"] for term in alert["kibana.alert.threshold_result"]["terms"]): alert[
            "kibana.alert.threshold_result"
        ]["count"]
        for alert in alerts
    }


def test_the_worked_examples(env: JobEnv) -> None:
    """h1/bob 3 events, h2/al 2, h3 three users once each, h4/x 3; four rules over them, run at the vector's time."""
    events = [auth(_at(m), host={"name": "h1"}, user={"name": "bob"}) for m in (4, 3, 2)]
    events += [auth(_at(m), host={"name": "h2"}, user={"name": "al"}) for m in (3, 1)]
    events += [auth(_at(3), host={"name": "h3"}, user={"name": name}) for name in ("x", "y", "z")]
    events += [auth(_at(m), host={"name": "h4"}, user={"name": "x"}) for m in (5, 2, 1.5)]
    events.append(auth(_at(7), host={"name": "h1"}, user={"name": "bob"}))  # before the window
    env.index_events(events)
    threshold_rule(env, "abc", ["host.name", "user.name"], 3)
    threshold_rule(env, "by-host", ["host.name"], 3)
    threshold_rule(env, "all-events", [], 11)
    threshold_rule(env, "distinct-users", ["host.name"], 3, cardinality=("user.name", 2))
    assert run(env, NOW, "abc", "by-host", "all-events", "distinct-users") == 0

    by_pair = _alerts(env, "abc")
    assert _groups(by_pair) == {("h1", "bob"): 3, ("h4", "x"): 3}
    alert = by_pair[0]
    index = env.events_pattern
    assert alert["kibana.alert.ancestors"] == [{"id": VECTOR_UUID, "type": "event", "index": index, "depth": 0}]
    expected_id = hashlib.sha256(f"{index}{VECTOR_UUID}undefineddefault:abc".encode()).hexdigest()
    assert alert["_id"] == alert["kibana.alert.uuid"] == expected_id
    assert alert["kibana.alert.threshold_result"] == {
        "terms": [{"field": "host.name", "value": "h1"}, {"field": "user.name", "value": "bob"}],
        "count": 3,
        "from": iso(_at(4)),
    }
    assert (alert["host.name"], alert["user.name"]) == ("h1", "bob")  # flat, as Kibana's synthetic source
    assert alert["kibana.alert.original_time"] == iso(_at(2))
    assert alert["kibana.alert.reason"] == "event by bob on h1 created low alert R."
    assert (alert["kibana.alert.rule.type"], alert["kibana.alert.rule.category"]) == ("threshold", "Threshold Rule")
    assert alert["kibana.alert.rule.rule_type_id"] == "siem.thresholdRule"
    parameters = alert["kibana.alert.rule.parameters"]
    assert parameters["threshold"] == {"field": ["host.name", "user.name"], "value": 3, "cardinality": []}
    record = last_record(env, "abc")
    assert VECTOR_HISTORY_KEY in record["type_state"]["value"]["signal_history"]
    assert record["metrics"]["alerts_created"] == 2 and record["execution"]["status"] == "succeeded"

    assert _groups(_alerts(env, "by-host")) == {("h1",): 3, ("h3",): 3, ("h4",): 3}
    assert _alerts(env, "by-host")[0]["kibana.alert.reason"] == "event on h1 created low alert R."
    [everything] = _alerts(env, "all-events")
    assert everything["kibana.alert.threshold_result"] == {"terms": [], "count": 11, "from": iso(_at(5))}
    assert everything["kibana.alert.reason"] == "event created low alert R."
    [distinct] = _alerts(env, "distinct-users")
    assert distinct["kibana.alert.threshold_result"]["cardinality"] == [{"field": "user.name", "value": 3}]
    assert _groups([distinct]) == {("h3",): 3}


T2 = NOW + timedelta(days=1)


def test_the_history_across_overlapping_runs_and_a_run_without_a_usable_record(env: JobEnv) -> None:
    """The group's events in the overlap of two runs are counted once; a rerun counts nothing; after the records
    are lost (a first run, as far as the log can tell) the history comes from the alerts."""
    rule_id = threshold_rule(env, "overlap", ["host.name"], 2, query="host.name:ov")
    env.index_events([auth(_at(m, T2), host={"name": "ov"}) for m in (0.5, 0.2)])  # in the next run's look-back
    assert run(env, T2, rule_id) == 0
    assert _groups(_alerts(env, rule_id)) == {("ov",): 2}
    first = last_record(env, rule_id)
    assert first["metrics"]["pages"] == 2  # the history from the alerts (a first run), then one page of groups

    env.index_events([auth(T2 + timedelta(minutes=1), host={"name": "ov"})])
    later = T2 + timedelta(minutes=5)
    assert run(env, later, rule_id) == 0
    assert _groups(_alerts(env, rule_id)) == {("ov",): 2}  # the 2 old events are not counted again: 1 < 2
    assert last_record(env, rule_id)["metrics"]["pages"] == 1  # the history from the record
    env.index_events([auth(T2 + timedelta(minutes=2), host={"name": "ov"})])
    assert run(env, later, rule_id) == 0
    alerts = _alerts(env, rule_id)
    assert sorted(alert["kibana.alert.threshold_result"]["count"] for alert in alerts) == [2, 2]
    newest = max(alerts, key=lambda alert: alert["kibana.alert.original_time"])
    assert newest["kibana.alert.threshold_result"]["from"] == iso(T2 + timedelta(minutes=1))
    assert run(env, later, rule_id) == 0  # a rerun
    assert len(_alerts(env, rule_id)) == 2

    records = env.es.search(index=env.executions, query={"term": {"rule.rule_id": rule_id}}, size=100)
    for hit in records["hits"]["hits"]:  # the node has no _delete_by_query
        env.es.delete(index=hit["_index"], id=hit["_id"], refresh=True)
    assert run(env, T2 + timedelta(minutes=6), rule_id) == 0  # no record: the history comes from the alerts
    assert len(_alerts(env, rule_id)) == 2
    assert last_record(env, rule_id)["metrics"]["pages"] == 2


T3 = NOW + timedelta(days=2)
KEYS = 10_100  # groups k00000..k10099; every 100th has 2 events (101 groups pass: 100 on the first page)


def test_composite_pages_past_ten_thousand_groups_and_the_cap(env: JobEnv) -> None:
    index_many(
        env,
        (
            auth(_at(1 + (i % 4), T3), host={"name": f"k{i:05d}"}, tags=["pages"])
            for i in range(KEYS)
            for _ in range(2 if i % 100 == 0 else 1)
        ),
    )
    every = threshold_rule(env, "pages", ["host.name"], 2, query="tags:pages", max_signals=1000)
    capped = threshold_rule(env, "capped", ["host.name"], 2, query="tags:pages", max_signals=95)
    assert run(env, T3, every, capped) == 0
    passing = {(f"k{i:05d}",): 2 for i in range(0, KEYS, 100)}
    assert _groups(_alerts(env, every)) == passing
    assert last_record(env, every)["metrics"]["pages"] == 3  # the alerts, then pages of 10,000 and 100 groups
    first = last_record(env, capped)
    assert first["execution"]["warnings"] == [MAX_ALERTS_WARNING]
    assert first["window"]["searched_to"] == first["window"]["from"]  # the groups left over wait for the next run
    groups = _groups(_alerts(env, capped))
    assert list(groups) == sorted(passing)[:95]  # the first in composite order
    assert run(env, T3, capped) == 0  # the next run writes the 6 left over, and none twice
    assert _groups(_alerts(env, capped)) == passing
    assert last_record(env, capped)["execution"]["status"] == "succeeded"


T4 = NOW + timedelta(days=3)


def test_overrides_building_blocks_exceptions_and_value_lists(env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    """A group-by field drives the severity; the rule is a building block; an inline item and a small keyword list
    drop events before counting; a list of longs cannot apply to groups (Kibana's warning)."""
    use_lists(env)
    assert import_list(env, "agg-users.txt", "keyword", ["svc-backup"]) == 0
    assert import_list(env, "agg-ports.txt", "long", ["22"]) == 0
    capsys.readouterr()
    events = [auth(_at(2, T4), host={"name": "db-1"}, user={"name": name}) for name in ("a", "b", "svc-backup")]
    events += [auth(_at(2, T4), host={"name": "web-1"}, user={"name": name}) for name in ("a", "b", "skip")]
    events += [auth(_at(2, T4), host={"name": "web-2"}, user={"name": "a"}, destination={"port": 22})]
    env.index_events(events)
    severity = (
        '\n[[rule.severity_mapping]]\nfield = "host.name"\noperator = "equals"\nvalue = "db-1"\nseverity = "critical"\n'
    )
    exceptions = (
        '\n[[rule.exceptions]]\nitem_id = "skip"\nname = "skip user"\n'
        '[[rule.exceptions.entries]]\nfield = "user.name"\ntype = "match"\nvalue = "skip"\n'
        '\n[[rule.exceptions]]\nitem_id = "backup"\nname = "backup account"\n'
        '[[rule.exceptions.entries]]\nfield = "user.name"\ntype = "list"\noperator = "included"\n'
        'list = { id = "agg-users.txt", type = "keyword" }\n'
        '\n[[rule.exceptions]]\nitem_id = "ssh"\nname = "ssh port"\n'
        '[[rule.exceptions.entries]]\nfield = "destination.port"\ntype = "list"\noperator = "included"\n'
        'list = { id = "agg-ports.txt", type = "long" }\n'
    )
    rule_id = threshold_rule(
        env,
        "dressed",
        ["host.name"],
        2,
        query="host.name:*",
        keys='building_block_type = "default"',
        tables=severity + exceptions,
    )
    assert run(env, T4, rule_id) == 0
    alerts = {alert["host.name"]: alert for alert in _alerts(env, rule_id)}
    assert {name: _groups([alert])[(name,)] for name, alert in alerts.items()} == {"db-1": 2, "web-1": 2}
    assert alerts["db-1"]["kibana.alert.severity"] == "critical"
    assert alerts["web-1"]["kibana.alert.severity"] == "low"
    assert {alert["kibana.alert.building_block_type"] for alert in alerts.values()} == {"default"}
    record = last_record(env, rule_id)
    assert record["execution"]["warnings"] == ["The following exceptions won't be applied to rule execution: ssh port"]


T5 = NOW + timedelta(days=4)


def test_rules_kibana_refuses_are_recorded_failed_and_the_others_run(env: JobEnv) -> None:
    env.index_events([auth(_at(1, T5), host={"name": "bad"}, user={"name": "u"}) for _ in range(2)])
    good = threshold_rule(env, "good", ["host.name"], 2, query="host.name:bad")
    on_group = threshold_rule(env, "on-group", ["host.name"], 2, cardinality=("host.name", 2))
    too_many = threshold_rule(env, "too-many", ["host.name", "user.name", "a", "b"], 2)
    late = new_terms_rule(env, "late-history", ["host.name"], "now-5m")
    assert run(env, T5, good, on_group, too_many, late) == 1
    assert len(_alerts(env, good)) == 1
    expected = {
        on_group: "threshold.cardinality.field: Cardinality of a field that is being aggregated on is always 1",
        too_many: "threshold.field: Number of fields must be 3 or less",
        late: "history_window_start: History window size is smaller than rule interval + additional lookback, "
        "'historyWindowStart' must be earlier than 'from'",
    }
    for rule_id, message in expected.items():
        record = last_record(env, rule_id)
        assert record["execution"]["status"] == "failed"
        [error] = record["execution"]["errors"]
        assert error.startswith("Rule not run, it does not validate: ") and error.endswith(message), error
