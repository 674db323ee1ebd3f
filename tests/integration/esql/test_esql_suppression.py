"""ES|QL rules with alert suppression on the 8.19 engine: one alert per group of rows (its earliest row's), per
rule execution or folded into the open alert over a duration; the terms may be computed columns; with
``doNotSuppress`` a row lacking a term gets an ordinary alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.esql.conftest import EsqlJob
from tests.integration.run.conftest import iso

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _suppression(group_by: str, *, duration: bool = False, missing: str = "suppress") -> str:
    text = f'[rule.alert_suppression]\ngroup_by = ["{group_by}"]\nmissing_fields_strategy = "{missing}"\n'
    return text + ('[rule.alert_suppression.duration]\nunit = "h"\nvalue = 1\n' if duration else "")


def _logins(*users: str | None, before: datetime = T0) -> list[dict[str, Any]]:
    """A login per user (None: no user), a minute apart, the last a minute before ``before``."""
    events: list[dict[str, Any]] = []
    for number, user in enumerate(users):
        event: dict[str, Any] = {"@timestamp": iso(before - timedelta(minutes=len(users) - number))}
        event["event"] = {"action": "login"}
        if user is not None:
            event["user"] = {"name": user}
        events.append(event)
    return events


def _run(job: EsqlJob, now: datetime = T0) -> None:
    assert job.run("--now", iso(now)) == 0


def _groups(job: EsqlJob, rule_id: str) -> list[tuple[Any, ...]]:
    return sorted(
        (
            alert["kibana.alert.suppression.terms"][0]["value"],
            alert["kibana.alert.suppression.docs_count"],
            alert["kibana.alert.suppression.start"],
            alert["kibana.alert.suppression.end"],
        )
        for alert in job.alerts(rule_id)
        if "kibana.alert.suppression.terms" in alert
    )


def test_rows_of_a_group_are_one_alert_its_earliest_rows(esql_job: EsqlJob) -> None:
    esql_job.index(_logins("u0", "u1", "u0", "u0", "u1"))
    rule_id = esql_job.rule("FROM {events} METADATA _id", extra=_suppression("user.name"))
    _run(esql_job)
    assert _groups(esql_job, rule_id) == [
        ("u0", 2, iso(T0 - timedelta(minutes=5)), iso(T0 - timedelta(minutes=2))),
        ("u1", 1, iso(T0 - timedelta(minutes=4)), iso(T0 - timedelta(minutes=1))),
    ]
    earliest = {alert["user.name"]: alert["kibana.alert.ancestors"][0]["id"] for alert in esql_job.alerts(rule_id)}
    assert earliest == {"u0": "e0", "u1": "e1"}
    metrics = esql_job.last(rule_id)["metrics"]
    assert (metrics["alerts_created"], metrics["suppression_groups"], metrics["suppressed_docs"]) == (2, 2, 3)


def test_a_duration_folds_later_rows_into_the_open_alert(esql_job: EsqlJob) -> None:
    esql_job.index(_logins("u0", "u0"))
    rule_id = esql_job.rule("FROM {events} METADATA _id", extra=_suppression("user.name", duration=True))
    _run(esql_job)
    esql_job.index(
        [{**event, "_id": f"later{n}"} for n, event in enumerate(_logins("u0", before=T0 + timedelta(minutes=5)))]
    )
    _run(esql_job, T0 + timedelta(minutes=5))
    assert _groups(esql_job, rule_id) == [("u0", 2, iso(T0 - timedelta(minutes=2)), iso(T0 + timedelta(minutes=4)))]
    metrics = esql_job.last(rule_id)["metrics"]
    assert (metrics["alerts_created"], metrics["alerts_updated"], metrics["suppressed_docs"]) == (0, 1, 1)


def test_an_aggregating_rule_suppresses_on_a_computed_column_per_execution(esql_job: EsqlJob) -> None:
    """16 of the 17 suppressed ES|QL rules of detection-rules aggregate; their terms are BY columns."""
    esql_job.index(_logins("u0", "u1", "u0"))
    query = "FROM {events} | STATS n = COUNT(*) BY user.name | EVAL who = TO_UPPER(user.name)"
    rule_id = esql_job.rule(query, extra=_suppression("who"))
    _run(esql_job)
    _run(esql_job, T0 + timedelta(minutes=1))
    alerts = esql_job.alerts(rule_id)
    # per execution: each run has its own alert per group (no row carries a time, so each is the run's own)
    assert sorted(alert["kibana.alert.suppression.terms"][0]["value"] for alert in alerts) == ["U0", "U0", "U1", "U1"]
    assert {alert["kibana.alert.suppression.docs_count"] for alert in alerts} == {0}
    [first_u0, second_u0] = sorted(
        (alert for alert in alerts if alert["who"] == "U0"), key=lambda alert: alert["kibana.alert.start"]
    )
    assert first_u0["kibana.alert.instance.id"] == second_u0["kibana.alert.instance.id"]


def test_do_not_suppress_gives_rows_lacking_a_term_their_own_alerts(esql_job: EsqlJob) -> None:
    esql_job.index(_logins("u0", None, "u0", None))
    rule_id = esql_job.rule("FROM {events} METADATA _id", extra=_suppression("user.name", missing="doNotSuppress"))
    _run(esql_job)
    alerts = esql_job.alerts(rule_id)
    lone = sorted(
        alert["kibana.alert.ancestors"][0]["id"] for alert in alerts if "kibana.alert.suppression.terms" not in alert
    )
    assert lone == ["e1", "e3"]
    assert _groups(esql_job, rule_id) == [("u0", 1, iso(T0 - timedelta(minutes=4)), iso(T0 - timedelta(minutes=2)))]
