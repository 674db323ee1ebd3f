"""Timestamps as alerts carry them: ISO 8601 in UTC with milliseconds and ``Z``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_ISO = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


def format_timestamp(moment: datetime) -> str:
    """``2026-01-02T03:04:05.678Z``. ``moment`` must be timezone-aware (a naive time is ambiguous)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalize_timestamp(value: Any) -> str | None:
    """An event time as ``format_timestamp`` text, or None if ``value`` is not a time Elasticsearch would read.

    Accepts what the default ``date`` mapping accepts: ISO 8601 text (any precision, with or without an
    offset; no offset means UTC) and epoch milliseconds (a number or a string of digits). A one-element
    list (the ``fields`` API shape) is read as its element. Sub-millisecond digits are truncated.
    """
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch_millis(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+", text) and len(text) > 4:
        return _from_epoch_millis(int(text))
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
            tzinfo=_zone(offset),
        )
    except ValueError:
        return None
    return format_timestamp(moment)


def _zone(offset: str | None) -> timezone:
    if offset is None or offset in ("Z", "z"):
        return UTC
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(-delta if offset[0] == "-" else delta)


def _from_epoch_millis(millis: float) -> str | None:
    try:
        return format_timestamp(datetime.fromtimestamp(millis / 1000, tz=UTC))
    except (OverflowError, OSError, ValueError):
        return None
