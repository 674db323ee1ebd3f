"""End-to-end speed and memory of one rule run on the local node.

Indexes N Endgame-style events that all match the seed rule's query, runs the rule once and
reports alerts per second, search and indexing time, and the process's peak memory. Every run
starts from fresh indices. ``make bench`` points ``DETECTION_ES_HOSTS`` at the local node.
"""

from __future__ import annotations

import os
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch, helpers

from job.rules import load_rule
from job.run.alert_template import template_name
from job.run.install import install
from job.run.retry import RetryPolicy
from job.run.runner import RunContext, run_rule
from job.settings import SHIPPED_RULES_DIR, load_settings

SIZES = (2_000, 20_000)
SEED_RULE = SHIPPED_RULES_DIR / "credential_access_endgame_cred_dumping_detected.toml"


def _events(count: int, now: datetime) -> list[dict[str, object]]:
    return [
        {
            "@timestamp": (now - timedelta(seconds=1 + i % 500)).isoformat().replace("+00:00", "Z"),
            "event": {"kind": "alert", "module": "endgame", "action": "cred_theft_event", "category": "process"},
            "endgame": {"metadata": {"type": "detection"}, "event_subtype_full": "cred_theft_event"},
            "host": {"name": f"host-{i % 97}", "ip": f"10.0.{i % 200}.{i % 250}"},
            "user": {"name": f"user-{i % 31}"},
            "process": {"name": "procdump.exe", "pid": i, "command_line": "procdump -ma lsass.exe out.dmp"},
            "message": "credential theft detected " * 4,
        }
        for i in range(count)
    ]


def bench_one(es: Elasticsearch, count: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    events_index = f"endgame-{prefix}"
    settings = load_settings(alerts_index=f"{prefix}-alerts", executions_index=f"{prefix}-executions", alerts_max=count)
    now = datetime.now(UTC)
    es.indices.create(
        index=events_index,
        mappings={"dynamic_templates": [{"s": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}]},
    )
    helpers.bulk(es, ({"_index": events_index, "_source": e} for e in _events(count, now)), refresh=True)
    rule = load_rule(SEED_RULE).model_copy(update={"index": (events_index,), "max_signals": count})
    policy = RetryPolicy.from_settings(settings)
    install(es, policy, settings.alerts_index, settings.executions_index)
    try:
        started = time.perf_counter()
        execution = run_rule(RunContext(es=es, settings=settings, now=now, policy=policy), rule)
        elapsed = time.perf_counter() - started
        created = execution.metrics.alerts_created
        print(
            f"{count:>7} events: {created} alerts in {elapsed:.2f}s ({created / elapsed:,.0f} alerts/s); "
            f"search {execution.metrics.total_search_duration_ms} ms, "
            f"indexing {execution.metrics.total_indexing_duration_ms} ms, "
            f"pages {execution.metrics.pages}, status {execution.status}"
        )
    finally:
        es.indices.delete(index=f"{events_index},{prefix}-*", ignore_unavailable=True)
        es.options(ignore_status=404).indices.delete_index_template(name=template_name(settings.alerts_index))


def main() -> None:
    es = Elasticsearch(os.environ.get("DETECTION_ES_HOSTS", "http://127.0.0.1:9200"), request_timeout=120)
    for count in SIZES:
        bench_one(es, count)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the job process: {peak_mb:.0f} MB (page size {load_settings().page_size})")
