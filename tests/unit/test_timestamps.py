"""Alert timestamps: ISO 8601 UTC with milliseconds and Z; event times normalised the way Elasticsearch reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from job.alerts.timestamps import format_timestamp, normalize_timestamp


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2026-01-01T23:00:00.000Z"),
    ],
)
def test_format_timestamp(moment: datetime, expected: str) -> None:
    assert format_timestamp(moment) == expected


def test_format_timestamp_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T12:03:17.412Z", "2026-03-01T12:03:17.412Z"),
        ("2026-03-01T12:03:17Z", "2026-03-01T12:03:17.000Z"),
        ("2026-03-01T12:03:17.123456789Z", "2026-03-01T12:03:17.123Z"),
        ("2026-03-01T12:03:17.4+02:00", "2026-03-01T10:03:17.400Z"),
        ("2026-03-01T12:03:17-0530", "2026-03-01T17:33:17.000Z"),
        ("2026-03-01 12:03", "2026-03-01T12:03:00.000Z"),
        ("2026-03-01T12:03:17.412", "2026-03-01T12:03:17.412Z"),
        ("2026-03-01", "2026-03-01T00:00:00.000Z"),
        ("2026-03", "2026-03-01T00:00:00.000Z"),
        ("2026", "2026-01-01T00:00:00.000Z"),
        (1772366597412, "2026-03-01T12:03:17.412Z"),
        ("1772366597412", "2026-03-01T12:03:17.412Z"),
        (1772366597412.0, "2026-03-01T12:03:17.412Z"),
        (["2026-03-01T12:03:17.412Z"], "2026-03-01T12:03:17.412Z"),
    ],
)
def test_normalize_timestamp(value: Any, expected: str) -> None:
    assert normalize_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2026-13-01",
        "2026-02-30T00:00:00Z",
        "2026-03-01T25:00:00Z",
        "2026-03-01T12:00:00+25:00",
        None,
        True,
        {"a": 1},
        ["a", "b"],
        [],
        10**20,
    ],
)
def test_normalize_timestamp_rejects_non_times(value: Any) -> None:
    assert normalize_timestamp(value) is None
