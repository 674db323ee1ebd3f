"""The execution log as a rollover alias: one document per run across a rollover, the conversion of an
earlier version's plain index, and retention that keeps what the next run plans from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.cli import main as cli_main
from job.client.retry import RetryPolicy
from job.execlog.execution import INTERRUPTED_MESSAGE
from job.execlog.history import read_histories
from job.execlog.lifecycle import ensure_log, new_index_body
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso
from tests.jobprocess import KillPoint, run_job

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _copies(job_env: JobEnv, execution_uuid: str) -> list[tuple[str, dict[str, Any]]]:
    """Every document with this id in the execution log's backing indices: (index, source)."""
    job_env.es.indices.refresh(index=job_env.executions)
    hits = job_env.es.search(index=job_env.executions, query={"ids": {"values": [execution_uuid]}})["hits"]["hits"]
    return [(hit["_index"], hit["_source"]) for hit in hits]


def _roll_over(job_env: JobEnv) -> str:
    return str(job_env.es.indices.rollover(alias=job_env.executions, **new_index_body())["new_index"])


def test_a_rollover_between_the_running_record_and_the_final_one_leaves_one_record(
    job_env: JobEnv, es_url: str
) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="e1")])
    assert cli_main(["setup"]) == 0
    rolled: list[str] = []
    with FaultProxy(es_url) as proxy:
        job_env.set(es_hosts=proxy.url)
        # The running record is written; then, as the search starts (a point in time, or the first pages of a
        # batch), the log rolls over.
        proxy.on_request(
            r"/_pit|/_msearch", after=0, method="POST", action=lambda: rolled.append(_roll_over(job_env)), answer=True
        )
        assert job_env.run("--now", iso(NOW)) == 0
    assert rolled == [f"{job_env.executions}-000002"]
    [record] = job_env.executions_docs(rule_id)
    [(index, source)] = _copies(job_env, record["execution"]["uuid"])
    assert index == f"{job_env.executions}-000001"
    assert source["execution"]["status"] == "succeeded"


def test_an_interrupted_record_is_marked_where_it_lies_after_a_rollover(job_env: JobEnv, es_url: str) -> None:
    job_env.set(page_size="10")
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(NOW - timedelta(minutes=5, seconds=i), _id=f"e{i}") for i in range(30)])
    killed = run_job(es_url, ["run", "--now", iso(NOW)], kill=KillPoint("bulk", r"^/_bulk", nth=2))
    assert killed.killed
    [running] = job_env.executions_docs(rule_id)
    assert running["execution"]["status"] == "running"
    _roll_over(job_env)
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    [(index, source)] = _copies(job_env, running["execution"]["uuid"])
    assert index == f"{job_env.executions}-000001"
    assert (source["execution"]["status"], source["execution"]["message"]) == ("failed", INTERRUPTED_MESSAGE)
    assert len(job_env.alert_docs(rule_id)) == 30


def _record(rule_id: str, uuid: str, end: datetime, searched_to: datetime | None, status: str) -> dict[str, Any]:
    """An execution record as a run writes it (only the fields planning and retention read)."""
    return {
        "@timestamp": iso(end),
        "space_id": "default",
        "rule": {"rule_id": rule_id, "name": "Test credential theft"},
        "execution": {"uuid": uuid, "start": iso(end - timedelta(seconds=5)), "end": iso(end), "status": status},
        "window": {
            "from": iso(end - timedelta(minutes=15)),
            "to": iso(end),
            "searched_to": iso(searched_to) if searched_to else None,
            "covered_from": iso(end - timedelta(minutes=15)) if searched_to else None,
        },
    }


def test_setup_converts_an_earlier_versions_plain_execution_log(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    rule_id = job_env.write_rule()
    mapping = new_index_body()["mappings"]
    job_env.es.indices.create(index=job_env.executions, mappings=mapping)  # as earlier versions made it
    last = NOW - timedelta(hours=1)
    job_env.es.index(
        index=job_env.executions, id="old-run", document=_record(rule_id, "old-run", last, last, "succeeded")
    )
    job_env.set(auto_setup="false")
    assert cli_main(["setup"]) == 0
    assert "converted from the plain index of an earlier version" in capsys.readouterr().out
    aliases = job_env.es.indices.get_alias(name=job_env.executions).body
    assert aliases == {f"{job_env.executions}-000001": {"aliases": {job_env.executions: {"is_write_index": True}}}}
    assert job_env.run("--now", iso(NOW)) == 0
    old, new = job_env.executions_docs(rule_id)
    assert old["execution"]["uuid"] == "old-run"
    assert new["window"]["from"] == iso(last - timedelta(minutes=5))  # planned from the converted record


def test_run_refuses_to_write_into_an_unconverted_log(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    job_env.write_rule()
    job_env.es.indices.create(index=job_env.executions, mappings=new_index_body()["mappings"])
    job_env.set(auto_setup="false")
    assert cli_main(["run"]) == 2
    err = capsys.readouterr().err
    assert f"the execution log {job_env.executions} is the plain index of an earlier version" in err
    assert 'run "detection-job setup" first' in err


def test_retention_deletes_old_backing_indices_but_keeps_what_runs_plan_from(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    es, log = job_env.es, job_env.executions
    assert cli_main(["setup"]) == 0
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    # -000001: 40 days old. The idle rule's last run lives only here; the active rule ran again since.
    es.index(index=log, id="idle-last", document=_record("idle", "idle-last", old, old, "succeeded"))
    es.index(index=log, id="active-old", document=_record("active", "active-old", old, old, "succeeded"))
    earlier = old - timedelta(hours=1)
    es.index(index=log, id="idle-failed", document=_record("idle", "idle-failed", earlier, None, "failed"))
    _roll_over(job_env)
    es.index(index=log, id="active-new", document=_record("active", "active-new", recent, recent, "succeeded"))
    _roll_over(job_env)
    # The write index holds only an old record: the write index is never deleted.
    es.index(index=log, id="write-old", document=_record("other", "write-old", old, old, "succeeded"))
    es.indices.refresh(index=log)
    policy = RetryPolicy()
    before = read_histories(es, policy, log, ["idle", "active"], "default")

    capsys.readouterr()
    assert cli_main(["setup"]) == 0
    out = capsys.readouterr().out
    assert f"execution log index {log}-000001: deleted (older than DETECTION_EXECUTIONS_RETENTION)" in out
    assert es.indices.get_alias(name=log).body.keys() == {f"{log}-000002", f"{log}-000003"}
    assert [index for index, _ in _copies(job_env, "idle-last")] == [f"{log}-000003"]  # carried forward
    assert _copies(job_env, "active-old") == []  # the active rule plans from its newer record
    assert _copies(job_env, "idle-failed") == []
    after = read_histories(es, policy, log, ["idle", "active"], "default")
    assert (
        after["idle"].searched_to
        == before["idle"].searched_to
        == old.replace(microsecond=old.microsecond // 1000 * 1000)
    )
    assert after["active"].searched_to == before["active"].searched_to


def test_setup_rolls_the_execution_log_over_when_a_condition_is_met(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    job_env.write_rule()
    assert job_env.run("--now", iso(NOW)) == 0
    job_env.set(executions_rollover="max_docs=1")
    capsys.readouterr()
    assert cli_main(["setup"]) == 0
    assert f"execution log {job_env.executions}: rolled over to {job_env.executions}-000002" in capsys.readouterr().out
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    first, second = job_env.executions_docs()
    assert second["window"]["from"] == iso(NOW - timedelta(minutes=5))  # planning reads both backing indices


def test_an_alias_created_by_another_process_meanwhile_is_not_taken_for_an_earlier_versions_index(
    job_env: JobEnv, es_url: str
) -> None:
    """Several shard pods install at once: one finds no alias, and by its next request another pod has created
    it. The alias must not be converted as a plain index (that would block writes to its backing index)."""
    assert cli_main(["setup"]) == 0
    with FaultProxy(es_url) as proxy:
        # The alias check answers "none" once, as it would have a moment before the other pod created it.
        proxy.fail(rf"^/_alias/{job_env.executions}$", times=1, status=404, method="HEAD")
        client = Elasticsearch(proxy.url, request_timeout=30)
        assert ensure_log(client, RetryPolicy(attempts=1, max_seconds=10), job_env.executions) == "exists"
        assert proxy.state.injected == 1
    settings = job_env.es.indices.get_settings(index=f"{job_env.executions}-000001")
    assert "blocks" not in next(iter(settings.values()))["settings"]["index"]
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), _id="e1")])
    rule_id = job_env.write_rule()
    assert job_env.run("--now", iso(NOW)) == 0
    assert [doc["execution"]["status"] for doc in job_env.executions_docs(rule_id)] == ["succeeded"]
