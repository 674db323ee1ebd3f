"""Execute one planned run of a new-terms rule: the new terms of the window page by page
(:mod:`job.ruletypes.new_terms.pages`), each page's alerts through the shared writer up to the cap.

A new term's alert id is Kibana's hash of its earliest event and the term, the same in every run that finds the
term new: a rerun, a run whose window overlaps, or the run after a killed one writes nothing twice (the writer's
dedupe), so the type keeps no state. When the cap is reached with new terms left, or the run is asked to stop,
the run records the window start as ``searched_to`` (phase-1 pages come in key order, not time order): the next
run searches the window again, finds the same terms still new (their first appearance lies after its start) and
writes the ones not written yet. Kibana drops them, with the same warning.

**With ``alert_suppression``** (Kibana's ``bulkCreateSuppressedNewTermsAlertsInMemory``): each page's would-be
alerts, in chunks of :data:`SUPPRESSION_MULTIPLIER` times the cap, are split by the missing-fields strategy
(``doNotSuppress``: a term whose event lacks a ``group_by`` field gets its ordinary alert, first); the others
carry their group (:mod:`job.ruletypes.new_terms.suppression`) to :class:`job.writing.suppressing.SuppressingWriter`,
which folds them in memory and into the group's open alert (with a ``duration``; per rule execution, into an
alert of this run), dropping those their group's alerts counted before. The run stops, with Kibana's
suppression variant of the warning, once the cap's worth of alerts is created or
:data:`SUPPRESSION_MULTIPLIER` times the cap are created or suppressed (Kibana's ``executeBulkCreateAlerts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from job.alerts.suppression import Suppression
from job.rules.model import NewTermsRule, Rule
from job.rules.parts import AlertSuppression
from job.ruletypes.contract import Outcome, RunPlan, RunTools, SearchPlan, count_writes, stopped_message
from job.ruletypes.new_terms.pages import new_terms_pages
from job.ruletypes.new_terms.suppression import partition, suppression_of
from job.search.aggregations import EventQuery
from job.search.clauses import TimestampFields
from job.search.searcher import Searcher
from job.window import Window
from job.writing.hit_alerts import for_hit_alerts, max_alerts_warning
from job.writing.run_writer import AlertWriter
from job.writing.suppressing import SuppressingWriter
from job.writing.writer import Candidate

# Kibana's MAX_SIGNALS_SUPPRESSION_MULTIPLIER: a suppressing run creates or suppresses up to this many times its cap.
SUPPRESSION_MULTIPLIER: Final = 5


@dataclass(frozen=True, slots=True)
class NewTermsSearch(SearchPlan):
    """The search plan of a new-terms run: the rule's events (any time range) and its history window."""

    events: EventQuery | None = None
    history: Window | None = None  # [history start, window end]


@dataclass
class _Suppressed:
    """The suppressing side of a run: its rule's suppression, the writer of the grouped alerts, the cap."""

    suppression: AlertSuppression
    timestamps: TimestampFields
    writer: SuppressingWriter
    rule_id: str
    cap: int

    def fields(self) -> tuple[str, ...]:
        """What the earliest events are asked for (the fields API): the groups and the timestamps."""
        timestamps = (self.timestamps.primary, *([self.timestamps.fallback] if self.timestamps.fallback else []))
        return (*self.suppression.group_by, *timestamps)

    def write(self, candidates: Sequence[Candidate]) -> bool:
        """Write a page's would-be alerts in Kibana's chunks; whether the run must stop (alerts left over or
        the suppression cap reached)."""
        alerts = self.writer.writer
        size = SUPPRESSION_MULTIPLIER * self.cap
        for start in range(0, len(candidates), size):
            grouped, ordinary = partition(
                candidates[start : start + size],
                self.suppression.group_by,
                suppress_missing=self.suppression.suppresses_missing,
            )
            if alerts.offer(alerts.new(ordinary)):
                return True
            now = alerts.clock()
            with_groups = [(candidate, self._group(candidate, now)) for candidate in grouped]
            if self.writer.write(with_groups) or self.capped():
                return True
        return False

    def _group(self, candidate: Candidate, now: datetime) -> Suppression:
        return suppression_of(
            candidate.item,
            self.suppression.group_by,
            self.timestamps,
            rule_id=self.rule_id,
            space_id=self.writer.writer.run.space_id,
            now=now,
        )

    def capped(self) -> bool:
        """Kibana's ``alertsWereTruncated`` of a suppressing run: the cap's worth of alerts created, or the
        multiplier's worth created or suppressed."""
        created = self.writer.writer.run.units
        return created >= self.cap or created + self.writer.suppressed >= SUPPRESSION_MULTIPLIER * self.cap


def _suppressed(
    rule: NewTermsRule, run: RunPlan, search: NewTermsSearch, writer: AlertWriter, tools: RunTools
) -> _Suppressed | None:
    suppression = rule.alert_suppression
    if suppression is None or search.events is None:
        return None
    store = tools.suppression_store(rule.rule_id)
    suppressing = SuppressingWriter(writer, store, run.window, suppression.duration, counted_before=True)
    return _Suppressed(suppression, search.events.timestamps, suppressing, rule.rule_id, run.cap)


def execute(rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
    """Search ``run.window`` for new terms and write their alerts up to ``run.cap``; ``tools.metrics`` is
    filled as it goes, also when an error ends the run."""
    assert isinstance(rule, NewTermsRule) and isinstance(search, NewTermsSearch)
    window = run.window
    outcome = Outcome(searched_to=window.end)
    if search.query is None or search.events is None or search.history is None:  # no index matches
        return outcome
    settings = tools.settings
    searcher = Searcher(tools.es, tools.policy, rule.index)
    writes = for_hit_alerts(rule, settings.space_id, tools.execution_uuid)
    writer = tools.writer(writes, run.cap)
    suppressed = _suppressed(rule, run, search, writer, tools)
    hit_fields = suppressed.fields() if suppressed is not None else ()
    found = 0
    try:
        try:
            pages = new_terms_pages(
                searcher, rule.params.fields, search.events, window, search.history, hit_fields=hit_fields
            )
            for page in pages:
                found += len(page.found)
                candidates = page.candidates(rule.rule_id, settings.space_id)
                if suppressed.write(candidates) if suppressed is not None else writer.offer(writer.new(candidates)):
                    outcome.warnings.append(max_alerts_warning(suppressed is not None))
                    outcome.searched_to = window.start
                    break
                if tools.should_stop():
                    outcome.searched_to = window.start
                    outcome.warnings.append(stopped_message(window.start))
                    break
        finally:
            writer.settle_all()
        if tools.refresh:
            writer.refresh()
    finally:
        metrics = tools.metrics
        metrics.pages = searcher.searches
        metrics.total_search_duration_ms = round(searcher.search_ms)
        metrics.hits = found  # the earliest events of the new terms
        count_writes(metrics, writes, suppressed.writer if suppressed is not None else None)
    outcome.warnings += writes.warnings(settings.dead_letter_index)
    return outcome
