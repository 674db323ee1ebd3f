"""``detection-job check`` against the real node and against a closed port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _run(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTION_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "job", "check"], capture_output=True, text=True, env=env, timeout=60)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_check_reports_cluster_name_version_and_health(es_url: str, es_version: str) -> None:
    result = _run({"DETECTION_ES_HOSTS": es_url})
    assert result.returncode == 0, result.stderr
    assert f", Elasticsearch {es_version}, " in result.stdout
    assert "health green" in result.stdout or "health yellow" in result.stdout


def test_check_against_a_closed_port_is_one_line_and_exit_2() -> None:
    port = _closed_port()
    result = _run({"DETECTION_ES_HOSTS": f"http://127.0.0.1:{port}", "DETECTION_ES_REQUEST_TIMEOUT": "5"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "ConnectionError" in lines[0]


def test_check_with_a_malformed_setting_names_the_variable() -> None:
    result = _run({"DETECTION_ES_REQUEST_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert result.stderr.startswith("detection-job: DETECTION_ES_REQUEST_TIMEOUT:")
    assert "Traceback" not in result.stderr
