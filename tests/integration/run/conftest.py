"""Fixtures for end-to-end runs of the job against the real node."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from job.cli import main as cli_main

EVENT_MAPPING: dict[str, Any] = {
    "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
    "properties": {"@timestamp": {"type": "date"}, "message": {"type": "text"}},
}

# Strings as keywords, and the ECS fields value lists are matched against with their ECS types.
ECS_EVENT_MAPPING: dict[str, Any] = {
    "dynamic_templates": EVENT_MAPPING["dynamic_templates"],
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "destination": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"}}},
    },
}

RULE_TEMPLATE = """\
[metadata]
creation_date = "2026/01/01"
updated_date = "2026/01/01"
maturity = "production"

[rule]
author = ["Test"]
description = "Matches test credential-theft alerts."
from = "{from_}"
interval = "{interval}"
index = ["{index}"]
language = "kuery"
license = "Elastic License v2"
max_signals = {max_signals}
name = "{name}"
risk_score = 73
rule_id = "{rule_id}"
severity = "high"
type = "query"
query = '''
{query}
'''
{extra}
"""


EQL_RULE_TEMPLATE = """\
[metadata]
creation_date = "2026/01/01"
updated_date = "2026/01/01"
maturity = "production"

[rule]
author = ["Test"]
description = "An EQL test rule."
from = "{from_}"
interval = "{interval}"
index = ["{index}"]
language = "eql"
license = "Elastic License v2"
max_signals = {max_signals}
name = "{name}"
risk_score = 47
rule_id = "{rule_id}"
severity = "medium"
type = "eql"
query = '''
{query}
'''
{extra}
"""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class JobEnv:
    """A sandbox for one test: its own events indices, alert alias, execution log and rules folder."""

    es: Elasticsearch
    prefix: str
    rules_dir: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def alerts(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def executions(self) -> str:
        return f"{self.prefix}-executions"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}-deadletter"

    def events_index(self, suffix: str = "a") -> str:
        return f"{self.prefix}-events-{suffix}"

    @property
    def events_pattern(self) -> str:
        return f"{self.prefix}-events-*"

    def set(self, **settings: str) -> None:
        for key, value in settings.items():
            self.monkeypatch.setenv(f"DETECTION_{key.upper()}", value)

    def write_rule(
        self,
        *,
        rule_id: str | None = None,
        name: str = "Test credential theft",
        query: str = "event.kind:alert and event.action:cred_theft_event",
        interval: str = "10m",
        from_: str = "now-15m",
        max_signals: int = 10000,
        extra: str = "",
        index: str | None = None,
    ) -> str:
        rule_id = rule_id or str(uuid.uuid4())
        text = RULE_TEMPLATE.format(
            from_=from_,
            interval=interval,
            index=index or self.events_pattern,
            max_signals=max_signals,
            name=name,
            rule_id=rule_id,
            query=query,
            extra=extra,
        )
        (self.rules_dir / f"{rule_id}.toml").write_text(text)
        return rule_id

    def write_eql_rule(
        self,
        query: str,
        *,
        rule_id: str | None = None,
        name: str = "Test EQL rule",
        interval: str = "10m",
        from_: str = "now-15m",
        max_signals: int = 10000,
        extra: str = "",
        index: str | None = None,
    ) -> str:
        """An EQL rule file (``extra``: more TOML under ``[rule]``, e.g. ``event_category_override``)."""
        rule_id = rule_id or str(uuid.uuid4())
        text = EQL_RULE_TEMPLATE.format(
            from_=from_,
            interval=interval,
            index=index or self.events_pattern,
            max_signals=max_signals,
            name=name,
            rule_id=rule_id,
            query=query,
            extra=extra,
        )
        (self.rules_dir / f"{rule_id}.toml").write_text(text)
        return rule_id

    def index_events(
        self, events: list[dict[str, Any]], suffix: str = "a", mapping: dict[str, Any] | None = None
    ) -> None:
        index = self.events_index(suffix)
        if not self.es.indices.exists(index=index):
            self.es.indices.create(index=index, mappings=mapping or EVENT_MAPPING)
        actions = [
            {
                "_op_type": "create",
                "_index": index,
                "_id": event.pop("_id", None) or str(uuid.uuid4()),
                "_source": event,
            }
            for event in events
        ]
        helpers.bulk(self.es, actions, refresh=True, chunk_size=2000)

    def run(self, *args: str) -> int:
        """``detection-job run --all``: every rule runs now, due or not (``--rule`` picks its own)."""
        return cli_main(["run", *([] if "--rule" in args else ["--all"]), *args])

    def run_due(self, *args: str) -> int:
        """``detection-job run``: only the rules that are due."""
        return cli_main(["run", *args])

    def alert_docs(self, rule_id: str | None = None) -> list[dict[str, Any]]:
        self.es.indices.refresh(index=self.alerts)
        query = {"term": {"kibana.alert.rule.rule_id": rule_id}} if rule_id else {"match_all": {}}
        hits = helpers.scan(self.es, index=self.alerts, query={"query": query})
        return [hit["_source"] | {"_id": hit["_id"]} for hit in hits]

    def executions_docs(self, rule_id: str | None = None) -> list[dict[str, Any]]:
        self.es.indices.refresh(index=self.executions)
        query = {"term": {"rule.rule_id": rule_id}} if rule_id else {"match_all": {}}
        response = self.es.search(index=self.executions, query=query, sort=[{"execution.start": "asc"}], size=1000)
        return [hit["_source"] for hit in response["hits"]["hits"]]


def cred_event(moment: datetime, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@timestamp": iso(moment),
        "event": {"kind": "alert", "action": "cred_theft_event", "category": "process"},
        "host": {"name": "ws-01"},
        "user": {"name": "alice"},
        "process": {"name": "lsass-reader.exe"},
    }
    event.update(fields)
    return event


def sandbox(es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> JobEnv:
    """A :class:`JobEnv` on the cluster ``es_url`` names (``es`` is a client of it): no other ``DETECTION_*``
    setting, indices named after ``prefix``, rules in ``tmp_path``, which is the working directory."""
    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    env = JobEnv(es=es, prefix=prefix, rules_dir=rules_dir, monkeypatch=monkeypatch)
    monkeypatch.chdir(tmp_path)
    env.set(
        es_hosts=es_url,
        alerts_index=env.alerts,
        executions_index=env.executions,
        dead_letter_index=env.dead_letters,
        rules_dir=str(rules_dir),
        alerts_max="100000",
        retry_max_seconds="30",
        # Runs install their indices, as `make demo` does; the least-privilege tests turn this off.
        auto_setup="true",
    )
    return env


@pytest.fixture
def job_env(
    es: Elasticsearch, es_url: str, index_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JobEnv]:
    env = sandbox(es, es_url, index_name, tmp_path, monkeypatch)
    yield env
    es.options(ignore_status=404).indices.delete_index_template(name=f"{env.alerts}-template")
