"""How fast hits become alerts: build_alert over one run's worth (10,000) of Endgame hits, no I/O."""

from __future__ import annotations

import json
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from typing import Any

from job.alerts.build import build_alert
from job.rules.model import Rule

HITS = 10_000


def _rule() -> Rule:
    return Rule.model_validate(
        {
            "rule_id": "571afc56-5ed9-465d-a2a9-045f099f6e7e",
            "name": "Credential Dumping - Detected - Elastic Endgame",
            "description": "Elastic Endgame detected credential dumping.",
            "type": "query",
            "language": "kuery",
            "query": "event.kind:alert and event.module:endgame and event.action:cred_theft_event",
            "index": ["endgame-*"],
            "interval": "10m",
            "from": "now-15m",
            "max_signals": 10000,
            "severity": "high",
            "risk_score": 73,
            "version": 104,
        }
    )


def _hit(n: int) -> dict[str, Any]:
    return {
        "_index": "endgame-2026.03.01",
        "_id": f"doc-{n}",
        "_source": {
            "@timestamp": "2026-03-01T12:03:17.412Z",
            "event": {"kind": "alert", "module": "endgame", "action": "cred_theft_event", "category": ["process"]},
            "endgame": {"metadata": {"type": "detection"}, "serial_event_id": n, "pid": n % 5000},
            "host": {"name": f"host-{n % 200}", "ip": [f"10.0.{n % 250}.{n % 200}"], "os": {"family": "windows"}},
            "user": {"name": f"user-{n % 50}", "domain": "CORP"},
            "process": {
                "name": "procdump64.exe",
                "pid": n,
                "command_line": "procdump64.exe -ma lsass.exe out.dmp",
                "parent": {"name": "cmd.exe", "pid": n + 1},
            },
            "custom": {f"field_{i}": i for i in range(40)},
        },
    }


def _build_all(rule: Rule, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now, execution = datetime.now(UTC), str(uuid.uuid4())
    return [build_alert(rule, hit, now=now, execution_uuid=execution, space_id="default") for hit in hits]


def main() -> None:
    rule, hits = _rule(), [_hit(n) for n in range(HITS)]
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        alerts = _build_all(rule, hits)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    tracemalloc.start()
    kept = _build_all(rule, hits)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = sum(len(json.dumps(a)) for a in alerts) / len(alerts)
    print(
        f"build_alert: {HITS} alerts in {best:.2f} s, best of 3 ({HITS / best:,.0f} alerts/s, "
        f"{best / HITS * 1e6:.0f} us each)"
    )
    print(
        f"build_alert: {peak / 2**20:.1f} MiB peak to hold {len(kept)} alerts; mean alert {size / 1024:.1f} KiB as JSON"
    )
