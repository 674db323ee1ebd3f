"""detection-job status on the real node: every rule's last execution, failures and staleness in the exit code."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.cli import main as cli_main
from job.execlog.execution import Execution
from job.execlog.metrics import RunMetrics
from job.window import Window
from tests.integration.run.conftest import JobEnv, cred_event

pytestmark = pytest.mark.integration


def status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli_main(["status", *args])
    return code, capsys.readouterr().out


def by_name(output: str) -> dict[str, dict[str, Any]]:
    return {rule["name"]: rule for rule in json.loads(output)["rules"]}


def record(job_env: JobEnv, rule_id: str, name: str, *, start: datetime, status: str = "succeeded") -> None:
    """An execution record as a run writes it (or, for ``running``, as the write-ahead record reads)."""
    execution = Execution(
        rule_id=rule_id,
        rule_name=name,
        rule_version=1,
        rule_source=f"{rule_id}.toml",
        space_id="default",
        uuid=str(uuid.uuid4()),
        start=start,
        end=start + timedelta(seconds=4),
        window=Window(start - timedelta(minutes=15), start),
        metrics=RunMetrics(alerts_created=2),
    )
    document = execution.to_document()
    if status == "running":
        document["execution"].update(status="running", end=None, status_order=None)
    job_env.es.index(index=job_env.executions, id=execution.uuid, document=document, refresh=True)


def test_status_of_healthy_failed_stale_running_and_new_rules(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    good = job_env.write_rule(name="Good rule")
    job_env.index_events([cred_event(now - timedelta(minutes=1))])
    assert job_env.run() == 0
    code, output = status(capsys, "--json")
    assert code == 0, output
    view = by_name(output)["Good rule"]
    assert view["health"] == "ok"
    assert view["last_execution"]["status"] == "succeeded"
    assert view["last_execution"]["alerts_created"] == 1
    assert view["last_execution"]["window"]["from"] is not None

    broken = job_env.write_rule(name="Broken rule", query="event.action:(")  # loads, does not validate
    stale = job_env.write_rule(name="Stale rule")
    busy = job_env.write_rule(name="Busy rule")
    job_env.write_rule(name="New rule")
    job_env.write_rule(name="Switched off", extra="enabled = false")
    assert job_env.run("--rule", good, "--rule", broken) == 1  # the broken one gets a failed record
    record(job_env, stale, "Stale rule", start=now - timedelta(hours=2))  # interval 10m: stale after 20m
    record(job_env, busy, "Busy rule", start=now - timedelta(minutes=3))
    record(job_env, busy, "Busy rule", start=now - timedelta(minutes=1), status="running")

    code, output = status(capsys, "--json")
    assert code == 1
    assert json.loads(output)["healthy"] is False
    views = by_name(output)
    assert {name: view["health"] for name, view in views.items()} == {
        "Good rule": "ok",
        "Broken rule": "failed",
        "Stale rule": "stale",
        "Busy rule": "ok",
        "New rule": "never ran",
        "Switched off": "disabled",
    }
    assert "does not validate" in views["Broken rule"]["last_execution"]["message"]
    assert views["Busy rule"]["running"]["status"] == "running"
    assert views["Busy rule"]["last_execution"]["status"] == "succeeded"
    assert views["Busy rule"]["last_execution"]["duration_s"] == 4.0
    assert views["New rule"]["last_execution"] is None

    code, output = status(capsys)
    assert code == 1
    rows = {line.rsplit(" (", 1)[0].split("  ")[-1].strip(): line for line in output.splitlines()[1:-1]}
    assert rows["Busy rule"].split()[:2] == ["ok", "running"]
    assert rows["Stale rule"].split()[:2] == ["stale", "succeeded"]
    assert rows["Broken rule"].split()[:2] == ["failed", "failed"]
    assert (
        output.splitlines()[-1] == "6 rules: 1 disabled, 1 failed, 1 never ran, 2 ok, 1 stale; 0 rule files do not load"
    )


def test_a_rule_file_that_does_not_load_makes_status_fail(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    job_env.write_rule(name="Fine rule")
    (job_env.rules_dir / "broken.toml").write_text("[rule\nname = ")
    code, output = status(capsys, "--json")
    assert code == 1
    [problem] = json.loads(output)["problems"]
    assert "broken.toml" in problem


def test_status_table_and_exit_code(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    rule_id = job_env.write_rule(name="Only rule")
    code, output = status(capsys)
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split() == [
        "health",
        "status",
        "last",
        "run",
        "window",
        "alerts",
        "duration",
        "gap",
        "warn",
        "last",
        "success",
        "next",
        "due",
        "rule",
    ]
    assert lines[1].startswith("never ran") and lines[1].endswith(f"Only rule ({rule_id})")
    assert lines[1].split()[-4] == "now"  # next due: a rule that never ran is due at once
    assert lines[-1] == "1 rules: 1 never ran; 0 rule files do not load"
