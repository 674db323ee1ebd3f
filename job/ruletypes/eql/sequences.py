"""Execute one planned run of an EQL sequence: page the window's stream of stage events (a point in time and
``search_after``), feed them in order to the sequence matcher, read back the events of each sequence that
completes, and hand the sequences to the writer (a shell and its building blocks: one unit of the cap).

**Memory** holds the matcher's in-flight candidates (with ``maxspan``, only those whose first event lies
within ``maxspan`` of the newest event; without it, one per stage and join key), the events of one page and
of the largest group of events tied on timestamp and tiebreaker, and the sequences of one page being
written; never the window's events.

**Where the next run resumes** when this one stops before the end of its window (the cap, or the lease
running out): at the earliest of the first events of the sequences not written, of the sequences still in
flight (candidates a later event may continue, sequences waiting for their trailing missing-event decision)
and of the last event fed; ``maxspan`` earlier with leading missing-event stages (their events precede the
first event). A sequence still to be found starts no earlier, so the next run finds it, and those already
written are duplicates (their ids are the same). With ``maxspan``, no in-flight candidate older than
``maxspan`` before the last event can still complete, so the resume point is never earlier than that.
Times are ``timestamp_field``'s; with a timestamp override (such as ``event.ingested``) the next window
starts at that time on the override, which covers the sequence's events as long as events are ingested after
they happen. A run that completes its window ends at the window's end, as Kibana's: a sequence whose events
straddle two windows is found only when the next window's look-back still holds its first event.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from job.eql import SequenceMatch, SequenceMatcher, sequence_spec
from job.rules.model import Rule
from job.ruletypes.contract import Hit, Outcome, RunPlan, RunTools, count_search, count_writes, stopped_message
from job.ruletypes.eql.search import EqlSearch
from job.ruletypes.eql.sequence_alerts import for_sequences, sequence_candidate
from job.ruletypes.eql.stream import Event, Ties, event_of
from job.search.pager import PageStats, PitPager
from job.search.resume import sort_moment
from job.writing.run_writer import AlertWriter
from job.writing.writer import MAX_ALERTS_WARNING, Candidate, RunWrites

MGET_CHUNK = 1000


@dataclass
class SequenceRun:
    """The matching state of one run: the matcher, the tie group held back, and how far events were fed."""

    rule: Rule
    search: EqlSearch
    matcher: SequenceMatcher = field(init=False)
    ties: Ties = field(default_factory=Ties)
    last_fed_ns: int | None = None
    fed: int = 0
    completed: int = 0  # sequences completed (whether or not they are written)

    def __post_init__(self) -> None:
        assert self.search.plan is not None
        self.matcher = SequenceMatcher(sequence_spec(self.search.plan))

    def events(self, hits: Iterable[Hit]) -> list[Event | None]:
        return [event_of(hit, self.search.names, self.search.tiebreaker_field) for hit in hits]

    def feed(self, events: Sequence[Event]) -> list[SequenceMatch]:
        """Feed events in stream order; the sequences they complete."""
        done: list[SequenceMatch] = []
        for event in events:
            done += self.matcher.feed(event, event.timestamp_ns, event.stages, event.tiebreaker, event.surrogate)
            self.last_fed_ns = event.timestamp_ns
            self.fed += 1
        self.completed += len(done)
        return done

    def page(self, hits: Iterable[Hit]) -> list[SequenceMatch]:
        return self.feed(self.ties.add(self.events(hits)))

    def end(self) -> list[SequenceMatch]:
        """The stream ended: the tie group held back, and the sequences waiting for a trailing decision."""
        done = self.feed(self.ties.rest())
        finished = self.matcher.finish()
        self.completed += len(finished)
        return done + finished

    def resume_ns(self, left_over: Sequence[SequenceMatch]) -> int | None:
        """Where the next run must start (nanoseconds on ``timestamp_field``) so that no sequence is lost; see
        the module's documentation. None: nothing was fed."""
        starts = [_first(match).timestamp_ns for match in left_over]
        in_flight = self.matcher.earliest_in_flight_ns()
        maxspan_ns = (self.matcher.spec.maxspan_ms or 0) * 1_000_000
        if in_flight is not None:
            if self.last_fed_ns is not None and self.matcher.spec.maxspan_ms is not None:
                in_flight = max(in_flight, self.last_fed_ns - maxspan_ns)
            starts.append(in_flight)
        held = self.ties.first_held_ns()
        starts += [moment for moment in (self.last_fed_ns, held) if moment is not None]
        if not starts:
            return None
        leading = self.matcher.spec.kinds[0] == "missing"
        return min(starts) - (maxspan_ns if leading else 0)


def _first(match: SequenceMatch) -> Event:
    return _refs(match)[0]


def _refs(match: SequenceMatch) -> list[Event]:
    return [event for event in match.events if isinstance(event, Event)]


def read_back(tools: RunTools, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The whole events at these places (one ``mget`` per chunk); an event that is gone is left out."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    unique = list(dict.fromkeys(refs))
    for start in range(0, len(unique), MGET_CHUNK):
        chunk = unique[start : start + MGET_CHUNK]
        docs = [{"_index": index, "_id": doc_id} for index, doc_id in chunk]
        response = tools.policy.call(lambda docs=docs: tools.es.mget(docs=docs))  # type: ignore[misc]
        for doc in response["docs"]:
            if doc.get("found"):
                found[(str(doc["_index"]), str(doc["_id"]))] = doc
    return found


def candidates(
    rule: Rule, tools: RunTools, matches: Sequence[SequenceMatch], *, whole: bool = False
) -> list[Candidate]:
    """The units of these sequences; their events read back whole unless the stream carried them whole."""
    events = [_refs(match) for match in matches]
    refs = [event.surrogate for sequence in events for event in sequence]
    hits: Mapping[tuple[str, str], Mapping[str, Any]] = (
        {event.surrogate: event.hit for sequence in events for event in sequence} if whole else read_back(tools, refs)
    )
    space_id = tools.settings.space_id
    return [
        sequence_candidate(
            [event.surrogate for event in sequence],
            [hits.get(event.surrogate) for event in sequence],
            rule.rule_id,
            space_id,
        )
        for sequence in events
    ]


def matches_of_window(run: SequenceRun, hits: Sequence[Hit]) -> list[SequenceMatch]:
    """Every sequence of a window read whole (a probe's page, in stream order), after the pipes: ``| head N``
    keeps the first N sequences the stream completes, ``| tail N`` the last N."""
    matches = run.page(hits) + run.end()
    planned = run.search.plan
    assert planned is not None
    if planned.head is not None:
        matches = matches[: planned.head]
    if planned.tail is not None:
        matches = matches[-planned.tail :] if planned.tail else []
    return matches


@dataclass
class _Paged:
    """A paged run in progress."""

    rule: Rule
    run: RunPlan
    tools: RunTools
    state: SequenceRun
    writes: RunWrites
    writer: AlertWriter
    outcome: Outcome
    read_ms: float = 0.0
    head: int | None = None  # | head N: sequences still to take
    tail: collections.deque[SequenceMatch] | None = None  # | tail N: the last N sequences so far

    def write(self, matches: Sequence[SequenceMatch]) -> bool:
        """Write these sequences as far as the cap allows; False when some are left over (``outcome`` then
        says where the next run resumes)."""
        if not matches:
            return True
        started = time.monotonic()
        units = candidates(self.rule, self.tools, matches)
        self.read_ms += (time.monotonic() - started) * 1000
        left = self.writer.offer(self.writer.new(units))
        if not left:
            return True
        first = {candidate.doc_id for candidate in left}
        left_matches = [match for match, unit in zip(matches, units, strict=True) if unit.doc_id in first]
        self.resume(left_matches)
        self.outcome.warnings.append(MAX_ALERTS_WARNING)
        return False

    def resume(self, left_over: Sequence[SequenceMatch]) -> None:
        point = self.state.resume_ns(left_over)
        window = self.run.window
        moment = sort_moment(point) if point is not None else None
        self.outcome.searched_to = window.start if moment is None else min(max(moment, window.start), window.end)


def execute_sequence(rule: Rule, run: RunPlan, search: EqlSearch, tools: RunTools) -> Outcome:
    """Search ``run.window`` for the sequences of ``search`` and write their alerts (the cap counts
    sequences); ``tools.metrics`` is filled as it goes, also when an error ends the run early."""
    if search.query is None or search.plan is None:
        return Outcome(searched_to=run.window.end)
    settings = tools.settings
    pager = PitPager(
        tools.es, tools.policy, rule.index, search.query, search.sort, settings.page_size, source=search.source
    )
    writes = for_sequences(rule, settings.space_id, tools.execution_uuid)
    state = SequenceRun(rule, search)
    paged = _Paged(rule, run, tools, state, writes, tools.writer(writes, run.cap), Outcome(searched_to=run.window.end))
    paged.head = search.plan.head
    if search.plan.tail is not None:
        paged.tail = collections.deque(maxlen=search.plan.tail)
    try:
        try:
            _page(paged, pager)
        finally:
            paged.writer.settle_all()
        if tools.refresh:
            paged.writer.refresh()
    finally:
        _metrics(paged, pager.stats)
    paged.outcome.warnings += writes.warnings(settings.dead_letter_index)
    return paged.outcome


def _page(paged: _Paged, pager: PitPager) -> None:
    """Page the stream to its end, or until the cap, ``| head N`` or a stop ends the run."""
    state, tools = paged.state, paged.tools
    for page in pager.pages():
        if not _take(paged, state.page(tools.page_filter(page))):
            return
        if paged.head == 0:
            return  # | head N: the rest of the window is not looked at, as in Elasticsearch
        if len(page) >= tools.settings.page_size and tools.should_stop():
            paged.resume([])
            paged.outcome.warnings.append(stopped_message(paged.outcome.searched_to))
            return
    if _take(paged, state.end()) and paged.tail is not None:
        paged.write(list(paged.tail))


def _take(paged: _Paged, matches: list[SequenceMatch]) -> bool:
    """Write (with ``| tail N``, keep) the sequences a page completed; False when the cap ended the run."""
    if paged.head is not None:
        matches, paged.head = matches[: paged.head], max(0, paged.head - len(matches))
    if paged.tail is not None:
        paged.tail.extend(matches)
        return True
    return paged.write(matches)


def _metrics(paged: _Paged, stats: PageStats) -> None:
    metrics = paged.tools.metrics
    count_search(metrics, stats)
    metrics.total_search_duration_ms += round(paged.read_ms)  # reading the sequences' events back
    count_writes(metrics, paged.writes)  # alerts_created: shells and building blocks, every document written
