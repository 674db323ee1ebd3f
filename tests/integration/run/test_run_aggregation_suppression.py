"""Alert suppression of threshold and new-terms rules through whole runs on the real node.

Threshold rules (a ``duration`` only, as Kibana allows): a later group folds into the group's open alert, and
neither a rerun, nor an overlapping window, nor a run that finds no usable record (its signal history read back
from the alerts) counts a group twice; a closed alert and an expired duration start a new alert; groups of
swapped values share Kibana's instance id; the cap. New-terms rules: per rule execution and with a duration,
``suppress`` and ``doNotSuppress`` for a missing field, overlapping windows and reruns, the cap.

The expected spans and counts are written out by hand from the events each test indexes.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.objecthash import object_hash
from job.client.retry import RetryPolicy
from job.config.settings import load_settings
from job.indices.install import install
from job.rules import load_rule
from job.ruletypes.threshold.alerts import bucket_uuid, uuid_name
from job.run.runner import RunContext, run_rule
from job.writing.writer import MAX_ALERTS_SUPPRESSED_WARNING, MAX_ALERTS_WARNING
from tests.integration.run.aggregation_rules import auth, last_record, module_env, new_terms_rule, run, threshold_rule
from tests.integration.run.conftest import JobEnv, iso

pytestmark = pytest.mark.integration
env = module_env  # the module's sandbox, shared by its tests

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
ONE_HOUR = '\n[rule.alert_suppression.duration]\nvalue = 1\nunit = "h"\n'


def _at(minutes: float, base: datetime = NOW) -> datetime:
    return base + minutes * MINUTE


def span(alert: dict[str, Any]) -> tuple[str, str, int]:
    return (
        alert["kibana.alert.suppression.start"],
        alert["kibana.alert.suppression.end"],
        alert["kibana.alert.suppression.docs_count"],
    )


def by_value(env: JobEnv, rule_id: str) -> dict[Any, list[dict[str, Any]]]:
    """The rule's suppressed alerts per the value of their first suppression term, oldest first."""
    found: dict[Any, list[dict[str, Any]]] = {}
    suppressed = [alert for alert in env.alert_docs(rule_id) if "kibana.alert.suppression.terms" in alert]
    for alert in sorted(suppressed, key=lambda alert: alert["kibana.alert.suppression.start"]):
        value = alert["kibana.alert.suppression.terms"][0]["value"]
        found.setdefault(tuple(value) if isinstance(value, list) else value, []).append(alert)
    return found


def counts(env: JobEnv, rule_id: str) -> tuple[int, ...]:
    """The last run's alerts created and updated, groups written, and would-be alerts suppressed."""
    metrics = last_record(env, rule_id)["metrics"]
    names = ("alerts_created", "alerts_updated", "suppression_groups", "suppressed_docs")
    return tuple(int(metrics.get(name) or 0) for name in names)


def forget_records(env: JobEnv, rule_id: str) -> None:
    """Delete the rule's execution records (the node has no _delete_by_query): the next run finds none."""
    records = env.es.search(index=env.executions, query={"term": {"rule.rule_id": rule_id}}, size=100)
    for hit in records["hits"]["hits"]:
        env.es.delete(index=hit["_index"], id=hit["_id"], refresh=True)


# -- threshold ------------------------------------------------------------------------------------------


def test_threshold_folds_later_groups_into_the_open_alert_and_counts_each_once(env: JobEnv) -> None:
    """h1 passes the threshold in three runs; each later group of h1 folds into the first alert. Reruns, a run
    without records (the history read back from the alerts, up to the folds' end) count nothing twice."""
    rule_id = threshold_rule(env, "th-fold", ["host.name"], 2, query="tags:th-fold", tables=ONE_HOUR)

    def hosts(*pairs: tuple[str, float]) -> None:
        env.index_events([auth(_at(minutes), host={"name": name}, tags=["th-fold"]) for name, minutes in pairs])

    hosts(("h1", -4), ("h1", -3), ("h1", -2), ("h2", -0.5))  # h2: one event, under the threshold
    assert run(env, NOW, rule_id) == 0
    [first] = env.alert_docs(rule_id)
    index = env.events_pattern
    uuid = bucket_uuid(uuid_name(rule_id, NOW, ["host.name"], ["h1"]))
    assert first["_id"] == first["kibana.alert.uuid"] == object_hash([index, uuid, f"default:{rule_id}"])
    assert first["kibana.alert.instance.id"] == object_hash([["h1"], rule_id, "default"])
    assert first["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": "h1"}]
    assert span(first) == (iso(_at(-4)), iso(_at(-2)), 0)
    assert first["kibana.alert.threshold_result"]["count"] == 3

    hosts(("h1", 1), ("h1", 2), ("h2", 3))  # h1's next group; h2 reaches 2 with its event in the overlap
    later = _at(5)
    assert run(env, later, rule_id) == 0
    alerts = by_value(env, rule_id)
    [h1], [h2] = alerts["h1"], alerts["h2"]
    assert h1["_id"] == first["_id"] and span(h1) == (iso(_at(-4)), iso(_at(2)), 1)
    assert h1["kibana.alert.last_detected"] > first["kibana.alert.last_detected"]
    assert h1["kibana.alert.threshold_result"] == first["kibana.alert.threshold_result"]  # Kibana's: unchanged
    assert span(h2) == (iso(_at(-0.5)), iso(_at(3)), 0)
    assert counts(env, rule_id) == (1, 1, 2, 1)

    assert run(env, later, rule_id) == 0  # a rerun: its history comes from its record
    forget_records(env, rule_id)
    assert run(env, later, rule_id) == 0  # no record: the history read from the alerts, h1 up to the fold's end
    assert last_record(env, rule_id)["metrics"]["pages"] == 2  # the alerts, then the groups
    alerts = by_value(env, rule_id)
    assert [span(alert) for alert in alerts["h1"] + alerts["h2"]] == [span(h1), span(h2)]
    assert counts(env, rule_id) == (0, 0, 0, 0)

    hosts(("h1", 6), ("h1", 7))
    assert run(env, _at(10), rule_id) == 0  # the window overlaps the last by a minute
    [h1] = by_value(env, rule_id)["h1"]
    assert span(h1) == (iso(_at(-4)), iso(_at(7)), 2)


def test_threshold_a_closed_alert_or_an_expired_duration_starts_a_new_alert(env: JobEnv) -> None:
    """The duration counts on the clock the alerts are written with (``kibana.alert.start``)."""
    base = NOW + DAY
    rule_id = threshold_rule(env, "th-new", ["host.name"], 1, query="tags:th-new", tables=ONE_HOUR)
    env.index_events([auth(_at(m, base), host={"name": "h"}, tags=["th-new"]) for m in (-3, 2, 7, 77)])
    settings = load_settings()
    es, policy = env.es, RetryPolicy.from_settings(settings)
    install(es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
    rule = load_rule(env.rules_dir / f"{rule_id}.toml")

    def at(logical: datetime) -> None:  # the run's clock is its --now
        ticks = (logical + timedelta(milliseconds=i) for i in itertools.count())
        context = RunContext(es=es, settings=settings, now=logical, policy=policy, clock=lambda: next(ticks))
        assert run_rule(context, rule).status == "succeeded"
        es.indices.refresh(index=env.executions)  # as a pass does at its end

    at(base)
    at(_at(5, base))  # folded
    [first] = env.alert_docs(rule_id)
    env.es.update(index=env.alerts, id=first["_id"], doc={"kibana.alert.workflow_status": "closed"}, refresh=True)
    at(_at(10, base))  # the open alert was closed: a new one
    at(_at(80, base))  # 70 minutes after the second alert started: a new one
    assert [span(alert) for alert in by_value(env, rule_id)["h"]] == [
        (iso(_at(-3, base)), iso(_at(2, base)), 1),
        (iso(_at(7, base)), iso(_at(7, base)), 0),
        (iso(_at(77, base)), iso(_at(77, base)), 0),
    ]


def test_threshold_groups_of_swapped_values_share_one_alert_and_the_cap_holds(env: JobEnv) -> None:
    """Kibana's instance id hashes a group's values sorted, not its fields: (x, y) and (y, x) fold into one
    alert. Over the cap the groups left over alert in the next run, and none twice."""
    base = NOW + 2 * DAY

    def pair(first: str, second: str, minutes: float) -> dict[str, Any]:
        return auth(_at(minutes, base), host={"name": first}, user={"name": second}, tags=["th-pair"])

    env.index_events([pair("x", "y", -4), pair("x", "y", -3), pair("y", "x", -2), pair("y", "x", -1)])
    env.index_events([auth(_at(-2, base), host={"name": f"g{i}"}, tags=["th-cap"]) for i in range(3) for _ in "ab"])
    swapped = threshold_rule(env, "th-pair", ["host.name", "user.name"], 2, query="tags:th-pair", tables=ONE_HOUR)
    capped = threshold_rule(env, "th-cap", ["host.name"], 2, query="tags:th-cap", tables=ONE_HOUR, max_signals=2)
    assert run(env, base, swapped, capped) == 0
    [alert] = env.alert_docs(swapped)
    assert alert["kibana.alert.threshold_result"]["terms"][0] == {"field": "host.name", "value": "x"}
    assert span(alert) == (iso(_at(-4, base)), iso(_at(-1, base)), 1)
    assert counts(env, swapped) == (1, 0, 1, 1)

    record = last_record(env, capped)
    assert record["execution"]["warnings"] == [MAX_ALERTS_WARNING]  # Kibana's threshold warning, not the variant
    assert record["window"]["searched_to"] == record["window"]["from"]
    assert sorted(by_value(env, capped)) == ["g0", "g1"]
    assert run(env, base, capped) == 0
    assert {name: [span(a) for a in alerts] for name, alerts in by_value(env, capped).items()} == {
        name: [(iso(_at(-2, base)), iso(_at(-2, base)), 0)] for name in ("g0", "g1", "g2")
    }


# -- new terms -----------------------------------------------------------------------------------------

NT = NOW + 3 * DAY
PER_USER = '\n[rule.alert_suppression]\ngroup_by = ["user.name"]\n'
PER_USER_HOUR = PER_USER + 'missing_fields_strategy = "doNotSuppress"\nduration = {value = 1, unit = "h"}\n'


def _logon(doc_id: str, minutes: float, host: str, user: str | None, tag: str = "nt") -> dict[str, Any]:
    fields: dict[str, Any] = {"host": {"name": host}, "tags": [tag]}
    if user is not None:
        fields["user"] = {"name": user}
    return {"_id": doc_id, **auth(_at(minutes, NT), **fields)}


def test_new_terms_per_execution_and_over_a_duration_with_missing_fields(env: JobEnv) -> None:
    """New hosts, suppressed per user: per rule execution (a missing user grouped on null) and over an hour
    (``doNotSuppress``: a host without a user gets its ordinary alert). n8 is new in both runs' windows: counted
    once."""
    env.index_events(
        [
            _logon("old", -2 * 24 * 60, "old", "alice"),
            _logon("old-again", -1, "old", "alice"),
            _logon("n1", -4, "n1", "alice"),
            _logon("n2", -3, "n2", "alice"),
            _logon("n3", -2, "n3", "bob"),
            _logon("n4", -2, "n4", None),
            _logon("n5", -1.5, "n5", None),
            _logon("n8", -0.5, "n8", "alice"),
        ]
    )
    per_run = new_terms_rule(env, "nt-run", ["host.name"], "now-7d", query="tags:nt", tables=PER_USER)
    hourly = new_terms_rule(env, "nt-hour", ["host.name"], "now-7d", query="tags:nt", tables=PER_USER_HOUR)
    assert run(env, NT, per_run, hourly) == 0

    first = by_value(env, per_run)
    assert {
        user: [(a["kibana.alert.ancestors"][0]["id"], span(a)) for a in alerts] for user, alerts in first.items()
    } == {
        ("alice",): [("n1", (iso(_at(-4, NT)), iso(_at(-0.5, NT)), 2))],
        ("bob",): [("n3", (iso(_at(-2, NT)), iso(_at(-2, NT)), 0))],
        None: [("n4", (iso(_at(-2, NT)), iso(_at(-1.5, NT)), 1))],  # the missing user, grouped on null
    }
    [alice] = first[("alice",)]
    assert alice["kibana.alert.new_terms"] == ["n1"]
    assert alice["kibana.alert.instance.id"] == object_hash(
        [[{"field": "user.name", "value": ["alice"]}], per_run, "default"]
    )
    assert counts(env, per_run) == (3, 0, 3, 3)
    ordinary = [alert for alert in env.alert_docs(hourly) if "kibana.alert.suppression.terms" not in alert]
    assert sorted(alert["kibana.alert.new_terms"][0] for alert in ordinary) == ["n4", "n5"]

    env.index_events([_logon("n6", 1, "n6", "alice"), _logon("n7", 2, "n7", "bob")])
    later = _at(5, NT)
    for _ in range(2):  # the next run (its window overlaps: n8 is new again), then a rerun
        assert run(env, later, per_run, hourly) == 0
        again = by_value(env, per_run)  # per execution: new alerts for the new hosts; n8 not counted again
        assert [span(alert) for alert in again[("alice",)]] == [
            span(alice),
            (iso(_at(1, NT)), iso(_at(1, NT)), 0),
        ]
        assert [span(alert) for alert in again[("bob",)]][1:] == [(iso(_at(2, NT)), iso(_at(2, NT)), 0)]
        hour = by_value(env, hourly)  # over the hour: folded into the first alerts
        assert [span(alert) for alert in hour[("alice",)]] == [(iso(_at(-4, NT)), iso(_at(1, NT)), 3)]
        assert [span(alert) for alert in hour[("bob",)]] == [(iso(_at(-2, NT)), iso(_at(2, NT)), 1)]
        assert None not in hour
    assert counts(env, hourly) == (0, 0, 0, 0)  # the rerun


def test_new_terms_over_the_cap_the_rest_waits_for_the_next_run(env: JobEnv) -> None:
    """A cap of one: the first group's alert is created and the run stops with Kibana's suppression warning;
    the next run writes the other group's alert, and the first is not counted again."""
    env.index_events(
        [_logon(f"c{i}", -3 + i / 2, f"c{i}", "carol" if i < 3 else "dan", tag="nt-cap") for i in range(5)]
    )
    rule_id = new_terms_rule(
        env, "nt-cap", ["host.name"], "now-7d", query="tags:nt-cap", tables=PER_USER_HOUR, max_signals=1
    )
    assert run(env, NT, rule_id) == 0
    record = last_record(env, rule_id)
    assert record["execution"]["warnings"] == [MAX_ALERTS_SUPPRESSED_WARNING]
    assert record["window"]["searched_to"] == record["window"]["from"]
    assert list(by_value(env, rule_id)) == [("carol",)]
    assert run(env, NT, rule_id) == 0
    assert {user: [span(a) for a in alerts] for user, alerts in by_value(env, rule_id).items()} == {
        ("carol",): [(iso(_at(-3, NT)), iso(_at(-2, NT)), 2)],
        ("dan",): [(iso(_at(-1.5, NT)), iso(_at(-1, NT)), 1)],
    }
