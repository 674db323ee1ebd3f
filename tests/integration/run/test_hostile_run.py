"""Hostile rule files, settings and options in a whole run against the real node: the good rule still
runs and is recorded, each bad input is one line naming it, nothing is a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from job.cli import main as cli_main
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CANARY = "CANARY-pw-0b7e"


def test_bombs_and_overflows_beside_a_good_rule_never_stop_the_pass(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    good = job_env.write_rule(name="Good rule")
    far = job_env.write_rule(name="Far look-back", from_="now-9999999999d")
    overflow = job_env.write_rule(name="Overflowing interval", interval="99999999999999999999d")
    rules = job_env.rules_dir
    (rules / "array_bomb.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    (rules / "table_bomb.toml").write_text("a = " + "{b = " * 50_000 + "1" + "}" * 50_000)
    (rules / "deep_header.toml").write_text("[transform" + ".a" * 5000 + "]\n")
    os.mkfifo(rules / "fifo.toml")
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="e1")])

    assert job_env.run("--now", iso(NOW)) == 1  # some files do not validate; the good rule ran
    err = capsys.readouterr().err
    assert "Traceback" not in err
    refused = [line for line in err.splitlines() if line.startswith("not run, does not validate: ")]
    for name in ("array_bomb", "table_bomb", "deep_header"):
        assert any(f"{name}.toml:1: nested more than 64 levels" in line for line in refused), (name, refused)
    assert any(f"{far}.toml" in line and "reaches more than 366 days" in line for line in refused)
    assert any(f"{overflow}.toml" in line and "at most 366d" in line for line in refused)
    assert any("fifo.toml: cannot read: not a regular file" in line for line in refused)
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(good)] == ["e1"]
    [execution] = job_env.executions_docs(good)
    assert execution["execution"]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("now", "message"),
    [
        ("0001-01-01T00:00:00Z", "--now: '0001-01-01T00:00:00Z' must lie between 1970-01-01 and 9000-01-01 (UTC)"),
        ("0001-01-01T00:00:00+01:00", "--now: '0001-01-01T00:00:00+01:00' is not an ISO 8601 timestamp"),
        ("9999-12-31T23:59:59Z", "--now: '9999-12-31T23:59:59Z' must lie between 1970-01-01 and 9000-01-01"),
        ("yesterday", "--now: 'yesterday' is not an ISO 8601 timestamp"),
    ],
)
def test_an_out_of_range_clock_is_one_line_and_exit_2(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str], now: str, message: str
) -> None:
    job_env.write_rule()
    assert job_env.run("--now", now) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"detection-job: {message}"), line


def test_a_pathological_field_wildcard_runs_against_thousands_of_fields(job_env: JobEnv) -> None:
    properties = {f"{'a' * (i % 30)}f{i}": {"type": "keyword"} for i in range(3000)}
    mapping = {"properties": {"@timestamp": {"type": "date"}, **properties}}
    job_env.es.indices.create(
        index=job_env.events_index(), mappings=mapping, settings={"index.mapping.total_fields.limit": 5000}
    )
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="e1")])
    rule_id = job_env.write_rule(query="*a" * 12 + "*b:x or event.action:cred_theft_event")
    assert job_env.run("--now", iso(NOW)) == 0
    assert len(job_env.alert_docs(rule_id)) == 1


def test_a_debug_run_with_a_password_in_the_url_never_shows_it(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(datetime.now(UTC) - timedelta(minutes=1))])
    scheme, rest = es_url.split("://", 1)
    env = dict(os.environ, DETECTION_ES_HOSTS=f"{scheme}://elastic:{CANARY}@{rest}", DETECTION_LOG_LEVEL="debug")
    result = subprocess.run([sys.executable, "-m", "job", "run"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout + result.stderr
    [execution] = job_env.executions_docs(rule_id)
    assert CANARY not in str(execution)


def test_an_overlapping_second_alias_fails_with_elasticsearchs_reason(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["setup"]) == 0
    capsys.readouterr()
    job_env.set(alerts_index=f"{job_env.alerts}-second", executions_index=f"{job_env.prefix}-executions-2")
    try:
        assert cli_main(["setup"]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("detection-job: cannot use Elasticsearch at ")
        # Elasticsearch's own words: which templates overlap, and why that is refused.
        assert "HTTP 400 illegal_argument_exception: " in line
        assert f"[{job_env.alerts}-template]" in line and "priority" in line, line
    finally:
        job_env.es.options(ignore_status=404).indices.delete_index_template(name=f"{job_env.alerts}-second-template")
