"""detection-job alerts on the real node: listing, filters, triage, and a concurrent change reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.cli import main as cli_main
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event

pytestmark = pytest.mark.integration


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli_main(["alerts", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def alerted(job_env: JobEnv) -> Iterator[dict[str, str]]:
    """Two rules' alerts: three by 'Cred theft' (one from a host name carrying a terminal escape), one by 'Other'."""
    now = datetime.now(UTC)
    first = job_env.write_rule(name="Cred theft")
    second = job_env.write_rule(name="Other", query="event.action:other_event")
    events: list[dict[str, Any]] = [
        cred_event(now - timedelta(minutes=3), _id="e1", host={"name": "ws-01"}),
        cred_event(now - timedelta(minutes=2), _id="e2", host={"name": "evil\x1b[2Jhost\nFAKE"}),
        cred_event(now - timedelta(minutes=1), _id="e3", user={"name": "bob"}),
        cred_event(now - timedelta(minutes=1), _id="e4", event={"kind": "alert", "action": "other_event"}),
    ]
    job_env.index_events(events)
    assert job_env.run("--rule", first) == 0
    assert job_env.run("--rule", second) == 0  # its alert is the newest
    ids = {alert["kibana.alert.ancestors"][0]["id"]: alert["_id"] for alert in job_env.alert_docs()}
    yield {"rule": first, "other": second, **ids}


def alert(job_env: JobEnv, alert_id: str) -> dict[str, Any]:
    return dict(job_env.es.get(index=job_env.alerts, id=alert_id)["_source"])


def test_listing_newest_first_with_filters(
    job_env: JobEnv, alerted: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["total"] == 4
    # Newest alert first (the second rule ran last); alerts written in one batch share their time.
    same_batch = sorted((alerted["e1"], alerted["e2"], alerted["e3"]), reverse=True)
    assert [view["id"] for view in listed["alerts"]] == [alerted["e4"], *same_batch]
    first = next(view for view in listed["alerts"] if view["id"] == alerted["e3"])
    assert first["rule"] == "Cred theft" and first["user"] == "bob" and first["severity"] == "high"
    assert first["status"] == "open" and first["index"] == f"{job_env.alerts}-000001"

    code, out, _ = cli(capsys, "--rule", alerted["other"], "--json")
    assert [view["id"] for view in json.loads(out)["alerts"]] == [alerted["e4"]]

    code, out, _ = cli(capsys, "--limit", "2")
    lines = out.splitlines()
    assert lines[0].split() == ["id", "time", "severity", "status", "rule", "host", "user", "reason"]
    assert len(lines) == 4
    assert lines[-1] == "4 alerts in the last 24h (newest 2 shown; --limit for more)"

    code, out, _ = cli(capsys, "--rule", alerted["rule"])
    assert "evil\\x1b[2Jhost\\nFAKE" in out  # shown escaped: no terminal control, no forged line
    assert "\x1b" not in out
    assert out.splitlines()[-1] == "3 alerts in the last 24h"

    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    job_env.es.index(index=job_env.alerts, id="old-alert", document={"@timestamp": old}, refresh=True)
    code, out, _ = cli(capsys, "--json")
    assert json.loads(out)["total"] == 4  # the default is the last 24 hours
    code, out, _ = cli(capsys, "--since", "3d", "--json")
    assert json.loads(out)["total"] == 5
    assert json.loads(out)["alerts"][-1]["id"] == "old-alert"


def test_ack_close_and_reopen_as_kibana_does(
    job_env: JobEnv, alerted: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    target = alerted["e1"]
    code, out, _ = cli(capsys, "ack", target[:12])  # a unique prefix, as the table shows it
    assert (code, out) == (0, f"{target}: open -> acknowledged\n")
    acked = alert(job_env, target)
    assert acked["kibana.alert.workflow_status"] == "acknowledged"
    assert acked["kibana.alert.workflow_user"] is None
    updated_at = datetime.fromisoformat(acked["kibana.alert.workflow_status_updated_at"])
    assert abs(datetime.now(UTC) - updated_at) < timedelta(minutes=5)

    code, out, _ = cli(capsys, "close", target, alerted["e2"], "--reason", "false_positive")
    assert code == 0
    assert out.splitlines() == [f"{target}: acknowledged -> closed", f"{alerted['e2']}: open -> closed"]
    assert alert(job_env, target)["kibana.alert.workflow_reason"] == "false_positive"

    code, out, _ = cli(capsys, "--status", "closed", "--json")
    assert sorted(view["id"] for view in json.loads(out)["alerts"]) == sorted([target, alerted["e2"]])
    assert {view["closing_reason"] for view in json.loads(out)["alerts"]} == {"false_positive"}

    code, out, _ = cli(capsys, "open", target)
    assert (code, out) == (0, f"{target}: closed -> open\n")
    assert alert(job_env, target)["kibana.alert.workflow_reason"] is None  # dropped, as Kibana 9.2+ drops it
    code, out, _ = cli(capsys, "open", target)
    assert (code, out) == (0, f"{target}: already open\n")
    code, out, _ = cli(capsys, "--status", "open", "--json")
    assert json.loads(out)["total"] == 3


REFUSALS = [
    (["ack", "0" * 64], 1, "no such alert"),
    (["ack", "abc"], 1, "no such alert"),  # too short to be taken as a prefix
    (["ack", "ID", "--reason", "dup"], 2, "--reason: only a close has a reason"),
    (["close", "ID", "--reason", "x" * 1025], 2, "--reason: expected 1 to 1024 characters"),
    (["--since", "1 hour"], 2, "--since: invalid duration"),
    (["--limit", "0"], 2, "--limit: expected 1 to 10000"),
]


def test_refusals(job_env: JobEnv, alerted: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for args, code, message in REFUSALS:  # one set of alerts for the whole table
        result, _, err = cli(capsys, *[alerted["e1"] if arg == "ID" else arg for arg in args])
        assert (result, message in err) == (code, True), (args, err)
    assert alert(job_env, alerted["e1"])["kibana.alert.workflow_status"] == "open"


def test_a_concurrent_change_is_reported_not_overwritten(
    job_env: JobEnv, alerted: dict[str, str], es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = alerted["e1"]
    backing = f"{job_env.alerts}-000001"

    def someone_else_acknowledges() -> None:
        # Between our read and our write, another analyst changes the alert (a real write on the node).
        job_env.es.update(index=backing, id=target, doc={"kibana.alert.workflow_status": "acknowledged"}, refresh=True)

    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        # Our first _update is held back (its connection dropped) while the other change lands; the retry
        # then carries the sequence number we read, which is no longer current.
        proxy.on_request(r"/_update/", after=0, action=someone_else_acknowledges)
        code, out, err = cli(capsys, "close", target, alerted["e2"])
        assert proxy.count(r"/_update/") == 3  # dropped, retried (409), and the other alert's update
    assert code == 1
    assert (
        err.splitlines()[-1] == f"{target}: changed by someone else since it was read (now acknowledged); not updated"
    )
    assert out == f"{alerted['e2']}: open -> closed\n"
    assert alert(job_env, target)["kibana.alert.workflow_status"] == "acknowledged"
    assert alert(job_env, alerted["e2"])["kibana.alert.workflow_status"] == "closed"
