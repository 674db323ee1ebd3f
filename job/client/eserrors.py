"""Elasticsearch errors as one line for people: the status, the error type and Elasticsearch's reason.

The reason is what says what to fix ("index template [b] has index patterns [b-*] matching patterns
from existing templates [a] ..."), so it is always part of the line. The line is bounded in length,
has URL passwords masked (``job.text.redact``) and control characters escaped; request bodies never appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import ApiError, TransportError

from job.text.redact import one_line, redact

MAX_REASON_CHARS = 500


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def error_reason(body: Any) -> str | None:
    """Elasticsearch's ``error.reason`` (and its ``caused_by`` reason) from an error body, or the start of
    a body that is not Elasticsearch's (a proxy's HTML page)."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, str):
            return error
        if not isinstance(error, Mapping):
            return None
        reason = error.get("reason")
        if not isinstance(reason, str):
            causes = error.get("root_cause")
            first = causes[0] if isinstance(causes, list) and causes else None
            reason = first.get("reason") if isinstance(first, Mapping) else None
        caused = error.get("caused_by")
        cause = caused.get("reason") if isinstance(caused, Mapping) else None
        if isinstance(cause, str) and cause and cause != reason:
            return f"{reason} (caused by: {cause})" if isinstance(reason, str) else cause
        return reason if isinstance(reason, str) else None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip():
        return _cut(" ".join(body.split()), 200)
    return None


def describe(exc: BaseException | None) -> str:
    """One line about an Elasticsearch error, with Elasticsearch's reason, without request bodies or credentials."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, ApiError):
        reason = error_reason(exc.body)
        text = f"HTTP {exc.meta.status} {exc.message}"
        if reason and reason != exc.message:
            text += f": {_cut(reason, MAX_REASON_CHARS)}"
    elif isinstance(exc, TransportError):
        text = f"{type(exc).__name__}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return one_line(redact(_cut(text, 2 * MAX_REASON_CHARS)))
