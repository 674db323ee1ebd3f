"""Where the shared writer's output goes: Elasticsearch, or (``preview``) a sink that keeps it.

The writer (:mod:`job.writing.writer`) dedupes and builds every candidate the same way whatever the sink; the
sink answers which alerts exist (the dedupe's search), creates the alerts, stores the dead letters, and does
the reads and conditional updates of suppressed alerts (:class:`job.writing.suppressed.SuppressionStore`).
:data:`ELASTICSEARCH` is what every run uses; :class:`job.writing.collect.Collector` keeps the documents
instead and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.writing import deadletter
from job.writing.bulk import AlertWrite, Created, WriteStats, bulk_create, existing_ids
from job.writing.deadletter import DeadLetter
from job.writing.suppressed import SuppressionStore


class Sink(Protocol):
    """The alerts index and the dead-letter index as a run sees them: what exists, and where built alerts, dead
    letters and the updates of suppressed alerts go."""

    def existing(
        self, es: Elasticsearch, policy: RetryPolicy, alerts: str, dead_letters: str, ids: Sequence[str]
    ) -> dict[str, set[str]]:
        """Which of these alert ids exist as alerts or dead letters, and in which concrete indices
        (:func:`job.writing.bulk.existing_ids`)."""
        ...

    def create(
        self,
        es: Elasticsearch,
        policy: RetryPolicy,
        alias: str,
        writes: Sequence[AlertWrite],
        stats: WriteStats,
        stats_of: Callable[[AlertWrite], WriteStats],
    ) -> Created:
        """Create the alerts (:func:`job.writing.bulk.bulk_create`'s arguments and answer)."""
        ...

    def dead_letter(self, es: Elasticsearch, policy: RetryPolicy, index: str, letters: Sequence[DeadLetter]) -> None:
        """Store the dead letters (:func:`job.writing.deadletter.write`)."""
        ...

    def suppression_store(
        self, es: Elasticsearch, policy: RetryPolicy, alias: str, rule_id: str, space_id: str
    ) -> SuppressionStore:
        """The reads and conditional updates of one rule's suppressed alerts."""
        ...

    def refresh(self, es: Elasticsearch, policy: RetryPolicy, alias: str) -> None:
        """Make the alerts written so far searchable, before a type reads them back."""
        ...


class ElasticsearchSink:
    """Writes to Elasticsearch: what every run does."""

    def existing(
        self, es: Elasticsearch, policy: RetryPolicy, alerts: str, dead_letters: str, ids: Sequence[str]
    ) -> dict[str, set[str]]:
        return existing_ids(es, policy, [alerts, dead_letters], ids)

    def create(
        self,
        es: Elasticsearch,
        policy: RetryPolicy,
        alias: str,
        writes: Sequence[AlertWrite],
        stats: WriteStats,
        stats_of: Callable[[AlertWrite], WriteStats],
    ) -> Created:
        return bulk_create(es, policy, alias, writes, stats, stats_of)

    def dead_letter(self, es: Elasticsearch, policy: RetryPolicy, index: str, letters: Sequence[DeadLetter]) -> None:
        deadletter.write(es, policy, index, letters)

    def suppression_store(
        self, es: Elasticsearch, policy: RetryPolicy, alias: str, rule_id: str, space_id: str
    ) -> SuppressionStore:
        return SuppressionStore(es, policy, alias, rule_id, space_id)

    def refresh(self, es: Elasticsearch, policy: RetryPolicy, alias: str) -> None:
        policy.call(lambda: es.indices.refresh(index=alias, ignore_unavailable=True))


ELASTICSEARCH: Sink = ElasticsearchSink()
