"""Execute one planned run of a new-terms rule: the new terms of the window page by page
(:mod:`job.ruletypes.new_terms.pages`), each page's alerts through the shared writer up to the cap.

A new term's alert id is Kibana's hash of its earliest event and the term, the same in every run that finds the
term new: a rerun, a run whose window overlaps, or the run after a killed one writes nothing twice (the writer's
dedupe), so the type keeps no state. When the cap is reached with new terms left, or the run is asked to stop,
the run records the window start as ``searched_to`` (phase-1 pages come in key order, not time order): the next
run searches the window again, finds the same terms still new (their first appearance lies after its start) and
writes the ones not written yet. Kibana drops them, with the same warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from job.rules.model import NewTermsRule, Rule
from job.ruletypes.contract import Outcome, RunPlan, RunTools, SearchPlan, count_writes, stopped_message
from job.ruletypes.new_terms.pages import new_terms_pages
from job.search.aggregations import EventQuery
from job.search.searcher import Searcher
from job.window import Window
from job.writing.hit_alerts import for_hit_alerts, max_alerts_warning


@dataclass(frozen=True, slots=True)
class NewTermsSearch(SearchPlan):
    """The search plan of a new-terms run: the rule's events (any time range) and its history window."""

    events: EventQuery | None = None
    history: Window | None = None  # [history start, window end]


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
    found = 0
    try:
        writer = tools.writer(writes, run.cap)
        try:
            for page in new_terms_pages(searcher, rule.params.fields, search.events, window, search.history):
                found += len(page.found)
                if writer.offer(writer.new(page.candidates(rule.rule_id, settings.space_id))):
                    outcome.warnings.append(max_alerts_warning(False))
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
        count_writes(metrics, writes)
    outcome.warnings += writes.warnings(settings.dead_letter_index)
    return outcome
