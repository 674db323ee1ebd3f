"""Suppression of threshold and new_terms alerts: groups from the event, folding in memory, folding into an alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.objecthash import object_hash
from job.alerts.suppression import OpenAlert, Suppression, fold_update, suppress_in_memory, uncounted
from job.ruletypes.new_terms.suppression import (
    event_time,
    lacks_group_field,
    partition,
    suppression_of,
    suppression_terms,
)
from job.search.clauses import TimestampFields
from job.writing.hit_alerts import HitAlert
from job.writing.writer import Candidate

T = datetime(2020, 10, 28, 5, 45, tzinfo=UTC)
NOW = datetime(2020, 10, 28, 6, 0, tzinfo=UTC)
PLAIN = TimestampFields("@timestamp", None)
OVERRIDE = TimestampFields("event.ingested", "@timestamp")


def _event(fields: dict[str, Any]) -> dict[str, Any]:
    return {"_index": "i", "_id": "1", "_source": {}, "fields": fields}


@pytest.mark.parametrize(
    ("fields", "group_by", "terms"),
    [
        ({"host.name": ["host-0"]}, ["host.name"], [{"field": "host.name", "value": ["host-0"]}]),
        (
            {"host.name": ["b", "a"], "agent.version": ["1"]},
            ["host.name", "agent.version"],
            [{"field": "host.name", "value": ["a", "b"]}, {"field": "agent.version", "value": ["1"]}],
        ),
        ({"port": [443, 80, 8080]}, ["port"], [{"field": "port", "value": [80, 443, 8080]}]),
        ({}, ["host.name"], [{"field": "host.name", "value": None}]),
    ],
)
def test_suppression_terms_come_from_the_events_fields(
    fields: dict[str, Any], group_by: list[str], terms: list[dict[str, Any]]
) -> None:
    assert suppression_terms(_event(fields), group_by) == terms


@pytest.mark.parametrize(
    ("fields", "timestamps", "expected"),
    [
        ({"@timestamp": ["2020-10-28T05:45:00.000Z"]}, PLAIN, T),
        ({"@timestamp": ["2020-10-28T05:00:00.000Z"], "event.ingested": ["2020-10-28T05:45:00.000Z"]}, OVERRIDE, T),
        ({"@timestamp": ["2020-10-28T05:45:00.000Z"]}, OVERRIDE, T),  # the fallback
        ({}, PLAIN, NOW),  # none: the alert time
        ({"@timestamp": ["garbage"]}, PLAIN, NOW),
    ],
)
def test_event_time(fields: dict[str, Any], timestamps: TimestampFields, expected: datetime) -> None:
    assert event_time(_event(fields), timestamps, NOW) == expected


def _alert(name: str, fields: dict[str, Any]) -> Candidate:
    return Candidate(name, HitAlert(_event(fields), {"kibana.alert.new_terms": [name]}))


def test_a_suppressed_new_terms_alert() -> None:
    fields = {"host.name": ["host-0"], "@timestamp": ["2020-10-28T05:45:00.000Z"]}
    item = _alert("x", fields).item
    suppression = suppression_of(item, ["host.name"], PLAIN, rule_id="r", space_id="default", now=NOW)
    terms = [{"field": "host.name", "value": ["host-0"]}]
    assert suppression.fields() == {
        "kibana.alert.instance.id": object_hash([terms, "r", "default"]),
        "kibana.alert.suppression.terms": terms,
        "kibana.alert.suppression.start": "2020-10-28T05:45:00.000Z",
        "kibana.alert.suppression.end": "2020-10-28T05:45:00.000Z",
        "kibana.alert.suppression.docs_count": 0,
    }


@pytest.mark.parametrize(
    ("fields", "lacks"),
    [({"a": [1], "b": ["x"]}, False), ({"a": [1]}, True), ({}, True)],
)
def test_lacks_group_field(fields: dict[str, Any], lacks: bool) -> None:
    assert lacks_group_field(_event(fields), ["a", "b"]) is lacks


@pytest.mark.parametrize(
    ("suppress_missing", "grouped", "ordinary"), [(True, ["full", "part"], []), (False, ["full"], ["part"])]
)
def test_partition(suppress_missing: bool, grouped: list[str], ordinary: list[str]) -> None:
    alerts = [_alert("full", {"a": [1], "b": [2]}), _alert("part", {"a": [1]})]
    found = partition(alerts, ["a", "b"], suppress_missing=suppress_missing)
    assert ([a.doc_id for a in found[0]], [a.doc_id for a in found[1]]) == (grouped, ordinary)


def _item(name: str, group: str, minutes: int, docs_count: int = 0) -> tuple[str, Suppression]:
    moment = T + timedelta(minutes=minutes)
    return name, Suppression(group, [], moment, moment, docs_count)


@pytest.mark.parametrize(
    ("items", "kept", "folded"),
    [
        # Kibana's test: new terms .3 and .4 of host-0 in one run: one alert, docs_count 1
        ([_item("ip3", "host-0", 0), _item("ip4", "host-0", 0)], [("ip3", 1, 0, 0)], ["ip4"]),
        ([_item("late", "g", 5), _item("early", "g", 1)], [("early", 1, 1, 5)], ["late"]),
        ([_item("a", "g", 0, docs_count=2), _item("b", "g", 3, docs_count=4)], [("a", 7, 0, 3)], ["b"]),
        ([_item("a", "g1", 2), _item("b", "g2", 1)], [("b", 0, 1, 1), ("a", 0, 2, 2)], []),
    ],
)
def test_suppress_in_memory(
    items: list[tuple[str, Suppression]], kept: list[tuple[str, int, int, int]], folded: list[str]
) -> None:
    stays, gone = suppress_in_memory(items)
    summary = [
        (
            name,
            suppression.docs_count,
            (suppression.start - T) // timedelta(minutes=1),
            (suppression.end - T) // timedelta(minutes=1),
        )
        for name, suppression in stays
    ]
    assert (summary, [name for name, _ in gone]) == (kept, folded)


@pytest.mark.parametrize(
    ("boundaries", "after", "counted"),
    [
        ({}, ["early", "at", "late", "other"], []),  # no group counted anything yet
        ({"g": None}, ["early", "at", "late", "other"], []),  # met, no alert reaching into the window
        # the group's alerts counted up to minute 3: at or before it, counted; after it, not
        ({"g": T + timedelta(minutes=3)}, ["late", "other"], ["early", "at"]),
        ({"g": T + timedelta(minutes=3), "h": T + timedelta(minutes=9)}, ["late"], ["early", "at", "other"]),
    ],
)
def test_uncounted(boundaries: dict[str, datetime | None], after: list[str], counted: list[str]) -> None:
    alerts = [_item("early", "g", 1), _item("at", "g", 3), _item("late", "g", 4), _item("other", "h", 2)]
    found = uncounted(alerts, boundaries)
    assert ([name for name, _ in found[0]], [name for name, _ in found[1]]) == (after, counted)


def _open(start: int, end: int | None, docs_count: int, execution: str) -> OpenAlert:
    return OpenAlert(
        index="alerts-000001",
        doc_id="a",
        seq_no=3,
        primary_term=1,
        start=T + timedelta(minutes=start),
        end=None if end is None else T + timedelta(minutes=end),
        docs_count=docs_count,
        execution_uuid=execution,
    )


@pytest.mark.parametrize(
    ("existing", "new", "document"),
    [
        # a later run folds one more alert in: docs_count + 0 + 1, the end moves, the start stays
        (_open(0, 0, 1, "run-1"), (30, 30, 0), {"docs_count": 2, "end": "2020-10-28T06:15:00.000Z"}),
        # a group that found 2 more in memory: + 2 + 1
        (_open(0, 40, 0, "run-1"), (30, 30, 2), {"docs_count": 3}),
        # the same run, an earlier start: the start moves too
        (
            _open(10, 10, 0, "run-2"),
            (5, 12, 0),
            {"docs_count": 1, "end": "2020-10-28T05:57:00.000Z", "start": "2020-10-28T05:50:00.000Z"},
        ),
        (_open(0, None, 4, "run-1"), (1, 1, 0), {"docs_count": 5, "end": "2020-10-28T05:46:00.000Z"}),
    ],
)
def test_fold_update(existing: OpenAlert, new: tuple[int, int, int], document: dict[str, Any]) -> None:
    start, end, docs_count = new
    suppression = Suppression("g", [], T + timedelta(minutes=start), T + timedelta(minutes=end), docs_count)
    expected = {"kibana.alert.last_detected": "2020-10-28T06:00:00.000Z"}
    expected.update({f"kibana.alert.suppression.{key}": value for key, value in document.items()})
    assert fold_update(existing, suppression, now=NOW, execution_uuid="run-2") == expected
