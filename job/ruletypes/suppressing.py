"""Alert suppression as Kibana's persistence layer applies it to threshold and new_terms alerts, pure.

Each would-be alert carries ``kibana.alert.instance.id`` (its group), ``suppression.start``/``.end`` and
``docs_count``. Alerts of one group found in one run fold into the earliest (``suppressAlertsInMemory``), and
with a duration an open alert of the group folds in what the run found (``getUpdatedSuppressionBoundaries``):
``docs_count`` grows by the folded alert's own count plus one, the end moves later, ``last_detected`` to now,
and the start moves earlier only when the open alert was written by this very run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from job.alerts.objecthash import object_hash
from job.ruletypes.aggsearch import WouldBeAlert
from job.window import isoformat

INSTANCE_ID: Final = "kibana.alert.instance.id"
TERMS: Final = "kibana.alert.suppression.terms"
START: Final = "kibana.alert.suppression.start"
END: Final = "kibana.alert.suppression.end"
DOCS_COUNT: Final = "kibana.alert.suppression.docs_count"
LAST_DETECTED: Final = "kibana.alert.last_detected"


def instance_id(terms: Any, rule_id: str, space_id: str) -> str:
    """``kibana.alert.instance.id``: object-hash of ``[terms, rule, space]`` (the ``rule_id`` where Kibana has the
    rule's saved-object id)."""
    return object_hash([terms, rule_id, space_id])


@dataclass(frozen=True, slots=True)
class Suppression:
    """The suppression fields of one would-be alert."""

    instance: str
    terms: list[dict[str, Any]]
    start: datetime
    end: datetime
    docs_count: int = 0

    def fields(self) -> dict[str, Any]:
        return {
            INSTANCE_ID: self.instance,
            TERMS: self.terms,
            START: isoformat(self.start),
            END: isoformat(self.end),
            DOCS_COUNT: self.docs_count,
        }


@dataclass(frozen=True, slots=True)
class SuppressedAlert:
    """A would-be alert and its suppression fields (added to ``alert.fields`` by :meth:`with_fields`)."""

    alert: WouldBeAlert
    suppression: Suppression

    def with_fields(self) -> WouldBeAlert:
        return replace(self.alert, fields={**self.alert.fields, **self.suppression.fields()})


def suppress_in_memory(
    alerts: Sequence[SuppressedAlert],
) -> tuple[list[SuppressedAlert], list[SuppressedAlert]]:
    """Kibana's ``suppressAlertsInMemory``: sorted by suppression start (stable), the first alert of each group
    stays and counts every later one (plus their own counts) and takes the latest end; returns (the alerts that
    stay, the alerts folded into them)."""
    kept: dict[str, Suppression] = {}
    order: list[tuple[str, SuppressedAlert]] = []
    folded: list[SuppressedAlert] = []
    for item in sorted(alerts, key=lambda item: item.suppression.start):
        group = item.suppression.instance
        first = kept.get(group)
        if first is None:
            kept[group] = item.suppression
            order.append((group, item))
            continue
        kept[group] = replace(
            first,
            docs_count=first.docs_count + item.suppression.docs_count + 1,
            end=max(first.end, item.suppression.end),
        )
        folded.append(item)
    return [replace(item, suppression=kept[group]) for group, item in order], folded


@dataclass(frozen=True, slots=True)
class OpenGroupAlert:
    """An alert of the group that may still fold in new ones (not closed, started within the duration), as read."""

    start: datetime | None
    end: datetime | None
    docs_count: int
    execution_uuid: str | None


def fold_update(existing: OpenGroupAlert, new: Suppression, *, now: datetime, execution_uuid: str) -> dict[str, Any]:
    """The partial document that folds the alert ``new`` would be into ``existing``."""
    document: dict[str, Any] = {LAST_DETECTED: isoformat(now), DOCS_COUNT: existing.docs_count + new.docs_count + 1}
    if existing.end is None or existing.end < new.end:
        document[END] = isoformat(new.end)
    if existing.execution_uuid == execution_uuid and existing.start is not None and existing.start >= new.start:
        document[START] = isoformat(new.start)
    return document
