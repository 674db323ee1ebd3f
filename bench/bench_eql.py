"""EQL figures of ``make bench`` (parts of ``bench/suite.py``):

* ``eql_vs_query``: an EQL event rule against the query rule of the same selectivity (the seed rule's
  query, the same 10,000 matching events), each run by a fresh process on fresh indices, interleaved;
* ``eql_sequences``: a 2-stage ``sequence by host.id with maxspan=1m`` over 50,000, 200,000 and 500,000
  stage events, 1% completing a sequence: time and peak RSS, which must stay flat as the events grow (the
  matcher holds the candidates within maxspan, never the window); and the memory test of 1,000,000 stage-0
  events none of which completes, against 50,000 such events.

Stage events come at a constant rate (100 a second, over 20,011 hosts), so the candidates in flight within
maxspan are as many whatever the window's length: what grows with the count is only the window.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elasticsearch import Elasticsearch

from bench import data

if TYPE_CHECKING:
    from bench.suite import Bench, Proc

RATE = 100  # stage events a second
HOSTS = 20_011  # a host's next event comes 200 s later: beyond maxspan
SEQUENCE_SIZES = (50_000, 200_000, 500_000)
NONE_COMPLETING = (50_000, 1_000_000)
EVENT_RULES_SIZE = 10_000
SEQUENCE = (
    'sequence by host.id with maxspan=1m [process where process.name == "a.exe"] '
    '[process where process.name == "b.exe"]'
)
EQL_EVENT_QUERY = (
    'any where event.kind == "alert" and event.module == "endgame" and endgame.metadata.type == "detection" and '
    '(event.action == "cred_theft_event" or endgame.event_subtype_full == "cred_theft_event")'
)
RULE = """\
[metadata]
creation_date = "2026/01/01"
maturity = "production"
updated_date = "2026/01/01"

[rule]
author = ["bench"]
description = "bench"
from = "now-3h"
index = ["{index}"]
interval = "5m"
language = "eql"
license = "Elastic License v2"
max_signals = 100000
name = "{name}"
risk_score = 47
rule_id = "{rule_id}"
severity = "medium"
type = "eql"
query = '''
{query}
'''
"""


def _stage_events(count: int, completing: bool) -> Iterator[dict[str, Any]]:
    """``count`` stage events at RATE a second ending a minute before NOW; with ``completing``, every 100th
    is the second stage of the event before it (a sequence), the others start one that never completes."""
    start = data.NOW - timedelta(seconds=count / RATE + 60)
    for n in range(count):
        second = completing and n % 100 == 99
        host = (n - 1) % HOSTS if second else n % HOSTS
        yield {
            "@timestamp": data.iso(start + timedelta(seconds=n / RATE)),
            "event": {"category": "process"},
            "host": {"id": f"h{host}"},
            "process": {"name": "b.exe" if second else "a.exe"},
        }


def stage_events(es: Elasticsearch, count: int, *, completing: bool) -> data.EventSet:
    kind = "1pct" if completing else "none"
    return data.ensure(es, f"bench-v{data.VERSION}-stages-{kind}-{count}", count, _stage_events(count, completing))


def _rules(bench: Bench, name: str, index: str, query: str, rule_id: str) -> Path:
    folder = bench.work / name
    folder.mkdir(exist_ok=True)
    (folder / "rule.toml").write_text(RULE.format(index=index, name=name, rule_id=rule_id, query=query))
    return folder


def eql_vs_query(bench: Bench) -> None:
    from bench.suite import Row

    events = data.matching_events(bench.es, EVENT_RULES_SIZE)
    query_rules = bench.rules_dir("query-rule", [data.seed_rule(events.index, EVENT_RULES_SIZE)])
    eql_rules = _rules(bench, "eql-rule", events.index, EQL_EVENT_QUERY, data.SEED_RULE_ID)
    timings: dict[str, list[float]] = {"query": [], "eql": []}
    folders = {"query": query_rules, "eql": eql_rules}
    for rep in range(5):
        for kind in (("query", "eql") if rep % 2 == 0 else ("eql", "query")):
            prefix = f"bench-{kind}-rule"
            env = bench.fresh(prefix, folders[kind], alerts_max=str(EVENT_RULES_SIZE))
            timings[kind].append(bench.job(env).seconds)
            created = bench.created(prefix)
            assert created == EVENT_RULES_SIZE, f"the {kind} rule wrote {created} alerts"
    query, eql = (statistics.median(timings[kind]) for kind in ("query", "eql"))
    bench.rows.append(
        Row(
            f"EQL event rule / query rule, {EVENT_RULES_SIZE:,} alerts each",
            f"{eql:.2f} s / {query:.2f} s = {eql / query:.2f}",
            "<= 1.5",
            eql / query <= 1.5,
            {"eql_s": eql, "query_s": query},
        )
    )


def _sequence_run(bench: Bench, events: data.EventSet, name: str) -> tuple[Proc, int]:
    rules = _rules(bench, name, events.index, SEQUENCE, f"e91c0000-0000-4000-8000-{events.count:012d}")
    prefix = f"bench-{name}"
    env = bench.fresh(prefix, rules, alerts_max="100000", page_size="10000")
    proc = bench.job(env)
    return proc, bench.created(prefix)


def eql_sequences(bench: Bench) -> None:
    from bench.suite import Row

    procs: dict[int, Proc] = {}
    for count in SEQUENCE_SIZES:
        events = stage_events(bench.es, count, completing=True)
        runs = [_sequence_run(bench, events, f"sequence-{count}") for _ in range(3)]
        for _, created in runs:
            assert created == count // 100 * 3, f"{created} alerts for {count // 100} sequences"
        procs[count] = min((proc for proc, _ in runs), key=lambda proc: proc.seconds)
        procs[count].rss_mb = max(proc.rss_mb for proc, _ in runs)
    middle = procs[200_000]
    bench.rows.append(
        Row(
            "2-stage sequence by host.id, maxspan=1m: 200,000 stage events, 1% completing",
            f"{middle.seconds:.2f} s, peak RSS {middle.rss_mb:.0f} MB",
            numbers={"seconds": middle.seconds, "rss_mb": middle.rss_mb},
        )
    )
    small, large = procs[SEQUENCE_SIZES[0]], procs[SEQUENCE_SIZES[-1]]
    bench.rows.append(
        Row(
            "sequence peak RSS: 500,000 / 50,000 stage events",
            f"{large.rss_mb:.0f} MB / {small.rss_mb:.0f} MB ({large.seconds:.1f} s / {small.seconds:.1f} s)",
            "within 15%",
            large.rss_mb <= small.rss_mb * 1.15,
            {"rss_500k_mb": large.rss_mb, "rss_50k_mb": small.rss_mb},
        )
    )
    none: dict[int, Proc] = {}
    for count in NONE_COMPLETING:
        events = stage_events(bench.es, count, completing=False)
        proc, created = _sequence_run(bench, events, f"stage0-{count}")
        assert created == 0
        none[count] = proc
    few, many = (none[count] for count in NONE_COMPLETING)
    bench.rows.append(
        Row(
            "memory: 1,000,000 stage-0 events, none completing / 50,000",
            f"{many.rss_mb:.0f} MB / {few.rss_mb:.0f} MB ({many.seconds:.1f} s / {few.seconds:.1f} s)",
            "within 15%",
            many.rss_mb <= few.rss_mb * 1.15,
            {"rss_1m_mb": many.rss_mb, "rss_50k_mb": few.rss_mb, "seconds_1m": many.seconds},
        )
    )
