"""Import files into item values, and stored items back into text, as Kibana's lists plugin does.

An import file holds one value per line. Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (Node's line
reader); each is trimmed (JavaScript's ``trim``); blank lines are skipped. A ``.csv`` is not split on
commas. How one line becomes the stored value depends on the list type:

===========  ====================  ==========================================
type         line                  stored value field
===========  ====================  ==========================================
ip_range     ``10.0.0.1-10.0.0.9``  ``{"gte": "10.0.0.1", "lte": "10.0.0.9"}`` (split at the *last* dash)
ip_range     ``10.0.0.0/8``         ``"10.0.0.0/8"`` (a CIDR, kept as text)
ip_range     ``10.1.1.1``           ``{"gte": "10.1.1.1", "lte": "10.1.1.1"}``
other types  ``x``                  ``"x"`` (Elasticsearch checks that it is an IP, a long, a date)
===========  ====================  ==========================================

Reading back, a range is ``"<gte>-<lte>"``, so a single IP of an ip_range list reads ``"1.2.3.4-1.2.3.4"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from job.kql.lexer import JS_TRIM
from job.lists.model import LIST_TYPES

_LINE_END = re.compile(r"\r\n|\n|\r")
# Kibana's default serializer for ranges: greedy, so "a-b-c" is gte "a-b", lte "c".
_RANGE = re.compile(r"(?P<gte>.+)-(?P<lte>.+)")


@dataclass(frozen=True, slots=True)
class Line:
    """One value of an import file: its 1-based line number and its trimmed text."""

    number: int
    text: str


def import_lines(text: str) -> Iterator[Line]:
    """The non-blank lines of an import file, trimmed, each value once (the first time it appears).

    Kibana collapses repeated lines only within a window of about a thousand; we collapse them in the
    whole file, so one import never stores a value twice.
    """
    seen: set[str] = set()
    for number, raw in enumerate(_LINE_END.split(text), start=1):
        value = raw.strip(JS_TRIM)
        if value and value not in seen:
            seen.add(value)
            yield Line(number, value)


def item_value(list_type: str, text: str) -> str | dict[str, str]:
    """The value field of the item stored for ``text`` (one trimmed line) in a list of ``list_type``."""
    if list_type == "ip_range":
        match = _RANGE.fullmatch(text)
        if match:
            return {"gte": match["gte"].strip(JS_TRIM), "lte": match["lte"].strip(JS_TRIM)}
        if "/" in text:
            return text
        return {"gte": text, "lte": text}
    return text


def value_text(item: Mapping[str, Any]) -> str | None:
    """An item's value as Kibana reads it back: the first value field of its ``_source`` that is set.

    A range object becomes ``"<gte>-<lte>"``, text stays as it is; numbers (never written by Kibana, which
    stores text) are rendered as text. None when the item has no value field.
    """
    for key, value in item.items():
        if key not in LIST_TYPES or value is None:
            continue
        if isinstance(value, Mapping):
            return f"{_text(value.get('gte'))}-{_text(value.get('lte'))}"
        return _text(value)
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)
