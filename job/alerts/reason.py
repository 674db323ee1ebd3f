"""``kibana.alert.reason``: the one-line summary Kibana shows for every alert.

Same wording and punctuation as Kibana's reason formatter (including its quirks: a missing port leaves no
comma, a port without an address still prints). Values come from the event ``_source``, nested or dotted;
arrays are joined with ``", "``; an empty value or a lone ``"-"`` is missing.

Deliberate difference: numbers (ports are numbers in ``_source``) are rendered as text. Kibana 8.x read
the ``fields`` API, where they arrive as text; a newer Kibana ``main`` reads ``_source`` and silently drops
scalar numbers such as ``destination.port: 443``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from job.alerts.source_fields import Scalar, values_at


def build_reason(source: Mapping[str, Any], *, severity: str, rule_name: str) -> str:
    """``<category> event with process P, ... by U on H created <severity> alert <rule name>.``"""

    def value(path: str) -> str | None:
        return _render(values_at(source, path))

    category = value("event.category")
    process = value("process.name")
    parent = value("process.parent.name")
    file_name = value("file.name")
    source_ip, source_port = value("source.ip"), value("source.port")
    destination_ip, destination_port = value("destination.ip"), value("destination.port")
    user, host = value("user.name"), value("host.name")

    parts = [f"{category} event" if category else "event"]
    if any(
        v is not None for v in (process, parent, file_name, source_ip, source_port, destination_ip, destination_port)
    ):
        parts.append(" with")
    parts.extend(_piece(" process {},", process))
    parts.extend(_piece(" parent process {},", parent))
    parts.extend(_piece(" file {},", file_name))
    parts.extend(_piece(" source {}", source_ip))
    parts.extend(_piece(":{},", source_port))
    parts.extend(_piece(" destination {}", destination_ip))
    parts.extend(_piece(":{},", destination_port))
    parts.extend(_piece(" by {}", user))
    parts.extend(_piece(" on {}", host))
    parts.append(f" created {severity} alert {rule_name}.")
    return "".join(parts)


def _piece(template: str, value: str | None) -> list[str]:
    return [] if value is None else [template.format(value)]


def _render(values: list[Scalar]) -> str | None:
    texts = [text for text in (_text(v) for v in values) if text]
    if not texts or texts == ["-"]:
        return None
    return ", ".join(texts)


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
