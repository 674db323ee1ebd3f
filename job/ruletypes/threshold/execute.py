"""Execute one planned run of a threshold rule: the signal history, the groups over the threshold, their alerts
through the shared writer, and the history kept for the next run.

1. **The history.** The previous run's, from its execution record (``RunPlan.state``), when the execution log
   says it can be trusted; otherwise (the rule's first run, a run that did not finish, runs that overlapped,
   a backfill) it is read from the rule's alerts in the alerts index, as Kibana does on a first run
   (:func:`job.ruletypes.threshold.history.read_history`). Entries of other group-by fields are left out.
2. **The groups.** The composite search of the window, minus the events the history says were counted
   (:mod:`job.ruletypes.threshold.search`), up to the cap.
3. **The alerts.** One candidate per group (:mod:`job.ruletypes.threshold.alerts`), its id Kibana's (built
   from the run's start, here the end of its window: a rerun at the same ``--now`` finds the same ids, so the
   writer's dedupe drops what a killed run had written); built by :class:`job.writing.hit_alerts.HitAlerts`.
4. **With suppression** (``alert_suppression.duration``): the groups go to
   :class:`job.writing.suppressing.SuppressingWriter` instead: a group whose open alert (of its values) lies
   within the duration is folded into it (``docs_count`` + 1, ``suppression.end``), the others get alerts.
5. **The history kept** (``Outcome.state``): the entries still in force plus every group this run handled
   (created, folded into an open alert, found written already, or dead-lettered: a dead-lettered group is not
   counted again, as a query rule's window advances past a dead-lettered event). A fold moves its alert's
   ``suppression.end`` and the group's entry to the same moment, so a history read back from the alerts (a
   run killed before its record) excludes what the fold counted (:func:`job.ruletypes.threshold.history.read_history`).

When more groups pass than the cap, or the run is asked to stop, the groups not written wait for the next run:
groups come in key order, not time order, so the run records the window start as ``searched_to``; the groups
written are in the history, so their events are not counted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from job.rules.model import Rule, ThresholdRule
from job.ruletypes.contract import Outcome, RunPlan, RunTools, SearchPlan, count_writes, stopped_message
from job.ruletypes.threshold.alerts import BucketAlerts
from job.ruletypes.threshold.history import SignalHistory, read_history
from job.ruletypes.threshold.search import FoundBuckets, find_buckets
from job.search.aggregations import EventQuery
from job.search.searcher import Searcher
from job.window import Window
from job.writing.hit_alerts import for_hit_alerts, max_alerts_warning
from job.writing.run_writer import AlertWriter
from job.writing.suppressing import SuppressingWriter

HISTORY = "signal_history"  # the key of the history in the state a run keeps


@dataclass(frozen=True, slots=True)
class ThresholdSearch(SearchPlan):
    """The search plan of a threshold run: the rule's events (query, filters, exceptions), any time range."""

    events: EventQuery | None = None


def previous_history(rule: ThresholdRule, run: RunPlan, tools: RunTools, alerts: Searcher) -> SignalHistory:
    """The history kept by the previous run when it can be trusted, else read from the rule's alerts."""
    fields = rule.threshold.field
    kept = run.state.get(HISTORY) if run.state is not None else None
    if isinstance(kept, Mapping):  # else none, or not ours to read: rebuilt from the alerts
        return SignalHistory.from_record(kept).of_fields(fields)
    tools.refresh_alerts()
    return read_history(alerts, rule.rule_id, tools.settings.space_id, fields, run.window)


def execute(rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
    """Search ``run.window`` for groups over the threshold and write their alerts up to ``run.cap``;
    ``tools.metrics`` is filled as it goes, also when an error ends the run."""
    assert isinstance(rule, ThresholdRule) and isinstance(search, ThresholdSearch)
    window = run.window
    if search.query is None or search.events is None:  # no index matches: nothing to search, the window is done
        return Outcome(searched_to=window.end)
    settings, events = tools.settings, search.events
    searcher = Searcher(tools.es, tools.policy, rule.index)
    alerts = Searcher(tools.es, tools.policy, [settings.alerts_index])
    writes = for_hit_alerts(rule, settings.space_id, tools.execution_uuid)
    hits = 0
    suppressing: SuppressingWriter | None = None
    try:
        history = previous_history(rule, run, tools, alerts).for_window(window)
        query = events.for_window(window, must_not=history.exclusions(events.timestamps))
        found = find_buckets(
            searcher, rule.threshold, query, events.timestamps, max_signals=run.cap, should_stop=tools.should_stop
        )
        hits = sum(bucket.count for bucket in found.buckets)
        writer = tools.writer(writes, run.cap)
        suppressing = _suppressing(rule, window, writer, tools)
        try:
            _write(rule, found, window, writer, suppressing)
        finally:
            writer.settle_all()
        if tools.refresh:
            writer.refresh()
    finally:
        _metrics(tools, (searcher, alerts), hits)
        count_writes(tools.metrics, writes, suppressing)
    outcome = Outcome(searched_to=window.end)
    if found.more:
        outcome.warnings.append(max_alerts_warning(False))
        outcome.searched_to = window.start
    if found.stopped:
        outcome.searched_to = window.start
        outcome.warnings.append(stopped_message(window.start))
    outcome.warnings += writes.warnings(settings.dead_letter_index)
    outcome.state = {HISTORY: history.with_buckets(found.buckets).to_record()}
    return outcome


def _suppressing(rule: ThresholdRule, window: Window, writer: AlertWriter, tools: RunTools) -> SuppressingWriter | None:
    """The writer of a rule with a suppression duration (Kibana suppresses threshold rules with one only)."""
    suppression = rule.alert_suppression
    if suppression is None or suppression.duration is None:
        return None
    store = tools.suppression_store(rule.rule_id)
    return SuppressingWriter(writer, store, window, suppression.duration)


def _write(
    rule: ThresholdRule, found: FoundBuckets, window: Window, writer: AlertWriter, suppressing: SuppressingWriter | None
) -> None:
    """Write the groups' alerts (the run's start in their ids is the window's end), through ``suppressing`` when
    the rule suppresses. The run never holds more groups than its cap, so the writer leaves none over."""
    alerts = BucketAlerts(rule.threshold, rule.index, rule.rule_id, writer.run.space_id, window.end, window)
    if suppressing is None:
        writer.offer(writer.new(alerts.candidates(found.buckets)))
    else:
        suppressing.write(alerts.grouped(found.buckets))


def _metrics(tools: RunTools, searchers: tuple[Searcher, ...], hits: int) -> None:
    """``pages``: the searches made (of the events and of the alerts); ``hits``: the events of the groups alerted on."""
    metrics = tools.metrics
    metrics.pages = sum(searcher.searches for searcher in searchers)
    metrics.total_search_duration_ms = round(sum(searcher.search_ms for searcher in searchers))
    metrics.hits = hits
