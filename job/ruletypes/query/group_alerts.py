"""The alert of a group of events (query-rule suppression): the alert of its earliest event, plus the
suppression fields, under the group's own id, and the run's writing of those alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from job.alerts.build import RunAlerts
from job.alerts.suppression import Group, suppression_fields
from job.jsoncodec import document_bytes
from job.rules.model import Rule
from job.ruletypes.contract import RunTools
from job.writing.bulk import AlertWrite
from job.writing.writer import AlertMaker, RunWrites


class GroupAlerts:
    """The alert of a group: the alert of its earliest event, plus the suppression fields, under the group's id."""

    def __init__(self, rule: Rule, alerts: RunAlerts, space_id: str) -> None:
        self.rule = rule
        self.alerts = alerts
        self.space_id = space_id

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        group: Group = item
        alert = self.alerts.build(group.event, now=now)
        alert.update(suppression_fields(group, self.rule.rule_id, self.space_id))
        alert["kibana.alert.uuid"] = doc_id
        event = group.event
        return [AlertWrite(doc_id, document_bytes(alert), str(event["_index"]), str(event["_id"]))]

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        """A group is dead-lettered under its earliest event."""
        group: Group = item
        terms = ", ".join(f"{name}={value!r}" for name, value in group.terms)
        why = f"the alert of the group {terms} ({group.count} events): {reason}"
        return str(group.event["_index"]), str(group.event["_id"]), why


def group_writes(rule: Rule, tools: RunTools) -> RunWrites:
    """The writing of a suppressed run: one alert per group."""
    space_id = tools.settings.space_id

    def make(now: datetime) -> AlertMaker:
        alerts = RunAlerts.for_run(rule, now=now, execution_uuid=tools.execution_uuid, space_id=space_id)
        return GroupAlerts(rule, alerts, space_id)

    return RunWrites(rule.rule_id, rule.name, space_id, tools.execution_uuid, make)
