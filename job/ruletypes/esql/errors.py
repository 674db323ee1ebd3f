"""The texts of an ES|QL rule run's failures and warnings, as Kibana words them (pure).

An error from Elasticsearch reaches Kibana's rule status through the JavaScript client's ``ResponseError``
(``@elastic/transport``, ``src/errors.ts``), whose message is the error ``type``, then a ``Caused by`` line
when the error has an object ``caused_by``, then a ``Root causes`` block; an error body without a type is
its compact JSON. The run is then ``failed`` with ``An error occurred during rule execution: message: "<that>"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_REASON_LENGTH = 2_000  # an error reason longer than this is cut, with the length said

MAX_SIGNALS_WARNING = "This rule reached the maximum alert limit for the rule execution. Some alerts were not created."
SUPPRESSION_MAX_SIGNALS_WARNING = (
    "This rule reached the maximum alert limit for the rule execution. Some alerts were not created or suppressed."
)
CANCELLED_MESSAGE = "Rule execution cancelled due to timeout"
# Error types and reason fragments that make a failure the user's (``check_error_details.ts``).
USER_ERROR_MARKERS = (
    "index_not_found_exception",
    "status_exception",
    "verification_exception",
    "parsing_exception",
    "x_content_parse_exception",
    "security_exception",
    "is not an IP string literal",
)


def _text(value: Any) -> str:
    """JavaScript's template-literal text of a JSON value (``null`` for null)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _field(entry: Any, key: str) -> str:
    """``${entry.key}`` in JavaScript: ``undefined`` when the key (or the object) is missing."""
    if not isinstance(entry, Mapping) or key not in entry:
        return "undefined"
    return _text(entry[key])


def _cut(text: str) -> str:
    if len(text) <= MAX_REASON_LENGTH:
        return text
    return f"{text[:MAX_REASON_LENGTH]}... ({len(text)} characters in all)"


def error_message(body: Any) -> str:
    """The message Kibana shows for an error answer ``body`` of Elasticsearch."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping) and error.get("type") is not None:
        message = _text(error["type"])
        caused_by = error.get("caused_by")
        if isinstance(caused_by, Mapping):
            message += f"\n\tCaused by:\n\t\t{_field(caused_by, 'type')}: {_field(caused_by, 'reason')}"
        causes = error.get("root_cause")
        if isinstance(causes, list) and causes:
            lines = [f"\t\t{_field(cause, 'type')}: {_field(cause, 'reason')}" for cause in causes]
            message += "\n\tRoot causes:\n" + "\n".join(lines)
        return _cut(message)
    if isinstance(body, Mapping | list):
        return _cut(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
    return _cut(body) if isinstance(body, str) and body else "Response Error"


def reason(body: Any) -> str:
    """One line for a person: ``<type>: <reason>`` of the first root cause (else of the error), newlines
    turned into ``; `` (a verification error lists one problem a line)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return error_message(body).replace("\n", " ")
    causes = error.get("root_cause")
    first = causes[0] if isinstance(causes, list) and causes and isinstance(causes[0], Mapping) else error
    text = f"{_text(first.get('type'))}: {_text(first.get('reason'))}"
    return _cut("; ".join(line.strip() for line in text.splitlines() if line.strip()))


def failed_message(message: str) -> str:
    """The rule's status message when the run failed with ``message``."""
    return f'An error occurred during rule execution: message: "{message}"'


def is_user_error(message: str) -> bool:
    """Kibana marks a failure ``userError`` when its type or message holds one of the markers."""
    return any(marker in message for marker in USER_ERROR_MARKERS)


def unprocessed_exceptions_warning(names: list[str]) -> str | None:
    """The warning each page pushes when value-list exceptions could not be applied (None: none left out)."""
    if not names:
        return None
    return f"The following exceptions won't be applied to rule execution: {', '.join(names)}"
