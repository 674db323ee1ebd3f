"""The metrics object: one definition for the execution record's ``metrics`` and their mapping."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from job.execlog.execution import EXECUTIONS_MAPPING
from job.execlog.metrics import RunMetrics, metrics_mapping
from job.window import Gap


def test_every_metric_is_mapped_in_the_execution_log() -> None:
    mapped = EXECUTIONS_MAPPING["properties"]["metrics"]["properties"]
    assert set(mapped) == {item.name for item in fields(RunMetrics)}
    assert mapped == metrics_mapping()["properties"]
    assert mapped["alerts_created"] == {"type": "long"}
    assert mapped["gap_range"] == {"type": "date_range"}


def test_unmeasured_values_are_left_out_and_lists_are_copied() -> None:
    metrics = RunMetrics(alerts_created=3, exceptions_expired=["item-1"])
    document = metrics.to_document()
    assert document["alerts_created"] == 3
    assert document["exceptions_expired"] == ["item-1"]
    assert document["exceptions_expired"] is not metrics.exceptions_expired
    assert "max_alerts" not in document and "gap_range" not in document
    assert "exceptions_expired" not in RunMetrics().to_document()


def test_a_gap_fills_its_two_metrics() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    metrics = RunMetrics()
    metrics.record_gap(Gap(start, start + timedelta(minutes=90)))
    assert metrics.to_document()["execution_gap_duration_s"] == 5400
    assert metrics.to_document()["gap_range"] == {"gte": "2026-01-01T00:00:00.000Z", "lte": "2026-01-01T01:30:00.000Z"}
