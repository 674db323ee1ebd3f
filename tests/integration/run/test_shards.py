"""Shards as separate processes: together exactly the alerts of one unsharded run, never a duplicate."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from job.config.shards import shard_of
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULES = [f"sharded-rule-{i:02d}" for i in range(12)]
EVENTS = [f"e{i}" for i in range(5)]


@pytest.fixture
def sharded(job_env: JobEnv) -> Iterator[JobEnv]:
    for rule_id in RULES:
        job_env.write_rule(rule_id=rule_id, name=f"Rule {rule_id}")
    job_env.index_events([cred_event(NOW - timedelta(minutes=1 + i), _id=event) for i, event in enumerate(EVENTS)])
    yield job_env
    job_env.es.options(ignore_status=404).indices.delete_index_template(name=f"{job_env.prefix}-full-alerts-template")


def start(args: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "job", "run", "--now", iso(NOW), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(processes: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outputs.append(out)
    return outputs


def alert_ids(job_env: JobEnv) -> Counter[str]:
    return Counter(doc["_id"] for doc in job_env.alert_docs())


def test_three_shard_processes_give_exactly_the_alerts_of_one_unsharded_run(sharded: JobEnv) -> None:
    # The unsharded run writes to an alias and execution log of its own.
    full = start(
        [],
        DETECTION_ALERTS_INDEX=f"{sharded.prefix}-full-alerts",
        DETECTION_EXECUTIONS_INDEX=f"{sharded.prefix}-full-executions",
    )
    finish([full])
    sharded.es.indices.refresh(index=f"{sharded.prefix}-full-alerts")
    unsharded = {
        hit["_id"] for hit in sharded.es.search(index=f"{sharded.prefix}-full-alerts", size=1000)["hits"]["hits"]
    }
    assert len(unsharded) == len(RULES) * len(EVENTS)

    # Three ways to name a shard: the setting, the flag, and a Kubernetes Indexed Job's pod.
    outputs = finish(
        [
            start([], DETECTION_SHARD="1/3"),
            start(["--shard", "2/3"]),
            start([], DETECTION_SHARDS="3", JOB_COMPLETION_INDEX="2"),
        ]
    )
    ids = alert_ids(sharded)
    assert set(ids) == unsharded
    assert set(ids.values()) == {1}
    runs = Counter(record["rule"]["rule_id"] for record in sharded.executions_docs())
    assert runs == Counter(RULES)  # every rule ran once, in exactly one of the shards
    for index, out in enumerate(outputs, start=1):
        mine = [rule_id for rule_id in RULES if shard_of(rule_id, 3) == index]
        assert mine, "every shard has rules here"
        assert f"shard {index}/3: {len(RULES) - len(mine)} rules belong to other shards" in out
        assert [f"Rule {rule_id}" in out for rule_id in RULES] == [rule_id in mine for rule_id in RULES]


def test_overlapping_shards_never_write_an_alert_twice(sharded: JobEnv) -> None:
    finish([start(["--all"]), start(["--all", "--shard", "1/2"])])
    ids = alert_ids(sharded)
    assert len(ids) == len(RULES) * len(EVENTS)
    assert set(ids.values()) == {1}
    records = sharded.executions_docs()
    runs = Counter(record["rule"]["rule_id"] for record in records)
    assert runs == Counter({rule_id: 2 if shard_of(rule_id, 2) == 1 else 1 for rule_id in RULES})
    # Each alert was created by exactly one of the runs that raced for it; the others counted a duplicate.
    assert sum(record["metrics"]["alerts_created"] for record in records) == len(RULES) * len(EVENTS)
