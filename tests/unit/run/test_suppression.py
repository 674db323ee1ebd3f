"""Alert suppression, the pure parts: Kibana's hashes, the grouping search, groups, suppressed alerts and their
updates, the duration and the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.objecthash import JsDate, js_number, object_hash, serialize
from job.alerts.suppression import (
    Group,
    OpenAlert,
    duration_start,
    instance_id,
    suppressed_alert_id,
    suppression_fields,
    update_document,
)
from job.rules.parts import SuppressionDuration
from job.ruletypes.query.groups import (
    bucket_terms,
    earliest_event,
    grouping_aggregation,
    missing_fields_filter,
    parse_group,
    resume_point,
)
from job.search.clauses import TimestampFields, group_clause, remaining_clause
from job.window import Window

T0 = datetime(2020, 10, 28, 5, 0, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(minutes=30), T0 + timedelta(minutes=30))
PLAIN = TimestampFields("@timestamp", None)
OVERRIDE = TimestampFields("event.ingested", "@timestamp")
HOST_USER = (("host.name", "host-1"), ("user.id", 2))


# Kibana's own test vectors for createSuppressedAlertInstanceId (object-hash of [terms, rule id, space]).
@pytest.mark.parametrize(
    ("terms", "rule_id", "space_id", "expected"),
    [
        (HOST_USER, "abc", "default", "89a50ea19a73a06ceb2f1882de27be64ef6bb4c0"),
        ((("host.name", "host-1"), ("user.id", 3)), "abc", "default", "b40340d217f64a6b97aaa1d3d3120d3b6a1a6955"),
        (HOST_USER, "abc", "other-space", "8dace33aaeea3e38cbe608b8ac21439b3a9fac05"),
        (HOST_USER, "other-id", "default", "2c7b540ae3a3310271f7cbc44a3ba49fd840636b"),
        ((("host.name", "host-2"), ("user.id", 2)), "abc", "default", "d8505a6fe8fd4c9b74367b89a7fd19a72ed1077b"),
        ((("host.name", "host-1"),), "abc", "default", "657c4202086c305bb4406217099cd586e27417f7"),
        ((("host.name", None),), "abc", "default", "879f4db2774775831acd1b1477109a3757540b8c"),
    ],
)
def test_instance_id_is_kibanas(terms: Any, rule_id: str, space_id: str, expected: str) -> None:
    assert instance_id(terms, rule_id, space_id) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "Null"),
        (True, "bool:true"),
        (2, "number:2"),
        (1.5, "number:1.5"),
        ("", "string:0:"),
        ("𝄞x", "string:3:𝄞x"),  # UTF-16 units: the clef takes two
        (JsDate(datetime(2020, 10, 28, 5, 0, 0, 123456, tzinfo=UTC)), "date:2020-10-28T05:00:00.123Z"),
        (["a", 1, None], "array:3:string:1:anumber:1Null"),
        ([], "array:0:"),
    ],
)
def test_serialize(value: Any, text: str) -> None:
    assert serialize(value) == text


def test_serialize_an_object_spells_out_javascripts_hidden_keys_once() -> None:
    proto = "string:9:__proto__:object:3:string:9:prototype:Undefined,string:9:__proto__:Null,"
    native = "string:11:constructor:fn:string:8:[native]string:20:function-name:Object"
    assert serialize([{"b": 1, "a": 2}, {}]) == (
        "array:2:object:5:string:9:prototype:Undefined,"
        + proto
        + native
        + "object:0:,,"
        + native
        + "string:12:[CIRCULAR:3],string:1:a:number:2,string:1:b:number:1,"
        + "object:3:string:9:prototype:Undefined,string:9:__proto__:string:12:[CIRCULAR:2],"
        + native
        + "string:12:[CIRCULAR:3],"
    )


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (-0.0, "0"),
        (100.0, "100"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1e+21"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.23e-5, "0.0000123"),
        (2**60, "1152921504606847000"),  # read by JavaScript as the nearest double
        (2**53, "9007199254740992"),
    ],
)
def test_js_number(number: float, text: str) -> None:
    assert js_number(number) == text


def test_a_lone_surrogate_hashes_as_node_encodes_it() -> None:
    assert object_hash(["\udcc0"]) == object_hash(["\ufffd"])


def _group(**changes: Any) -> Group:
    event = {"_index": "logs-1", "_id": "e1", "_source": {"@timestamp": "2020-10-28T05:00:00.000Z"}}
    values: dict[str, Any] = {"terms": HOST_USER, "count": 3, "start": T0, "end": T0 + timedelta(seconds=2)}
    values["event"] = event
    return Group(**(values | changes))


def test_suppressed_alert_id_golden_value() -> None:
    """Kibana's scheme with the rule_id as the rule: frozen, or reruns would write a group twice."""
    group = _group()
    assert suppressed_alert_id(group, "abc", "default") == "86f6674c20c9a75d1c6909894a2bb6ba9495182c"


@pytest.mark.parametrize(
    "changes",
    [
        {"terms": (("host.name", "host-1"), ("user.id", 3))},
        {"start": T0 - timedelta(milliseconds=1)},
        {"end": T0 + timedelta(seconds=3)},
        {"event": {"_index": "logs-2", "_id": "e1"}},
        {"event": {"_index": "logs-1", "_id": "e2"}},
    ],
)
def test_every_part_changes_the_suppressed_alert_id(changes: dict[str, Any]) -> None:
    assert suppressed_alert_id(_group(**changes), "abc", "default") != suppressed_alert_id(_group(), "abc", "default")


def test_suppression_fields() -> None:
    fields = suppression_fields(_group(), "abc", "default")
    assert fields == {
        "kibana.alert.suppression.terms": [{"field": "host.name", "value": "host-1"}, {"field": "user.id", "value": 2}],
        "kibana.alert.suppression.start": "2020-10-28T05:00:00.000Z",
        "kibana.alert.suppression.end": "2020-10-28T05:00:02.000Z",
        "kibana.alert.suppression.docs_count": 2,  # every event but the one the alert is built from
        "kibana.alert.instance.id": "89a50ea19a73a06ceb2f1882de27be64ef6bb4c0",
    }


TOP_HITS = {
    "top_hits": {
        "size": 1,
        "sort": [{"@timestamp": {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}}],
    }
}


@pytest.mark.parametrize(
    ("missing_bucket", "terms"),
    [
        (True, {"field": "host.name", "missing_bucket": True, "missing_order": "last"}),
        (False, {"field": "host.name"}),
    ],
)
def test_grouping_aggregation_is_kibanas(missing_bucket: bool, terms: dict[str, Any]) -> None:
    body = grouping_aggregation(["host.name"], size=101, fields=PLAIN, missing_bucket=missing_bucket)
    assert body == {
        "eventGroups": {
            "composite": {"sources": [{"host.name": {"terms": terms}}], "size": 101},
            "aggs": {
                "topHits": TOP_HITS,
                "max_timestamp": {"max": {"field": "@timestamp"}},
                "min_timestamp": {"min": {"field": "@timestamp"}},
            },
        }
    }


def test_grouping_aggregation_pages_and_falls_back() -> None:
    after = {"host.name": "h9", "user.id": None}
    body = grouping_aggregation(["host.name", "user.id"], size=10, fields=OVERRIDE, missing_bucket=True, after=after)
    composite = body["eventGroups"]["composite"]
    assert [next(iter(source)) for source in composite["sources"]] == ["host.name", "user.id"]
    assert composite["after"] == after
    fallback = body["eventGroups"]["aggs"]["fallback"]
    assert fallback["filter"] == {"bool": {"must_not": [{"exists": {"field": "event.ingested"}}]}}
    assert set(fallback["aggs"]) == {"topHits", "max_timestamp", "min_timestamp"}
    assert fallback["aggs"]["min_timestamp"] == {"min": {"field": "@timestamp"}}
    light = grouping_aggregation(["host.name"], size=10, fields=OVERRIDE, missing_bucket=True, light=True)
    assert light["eventGroups"]["aggs"] == {
        "min_timestamp": {"min": {"field": "event.ingested"}},
        "fallback": {"filter": fallback["filter"], "aggs": {"min_timestamp": {"min": {"field": "@timestamp"}}}},
    }


def test_missing_fields_filter_is_kibanas() -> None:
    assert missing_fields_filter(["a", "b"]) == {
        "bool": {
            "should": [
                {"bool": {"must_not": [{"exists": {"field": "a"}}]}},
                {"bool": {"must_not": [{"exists": {"field": "b"}}]}},
            ]
        }
    }


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (HOST_USER, {"bool": {"filter": [{"term": {"host.name": "host-1"}}, {"term": {"user.id": 2}}]}}),
        (
            (("host.name", None), ("user.id", 2)),
            {"bool": {"filter": [{"term": {"user.id": 2}}], "must_not": [{"exists": {"field": "host.name"}}]}},
        ),
    ],
)
def test_group_clause(terms: Any, expected: dict[str, Any]) -> None:
    assert group_clause(terms) == expected


@pytest.mark.parametrize(
    ("boundary", "excluded"),
    [
        (None, None),  # nothing counted yet
        (WINDOW.start - timedelta(milliseconds=1), None),  # counted before the window: all of it is new
        (T0, "2020-10-28T05:00:00.000Z"),
    ],
)
def test_remaining_clause_leaves_out_what_was_counted(boundary: datetime | None, excluded: str | None) -> None:
    clause = remaining_clause((("host.name", None),), PLAIN, WINDOW, boundary)
    must_not = clause["bool"]["must_not"]
    assert must_not[0] == {"exists": {"field": "host.name"}}
    if excluded is None:
        assert len(must_not) == 1
    else:
        assert must_not[1] == {
            "range": {
                "@timestamp": {
                    "gte": "2020-10-28T04:30:00.000Z",
                    "lte": excluded,
                    "format": "strict_date_optional_time",
                }
            }
        }


def _hit(doc_id: str, sort: int) -> dict[str, Any]:
    return {"hits": {"hits": [{"_index": "logs-1", "_id": doc_id, "_source": {}, "sort": [sort]}]}}


NANOS = 1_000_000


@pytest.mark.parametrize(
    ("bucket", "first", "start", "end"),
    [
        (
            {
                "doc_count": 5,
                "topHits": _hit("p", 10 * NANOS),
                "min_timestamp": {"value": 10.0},
                "max_timestamp": {"value": 2000.0},
            },
            "p",
            10,
            2000,
        ),
        (  # an event lacking the override comes first by @timestamp
            {
                "doc_count": 5,
                "topHits": _hit("p", 10 * NANOS),
                "min_timestamp": {"value": 10.0},
                "max_timestamp": {"value": 20.0},
                "fallback": {
                    "topHits": _hit("f", 5 * NANOS),
                    "min_timestamp": {"value": 5.0},
                    "max_timestamp": {"value": 30.0},
                },
            },
            "f",
            5,
            30,
        ),
        (  # no event has the override
            {
                "doc_count": 1,
                "topHits": _hit("p", 2**63 - 1),
                "min_timestamp": {"value": None},
                "max_timestamp": {"value": None},
                "fallback": {
                    "topHits": _hit("f", 7 * NANOS),
                    "min_timestamp": {"value": 7.9},
                    "max_timestamp": {"value": 7.9},
                },
            },
            "f",
            7,
            7,
        ),
    ],
)
def test_parse_group(bucket: dict[str, Any], first: str, start: int, end: int) -> None:
    group = parse_group(bucket, HOST_USER, WINDOW)
    assert group is not None
    assert group.event["_id"] == first
    assert (group.start, group.end) == (
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=start),
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=end),
    )
    assert group.count == bucket["doc_count"]


def test_a_group_without_timestamps_spans_the_window_and_an_empty_one_is_none() -> None:
    group = parse_group({"doc_count": 2, "topHits": _hit("p", 2**63 - 1)}, HOST_USER, WINDOW)
    assert group is not None and (group.start, group.end) == (WINDOW.start, WINDOW.end)
    assert parse_group({"doc_count": 0, "topHits": {"hits": {"hits": []}}}, HOST_USER, WINDOW) is None
    assert earliest_event({}) is None


def test_bucket_terms_follow_group_by_order() -> None:
    assert bucket_terms({"user.id": 2, "host.name": None}, ["host.name", "user.id"]) == (
        ("host.name", None),
        ("user.id", 2),
    )


@pytest.mark.parametrize(
    ("value", "unit", "delta"),
    [(30, "s", timedelta(seconds=30)), (5, "m", timedelta(minutes=5)), (24, "h", timedelta(hours=24))],
)
def test_duration_arithmetic(value: int, unit: str, delta: timedelta) -> None:
    duration = SuppressionDuration(value=value, unit=unit)  # type: ignore[arg-type]
    assert duration.delta == delta
    assert duration_start(T0, duration) == T0 - delta


ALERT = OpenAlert(index="alerts-000001", doc_id="x", seq_no=4, primary_term=1, end=T0, docs_count=2)


@pytest.mark.parametrize(
    ("alert", "group_end", "expected"),
    [
        (ALERT, T0 + timedelta(minutes=1), {"kibana.alert.suppression.end": "2020-10-28T05:01:00.000Z"}),
        (ALERT, T0 - timedelta(minutes=1), {}),  # an earlier end never moves the alert's back
        (OpenAlert("i", "x", 1, 1, None, 0), T0, {"kibana.alert.suppression.end": "2020-10-28T05:00:00.000Z"}),
    ],
)
def test_update_document(alert: OpenAlert, group_end: datetime, expected: dict[str, Any]) -> None:
    now = T0 + timedelta(hours=1)
    document = update_document(alert, _group(end=group_end, count=3), now)
    assert document == {
        "kibana.alert.last_detected": "2020-10-28T06:00:00.000Z",
        "kibana.alert.suppression.docs_count": alert.docs_count + 3,  # the group's earliest event counts too
        **expected,
    }


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        ([T0, T0 - timedelta(minutes=1)], T0 - timedelta(minutes=1)),
        ([WINDOW.start - timedelta(hours=1)], WINDOW.start),
        ([], WINDOW.start),
    ],
)
def test_resume_point(starts: list[datetime], expected: datetime) -> None:
    assert resume_point(starts, WINDOW) == expected
