"""The alerts of the rule types whose would-be alert is a search hit plus fields of the type's own: a threshold
group (its synthetic hit, and ``kibana.alert.threshold_result``), a new term (its earliest event, and
``kibana.alert.new_terms``), each maybe with the suppression fields.

The alert is the ordinary alert of the hit (:class:`job.alerts.build.RunAlerts`: the same overrides, reason,
building block and rule fields), plus the type's fields, under the candidate's id (the type's own, not the id
of an event alert). A candidate that cannot become an alert is dead-lettered under its hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from job.alerts.build import RunAlerts
from job.alerts.suppression import Suppression
from job.rules.model import Rule
from job.text.jsoncodec import document_bytes
from job.writing.bulk import AlertWrite
from job.writing.writer import MAX_ALERTS_SUPPRESSED_WARNING, MAX_ALERTS_WARNING, AlertMaker, RunWrites

UUID: Final = "kibana.alert.uuid"


def max_alerts_warning(suppressing: bool) -> str:
    """Kibana's warning when a run found more alerts than its cap (the variant of a rule that suppresses)."""
    return MAX_ALERTS_SUPPRESSED_WARNING if suppressing else MAX_ALERTS_WARNING


@dataclass(frozen=True, slots=True)
class HitAlert:
    """What a candidate's alert is built from: a search hit (``_index``, ``_id``, ``_source``) and the fields
    the rule type adds (they win over the hit's)."""

    hit: Mapping[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)
    # What a dead letter of it says besides the reason (the group, the term): one line.
    about: str = ""

    def suppressed(self, suppression: Suppression) -> HitAlert:
        """This alert with its group's suppression fields (after the group's alerts folded into it)."""
        return replace(self, fields={**self.fields, **suppression.fields()})


class HitAlerts:
    """The :class:`job.writing.writer.AlertMaker` of :class:`HitAlert` candidates."""

    def __init__(self, alerts: RunAlerts) -> None:
        self.alerts = alerts

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        alert: HitAlert = item
        document = self.alerts.build(alert.hit, now=now)
        document.update(alert.fields)
        document[UUID] = doc_id
        hit = alert.hit
        return [AlertWrite(doc_id, document_bytes(document), str(hit["_index"]), str(hit["_id"]))]

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        alert: HitAlert = item
        why = f"the alert of {alert.about}: {reason}" if alert.about else reason
        return str(alert.hit["_index"]), str(alert.hit["_id"]), why


def for_hit_alerts(rule: Rule, space_id: str, execution_uuid: str) -> RunWrites:
    """The writing of a run whose candidates are :class:`HitAlert` s."""

    def make(now: datetime) -> AlertMaker:
        return HitAlerts(RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id))

    return RunWrites(rule.rule_id, rule.name, space_id, execution_uuid, make)
