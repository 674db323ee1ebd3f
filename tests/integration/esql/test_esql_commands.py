"""Every command class production ES|QL rules use, through the run path: a rule file per command class, one
``detection-job run`` on the 8.19 engine, and each rule's alerts read back (a non-aggregating row merged with
its event, an aggregating row one alert of its columns)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.cli import main as cli_main
from tests.integration.esql.conftest import EsqlJob, minutes_ago
from tests.integration.run.conftest import sandbox

NOW = datetime.now(UTC)
EVENTS = [
    {
        "@timestamp": minutes_ago(3, NOW),
        "host": {"name": "h1"},
        "user": {"name": "root"},
        "message": "login /bin/sh",
        "process": {"args": ["sh", "-c", "id"]},
        "bytes": 2048,
    },
    {
        "@timestamp": minutes_ago(2, NOW),
        "host": {"name": "h1"},
        "user": {"name": "bob"},
        "message": "logout /home/bob",
        "process": {"args": ["bash"]},
        "bytes": 1024,
    },
    {
        "@timestamp": minutes_ago(1, NOW),
        "host": {"name": "h2"},
        "user": {"name": "root"},
        "message": "login /usr/bin/ssh",
        "bytes": 512,
    },
]


@dataclass(frozen=True)
class Case:
    command: str
    query: str
    # per alert, sorted: (its event's id, "" for an aggregating row; the alert's values of the fields named)
    alerts: list[tuple[str, dict[str, Any]]]


CASES = [
    Case(
        "FROM ... METADATA",
        "FROM {events} METADATA _id, _index, _version",
        [(f"e{n}", {"bytes": EVENTS[n]["bytes"]}) for n in range(3)],
    ),
    Case("WHERE", 'FROM {events} METADATA _id | WHERE host.name == "h1" AND bytes > 1024', [("e0", {})]),
    Case(
        "EVAL",
        'FROM {events} METADATA _id | EVAL kb = bytes / 1024.0, who = CONCAT(user.name, "@", host.name)',
        [
            ("e0", {"kb": 2.0, "who": "root@h1"}),
            ("e1", {"kb": 1.0, "who": "bob@h1"}),
            ("e2", {"kb": 0.5, "who": "root@h2"}),
        ],
    ),
    Case(
        "STATS ... BY",
        "FROM {events} | STATS n = COUNT(*), total = SUM(bytes) BY host.name",
        [("", {"n": 1, "total": 512, "host.name": "h2"}), ("", {"n": 2, "total": 3072, "host.name": "h1"})],
    ),
    Case(
        "STATS ... BY (Esql.* columns, MV_SORT(VALUES()))",
        "FROM {events} | STATS Esql.users = MV_SORT(VALUES(user.name)), Esql.count = COUNT(*) BY host.name"
        " | WHERE Esql.count > 1",
        [("", {"Esql.users": ["bob", "root"], "Esql.count": 2, "host.name": "h1"})],
    ),
    Case(
        "KEEP",
        "FROM {events} METADATA _id | WHERE bytes == 512 | KEEP _id, host.*",
        [("e2", {"host.name": "h2", "message": "login /usr/bin/ssh"})],  # KEEP narrows the row, not the event
    ),
    Case(
        "SORT, LIMIT",
        "FROM {events} METADATA _id | SORT bytes DESC | LIMIT 2 | KEEP _id, bytes",
        [("e0", {"bytes": 2048}), ("e1", {"bytes": 1024})],
    ),
    Case(
        "MV_EXPAND",
        'FROM {events} METADATA _id | WHERE _id == "e0" | MV_EXPAND process.args | KEEP _id, process.args',
        [("e0", {"process.args": value}) for value in ["-c", "id", "sh"]],
    ),
    Case(
        "DISSECT",
        'FROM {events} METADATA _id | DISSECT message "%{{verb}} %{{target}}" | WHERE verb == "logout"'
        " | KEEP _id, verb, target",
        [("e1", {"verb": "logout", "target": "/home/bob"})],
    ),
    Case(
        "GROK",
        'FROM {events} METADATA _id | GROK message "%{{WORD:verb}} %{{NOTSPACE:path}}" | WHERE path == "/usr/bin/ssh"'
        " | KEEP _id, verb, path",
        [("e2", {"verb": "login", "path": "/usr/bin/ssh"})],
    ),
    Case(
        "RENAME",
        'FROM {events} METADATA _id | RENAME user.name AS who | WHERE who == "bob" | KEEP _id, who',
        [("e1", {"who": "bob", "user": {"name": "bob"}})],
    ),
    Case(
        "DROP",
        "FROM {events} METADATA _id | WHERE bytes == 512 | DROP message",
        [("e2", {"message": "login /usr/bin/ssh"})],  # a dropped column is still in the event (Kibana's FTR)
    ),
    Case("KQL()", 'FROM {events} METADATA _id | WHERE KQL("host.name: h1 and not user.name: root")', [("e1", {})]),
]


@pytest.fixture(scope="module")
def ran(
    esql: Elasticsearch, esql_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EsqlJob, dict[str, str]]]:
    """One pass of every case's rule over the three events; the rule id of each case."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        prefix = f"esqlcmd-{uuid.uuid4().hex[:10]}"
        job = EsqlJob(sandbox(esql, esql_url, prefix, Path(tmp_path_factory.mktemp("commands")), monkeypatch))
        job.index(EVENTS)
        rule_ids = {case.command: job.rule(case.query, name=case.command) for case in CASES}
        assert cli_main(["run", "--all"]) == 0
        yield job, rule_ids
        esql.options(ignore_status=404).indices.delete(index=f"{prefix}*", expand_wildcards="all")
        esql.options(ignore_status=404).indices.delete_index_template(name=f"{job.alerts}-template")


def _field(alert: dict[str, Any], name: str) -> Any:
    """The value at ``name`` in an alert: its flat key (a column), else the path in the event's objects."""
    if name in alert:
        return alert[name]
    value: Any = alert
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _rows(alerts: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return sorted(repr(alert) for alert in alerts)


@pytest.mark.parametrize("case", CASES, ids=[case.command for case in CASES])
def test_command(ran: tuple[EsqlJob, dict[str, str]], case: Case) -> None:
    job, rule_ids = ran
    rule_id = rule_ids[case.command]
    assert job.last(rule_id)["execution"]["status"] == "succeeded"
    alerts = job.alerts(rule_id)
    names = sorted({name for _, wanted in case.alerts for name in wanted})
    found = [
        (alert["kibana.alert.ancestors"][0]["id"], {name: _field(alert, name) for name in names}) for alert in alerts
    ]
    wanted = [(event, {name: values.get(name) for name in names}) for event, values in case.alerts]
    assert _rows(found) == _rows(wanted)
    assert len({alert["_id"] for alert in alerts}) == len(alerts)
    for alert in alerts:
        assert alert["kibana.alert.rule.type"] == "esql" and alert["kibana.alert.rule.indices"] == [job.events_pattern]
        assert alert["kibana.alert.uuid"] == alert["_id"]


def _own(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert without the fields every alert of the run has (rule, workflow, times of the run)."""
    return {
        key: value
        for key, value in alert.items()
        if key not in ("_id", "@timestamp")
        and not key.startswith(("kibana.alert.rule.", "kibana.alert.workflow_"))
        and key not in ("kibana.alert.start", "kibana.alert.last_detected", "kibana.alert.intended_timestamp")
        and key not in ("kibana.alert.status", "kibana.alert.depth", "kibana.space_ids", "kibana.version")
    }


def test_an_event_alert_is_its_whole_event_with_the_columns_flat(ran: tuple[EsqlJob, dict[str, str]]) -> None:
    """Kibana's shape (its FTR's ``'agent.name': 'test-1'`` beside ``agent: {version, type}``): each column a
    flat key, the value it replaces removed from the event (an object left empty goes too)."""
    job, rule_ids = ran
    [alert] = job.alerts(rule_ids["KEEP"])
    assert _own(alert) == {
        "user": {"name": "root"},
        "message": "login /usr/bin/ssh",
        "bytes": 512,
        "host.name": "h2",
        "event.kind": "signal",
        "kibana.alert.original_time": EVENTS[2]["@timestamp"],
        "kibana.alert.uuid": alert["_id"],
        "kibana.alert.ancestors": [{"id": "e2", "type": "event", "index": job.events_index(), "depth": 0}],
        "kibana.alert.reason": "event by root on h2 created medium alert KEEP.",
        "kibana.alert.severity": "medium",
        "kibana.alert.risk_score": 47,
    }


def test_an_aggregating_alert_is_its_columns_alone(ran: tuple[EsqlJob, dict[str, str]]) -> None:
    job, rule_ids = ran
    [alert] = [alert for alert in job.alerts(rule_ids["STATS ... BY"]) if alert["host.name"] == "h1"]
    assert _own(alert) == {
        "n": 2,
        "total": 3072,
        "host.name": "h1",
        "event.kind": "signal",
        "kibana.alert.uuid": alert["_id"],
        "kibana.alert.ancestors": [{"id": "", "type": "event", "index": "", "depth": 0}],
        "kibana.alert.reason": "event on h1 created medium alert STATS ... BY.",
        "kibana.alert.severity": "medium",
        "kibana.alert.risk_score": 47,
    }
    parameters = alert["kibana.alert.rule.parameters"]
    assert (parameters["type"], parameters["language"]) == ("esql", "esql")
    assert "index" not in parameters and "filters" not in parameters
    assert parameters["query"] == next(case.query for case in CASES if case.command == "STATS ... BY").format(
        events=job.events_pattern
    )
    category = (alert["kibana.alert.rule.category"], alert["kibana.alert.rule.rule_type_id"])
    assert category == ("ES|QL Rule", "siem.esqlRule")
