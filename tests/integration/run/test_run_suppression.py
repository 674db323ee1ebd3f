"""Alert suppression of query rules through whole runs on the real node: per execution, with a duration across
runs (updated, never duplicated, every event counted once: overlapping windows, a rerun at the same time, a
run killed after its update, a competing run), under and over the cap, and ``doNotSuppress``.

The expected groups, counts and spans are written out by hand from the events each test indexes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.build import build_alert
from job.alerts.ids import alert_id
from job.alerts.suppression import instance_id
from job.alerts.template import alert_index_template
from job.cli import main as cli_main
from job.client.retry import RetryPolicy
from job.config.indexnames import template_name
from job.config.settings import load_settings
from job.indices.install import install
from job.rules import load_rule
from job.run.runner import RunContext, run_rule
from job.writing.suppressed import SuppressionStore
from job.writing.writer import MAX_ALERTS_WARNING
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso
from tests.jobprocess import KillPoint, run_job

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

PER_EXECUTION = """
[rule.alert_suppression]
group_by = ["host.name"]
"""
ONE_HOUR = """
[rule.alert_suppression]
group_by = ["host.name"]
duration = {value = 1, unit = "h"}
missing_fields_strategy = "suppress"
"""
DO_NOT_SUPPRESS = """
[rule.alert_suppression]
group_by = ["host.name", "user.name"]
missing_fields_strategy = "doNotSuppress"

[rule.alert_suppression.duration]
value = 30
unit = "m"
"""


def event(moment: datetime, doc_id: str, host: str | None = "ws-01", **fields: Any) -> dict[str, Any]:
    """A matching event of ``host`` (None: without ``host.name``)."""
    made = cred_event(moment, _id=doc_id, **fields)
    if host is None:
        del made["host"]
    else:
        made["host"] = {"name": host}
    return made


def grouped(job_env: JobEnv, rule_id: str) -> dict[Any, list[dict[str, Any]]]:
    """The rule's suppressed alerts by their group's ``host.name`` value, oldest first."""
    alerts: dict[Any, list[dict[str, Any]]] = {}
    for doc in sorted(job_env.alert_docs(rule_id), key=lambda doc: doc["kibana.alert.suppression.start"]):
        [term, *_] = doc["kibana.alert.suppression.terms"]
        alerts.setdefault(term["value"], []).append(doc)
    return alerts


def span(doc: dict[str, Any]) -> tuple[str, str, int]:
    return (
        doc["kibana.alert.suppression.start"],
        doc["kibana.alert.suppression.end"],
        doc["kibana.alert.suppression.docs_count"],
    )


def last_execution(job_env: JobEnv, rule_id: str) -> dict[str, Any]:
    return job_env.executions_docs(rule_id)[-1]


def test_per_execution_one_alert_per_group_and_run_never_twice(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=PER_EXECUTION)
    job_env.index_events(
        [
            event(NOW - 10 * MINUTE, "a1"),
            event(NOW - 8 * MINUTE, "a2"),
            event(NOW - 6 * MINUTE, "a3"),
            event(NOW - 4 * MINUTE, "b1", host="ws-02"),
            event(NOW - 3 * MINUTE, "n1", host=None),
            event(NOW - 2 * MINUTE, "n2", host=None),
        ]
    )
    assert job_env.run("--now", iso(NOW)) == 0
    alerts = grouped(job_env, rule_id)
    assert {value: [span(doc) for doc in docs] for value, docs in alerts.items()} == {
        "ws-01": [(iso(NOW - 10 * MINUTE), iso(NOW - 6 * MINUTE), 2)],
        "ws-02": [(iso(NOW - 4 * MINUTE), iso(NOW - 4 * MINUTE), 0)],
        None: [(iso(NOW - 3 * MINUTE), iso(NOW - 2 * MINUTE), 1)],  # events lacking host.name: one group
    }
    [first] = alerts["ws-01"]
    # The alert of the group's earliest event, with the group's fields.
    assert first["kibana.alert.ancestors"][0]["id"] == "a1"
    assert first["kibana.alert.original_time"] == iso(NOW - 10 * MINUTE)
    assert first["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": "ws-01"}]
    assert first["kibana.alert.instance.id"] == instance_id((("host.name", "ws-01"),), rule_id, "default")
    assert (
        first["kibana.alert.uuid"] == first["_id"] != alert_id(f"{job_env.prefix}-events-a", "a1", rule_id, "default")
    )
    assert len({doc["kibana.alert.instance.id"] for docs in alerts.values() for doc in docs}) == 3
    execution = last_execution(job_env, rule_id)
    assert execution["execution"]["status"] == "succeeded"
    assert execution["metrics"]["alerts_created"] == 3
    assert execution["metrics"]["suppression_groups"] == 3
    assert execution["metrics"]["suppressed_docs"] == 3
    assert execution["window"]["searched_to"] == iso(NOW)

    # The same run again: every event is counted already.
    assert job_env.run("--now", iso(NOW)) == 0
    assert len(job_env.alert_docs(rule_id)) == 3
    assert last_execution(job_env, rule_id)["metrics"]["suppression_groups"] == 0

    # The next run's window reaches 5 minutes back: ws-02 and the missing-value group are not counted again.
    job_env.index_events([event(NOW + 2 * MINUTE, "a4"), event(NOW - 1 * MINUTE, "b2", host="ws-02")])
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    alerts = grouped(job_env, rule_id)
    assert [span(doc) for doc in alerts["ws-01"]] == [
        (iso(NOW - 10 * MINUTE), iso(NOW - 6 * MINUTE), 2),
        (iso(NOW + 2 * MINUTE), iso(NOW + 2 * MINUTE), 0),
    ]
    assert [span(doc) for doc in alerts["ws-02"]][-1] == (iso(NOW - 1 * MINUTE), iso(NOW - 1 * MINUTE), 0)
    assert len(alerts[None]) == 1
    assert sum(doc["kibana.alert.suppression.docs_count"] + 1 for docs in alerts.values() for doc in docs) == 8


def test_the_suppressed_alert_is_the_alert_of_its_earliest_event(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=PER_EXECUTION)
    job_env.index_events([event(NOW - 2 * MINUTE, "late"), event(NOW - 9 * MINUTE, "early", process={"name": "x.exe"})])
    assert job_env.run("--now", iso(NOW)) == 0
    [alert] = job_env.alert_docs(rule_id)
    rule = load_rule(job_env.rules_dir / f"{rule_id}.toml")
    source = job_env.es.get(index=job_env.events_index(), id="early")["_source"]
    hit = {"_index": job_env.events_index(), "_id": "early", "_source": source}
    expected = build_alert(rule, hit, now=NOW, execution_uuid="-", space_id="default")
    timed = {"@timestamp", "kibana.alert.rule.execution.uuid", "kibana.alert.rule.execution.timestamp"}
    timed |= {
        "kibana.alert.intended_timestamp",
        "kibana.alert.start",
        "kibana.alert.last_detected",
        "kibana.alert.uuid",
    }
    suppression = {key for key in alert if key.startswith(("kibana.alert.suppression.", "kibana.alert.instance."))}
    assert {key: value for key, value in alert.items() if key not in timed | suppression | {"_id"}} == {
        key: value for key, value in expected.items() if key not in timed
    }
    assert suppression == {
        "kibana.alert.suppression.terms",
        "kibana.alert.suppression.start",
        "kibana.alert.suppression.end",
        "kibana.alert.suppression.docs_count",
        "kibana.alert.instance.id",
    }
    assert alert["kibana.alert.rule.parameters"]["alert_suppression"] == {"group_by": ["host.name"]}


def test_with_a_duration_later_runs_update_the_alert_and_count_each_event_once(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=ONE_HOUR)
    job_env.index_events([event(NOW - 10 * MINUTE, "a1"), event(NOW - 6 * MINUTE, "a2"), event(NOW - 3 * MINUTE, "a3")])
    assert job_env.run("--now", iso(NOW)) == 0
    [created] = job_env.alert_docs(rule_id)
    assert span(created) == (iso(NOW - 10 * MINUTE), iso(NOW - 3 * MINUTE), 2)

    # Second run: its window overlaps the first's by 5 minutes (a3 is in both); two new events.
    job_env.index_events([event(NOW + 1 * MINUTE, "a4"), event(NOW + 5 * MINUTE, "a5")])
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    [updated] = job_env.alert_docs(rule_id)
    assert updated["_id"] == created["_id"]
    assert span(updated) == (iso(NOW - 10 * MINUTE), iso(NOW + 5 * MINUTE), 4)
    assert updated["@timestamp"] == created["@timestamp"]  # Kibana changes last_detected only
    assert updated["kibana.alert.last_detected"] > created["kibana.alert.last_detected"]
    metrics = last_execution(job_env, rule_id)["metrics"]
    assert (metrics["alerts_created"], metrics["alerts_updated"], metrics["suppressed_docs"]) == (0, 1, 2)

    # Third run at the same time: nothing new.
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    [same] = job_env.alert_docs(rule_id)
    assert span(same) == span(updated)

    # Fourth run, later: one more event, still within the hour of the alert.
    job_env.index_events([event(NOW + 12 * MINUTE, "a6")])
    assert job_env.run("--now", iso(NOW + 20 * MINUTE)) == 0
    [final] = job_env.alert_docs(rule_id)
    assert span(final) == (iso(NOW - 10 * MINUTE), iso(NOW + 12 * MINUTE), 5)  # 6 events: 1 alert + 5


def test_a_closed_alert_takes_no_more_events_a_new_one_does(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=ONE_HOUR)
    job_env.index_events([event(NOW - 4 * MINUTE, "a1"), event(NOW - 3 * MINUTE, "a2")])
    assert job_env.run("--now", iso(NOW)) == 0
    [first] = job_env.alert_docs(rule_id)
    job_env.es.update(
        index=job_env.alerts, id=first["_id"], doc={"kibana.alert.workflow_status": "closed"}, refresh=True
    )
    job_env.index_events([event(NOW + 2 * MINUTE, "a3")])
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    [closed, new] = grouped(job_env, rule_id)["ws-01"]
    assert span(closed) == (iso(NOW - 4 * MINUTE), iso(NOW - 3 * MINUTE), 1)
    assert span(new) == (iso(NOW + 2 * MINUTE), iso(NOW + 2 * MINUTE), 0)  # a2 is not counted again


def test_after_the_duration_a_new_alert_starts(job_env: JobEnv) -> None:
    """The duration counts on the clock the alerts are written with (``kibana.alert.start``)."""
    rule_id = job_env.write_rule(extra=ONE_HOUR)
    settings = load_settings()
    es, policy = job_env.es, RetryPolicy.from_settings(settings)
    install(es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
    rule = load_rule(job_env.rules_dir / f"{rule_id}.toml")
    job_env.index_events([event(NOW - 4 * MINUTE, "a1"), event(NOW + 6 * MINUTE, "a2"), event(NOW + 70 * MINUTE, "a3")])

    def at(wall: datetime, logical: datetime) -> None:
        ticks = (wall + timedelta(milliseconds=i) for i in itertools.count())
        context = RunContext(es=es, settings=settings, now=logical, policy=policy, clock=lambda: next(ticks))
        assert run_rule(context, rule).status == "succeeded"

    at(NOW, NOW)
    at(NOW + 10 * MINUTE, NOW + 10 * MINUTE)  # 10 minutes after the alert started: updated
    at(NOW + 80 * MINUTE, NOW + 80 * MINUTE)  # 80 minutes after: a new alert
    assert [span(doc) for doc in grouped(job_env, rule_id)["ws-01"]] == [
        (iso(NOW - 4 * MINUTE), iso(NOW + 6 * MINUTE), 1),
        (iso(NOW + 70 * MINUTE), iso(NOW + 70 * MINUTE), 0),
    ]


def test_a_run_killed_after_its_update_then_run_again_counts_nothing_twice(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule(extra=ONE_HOUR)
    job_env.index_events([event(NOW - 4 * MINUTE, "a1")])
    assert job_env.run("--now", iso(NOW)) == 0
    job_env.index_events([event(NOW + 1 * MINUTE, "a2"), event(NOW + 2 * MINUTE, "a3")])
    # Elasticsearch applies the update; the job dies before it reads the answer.
    kill = KillPoint("update", r"^/_bulk", nth=1, forward_first=True)
    assert run_job(es_url, ["run", "--all", "--now", iso(NOW + 10 * MINUTE)], kill=kill).killed
    [alert] = job_env.alert_docs(rule_id)
    assert span(alert) == (iso(NOW - 4 * MINUTE), iso(NOW + 2 * MINUTE), 2)
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    [alert] = job_env.alert_docs(rule_id)
    assert span(alert) == (iso(NOW - 4 * MINUTE), iso(NOW + 2 * MINUTE), 2)
    first, killed, rerun = job_env.executions_docs(rule_id)
    assert killed["execution"]["status"] in ("running", "failed")  # failed once a run has seen it
    assert rerun["execution"]["status"] == "succeeded"
    assert (rerun["metrics"]["alerts_updated"], rerun["metrics"]["suppression_groups"]) == (0, 0)


def test_a_competing_update_is_never_overwritten_nor_counted_twice(
    job_env: JobEnv, es_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule_id = job_env.write_rule(extra=ONE_HOUR)
    job_env.index_events([event(NOW - 4 * MINUTE, "a1")])
    assert job_env.run("--now", iso(NOW)) == 0
    job_env.index_events([event(NOW + 1 * MINUTE, "a2"), event(NOW + 3 * MINUTE, "a3")])
    read = SuppressionStore.open_alerts
    competed: list[bool] = []

    def then_compete(self: SuppressionStore, *args: Any, **kwargs: Any) -> Any:
        found = read(self, *args, **kwargs)
        if not competed:  # another process updates the alert between this run's read and its update
            competed.append(run_job(es_url, ["run", "--all", "--now", iso(NOW + 10 * MINUTE)]).returncode == 0)
        return found

    monkeypatch.setattr(SuppressionStore, "open_alerts", then_compete)
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    assert competed == [True]
    [alert] = job_env.alert_docs(rule_id)
    assert span(alert) == (iso(NOW - 4 * MINUTE), iso(NOW + 3 * MINUTE), 2)
    _, outer, competitor = job_env.executions_docs(rule_id)  # by start: the competitor started last
    assert (outer["metrics"]["alerts_updated"], competitor["metrics"]["alerts_updated"]) == (0, 1)
    assert outer["execution"]["status"] == competitor["execution"]["status"] == "succeeded"


@pytest.fixture
def five_hosts(job_env: JobEnv) -> Iterator[None]:
    job_env.index_events([event(NOW - (9 - i) * MINUTE, f"h{i}-{j}", host=f"h{i}") for i in range(5) for j in range(2)])
    yield


@pytest.mark.usefixtures("five_hosts")
def test_under_the_cap_every_group_alerts(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=PER_EXECUTION, max_signals=5)
    assert job_env.run("--now", iso(NOW)) == 0
    assert sorted(grouped(job_env, rule_id)) == ["h0", "h1", "h2", "h3", "h4"]
    assert last_execution(job_env, rule_id)["execution"]["status"] == "succeeded"


@pytest.mark.usefixtures("five_hosts")
def test_over_the_cap_the_groups_left_over_alert_in_the_next_run(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=PER_EXECUTION, max_signals=3)
    assert job_env.run("--now", iso(NOW)) == 0
    assert sorted(grouped(job_env, rule_id)) == ["h0", "h1", "h2"]  # the first three in key order
    execution = last_execution(job_env, rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert MAX_ALERTS_WARNING in execution["execution"]["warnings"]
    assert execution["window"]["searched_to"] == iso(NOW - 6 * MINUTE)  # h3's first event
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    alerts = grouped(job_env, rule_id)
    assert {host: [span(doc)[2] for doc in docs] for host, docs in alerts.items()} == {f"h{i}": [1] for i in range(5)}


def test_groups_that_update_alerts_count_toward_the_cap(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=ONE_HOUR, max_signals=2)
    job_env.index_events([event(NOW - 9 * MINUTE, f"{host}-1", host=host) for host in ("h0", "h1")])
    assert job_env.run("--now", iso(NOW)) == 0
    job_env.index_events([event(NOW + 1 * MINUTE, f"{host}-2", host=host) for host in ("h0", "h1", "h2")])
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    execution = last_execution(job_env, rule_id)
    assert (execution["metrics"]["alerts_updated"], execution["metrics"]["alerts_created"]) == (2, 0)
    assert MAX_ALERTS_WARNING in execution["execution"]["warnings"]
    assert job_env.run("--now", iso(NOW + 20 * MINUTE)) == 0
    alerts = grouped(job_env, rule_id)
    assert {host: [span(doc)[2] for doc in docs] for host, docs in alerts.items()} == {"h0": [1], "h1": [1], "h2": [0]}


def test_do_not_suppress_gives_events_lacking_a_field_alerts_of_their_own(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=DO_NOT_SUPPRESS, max_signals=4)
    job_env.index_events(
        [
            event(NOW - 5 * MINUTE, "g1"),
            event(NOW - 4 * MINUTE, "g2"),
            event(NOW - 3 * MINUTE, "no-host", host=None),
            event(NOW - 2 * MINUTE, "no-user", user={}),
            event(NOW - 1 * MINUTE, "neither", host=None, user={}),
        ]
    )
    assert job_env.run("--now", iso(NOW)) == 0
    alerts = job_env.alert_docs(rule_id)
    suppressed = [doc for doc in alerts if "kibana.alert.suppression.terms" in doc]
    plain = {doc["kibana.alert.ancestors"][0]["id"]: doc for doc in alerts if doc not in suppressed}
    [group] = suppressed
    assert group["kibana.alert.suppression.terms"] == [
        {"field": "host.name", "value": "ws-01"},
        {"field": "user.name", "value": "alice"},
    ]
    assert span(group)[2] == 1
    assert sorted(plain) == ["neither", "no-host", "no-user"]
    for doc_id, doc in plain.items():  # ordinary alerts, with their ordinary ids
        assert doc["_id"] == alert_id(job_env.events_index(), doc_id, rule_id, "default")
        assert not any(key.startswith("kibana.alert.suppression") for key in doc)
    assert last_execution(job_env, rule_id)["execution"]["status"] == "succeeded"


def test_do_not_suppress_shares_the_cap_with_the_groups(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra=DO_NOT_SUPPRESS, max_signals=2)
    lacking = [event(NOW - (4 - i) * MINUTE, f"n{i}", host=None) for i in range(3)]
    job_env.index_events([event(NOW - 5 * MINUTE, "g1"), *lacking])
    assert job_env.run("--now", iso(NOW)) == 0
    alerts = job_env.alert_docs(rule_id)
    assert sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in alerts) == ["g1", "n0"]
    execution = last_execution(job_env, rule_id)
    assert execution["execution"]["warnings"] == [MAX_ALERTS_WARNING]
    assert execution["window"]["searched_to"] == iso(NOW - 3 * MINUTE)  # n1: the first event not alerted
    assert job_env.run("--now", iso(NOW + 10 * MINUTE)) == 0
    ids = sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))
    assert ids == ["g1", "n0", "n1", "n2"]


def test_setup_upgrades_an_index_of_template_version_2_to_map_the_suppression_fields(job_env: JobEnv) -> None:
    older = alert_index_template(job_env.alerts)
    older["version"] = 2
    kibana_alert = older["template"]["mappings"]["properties"]["kibana"]["properties"]["alert"]["properties"]
    del kibana_alert["suppression"], kibana_alert["instance"]
    job_env.es.indices.put_index_template(name=template_name(job_env.alerts), **older)
    job_env.es.indices.create(index=f"{job_env.alerts}-000001", aliases={job_env.alerts: {"is_write_index": True}})
    rule_id = job_env.write_rule(extra=ONE_HOUR)
    job_env.index_events([event(NOW - 2 * MINUTE, "a1"), event(NOW - 1 * MINUTE, "a2")])
    assert cli_main(["setup"]) == 0
    assert job_env.run("--now", iso(NOW)) == 0
    instance = instance_id((("host.name", "ws-01"),), rule_id, "default")
    for query in (
        {"term": {"kibana.alert.instance.id": instance}},
        {"term": {"kibana.alert.suppression.terms.value": "ws-01"}},
        {"range": {"kibana.alert.suppression.end": {"gte": iso(NOW - 1 * MINUTE)}}},
        {"term": {"kibana.alert.suppression.docs_count": 1}},
    ):
        assert job_env.es.count(index=job_env.alerts, query=query)["count"] == 1, query


@pytest.mark.parametrize("suppression", [PER_EXECUTION, ONE_HOUR], ids=["new alert", "update"])
def test_a_group_whose_write_is_refused_is_dead_lettered_under_its_earliest_event(
    job_env: JobEnv, es_url: str, suppression: str
) -> None:
    rule_id = job_env.write_rule(extra=suppression)
    job_env.index_events([event(NOW - 14 * MINUTE, "a0")])
    assert job_env.run("--now", iso(NOW - 10 * MINUTE)) == 0
    job_env.index_events([event(NOW - 4 * MINUTE, "a1"), event(NOW - 2 * MINUTE, "a2")])
    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        proxy.reject_bulk_items(times=1, status=400, kind="mapper_parsing_exception")
        assert job_env.run("--now", iso(NOW)) == 1  # dead letters make the exit code 1
    execution = last_execution(job_env, rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert execution["metrics"]["dead_lettered"] == 1
    assert execution["window"]["searched_to"] == iso(NOW)
    [letter] = [hit["_source"] for hit in job_env.es.search(index=job_env.dead_letters)["hits"]["hits"]]
    assert letter["event"] == {"index": job_env.events_index(), "id": "a1"}
    assert letter["stage"] == "index"
    assert "the alert of the group host.name='ws-01' (2 events): HTTP 400 mapper_parsing_exception" in letter["reason"]
    [alert] = job_env.alert_docs(rule_id)  # the first run's, unchanged
    assert span(alert) == (iso(NOW - 14 * MINUTE), iso(NOW - 14 * MINUTE), 0)
