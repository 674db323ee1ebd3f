"""Alert-index rollover and retention on the real node, and dedupe across backing indices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from job.cli import main as cli_main
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def write_index(job_env: JobEnv) -> str:
    aliases = job_env.es.indices.get_alias(name=job_env.alerts)
    [write] = [name for name, meta in aliases.items() if meta["aliases"][job_env.alerts].get("is_write_index")]
    return write


def doc_counts(job_env: JobEnv) -> dict[str, int]:
    job_env.es.indices.refresh(index=job_env.alerts)
    return {name: job_env.es.count(index=name)["count"] for name in job_env.es.indices.get_alias(name=job_env.alerts)}


def test_rollover_when_a_condition_is_met_and_dedupe_holds_across_backing_indices(job_env: JobEnv) -> None:
    job_env.set(alerts_rollover="max_docs=2")
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id=f"e{i}") for i in range(3)])
    assert job_env.run("--now", iso(NOW)) == 0
    # The first pass started on an empty write index: nothing to roll over.
    assert doc_counts(job_env) == {f"{job_env.alerts}-000001": 3}

    # The next pass starts with 3 alerts in the write index (max_docs=2): it rolls over first, then
    # searches the same events again (look-back) and finds their alerts in -000001.
    assert job_env.run("--now", iso(NOW + timedelta(minutes=1))) == 0
    assert write_index(job_env) == f"{job_env.alerts}-000002"
    assert doc_counts(job_env) == {f"{job_env.alerts}-000001": 3, f"{job_env.alerts}-000002": 0}
    second = job_env.executions_docs(rule_id)[-1]
    assert second["metrics"]["alerts_created"] == 0
    assert second["metrics"]["duplicates_skipped"] == 3

    # A new event's alert goes to the new write index; the old ones are still not written twice.
    job_env.index_events([cred_event(NOW + timedelta(minutes=1), _id="e-new")])
    assert job_env.run("--now", iso(NOW + timedelta(minutes=2))) == 0
    assert doc_counts(job_env) == {f"{job_env.alerts}-000001": 3, f"{job_env.alerts}-000002": 1}
    ancestors = sorted(alert["kibana.alert.ancestors"][0]["id"] for alert in job_env.alert_docs(rule_id))
    assert ancestors == ["e-new", "e0", "e1", "e2"]


def test_setup_rolls_over_and_says_so(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["setup"]) == 0
    job_env.es.index(index=job_env.alerts, document={"@timestamp": iso(NOW)}, refresh=True)
    job_env.set(alerts_rollover="max_docs=1")
    capsys.readouterr()
    assert cli_main(["setup"]) == 0
    assert f"alert alias {job_env.alerts}: rolled over to {job_env.alerts}-000002" in capsys.readouterr().out
    assert cli_main(["setup"]) == 0  # the new write index is empty: no rollover
    assert "rolled over" not in capsys.readouterr().out
    assert write_index(job_env) == f"{job_env.alerts}-000002"


def test_retention_deletes_only_the_backing_indices_that_are_due(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    es, alias = job_env.es, job_env.alerts
    now = datetime.now(UTC)
    assert cli_main(["setup"]) == 0
    ages = {"000001": [45, 40], "000002": [50, 10], "000003": [60]}  # days; -000003 stays the write index
    for number, days in ages.items():
        if number != "000001":
            es.indices.rollover(alias=alias)
        for age in days:
            es.index(index=alias, document={"@timestamp": iso(now - timedelta(days=age))}, refresh=True)
    es.indices.create(index=f"{alias}-000004")  # created today, empty, not in the alias: not ours to delete
    es.indices.create(index=f"{alias}-archive", aliases={alias: {}})  # in the alias, but not a backing index
    es.index(index=f"{alias}-archive", document={"@timestamp": iso(now - timedelta(days=400))}, refresh=True)

    job_env.set(alerts_retention="30d", alerts_rollover="off")
    capsys.readouterr()
    assert cli_main(["setup"]) == 0
    assert f"alert index {alias}-000001: deleted" in capsys.readouterr().out
    remaining = sorted(es.indices.get(index=f"{alias}-*"))
    assert remaining == [f"{alias}-000002", f"{alias}-000003", f"{alias}-000004", f"{alias}-archive"]

    # A pass applies it too: -000002's newest alert is 10 days old, due once the retention is 7 days.
    job_env.set(alerts_retention="7d")
    job_env.write_rule()
    assert job_env.run() == 0
    remaining = sorted(es.indices.get(index=f"{alias}-*"))
    assert remaining == [f"{alias}-000003", f"{alias}-000004", f"{alias}-archive"]
    assert write_index(job_env) == f"{alias}-000003"


def test_without_retention_nothing_is_deleted(job_env: JobEnv) -> None:
    es, alias = job_env.es, job_env.alerts
    assert cli_main(["setup"]) == 0
    es.index(index=alias, document={"@timestamp": "2001-01-01T00:00:00Z"}, refresh=True)
    es.indices.rollover(alias=alias)
    job_env.set(alerts_rollover="off")
    assert cli_main(["setup"]) == 0
    assert sorted(es.indices.get(index=f"{alias}-*")) == [f"{alias}-000001", f"{alias}-000002"]


def test_an_index_in_the_way_of_the_rollover_is_reported(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["setup"]) == 0
    job_env.es.index(index=job_env.alerts, document={"@timestamp": iso(NOW)}, refresh=True)
    job_env.es.indices.create(index=f"{job_env.alerts}-000002")  # not made by a rollover
    job_env.set(alerts_rollover="max_docs=1")
    capsys.readouterr()
    assert cli_main(["setup"]) == 1
    err = capsys.readouterr().err
    assert f"alert index rollover failed: HTTP 400 index [{job_env.alerts}-000002/" in err
    assert "already exists" in err
    assert write_index(job_env) == f"{job_env.alerts}-000001"
