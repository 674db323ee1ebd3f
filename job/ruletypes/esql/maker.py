"""How an ES|QL row's would-be alert becomes the alert Kibana writes for it (the writer's ``AlertMaker``).

The alert is built as a query rule's (``RunAlerts``: the rule's fields, overrides, reason, ``original_event``)
from the synthetic hit Kibana builds (``alerts.py``): the row's event merged with its columns, or the columns
alone for an aggregating row, under the id Kibana's ES|QL executor computes. So:

* ``kibana.alert.rule.type`` is ``esql`` (category ``ES|QL Rule``, ``siem.esqlRule``), its parameters the
  rule's ``query`` and ``language`` without ``index`` or ``filters``, and ``kibana.alert.rule.indices`` FROM's
  patterns (``job.alerts.rule_fields``);
* an aggregating row's ancestor has an empty id and index, and ``original_time`` only when an ``@timestamp``
  column survived the pipeline;
* the reason reads the merged source, columns first (Kibana 8.x read the event's ``fields``, newer Kibana the
  merged source, which is what an aggregating row has).

A row that cannot become an alert is dead-lettered under its event (an aggregating row, which has none, under
an empty index and its alert id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from job.alerts.build import RunAlerts
from job.rules.model import Rule
from job.ruletypes.esql.alerts import WouldBeAlert
from job.writing.bulk import AlertWrite
from job.writing.writer import AlertMaker, RunWrites


def hit_of(alert: WouldBeAlert) -> dict[str, Any]:
    """The search hit the shared alert builder takes."""
    return {"_index": alert.index, "_id": alert.event_id, "_source": alert.source}


class EsqlAlerts:
    """One alert per would-be alert (:class:`WouldBeAlert`), under Kibana's ES|QL id."""

    def __init__(self, alerts: RunAlerts) -> None:
        self.alerts = alerts

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        alert: WouldBeAlert = item
        body = self.alerts.body(hit_of(alert), now=now, alert_uuid=doc_id)
        return [AlertWrite(doc_id, body, *filed_under(alert))]

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        alert: WouldBeAlert = item
        return *filed_under(alert), f"row {alert.row} of its page: {reason}"


def filed_under(alert: WouldBeAlert) -> tuple[str, str]:
    """The (index, id) a row's dead letter is filed under: its event's, else an empty index and its alert id."""
    return (alert.index, alert.event_id) if alert.event_id else ("", alert.id)


def esql_writes(rule: Rule, space_id: str, execution_uuid: str) -> RunWrites:
    """The writing of an ES|QL run: one alert per row."""

    def make(now: datetime) -> AlertMaker:
        return EsqlAlerts(RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id))

    return RunWrites(rule.rule_id, rule.name, space_id, execution_uuid, make)
