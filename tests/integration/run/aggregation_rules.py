"""What the threshold and new-terms run tests share: a sandbox for a whole test module (one events index, one
alert alias, one execution log: each test works in a time range of its own), rule files of both types, and
reading back alerts and records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.integration.run.conftest import ECS_EVENT_MAPPING, JobEnv, iso, sandbox
from tests.rule_search import bulk_index

HEADER = """\
[metadata]
creation_date = "2025/01/01"
updated_date = "2025/01/01"
maturity = "production"
{metadata}
[rule]
author = ["Test"]
description = "A test rule."
from = "{from_}"
interval = "5m"
index = ["{index}"]
language = "kuery"
name = "{name}"
risk_score = 21
rule_id = "{rule_id}"
severity = "low"
max_signals = {max_signals}
type = "{kind}"
{keys}
query = '''
{query}
'''
"""


def threshold_rule(
    env: JobEnv,
    rule_id: str,
    fields: list[str],
    value: int,
    *,
    cardinality: tuple[str, int] | None = None,
    query: str = "event.category:authentication",
    max_signals: int = 100,
    keys: str = "",
    tables: str = "",
    metadata: str = "",
    name: str = "R",
    from_: str = "now-6m",
) -> str:
    """Write a threshold rule (``from = "now-6m"``, every 5 minutes) over the sandbox's events; its rule_id."""
    table = f"\n[rule.threshold]\nfield = {json.dumps(fields)}\nvalue = {value}\n"
    if cardinality is not None:
        table += f'[[rule.threshold.cardinality]]\nfield = "{cardinality[0]}"\nvalue = {cardinality[1]}\n'
    return _write(env, rule_id, "threshold", query, max_signals, keys, table + tables, metadata, name, from_)


def new_terms_rule(
    env: JobEnv,
    rule_id: str,
    fields: list[str],
    history_window_start: str,
    *,
    query: str = "event.category:authentication",
    max_signals: int = 100,
    keys: str = "",
    tables: str = "",
    name: str = "N",
    from_: str = "now-6m",
) -> str:
    """Write a new-terms rule in detection-rules' form (``from = "now-6m"``, every 5 minutes); its rule_id."""
    table = (
        f'\n[rule.new_terms]\nfield = "new_terms_fields"\nvalue = {json.dumps(fields)}\n'
        f'[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "{history_window_start}"\n'
    )
    return _write(env, rule_id, "new_terms", query, max_signals, keys, table + tables, "", name, from_)


def _write(
    env: JobEnv,
    rule_id: str,
    kind: str,
    query: str,
    max_signals: int,
    keys: str,
    tables: str,
    metadata: str,
    name: str,
    from_: str,
) -> str:
    text = HEADER.format(
        metadata=metadata,
        from_=from_,
        index=env.events_pattern,
        name=name,
        rule_id=rule_id,
        max_signals=max_signals,
        kind=kind,
        keys=keys,
        query=query,
    )
    (env.rules_dir / f"{rule_id}.toml").write_text(text + tables)
    return rule_id


def auth(moment: datetime, **fields: Any) -> dict[str, Any]:
    """An authentication event at ``moment`` with ``fields``."""
    return {"@timestamp": iso(moment), "event": {"category": "authentication", "outcome": "failure"}, **fields}


def index_many(env: JobEnv, events: Iterable[dict[str, Any]]) -> None:
    """Index many events into the sandbox's events index, refreshing once at the end."""
    bulk_index(env.es, ({"_index": env.events_index(), "_source": event} for event in events))


def run(env: JobEnv, now: datetime, *rule_ids: str) -> int:
    """``run --rule ID ... --now NOW``."""
    return env.run(*(arg for rule_id in rule_ids for arg in ("--rule", rule_id)), "--now", iso(now))


def last_record(env: JobEnv, rule_id: str) -> dict[str, Any]:
    records = env.executions_docs(rule_id)
    assert records, f"no record of {rule_id}"
    return records[-1]


@pytest.fixture(scope="module")
def module_env(es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobEnv]:
    """One sandbox for a test module: its events index (ECS mapping), alerts, log and rules folder."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        tmp: Path = tmp_path_factory.mktemp("aggregations")
        env = sandbox(es, es_url, prefix, tmp, monkeypatch)
        es.indices.create(index=env.events_index(), mappings=ECS_EVENT_MAPPING)
        yield env
    es.options(ignore_status=404).indices.delete_index_template(name=f"{env.alerts}-template")
    existing = es.indices.get(index=f"{prefix}*", expand_wildcards="all", ignore_unavailable=True)
    if existing:
        es.indices.delete(index=",".join(existing))
