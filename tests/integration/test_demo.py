"""``make demo``: its last lines tell a newcomer how to look at what it made, and each command they print works
as printed (``status`` sees the demo's runs, ``alerts`` its alerts, ``preview`` what the shipped rule adds)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from job import demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_output(es: Elasticsearch, es_url: str) -> Iterator[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DETECTION_")}
    env["DETECTION_ES_HOSTS"] = es_url
    result = subprocess.run(
        [sys.executable, "-m", "job.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    try:
        assert result.returncode == 0, result.stderr
        yield result.stdout
    finally:
        indices = f"{demo.EVENTS_INDEX},{demo.ALERTS_INDEX}-*,{demo.EXECUTIONS_INDEX}-*,{demo.DEAD_LETTER_INDEX}"
        es.options(ignore_status=404).indices.delete(index=indices, ignore_unavailable=True)
        es.options(ignore_status=404).indices.delete_index_template(name=f"{demo.ALERTS_INDEX}-template")


def test_the_demo_ends_with_commands_that_show_what_it_made(demo_output: str, es_url: str) -> None:
    lines = demo_output.splitlines()
    start = lines.index(
        "== look at what it made: the demo wrote to its own indices, so first point the commands at them"
    )
    export, *commands = [line for line in lines[start + 1 :] if not line.startswith("    #")]
    assert export.startswith("export ")
    settings = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    assert settings["DETECTION_ES_HOSTS"] == es_url
    env = {key: value for key, value in os.environ.items() if not key.startswith("DETECTION_")} | settings
    said = {}
    for command in commands:
        words = shlex.split(command.split("#", 1)[0])
        result = subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (command, result.stderr)
        said[words[1]] = result.stdout
    assert sorted(said) == ["alerts", "preview", "status"]
    assert "15 rules: 15 ok" in said["status"] and "never ran" not in said["status"]
    assert said["alerts"].splitlines()[-1] == "13 alerts in the last 24h"
    assert "  alerts        1 would be created" in said["preview"]  # svc-backup's, which the demo's exception excused
    assert "  duplicates    6 would-be alerts exist already" in said["preview"]
    assert "svc-backup" in said["preview"]
