"""The alerts of an EQL sequence (pure): Kibana's object intersection, the ids, the shell and its building
blocks as Kibana's buildAlertGroupFromSequence writes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from job.alerts.build import RunAlerts
from job.rules.model import Rule
from job.ruletypes.eql.sequence_alerts import (
    SequenceAlerts,
    intersection,
    pair_intersection,
    sequence_candidate,
    sequence_ids,
)
from tests.alert_samples import EXECUTION_UUID, NOW, SEED_RULE_FIELDS, SPACE_ID

NOTHING: Any = object()


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1}),  # equal values kept, others dropped
        ({"a": 1}, {"b": 1}, NOTHING),  # no key in common: undefined
        ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3}}, {"a": {"x": 1}}),  # objects recurse
        ({"a": {"x": 1}, "b": 1}, {"a": {"x": 2}, "b": 1}, {"b": 1}),  # an object left empty is dropped
        ({"a": [1, 2, 3, 2]}, {"a": [3, 2, 9]}, {"a": [2, 3]}),  # lodash intersection: left's order, distinct
        ({"a": [1, 2]}, {"a": 2}, {"a": [2]}),  # an array against a value
        ({"a": 2}, {"a": [1, 2]}, {"a": [2]}),
        ({"a": [1]}, {"a": [2]}, {"a": []}),  # an empty intersection of arrays is kept
        ({"a": [{"x": 1}]}, {"a": [{"x": 1}]}, {"a": []}),  # objects in arrays compare by identity in Kibana
        ({"a": 1, "b": True}, {"a": 1.0, "b": 1}, {"a": 1}),  # 1 === 1.0, true !== 1
        ({"a": None}, {"a": None}, {"a": None}),
        ({"a": "1"}, {"a": 1}, NOTHING),
        ({"a": {"x": 1}}, {"a": 1}, NOTHING),  # an object against a value
    ],
)
def test_kibana_s_object_intersection(left: Any, right: Any, expected: Any) -> None:
    found = pair_intersection(left, right)
    if expected is NOTHING:
        assert not isinstance(found, dict)
    else:
        assert found == expected


def test_intersection_of_several_documents() -> None:
    documents = [{"a": 1, "b": [1, 2], "c": 3}, {"a": 1, "b": [2, 1]}, {"a": 1, "b": 2, "c": 3}]
    assert intersection(documents) == {"a": 1, "b": [2]}
    assert intersection([]) == {}
    assert intersection([{"a": 1}, {"b": 2}]) == {}


REFS = [("events-1", "e1"), ("events-2", "e2")]


def test_ids_follow_the_events_in_order_and_their_places() -> None:
    shell, blocks = sequence_ids(REFS, "rule", "default")
    assert len(blocks) == 2 and len({shell, *blocks}) == 3
    assert (shell, blocks) == sequence_ids(list(REFS), "rule", "default")  # stable
    assert sequence_ids(REFS[::-1], "rule", "default")[0] != shell  # another order is another sequence
    assert sequence_ids(REFS, "rule", "other-space")[0] != shell
    assert sequence_ids(REFS, "other-rule", "default")[0] != shell
    # an event in two sequences gets a block in each
    assert sequence_ids([REFS[0], ("events-1", "e3")], "rule", "default")[1][0] != blocks[0]
    candidate = sequence_candidate(REFS, [None, None], "rule", "default")
    assert candidate.doc_id == shell and candidate.more_ids == blocks


def _hit(doc_id: str, name: str, user: str) -> dict[str, Any]:
    return {
        "_index": f"events-{doc_id}",
        "_id": doc_id,
        "_source": {
            "@timestamp": f"2026-03-01T12:0{doc_id[-1]}:00Z",
            "event": {"category": "process", "kind": "event"},
            "host": {"name": "ws-01", "id": "h1"},
            "process": {"name": name},
            "user": {"name": user},
        },
    }


def _documents(rule_changes: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rule = Rule.model_validate(
        {
            **SEED_RULE_FIELDS,
            "type": "eql",
            "language": "eql",
            "query": "sequence by host.id [process where true] [process where true]",
            "severity_mapping": [{"field": "user.name", "operator": "equals", "value": "root", "severity": "critical"}],
            **(rule_changes or {}),
        }
    )
    alerts = SequenceAlerts(
        rule, RunAlerts.for_run(rule, now=NOW, execution_uuid=EXECUTION_UUID, space_id=SPACE_ID), SPACE_ID
    )
    hits = [_hit("e1", "cmd.exe", "root"), _hit("e2", "whoami.exe", "root")]
    refs = [(hit["_index"], hit["_id"]) for hit in hits]
    candidate = sequence_candidate(refs, hits, rule.rule_id, SPACE_ID)
    writes = alerts.documents(candidate.item, candidate.doc_id, NOW)
    shell, *blocks = (json.loads(write.body) for write in writes)
    assert [write.doc_id for write in writes] == [candidate.doc_id, *candidate.more_ids]
    assert [(write.event_index, write.event_id) for write in writes] == [refs[0], *refs]
    return shell, blocks


def test_a_building_block_per_event_without_overrides() -> None:
    shell, blocks = _documents()
    for position, block in enumerate(blocks):
        assert block["kibana.alert.building_block_type"] == "default"
        assert block["kibana.alert.group.id"] == shell["kibana.alert.uuid"]
        assert block["kibana.alert.group.index"] == position
        assert block["kibana.alert.depth"] == 1
        assert block["kibana.alert.severity"] == "high"  # the rule's: severity_mapping is not applied
        assert [ancestor["type"] for ancestor in block["kibana.alert.ancestors"]] == ["event"]
    assert [block["kibana.alert.ancestors"][0]["id"] for block in blocks] == ["e1", "e2"]
    assert blocks[0]["kibana.alert.original_time"] == "2026-03-01T12:01:00.000Z"


def test_the_shell_is_the_blocks_intersection_under_the_sequence_s_fields() -> None:
    shell, blocks = _documents()
    assert shell["kibana.alert.uuid"] == shell["kibana.alert.group.id"]
    assert "kibana.alert.group.index" not in shell and "kibana.alert.building_block_type" not in shell
    assert shell["kibana.alert.depth"] == 2
    assert shell["host"] == {"name": "ws-01", "id": "h1"} and shell["user"] == {"name": "root"}
    assert "process" not in shell  # the events' process names differ
    assert (
        shell["kibana.alert.reason"]
        == "process event by root on ws-01 created high alert " + SEED_RULE_FIELDS["name"] + "."
    )
    assert shell["kibana.alert.rule.type"] == "eql"
    assert shell["kibana.alert.rule.threat"] == blocks[0]["kibana.alert.rule.threat"]  # the rule's fields, whole
    ancestors = [(a["id"], a["type"], a["index"], a["depth"]) for a in shell["kibana.alert.ancestors"]]
    assert ancestors == [
        ("e1", "event", "events-e1", 0),
        (blocks[0]["kibana.alert.uuid"], "signal", "", 1),
        ("e2", "event", "events-e2", 0),
        (blocks[1]["kibana.alert.uuid"], "signal", "", 1),
    ]
    # Kibana takes the shell's original time from its first block's @timestamp: the alert's time
    assert shell["kibana.alert.original_time"] == shell["@timestamp"] == blocks[0]["@timestamp"]


def test_a_building_block_rule_marks_its_shell_too() -> None:
    shell, blocks = _documents({"building_block_type": "default"})
    assert shell["kibana.alert.building_block_type"] == "default"
    assert all(block["kibana.alert.building_block_type"] == "default" for block in blocks)
