"""The alerts of an EQL sequence, as Kibana writes them (``buildAlertGroupFromSequence``): N events make N+1
alerts, one unit for the writer (:class:`job.writing.writer.Candidate`, the shell's id first).

* A **building block** per event: the event's alert as a query rule's, but without the rule's severity, risk
  score and name overrides (Kibana builds them with ``applyOverrides: false``), plus
  ``kibana.alert.building_block_type: "default"``, ``kibana.alert.group.id`` (the shell's id) and
  ``kibana.alert.group.index`` (the event's place in the sequence, from 0).
* The **shell**: the recursive intersection of the blocks' documents (Kibana's ``objectArrayIntersection``:
  a key kept only if every block has it; equal values kept; of two arrays, or an array and a value, the
  values both hold; objects intersected key by key; an object left empty dropped), under the alert fields
  of a sequence: its ancestors are each event followed by its block (``type: signal``, ``depth: 1``, and,
  as in Kibana, an empty index), ``kibana.alert.depth: 2``, the reason from the intersection, the rule's
  own severity, risk score and name, and ``kibana.alert.original_time`` taken, as Kibana takes it, from the
  first block's ``@timestamp`` (the alert time, not the event's).
* **Ids**: Kibana hashes the events' ids and indices in order with the rule's saved-object id (and each
  block's position). Here, as for every alert of this job (:mod:`job.alerts.ids`), the parts are hashed
  as a JSON array, with the ``rule_id`` and the space: the shell's id is the SHA-256 of ``["sequence",
  [[index, id], ...], rule_id, space]``, block i's of ``["building_block", [[index, id], ...], rule_id,
  space, i]``. The same events in the same order always give the same ids (a sequence an overlapping
  window finds again is a duplicate); an event in two sequences gets a block in each.

Missing-event stages (``![...]``) hold no event: only real events become building blocks, and
``group.index`` counts those.
"""

from __future__ import annotations

import copy
import dataclasses as dc
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from job.alerts.build import RunAlerts
from job.alerts.reason import build_reason
from job.rules.model import Rule
from job.text.jsoncodec import document_bytes
from job.writing.bulk import AlertWrite
from job.writing.writer import AlertMaker, Candidate, RunWrites

Hit = Mapping[str, Any]
GROUP_ID = "kibana.alert.group.id"
GROUP_INDEX = "kibana.alert.group.index"
BUILDING_BLOCK = "kibana.alert.building_block_type"
UUID = "kibana.alert.uuid"


class EventGone(Exception):
    """An event of a sequence could not be read back to build its alert."""


@dc.dataclass(frozen=True, slots=True)
class SequenceItem:
    """A sequence to alert on: its events in order (``hits``: None where an event could not be read back)."""

    refs: tuple[tuple[str, str], ...]  # (index, id) of each event
    hits: tuple[Hit | None, ...]
    block_ids: tuple[str, ...]


def _digest(parts: Any) -> str:
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def sequence_ids(refs: Sequence[tuple[str, str]], rule_id: str, space_id: str) -> tuple[str, tuple[str, ...]]:
    """(the shell's id, each building block's id) of the sequence of these events."""
    events = [[index, doc_id] for index, doc_id in refs]
    shell = _digest(["sequence", events, rule_id, space_id])
    return shell, tuple(_digest(["building_block", events, rule_id, space_id, i]) for i in range(len(events)))


def sequence_candidate(
    refs: Sequence[tuple[str, str]], hits: Sequence[Hit | None], rule_id: str, space_id: str
) -> Candidate:
    """The unit the writer writes for one sequence: the shell's id, the sequence, the blocks' ids."""
    shell, blocks = sequence_ids(refs, rule_id, space_id)
    return Candidate(shell, SequenceItem(tuple(refs), tuple(hits), blocks), blocks)


# -- Kibana's objectArrayIntersection ------------------------------------------------------------------

_NOTHING = object()


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _same(left: Any, right: Any) -> bool:
    """JavaScript's ``===`` between plain values (``1 === 1.0``, ``true !== 1``); never for objects or arrays,
    which are compared by identity there and so never equal across documents."""
    if not (_plain(left) and _plain(right)):
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, str) or isinstance(right, str) or left is None or right is None:
        return type(left) is type(right) and left == right
    return bool(left == right)


def _array_intersection(left: Sequence[Any], right: Sequence[Any]) -> list[Any]:
    """lodash ``intersection``: the distinct values of ``left`` that ``right`` holds, in ``left``'s order."""
    found: list[Any] = []
    for value in left:
        if any(_same(value, other) for other in right) and not any(_same(value, seen) for seen in found):
            found.append(value)
    return found


def pair_intersection(left: Any, right: Any) -> Any:
    """Kibana's ``objectPairIntersection`` (``_NOTHING`` for undefined)."""
    if left is _NOTHING or right is _NOTHING or not isinstance(left, Mapping) or not isinstance(right, Mapping):
        return _NOTHING
    result: dict[str, Any] = {}
    for key, a in left.items():
        if key not in right:
            continue
        b = right[key]
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            value = pair_intersection(a, b)
        elif isinstance(a, list) and isinstance(b, list):
            value = _array_intersection(a, b)
        elif isinstance(a, list):
            value = _array_intersection(a, [b])
        elif isinstance(b, list):
            value = _array_intersection([a], b)
        elif _same(a, b):
            value = a
        else:
            value = _NOTHING
        if value is not _NOTHING:
            result[key] = value
    return result if result else _NOTHING


def intersection(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What every document holds (Kibana's ``objectArrayIntersection``); ``{}`` when nothing is common."""
    if not documents:
        return {}
    merged: Any = copy.deepcopy(dict(documents[0]))
    for document in documents[1:]:
        merged = pair_intersection(merged, document)
    return dict(merged) if isinstance(merged, Mapping) else {}


# -- the alerts ----------------------------------------------------------------------------------------


class SequenceAlerts:
    """The AlertMaker of sequences: a candidate's item is a :class:`SequenceItem`; its documents are the
    shell (the candidate's id) and then the building blocks, in order."""

    def __init__(self, rule: Rule, alerts: RunAlerts, space_id: str) -> None:
        self.rule = rule
        self.alerts = alerts
        self.space_id = space_id

    def blocks(self, item: SequenceItem, now: datetime) -> list[dict[str, Any]]:
        blocks = []
        for (index, doc_id), hit, block_id in zip(item.refs, item.hits, item.block_ids, strict=True):
            if hit is None:
                raise EventGone(f"the event {index}/{doc_id} could not be read back")
            block = self.alerts.build(hit, now=now, overrides=False)
            block[UUID] = block_id
            blocks.append(block)
        return blocks

    def shell(self, item: SequenceItem, blocks: Sequence[dict[str, Any]], shell_id: str) -> dict[str, Any]:
        rule = self.rule
        merged = intersection(blocks)
        ancestors: list[dict[str, Any]] = []
        for block in blocks:
            ancestors += copy.deepcopy(block["kibana.alert.ancestors"])
            ancestors.append({"id": block[UUID], "type": "signal", "index": "", "depth": 1, "rule": rule.rule_id})
        own = {
            "@timestamp": blocks[0]["@timestamp"],
            "kibana.alert.original_time": blocks[0]["@timestamp"],
            "kibana.alert.ancestors": ancestors,
            "kibana.alert.depth": 2,
            "kibana.alert.reason": build_reason(merged, severity=rule.severity, rule_name=rule.name),
            "kibana.alert.severity": rule.severity,
            "kibana.alert.risk_score": rule.risk_score,
            "kibana.alert.rule.name": rule.name,
            UUID: shell_id,
            GROUP_ID: shell_id,
        }
        shell = {key: value for key, value in merged.items() if key not in own}
        shell.update(self.alerts.shared_fields())
        shell.pop(BUILDING_BLOCK, None)
        if rule.building_block_type is not None:
            shell[BUILDING_BLOCK] = rule.building_block_type
        shell.update(own)
        return shell

    def documents(self, item: Any, doc_id: str, now: datetime) -> list[AlertWrite]:
        sequence: SequenceItem = item
        blocks = self.blocks(sequence, now)
        shell = self.shell(sequence, blocks, doc_id)
        first_index, first_id = sequence.refs[0]
        writes = [AlertWrite(doc_id, document_bytes(shell), first_index, first_id)]
        for position, ((index, event_id), block) in enumerate(zip(sequence.refs, blocks, strict=True)):
            block[BUILDING_BLOCK] = "default"
            block[GROUP_ID] = doc_id
            block[GROUP_INDEX] = position
            writes.append(AlertWrite(block[UUID], document_bytes(block), index, event_id))
        return writes

    def dead_letter(self, item: Any, reason: str) -> tuple[str, str, str]:
        """A sequence is dead-lettered under its first event."""
        sequence: SequenceItem = item
        index, doc_id = sequence.refs[0]
        events = ", ".join(f"{i}/{d}" for i, d in sequence.refs)
        return index, doc_id, f"the alerts of the sequence of {len(sequence.refs)} events ({events}): {reason}"


def for_sequences(rule: Rule, space_id: str, execution_uuid: str) -> RunWrites:
    """The writing of a sequence rule's run: a shell and its building blocks per sequence."""

    def make(now: datetime) -> AlertMaker:
        alerts = RunAlerts.for_run(rule, now=now, execution_uuid=execution_uuid, space_id=space_id)
        return SequenceAlerts(rule, alerts, space_id)

    return RunWrites(rule.rule_id, rule.name, space_id, execution_uuid, make)
