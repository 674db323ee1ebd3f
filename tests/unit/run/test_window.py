"""Window maths: date math, look-back, catch-up and gaps (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from job.rules.model import Rule
from job.window import (
    Gap,
    Window,
    gap_message,
    humanize,
    look_back,
    parse_timestamp,
    plan_window,
    resolve_date_math,
)
from tests.alert_samples import seed_rule

NOW = datetime(2026, 3, 15, 10, 37, 12, 345000, tzinfo=UTC)


def _rule(**overrides: object) -> Rule:
    return seed_rule(**overrides)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("now", NOW),
        ("now-15m", NOW - timedelta(minutes=15)),
        ("now+1h", NOW + timedelta(hours=1)),
        ("now-1d/d", datetime(2026, 3, 14, tzinfo=UTC)),
        ("now/h", datetime(2026, 3, 15, 10, tzinfo=UTC)),
        ("now/M", datetime(2026, 3, 1, tzinfo=UTC)),
        ("now/y", datetime(2026, 1, 1, tzinfo=UTC)),
        ("now/w", datetime(2026, 3, 9, tzinfo=UTC)),  # Monday
        ("now-1M", datetime(2026, 2, 15, 10, 37, 12, 345000, tzinfo=UTC)),
        ("now-30s", NOW - timedelta(seconds=30)),
        ("now-500ms", NOW - timedelta(milliseconds=500)),
        ("now-1w", NOW - timedelta(weeks=1)),
        ("now-1y", datetime(2025, 3, 15, 10, 37, 12, 345000, tzinfo=UTC)),
        ("2026-01-31T00:00:00Z||+1M", datetime(2026, 2, 28, tzinfo=UTC)),
        ("2026-01-01T05:00:00Z", datetime(2026, 1, 1, 5, tzinfo=UTC)),
        ("2026-01-01T05:00:00+02:00", datetime(2026, 1, 1, 3, tzinfo=UTC)),
    ],
)
def test_date_math(expression: str, expected: datetime) -> None:
    assert resolve_date_math(expression, NOW) == expected


@pytest.mark.parametrize("expression", ["", "then", "now-15", "now-15x", "now-m", "now15m", "yesterday"])
def test_bad_date_math_is_a_value_error(expression: str) -> None:
    with pytest.raises(ValueError, match="invalid date math"):
        resolve_date_math(expression, NOW)


def test_parse_timestamp_cuts_nanoseconds_down() -> None:
    assert parse_timestamp("2026-01-01T00:00:00.123456789Z") == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval", "from_", "expected"),
    [("10m", "now-15m", timedelta(minutes=5)), ("5m", "now-5m", timedelta(0)), ("2m", "now-1m", timedelta(0))],
)
def test_look_back(interval: str, from_: str, expected: timedelta) -> None:
    assert look_back(_rule(interval=interval, **{"from": from_}), NOW) == expected


def test_first_run_uses_the_plain_window() -> None:
    window, gap = plan_window(_rule(), NOW, None, timedelta(hours=24))
    assert window == Window(NOW - timedelta(minutes=15), NOW)
    assert gap is None


def test_on_schedule_the_window_is_the_plain_one() -> None:
    previous = NOW - timedelta(minutes=10)
    window, gap = plan_window(_rule(), NOW, previous, timedelta(hours=24))
    assert window == Window(NOW - timedelta(minutes=15), NOW)
    assert gap is None


def test_after_two_hours_down_the_window_reaches_back_to_the_last_searched_point() -> None:
    searched_to = NOW - timedelta(hours=2)
    window, gap = plan_window(_rule(), NOW, searched_to, timedelta(hours=24))
    assert window == Window(searched_to - timedelta(minutes=5), NOW)
    assert gap is None


def test_beyond_the_catch_up_limit_the_rest_is_a_gap() -> None:
    searched_to = NOW - timedelta(hours=30)
    window, gap = plan_window(_rule(), NOW, searched_to, timedelta(hours=24))
    earliest = NOW - timedelta(minutes=15) - timedelta(hours=24)
    assert window == Window(earliest, NOW)
    assert gap == Gap(searched_to, earliest)
    assert gap.duration == timedelta(hours=30) - timedelta(hours=24, minutes=15)


def test_a_backfill_in_the_past_uses_the_plain_window() -> None:
    window, gap = plan_window(_rule(), NOW - timedelta(days=3), NOW, timedelta(hours=24))
    assert window.end == NOW - timedelta(days=3)
    assert gap is None


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=10), "a few seconds"),
        (timedelta(seconds=60), "a minute"),
        (timedelta(minutes=4), "4 minutes"),
        (timedelta(minutes=60), "an hour"),
        (timedelta(hours=5, minutes=45), "6 hours"),
        (timedelta(hours=30), "a day"),
        (timedelta(days=3), "3 days"),
    ],
)
def test_humanize(delta: timedelta, text: str) -> None:
    assert humanize(delta) == text


def test_gap_message_is_kibanas() -> None:
    gap = Gap(NOW - timedelta(minutes=4), NOW)
    assert gap_message(gap) == (
        "4 minutes (240000ms) were not queried between this rule execution and the last execution, so signals "
        "may have been missed. Consider increasing your look behind time or adding more Kibana instances"
    )
