"""The one bulk helper of the job: alerts, execution records and dead letters are all written through
:func:`send`, and alerts through :func:`bulk_create` on top of it.

:func:`send` takes pre-serialized items and returns one :class:`Answer` per item, in order. It retries
what is worth retrying:

* the whole request on a transient error (:class:`job.client.retry.RetryPolicy`: timeouts, connection errors,
  502/503/504, 429 for the request);
* the items answered 429 (the cluster's write queue is full), on their own, with backoff, within the
  policy's attempts and time; an item still answered 429 after that comes back as 429;
* a request refused as too large (413) is split in two; an item refused alone comes back as 413.

An item is *ambiguous* when an earlier attempt of its request may have been applied: the request timed out
or its connection broke after it was sent (anything retried but a 429, which Elasticsearch answers before
applying anything). A 409 on an ambiguous ``create`` may be that very write.

Alerts are created, never overwritten: 201 is created; 409 is a duplicate (another run got there first),
unless ambiguous: then it may be this run's own write answered late, and :func:`bulk_create` hands it back
for the caller to tell (the shared writer reads the alert's execution id), so the cap and the counts stay
exact. Items still rejected with 429 end the run (:class:`BulkRejected`: the cluster is overloaded, the next
run tries again); every other item error comes back as :class:`Refused`, with the source event's index and
id, so the event is dead-lettered, never dropped silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from job.client.retry import RetryPolicy
from job.errors import JobError
from job.text.jsoncodec import document_bytes
from job.text.redact import short_line

log = logging.getLogger(__name__)

# Hits one search may return (Elasticsearch's index.max_result_window default).
RESULT_WINDOW = 10_000
MAX_ERROR_SAMPLES = 10
# One bulk request carries at most this many bytes (a bigger item goes alone); far below Elasticsearch's
# default http.max_content_length (100 MB).
BULK_MAX_BYTES = 8 * 1024 * 1024
_ANSWER_FIELDS = ("status", "error", "_index")


class BulkRejected(JobError):
    """Items still rejected with 429 (the cluster's write queue is full) after every retry."""


@dataclass(frozen=True, slots=True)
class Item:
    """One bulk item: its action line and, but for a delete, its document line (both serialized)."""

    action: bytes
    body: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.action) + (len(self.body) if self.body is not None else 0)


@dataclass(frozen=True, slots=True)
class Answer:
    """What Elasticsearch answered for one item (the last attempt's answer)."""

    status: int
    error_type: str = ""
    reason: str = ""
    index: str | None = None  # the concrete index that holds the document
    ambiguous: bool = False  # an earlier attempt of its request may have been applied

    @property
    def line(self) -> str:
        return f"HTTP {self.status} {self.error_type or 'unknown'}: {short_line(self.reason, 300)}"


def _answer(result: Any, ambiguous: bool) -> Answer:
    status = result.get("status", 500) if isinstance(result, dict) else 500
    error = result.get("error") if isinstance(result, dict) else None
    stored = result.get("_index") if isinstance(result, dict) else None
    if not isinstance(stored, str) and isinstance(error, dict):  # a 409's error names the index that holds it
        stored = error.get("index")
    return Answer(
        status=status if isinstance(status, int) else 500,
        error_type=str(error.get("type", "unknown")) if isinstance(error, dict) else "",
        reason=str(error.get("reason", "")) if isinstance(error, dict) else "",
        index=stored if isinstance(stored, str) else None,
        ambiguous=ambiguous,
    )


def _request(
    es: Elasticsearch, policy: RetryPolicy, items: Sequence[Item], index: str | None, filter_path: list[str] | None
) -> tuple[list[Any], bool]:
    """One request with the policy's retries; its items' results and whether an earlier attempt may have been
    applied."""
    lines: list[bytes] = []
    for item in items:
        lines.append(item.action)
        if item.body is not None:
            lines.append(item.body)
    ambiguous = False

    def attempt() -> Any:
        nonlocal ambiguous
        try:
            # Pre-serialized lines: the client's ndjson serializer sends bytes as they are.
            return es.bulk(index=index, operations=lines, filter_path=filter_path)  # type: ignore[arg-type]
        except Exception as exc:
            if not (isinstance(exc, ApiError) and exc.meta.status in (413, 429)):
                ambiguous = True  # sent, maybe applied, no answer
            raise

    response = policy.call(attempt)
    results = [next(iter(entry.values())) for entry in response.get("items", [])]
    if len(results) != len(items):
        raise JobError(f"the bulk answer holds {len(results)} items for {len(items)} sent")
    return results, ambiguous


def _chunks(items: Sequence[Item], max_bytes: int) -> Iterator[list[int]]:
    """Positions of ``items`` in requests of at most ``max_bytes`` (an item bigger than that goes alone)."""
    chunk: list[int] = []
    size = 0
    for position, item in enumerate(items):
        if chunk and size + item.size > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(position)
        size += item.size
    if chunk:
        yield chunk


def send(
    es: Elasticsearch,
    policy: RetryPolicy,
    items: Sequence[Item],
    *,
    index: str | None = None,
    op: str = "*",
    max_bytes: int = BULK_MAX_BYTES,
) -> list[Answer]:
    """Send ``items`` (``index``: the default index of their actions; ``op``: their action, when they all
    have the same, which the request's ``filter_path`` then names); one answer per item, in order. Raises
    what the request raises once its retries are spent (never for one item's error)."""
    answers: list[Answer | None] = [None] * len(items)
    pending = list(_chunks(items, max_bytes))
    filter_path = [f"items.{op}.{name}" for name in _ANSWER_FIELDS]
    while pending:
        chunk = pending.pop(0)
        try:
            _send_chunk(es, policy, items, chunk, answers, index, filter_path)
        except ApiError as exc:
            if exc.meta.status != 413:
                raise
            if len(chunk) == 1:
                answers[chunk[0]] = Answer(413, "request_entity_too_large", "the document is too large")
            else:  # the cluster takes less than we send: halve
                pending[:0] = [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
    return [answer if answer is not None else Answer(500, "unknown", "no answer") for answer in answers]


def _send_chunk(
    es: Elasticsearch,
    policy: RetryPolicy,
    items: Sequence[Item],
    chunk: list[int],
    answers: list[Answer | None],
    index: str | None,
    filter_path: list[str],
) -> None:
    """One request's items, their 429s retried on their own until answered otherwise or out of attempts."""
    pending = chunk
    ambiguous = dict.fromkeys(chunk, False)
    attempt = 0
    started = time.monotonic()
    while pending:
        attempt += 1
        results, unsure = _request(es, policy, [items[i] for i in pending], index, filter_path)
        rejected: list[int] = []
        for position, result in zip(pending, results, strict=True):
            ambiguous[position] = ambiguous[position] or unsure
            answer = _answer(result, ambiguous[position])
            answers[position] = answer
            if answer.status == 429:
                rejected.append(position)
        pending = rejected
        if not pending:
            return
        if attempt >= policy.attempts or time.monotonic() - started > policy.max_seconds:
            log.warning("%d bulk items still rejected with 429 after %d attempts", len(pending), attempt)
            return
        wait = policy.backoff(attempt)
        log.warning("%d bulk items rejected with 429; retrying them in %.1fs", len(pending), wait)
        time.sleep(wait)


# Alerts.


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
class Created:
    """What :func:`bulk_create` did: the alerts created by this request, the ones Elasticsearch refused, and
    the ones answered 409 after a retry of a request whose first answer was lost (created by this request or
    by another run: not counted yet)."""

    created: list[AlertWrite] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    ambiguous: list[AlertWrite] = field(default_factory=list)


@dataclass
class WriteStats:
    created: int = 0
    duplicates: int = 0
    errors: int = 0
    indexing_ms: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    def add(self, other: WriteStats) -> None:
        """Count ``other``'s writes here too."""
        self.created += other.created
        self.duplicates += other.duplicates
        self.errors += other.errors
        self.indexing_ms += other.indexing_ms
        self.error_samples.extend(other.error_samples[: MAX_ERROR_SAMPLES - len(self.error_samples)])


def existing_ids(
    es: Elasticsearch, policy: RetryPolicy, indices: Sequence[str], ids: Sequence[str]
) -> dict[str, set[str]]:
    """Which of these ids exist in ``indices`` (aliases allowed), and in which concrete indices. Each search
    asks for at most :data:`RESULT_WINDOW` hits (an id may be found once per index), whatever the number of ids."""
    found: dict[str, set[str]] = {}
    chunk_size = max(1, RESULT_WINDOW // max(1, len(indices)))
    for start in range(0, len(ids), chunk_size):
        chunk = list(ids[start : start + chunk_size])
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


def bulk_create(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    writes: Sequence[AlertWrite],
    stats: WriteStats,
    stats_of: Callable[[AlertWrite], WriteStats] | None = None,
) -> Created:
    """Create every alert; update ``stats`` (the counts of each alert go to ``stats_of(alert)`` when given:
    the alerts of many rule runs in one request); say which were created and which refused. Raises
    :class:`BulkRejected` for alerts still answered 429 after every retry."""
    counts = stats_of or (lambda write: stats)
    result = Created()
    started = time.monotonic()
    try:
        action = {"create": {"_index": alias, "_id": ""}}
        items = []
        for write in writes:
            action["create"]["_id"] = write.doc_id
            items.append(Item(document_bytes(action), write.body))
        answers = send(es, policy, items, op="create")
    finally:
        stats.indexing_ms += (time.monotonic() - started) * 1000
    rejected = 0
    for write, answer in zip(writes, answers, strict=True):
        if answer.status == 201:
            counts(write).created += 1
            result.created.append(write)
        elif answer.status == 409 and answer.ambiguous:
            result.ambiguous.append(write)
        elif answer.status == 409:
            counts(write).duplicates += 1
        elif answer.status == 429:
            rejected += 1
        else:
            result.refused.append(_refuse(counts(write), write, answer))
    if rejected:
        raise BulkRejected(f"{rejected} alerts still rejected with HTTP 429 after {policy.attempts} attempts")
    return result


def _refuse(stats: WriteStats, write: AlertWrite, answer: Answer) -> Refused:
    stats.errors += 1
    source = short_line(f"{write.event_index}/{write.event_id}", 300)
    log.error("alert for event %s rejected: %s", source, answer.line)
    if len(stats.error_samples) < MAX_ERROR_SAMPLES:
        stats.error_samples.append(f"{source}: {answer.line}")
    return Refused(write, answer.status, answer.line)
