"""New-terms rules through the run, on the real node: rule file -> run -> alerts.

The specification's worked examples (one field, several fields, array values, missing fields, a term first
seen exactly at ``from``, history windows of 7 and 14 days with events before, inside and after them, the
alert id), phase-1 pages past 10,000 terms with the cap reached and resumed, overlapping runs, exceptions
that decide the history too, and a term whose alert Elasticsearch refuses (dead-lettered, the others written).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.objecthash import object_hash
from job.cli import main as cli_main
from job.writing.deadletter_retry import not_retried
from job.writing.writer import MAX_ALERTS_WARNING
from tests.faultproxy import FaultProxy, refusing_bulk
from tests.integration.run.aggregation_rules import auth, index_many, last_record, module_env, new_terms_rule, run
from tests.integration.run.conftest import JobEnv, iso

pytestmark = pytest.mark.integration
env = module_env  # the module's sandbox, shared by its tests

NOW = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _at(minutes: float, base: datetime = NOW) -> datetime:
    return base - timedelta(minutes=minutes)


def _event(doc_id: str, moment: datetime, **fields: Any) -> dict[str, Any]:
    return {"_id": doc_id, **auth(moment, **fields)}


def _terms(env: JobEnv, rule_id: str) -> dict[tuple[Any, ...], str]:
    """Each alert's new term, and the id of the event it was built from."""
    return {
        tuple(alert["kibana.alert.new_terms"]): alert["kibana.alert.ancestors"][0]["id"]
        for alert in env.alert_docs(rule_id)
    }


def test_the_worked_examples(env: JobEnv) -> None:
    env.index_events(
        [
            _event("old-history", _at(3 * 24 * 60), host={"name": "old"}, user={"name": "alice"}),
            _event("old-again", _at(2), host={"name": "old"}, user={"name": "alice"}),
            _event("new-first", _at(4), host={"name": "new1"}, user={"name": "bob"}),
            _event("new-later", _at(2), host={"name": "new1"}, user={"name": "bob"}),
            _event("array", _at(3), host={"name": ["arr-a", "arr-b"]}, user={"name": "carol"}),
            _event("no-host", _at(2), user={"name": "dave"}),
            _event("edge-at-from", _at(6), host={"name": "edge"}, user={"name": "erin"}),  # first seen at `from`
            _event("edge-later", _at(1), host={"name": "edge"}, user={"name": "erin"}),
            _event("ten-days-ago", _at(10 * 24 * 60), host={"name": "back"}, user={"name": "fay"}),
            _event("back-now", _at(1), host={"name": "back"}, user={"name": "fay"}),
            _event("pair-history", _at(2 * 24 * 60), host={"name": "new1"}, user={"name": "zed"}),
        ]
    )
    one = new_terms_rule(env, "nt-host", ["host.name"], "now-7d")
    fourteen = new_terms_rule(env, "nt-host-14", ["host.name"], "now-14d")
    pair = new_terms_rule(env, "nt-pair", ["host.name", "user.name"], "now-7d")
    assert run(env, NOW, one, fourteen, pair) == 0

    # "old" has history; "new1" too (with another user); "edge" was first seen exactly at the window start (not
    # after: not new); the event without host.name has no term; "back" was last seen 10 days ago, before the
    # 7-day history window and inside the 14-day one
    assert _terms(env, one) == {("arr-a",): "array", ("arr-b",): "array", ("back",): "back-now"}
    assert _terms(env, fourteen) == {("arr-a",): "array", ("arr-b",): "array"}
    assert _terms(env, pair) == {
        ("new1", "bob"): "new-first",  # new1 with zed is in the history, with bob it is new: its earliest event
        ("arr-a", "carol"): "array",  # one alert per combination of the event's values
        ("arr-b", "carol"): "array",
        ("back", "fay"): "back-now",
    }

    index = env.events_index()
    for rule_id, term, event in ((one, ["back"], "back-now"), (pair, ["new1", "bob"], "new-first")):
        [alert] = [alert for alert in env.alert_docs(rule_id) if alert["kibana.alert.new_terms"] == term]
        assert alert["_id"] == alert["kibana.alert.uuid"]
        assert alert["_id"] == object_hash([index, event, "undefined", f"default:{rule_id}", term])
        assert alert["kibana.alert.ancestors"] == [{"id": event, "type": "event", "index": index, "depth": 0}]
    alert = next(alert for alert in env.alert_docs(pair) if alert["kibana.alert.new_terms"] == ["new1", "bob"])
    assert alert["kibana.alert.original_time"] == iso(_at(4))
    assert alert["host"] == {"name": "new1"} and alert["user"] == {"name": "bob"}  # the event's own fields
    assert alert["kibana.alert.reason"] == "authentication event by bob on new1 created low alert N."
    assert (alert["kibana.alert.rule.type"], alert["kibana.alert.rule.category"]) == ("new_terms", "New Terms Rule")
    parameters = alert["kibana.alert.rule.parameters"]
    assert (parameters["new_terms_fields"], parameters["history_window_start"]) == (
        ["host.name", "user.name"],
        "now-7d",
    )
    assert "new_terms" not in parameters  # Kibana's parameters, not detection-rules' table
    record = last_record(env, one)
    assert record["execution"]["status"] == "succeeded" and "type_state" not in record  # no state kept


T2 = NOW + 3 * DAY
TERMS = 10_100  # k00000..k10099 in the window; all but every 100th also seen in the history (101 new)


def test_pages_past_ten_thousand_terms_and_the_cap(env: JobEnv) -> None:
    events = [auth(_at(1 + i % 4, T2), host={"name": f"k{i:05d}"}, tags=["pages"]) for i in range(TERMS)]
    events += [auth(T2 - DAY, host={"name": f"k{i:05d}"}, tags=["pages"]) for i in range(TERMS) if i % 100]
    index_many(env, events)
    every = new_terms_rule(env, "nt-pages", ["host.name"], "now-7d", query="tags:pages", max_signals=1000)
    capped = new_terms_rule(env, "nt-capped", ["host.name"], "now-7d", query="tags:pages", max_signals=95)
    assert run(env, T2, every, capped) == 0
    new = {(f"k{i:05d}",) for i in range(0, TERMS, 100)}
    assert set(_terms(env, every)) == new
    assert last_record(env, every)["metrics"]["pages"] == 6  # 2 pages of terms, each: terms, history, events
    first = last_record(env, capped)
    assert first["execution"]["warnings"] == [MAX_ALERTS_WARNING]
    assert first["window"]["searched_to"] == first["window"]["from"]  # the terms left over wait for the next run
    assert set(_terms(env, capped)) == set(sorted(new)[:95])  # phase-1 pages come in key order
    assert run(env, T2, capped) == 0  # the next run writes the 6 left over, and none twice
    assert set(_terms(env, capped)) == new and len(env.alert_docs(capped)) == 101
    assert last_record(env, capped)["metrics"]["duplicates_skipped"] == 95


T3 = NOW + 5 * DAY


def test_overlapping_runs_alert_a_term_once(env: JobEnv) -> None:
    rule_id = new_terms_rule(env, "nt-overlap", ["user.name"], "now-7d", query="tags:overlap")
    env.index_events([_event("in-overlap", _at(0.5, T3), user={"name": "ovl"}, tags=["overlap"])])
    assert run(env, T3, rule_id) == 0
    later = T3 + timedelta(minutes=5)  # its window starts a minute before T3: the term is new again there
    env.index_events([_event("after", later - timedelta(minutes=1), user={"name": "ovl"}, tags=["overlap"])])
    assert run(env, later, rule_id) == 0
    assert run(env, later, rule_id) == 0  # a rerun
    assert _terms(env, rule_id) == {("ovl",): "in-overlap"}
    assert [record["metrics"]["alerts_created"] for record in env.executions_docs(rule_id)] == [1, 0, 0]


T4 = NOW + 7 * DAY


def test_exceptions_decide_the_history_too_and_a_refused_alert_is_dead_lettered(env: JobEnv, es_url: str) -> None:
    """History is judged among the events the rule's query and exceptions keep (Kibana's): a term seen before only
    by an excepted event is new. One alert is refused by Elasticsearch: it is dead-lettered, the others written."""
    env.index_events(
        [
            _event("skipped-history", T4 - DAY, host={"name": "exc"}, user={"name": "skip"}, tags=["exc"]),
            _event("exc-now", _at(2, T4), host={"name": "exc"}, user={"name": "ok"}, tags=["exc"]),
            _event("skipped-now", _at(2, T4), host={"name": "exc-only"}, user={"name": "skip"}, tags=["exc"]),
            _event("poison", _at(3, T4), host={"name": "poison"}, user={"name": "ok"}, tags=["exc"]),
            _event("fine", _at(3, T4), host={"name": "fine"}, user={"name": "ok"}, tags=["exc"]),
        ]
    )
    exceptions = (
        '\n[[rule.exceptions]]\nitem_id = "skip"\nname = "skip user"\n'
        '[[rule.exceptions.entries]]\nfield = "user.name"\ntype = "match"\nvalue = "skip"\n'
    )
    rule_id = new_terms_rule(env, "nt-exc", ["host.name"], "now-7d", query="tags:exc", tables=exceptions)
    refused = object_hash([env.events_index(), "poison", "undefined", f"default:{rule_id}", ["poison"]])
    with FaultProxy(es_url) as proxy:
        proxy.always(r"^/_bulk", refusing_bulk(es_url, {refused}))
        env.set(es_hosts=proxy.url)
        try:
            assert run(env, T4, rule_id) == 1  # dead letters make the exit code 1
        finally:
            env.set(es_hosts=es_url)
    assert _terms(env, rule_id) == {("exc",): "exc-now", ("fine",): "fine"}
    record = last_record(env, rule_id)
    assert record["execution"]["status"] == "partial failure"
    [warning] = record["execution"]["warnings"]
    assert warning.startswith(f"1 events could not become alerts and were dead-lettered in {env.dead_letters}")
    assert 'the alert of the new term ["poison"]' in warning
    env.es.indices.refresh(index=env.dead_letters)
    letters = env.es.search(index=env.dead_letters, query={"term": {"rule.rule_id": rule_id}})["hits"]["hits"]
    assert [letter["_source"]["event"]["id"] for letter in letters] == ["poison"]
    assert record["metrics"]["dead_lettered"] == 1
    # deadletter retry would make an event's ordinary alert of it, without the term: the entry stays, saying why
    assert cli_main(["deadletter", "retry", "--rule", rule_id]) == 1
    env.es.indices.refresh(index=env.dead_letters)
    [letter] = env.es.search(index=env.dead_letters, query={"term": {"rule.rule_id": rule_id}})["hits"]["hits"]
    assert letter["_source"]["reason"] == not_retried("new_terms")
    assert _terms(env, rule_id) == {("exc",): "exc-now", ("fine",): "fine"}
