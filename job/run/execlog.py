"""The execution log: one document per rule per run, and the only state the job keeps.

A run reads back, per rule, how far earlier runs searched (``window.searched_to``); nothing is kept
on local disk, so a CronJob pod can die at any moment and the next run picks up from the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from job.run.retry import RetryPolicy
from job.run.window import Gap, Window, isoformat, parse_timestamp

Status = Literal["succeeded", "partial failure", "failed"]
STATUS_ORDER: dict[str, int] = {"succeeded": 0, "partial failure": 20, "failed": 30}
SUCCESS_MESSAGE = "Rule execution completed successfully"

EXECUTIONS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},
        "space_id": {"type": "keyword"},
        "rule": {
            "properties": {
                "rule_id": {"type": "keyword"},
                "name": {"type": "keyword"},
                "version": {"type": "long"},
                "source": {"type": "keyword"},
            }
        },
        "execution": {
            "properties": {
                "uuid": {"type": "keyword"},
                "start": {"type": "date"},
                "end": {"type": "date"},
                "scheduled_at": {"type": "date"},
                "status": {"type": "keyword"},
                "status_order": {"type": "long"},
                "message": {"type": "text"},
                "warnings": {"type": "text"},
                "errors": {"type": "text"},
            }
        },
        "window": {
            "properties": {
                "from": {"type": "date"},
                "to": {"type": "date"},
                "searched_to": {"type": "date"},
            }
        },
        "metrics": {
            "properties": {
                "total_search_duration_ms": {"type": "long"},
                "total_indexing_duration_ms": {"type": "long"},
                "pages": {"type": "long"},
                "pit_reopened": {"type": "long"},
                "hits": {"type": "long"},
                "alerts_created": {"type": "long"},
                "duplicates_skipped": {"type": "long"},
                "errors": {"type": "long"},
                "max_alerts": {"type": "long"},
                "execution_gap_duration_s": {"type": "long"},
                "gap_range": {"type": "date_range"},
                "exceptions_expired": {"type": "keyword"},
            }
        },
    },
}


@dataclass
class Execution:
    """What one rule run did. Filled in by the runner, turned into a document at the end."""

    rule_id: str
    rule_name: str
    rule_version: int
    rule_source: str
    space_id: str
    uuid: str
    start: datetime
    end: datetime | None = None
    window: Window | None = None
    searched_to: datetime | None = None
    gap: Gap | None = None
    scheduled_at: datetime | None = None  # the run's logical time (its ``now``); the rule's cadence counts from it
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """Kibana's order: errors make it failed, warnings a partial failure."""
        if self.errors:
            return "failed"
        return "partial failure" if self.warnings else "succeeded"

    @property
    def message(self) -> str:
        if self.errors:
            return ", ".join(self.errors)
        return ", ".join(self.warnings) if self.warnings else SUCCESS_MESSAGE

    def to_document(self) -> dict[str, Any]:
        metrics = dict(self.metrics)
        if self.gap is not None:
            metrics["execution_gap_duration_s"] = round(self.gap.duration.total_seconds())
            metrics["gap_range"] = {"gte": isoformat(self.gap.start), "lte": isoformat(self.gap.end)}
        end = self.end or self.start
        return {
            "@timestamp": isoformat(end),
            "space_id": self.space_id,
            "rule": {
                "rule_id": self.rule_id,
                "name": self.rule_name,
                "version": self.rule_version,
                "source": self.rule_source,
            },
            "execution": {
                "uuid": self.uuid,
                "start": isoformat(self.start),
                "end": isoformat(end),
                "scheduled_at": isoformat(self.scheduled_at) if self.scheduled_at else None,
                "status": self.status,
                "status_order": STATUS_ORDER[self.status],
                "message": self.message,
                "warnings": list(self.warnings),
                "errors": list(self.errors),
            },
            "window": {
                "from": isoformat(self.window.start) if self.window else None,
                "to": isoformat(self.window.end) if self.window else None,
                "searched_to": isoformat(self.searched_to) if self.searched_to else None,
            },
            "metrics": metrics,
        }


def ensure_index(es: Elasticsearch, policy: RetryPolicy, index: str) -> None:
    """Create the executions index with its mapping, or add fields a newer version maps (safe to race)."""
    if policy.call(lambda: es.indices.exists(index=index)):
        policy.call(
            lambda: es.options(ignore_status=400).indices.put_mapping(
                index=index, properties=EXECUTIONS_MAPPING["properties"]
            )
        )
        return
    policy.call(
        lambda: es.options(ignore_status=400).indices.create(
            index=index, mappings=EXECUTIONS_MAPPING, settings={"index.mapping.ignore_malformed": True}
        )
    )


def last_searched_to(
    es: Elasticsearch, policy: RetryPolicy, index: str, rule_id: str, space_id: str
) -> datetime | None:
    """The furthest point up to which some earlier run of this rule searched everything."""
    response = policy.call(
        lambda: es.search(
            index=index,
            query={
                "bool": {
                    "filter": [
                        {"term": {"rule.rule_id": rule_id}},
                        {"term": {"space_id": space_id}},
                        {"exists": {"field": "window.searched_to"}},
                    ]
                }
            },
            sort=[{"window.searched_to": {"order": "desc"}}],
            size=1,
            source_includes=["window.searched_to"],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
    )
    hits = response["hits"]["hits"]
    return parse_timestamp(hits[0]["_source"]["window"]["searched_to"]) if hits else None


def write(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution) -> None:
    """Index the record (id = execution uuid, so a retried write cannot double it)."""
    document = execution.to_document()
    policy.call(lambda: es.index(index=index, id=execution.uuid, document=document, refresh=True))
