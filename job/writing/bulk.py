"""Writes alert documents: find the ones that already exist, then bulk ``create`` the rest.

``create`` never overwrites, so a 409 is a duplicate (another run got there first), not an error.
Items rejected with 429 are retried on their own; if they are still rejected once the retries are
spent, :class:`BulkRejected` ends the run (the cluster is overloaded: the next run tries again).
Every other item error is returned to the caller as :class:`Refused`, with the source event's index
and id, so the event is dead-lettered, never dropped silently.

Alerts arrive serialized (:func:`job.jsoncodec.document_bytes`), so one that cannot be serialized
is that event's problem alone, and requests are cut at :data:`BULK_MAX_BYTES`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from elasticsearch import ApiError, Elasticsearch

from job.errors import JobError
from job.jsoncodec import document_bytes
from job.retry import RetryPolicy
from job.writing.deadletter import one_line

log = logging.getLogger(__name__)

IDS_CHUNK = 10_000
MAX_ERROR_SAMPLES = 10
# One bulk request carries at most this many bytes of alerts (a bigger alert goes alone); far below
# Elasticsearch's default http.max_content_length (100 MB). A request refused as too large (413) is
# split in two; an alert refused alone is dead-lettered.
BULK_MAX_BYTES = 8 * 1024 * 1024


class BulkRejected(JobError):
    """Alerts still rejected with 429 (the cluster's write queue is full) after every retry."""


@dataclass(frozen=True, slots=True)
class AlertWrite:
    """One alert to create: its id, its serialized document, and the event it comes from."""

    doc_id: str
    body: bytes
    event_index: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """An alert Elasticsearch refused, and its one-line reason."""

    write: AlertWrite
    status: int
    reason: str


@dataclass
class WriteStats:
    created: int = 0
    duplicates: int = 0
    errors: int = 0
    indexing_ms: float = 0.0
    error_samples: list[str] = field(default_factory=list)


def existing_ids(
    es: Elasticsearch, policy: RetryPolicy, indices: Sequence[str], ids: Sequence[str]
) -> dict[str, set[str]]:
    """Which of these ids exist in ``indices`` (aliases allowed), and in which concrete indices."""
    found: dict[str, set[str]] = {}
    for start in range(0, len(ids), IDS_CHUNK):
        chunk = list(ids[start : start + IDS_CHUNK])
        response = policy.call(
            lambda chunk=chunk: es.search(  # type: ignore[misc]
                index=list(indices),
                query={"ids": {"values": chunk}},
                size=len(chunk) * len(indices),
                source=False,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        )
        for hit in response["hits"]["hits"]:
            found.setdefault(hit["_id"], set()).add(hit["_index"])
    return found


def _chunks(writes: Sequence[AlertWrite]) -> Iterator[list[AlertWrite]]:
    chunk: list[AlertWrite] = []
    size = 0
    for write in writes:
        if chunk and size + len(write.body) > BULK_MAX_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(write)
        size += len(write.body)
    if chunk:
        yield chunk


def bulk_create(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    writes: Sequence[AlertWrite],
    stats: WriteStats,
    stats_of: Callable[[AlertWrite], WriteStats] | None = None,
) -> list[Refused]:
    """Create every alert; update ``stats`` (the counts of each alert go to ``stats_of(alert)`` when given:
    the alerts of many rule runs in one request); return the ones Elasticsearch refused."""
    counts = stats_of or (lambda write: stats)
    refused: list[Refused] = []
    started = time.monotonic()
    try:
        pending = list(_chunks(writes))
        while pending:
            chunk = pending.pop(0)
            try:
                refused.extend(_create_chunk(es, policy, alias, chunk, counts))
            except ApiError as exc:
                if exc.meta.status != 413:
                    raise
                if len(chunk) == 1:
                    only = chunk[0]
                    refused.append(
                        _refuse(counts(only), only, 413, "request_entity_too_large", "the alert is too large")
                    )
                else:  # the cluster takes less than we send: halve
                    pending[:0] = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
    finally:
        stats.indexing_ms += (time.monotonic() - started) * 1000
    return refused


def _create_chunk(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    chunk: list[AlertWrite],
    counts: Callable[[AlertWrite], WriteStats],
) -> list[Refused]:
    refused: list[Refused] = []
    pending = chunk
    attempt = 0
    started = time.monotonic()
    while pending:
        attempt += 1
        operations: list[bytes] = []
        for write in pending:
            operations.append(document_bytes({"create": {"_index": alias, "_id": write.doc_id}}))
            operations.append(write.body)
        # Pre-serialized lines: the client's ndjson serializer sends bytes as they are.
        response = policy.call(lambda ops=operations: es.bulk(operations=ops))  # type: ignore[misc]
        rejected: list[AlertWrite] = []
        for write, item in zip(pending, response["items"], strict=True):
            result = item["create"]
            status = result["status"]
            if status == 201:
                counts(write).created += 1
            elif status == 409:
                counts(write).duplicates += 1
            elif status == 429:
                rejected.append(write)
            else:
                error = result.get("error")
                kind = error.get("type", "unknown") if isinstance(error, dict) else "unknown"
                reason = error.get("reason", "") if isinstance(error, dict) else ""
                refused.append(_refuse(counts(write), write, status, kind, str(reason)))
        pending = rejected
        if pending:
            if attempt >= policy.attempts or time.monotonic() - started > policy.max_seconds:
                raise BulkRejected(f"{len(pending)} alerts still rejected with HTTP 429 after {attempt} attempts")
            wait = policy.backoff(attempt)
            log.warning("%d alerts rejected with 429; retrying them in %.1fs", len(pending), wait)
            time.sleep(wait)
    return refused


def _refuse(stats: WriteStats, write: AlertWrite, status: int, kind: str, reason: str) -> Refused:
    stats.errors += 1
    line = f"HTTP {status} {kind}: {reason}"
    source = one_line(f"{write.event_index}/{write.event_id}", 300)
    log.error("alert for event %s rejected: %s", source, one_line(line, 300))
    if len(stats.error_samples) < MAX_ERROR_SAMPLES:
        stats.error_samples.append(f"{source}: {one_line(line, 300)}")
    return Refused(write, status, line)
