"""The sequence matcher (Elasticsearch's ``SequenceMatcher``, a pure state machine fed events in order) and
``sample by``.

Events come in ordinal order -- (timestamp, tiebreaker with nulls last, a stable surrogate for
``_shard_doc`` such as (index, _id)) -- each with the stages it matches and its join key for each. Per
key and per stage, one in-flight candidate: a stage-0 event starts one (the latest replaces the older,
which no later event could take: Elasticsearch takes the latest before the event and drops the older
ones); an event of stage s takes the candidate of the previous positive stage for its key, if any, and
moves it on. An event matching several stages is processed from its last stage down, so it can continue
a sequence and start another, never fill two stages of one. ``maxspan`` is inclusive and on the full
timestamps; an ``until`` event of a key ends that key's candidates.

Missing events (``![...]``), with Elasticsearch's accept rules on millisecond timestamps: a middle one
between two matched events (strict bounds) discards the sequence -- when it completes, so the doomed
candidate keeps its place as in Elasticsearch; a leading hit is the latest before the first event, a
trailing hit the earliest after the last; with only leading stages the sequence is discarded if
``last - leading <= maxspan``, with only trailing ones if ``trailing - first <= maxspan``, with both if
``trailing - leading <= maxspan`` (and kept when no leading hit exists). A sequence waiting for its
trailing decision is emitted once the events have moved past its horizon, or at :meth:`finish`.

Memory is bounded by what is in flight, never by the number of events fed: one candidate per (stage,
key) alive, and with ``maxspan`` only those whose first event is within ``maxspan`` of the newest
event (older ones are evicted: no event can continue them); the eviction heap is compacted to at most
twice the live candidates; the missing-event caches keep two timestamps per key seen within
``maxspan``; pending trailing decisions are completed sequences within ``maxspan``. Without ``maxspan``
candidates live until taken or ended by ``until``: at most one per stage and key.
"""

from __future__ import annotations

import dataclasses as dc
import heapq
import itertools
from collections.abc import Iterable, Mapping
from typing import Any, Literal

_NS_PER_MS = 1_000_000
_HEAP_SLACK = 1024

StageKind = Literal["positive", "missing"]


@dc.dataclass(frozen=True, slots=True)
class SequenceSpec:
    """The shape of a sequence: each stage (``runs`` expanded) positive or missing, maxspan, until."""

    kinds: tuple[StageKind, ...]
    maxspan_ms: int | None = None
    has_until: bool = False

    def __post_init__(self) -> None:
        if "positive" not in self.kinds:
            raise ValueError("a sequence needs at least one positive stage")
        if "missing" in self.kinds and self.maxspan_ms is None:
            raise ValueError("missing events need a maxspan")

    @property
    def until_stage(self) -> int:
        """The stage number ``until`` events are fed under (one past the last stage)."""
        return len(self.kinds)


@dc.dataclass(frozen=True, slots=True)
class SequenceMatch:
    """A completed sequence: its key and, per stage, the event fed (None at a missing stage)."""

    key: tuple[Any, ...]
    events: tuple[Any, ...]
    first_ordinal: tuple[Any, ...]


@dc.dataclass(slots=True)
class _Candidate:
    key: tuple[Any, ...]
    start_ns: int
    start_ordinal: tuple[Any, ...]
    last_ms: int
    events: tuple[Any, ...]
    leading_ms: int | None = None
    doomed: bool = False


@dc.dataclass(slots=True)
class _Pending:
    candidate: _Candidate
    horizon_ms: int
    decided: bool = False


def ordinal(timestamp_ns: int, tiebreaker: Any, surrogate: tuple[Any, ...]) -> tuple[Any, ...]:
    """Elasticsearch's order of events: timestamp, then tiebreaker (null after any value), then surrogate."""
    return (timestamp_ns, tiebreaker is None, tiebreaker if tiebreaker is not None else 0, surrogate)


class SequenceMatcher:
    """Feed events with :meth:`feed` in ordinal order; completed sequences come back as they are decided."""

    def __init__(self, spec: SequenceSpec) -> None:
        self.spec = spec
        kinds = spec.kinds
        self._positive = [index for index, kind in enumerate(kinds) if kind == "positive"]
        self._first, self._last = self._positive[0], self._positive[-1]
        self._previous = {s: p for p, s in zip(self._positive, self._positive[1:], strict=False)}
        self._between = {s: [m for m in range(p + 1, s) if kinds[m] == "missing"] for s, p in self._previous.items()}
        self._leading = [m for m in range(self._first) if kinds[m] == "missing"]
        self._trailing = [m for m in range(self._last + 1, len(kinds)) if kinds[m] == "missing"]
        self._maxspan_ns = None if spec.maxspan_ms is None else spec.maxspan_ms * _NS_PER_MS
        self._groups: dict[int, dict[tuple[Any, ...], _Candidate]] = {s: {} for s in self._positive[:-1]}
        self._heap: list[tuple[int, int, int, tuple[Any, ...], _Candidate]] = []
        self._counter = 0
        self._missing: dict[int, dict[tuple[Any, ...], tuple[int, int | None]]] = {
            m: {} for m, kind in enumerate(kinds) if kind == "missing"
        }
        self._missing_swept = 0
        self._pending: dict[tuple[Any, ...], list[_Pending]] = {}
        self._horizons: list[tuple[int, int, _Pending]] = []
        self._last_ordinal: tuple[Any, ...] | None = None
        self._now_ns = 0

    # -- public ------------------------------------------------------------------------------------

    def feed(
        self,
        ref: Any,
        timestamp_ns: int,
        stages: Mapping[int, tuple[Any, ...]],
        tiebreaker: Any = None,
        surrogate: tuple[Any, ...] = (),
    ) -> list[SequenceMatch]:
        """One event: ``stages`` maps each stage it matches (``spec.until_stage`` for until) to its key."""
        position = ordinal(timestamp_ns, tiebreaker, surrogate)
        if self._last_ordinal is not None and position < self._last_ordinal:
            raise ValueError(f"events must be fed in order: {position!r} after {self._last_ordinal!r}")
        self._last_ordinal = position
        self._now_ns = timestamp_ns
        now_ms = timestamp_ns // _NS_PER_MS
        done = self._expire(now_ms)
        for stage in sorted((s for s in stages if s in self._groups or s == self._last), reverse=True):
            if self.spec.kinds[stage] == "positive":
                done.extend(self._positive_event(stage, stages[stage], ref, timestamp_ns, position))
        for stage, key in stages.items():
            if stage < len(self.spec.kinds) and self.spec.kinds[stage] == "missing":
                done.extend(self._missing_event(stage, key, now_ms))
        if self.spec.has_until and self.spec.until_stage in stages:
            key = stages[self.spec.until_stage]
            for group in self._groups.values():
                group.pop(key, None)
        return done

    def finish(self) -> list[SequenceMatch]:
        """No more events: every sequence still waiting for its trailing decision is accepted."""
        done = [self._match(pending.candidate) for _, _, pending in sorted(self._horizons) if not pending.decided]
        self._horizons.clear()
        self._pending.clear()
        return done

    def earliest_in_flight_ns(self) -> int | None:
        """The timestamp of the earliest first event among the sequences still in flight (candidates that a
        later event may continue, completed sequences waiting for their trailing decision); None: none is.

        A run that stops here and restarts from this time (and, with leading missing stages, ``maxspan``
        before it) finds every sequence this one would still have found: none of them starts earlier."""
        starts = [candidate.start_ns for group in self._groups.values() for candidate in group.values()]
        starts += [pending.candidate.start_ns for _, _, pending in self._horizons if not pending.decided]
        return min(starts, default=None)

    def state_size(self) -> int:
        """Everything held: live candidates, heap entries, missing-event cache entries, pending decisions."""
        live = sum(len(group) for group in self._groups.values())
        cached = sum(len(cache) for cache in self._missing.values())
        return live + len(self._heap) + cached + len(self._horizons)

    # -- stages ------------------------------------------------------------------------------------

    def _positive_event(
        self, stage: int, key: tuple[Any, ...], ref: Any, timestamp_ns: int, position: tuple[Any, ...]
    ) -> list[SequenceMatch]:
        now_ms = timestamp_ns // _NS_PER_MS
        if stage == self._first:
            events = tuple(ref if index == stage else None for index in range(stage + 1))
            candidate = _Candidate(key, timestamp_ns, position, now_ms, events, self._leading_hit(key, now_ms))
        else:
            previous = self._groups[self._previous[stage]].pop(key, None)
            if previous is None:
                return []
            if self._maxspan_ns is not None and timestamp_ns - previous.start_ns > self._maxspan_ns:
                return []
            gap = stage - len(previous.events)
            candidate = dc.replace(previous, events=previous.events + (None,) * gap + (ref,), last_ms=now_ms)
            if any(self._hit_between(m, key, previous.last_ms, now_ms) for m in self._between[stage]):
                candidate.doomed = True
        if stage == self._last:
            return self._complete(candidate)
        self._groups[stage][key] = candidate
        if self._maxspan_ns is not None:
            self._counter += 1
            heapq.heappush(self._heap, (candidate.start_ns, self._counter, stage, key, candidate))
            self._compact()
        return []

    def _missing_event(self, stage: int, key: tuple[Any, ...], now_ms: int) -> list[SequenceMatch]:
        cache = self._missing[stage]
        latest, _ = cache.get(key, (None, None))
        if latest is None or now_ms > latest:
            cache[key] = (now_ms, latest)
        if len(cache) > 2 * self._missing_swept + _HEAP_SLACK:
            self._sweep_missing(now_ms)
        if stage not in self._trailing:
            return []
        done = []
        for pending in self._pending.get(key, []):
            if pending.decided or now_ms <= pending.candidate.last_ms:
                continue
            pending.decided = True  # this is the earliest trailing hit for it
            if now_ms > pending.horizon_ms:
                done.append(self._match(pending.candidate))
        self._pending[key] = [p for p in self._pending.get(key, []) if not p.decided]
        if not self._pending[key]:
            del self._pending[key]
        return done

    # -- missing-event rules -----------------------------------------------------------------------

    def _latest_before(self, stage: int, key: tuple[Any, ...], before_ms: int) -> int | None:
        latest, previous = self._missing[stage].get(key, (None, None))
        if latest is not None and latest < before_ms:
            return latest
        return previous if previous is not None and previous < before_ms else None

    def _hit_between(self, stage: int, key: tuple[Any, ...], after_ms: int, before_ms: int) -> bool:
        hit = self._latest_before(stage, key, before_ms)
        return hit is not None and hit > after_ms

    def _leading_hit(self, key: tuple[Any, ...], start_ms: int) -> int | None:
        hits = [hit for m in self._leading if (hit := self._latest_before(m, key, start_ms)) is not None]
        return max(hits) if hits else None

    def _complete(self, candidate: _Candidate) -> list[SequenceMatch]:
        if candidate.doomed:
            return []
        maxspan = self.spec.maxspan_ms or 0
        if self._leading and not self._trailing:
            leading = candidate.leading_ms
            if leading is not None and candidate.last_ms - leading <= maxspan:
                return []
            return [self._match(candidate)]
        if not self._trailing:
            return [self._match(candidate)]
        if self._leading and candidate.leading_ms is None:
            return [self._match(candidate)]
        anchor = candidate.leading_ms if self._leading else candidate.start_ns // _NS_PER_MS
        assert anchor is not None
        pending = _Pending(candidate, anchor + maxspan)
        self._pending.setdefault(candidate.key, []).append(pending)
        self._counter += 1
        heapq.heappush(self._horizons, (pending.horizon_ms, self._counter, pending))
        return []

    def _match(self, candidate: _Candidate) -> SequenceMatch:
        events = candidate.events + (None,) * (len(self.spec.kinds) - len(candidate.events))
        return SequenceMatch(candidate.key, events, candidate.start_ordinal)

    # -- eviction ----------------------------------------------------------------------------------

    def _expire(self, now_ms: int) -> list[SequenceMatch]:
        if self._maxspan_ns is not None:
            oldest = self._now_ns - self._maxspan_ns
            while self._heap and self._heap[0][0] < oldest:
                _, _, stage, key, candidate = heapq.heappop(self._heap)
                if self._groups[stage].get(key) is candidate:
                    del self._groups[stage][key]
        done = []
        while self._horizons and self._horizons[0][0] < now_ms:
            _, _, pending = heapq.heappop(self._horizons)
            if not pending.decided:
                pending.decided = True
                done.append(self._match(pending.candidate))
                waiting = self._pending.get(pending.candidate.key, [])
                if pending in waiting:
                    waiting.remove(pending)
                    if not waiting:
                        del self._pending[pending.candidate.key]
        return done

    def _compact(self) -> None:
        live = sum(len(group) for group in self._groups.values())
        if len(self._heap) > 2 * live + _HEAP_SLACK:
            self._heap = [entry for entry in self._heap if self._groups[entry[2]].get(entry[3]) is entry[4]]
            heapq.heapify(self._heap)

    def _sweep_missing(self, now_ms: int) -> None:
        oldest = now_ms - (self.spec.maxspan_ms or 0) - 1
        for cache in self._missing.values():
            for key in [k for k, (latest, _) in cache.items() if latest < oldest]:
                del cache[key]
        self._missing_swept = sum(len(cache) for cache in self._missing.values())


def order(matches: Iterable[SequenceMatch]) -> list[SequenceMatch]:
    """Sequences in Elasticsearch's result order: by the ordinal of their first event."""
    return sorted(matches, key=lambda match: match.first_ordinal)


def limit(matches: Iterable[SequenceMatch], head: int | None = None, tail: int | None = None) -> list[SequenceMatch]:
    """``| head N`` keeps the first N sequences, ``| tail N`` (Kibana's default, N = max_signals) the last N."""
    ordered = order(matches)
    if head is not None:
        ordered = ordered[:head]
    if tail is not None:
        ordered = ordered[-tail:] if tail else []
    return ordered


# -- sample by ---------------------------------------------------------------------------------------
# Elasticsearch's SampleIterator: per key (ascending, the null bucket first, a bucket per value of a
# multi-valued key) present in every filter, up to as many events per filter as there are filters in
# the order added (the stand-in for index order), one distinct event per filter picked by backtracking;
# at most `size` samples. Memory: per key and filter at most that many events.


@dc.dataclass(frozen=True, slots=True)
class Sample:
    key: tuple[Any, ...]
    events: tuple[Any, ...]


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # composite buckets: ascending per source, the null bucket first, then values by type and value
    return tuple((value is not None, type(value).__name__, value if value is not None else 0) for value in key)


def _expand(key: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """A key with multi-valued parts (tuples) as the composite buckets it falls in (one per combination)."""
    parts = [value if isinstance(value, tuple) else (value,) for value in key]
    return [tuple(combination) for combination in itertools.product(*parts)]


class SampleCollector:
    """Add events with :meth:`add` (the stages each matches and its key per stage), then :meth:`samples`."""

    def __init__(self, stage_count: int) -> None:
        if stage_count < 1:
            raise ValueError("a sample needs at least one filter")
        self.stage_count = stage_count
        self._hits: dict[tuple[Any, ...], list[list[Any]]] = {}

    def add(self, ref: Any, stages: Mapping[int, tuple[Any, ...] | None]) -> None:
        """One event: each stage it matches, with its key there (None: a non-optional key is null)."""
        for stage, key in stages.items():
            if key is None:
                continue
            for bucket in _expand(key):
                lists = self._hits.setdefault(bucket, [[] for _ in range(self.stage_count)])
                if len(lists[stage]) < self.stage_count and ref not in lists[stage]:
                    lists[stage].append(ref)

    def samples(self, size: int = 10) -> list[Sample]:
        found: list[Sample] = []
        for key in sorted(self._hits, key=_sort_key):
            if len(found) >= size:
                break
            lists = self._hits[key]
            if any(not hits for hits in lists):
                continue
            picked = pick_distinct(lists)
            if picked is not None:
                found.append(Sample(key, tuple(picked)))
        return found


def pick_distinct(lists: list[list[Any]]) -> list[Any] | None:
    """One event per filter, all different, the first such choice in filter order (a backtracking search
    over at most ``len(lists)`` candidates per filter); None when there is none."""
    chosen: list[Any] = []
    positions = [0] * len(lists)
    stage = 0
    while 0 <= stage < len(lists):
        candidates = lists[stage]
        while positions[stage] < len(candidates) and candidates[positions[stage]] in chosen:
            positions[stage] += 1
        if positions[stage] < len(candidates):
            chosen.append(candidates[positions[stage]])
            positions[stage] += 1
            stage += 1
            if stage < len(lists):
                positions[stage] = 0
        else:
            stage -= 1
            if stage >= 0:
                chosen.pop()
    return chosen if stage == len(lists) else None
