"""The ``kibana.alert.rule.*`` fields: what an alert says about the rule that raised it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from job.alerts.overrides import sorted_severity_mapping
from job.rules.model import NewTermsRule, Rule
from job.rules.parts import ExceptionItem

# (category, rule_type_id) per rule type, as Kibana's rule registry names them.
RULE_TYPES: dict[str, tuple[str, str]] = {
    "query": ("Custom Query Rule", "siem.queryRule"),
    "saved_query": ("Saved Query Rule", "siem.savedQueryRule"),
    "threshold": ("Threshold Rule", "siem.thresholdRule"),
    "new_terms": ("New Terms Rule", "siem.newTermsRule"),
    "eql": ("Event Correlation Rule", "siem.eqlRule"),
}
PRODUCER = "siem"
CONSUMER = "siem"

# Rule settings that Kibana keeps beside the parameters, not in ``kibana.alert.rule.parameters``.
_NOT_PARAMETERS = {"name", "tags", "interval", "enabled", "metadata", "source"}


def rule_fields(rule: Rule, *, now: datetime, name: str | None = None) -> dict[str, Any]:
    """Flat ``kibana.alert.rule.*`` keys for ``rule``; values that are not set are left out.

    ``name`` is the alert's rule name after ``rule_name_override`` (default: the rule's name). Severity and
    risk score here are the rule's own; the alert's effective ones are ``kibana.alert.severity`` and
    ``kibana.alert.risk_score``.
    """
    try:
        category, rule_type_id = RULE_TYPES[rule.type]
    except KeyError:
        raise ValueError(f"rule {rule.rule_id}: type {rule.type!r} does not produce query-rule alerts") from None
    plain = rule.model_dump(mode="json", by_alias=True)
    parameters = rule_parameters(rule)
    fields: dict[str, Any] = {
        "name": rule.name if name is None else name,
        "rule_id": rule.rule_id,
        "uuid": rule.rule_id,  # no Kibana saved object: the rule_id is the rule's identity
        "type": rule.type,
        "version": rule.version,
        "revision": 0,
        "category": category,
        "rule_type_id": rule_type_id,
        "producer": PRODUCER,
        "consumer": CONSUMER,
        "severity": rule.severity,
        "risk_score": rule.risk_score,
        "description": rule.description,
        "from": rule.from_,
        "to": rule.to,
        "interval": rule.interval,
        "max_signals": rule.max_signals,
        "tags": plain["tags"],
        "threat": plain["threat"],
        "references": plain["references"],
        "author": plain["author"],
        "false_positives": plain["false_positives"],
        "license": rule.license,
        "note": rule.note,
        "setup": rule.setup,
        "indices": plain["index"],
        "timestamp_override": rule.timestamp_override,
        "building_block_type": rule.building_block_type,
        "exceptions_list": plain["exceptions_list"],
        "exception_item_ids": applied_exception_ids(rule, now=now),
        "immutable": False,
        "enabled": rule.enabled,
        "actions": [],
        "risk_score_mapping": parameters["risk_score_mapping"],
        "severity_mapping": parameters["severity_mapping"],
        "rule_name_override": rule.rule_name_override,
        "parameters": parameters,
    }
    return {f"kibana.alert.rule.{key}": value for key, value in fields.items() if value is not None}


def rule_parameters(rule: Rule) -> dict[str, Any]:
    """``kibana.alert.rule.parameters``: every rule parameter in snake_case (``query``, ``language``, ``index``,
    ``filters``, ...), plus our inline exception items under ``exceptions``. Unset values are left out, but
    ``related_integrations``, ``required_fields`` and ``setup`` are always there (``[]``, ``[]``, ``""``), and
    ``severity_mapping`` is sorted low -> critical, as Kibana writes them. A threshold rule's ``threshold`` has its
    ``field`` as a list (Kibana's normalized form); a new-terms rule has Kibana's ``new_terms_fields`` and
    ``history_window_start``, whichever form its file used."""
    parameters = rule.model_dump(mode="json", by_alias=True, exclude=_NOT_PARAMETERS, exclude_none=True)
    if isinstance(rule, NewTermsRule):
        parameters.pop("new_terms", None)
        parameters["new_terms_fields"] = list(rule.params.fields)
        parameters["history_window_start"] = rule.params.history_window_start
    parameters["severity_mapping"] = [
        item.model_dump(mode="json", exclude_none=True) for item in sorted_severity_mapping(rule.severity_mapping)
    ]
    parameters.setdefault("setup", "")
    parameters["immutable"] = False
    return parameters


def applied_exception_ids(rule: Rule, *, now: datetime) -> list[str]:
    """The ``item_id`` of every inline exception item in force at ``now`` (not expired), in rule order."""
    return [item.item_id for item in rule.exceptions if not _expired(item, now)]


def _expired(item: ExceptionItem, now: datetime) -> bool:
    if item.expire_time is None:
        return False
    expires = item.expire_time if item.expire_time.tzinfo else item.expire_time.replace(tzinfo=UTC)
    return expires < now
