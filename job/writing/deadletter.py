"""The dead-letter index: one document per event that could not become an alert.

An event whose alert cannot be built (anything raising while building or serializing it) or that
Elasticsearch refuses (a bulk item error other than 409, and 429 once retried) is written here, and
the run's window still advances past it: one event never blinds a rule. The document id is the
event's alert id (a hash of the event index, event id, rule id and space), so a rerun never adds a
second entry (runs write with ``create``, which is all the runtime role allows; a 409 means the entry
is there), and a run's duplicate check finds alerts and dead letters with one ``ids`` query.
``detection-job deadletter list`` shows the entries, ``deadletter retry`` re-attempts them
(:mod:`job.writing.deadletter_retry`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.alerts.ids import alert_id
from job.client.retry import RetryPolicy, describe
from job.errors import JobError
from job.text.jsoncodec import document_bytes
from job.text.redact import short_line
from job.window import isoformat, parse_timestamp
from job.writing import bulk

PAGE = 1000

MAX_REASON = 500

Stage = Literal["build", "index"]

DEAD_LETTER_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},
        "space_id": {"type": "keyword"},
        "alert_id": {"type": "keyword"},
        "rule": {"properties": {"rule_id": {"type": "keyword"}, "name": {"type": "keyword", "ignore_above": 1024}}},
        "event": {
            "properties": {
                "index": {"type": "keyword", "ignore_above": 1024},
                "id": {"type": "keyword", "ignore_above": 1024},
            }
        },
        "execution": {"properties": {"uuid": {"type": "keyword"}}},
        "stage": {"type": "keyword"},
        "reason": {"type": "text"},
    },
}


class DeadLetterWriteError(JobError):
    """Dead-letter entries could not be written: the run must not advance past their events."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that did not become an alert, and why."""

    event_index: str
    event_id: str
    rule_id: str
    rule_name: str
    space_id: str
    execution_uuid: str
    stage: Stage  # "build": the alert could not be built; "index": Elasticsearch refused it
    reason: str
    time: datetime

    @property
    def id(self) -> str:
        return alert_id(self.event_index, self.event_id, self.rule_id, self.space_id)

    def to_document(self) -> dict[str, Any]:
        return {
            "@timestamp": isoformat(self.time),
            "space_id": self.space_id,
            "alert_id": self.id,
            "rule": {"rule_id": self.rule_id, "name": self.rule_name},
            "event": {"index": self.event_index, "id": self.event_id},
            "execution": {"uuid": self.execution_uuid},
            "stage": self.stage,
            "reason": short_line(self.reason, MAX_REASON),
        }

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> DeadLetter:
        rule, event = source.get("rule") or {}, source.get("event") or {}
        stage = source.get("stage")
        return cls(
            event_index=str(event.get("index", "")),
            event_id=str(event.get("id", "")),
            rule_id=str(rule.get("rule_id", "")),
            rule_name=str(rule.get("name", "")),
            space_id=str(source.get("space_id", "")),
            execution_uuid=str((source.get("execution") or {}).get("uuid", "")),
            stage="index" if stage == "index" else "build",
            reason=str(source.get("reason", "")),
            time=parse_timestamp(str(source.get("@timestamp"))),
        )


def ensure_index(es: Elasticsearch, policy: RetryPolicy, index: str) -> None:
    """Create the dead-letter index with its mapping, or add the fields a newer version maps (safe to race: a
    400 for an index another process just created is ignored)."""
    if policy.call(lambda: es.indices.exists(index=index)):
        properties = DEAD_LETTER_MAPPING["properties"]
        policy.call(lambda: es.options(ignore_status=400).indices.put_mapping(index=index, properties=properties))
        return
    policy.call(lambda: es.options(ignore_status=400).indices.create(index=index, mappings=DEAD_LETTER_MAPPING))


def _bulk(es: Elasticsearch, policy: RetryPolicy, index: str, items: list[bulk.Item], fine: int = 404) -> list[str]:
    """Send the items; the reasons of the items that failed (status ``fine`` is not a failure)."""
    answers = bulk.send(es, policy, items, index=index)
    return [answer.line for answer in answers if answer.status >= 300 and answer.status != fine]


def write(
    es: Elasticsearch, policy: RetryPolicy, index: str, letters: Sequence[DeadLetter], *, overwrite: bool = False
) -> None:
    """Create one entry per letter (an entry that exists already is stored: a 409 is fine), or with ``overwrite``
    replace it (``deadletter retry``, with the new reason); raise :class:`DeadLetterWriteError` unless all are
    stored. Creating only takes the ``create_doc`` privilege, which is all a run has."""
    if not letters:
        return
    op = "index" if overwrite else "create"
    items = [
        bulk.Item(document_bytes({op: {"_id": letter.id}}), document_bytes(letter.to_document())) for letter in letters
    ]
    try:
        # Rare path: never let a bulk write create the index with dynamic mappings (``setup`` creates it).
        if not policy.call(lambda: es.indices.exists(index=index)):
            raise DeadLetterWriteError(f'the dead-letter index {index} does not exist: run "detection-job setup"')
        failures = _bulk(es, policy, index, items, fine=404 if overwrite else 409)
    except (ApiError, TransportError) as exc:
        raise DeadLetterWriteError(f"could not write {len(letters)} dead-letter entries: {describe(exc)}") from None
    if failures:
        raise DeadLetterWriteError(f"could not write {len(failures)} dead-letter entries: {failures[0]}")


def delete(es: Elasticsearch, policy: RetryPolicy, index: str, ids: Sequence[str]) -> None:
    """Delete these entries (an entry already gone is fine)."""
    if not ids:
        return
    failures = _bulk(es, policy, index, [bulk.Item(document_bytes({"delete": {"_id": doc_id}})) for doc_id in ids])
    if failures:
        raise DeadLetterWriteError(f"could not delete {len(failures)} dead-letter entries: {failures[0]}")


def scan(
    es: Elasticsearch, policy: RetryPolicy, index: str, *, space_id: str, rule_id: str | None = None
) -> Iterator[DeadLetter]:
    """Every entry of the space (of one rule, if given), oldest first, as the index was when the scan began
    (a point in time): entries rewritten while scanning are not seen twice."""
    if not policy.call(lambda: es.indices.exists(index=index)):
        return
    filters: list[dict[str, Any]] = [{"term": {"space_id": space_id}}]
    if rule_id is not None:
        filters.append({"term": {"rule.rule_id": rule_id}})
    pit = str(policy.call(lambda: es.open_point_in_time(index=index, keep_alive="5m"))["id"])
    after: list[Any] | None = None
    try:
        while True:
            response = policy.call(
                lambda after=after, pit=pit: es.search(  # type: ignore[misc]
                    pit={"id": pit, "keep_alive": "5m"},
                    query={"bool": {"filter": filters}},
                    sort=[{"@timestamp": "asc"}, {"alert_id": "asc"}],
                    size=PAGE,
                    search_after=after,
                )
            )
            pit = str(response.get("pit_id", pit))
            hits = response["hits"]["hits"]
            for hit in hits:
                yield DeadLetter.from_source(hit["_source"])
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]
    finally:
        with contextlib.suppress(ApiError, TransportError):
            es.close_point_in_time(id=pit)
