"""The benchmark's data on the local node: Endgame-style events, the rule files that search them, and
fresh indices per measurement.

Event indices are kept between runs of ``make bench`` (their names carry the count and a version; one
whose count differs is made again), so a second run does not index them again. The rules search
``endgame-bench-*`` (the shipped rules' ``endgame-*`` narrowed to the benchmark's indices), so the
figures do not depend on other data on the node.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

from job.config.settings import SHIPPED_RULES_DIR
from job.rules import load_rules, rule_to_toml
from job.rules.model import Rule

VERSION = 1
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # every measured run's --now
RULES_PATTERN = "endgame-bench-*"
SEED_RULE_ID = "571afc56-5ed9-465d-a2a9-045f099f6e7e"  # Credential Dumping - Detected - Elastic Endgame
EVENT_MAPPING: dict[str, Any] = {
    "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
    "properties": {"@timestamp": {"type": "date"}, "message": {"type": "text"}},
}
_QUERY_PARTS = re.compile(r"endgame\.metadata\.type:(\w+).*event\.action:(\w+)|event\.action:(\w+)", re.S)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def shipped_rules() -> list[Rule]:
    return sorted(load_rules([SHIPPED_RULES_DIR]).rules, key=lambda rule: rule.rule_id)


def _kind_and_action(rule: Rule) -> tuple[str, str]:
    """What an event needs to match a shipped rule: ``endgame.metadata.type`` and ``event.action``."""
    match = _QUERY_PARTS.search(rule.query)
    assert match is not None, rule.query
    if match.group(3):
        return "detection", match.group(3)
    return match.group(1), match.group(2)


def endgame_event(n: int, moment: datetime, *, kind: str, action: str, user: str | None = None) -> dict[str, Any]:
    """An Endgame alert event of about 1 KB, as the Endgame integration writes them."""
    return {
        "@timestamp": iso(moment),
        "event": {"kind": "alert", "module": "endgame", "action": action, "category": ["process"], "type": ["info"]},
        "endgame": {
            "metadata": {"type": kind},
            "event_subtype_full": action,
            "serial_event_id": n,
            "pid": 1000 + n % 5000,
        },
        "host": {"name": f"ws-{n % 97:03d}", "ip": [f"10.0.{n % 200}.{n % 250}"], "os": {"family": "windows"}},
        "user": {"name": user or f"user-{n % 31}", "domain": "CORP"},
        "process": {
            "name": "procdump64.exe",
            "pid": 4000 + n,
            "command_line": "procdump64.exe -accepteula -ma lsass.exe C:\\Windows\\Temp\\out.dmp",
            "executable": "C:\\Tools\\procdump64.exe",
            "parent": {"name": "cmd.exe", "pid": 3000 + n},
        },
        "agent": {"type": "endgame", "id": "5e1c8f3a-0a59-4d5f-8b0e-2f7c1d9f6a10"},
        "message": f"Endgame {kind}: {action} on ws-{n % 97:03d}",
    }


def background_event(n: int, moment: datetime) -> dict[str, Any]:
    """An event no rule matches (a process start)."""
    event = endgame_event(n, moment, kind="detection", action="process_started")
    event["event"]["kind"] = "event"
    return event


def _spread(n: int, count: int) -> datetime:
    """Inside every rule's window at ``NOW`` (``now-15m`` .. ``now``), spread evenly."""
    return NOW - timedelta(minutes=14) + timedelta(seconds=13 * 60 * n / max(count, 1))


@dataclass(frozen=True)
class EventSet:
    index: str
    count: int


def ensure(es: Elasticsearch, index: str, count: int, events: Iterator[dict[str, Any]]) -> EventSet:
    if es.indices.exists(index=index):
        es.indices.refresh(index=index)
        if es.count(index=index)["count"] == count:
            return EventSet(index, count)
        es.indices.delete(index=index)
    es.indices.create(index=index, mappings=EVENT_MAPPING, settings={"number_of_replicas": 0, "refresh_interval": "-1"})
    actions = ({"_index": index, "_id": f"e{n}", "_source": event} for n, event in enumerate(events))
    for ok, item in helpers.streaming_bulk(es, actions, chunk_size=5000, raise_on_error=True, request_timeout=300):
        assert ok, item
    es.indices.put_settings(index=index, settings={"refresh_interval": None})
    es.indices.refresh(index=index)
    es.indices.forcemerge(index=index, max_num_segments=1, request_timeout=600)
    return EventSet(index, count)


def matching_events(es: Elasticsearch, count: int) -> EventSet:
    """``count`` events that the seed rule (credential dumping detected) matches, outside ``endgame-*``."""
    events = (endgame_event(n, _spread(n, count), kind="detection", action="cred_theft_event") for n in range(count))
    return ensure(es, f"bench-v{VERSION}-matching-{count}", count, events)


def day_events(es: Elasticsearch, count: int) -> EventSet:
    """``count`` events the seed rule matches, spread evenly over the 24 hours before ``NOW`` (a backfill's and a
    preview's range: 144 windows of the rule's 10 minutes)."""
    start = NOW - timedelta(hours=24)
    events = (
        endgame_event(n, start + timedelta(seconds=86_400 * n / count), kind="detection", action="cred_theft_event")
        for n in range(count)
    )
    return ensure(es, f"bench-v{VERSION}-day-{count}", count, events)


def background(es: Elasticsearch, count: int) -> EventSet:
    """``count`` events no rule matches."""
    return ensure(
        es,
        f"bench-v{VERSION}-background-{count}",
        count,
        (background_event(n, _spread(n, count)) for n in range(count)),
    )


def generated_rules(count: int) -> list[Rule]:
    """``count`` variations of the shipped rules: rule k narrows shipped rule k mod 15 to one user, so each
    has a query of its own; :func:`rule_events` gives rule k (k mod 6) matching events (0 to 5)."""
    shipped = shipped_rules()
    rules = []
    for k in range(count):
        base = shipped[k % len(shipped)]
        rules.append(
            base.model_copy(
                update={
                    "rule_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-rule-{k}")),
                    "name": f"{base.name} #{k:04d}",
                    "query": f'({base.query.strip()}) and user.name:"bench-{k:04d}"',
                    "index": (RULES_PATTERN,),
                }
            )
        )
    return rules


def rule_events(es: Elasticsearch, count: int) -> EventSet:
    """The events of :func:`generated_rules`: (k mod 6) per rule k, each also matching shipped rule k mod 15."""
    shipped = shipped_rules()
    kinds = [_kind_and_action(rule) for rule in shipped]
    rng = random.Random(VERSION)

    def events() -> Iterator[dict[str, Any]]:
        n = 0
        for k in range(count):
            kind, action = kinds[k % len(kinds)]
            for _ in range(k % 6):
                yield endgame_event(
                    n, _spread(rng.randrange(1000), 1000), kind=kind, action=action, user=f"bench-{k:04d}"
                )
                n += 1

    total = sum(k % 6 for k in range(count))
    return ensure(es, f"endgame-bench-v{VERSION}-rules-{count}", total, events())


def write_rules(folder: Path, rules: list[Rule]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.toml"):
        old.unlink()
    for n, rule in enumerate(rules):
        (folder / f"rule_{n:05d}.toml").write_text(rule_to_toml(rule), encoding="utf-8")


def seed_rule(index: str, cap: int) -> Rule:
    [rule] = [rule for rule in shipped_rules() if rule.rule_id == SEED_RULE_ID]
    return rule.model_copy(update={"index": (index,), "max_signals": cap})


def reset(es: Elasticsearch, prefix: str) -> None:
    """Delete every index of one measurement (alerts, execution log, dead letters)."""
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
