"""``schedule`` makes one APScheduler job per rule of its shard, on the rule's own interval (not started here)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.schedule import MAX_MISFIRE_GRACE, Service, add_rule_jobs
from job.config.settings import load_settings
from job.config.shards import shard_of
from job.ops.metrics import RuleMetrics
from job.rules import rule_to_toml
from job.run.selection import jitter
from tests.alert_samples import seed_rule

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
INTERVALS = ("2s", "3s", "5m", "10m", "1h", "1d")


@pytest.fixture
def rules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "rules"
    folder.mkdir()
    for i, interval in enumerate(INTERVALS):
        rule = seed_rule(rule_id=f"scheduled-{i}", name=f"Scheduled {i}", interval=interval)
        (folder / f"scheduled-{i}.toml").write_text(rule_to_toml(rule))
    (folder / "off.toml").write_text(rule_to_toml(seed_rule(rule_id="off", name="Off", enabled=False)))
    monkeypatch.setenv("DETECTION_RULES_DIR", str(folder))
    monkeypatch.setenv("DETECTION_ES_HOSTS", "http://127.0.0.1:9")  # nothing is sent before the scheduler starts
    return folder


def jobs_of(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, IntervalTrigger]:
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    scheduler = BlockingScheduler(timezone=UTC)
    with make_client(settings) as es:
        service = Service(settings, es, RuleMetrics(), RetryPolicy.from_settings(settings))
        count = add_rule_jobs(scheduler, service, START)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert count == len(jobs)
    for job in jobs.values():
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert 1 <= job.misfire_grace_time <= MAX_MISFIRE_GRACE.total_seconds()
    return {job_id: job.trigger for job_id, job in jobs.items()}


def test_one_job_per_rule_on_its_own_interval(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    triggers = jobs_of({}, monkeypatch)
    assert sorted(triggers) == sorted(f"rule:scheduled-{i}" for i in range(len(INTERVALS)))  # not the disabled one
    for i, interval in enumerate(INTERVALS):
        trigger = triggers[f"rule:scheduled-{i}"]
        expected = seed_rule(interval=interval).interval_delta
        assert trigger.interval == expected
        # The first run: at start plus the rule's own stable delay, within a tenth of the interval.
        assert trigger.start_date == START + jitter(f"scheduled-{i}", expected)
        assert START <= trigger.start_date < START + expected / 10 + timedelta(milliseconds=1)


def test_the_override_sets_every_rule_s_cadence(rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    triggers = jobs_of({"DETECTION_SCHEDULE_INTERVAL": "90s"}, monkeypatch)
    assert {trigger.interval for trigger in triggers.values()} == {timedelta(seconds=90)}


@pytest.mark.parametrize("index", [1, 2])
def test_only_the_shard_s_rules_are_scheduled(rules_dir: Path, monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    triggers = jobs_of({"DETECTION_SHARD": f"{index}/2"}, monkeypatch)
    expected = {f"rule:scheduled-{i}" for i in range(len(INTERVALS)) if shard_of(f"scheduled-{i}", 2) == index}
    assert set(triggers) == expected
