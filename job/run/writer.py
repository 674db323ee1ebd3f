"""Writes alert documents: drop the ones that already exist, then bulk ``create`` the rest.

``create`` never overwrites, so a 409 is a duplicate (another run got there first), not an error.
Items rejected with 429 are retried on their own; permanent item errors are counted and logged
with the source event's id, never dropped silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from job.run.retry import RetryPolicy

log = logging.getLogger(__name__)

IDS_CHUNK = 10_000
MAX_ERROR_SAMPLES = 10


@dataclass
class WriteStats:
    created: int = 0
    duplicates: int = 0
    errors: int = 0
    indexing_ms: float = 0.0
    error_samples: list[str] = field(default_factory=list)


def existing_ids(es: Elasticsearch, policy: RetryPolicy, alias: str, ids: Sequence[str]) -> set[str]:
    """Which of these alert ids are already in the alert index (any backing index of the alias)."""
    found: set[str] = set()
    for start in range(0, len(ids), IDS_CHUNK):
        chunk = list(ids[start : start + IDS_CHUNK])
        response = policy.call(
            lambda chunk=chunk: es.search(  # type: ignore[misc]
                index=alias,
                query={"ids": {"values": chunk}},
                size=len(chunk),
                source=False,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        )
        found.update(hit["_id"] for hit in response["hits"]["hits"])
    return found


def _source_id(document: dict[str, Any]) -> str:
    ancestors = document.get("kibana.alert.ancestors") or [{}]
    return f"{ancestors[0].get('index', '?')}/{ancestors[0].get('id', '?')}"


def bulk_create(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    documents: Sequence[tuple[str, dict[str, Any]]],
    stats: WriteStats,
) -> None:
    """Create every ``(id, document)``; update ``stats`` with created, duplicates and errors."""
    pending = list(documents)
    attempt = 0
    started = time.monotonic()
    try:
        while pending:
            attempt += 1
            operations: list[dict[str, Any]] = []
            for doc_id, document in pending:
                operations.append({"create": {"_index": alias, "_id": doc_id}})
                operations.append(document)
            response = policy.call(lambda ops=operations: es.bulk(operations=ops))  # type: ignore[misc]
            rejected: list[tuple[str, dict[str, Any]]] = []
            for (doc_id, document), item in zip(pending, response["items"], strict=True):
                result = item["create"]
                status = result["status"]
                if status == 201:
                    stats.created += 1
                elif status == 409:
                    stats.duplicates += 1
                elif status == 429:
                    rejected.append((doc_id, document))
                else:
                    _count_error(stats, document, status, result.get("error"))
            pending = rejected
            if pending:
                if attempt >= policy.attempts or time.monotonic() - started > policy.max_seconds:
                    for _, document in pending:
                        _count_error(stats, document, 429, {"type": "es_rejected_execution_exception"})
                    return
                wait = policy.backoff(attempt)
                log.warning("%d alerts rejected with 429; retrying them in %.1fs", len(pending), wait)
                time.sleep(wait)
    finally:
        stats.indexing_ms += (time.monotonic() - started) * 1000


def _count_error(stats: WriteStats, document: dict[str, Any], status: int, error: Any) -> None:
    stats.errors += 1
    kind = error.get("type", "unknown") if isinstance(error, dict) else "unknown"
    reason = error.get("reason", "") if isinstance(error, dict) else ""
    line = f"alert for event {_source_id(document)} rejected: HTTP {status} {kind}: {reason}"
    log.error("%s", line)
    if len(stats.error_samples) < MAX_ERROR_SAMPLES:
        stats.error_samples.append(line)
