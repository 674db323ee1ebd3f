"""End-to-end runs: window edges, reruns, forged fields, odd field types, missing indices, the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_window_edges_are_inclusive(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    start = NOW - timedelta(minutes=15)
    job_env.index_events(
        [
            cred_event(start, _id="at-from"),
            cred_event(NOW, _id="at-to"),
            cred_event(start - timedelta(milliseconds=1), _id="before-from"),
            cred_event(NOW + timedelta(milliseconds=1), _id="after-to"),
            cred_event(NOW - timedelta(minutes=5), _id="inside"),
            cred_event(NOW - timedelta(minutes=5), _id="other-action", event={"kind": "alert", "action": "x"}),
        ]
    )
    assert job_env.run("--now", iso(NOW)) == 0
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {"at-from", "at-to", "inside"}
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "succeeded"
    assert execution["window"]["from"] == iso(start)
    assert execution["window"]["to"] == iso(NOW)
    assert execution["metrics"]["alerts_created"] == 3


def test_rerunning_the_same_window_creates_nothing(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=m)) for m in range(1, 11)])
    assert job_env.run("--now", iso(NOW)) == 0
    first = {doc["_id"] for doc in job_env.alert_docs(rule_id)}
    assert len(first) == 10
    assert job_env.run("--now", iso(NOW)) == 0
    assert {doc["_id"] for doc in job_env.alert_docs(rule_id)} == first
    second = job_env.executions_docs(rule_id)[-1]
    assert second["metrics"]["alerts_created"] == 0
    assert second["metrics"]["duplicates_skipped"] == 10


def test_event_content_cannot_forge_alert_fields(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    forged = cred_event(NOW - timedelta(minutes=1), _id="forger")
    forged["kibana"] = {"alert": {"workflow_status": "closed", "rule": {"name": "innocent"}, "severity": "low"}}
    forged["signal"] = {"rule": {"id": "fake"}, "status": "closed"}
    forged["threshold_result"] = {"count": 1}
    job_env.index_events([forged], mapping={"dynamic": True, "properties": {"@timestamp": {"type": "date"}}})
    assert job_env.run("--now", iso(NOW)) == 0
    [alert] = job_env.alert_docs(rule_id)
    assert alert["kibana.alert.workflow_status"] == "open"
    assert alert["kibana.alert.rule.name"] == "Test credential theft"
    assert alert["kibana.alert.severity"] == "high"
    assert "kibana" not in alert and "signal" not in alert and "threshold_result" not in alert
    closed = job_env.es.count(index=job_env.alerts, query={"term": {"kibana.alert.workflow_status": "closed"}})
    assert closed["count"] == 0


def test_conflicting_field_types_across_source_indices_all_alert(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    moment = NOW - timedelta(minutes=2)
    job_env.index_events(
        [cred_event(moment, source={"ip": "10.1.2.3", "port": 443}, process={"pid": 42, "name": "a.exe"})],
        suffix="typed",
        mapping={
            "properties": {
                "@timestamp": {"type": "date"},
                "event": {"properties": {"kind": {"type": "keyword"}, "action": {"type": "keyword"}}},
                "source": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"}}},
                "process": {"properties": {"pid": {"type": "long"}, "name": {"type": "keyword"}}},
            }
        },
    )
    loose = {
        "dynamic": True,
        "properties": {
            "@timestamp": {"type": "date"},
            "event": {"properties": {"kind": {"type": "keyword"}, "action": {"type": "keyword"}}},
        },
    }
    awkward = [
        cred_event(moment, source={"ip": "not-an-ip", "port": "https"}, process={"pid": "forty-two"}),
        cred_event(moment, source="a plain string", process="also a string", host={"name": {"nested": "odd"}}),
        cred_event(moment, user={"name": ["alice", "bob"]}, **{"@custom": {"x" * 200: 1}}),
    ]
    for number, event in enumerate(awkward):  # one index each: they conflict with each other too
        job_env.index_events([event], suffix=f"loose{number}", mapping=loose)
    assert job_env.run("--now", iso(NOW)) == 0
    assert len(job_env.alert_docs(rule_id)) == 4
    [execution] = job_env.executions_docs(rule_id)
    assert execution["metrics"]["errors"] == 0


def test_missing_index_is_a_partial_failure_with_kibanas_message(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(index=f"{job_env.prefix}-nothing-here-*")
    assert job_env.run("--now", iso(NOW)) == 0
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert execution["execution"]["message"].startswith(
        "This rule is attempting to query data from Elasticsearch indices listed in the "
        '"Index patterns" section of the rule definition, however no index matching: '
        f'["{job_env.prefix}-nothing-here-*"] was found.'
    )


def test_more_matches_than_the_cap_then_the_next_run_continues(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(max_signals=30)
    job_env.index_events([cred_event(NOW - timedelta(minutes=10, seconds=-i)) for i in range(50)])
    assert job_env.run("--now", iso(NOW)) == 0
    assert len(job_env.alert_docs(rule_id)) == 30
    [first] = job_env.executions_docs(rule_id)
    assert first["execution"]["status"] == "partial failure"
    assert (
        "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."
        in (first["execution"]["warnings"])
    )
    later = NOW + timedelta(minutes=10)
    assert job_env.run("--now", iso(later)) == 0
    assert len(job_env.alert_docs(rule_id)) == 50
    second = job_env.executions_docs(rule_id)[-1]
    assert second["execution"]["status"] == "succeeded"
    assert second["metrics"]["alerts_created"] == 20


def test_global_cap_lowers_max_signals_with_kibanas_warning(job_env: JobEnv) -> None:
    job_env.set(alerts_max="5")
    rule_id = job_env.write_rule(max_signals=10000)
    job_env.index_events([cred_event(NOW - timedelta(minutes=1)) for _ in range(3)])
    assert job_env.run("--now", iso(NOW)) == 0
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert (
        "The rule's max alerts per run setting (10000) is greater than the Kibana alerting limit (5). "
        "The rule will only write a maximum of 5 alerts per rule run." in execution["execution"]["warnings"]
    )


def test_one_broken_rule_does_not_stop_the_others(job_env: JobEnv) -> None:
    good = job_env.write_rule(name="Good rule")
    (job_env.rules_dir / "broken.toml").write_text("[rule\nname = 'oops'\n")
    job_env.index_events([cred_event(NOW - timedelta(minutes=1))])
    assert job_env.run("--now", iso(NOW)) == 1
    assert len(job_env.alert_docs(good)) == 1


def test_a_rule_that_does_not_validate_is_refused_and_the_others_run(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    good = job_env.write_rule(name="Good rule")
    bad = job_env.write_rule(name="Bad rule", query="event.kind:(alert or")
    job_env.index_events([cred_event(NOW - timedelta(minutes=1))])
    assert job_env.run("--now", iso(NOW)) == 1
    err = capsys.readouterr().err
    [line] = [text for text in err.splitlines() if bad in text and not text.startswith("{")]  # not the log lines
    assert line.startswith(f"not run, does not validate: {job_env.rules_dir / bad}.toml:")
    assert "query line 1, column" in line
    assert len(job_env.alert_docs(good)) == 1
    assert job_env.alert_docs(bad) == []
    [record] = job_env.executions_docs(bad)
    assert record["execution"]["status"] == "failed"
    assert record["execution"]["message"].startswith("Rule not run, it does not validate: ")
    assert record["window"]["searched_to"] is None


def test_a_rule_that_reads_the_alert_index_never_alerts_on_its_own_alerts(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(index=f"{job_env.prefix}-*", query="event.action:cred_theft_event")
    job_env.index_events([cred_event(NOW - timedelta(minutes=2), _id="original")])
    assert job_env.run("--now", iso(NOW)) == 0
    # Alerts keep the event's fields (event.action) and fall inside the next window (@timestamp = now).
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert job_env.run("--now", iso(later)) == 0
    alerts = job_env.alert_docs(rule_id)
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in alerts] == ["original"]
    # An event outside the alert index cannot borrow the clause to hide from the rule.
    job_env.index_events(
        [
            cred_event(
                later - timedelta(minutes=1),
                _id="claims-to-be-an-alert",
                kibana={"alert": {"rule": {"rule_id": rule_id}}},
            )
        ],
        suffix="b",
    )
    assert job_env.run("--now", iso(later + timedelta(minutes=1))) == 0
    ids = sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))
    assert ids == ["claims-to-be-an-alert", "original"]


def test_indices_without_the_timestamp_field_are_named_in_a_warning(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="has-time")])
    job_env.index_events(
        [{"event": {"kind": "alert", "action": "cred_theft_event"}}],
        suffix="untimed",
        mapping={"properties": {"event": {"properties": {"kind": {"type": "keyword"}}}}},
    )
    assert job_env.run("--now", iso(NOW)) == 0
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert execution["execution"]["warnings"] == [
        f'The following indices are missing the timestamp field "@timestamp": ["{job_env.events_index("untimed")}"]'
    ]
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["has-time"]


def test_timestamp_override_with_the_timestamp_fallback(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(extra='timestamp_override = "event.ingested"')
    inside, outside = NOW - timedelta(minutes=3), NOW - timedelta(hours=3)
    mapping = {
        "properties": {
            "@timestamp": {"type": "date"},
            "event": {
                "properties": {"kind": {"type": "keyword"}, "action": {"type": "keyword"}, "ingested": {"type": "date"}}
            },
        }
    }

    def event(doc_id: str, timestamp: datetime, ingested: datetime | None) -> dict[str, object]:
        fields: dict[str, object] = {"kind": "alert", "action": "cred_theft_event"}
        if ingested is not None:
            fields["ingested"] = iso(ingested)
        return cred_event(timestamp, _id=doc_id, event=fields)

    job_env.index_events(
        [
            event("late-arrival", outside, inside),  # happened long ago, ingested now: the override decides
            event("no-ingested", inside, None),  # no override field: @timestamp decides
            event("ingested-long-ago", inside, outside),  # the override is outside the window
        ],
        mapping=mapping,
    )
    assert job_env.run("--now", iso(NOW)) == 0
    alerted = sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))
    assert alerted == ["late-arrival", "no-ingested"]
    late = next(doc for doc in job_env.alert_docs(rule_id) if doc["kibana.alert.ancestors"][0]["id"] == "late-arrival")
    assert late["kibana.alert.original_time"] == iso(outside)  # always the event's @timestamp
