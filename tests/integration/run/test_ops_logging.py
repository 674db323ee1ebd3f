"""Log output of real runs: ECS lines that name the rule execution, and no secret in any command's output."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.run.conftest import JobEnv, cred_event

pytestmark = pytest.mark.integration

CANARY = "CANARY-s3cr3t-9f2d"


def job(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "job", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_run_logs_ecs_json_lines_naming_each_rule_execution(job_env: JobEnv) -> None:
    rule_id = job_env.write_rule(name="Logged rule")
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1))])
    env = {k: v for k, v in os.environ.items() if k != "DETECTION_LOG_FORMAT"}
    env["DETECTION_LOG_LEVEL"] = "debug"
    result = job(env, "run")  # stdout is a pipe, not a terminal: ECS by default
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    for line in lines:
        assert {"@timestamp", "log.level", "message", "ecs.version"} <= set(line)
        assert line["log"]["logger"]
    [execution] = job_env.executions_docs(rule_id)
    of_the_rule = [line for line in lines if line.get("rule", {}).get("id") == rule_id]
    assert {line["rule"]["name"] for line in of_the_rule} == {"Logged rule"}
    uuids = {line["kibana"]["alert"]["rule"]["execution"]["uuid"] for line in of_the_rule}
    assert uuids == {execution["execution"]["uuid"]}
    loggers = {line["log"]["logger"] for line in of_the_rule}
    # The lines of the libraries called during the rule's execution carry it too, not only ours.
    assert {"urllib3.connectionpool", "job.commands.run"} <= loggers
    assert any(line["message"].startswith("rule execution succeeded: 1 alerts created") for line in of_the_rule)
    setup_lines = [line for line in lines if line["log"]["logger"] == "job.indices.install"]
    assert setup_lines and all("rule" not in line for line in setup_lines)


def _schedule_once(env: dict[str, str], job_env: JobEnv, rule_id: str) -> str:
    """Run ``schedule`` until it recorded one more pass, stop it with SIGINT; its whole output."""
    before = len(job_env.executions_docs(rule_id))
    process = subprocess.Popen(
        [sys.executable, "-m", "job", "schedule"],
        env={**env, "DETECTION_SCHEDULE_INTERVAL": "1h"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(job_env.executions_docs(rule_id)) == before:
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert len(job_env.executions_docs(rule_id)) > before, err
    return out + err


@pytest.mark.parametrize(
    ("credentials", "log_format"),
    [
        ({"DETECTION_ES_USERNAME": "elastic", "DETECTION_ES_PASSWORD": f"pw-{CANARY}"}, "ecs"),
        ({"DETECTION_ES_API_KEY": f"key-{CANARY}"}, "text"),
    ],
)
def test_no_command_prints_or_logs_a_secret(
    job_env: JobEnv, tmp_path: Path, credentials: dict[str, str], log_format: str
) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1))])
    env = {
        **os.environ,
        **credentials,
        "DETECTION_LOG_LEVEL": "debug",
        "DETECTION_LOG_FORMAT": log_format,
        # Nothing listens there: the push fails, and its error must not carry the URL's password either.
        "DETECTION_PUSHGATEWAY_URL": f"http://pusher:push-{CANARY}@127.0.0.1:9/",
    }
    outputs: dict[str, str] = {}
    for args in (["setup"], ["check"], ["run"], ["status"], ["status", "--json"], ["alerts"], ["alerts", "--json"]):
        result = job(env, *args)
        assert result.returncode in (0, 1), (args, result.stderr)
        outputs[" ".join(args)] = result.stdout + result.stderr
    [alert] = job_env.alert_docs(rule_id)
    for args in (["alerts", "ack", alert["_id"]], ["alerts", "close", alert["_id"][:10], "--reason", "benign"]):
        result = job(env, *args)
        assert result.returncode == 0, result.stderr
        outputs[" ".join(args)] = result.stdout + result.stderr
    export = ROOT / "tests" / "fixtures" / "kibana_export.ndjson"
    for args in (["validate"], ["translate", "user.name:alice"], ["import", str(export), "--out", str(tmp_path / "i")]):
        outputs[" ".join(args)] = job(env, *args).stdout
    outputs["schedule"] = _schedule_once(env, job_env, rule_id)
    unreachable = {**env, "DETECTION_ES_HOSTS": "http://127.0.0.1:9", "DETECTION_RETRY_ATTEMPTS": "1"}
    for args in (["check"], ["status"], ["alerts"], ["run"]):
        result = job(unreachable, *args)
        assert result.returncode == 2, (args, result.stderr)
        outputs[f"{' '.join(args)} (unreachable)"] = result.stdout + result.stderr

    basic = base64.b64encode(f"elastic:pw-{CANARY}".encode()).decode()
    leaks = [name for name, output in outputs.items() if CANARY in output or basic in output]
    assert leaks == []
    assert "could not push metrics to the Pushgateway at http://127.0.0.1:9/" in outputs["run"]
    assert "DEBUG" in outputs["run"] or '"log.level":"debug"' in outputs["run"]  # debug lines were there to leak
