"""Threshold buckets as alerts: the spec's test vector, threshold_result, the synthetic hit, ids, suppression."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.alerts.objecthash import object_hash
from job.alerts.reason import build_reason
from job.rules.aggregation_params import ThresholdParams
from job.ruletypes.threshold.alerts import (
    THRESHOLD_RESULT,
    BucketAlerts,
    alert_id,
    bucket_uuid,
    suppressed_alert_id,
    synthetic_hit,
    threshold_result,
    uuid_name,
)
from job.ruletypes.threshold.search import ThresholdBucket
from job.window import Window
from job.writing.hit_alerts import HitAlert
from job.writing.writer import Candidate

STARTED = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)
WINDOW = Window(datetime(2025, 1, 1, 0, 0, tzinfo=UTC), STARTED)
FIRST = datetime(2025, 1, 1, 0, 1, 2, 345000, tzinfo=UTC)
LAST = datetime(2025, 1, 1, 0, 4, 0, tzinfo=UTC)


def _params(fields: list[str], value: int = 1, cardinality: str | None = None) -> ThresholdParams:
    data: dict[str, Any] = {"field": fields, "value": value}
    if cardinality:
        data["cardinality"] = [{"field": cardinality, "value": 2}]
    return ThresholdParams.model_validate(data)


def _bucket(terms: tuple[tuple[str, Any], ...], count: int = 30, cardinality: int | None = None) -> ThresholdBucket:
    return ThresholdBucket(terms=terms, count=count, first=FIRST, last=LAST, cardinality=cardinality)


def test_the_specs_test_vector() -> None:
    name = uuid_name("abc", STARTED, ["host.name", "user.name"], ["h1", "bob"])
    assert name == "abc2025-01-01T00:05:00.000Zhost.name,user.namebob,h1"
    assert bucket_uuid(name) == "7fa90157-65cc-55ef-bf76-6f20c6ded197"
    assert (
        alert_id("logs-*,winlogbeat-*", "7fa90157-65cc-55ef-bf76-6f20c6ded197", "4f1e", "default")
        == "b71d004ec06292f78894322e1476a848f5459b2ea60595248b47620dce86073d"
    )


@pytest.mark.parametrize(
    ("fields", "values", "tail"),
    [
        ([], [], ""),
        (["a"], ["x"], "ax"),
        (["port", "pid"], [10, 9], "port,pid10,9"),  # JavaScript's default sort compares text
        (["a", "b"], [True, 1.0], "a,b1,true"),
        (["a", "b"], ["b,c", "a"], "a,ba,b,c"),
    ],
)
def test_uuid_name(fields: list[str], values: list[Any], tail: str) -> None:
    assert uuid_name("r", STARTED, fields, values) == "r2025-01-01T00:05:00.000Z" + tail


@pytest.mark.parametrize(
    ("params", "bucket", "expected"),
    [
        (
            _params(["host.name", "user.name"]),
            _bucket((("host.name", "h1"), ("user.name", "bob"))),
            {
                "terms": [{"field": "host.name", "value": "h1"}, {"field": "user.name", "value": "bob"}],
                "count": 30,
                "from": "2025-01-01T00:01:02.345Z",
            },
        ),
        (
            _params([], cardinality="user.name"),
            ThresholdBucket(terms=(), count=4, first=None, last=None, cardinality=3),
            {
                "terms": [],
                "count": 4,
                "from": "2025-01-01T00:00:00.000Z",
                "cardinality": [{"field": "user.name", "value": 3}],
            },
        ),
    ],
)
def test_threshold_result(params: ThresholdParams, bucket: ThresholdBucket, expected: dict[str, Any]) -> None:
    assert threshold_result(bucket, params, WINDOW) == expected


def test_synthetic_hit() -> None:
    bucket = _bucket((("host.name", "h1"), ("destination.port", 443)))
    result = {"count": 30}
    assert synthetic_hit(bucket, result, "logs-*,winlogbeat-*", "u-1") == {
        "_index": "logs-*,winlogbeat-*",
        "_id": "u-1",
        "_source": {
            "@timestamp": "2025-01-01T00:04:00.000Z",
            "host.name": "h1",
            "destination.port": 443,
            "threshold_result": result,
        },
    }


@pytest.mark.parametrize(
    ("terms", "reason"),
    [
        ((("host.name", "h1"),), "event on h1 created low alert R."),
        ((("user.name", "bob"), ("host.name", "h1")), "event by bob on h1 created low alert R."),
        ((), "event created low alert R."),
        ((("process.name", "cmd.exe"),), "event with process cmd.exe, created low alert R."),
    ],
)
def test_the_specs_reasons_from_the_synthetic_source(terms: tuple[tuple[str, Any], ...], reason: str) -> None:
    hit = synthetic_hit(_bucket(terms), {}, "logs-*", "u")
    assert build_reason(hit["_source"], severity="low", rule_name="R") == reason


class Alert:
    """A candidate, read as the would-be alert it is: its id, hit and the type's fields."""

    def __init__(self, candidate: Candidate) -> None:
        item: HitAlert = candidate.item
        self.alert_id, self.hit, self.fields, self.about = candidate.doc_id, item.hit, item.fields, item.about


def _alerts(buckets: list[ThresholdBucket], fields: list[str], suppressing: bool = False) -> list[Alert]:
    """The would-be alerts of ``buckets``; ``suppressing``: as a rule with a duration writes them (each with its
    group's suppression fields, no other alert of its group folded into it)."""
    alerts = BucketAlerts(_params(fields), ["logs-*", "winlogbeat-*"], "abc", "default", STARTED, WINDOW)
    if not suppressing:
        return [Alert(candidate) for candidate in alerts.candidates(buckets)]
    return [Alert(Candidate(found.doc_id, found.item.suppressed(group))) for found, group in alerts.grouped(buckets)]


def test_would_be_alerts_reproduce_the_vector() -> None:
    [alert] = _alerts([_bucket((("host.name", "h1"), ("user.name", "bob")))], ["host.name", "user.name"])
    assert alert.hit["_id"] == "7fa90157-65cc-55ef-bf76-6f20c6ded197"
    assert alert.alert_id == alert_id("logs-*,winlogbeat-*", alert.hit["_id"], "abc", "default")
    assert alert.fields == {THRESHOLD_RESULT: alert.hit["_source"]["threshold_result"]}
    assert alert.about == "the group host.name='h1', user.name='bob' (30 events)"


@pytest.mark.parametrize(
    ("keys", "kibana_ids"),
    [
        ([("h1", "bob"), ("bob", "h1")], 1),  # the swapped values share Kibana's UUID name
        ([("a,b", "c"), ("a", "b,c")], 1),  # so do values holding commas
        ([("h1", "bob"), ("h2", "bob")], 2),
    ],
)
def test_every_bucket_gets_its_own_alert(keys: list[tuple[str, str]], kibana_ids: int) -> None:
    buckets = [_bucket((("f1", first), ("f2", second))) for first, second in keys]
    alerts = _alerts(buckets, ["f1", "f2"])
    assert len({alert.alert_id for alert in alerts}) == len({alert.hit["_id"] for alert in alerts}) == len(keys)
    kibana = {bucket_uuid(uuid_name("abc", STARTED, ["f1", "f2"], bucket.values)) for bucket in buckets}
    assert len(kibana) == kibana_ids
    assert alerts[0].hit["_id"] in kibana  # the first bucket keeps Kibana's id


def test_the_same_run_gives_the_same_ids() -> None:
    buckets = [_bucket((("h", "x"),)), _bucket((("h", "y"),))]
    assert [a.alert_id for a in _alerts(buckets, ["h"])] == [a.alert_id for a in _alerts(buckets, ["h"])]


def test_suppressed_alerts() -> None:
    [alert] = _alerts([_bucket((("host.name", "h1"), ("user.name", "bob")))], ["host.name", "user.name"], True)
    uuid = "7fa90157-65cc-55ef-bf76-6f20c6ded197"
    assert alert.alert_id == suppressed_alert_id("logs-*,winlogbeat-*", uuid, "abc", "default")
    assert alert.alert_id == object_hash(["logs-*,winlogbeat-*", uuid, "default:abc"])
    assert alert.fields == {
        THRESHOLD_RESULT: alert.hit["_source"]["threshold_result"],
        "kibana.alert.instance.id": object_hash([["bob", "h1"], "abc", "default"]),
        "kibana.alert.suppression.terms": [
            {"field": "host.name", "value": "h1"},
            {"field": "user.name", "value": "bob"},
        ],
        "kibana.alert.suppression.start": "2025-01-01T00:01:02.345Z",
        "kibana.alert.suppression.end": "2025-01-01T00:04:00.000Z",
        "kibana.alert.suppression.docs_count": 0,
    }


def test_a_suppressed_group_sorts_numbers_by_value() -> None:
    [alert] = _alerts([_bucket((("port", 10), ("pid", 9)))], ["port", "pid"], True)
    assert alert.fields["kibana.alert.instance.id"] == object_hash([[9, 10], "abc", "default"])
    assert alert.hit["_id"] == bucket_uuid("abc2025-01-01T00:05:00.000Zport,pid10,9")


def test_a_suppressed_bucket_without_timestamps_spans_the_alert_time() -> None:
    bucket = ThresholdBucket(terms=(("h", "x"),), count=3, first=None, last=None, cardinality=None)
    [alert] = _alerts([bucket], ["h"], True)
    assert alert.fields["kibana.alert.suppression.start"] == alert.fields["kibana.alert.suppression.end"]
    assert alert.fields["kibana.alert.suppression.start"] == "2025-01-01T00:05:00.000Z"
    assert "@timestamp" not in alert.hit["_source"]
