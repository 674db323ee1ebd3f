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

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from job.alerts.conform import conform, mapped_paths
from job.alerts.ids import alert_id
from job.alerts.overrides import Overrides, apply_overrides
from job.alerts.reason import build_reason
from job.alerts.rule_fields import rule_fields
from job.alerts.source_fields import subtree_leaves
from job.alerts.template import alert_properties
from job.alerts.timestamps import format_timestamp, normalize_timestamp
from job.rules.model import Rule
from job.text.jsoncodec import document_bytes

# The Kibana version whose alert document we reproduce (written as ``kibana.version``).
KIBANA_VERSION: Final = "8.19.0"
# First segments of source fields that never reach an alert: only the job writes alert fields.
RESERVED_ROOTS: Final = frozenset({"kibana", "signal", "threshold_result"})
RULE_NAME_KEY: Final = "kibana.alert.rule.name"
_BUILDING_BLOCK_KEY: Final = "kibana.alert.building_block_type"
# The fields that follow the rule's in a built alert (the order of docs/alert-document.md), and the ones
# placed by hand before them.
_TAIL: Final = (
    RULE_NAME_KEY,
    _BUILDING_BLOCK_KEY,
    "kibana.alert.rule.execution.uuid",
    "kibana.alert.rule.execution.timestamp",
    "kibana.alert.rule.execution.type",
    "kibana.alert.intended_timestamp",
    "kibana.alert.start",
    "kibana.alert.last_detected",
    "kibana.space_ids",
    "kibana.version",
)

_MAPPED_PATHS: Final = mapped_paths(alert_properties())


def build_alert(
    rule: Rule, hit: Mapping[str, Any], *, now: datetime, execution_uuid: str, space_id: str
) -> dict[str, Any]:
    """The alert ``_source`` for ``hit`` (a search hit with ``_index``, ``_id`` and ``_source``).

    Index it with ``_id = doc["kibana.alert.uuid"]`` (= ``alert_id(hit["_index"], hit["_id"], rule.rule_id,
    space_id)``). ``now`` (timezone-aware) is the alert time; ``execution_uuid`` identifies the rule run.
    A run builds many alerts with one :class:`RunAlerts` instead.
    """
    return RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id).build(hit, now=now)


class RunAlerts:
    """The alerts of one rule run. The part every alert shares (the ``kibana.alert.rule.*`` fields, about 14
    KB of the Endgame rules' 17 KB alerts, and the run's constants) is built, conformed and serialized once;
    each event adds only its own part. ``now`` at creation decides which exception items were in force.

    The two parts never share a key: the shared one holds only ``kibana.*`` keys, and the event's own fields
    under ``kibana`` are dropped (:data:`RESERVED_ROOTS`), so joining them equals building the whole document.
    """

    def __init__(self, rule: Rule, shared: dict[str, Any], shared_json: bytes | Exception) -> None:
        self.rule = rule
        self._shared = shared
        self._shared_json = shared_json

    @classmethod
    def for_run(cls, rule: Rule, *, now: datetime, execution_uuid: str, space_id: str) -> RunAlerts:
        fields = rule_fields(rule, now=now)
        fields.pop(RULE_NAME_KEY, None)  # the event may override it (rule_name_override)
        fields.update(
            {
                "kibana.alert.rule.execution.uuid": execution_uuid,
                "kibana.alert.rule.execution.type": "scheduled",
                "kibana.space_ids": [space_id],
                "kibana.version": KIBANA_VERSION,
            }
        )
        if rule.building_block_type is not None:
            fields["kibana.alert.building_block_type"] = rule.building_block_type
        # Rule settings such as exceptions_list are free-form: conformed like event values.
        shared = conform(fields, _MAPPED_PATHS)
        shared_json: bytes | Exception
        try:
            shared_json = document_bytes(shared)[1:-1]  # the members of the object, without its braces
        except Exception as exc:  # noqa: BLE001 - then every alert of the run fails to serialize, each on its own
            shared_json = exc
        return cls(rule, shared, shared_json)

    def shared_fields(self) -> dict[str, Any]:
        """The part every alert of the run shares (the rule's fields and the run's constants), a fresh copy."""
        return copy.deepcopy(self._shared)

    def _own(
        self, hit: Mapping[str, Any], now: datetime, overrides: bool = True, alert_uuid: str | None = None
    ) -> dict[str, Any]:
        """The event's part of its alert, conformed: everything but the shared part. ``overrides``: the rule's
        severity, risk score and name mappings apply (Kibana leaves them out of a sequence's alerts);
        ``alert_uuid``: the alert's id when its type computes it otherwise than from the hit's index and id."""
        rule = self.rule
        index, doc_id = str(hit["_index"]), str(hit["_id"])
        source: Mapping[str, Any] = hit.get("_source") or {}
        timestamp = format_timestamp(now)
        space_id = self._shared["kibana.space_ids"][0]
        # The event decides these three (severity_mapping, risk_score_mapping, rule_name_override), nothing else.
        applied = apply_overrides(rule, source) if overrides else Overrides(rule.name, rule.severity, rule.risk_score)

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
                "kibana.alert.uuid": alert_uuid or alert_id(index, doc_id, rule.rule_id, space_id),
                "kibana.alert.ancestors": [{"id": doc_id, "type": "event", "index": index, "depth": 0}],
                "kibana.alert.depth": 1,
                "kibana.alert.status": "active",
                "kibana.alert.workflow_status": "open",
                "kibana.alert.workflow_tags": [],
                "kibana.alert.workflow_assignee_ids": [],
                "kibana.alert.reason": build_reason(source, severity=applied.severity, rule_name=applied.name),
                "kibana.alert.severity": applied.severity,
                "kibana.alert.risk_score": applied.risk_score,
                RULE_NAME_KEY: applied.name,
                "kibana.alert.rule.execution.timestamp": timestamp,
                "kibana.alert.intended_timestamp": timestamp,
                "kibana.alert.start": timestamp,
                "kibana.alert.last_detected": timestamp,
            }
        )
        # A deep copy without what the alert mapping would refuse. Nothing is shared with the hit or between fields.
        return conform(document, _MAPPED_PATHS)

    def build(
        self, hit: Mapping[str, Any], *, now: datetime, overrides: bool = True, alert_uuid: str | None = None
    ) -> dict[str, Any]:
        """The alert document of ``hit`` (no part of it is shared with the hit, this object or other alerts),
        its fields in the order docs/alert-document.md prints them (``overrides``, ``alert_uuid``: as
        :meth:`_own`)."""
        own = self._own(hit, now, overrides, alert_uuid)
        shared = copy.deepcopy(self._shared)
        document = {key: value for key, value in own.items() if key not in _TAIL}
        if _BUILDING_BLOCK_KEY in shared:
            document[_BUILDING_BLOCK_KEY] = shared[_BUILDING_BLOCK_KEY]
        document[RULE_NAME_KEY] = own[RULE_NAME_KEY]
        document.update((key, value) for key, value in shared.items() if key not in _TAIL)
        for key in _TAIL:
            if key != RULE_NAME_KEY and key != _BUILDING_BLOCK_KEY:
                document[key] = own[key] if key in own else shared[key]
        return document

    def body(self, hit: Mapping[str, Any], *, now: datetime, alert_uuid: str | None = None) -> bytes:
        """The alert of ``hit`` serialized (:func:`job.text.jsoncodec.document_bytes`), the shared part spliced in
        as bytes; raises what building or serializing this event's part raises."""
        if isinstance(self._shared_json, Exception):
            raise self._shared_json
        own = document_bytes(self._own(hit, now, alert_uuid=alert_uuid))
        return b"".join((own[:-1], b",", self._shared_json, b"}"))


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
