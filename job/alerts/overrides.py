"""Severity, risk score and rule name from the event's own fields, exactly as Kibana 8.19 computes them (pure).

Kibana's ``build_severity_from_mapping``, ``build_risk_score_from_mapping`` and
``build_rule_name_from_mapping`` read the event ``_source`` with lodash ``get``:

* ``severity_mapping`` is sorted low -> critical (stable), every entry is tried and the last match wins (the
  highest severity; among equal severities, the later entry). For ``event.severity`` only numbers that are
  safe integers count, and the entry's value is read as a number (``Math.floor(Number(value))``); for any
  other field safe-integer numbers and strings count, as text, against the value as an exact string.
* ``risk_score_mapping`` reads only the first entry's field. Numbers and texts (through JavaScript's
  ``Number()``, so ``""`` is 0) between 0 and 100 count; the result is the largest, unrounded.
* ``rule_name_override`` names a field whose value is used only when it is a string (``""`` counts);
  anything else, arrays included, leaves the rule's name.

The event decides only these three values (and the reason text built from them); every other alert field
comes from the rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from job.kql.lexer import JS_TRIM
from job.rules.model import Rule
from job.rules.parts import RiskScoreMappingItem, Severity, SeverityMappingItem

SEVERITY_ORDER: Final = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ECS_SEVERITY_FIELD: Final = "event.severity"
MAX_SAFE_INTEGER: Final = 2**53 - 1

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PREFIXED = {"0x": re.compile(r"[0-9a-fA-F]+"), "0o": re.compile(r"[0-7]+"), "0b": re.compile(r"[01]+")}
_BASES = {"0x": 16, "0o": 8, "0b": 2}
_INDEX = re.compile(r"0|[1-9][0-9]*")


def lodash_get(source: Mapping[str, Any], path: str) -> Any:
    """lodash's ``get(path, source)``: a top-level key equal to the whole path first, then the dotted path
    through objects (and arrays by explicit index, ``a.0.b``). None when there is nothing there.

    A mixed spelling such as ``{"a": {"b.c": 1}}`` for ``a.b.c`` is not found, and ``a.b`` does not look
    into an array of objects at ``a``. Brackets (``a[0]``) are not read as indices, and JavaScript's own
    properties (``length``, a character of a string) are not values.
    """
    if path in source:
        return source[path]
    node: Any = source
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and _INDEX.fullmatch(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def js_number(text: str) -> float:
    """JavaScript's ``Number(text)``: trimmed; ``""`` is 0; decimal, ``Infinity`` and ``0x``/``0o``/``0b``
    forms; NaN for anything else (``"1_0"``, ``"inf"``, ``"12px"``)."""
    body = text.strip(JS_TRIM)
    if not body:
        return 0.0
    if _DECIMAL.fullmatch(body):
        return float(body)
    if body in ("Infinity", "+Infinity", "-Infinity"):
        return -math.inf if body[0] == "-" else math.inf
    prefix = body[:2].lower()
    digits = _PREFIXED.get(prefix)
    if digits is not None and digits.fullmatch(body[2:]):
        return float(int(body[2:], _BASES[prefix]))
    return math.nan


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _safe_integer(value: Any) -> int | None:
    """A JSON number that JavaScript would see as a safe integer (``73.0`` parses to 73), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return int(value)
    return None


def sorted_severity_mapping(mapping: Sequence[SeverityMappingItem]) -> tuple[SeverityMappingItem, ...]:
    """The mapping low -> critical, entries of equal severity in their written order (Kibana sorts in place,
    so the alert's copies of the mapping come out in this order too)."""
    return tuple(sorted(mapping, key=lambda item: SEVERITY_ORDER[item.severity]))


def _severity_matches(item: SeverityMappingItem, value: Any) -> bool:
    values = _as_list(value)
    if item.field == ECS_SEVERITY_FIELD:
        wanted = js_number(item.value)
        if not math.isfinite(wanted):
            return False
        target = math.floor(wanted)
        return any(number == target for number in map(_safe_integer, values) if number is not None)
    for element in values:
        number = _safe_integer(element)
        if (number is not None and str(number) == item.value) or (isinstance(element, str) and element == item.value):
            return True
    return False


def severity_from_mapping(source: Mapping[str, Any], severity: Severity, mapping: Sequence[SeverityMappingItem]) -> str:
    """The alert's severity: the last matching entry of the sorted mapping, else the rule's ``severity``."""
    found: str = severity
    for item in sorted_severity_mapping(mapping):
        if _severity_matches(item, lodash_get(source, item.field)):
            found = item.severity
    return found


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if 0 <= value <= 100 else None
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        number = js_number(value)
    else:
        return None
    return number if math.isfinite(number) and 0 <= number <= 100 else None


def risk_score_from_mapping(
    source: Mapping[str, Any], risk_score: int, mapping: Sequence[RiskScoreMappingItem]
) -> int | float:
    """The alert's risk score: the largest valid value of the first entry's field, else ``risk_score``.

    Whole numbers are written as integers (JavaScript does not tell 73.0 from 73), others unrounded.
    """
    if not mapping:
        return risk_score
    scores = [score for score in map(_score, _as_list(lodash_get(source, mapping[0].field))) if score is not None]
    if not scores:
        return risk_score
    best = max(scores)
    return int(best) if best.is_integer() else best


def name_from_override(source: Mapping[str, Any], name: str, override: str | None) -> str:
    """The alert's rule name: the override field's value when it is a string (``""`` included), else ``name``."""
    if override is None:
        return name
    value = lodash_get(source, override)
    return value if isinstance(value, str) else name


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the event decides: the alert's rule name, severity and risk score."""

    name: str
    severity: str
    risk_score: int | float


def apply_overrides(rule: Rule, source: Mapping[str, Any]) -> Overrides:
    """The three override results for one event ``_source``."""
    return Overrides(
        name=name_from_override(source, rule.name, rule.rule_name_override),
        severity=severity_from_mapping(source, rule.severity, rule.severity_mapping),
        risk_score=risk_score_from_mapping(source, rule.risk_score, rule.risk_score_mapping),
    )
