"""The numbers one rule run reports: one definition for the execution record and its index mapping.

Every field of :class:`RunMetrics` is a ``metrics.<name>`` field of the execution record, and its
Elasticsearch type is declared next to it, so a new metric cannot be written without being mapped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from job.window import Gap, isoformat


def _mapped(es_type: str, default: Any = 0) -> Any:
    return field(default=default, metadata={"mapping": {"type": es_type}})


@dataclass
class RunMetrics:
    """What one rule run measured. ``None`` (and an empty list) means "not measured" and is not written."""

    total_search_duration_ms: int = _mapped("long")  # wall time of point-in-time searches
    total_indexing_duration_ms: int = _mapped("long")  # wall time of bulk writes
    pages: int = _mapped("long")
    pit_reopened: int = _mapped("long")  # expired points in time reopened
    hits: int = _mapped("long")  # events the search returned
    alerts_created: int = _mapped("long")
    duplicates_skipped: int = _mapped("long")  # events that already had an alert
    errors: int = _mapped("long")  # alerts Elasticsearch refused (they are dead-lettered)
    dead_lettered: int = _mapped("long")  # events written to the dead-letter index by this run
    dead_letters_skipped: int = _mapped("long")  # events skipped: already in the dead-letter index
    max_alerts: int | None = _mapped("long", None)  # the run's cap
    # Rules with alert suppression only: groups given an alert or folded into one, alerts updated, and
    # events counted into a group's alert rather than alerted on their own (Kibana's alerts_suppressed_count).
    suppression_groups: int | None = _mapped("long", None)
    alerts_updated: int | None = _mapped("long", None)
    suppressed_docs: int | None = _mapped("long", None)
    state_bytes: int | None = _mapped("long", None)  # the size of the state the rule's type kept (its JSON)
    execution_gap_duration_s: int | None = _mapped("long", None)
    gap_range: dict[str, str] | None = _mapped("date_range", None)
    exceptions_expired: list[str] = field(default_factory=list, metadata={"mapping": {"type": "keyword"}})

    def record_gap(self, gap: Gap) -> None:
        self.execution_gap_duration_s = round(gap.duration.total_seconds())
        self.gap_range = {"gte": isoformat(gap.start), "lte": isoformat(gap.end)}

    def to_document(self) -> dict[str, Any]:
        """The ``metrics`` object of the execution record."""
        document: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or value == []:
                continue
            document[item.name] = copy.copy(value)  # the document never shares a list with the metrics
        return document


def metrics_mapping() -> dict[str, Any]:
    """The ``metrics`` part of the execution log's mapping."""
    return {"properties": {item.name: dict(item.metadata["mapping"]) for item in fields(RunMetrics)}}
