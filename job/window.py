"""The time window of one rule run: date math, look-back, and catch-up after downtime.

Kibana searches ``[from, to]`` resolved against the run's start. When a run was missed or failed it
may catch up a few intervals, and whatever lies beyond is a blind spot. Here the execution log
remembers how far each rule has searched (``searched_to``); the next window starts there (minus
the rule's look-back, so late events are still seen), as far back as ``max_catchup`` allows. Only
what lies beyond that limit is a gap, and it is reported.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from job.rules.model import Rule

_MATH_OP = re.compile(r"([+-])(\d+)(ms|[yMwdhHms])|/(ms|[yMwdhHms])")
_FIXED_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "H": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}


@dataclass(frozen=True, slots=True)
class Window:
    """A closed time range ``[start, end]`` (both inclusive), UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    """A range that no run searched and this run will not search either."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _round_down(moment: datetime, unit: str) -> datetime:
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "s":
        return moment.replace(microsecond=0)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


_SUB_MICROSECOND = re.compile(r"(\.\d{6})\d+")
# The run's clock (``--now``) lies within these bounds: far from what datetime can represent (years 1 to
# 9999) even after a year of look-back and a year of catch-up (job.config.durations.MAX_DURATION each), and inside
# what Elasticsearch's millisecond dates and our epoch-based sort values expect.
EARLIEST_NOW = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_NOW = datetime(9000, 1, 1, tzinfo=UTC)


def now_problem(moment: datetime) -> str | None:
    """Why ``moment`` cannot be a run's clock, or None."""
    if not EARLIEST_NOW <= moment < LATEST_NOW:
        return f"must lie between {EARLIEST_NOW:%Y-%m-%d} and {LATEST_NOW:%Y-%m-%d} (UTC)"
    return None


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (a naive one is taken as UTC).

    Digits below the microsecond are cut (rounded down), so the result never lies after the input.
    """
    moment = datetime.fromisoformat(_SUB_MICROSECOND.sub(r"\1", text.strip()).replace("Z", "+00:00"))
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 lies before the first representable moment in UTC
        raise ValueError(f"timestamp {text.strip()[:40]!r} lies outside the years 1 to 9999 in UTC") from None


def resolve_date_math(expression: str, now: datetime) -> datetime:
    """Resolve Elasticsearch/Kibana date math (``now-15m``, ``now/d``, ``2026-01-01||+1d``) in UTC.

    Raises ``ValueError`` for anything else, and for results outside the years 1 to 9999.
    """
    try:
        return _resolve_date_math(expression, now)
    except OverflowError:
        raise ValueError(f"date math {expression[:40]!r} reaches beyond the years 1 to 9999") from None


def _resolve_date_math(expression: str, now: datetime) -> datetime:
    text = expression.strip()
    if text.startswith("now"):
        anchor, ops = now.astimezone(UTC), text[3:]
    elif "||" in text:
        head, ops = text.split("||", 1)
        anchor = parse_timestamp(head)
    else:
        try:
            return parse_timestamp(text)
        except ValueError:
            raise ValueError(f"invalid date math {expression!r}") from None
    position = 0
    while position < len(ops):
        match = _MATH_OP.match(ops, position)
        if match is None:
            raise ValueError(f"invalid date math {expression!r} at {ops[position:]!r}")
        sign, amount, unit, rounding = match.groups()
        if rounding:
            anchor = _round_down(anchor, rounding)
        else:
            count = int(amount) * (1 if sign == "+" else -1)
            if unit == "y":
                anchor = _add_months(anchor, 12 * count)
            elif unit == "M":
                anchor = _add_months(anchor, count)
            else:
                anchor = anchor + count * _FIXED_UNITS[unit]
        position = match.end()
    return anchor


def rule_window(rule: Rule, now: datetime) -> Window:
    """The rule's own window for a run started at ``now``: ``[from, to]`` resolved against it."""
    return Window(resolve_date_math(rule.from_, now), resolve_date_math(rule.to, now))


def look_back(rule: Rule, now: datetime) -> timedelta:
    """How much of each window overlaps the previous run's (``now-15m`` every ``10m`` → 5 minutes)."""
    window = rule_window(rule, now)
    return max(window.end - window.start - rule.interval_delta, timedelta(0))


def plan_window(
    rule: Rule,
    now: datetime,
    searched_to: datetime | None,
    max_catchup: timedelta,
    uncovered_from: datetime | None = None,
) -> tuple[Window, Gap | None]:
    """The window this run searches, and the gap it leaves (if the job was down too long).

    ``searched_to`` is the point up to which earlier runs searched everything (None until a run of the
    rule completed); the window then starts there minus the look-back. ``uncovered_from`` is the start
    of a range that runs began but no completed run covered (a first run that was killed, say); the
    window then starts there, if that is earlier. Never earlier than ``max_catchup`` before the rule's
    own window start: what lies before that limit is the gap.
    """
    plain = rule_window(rule, now)
    wanted: list[tuple[datetime, datetime]] = []  # (window start, start of what was not searched)
    if searched_to is not None:
        wanted.append((searched_to - look_back(rule, now), searched_to))
    if uncovered_from is not None:
        wanted.append((uncovered_from, uncovered_from))
    if not wanted:
        return plain, None
    wanted_start, unsearched_from = min(wanted)
    if wanted_start >= plain.start:
        return plain, None
    earliest = plain.start - max_catchup
    if wanted_start >= earliest:
        return Window(wanted_start, plain.end), None
    return Window(earliest, plain.end), (Gap(unsearched_from, earliest) if unsearched_from < earliest else None)


def humanize(delta: timedelta) -> str:
    """Roughly how long, in the style of moment.js' ``humanize`` that Kibana's gap message uses."""
    seconds = delta.total_seconds()
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    if seconds < 45:
        return "a few seconds"
    if seconds < 90:
        return "a minute"
    if minutes < 45:
        return f"{round(minutes)} minutes"
    if minutes < 90:
        return "an hour"
    if hours < 22:
        return f"{round(hours)} hours"
    if hours < 36:
        return "a day"
    if days < 26:
        return f"{round(days)} days"
    if days < 45:
        return "a month"
    if days < 320:
        return f"{round(days / 30.4)} months"
    if days < 548:
        return "a year"
    return f"{round(days / 365)} years"


def gap_message(gap: Gap) -> str:
    """Kibana's gap warning, word for word."""
    millis = round(gap.duration.total_seconds() * 1000)
    return (
        f"{humanize(gap.duration)} ({millis}ms) were not queried between this rule execution and the last "
        "execution, so signals may have been missed. Consider increasing your look behind time or adding "
        "more Kibana instances"
    )


def isoformat(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as Kibana writes range bounds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
