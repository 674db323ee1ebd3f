"""The setup and schedule commands, and secrets staying out of everything the job prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.template import TEMPLATE_VERSION, alert_index_template
from job.cli import main as cli_main
from job.config.indexnames import template_name
from tests.integration.run.conftest import JobEnv, cred_event

pytestmark = pytest.mark.integration


def test_setup_installs_then_finds_everything_current(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["setup"]) == 0
    first = capsys.readouterr().out
    assert f"index template {job_env.alerts}-template: installed" in first
    assert f"alert alias {job_env.alerts}: write index created" in first
    assert cli_main(["setup"]) == 0
    second = capsys.readouterr().out
    assert f"index template {job_env.alerts}-template: current" in second
    assert f"alert alias {job_env.alerts}: write index exists" in second
    aliases = job_env.es.indices.get_alias(name=job_env.alerts)
    assert aliases[f"{job_env.alerts}-000001"]["aliases"][job_env.alerts]["is_write_index"] is True
    assert job_env.es.indices.exists(index=job_env.executions)
    assert f"dead-letter index {job_env.dead_letters}: ready" in second
    dead_letters = job_env.es.indices.get_mapping(index=job_env.dead_letters)[job_env.dead_letters]["mappings"]
    assert dead_letters["dynamic"] == "false"
    assert dead_letters["properties"]["alert_id"] == {"type": "keyword"}


def test_setup_upgrades_an_older_template_and_the_existing_index(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    old: dict[str, Any] = alert_index_template(job_env.alerts)
    old["version"] = TEMPLATE_VERSION - 1
    del old["template"]["mappings"]["properties"]["host"]
    job_env.es.indices.put_index_template(name=template_name(job_env.alerts), **old)
    job_env.es.indices.create(index=f"{job_env.alerts}-000001", aliases={job_env.alerts: {"is_write_index": True}})
    assert cli_main(["setup"]) == 0
    assert f"index template {job_env.alerts}-template: upgraded" in capsys.readouterr().out
    installed = job_env.es.indices.get_index_template(name=template_name(job_env.alerts))
    assert installed["index_templates"][0]["index_template"]["version"] == TEMPLATE_VERSION
    mapping = job_env.es.indices.get_mapping(index=f"{job_env.alerts}-000001")
    assert "host" in mapping[f"{job_env.alerts}-000001"]["mappings"]["properties"]


def test_secrets_are_never_printed_or_logged(job_env: JobEnv) -> None:
    job_env.write_rule()
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1))])
    env = dict(os.environ)
    env.update(
        DETECTION_ES_USERNAME="elastic",
        DETECTION_ES_PASSWORD="pw-s3cr3t-value",
        DETECTION_LOG_LEVEL="debug",
    )
    result = subprocess.run([sys.executable, "-m", "job", "run"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    env.pop("DETECTION_ES_USERNAME")
    env.pop("DETECTION_ES_PASSWORD")
    env["DETECTION_ES_API_KEY"] = "key-s3cr3t-value"
    env["DETECTION_ES_HOSTS"] = "http://127.0.0.1:9"  # nothing listens: the error path must not leak it either
    env["DETECTION_ES_REQUEST_TIMEOUT"] = "2"
    env["DETECTION_RETRY_ATTEMPTS"] = "1"
    failed = subprocess.run([sys.executable, "-m", "job", "run"], env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert "s3cr3t" not in failed.stdout + failed.stderr


def test_schedule_runs_every_interval_until_stopped(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1), _id="scheduled")])
    env = dict(os.environ, DETECTION_SCHEDULE_INTERVAL="2s")
    process = subprocess.Popen(
        [sys.executable, "-m", "job", "schedule"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(runs) < 3:
            time.sleep(0.5)
            if job_env.es.indices.exists(index=job_env.executions):
                # A run in progress has a record too (status running): count the finished ones.
                runs = [run for run in job_env.executions_docs(rule_id) if run["execution"]["status"] != "running"]
        assert len(runs) >= 3, "the scheduler did not run the rules three times"
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err  # stopped by SIGINT: 128 + 2
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["scheduled"]
    assert {run["execution"]["status"] for run in runs} == {"succeeded"}
    assert [run["metrics"]["alerts_created"] for run in runs][:3] == [1, 0, 0]


def test_setup_adds_new_fields_to_an_existing_execution_log(job_env: JobEnv) -> None:
    job_env.es.indices.create(
        index=job_env.executions, mappings={"dynamic": False, "properties": {"rule": {"properties": {}}}}
    )
    assert cli_main(["setup"]) == 0  # an earlier version's plain index: converted into the rollover alias
    [(index, body)] = job_env.es.indices.get_mapping(index=job_env.executions).body.items()
    assert index == f"{job_env.executions}-000001"
    mapping = body["mappings"]
    assert mapping["properties"]["metrics"]["properties"]["pit_reopened"] == {"type": "long"}
    assert mapping["properties"]["window"]["properties"]["searched_to"] == {"type": "date"}
