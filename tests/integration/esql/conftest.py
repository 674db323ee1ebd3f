"""Fixtures of the ES|QL tests: a client of the session's ES|QL node, event indices on it, and a sandbox that
runs the job on it (rule files in a folder, ``detection-job run``, alerts and records read back)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.integration.run.conftest import JobEnv, iso, sandbox

JSON = {
    "accept": "application/vnd.elasticsearch+json; compatible-with=8",
    "content-type": "application/vnd.elasticsearch+json; compatible-with=8",
}
MAPPING = {
    "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"ingested": {"type": "date"}}},
        "message": {"type": "keyword"},
    },
}

ESQL_RULE = """\
[metadata]
creation_date = "2026/01/01"
updated_date = "2026/01/01"
maturity = "production"

[rule]
author = ["Test"]
description = "An ES|QL test rule."
from = "{from_}"
interval = "{interval}"
language = "esql"
license = "Elastic License v2"
max_signals = {max_signals}
name = "{name}"
risk_score = 47
rule_id = "{rule_id}"
severity = "medium"
type = "esql"
query = '''
{query}
'''
{extra}
"""


def minutes_ago(minutes: float, now: datetime | None = None) -> str:
    return iso((now or datetime.now(UTC)) - timedelta(minutes=minutes))


def state(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ES|QL state an execution record keeps (its excluded events, and the query with MV_EXPAND)."""
    kept = record["type_state"]
    assert kept["type"] == "esql"
    return dict(kept["value"])


class EsqlJob:
    """A :class:`JobEnv` on the ES|QL node, with ES|QL rule files."""

    def __init__(self, env: JobEnv) -> None:
        self.env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def rule(
        self,
        query: str,
        *,
        rule_id: str | None = None,
        name: str = "ES|QL test rule",
        max_signals: int = 100,
        from_: str = "now-1h",
        interval: str = "5m",
        extra: str = "",
    ) -> str:
        """Write an ES|QL rule file; ``{events}`` in ``query`` is the events index pattern."""
        rule_id = rule_id or f"esql-{uuid.uuid4().hex[:8]}"
        text = ESQL_RULE.format(
            from_=from_,
            interval=interval,
            max_signals=max_signals,
            name=name,
            rule_id=rule_id,
            query=query.format(events=self.env.events_pattern),
            extra=extra,
        )
        path: Path = self.env.rules_dir / f"{rule_id}.toml"
        path.write_text(text)
        return rule_id

    def index(self, events: Sequence[Mapping[str, Any]], suffix: str = "a") -> str:
        """Index events (ids ``e0``, ``e1``, ... unless they carry ``_id``), strings as keywords."""
        index = self.env.events_index(suffix)
        es = self.env.es
        if not es.indices.exists(index=index):
            es.indices.create(index=index, mappings=MAPPING)
        actions = [
            {
                "_op_type": "create",
                "_index": index,
                "_id": event.get("_id", f"e{number}"),
                "_source": {key: value for key, value in event.items() if key != "_id"},
            }
            for number, event in enumerate(events)
        ]
        helpers.bulk(es, actions)
        es.indices.refresh(index=index)
        return index

    def records(self, rule_id: str) -> list[dict[str, Any]]:
        return list(self.env.executions_docs(rule_id))

    def last(self, rule_id: str) -> dict[str, Any]:
        return self.records(rule_id)[-1]

    def alerts(self, rule_id: str) -> list[dict[str, Any]]:
        return self.env.alert_docs(rule_id)


@pytest.fixture(scope="session")
def esql(esql_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(esql_url, request_timeout=60)
    yield client
    client.close()


@pytest.fixture
def esql_job(esql: Elasticsearch, esql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EsqlJob]:
    """A sandbox on the ES|QL node (its indices deleted afterwards)."""
    prefix = f"esqljob-{uuid.uuid4().hex[:10]}"
    env = sandbox(esql, esql_url, prefix, tmp_path, monkeypatch)
    yield EsqlJob(env)
    esql.options(ignore_status=404).indices.delete(index=f"{prefix}*", expand_wildcards="all")
    esql.options(ignore_status=404).indices.delete_index_template(name=f"{env.alerts}-template")


@pytest.fixture
def events(esql: Elasticsearch) -> Iterator[Callable[..., str]]:
    """Makes an index ``esql-<random>`` (strings as keywords) holding the given events, ids ``e0``, ``e1``, ..."""
    made: list[str] = []

    def make(docs: Sequence[Mapping[str, Any]], mapping: Mapping[str, Any] = MAPPING) -> str:
        name = f"esql-{uuid.uuid4().hex[:12]}"
        esql.indices.create(index=name, mappings=dict(mapping))
        actions = [{"_op_type": "create", "_index": name, "_id": f"e{i}", "_source": d} for i, d in enumerate(docs)]
        helpers.bulk(esql, actions, refresh=True)
        made.append(name)
        return name

    yield make
    for name in made:
        esql.indices.delete(index=name)
