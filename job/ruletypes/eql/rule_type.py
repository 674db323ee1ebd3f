"""The EQL rule type: an EQL event query or sequence over index patterns, as Elasticsearch's ``_eql/search``
selects events and sequences and as Kibana's ``siem.eqlRule`` writes their alerts (one per event; a shell and
a building block per event for a sequence). docs/rules.md (EQL rules) has the behaviour and the differences.

The language is :mod:`job.eql` (pure); here are its plan for a window (:mod:`.search`), the runs
(:mod:`.events`, :mod:`.suppressed`, :mod:`.sequences`) and the alerts of sequences (:mod:`.sequence_alerts`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from job.backends import FieldTypes
from job.eql import describe
from job.rules.model import Rule
from job.rules.validation import Finding
from job.ruletypes.contract import Hit, Outcome, PlanInputs, RunPlan, RunTools, SearchPlan
from job.ruletypes.eql.compiled import Compiled, check_rule, compile_query, eql_rule
from job.ruletypes.eql.events import execute_events, window_candidates
from job.ruletypes.eql.search import EqlSearch, plan_search
from job.ruletypes.eql.sequence_alerts import for_sequences
from job.ruletypes.eql.sequences import SequenceRun, candidates, execute_sequence, matches_of_window
from job.ruletypes.eql.suppressed import execute_suppressed_events
from job.search.probes import Probe
from job.window import Window
from job.writing.writer import Candidate, RunWrites, for_events


def _search(search: SearchPlan) -> EqlSearch:
    if not isinstance(search, EqlSearch):
        raise TypeError("an EQL rule runs the search its own type planned")
    return search


class EqlType:
    """EQL event queries (with and without alert suppression) and sequences."""

    name = "eql"

    def compile_key(self, rule: Rule) -> Hashable:
        eql = eql_rule(rule)
        return (eql.query, eql.index, eql.event_category_override, eql.timestamp_field, eql.tiebreaker_field)

    def compile(self, rule: Rule, field_types: FieldTypes | None) -> Compiled:
        return compile_query(rule, field_types)

    def check(self, rule: Rule, field_types: FieldTypes | None, compiled: Callable[[], Any]) -> list[Finding]:
        return check_rule(rule, compiled)

    def describe(self, rule: Rule, compiled: Any) -> str:
        result: Compiled = compiled
        if result.plan is None:
            return "parsed; planning it needs the field types of the rule's indices"
        return describe(result.plan)

    def plan(self, rule: Rule, window: Window, inputs: PlanInputs) -> SearchPlan:
        return plan_search(eql_rule(rule), window, inputs)

    def execute(self, rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
        planned = _search(search)
        if planned.is_sequence:
            return execute_sequence(rule, run, planned, tools)
        if rule.alert_suppression is not None:
            return execute_suppressed_events(rule, run, planned, tools)
        return execute_events(rule, run, planned, tools)

    def probe(self, rule: Rule, search: SearchPlan) -> Probe | None:
        planned = _search(search)
        # A suppressed rule counts groups over its whole window: it is paged on its own.
        if planned.query is None or planned.plan is None or (rule.alert_suppression and not planned.is_sequence):
            return None
        return Probe(rule.index, planned.query, planned.sort)

    def read_whole(
        self, rule: Rule, search: SearchPlan, hits: Sequence[Hit], tools: RunTools
    ) -> tuple[RunWrites, list[Candidate]]:
        planned = _search(search)
        space_id = tools.settings.space_id
        if planned.is_sequence:
            state = SequenceRun(rule, planned)
            matches = matches_of_window(state, tools.page_filter(list(hits)))
            units = candidates(rule, tools, matches, whole=True)
            return for_sequences(rule, space_id, tools.execution_uuid), units
        assert planned.plan is not None
        units = window_candidates(rule, tools, planned.plan, hits)
        return for_events(rule, space_id, tools.execution_uuid), units
