"""Metrics fed from execution-record documents (the shape Execution.to_document() writes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from job.execlog.execution import Execution
from job.execlog.metrics import RunMetrics
from job.ops.metrics import RuleMetrics, redact_url
from job.writing.writer import MAX_ALERTS_WARNING

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LABELS = {"rule_id": "r1", "rule_name": "Rule one"}


def document(**changes: Any) -> dict[str, Any]:
    """An execution record's document; ``metrics`` changes are applied to the document itself, so that
    values no run would write (hostile or broken records) can be fed too."""
    metric_changes = changes.pop("metrics", {})
    execution = Execution(
        rule_id="r1",
        rule_name="Rule one",
        rule_version=1,
        rule_source="r1.toml",
        space_id="default",
        uuid="u1",
        start=START,
        end=START + timedelta(seconds=3),
        metrics=RunMetrics(
            alerts_created=4,
            duplicates_skipped=2,
            hits=6,
            total_search_duration_ms=1500,
            total_indexing_duration_ms=250,
        ),
    )
    for key, value in changes.items():
        setattr(execution, key, value)
    doc = execution.to_document()
    doc["metrics"].update(metric_changes)
    return doc


def value(metrics: RuleMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {**LABELS, **labels})


def test_a_successful_execution() -> None:
    metrics = RuleMetrics()
    assert metrics.observe(document(), timedelta(minutes=10))
    assert value(metrics, "detection_rule_executions_total", status="succeeded") == 1
    assert value(metrics, "detection_rule_last_execution_failed") == 0
    assert value(metrics, "detection_rule_last_success_timestamp_seconds") == (START + timedelta(seconds=3)).timestamp()
    assert value(metrics, "detection_rule_interval_seconds") == 600
    assert value(metrics, "detection_rule_alerts_created_total") == 4
    assert value(metrics, "detection_rule_duplicates_skipped_total") == 2
    assert value(metrics, "detection_rule_hits_total") == 6
    assert value(metrics, "detection_rule_dead_letters_total") == 0
    assert value(metrics, "detection_rule_last_gap_seconds") == 0
    assert value(metrics, "detection_rule_last_max_alerts_reached") == 0
    assert value(metrics, "detection_rule_search_seconds_sum") == 1.5
    assert value(metrics, "detection_rule_search_seconds_bucket", le="2.5") == 1
    assert value(metrics, "detection_rule_search_seconds_bucket", le="1.0") == 0
    assert value(metrics, "detection_rule_indexing_seconds_sum") == 0.25


def test_failure_after_success_keeps_the_last_success_time() -> None:
    metrics = RuleMetrics()
    metrics.observe(document())
    metrics.observe(document(errors=["boom"], start=START + timedelta(minutes=10), end=START + timedelta(minutes=11)))
    assert value(metrics, "detection_rule_last_execution_failed") == 1
    assert value(metrics, "detection_rule_executions_total", status="failed") == 1
    assert value(metrics, "detection_rule_executions_total", status="succeeded") == 1
    assert value(metrics, "detection_rule_last_success_timestamp_seconds") == (START + timedelta(seconds=3)).timestamp()
    assert value(metrics, "detection_rule_alerts_created_total") == 8


@pytest.mark.parametrize(
    ("changes", "metric", "expected"),
    [
        ({"warnings": [MAX_ALERTS_WARNING]}, "detection_rule_last_max_alerts_reached", 1),
        ({"warnings": ["some other warning"]}, "detection_rule_last_max_alerts_reached", 0),
        ({"warnings": ["a", "b"]}, "detection_rule_last_execution_warnings", 2),
        ({"metrics": {"execution_gap_duration_s": 7200}}, "detection_rule_last_gap_seconds", 7200),
        ({"metrics": {"dead_lettered": 3}}, "detection_rule_dead_letters_total", 3),
        ({"metrics": {"hits": "many"}}, "detection_rule_hits_total", 0),  # hostile or broken values count as 0
        ({"metrics": {"hits": -4}}, "detection_rule_hits_total", 0),
        ({"metrics": {"hits": True}}, "detection_rule_hits_total", 0),
        ({"warnings": ["partial"]}, "detection_rule_last_success_timestamp_seconds", START.timestamp() + 3),
    ],
)
def test_document_fields_feed_their_metric(changes: dict[str, Any], metric: str, expected: float) -> None:
    metrics = RuleMetrics()
    assert metrics.observe(document(**changes))
    assert value(metrics, metric) == expected


@pytest.mark.parametrize(
    "broken",
    [
        lambda doc: doc["execution"].update(status="running"),  # the write-ahead record: not finished yet
        lambda doc: doc["execution"].update(status="unknown"),
        lambda doc: doc["rule"].update(rule_id=None),
        lambda doc: doc.pop("rule"),
    ],
)
def test_records_that_are_not_finished_executions_are_not_counted(broken: Any) -> None:
    metrics = RuleMetrics()
    doc = document()
    broken(doc)
    assert not metrics.observe(doc)
    assert metrics.registry.get_sample_value("detection_rule_executions_total", {**LABELS, "status": "running"}) is None
    assert metrics.rule_ids() == []


def test_a_renamed_rule_drops_its_last_values_under_the_old_name() -> None:
    metrics = RuleMetrics()
    metrics.observe(document(errors=["boom"]), timedelta(minutes=5))
    metrics.observe(document(rule_name="Rule one, renamed"), timedelta(minutes=5))
    assert value(metrics, "detection_rule_last_execution_failed") is None
    assert value(metrics, "detection_rule_interval_seconds") is None
    assert value(metrics, "detection_rule_last_execution_failed", rule_name="Rule one, renamed") == 0


def test_metrics_live_in_their_own_registry() -> None:
    RuleMetrics().observe(document())
    assert b"detection_rule" not in generate_latest(REGISTRY)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@gateway.example:9091/base", "https://gateway.example:9091/base"),
        ("http://gateway:9091", "http://gateway:9091"),
        ("http://user:secret@[::1]:9091/?token=secret#x", "http://[::1]:9091/"),
        ("http://gateway:port/", "<malformed URL>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
