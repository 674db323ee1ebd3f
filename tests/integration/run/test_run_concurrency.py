"""The faster paths write exactly what the sequential path writes.

Rules of a pass running at once (``DETECTION_CONCURRENCY``), bulk requests in flight while the next page
is read (``DETECTION_BULK_CONCURRENCY``), first pages read together in one ``_msearch``: over the shipped
rules and several thousand seeded events, with overlapping windows, the cap reached in the middle of a
page and bulk items rejected with 429 by the fault proxy, the alert sets and the counts equal those of
one rule and one bulk request at a time; the cap is never exceeded, a duplicate is never counted as
created, and a run holds at most the alerts of the pages in flight. In a batch each run has its own lease,
and fails alone.
"""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.build import RunAlerts
from job.config.settings import SHIPPED_RULES_DIR
from job.rules import load_rules, rule_to_toml
from job.writing import sink as sink_module
from job.writing.bulk import AlertWrite
from tests.faultproxy import FaultProxy
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

SEED = 20261130
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RUNS = [NOW, NOW + timedelta(minutes=5), NOW + timedelta(minutes=5)]  # overlapping windows, then a rerun
EVENTS = 3000
CAP = 150  # with pages of 100: the busiest rules reach it in the middle of their second page
PAGE = 100


def _kind_and_action(query: str) -> tuple[str, str]:
    kind = "prevention" if "metadata.type:prevention" in query else "detection"
    action = query.split("event.action:")[1].split()[0]
    return kind, action


def _events(rules: Sequence[Any]) -> list[dict[str, Any]]:
    """Events for the shipped rules, unevenly: some rules get a few (read whole by the first page), the
    others hundreds (paged, capped); many share a timestamp across page boundaries."""
    rng = random.Random(SEED)
    weights = [1 if n % 4 == 0 else 12 for n in range(len(rules))]
    events = []
    for n in range(EVENTS):
        rule = rng.choices(rules, weights)[0]
        kind, action = _kind_and_action(rule.query)
        moment = NOW - timedelta(minutes=14) + timedelta(seconds=rng.randrange(0, 18 * 60, 7))
        events.append(
            {
                "_id": f"e{n}",
                "@timestamp": iso(moment),
                "event": {"kind": "alert", "module": "endgame", "action": action},
                "endgame": {"metadata": {"type": kind}, "event_subtype_full": action},
                "host": {"name": f"ws-{n % 13}"},
                "user": {"name": f"user-{n % 7}"},
            }
        )
    return events


@dataclass(frozen=True)
class Outcome:
    alerts: frozenset[tuple[str, str]]  # (rule_id, event id)
    counts: tuple[tuple[str, int, int, int, str], ...]  # per run of each rule: id, created, dups, hits, status


def _shipped_rules_over(job_env: JobEnv) -> list[Any]:
    rules = sorted(load_rules([SHIPPED_RULES_DIR]).rules, key=lambda rule: rule.rule_id)
    for rule in rules:
        copy = rule.model_copy(update={"index": (job_env.events_pattern,)})
        (job_env.rules_dir / f"{rule.rule_id}.toml").write_text(rule_to_toml(copy))
    return rules


def _run_schedule(job_env: JobEnv, es_url: str, name: str, **settings: str) -> list[Outcome]:
    """Every run of :data:`RUNS` into indices of their own, through a proxy that rejects bulk items with 429."""
    indices = {
        "alerts_index": f"{job_env.prefix}-{name}-alerts",
        "executions_index": f"{job_env.prefix}-{name}-executions",
        "dead_letter_index": f"{job_env.prefix}-{name}-deadletter",
    }
    outcomes = []
    try:
        with FaultProxy(es_url) as proxy:
            job_env.set(es_hosts=proxy.url, **indices, **settings)
            for now in RUNS:
                proxy.reject_bulk_items(times=3)  # 429: retried item by item, whichever requests they hit
                assert job_env.run("--now", iso(now)) == 0
                assert proxy.state.injected > 0
                outcomes.append(_outcome(job_env, indices["alerts_index"], indices["executions_index"]))
    finally:
        job_env.es.options(ignore_status=404).indices.delete_index_template(name=f"{indices['alerts_index']}-template")
    return outcomes


def _outcome(job_env: JobEnv, alerts: str, executions: str) -> Outcome:
    es = job_env.es
    es.indices.refresh(index=[alerts, executions])
    response = es.search(index=alerts, size=10_000, source=["kibana.alert.rule.rule_id", "kibana.alert.ancestors"])
    pairs = [
        (hit["_source"]["kibana.alert.rule.rule_id"], hit["_source"]["kibana.alert.ancestors"][0]["id"])
        for hit in response["hits"]["hits"]
    ]
    assert len(pairs) == len(set(pairs)), "an event was alerted twice"
    records = es.search(index=executions, size=1000, sort=[{"execution.start": "asc"}])["hits"]["hits"]
    counts = []
    for record in records:
        source, metrics = record["_source"], record["_source"]["metrics"]
        assert metrics["alerts_created"] <= CAP, "the cap was exceeded"
        counts.append(
            (
                source["rule"]["rule_id"],
                metrics["alerts_created"],
                metrics["duplicates_skipped"],
                metrics["hits"],
                source["execution"]["status"],
            )
        )
    return Outcome(frozenset(pairs), tuple(sorted(counts)))


def test_concurrent_paths_write_exactly_what_the_sequential_path_writes(job_env: JobEnv, es_url: str) -> None:
    rules = _shipped_rules_over(job_env)
    job_env.index_events(_events(rules))
    job_env.set(alerts_max=str(CAP), page_size=str(PAGE), retry_max_seconds="60")

    sequential = _run_schedule(job_env, es_url, "seq", concurrency="1", bulk_concurrency="1")
    concurrent = _run_schedule(job_env, es_url, "par", concurrency="4", bulk_concurrency="3")

    assert concurrent == sequential
    first, second, rerun = sequential
    assert any(count[1] == CAP for count in first.counts), "no rule reached the cap"
    assert any(0 < count[3] < PAGE for count in first.counts), "no rule was read whole by its first page"
    assert len(second.alerts) > len(first.alerts)  # the second window continues where the cap stopped
    # Every alert was counted as created exactly once over the runs; everything else as a duplicate.
    assert sum(count[1] for count in rerun.counts) == len(rerun.alerts)
    assert sum(count[2] for count in rerun.counts) > 0


def test_a_run_holds_at_most_the_alerts_of_the_pages_in_flight(
    job_env: JobEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 events, pages of 500, two bulk requests in flight: never more than two pages of serialized
    alerts alive (counted when each bulk request is sent), whatever the number of events."""
    count, page, in_flight = 20_000, 500, 2
    rule_id = job_env.write_rule(max_signals=count)
    start = NOW - timedelta(minutes=14)
    job_env.index_events(
        [
            {
                "@timestamp": iso(start + timedelta(milliseconds=40 * n)),
                "event": {"kind": "alert", "action": "cred_theft_event"},
                "host": {"name": f"ws-{n % 50}"},
            }
            for n in range(count)
        ]
    )
    job_env.set(page_size=str(page), bulk_concurrency=str(in_flight), concurrency="2")
    peaks: list[int] = []
    real_bulk_create = sink_module.bulk_create

    def counting_bulk_create(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        peaks.append(sum(1 for item in gc.get_objects() if type(item) is AlertWrite))
        return real_bulk_create(*args, **kwargs)

    monkeypatch.setattr(sink_module, "bulk_create", counting_bulk_create)
    assert job_env.run("--now", iso(NOW)) == 0
    [record] = job_env.executions_docs(rule_id)
    assert record["metrics"]["alerts_created"] == count
    assert len(peaks) >= count // page  # requests of about 4 MB: several per page of larger alerts
    assert max(peaks) <= in_flight * page, peaks


def test_log_lines_of_rules_running_at_once_carry_their_own_rule(
    job_env: JobEnv, es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rules in worker threads, bulk requests in their own: every line names the rule it was logged for."""
    rule_ids = [job_env.write_rule(name=f"Rule {n}", query=f"event.action:action-{n}") for n in range(4)]
    job_env.index_events(
        [
            {"@timestamp": iso(NOW - timedelta(minutes=1, seconds=n)), "event": {"action": f"action-{n % 4}"}}
            for n in range(800)
        ]
    )
    capsys.readouterr()
    with FaultProxy(es_url) as proxy:
        proxy.reject_bulk_items(times=4)  # each rejection logs a warning from a bulk thread
        proxy.fail(r"^/_search", times=4, status=503)  # each retried page search, one from a rule thread
        job_env.set(es_hosts=proxy.url, log_format="ecs", page_size="100", concurrency="4", bulk_concurrency="2")
        assert job_env.run("--now", iso(NOW)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    uuid_of = {record["execution"]["uuid"]: record["rule"]["rule_id"] for record in job_env.executions_docs()}
    assert set(uuid_of.values()) == set(rule_ids)
    ruled = [line for line in lines if "rule" in line]
    for line in ruled:
        assert uuid_of[line["kibana"]["alert"]["rule"]["execution"]["uuid"]] == line["rule"]["id"]
    threads = {line["process"]["thread"]["name"].split("_")[0] for line in ruled}
    assert {"rule", "bulk"} <= threads, threads
    assert len([line for line in ruled if "rejected with 429" in line["message"]]) == 4
    assert len([line for line in ruled if line["message"].startswith("transient Elasticsearch error")]) == 4


def test_each_run_of_a_batch_has_its_own_lease_counted_from_its_own_start(job_env: JobEnv, es_url: str) -> None:
    """Ten rules in one batch, two at a time, each paging 120 events in pages of 50 that the proxy makes take
    a second each: one run takes about 5 seconds, well within its stop time (0.9 of a 12-second lease), while
    the batch takes about 25. Every run gets its whole lease from when it starts paging: none stops early,
    none outlives its lease."""
    rule_ids = [job_env.write_rule(rule_id=f"r{n}", name=f"Rule {n}") for n in range(10)]
    start = NOW - timedelta(minutes=10)
    job_env.index_events([cred_event(start + timedelta(seconds=n), _id=f"e{n:03}") for n in range(120)])
    with FaultProxy(es_url) as proxy:
        proxy.delay(r"^/_search", method="POST", seconds=1, times=10**6)  # every page of a point in time
        job_env.set(es_hosts=proxy.url, page_size="50", concurrency="2", run_timeout="12s")
        assert job_env.run("--now", iso(NOW)) == 0
    records = {record["rule"]["rule_id"]: record for record in job_env.executions_docs()}
    assert sorted(records) == sorted(rule_ids)
    troubled = {
        rule_id: (record["execution"]["status"], record["execution"]["warnings"])
        for rule_id, record in records.items()
        if record["execution"]["status"] != "succeeded"
    }
    assert troubled == {}
    assert {rule_id: record["metrics"]["alerts_created"] for rule_id, record in records.items()} == dict.fromkeys(
        rule_ids, 120
    )


def test_a_run_whose_shared_alert_part_cannot_be_built_fails_alone_in_a_batched_pass(
    job_env: JobEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sixty rules (two batches), each matching three events, so their runs are written together. Building the
    part of the alerts one rule shares (``RunAlerts.for_run``) fails for one rule of the first batch: that
    rule's run fails with its record, as on the sequential path; every other rule, in both batches, alerts.

    No rule file makes it fail today: the loader bounds a file's size and nesting, and every value TOML can
    hold (non-finite numbers, integers beyond 64 bits, dates and times, odd keys) is built, then serialized
    or left to fail alert by alert. So the failure is injected where the shared part is built."""
    rule_ids = [job_env.write_rule(rule_id=f"r{n:02}", name=f"Rule {n}") for n in range(60)]
    job_env.index_events([cred_event(NOW - timedelta(minutes=2, seconds=n), _id=f"e{n}") for n in range(3)])
    broken = "r10"
    real = RunAlerts.for_run.__func__  # type: ignore[attr-defined]

    def for_run(cls: type[RunAlerts], /, rule: Any, **kwargs: Any) -> RunAlerts:
        if rule.rule_id == broken:
            raise RuntimeError("the rule's shared alert fields cannot be built")
        return real(cls, rule, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(RunAlerts, "for_run", classmethod(for_run))
    job_env.set(concurrency="2")
    capsys.readouterr()
    code = job_env.run("--now", iso(NOW))
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("detection-job: unexpected error")] == []  # the pass went on
    assert code == 1  # one rule failed
    records = {record["rule"]["rule_id"]: record for record in job_env.executions_docs()}
    assert sorted(records) == rule_ids
    failed = records.pop(broken)
    assert failed["execution"]["status"] == "failed"
    assert "RuntimeError: the rule's shared alert fields cannot be built" in failed["execution"]["message"]
    assert failed["window"]["searched_to"] is None
    assert {record["execution"]["status"] for record in records.values()} == {"succeeded"}
    alerted = {doc["kibana.alert.rule.rule_id"] for doc in job_env.alert_docs()}
    assert alerted == set(rule_ids) - {broken}
