"""A sequence's stream of events (pure): search hits in, events in Elasticsearch's order out, each with the
stages it belongs to and its join key there.

Elasticsearch orders events by ``timestamp_field``, then ``tiebreaker_field`` (a missing value after any
value), then ``_shard_doc`` (the position of the event in its shard, which depends on segment merges and is
not stable from one search to the next). Events tied on the first two are put here in a stable order, their
index then their id, so that every run of the rule over the same events finds the same sequences (and
writes them under the same ids); Elasticsearch's own order of such ties cannot be reproduced outside it.
A tie group is held until an event with another timestamp or tiebreaker comes, so memory also holds the
largest group of tied events.

An event belongs to a stage when Elasticsearch says its query matched (``matched_queries``) and the stage's
residual (what Elasticsearch would run as a script) holds for it on the client.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from job.eql import StagePlan
from job.eql.values import source_values
from job.search.clauses import SORT_MISSING

Hit = Mapping[str, Any]


@dc.dataclass(frozen=True, slots=True)
class Event:
    """One event of the stream: where it is, its place in the order, and its stages (stage -> join key)."""

    index: str
    doc_id: str
    timestamp_ns: int
    tiebreaker: Any
    stages: Mapping[int, tuple[Any, ...]]
    hit: Hit

    @property
    def surrogate(self) -> tuple[str, str]:
        return (self.index, self.doc_id)

    @property
    def tie(self) -> tuple[int, bool, Any]:
        return (self.timestamp_ns, self.tiebreaker is None, self.tiebreaker if self.tiebreaker is not None else 0)


def stages_of(hit: Hit, names: Mapping[str, Sequence[StagePlan]]) -> dict[int, tuple[Any, ...]]:
    """The stages ``hit`` belongs to, with its join key for each (a stage whose residual fails, or where a
    non-optional key is null, is left out)."""
    source: Mapping[str, Any] = hit.get("_source") or {}
    found: dict[int, tuple[Any, ...]] = {}
    for name in hit.get("matched_queries") or ():
        stages = names.get(name, ())
        if not stages:
            continue
        residual = stages[0].push.residual
        if residual is not None and not residual.matches(source):
            continue
        key = stages[0].key(source)
        if key is None:
            continue
        for stage in stages:
            found[stage.position] = key
    return found


def event_of(hit: Hit, names: Mapping[str, Sequence[StagePlan]], tiebreaker_field: str | None) -> Event | None:
    """The stream event of a hit sorted by :func:`job.ruletypes.eql.search.sequence_sort`; None when it has no
    timestamp or belongs to no stage."""
    sort: Sequence[Any] = hit.get("sort") or ()
    timestamp = sort[0] if sort else None
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp < SORT_MISSING:
        return None
    stages = stages_of(hit, names)
    if not stages:
        return None
    tiebreaker = None
    if tiebreaker_field is not None and len(sort) > 2 and source_values(hit.get("_source") or {}, tiebreaker_field):
        tiebreaker = sort[1]
    return Event(str(hit["_index"]), str(hit["_id"]), timestamp, tiebreaker, stages, hit)


class Ties:
    """Puts events in stream order: events tied on timestamp and tiebreaker sorted by index and id. A tie
    group is handed out once the next one starts (:meth:`add`), or at the end (:meth:`rest`)."""

    def __init__(self) -> None:
        self.group: list[Event] = []

    def add(self, events: Iterable[Event | None]) -> list[Event]:
        ready: list[Event] = []
        for event in events:
            if event is None:
                continue
            if self.group and event.tie != self.group[0].tie:
                ready += sorted(self.group, key=lambda held: held.surrogate)
                self.group = []
            self.group.append(event)
        return ready

    def rest(self) -> list[Event]:
        ready, self.group = sorted(self.group, key=lambda held: held.surrogate), []
        return ready

    def first_held_ns(self) -> int | None:
        return self.group[0].timestamp_ns if self.group else None
