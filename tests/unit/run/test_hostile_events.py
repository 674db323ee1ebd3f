"""Hostile events, without Elasticsearch: nothing that walks an event recurses, nothing unencodable
reaches a bulk body, and an event that cannot become an alert fails alone."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from job.alerts.build import RunAlerts, build_alert
from job.alerts.conform import conform, mapped_paths
from job.alerts.source_fields import leaves, subtree_leaves, values_at
from job.alerts.template import alert_properties
from job.text.jsoncodec import (
    RECURSION_LIMIT,
    TolerantJsonSerializer,
    allow_deep_documents,
    document_bytes,
    safe_document_bytes,
)
from job.writing.writer import build_writes
from tests.alert_samples import EXECUTION_UUID, NOW, SPACE_ID, endgame_hit, seed_rule

DEEPER_THAN_PYTHON_RECURSES = 20_000


def _nested(depth: int, *, array: bool = False) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value] if array else {"a": value}
    return value


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, dict | list):
        value = value["a"] if isinstance(value, dict) else value[0]
        depth += 1
    return depth


@pytest.mark.parametrize("array", [False, True])
def test_conform_copies_any_depth_without_recursion(array: bool) -> None:
    paths = mapped_paths(alert_properties())
    document = {"unmapped": _nested(DEEPER_THAN_PYTHON_RECURSES, array=array), "host": {"name": "h"}}
    copied = conform(document, paths)
    assert _depth(copied["unmapped"]) == DEEPER_THAN_PYTHON_RECURSES
    assert copied["host"] == {"name": "h"}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"x": math.inf, "y": 1.5}, {"y": 1.5}),
        ({"x": [1, -math.inf, 2.0, math.nan]}, {"x": [1, 2.0]}),
        ({"x": {"y": {"z": math.inf}}}, {"x": {"y": {}}}),
        ({"source": {"port": math.inf, "ip": "10.0.0.1"}}, {"source": {"ip": "10.0.0.1"}}),  # mapped long
        ({"source": {"port": [math.inf, 443]}}, {"source": {"port": [443]}}),
        ({"host.name": -math.inf}, {}),
        ({"n": 10**30, "f": 1e308}, {"n": 10**30, "f": 1e308}),  # large but finite: kept
    ],
)
def test_conform_drops_non_finite_numbers(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert conform(document, mapped_paths(alert_properties())) == expected


def test_reading_fields_of_deep_events_does_not_recurse() -> None:
    deep_array = _nested(DEEPER_THAN_PYTHON_RECURSES, array=True)
    assert values_at({"host": {"name": deep_array}}, "host.name") == ["bottom"]
    deep_event = {"event": {"x": _nested(DEEPER_THAN_PYTHON_RECURSES)}}
    [(path, value)] = subtree_leaves(deep_event, "event").items()
    assert path.count(".") == DEEPER_THAN_PYTHON_RECURSES and value == "bottom"
    assert len(list(leaves({"a": {"b": 1}, "c": {"d": {"e": [1]}}}))) == 2


def test_the_safe_serializer_is_ascii_and_refuses_what_json_cannot_carry() -> None:
    assert safe_document_bytes({"s": "é\ud800", "n": 1}) == b'{"s":"\\u00e9\\ud800","n":1}'
    with pytest.raises(ValueError):
        safe_document_bytes({"x": math.inf})
    with pytest.raises(RecursionError):
        document_bytes(_nested(DEEPER_THAN_PYTHON_RECURSES))


@pytest.mark.parametrize(
    ("document", "fast"),
    [
        ({"s": "café", "n": 1, "f": 0.1, "b": [True, None]}, True),
        ({"s": "é\ud800", "n": 1}, False),  # a lone surrogate: the ASCII escape, never invalid UTF-8
        ({"deep": _nested(300)}, False),  # deeper than orjson writes
        ({"deep": _nested(1000, array=True)}, False),  # as deep as Elasticsearch accepts
        ({"n": 10**30}, False),  # beyond 64 bits
        ({"n": -(2**63), "m": 2**64 - 1}, True),
    ],
)
def test_document_bytes_falls_back_per_document_to_the_safe_serializer(document: dict[str, Any], fast: bool) -> None:
    allow_deep_documents()
    written = document_bytes(document)
    assert json.loads(written) == document
    if not fast:  # what orjson cannot write faithfully is written by the standard library, as before
        assert written == safe_document_bytes(document)


def test_deep_documents_decode_after_the_limit_is_raised() -> None:
    allow_deep_documents()
    text = '{"a":' * 1000 + "1" + "}" * 1000
    body = b'{"hits":{"hits":[{"_source":' + text.encode() + b"}]}}"
    decoded = TolerantJsonSerializer().loads(body)
    assert _depth(decoded["hits"]["hits"][0]["_source"]) == 1000
    assert RECURSION_LIMIT > 1000 + 100


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"x":"\xc0\x80"}', "\udcc0\udc80"),  # an overlong NUL, which Elasticsearch stores as it came
        (b'{"x":"\xed\xa0\x80"}', "\ud800"),  # an encoded surrogate
        (b'{"x":"\\ud800"}', "\ud800"),  # an escaped lone surrogate
        (b'{"x":"caf\xc3\xa9"}', "café"),
    ],
)
def test_the_client_decodes_bytes_that_are_not_utf8(raw: bytes, expected: str) -> None:
    assert TolerantJsonSerializer().loads(raw) == {"x": expected}
    assert json.loads(TolerantJsonSerializer().dumps({"x": expected})) == {"x": expected}


def test_an_event_that_cannot_become_an_alert_fails_alone() -> None:
    rule = seed_rule()
    good = endgame_hit("good")
    too_deep = endgame_hit("too-deep", blob=_nested(DEEPER_THAN_PYTHON_RECURSES))
    no_source_index = {"_id": "broken", "_source": {}}  # no _index: building its alert raises
    batch = [("id-1", good), ("id-2", too_deep), ("id-3", no_source_index)]
    writes, failures = build_writes(rule, batch, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID)
    assert [write.doc_id for write in writes] == ["id-1"]
    assert json.loads(writes[0].body) == build_alert(
        rule, good, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID
    )
    assert [(hit["_id"], reason.split(":")[0]) for hit, reason in failures] == [
        ("too-deep", "RecursionError"),
        ("broken", "KeyError"),
    ]


@pytest.mark.parametrize(
    "blob",
    [
        "caf\udcc3\udca9 \udcc0\udc80",  # bytes that were not UTF-8, as the client decodes them
        _nested(1000),  # as deep as Elasticsearch accepts: orjson refuses it, json writes it
        _nested(1000, array=True),
        {"big": 10**30, "small": -(2**63), "inf": math.inf, "nan": [math.nan, 1.5]},
    ],
)
def test_a_run_serializes_hostile_events_as_the_single_alert_path_builds_them(blob: Any) -> None:
    allow_deep_documents()
    rule = seed_rule()
    hit = endgame_hit("hostile", blob=blob)
    alerts = RunAlerts.for_run(rule, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID)
    body = alerts.body(hit, now=NOW)
    assert json.loads(body) == build_alert(rule, hit, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID)
    assert b"NaN" not in body and b"Infinity" not in body
