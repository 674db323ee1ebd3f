"""The new-terms rule type: a KQL or Lucene query whose alerts are the first appearances, within a history
window, of the values (or combinations of values) of 1 to 3 fields (Kibana's ``siem.newTermsRule``).
docs/rules.md (new-terms rules) has the behaviour and where it differs from Kibana.

Runs outside the pass's shared ``_msearch`` (``probe`` is None): the probe reads a first page of *hits*, and a
new-terms run reads aggregations (one search when nothing matches, as cheap as a probe).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from job.backends import FieldTypes, KqlOrLucene
from job.rules.aggregation_params import new_terms_problems
from job.rules.model import NewTermsRule, Rule
from job.rules.positions import KeyPath
from job.rules.validation import Finding, grouping_findings, searched_findings
from job.ruletypes.contract import NotProbed, Outcome, PlanInputs, RunPlan, RunTools, SearchPlan
from job.ruletypes.new_terms.execute import NewTermsSearch, execute
from job.ruletypes.new_terms.history import history_problems, history_window
from job.ruletypes.new_terms.phases import (
    batch_clause,
    combination_events_request,
    combinations_request,
    first_events_request,
    new_values_request,
    recent_terms_request,
)
from job.search.aggregations import event_query
from job.search.coverage import coverage_warnings
from job.window import Window, rule_window
from job.writing.suppressing import TRANSLATE_NOTE

NOTES = (
    "The time ranges are the rule's from/to and history_window_start as date math; a run sends the times of its "
    "window, and its history window starts earlier by as much as the window does when it catches up.",
    "A run adds to bool.must_not the rule's exception items and the clause that hides the rule's own alerts.",
    "Per page of terms (10,000), the history check and the earliest events are asked of that page's terms only; "
    "a term is new when it was first seen after the window's start (checked on the client: no scripts).",
)


class NewTermsType(KqlOrLucene, NotProbed):
    """New-terms rules: the terms of the window never seen in the history window."""

    name = "new_terms"

    def check(self, rule: Rule, field_types: FieldTypes | None, compiled: Callable[[], Any]) -> list[Finding]:
        assert isinstance(rule, NewTermsRule)
        findings = searched_findings(rule, compiled)
        fields_key, start_key = _keys(rule)
        params = rule.params  # the history window is checked against the real clock, as Kibana does
        problems = new_terms_problems(params) + history_problems(params.history_window_start, rule.from_, now())
        for (part, *_), message in problems:
            key = fields_key if part == "fields" else start_key
            label = "new_terms_fields" if part == "fields" else "history_window_start"
            findings.append(Finding(key, f"{label}: {message}"))
        if field_types is not None:
            findings += grouping_findings(fields_key, rule.params.fields, field_types, "new_terms_fields")
        return findings

    def describe(self, rule: Rule, compiled: Any) -> str:
        assert isinstance(rule, NewTermsRule)
        query, fields = event_query(rule, compiled, None, None), rule.params.fields
        timestamps, start, end = query.timestamps, rule.params.history_window_start, rule.to
        window, history = query.for_date_math(rule.from_, end), query.for_date_math(start, end)
        requests: list[dict[str, Any]] = [
            {"what": "phase 1: the terms of the window, 10,000 a page", "body": recent_terms_request(fields, window)}
        ]
        if len(fields) == 1:
            page, new = ["<the page's values>"], ["<the values first seen after the window's start>"]
            requests += [
                {
                    "what": "phase 2: when each term of the page was first seen in the history window",
                    "body": new_values_request(fields[0], page, history, timestamps),
                },
                {
                    "what": "phase 3: the earliest event of each new term in the window",
                    "body": first_events_request(fields[0], new, window, timestamps),
                },
            ]
        else:
            keys = [tuple(f"<{field} of a term>" for field in fields)]
            batch = [batch_clause(fields, keys)]
            requests += [
                {
                    "what": "phase 2, per batch of 500 terms of the page: when each was first seen",
                    "body": combinations_request(
                        fields, query.for_date_math(start, end, filters=batch), timestamps, after=None, size=500
                    ),
                },
                {
                    "what": "phase 3, per batch: the earliest event of each new term in the window",
                    "body": combination_events_request(
                        fields, query.for_date_math(rule.from_, end, filters=batch), timestamps, after=None, size=500
                    ),
                },
            ]
        searched = [{"search": list(rule.index), **request} for request in requests]
        return json.dumps({"requests": searched, "notes": _notes(rule)}, indent=2)

    def plan(self, rule: Rule, window: Window, inputs: PlanInputs) -> SearchPlan:
        """The rule's events and history window, from the ``_field_caps`` of its index patterns. Raises what
        compiling the query and planning the exceptions raise, and Kibana's error when the history window does
        not start before the window."""
        assert isinstance(rule, NewTermsRule)
        matches, warnings = coverage_warnings(rule, inputs.caps)
        if not matches:
            return NewTermsSearch(query=None, sort=[], warnings=warnings, exceptions_expired=())
        history = history_window(rule.params.history_window_start, window, own_start(rule, window))
        exceptions = inputs.exceptions().for_aggregations()
        events = event_query(rule, inputs.compiled(), exceptions.clause, inputs.alerts_alias)
        return NewTermsSearch(
            query=events.for_window(window),
            sort=[],
            warnings=(*warnings, *exceptions.warnings),
            exceptions_expired=exceptions.expired_ids,
            exceptions=exceptions,
            events=events,
            history=history,
        )

    def execute(self, rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
        return execute(rule, run, search, tools)


def now() -> datetime:
    return datetime.now(UTC)


def own_start(rule: Rule, window: Window) -> datetime:
    """Where the rule's own window would start if it ended where ``window`` ends (a run catching up starts
    earlier)."""
    plain = rule_window(rule, window.end)
    return window.end - (plain.end - plain.start)


def _keys(rule: NewTermsRule) -> tuple[KeyPath, KeyPath]:
    """Where the fields and the history window start are in the rule file (detection-rules' table, or the API keys)."""
    if rule.new_terms is not None:
        return ("rule", "new_terms", "value"), ("rule", "new_terms", "history_window_start", 0, "value")
    return ("rule", "new_terms_fields"), ("rule", "history_window_start")


def _notes(rule: Rule) -> list[str]:
    return [*NOTES, *([TRANSLATE_NOTE] if rule.alert_suppression is not None else [])]
