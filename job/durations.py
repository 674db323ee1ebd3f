"""Durations written as ``<digits><unit>`` (``90s``, ``10m``, ``24h``, ``7d``), as Kibana writes intervals."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``10m`` into a timedelta; raise ``ValueError`` for anything else (``10 minutes``, ``0m``)."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a whole number and one of s, m, h, d (e.g. 10m)")
    value = int(match.group(1))
    if value == 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return timedelta(seconds=value * _UNIT_SECONDS[match.group(2)])

