"""Durations written as ``<digits><unit>`` (``90s``, ``10m``, ``24h``, ``7d``), as Kibana writes intervals,
and the bound of every duration and date-math offset the job accepts.

Every duration, and every date-math offset from now (``from``, ``to``), is at most ``MAX_DURATION``, a
year with its leap day. Rule intervals and look-backs are minutes or hours in practice; a rule that runs
less than once a year, or a catch-up of more than a year of events, is a mistake rather than a plan. The
bound also keeps the window arithmetic far inside what Python's ``datetime`` can represent (years 1 to
9999), so no value of a rule file or a setting can make it overflow.
"""

from __future__ import annotations

import re
from datetime import timedelta

MAX_DURATION = timedelta(days=366)
_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Nominal lengths of the date-math units, for the bound only (the window uses calendar months and years).
DATE_MATH_UNIT_SECONDS = {**_UNIT_SECONDS, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
# More digits than this is far beyond any bound, and never converted to a number.
MAX_DIGITS = 15


def shown(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut to ``limit`` characters, for error messages about values of any size."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def parse_duration(text: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """Parse ``10m`` into a timedelta; raise ``ValueError`` for anything else (``10 minutes``, ``0m``, over a year)."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        what = shown(text) if isinstance(text, str) else type(text).__name__
        raise ValueError(f"invalid duration {what}: expected a whole number and one of s, m, h, d (e.g. 10m)")
    digits = match.group(1).lstrip("0")
    seconds = int(digits or "0") * _UNIT_SECONDS[match.group(2)] if len(digits) <= MAX_DIGITS else None
    if seconds == 0:
        raise ValueError(f"invalid duration {shown(text)}: must be greater than zero")
    if seconds is None or seconds > maximum.total_seconds():
        raise ValueError(f"invalid duration {shown(text)}: at most {maximum.days}d")
    return timedelta(seconds=seconds)


def date_math_reach(expression: str) -> float:
    """How far (seconds, nominal units) date math like ``now-15m/d`` reaches from now, offsets and roundings
    added up; ``inf`` for numbers beyond ``MAX_DIGITS``. The expression must already match the date-math syntax."""
    total = 0.0
    for sign, digits, unit, rounding in re.findall(r"([+-])([0-9]+)([smhdwMy])|/([smhdwMy])", expression[3:]):
        del sign
        if rounding:
            total += DATE_MATH_UNIT_SECONDS[rounding]
        elif len(digits.lstrip("0")) > MAX_DIGITS:
            return float("inf")
        else:
            total += int(digits) * DATE_MATH_UNIT_SECONDS[unit]
    return total
