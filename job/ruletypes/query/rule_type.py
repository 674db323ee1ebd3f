"""The query rule type: a KQL or Lucene query over index patterns, one alert per matching event (or, with
``[rule.alert_suppression]``, one per group of events). Kibana's ``query`` (and ``saved_query``) rules."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from job.backends import FieldTypes, KqlOrLucene
from job.rules.model import Rule
from job.rules.validation import Finding, compile_findings, index_findings
from job.ruletypes.contract import Hit, Outcome, PlanInputs, RunPlan, RunTools, SearchPlan
from job.ruletypes.query.execute import candidates, execute
from job.ruletypes.query.suppressed import execute_suppressed
from job.search.clauses import build_query, build_sort, own_alerts_clause
from job.search.coverage import matches_no_index, missing_timestamp_warning, no_index_message
from job.search.probes import Probe
from job.window import Window
from job.writing.writer import Candidate, RunWrites, for_events


class QueryType(KqlOrLucene):
    """KQL and Lucene, with and without alert suppression."""

    name = "query"

    def check(self, rule: Rule, field_types: FieldTypes | None, compiled: Callable[[], Any]) -> list[Finding]:
        findings = index_findings(rule)
        if not rule.query.strip() and not rule.filters:
            message = "query: empty, and no filters: the rule would alert on every event"
            findings.append(Finding(("rule", "query"), message))
        elif rule.query.strip():
            findings += compile_findings(compiled)
        return findings

    def describe(self, rule: Rule, compiled: Any) -> str:
        return json.dumps(compiled, indent=2)

    def plan(self, rule: Rule, window: Window, inputs: PlanInputs) -> SearchPlan:
        """The query and sort of the run, from the ``_field_caps`` response of the rule's index patterns.
        Raises what compiling the query and planning the exceptions raise."""
        if matches_no_index(inputs.caps):
            return SearchPlan(query=None, sort=[], warnings=(no_index_message(rule.index),), exceptions_expired=())
        timestamp_warning = missing_timestamp_warning(rule, inputs.caps)
        exception_plan = inputs.exceptions()
        own_alerts = own_alerts_clause(inputs.alerts_alias, rule.rule_id)
        query = build_query(rule, inputs.compiled(), window, exception_plan.clause, [own_alerts])
        warnings = [*([timestamp_warning] if timestamp_warning else []), *exception_plan.warnings]
        return SearchPlan(
            query=query,
            sort=build_sort(rule),
            warnings=tuple(warnings),
            exceptions_expired=tuple(item.item_id for item in exception_plan.expired),
            exceptions=exception_plan,
        )

    def execute(self, rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
        if rule.alert_suppression is not None:
            return execute_suppressed(rule, run, search, tools)
        return execute(rule, run, search, tools)

    def probe(self, rule: Rule, search: SearchPlan) -> Probe | None:
        # A rule with an alert suppression searches for groups, not events: it is paged on its own.
        if search.query is None or rule.alert_suppression is not None:
            return None
        return Probe(rule.index, search.query, search.sort)

    def read_whole(
        self, rule: Rule, search: SearchPlan, hits: Sequence[Hit], tools: RunTools
    ) -> tuple[RunWrites, list[Candidate]]:
        del search
        space_id = tools.settings.space_id
        return for_events(rule, space_id, tools.execution_uuid), candidates(
            rule, space_id, tools.page_filter(list(hits))
        )
