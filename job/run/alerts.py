"""One search hit in, one Kibana-shaped alert document out (pure: clock, ids and space are arguments).

The document follows Kibana's security alerts (alerts-as-data): the event's own ``_source`` (minus any
``kibana``/``signal``/``threshold_result`` fields it carried, so an event can never forge alert fields, and
minus ``event.kind``) merged with flat dotted alert keys such as ``"kibana.alert.rule.name"`` that win over
anything in the event. docs/alert-document.md lists every field and where it comes from.

Every hit is treated as an *event*: ancestors ``[{type: "event", depth: 0}]`` and ``kibana.alert.depth: 1``.
Kibana reads the ancestry of a hit that is itself an alert from its ``kibana.alert.*`` fields; we strip those
fields first, so an event that claims to be an alert cannot change what its alert says (or, through the
ancestry, make a rule skip it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from job.rules.model import Rule
from job.run.alert_template import alert_properties
from job.run.conform import conform, mapped_paths
from job.run.ids import alert_id
from job.run.overrides import apply_overrides
from job.run.reason import build_reason
from job.run.rule_fields import rule_fields
from job.run.source_fields import subtree_leaves
from job.run.timestamps import format_timestamp, normalize_timestamp

# The Kibana version whose alert document we reproduce (written as ``kibana.version``).
KIBANA_VERSION: Final = "8.19.0"
# First segments of source fields that never reach an alert: only the job writes alert fields.
RESERVED_ROOTS: Final = frozenset({"kibana", "signal", "threshold_result"})

_MAPPED_PATHS: Final = mapped_paths(alert_properties())


def build_alert(
    rule: Rule, hit: Mapping[str, Any], *, now: datetime, execution_uuid: str, space_id: str
) -> dict[str, Any]:
    """The alert ``_source`` for ``hit`` (a search hit with ``_index``, ``_id`` and ``_source``).

    Index it with ``_id = doc["kibana.alert.uuid"]`` (= ``alert_id(hit["_index"], hit["_id"], rule.rule_id,
    space_id)``). ``now`` (timezone-aware) is the alert time; ``execution_uuid`` identifies the rule run.
    """
    index, doc_id = str(hit["_index"]), str(hit["_id"])
    source: Mapping[str, Any] = hit.get("_source") or {}
    timestamp = format_timestamp(now)
    uuid = alert_id(index, doc_id, rule.rule_id, space_id)
    # The event decides these three (severity_mapping, risk_score_mapping, rule_name_override), nothing else.
    overrides = apply_overrides(rule, source)

    document = event_copy(source)
    original_event = subtree_leaves(document, "event")
    original_data_stream = subtree_leaves(document, "data_stream")
    _remove_event_kind(document)
    document.update(_prefixed("kibana.alert.original_event.", original_event))
    document.update(_prefixed("kibana.alert.original_data_stream.", original_data_stream))
    document["@timestamp"] = timestamp
    document["event.kind"] = "signal"
    original_time = _original_time(source)
    if original_time is not None:
        document["kibana.alert.original_time"] = original_time
    document.update(
        {
            "kibana.alert.uuid": uuid,
            "kibana.alert.ancestors": [{"id": doc_id, "type": "event", "index": index, "depth": 0}],
            "kibana.alert.depth": 1,
            "kibana.alert.status": "active",
            "kibana.alert.workflow_status": "open",
            "kibana.alert.workflow_tags": [],
            "kibana.alert.workflow_assignee_ids": [],
            "kibana.alert.reason": build_reason(source, severity=overrides.severity, rule_name=overrides.name),
            "kibana.alert.severity": overrides.severity,
            "kibana.alert.risk_score": overrides.risk_score,
        }
    )
    if rule.building_block_type is not None:
        document["kibana.alert.building_block_type"] = rule.building_block_type
    document.update(rule_fields(rule, now=now, name=overrides.name))
    document.update(
        {
            "kibana.alert.rule.execution.uuid": execution_uuid,
            "kibana.alert.rule.execution.timestamp": timestamp,
            "kibana.alert.rule.execution.type": "scheduled",
            "kibana.alert.intended_timestamp": timestamp,
            "kibana.alert.start": timestamp,
            "kibana.alert.last_detected": timestamp,
            "kibana.space_ids": [space_id],
            "kibana.version": KIBANA_VERSION,
        }
    )
    # A deep copy without what the alert mapping would refuse: mostly event values, but rule settings such
    # as exceptions_list are free-form too. Nothing is shared with the hit or between fields.
    return conform(document, _MAPPED_PATHS)


def event_copy(source: Mapping[str, Any]) -> dict[str, Any]:
    """``source`` without the top-level fields whose first dotted segment is reserved (a shallow copy)."""
    return {key: value for key, value in source.items() if key.split(".", 1)[0] not in RESERVED_ROOTS}


def _remove_event_kind(document: dict[str, Any]) -> None:
    """Remove ``event.kind`` from the shallow copy ``document`` without touching the objects it shares."""
    document.pop("event.kind", None)
    event = document.get("event")
    if isinstance(event, Mapping):
        rest = {key: value for key, value in event.items() if key != "kind"}
        if rest:
            document["event"] = rest
        else:
            del document["event"]


def _prefixed(prefix: str, leaves: Mapping[str, Any]) -> dict[str, Any]:
    return {prefix + path: value for path, value in leaves.items()}


def _original_time(source: Mapping[str, Any]) -> Any:
    """The event's ``@timestamp`` as ISO UTC text; a text or number that does not read as a time is kept as it
    is (the mapping ignores it, ``_source`` keeps it); None when there is no usable value."""
    raw = source.get("@timestamp")
    normalized = normalize_timestamp(raw)
    if normalized is not None:
        return normalized
    return raw if isinstance(raw, str | int | float) and not isinstance(raw, bool) else None
