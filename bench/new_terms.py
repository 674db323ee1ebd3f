"""The new-terms figure of ``make bench``: one new-terms rule over 1,000,000 events (10,000 distinct users,
14 days of history) against the floor of the same aggregations issued directly (``bench/floor_new_terms.py``),
both as processes, interleaved, in one run: wall time and peak RSS.

The window (the last 6 minutes) holds one event of each of the 10,000 users; the other 990,000 events, over
the 14 days before it, hold 9,900 of them (100 events each). So each run checks 10,000 terms against the whole
history and finds the 100 users never seen before: 100 alerts.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import data
from job.rules.model import Rule

if TYPE_CHECKING:
    from bench.suite import Bench, Proc

TERMS = 10_000
NEW = 100
EVENTS = 1_000_000
HISTORY = timedelta(days=14)
WINDOW = timedelta(minutes=6)
REPEAT = 5


def _event(n: int, user: int, moment_ms: int) -> dict[str, Any]:
    return {
        "@timestamp": data.iso(data.NOW - timedelta(milliseconds=moment_ms)),
        "event": {"category": "authentication", "outcome": "success"},
        "user": {"name": f"user-{user:05d}"},
        "host": {"name": f"host-{n % 500:03d}"},
    }


def _events() -> Iterator[dict[str, Any]]:
    window_ms = int(WINDOW.total_seconds() * 1000) - 60_000  # inside the window, a minute from its edge
    for user in range(TERMS):
        yield _event(user, user, 1 + user * window_ms // TERMS)
    old = EVENTS - TERMS
    span_ms = int((HISTORY - WINDOW).total_seconds() * 1000) - 1
    for n in range(old):  # 9,900 users seen before, 100 events each, spread over the 14 days before the window
        yield _event(n, n % (TERMS - NEW), int(WINDOW.total_seconds() * 1000) + 1 + n * span_ms // old)


def rule(index: str) -> Rule:
    return Rule.model_validate(
        {
            "rule_id": "bench-new-terms",
            "name": "First logon of a user in 14 days",
            "description": "A user logged on for the first time in 14 days.",
            "type": "new_terms",
            "language": "kuery",
            "query": "event.category:authentication",
            "index": [index],
            "from": "now-6m",
            "interval": "5m",
            "risk_score": 21,
            "severity": "low",
            "max_signals": 1000,
            "new_terms_fields": ["user.name"],
            "history_window_start": "now-14d",
        }
    )


def new_terms_figure(bench: Bench) -> None:
    from bench.suite import Row, run_process

    events = data.ensure(bench.es, f"bench-v{data.VERSION}-new-terms-{EVENTS}", EVENTS, _events())
    rules = bench.rules_dir("new-terms", [rule(events.index)])
    floor_args = [
        sys.executable,
        "-m",
        "bench.floor_new_terms",
        *("--es", bench.es_url, "--events", events.index, "--field", "user.name"),
        *("--from", data.iso(data.NOW - WINDOW), "--to", data.iso(data.NOW)),
        *("--history", data.iso(data.NOW - HISTORY)),
    ]
    floor_env = dict(os.environ) | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    jobs: list[Proc] = []
    floors: list[Proc] = []
    searches: list[float] = []  # the job's own search time (its execution record)
    for rep in range(REPEAT):

        def job() -> None:
            env = bench.fresh("bench-new-terms", rules, alerts_max="1000")
            jobs.append(bench.job(env))
            assert bench.created("bench-new-terms") == NEW, f"{bench.created('bench-new-terms')} of {NEW} alerts"
            bench.es.indices.refresh(index="bench-new-terms-executions")
            [record] = bench.es.search(index="bench-new-terms-executions")["hits"]["hits"]
            searches.append(record["_source"]["metrics"]["total_search_duration_ms"] / 1000)

        def floor() -> None:
            proc = run_process(floor_args, floor_env, bench.log)
            assert proc.returncode == 0, f"floor failed; see {bench.log}"
            floors.append(proc)

        for step in (job, floor) if rep % 2 == 0 else (floor, job):
            step()
        print(f"  repetition {rep + 1}/{REPEAT} done", flush=True)
    job_s, floor_s = statistics.median(p.seconds for p in jobs), statistics.median(p.seconds for p in floors)
    job_mb, floor_mb = max(p.rss_mb for p in jobs), max(p.rss_mb for p in floors)
    search_s = statistics.median(searches)
    numbers = {
        "job_s": job_s,
        "floor_s": floor_s,
        "job_search_s": search_s,
        "job_rss_mb": job_mb,
        "floor_rss_mb": floor_mb,
    }
    what = f"new_terms, {EVENTS:,} events, {TERMS:,} terms ({NEW} new)"
    bench.rows.append(
        Row(f"{what}: job / floor", f"{job_s:.2f} s / {floor_s:.2f} s = {job_s / floor_s:.2f}", numbers=numbers)
    )
    bench.rows.append(Row(f"{what}: the job's searches (its record)", f"{search_s:.2f} s", numbers=numbers))
    bench.rows.append(Row(f"{what}: peak RSS job / floor", f"{job_mb:.0f} MB / {floor_mb:.0f} MB", numbers=numbers))
