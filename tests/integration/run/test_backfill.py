"""``detection-job backfill``: a rule over a past range, window by window, resumable, invisible to the schedule."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from job.cli import main as cli_main
from job.client.retry import RetryPolicy
from job.execlog.history import read_histories
from tests.integration.run.conftest import JobEnv, cred_event, iso
from tests.jobprocess import KillPoint, run_job

pytestmark = pytest.mark.integration

START = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(hours=3)  # 18 windows of the rule's 10m interval
LOOK_BACK = timedelta(minutes=5)  # from now-15m every 10m


def _alerted(job_env: JobEnv, rule_id: str) -> list[str]:
    return sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))


def _events(job_env: JobEnv) -> list[str]:
    """Events every 40 s from 10 minutes before the range to 10 minutes after it; the ids inside the first
    window's look-back and the range (both ends included) are the ones a backfill must alert on."""
    moments = [START - timedelta(minutes=10) + timedelta(seconds=40 * i) for i in range(int(3.5 * 3600 / 40))]
    assert END in moments  # an event on the range's last millisecond
    job_env.index_events([cred_event(moment, _id=f"e-{iso(moment)}") for moment in moments])
    return sorted(f"e-{iso(moment)}" for moment in moments if START - LOOK_BACK <= moment <= END)


def test_a_backfill_killed_midway_resumes_to_the_exact_alert_set_and_never_moves_the_schedule(
    job_env: JobEnv, es_url: str
) -> None:
    rule_id = job_env.write_rule()
    expected = _events(job_env)
    args = ["backfill", "--rule", rule_id, "--from", iso(START), "--to", iso(END)]
    killed = run_job(es_url, args, kill=KillPoint("bulk", r"^/_bulk", nth=7))
    assert killed.killed, killed.stderr
    resumed = run_job(es_url, args)
    assert resumed.returncode == 0, resumed.stderr
    assert "18 windows, 6 already done, 12 run (0 failed), 0 not run" in resumed.stdout
    # Not a terminal: one log line per window run.
    lines = [json.loads(line)["message"] for line in resumed.stderr.splitlines() if "backfill window" in line]
    assert [line.split(" ")[2] for line in lines] == [f"{n}/18" for n in range(7, 19)]
    assert _alerted(job_env, rule_id) == expected  # each event once: nothing lost, nothing twice

    records = job_env.executions_docs(rule_id)
    assert {doc["execution"]["type"] for doc in records} == {"backfill"}
    statuses = sorted(doc["execution"]["status"] for doc in records)
    assert statuses == ["failed"] + ["succeeded"] * 18  # the killed window, marked by the rerun
    windows = sorted((doc["window"]["from"], doc["window"]["to"]) for doc in records if doc["window"]["searched_to"])
    assert windows[0] == (iso(START - LOOK_BACK), iso(START + timedelta(minutes=10)))
    assert windows[-1] == (iso(END - timedelta(minutes=10) - LOOK_BACK), iso(END))

    # The schedule plans as if no backfill had happened: no history, never ran, due now.
    policy = RetryPolicy()
    assert read_histories(job_env.es, policy, job_env.executions, [rule_id], "default") == {}
    status = run_job(es_url, ["status", "--json"])
    [view] = json.loads(status.stdout)["rules"]
    assert (view["health"], view["due"], view["last_execution"]) == ("never ran", True, None)
    assert view["last_backfill"]["status"] == "succeeded"
    later = END + timedelta(hours=1)
    assert job_env.run_due("--now", iso(later)) == 0
    [scheduled] = [doc for doc in job_env.executions_docs(rule_id) if doc["execution"]["type"] == "scheduled"]
    assert scheduled["window"]["from"] == iso(later - timedelta(minutes=15))
    assert "execution_gap_duration_s" not in scheduled["metrics"]


def test_a_window_stopped_by_the_alerts_cap_is_named_and_a_rerun_continues_it(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    rule_id = job_env.write_rule(max_signals=4)
    start = START
    second = start + timedelta(minutes=12)
    job_env.index_events([cred_event(second + timedelta(seconds=i), _id=f"c{i}") for i in range(6)])
    args = ["backfill", "--rule", rule_id, "--from", iso(start), "--to", iso(start + timedelta(minutes=30))]
    assert cli_main(args) == 1
    out = capsys.readouterr().out
    assert f"stopped at the alerts cap (4 alerts created) at {iso(second + timedelta(seconds=4))}" in out
    assert "3 windows, 0 already done, 3 run (0 failed)" in out
    assert _alerted(job_env, rule_id) == ["c0", "c1", "c2", "c3"]
    assert cli_main(args) == 0  # the capped window again; dedupe lets it write the rest
    assert "3 windows, 2 already done, 1 run (0 failed)" in capsys.readouterr().out
    assert _alerted(job_env, rule_id) == [f"c{i}" for i in range(6)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-04-01T03:00:00Z", "--to", "2026-04-01T00:00:00Z"], "--from: must lie before --to"),
        (["--from", "2026-04-01T00:00:00Z", "--to", "2999-01-01T00:00:00Z"], "--to: lies in the future"),
        (["--from", "yesterday", "--to", "2026-04-01T00:00:00Z"], "--from: 'yesterday' is not an ISO 8601"),
        (["--from", "1970-01-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z"], "windows of 1m; at most 200000"),
    ],
)
def test_bad_ranges_are_refused_before_anything_runs(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rule_id = job_env.write_rule(interval="1m")
    assert cli_main(["backfill", "--rule", rule_id, *args]) == 2
    assert message in capsys.readouterr().err


def test_on_a_terminal_a_progress_bar_replaces_the_lines_per_window(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(START + timedelta(minutes=3), _id="one")])
    args = ["backfill", "--rule", rule_id, "--from", iso(START), "--to", iso(START + timedelta(minutes=30))]
    controller, terminal = pty.openpty()
    env = dict(os.environ, DETECTION_ES_HOSTS=es_url, COLUMNS="120", TERM="xterm")
    process = subprocess.Popen(
        [sys.executable, "-m", "job", *args], env=env, stdout=subprocess.PIPE, stderr=terminal, text=True
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        shown += chunk
    out, _ = process.communicate(timeout=300)
    os.close(controller)
    assert process.returncode == 0, shown.decode(errors="replace")
    screen = shown.decode(errors="replace")
    assert "3/3" in screen and "backfill Test credential theft" in screen
    assert "backfill window" not in screen  # no line per window on a terminal
    assert "3 windows, 0 already done, 3 run (0 failed)" in out
    assert _alerted(job_env, rule_id) == ["one"]
