"""Pure parts of backfill (its windows), of the setup check (which fields are missing, which index is the
write index) and of stopping (exit codes, the stop flag)."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job import stop
from job.indices.preflight import field_paths, missing_fields, write_indices
from job.run.backfill import backfill_windows, window_count
from job.window import Window
from tests.alert_samples import seed_rule

START = datetime(2026, 4, 1, tzinfo=UTC)


def _minutes(value: float) -> datetime:
    return START + timedelta(minutes=value)


@pytest.mark.parametrize(
    ("changes", "length", "expected"),
    [
        # now-15m every 10m: 5 minutes of look-back before each step; 3 hours are 18 windows
        ({}, timedelta(hours=3), [(_minutes(10 * n - 5), _minutes(10 * n + 10)) for n in range(18)]),
        # a range that is not a whole number of steps: the last window ends at --to
        (
            {},
            timedelta(minutes=25),
            [(_minutes(-5), _minutes(10)), (_minutes(5), _minutes(20)), (_minutes(15), _minutes(25))],
        ),
        # no look-back (from = interval)
        ({"from": "now-10m"}, timedelta(minutes=20), [(_minutes(0), _minutes(10)), (_minutes(10), _minutes(20))]),
        # an hourly rule looking back 2 hours
        ({"from": "now-3h", "interval": "1h"}, timedelta(hours=1), [(_minutes(-120), _minutes(60))]),
    ],
)
def test_backfill_windows(
    changes: dict[str, Any], length: timedelta, expected: list[tuple[datetime, datetime]]
) -> None:
    rule = seed_rule(**changes)
    windows = backfill_windows(rule, START, START + length)
    assert windows == [Window(start, end) for start, end in expected]
    assert window_count(rule, START, START + length) == len(windows)


MAPPING = {
    "properties": {"a": {"type": "keyword"}, "b": {"properties": {"c": {"type": "long"}, "d": {"type": "date"}}}}
}


@pytest.mark.parametrize(
    ("actual", "missing"),
    [
        (MAPPING, []),
        ({"properties": {"a": {"type": "keyword"}, "b": {"properties": {"c": {"type": "long"}}}}}, ["b.d"]),
        ({"properties": {"a": {"type": "keyword"}}}, ["b", "b.c", "b.d"]),
        ({}, ["a", "b", "b.c", "b.d"]),
    ],
)
def test_missing_fields(actual: dict[str, Any], missing: list[str]) -> None:
    assert list(field_paths(MAPPING["properties"])) == ["a", "b", "b.c", "b.d"]
    assert missing_fields(actual, MAPPING) == missing


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"x-000001": {"aliases": {"x": {"is_write_index": True}}}}, {"x": "x-000001"}),
        (
            {"x-000001": {"aliases": {"x": {}}}, "x-000002": {"aliases": {"x": {"is_write_index": True}}}},
            {"x": "x-000002"},
        ),
        ({"x-000001": {"aliases": {"x": {}}}}, {"x": "x-000001"}),  # a lone index is the write index
        ({"x-000001": {"aliases": {"x": {}}}, "x-000002": {"aliases": {"x": {}}}}, {}),  # none: no write index
        ({"plain": {"aliases": {}}}, {}),  # a plain index is no alias
    ],
)
def test_write_indices(answer: dict[str, Any], expected: dict[str, str]) -> None:
    assert write_indices(answer) == expected


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_exit_codes_are_128_plus_the_signal(name: str, code: int) -> None:
    assert stop.exit_code(name) == code


def test_the_stop_flag_keeps_the_first_signal_and_is_reset_by_the_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop.handled():
        assert stop.requested() is None
        signal.raise_signal(signal.SIGTERM)  # the handler only records it: the test process goes on
        signal.raise_signal(signal.SIGINT)
        assert stop.requested() == "SIGTERM"
        with pytest.raises(stop.RunInterrupted, match="^Run interrupted by SIGTERM$"):
            stop.check()
    assert stop.requested() is None
    assert signal.getsignal(signal.SIGTERM) is before
