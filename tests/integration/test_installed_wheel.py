"""The container image's steps without Docker: build the wheel, install it into a clean virtualenv
outside the checkout, then run ``--help``, ``validate``, ``setup`` and ``run`` from there against the node.

The Dockerfile does the same (``pip wheel`` in a build stage, ``pip install`` of that wheel in the
final one); this proves the wheel alone, with its declared dependencies and shipped rules, is the job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MALWARE_DETECTED = "0a97b20f-4144-49ea-be32-b540ecc445de"  # rule_defs/endgame_malware_detected.toml


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("clean-venv")
    wheels = base / "wheels"

    def step(*argv: str) -> None:
        result = subprocess.run(argv, cwd=base, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}{result.stderr}"

    step(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT))
    [wheel] = wheels.glob("detection_job-*.whl")
    step(sys.executable, "-m", "venv", str(base / "venv"))
    step(str(base / "venv" / "bin" / "pip"), "install", "--quiet", str(wheel))
    return base / "venv"


def _job(venv: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DETECTION_", "PYTHON", "VIRTUAL_ENV"))}
    clean.update(env or {})
    return subprocess.run(
        [str(venv / "bin" / "detection-job"), *args],
        cwd=venv.parent,  # outside the checkout: nothing can be imported or read from it
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_lists_the_commands(venv: Path) -> None:
    result = _job(venv, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("setup", "run", "schedule", "validate"):
        assert command in result.stdout


def test_validate_finds_the_shipped_rules_in_the_installed_wheel(venv: Path) -> None:
    result = _job(venv, "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "15 rules loaded: 0 problems" in result.stdout
    assert str(ROOT) not in result.stdout + result.stderr


def test_setup_and_run_from_the_clean_virtualenv_write_an_alert(
    venv: Path, es: Elasticsearch, es_url: str, index_name: str, scratch_index: Callable[[str], str]
) -> None:
    alerts = f"{index_name}-alerts"
    endgame_index = scratch_index("endgame-wheel")
    settings = {
        "DETECTION_ES_HOSTS": es_url,
        "DETECTION_ALERTS_INDEX": alerts,
        "DETECTION_EXECUTIONS_INDEX": f"{index_name}-executions",
        "DETECTION_DEAD_LETTER_INDEX": f"{index_name}-dead-letters",
        "DETECTION_ALERTS_MAX": "10000",
    }
    moment = (datetime.now(UTC) - timedelta(minutes=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {
        "@timestamp": moment,
        "event": {"kind": "alert", "module": "endgame", "action": "file_classification_event"},
        "endgame": {"metadata": {"type": "detection"}},
        "host": {"name": "ws-12"},
        "file": {"path": "C:\\Users\\bob\\Downloads\\invoice.exe"},
    }
    helpers.bulk(es, [{"_index": endgame_index, "_id": "malware-1", "_source": event}], refresh=True)
    try:
        setup = _job(venv, "setup", env=settings)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        run = _job(venv, "run", env=settings)
        assert run.returncode == 0, run.stdout + run.stderr
        es.indices.refresh(index=alerts)
        query = {"term": {"kibana.alert.rule.rule_id": MALWARE_DETECTED}}
        hits = es.search(index=alerts, query=query)["hits"]["hits"]
        ancestors = [(a["index"], a["id"]) for hit in hits for a in hit["_source"]["kibana.alert.ancestors"]]
        assert (endgame_index, "malware-1") in ancestors
    finally:
        es.options(ignore_status=404).indices.delete_index_template(name=f"{alerts}-template")
