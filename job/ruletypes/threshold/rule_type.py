"""The threshold rule type: a KQL or Lucene query whose events are counted per group of field values, one alert
per group that reaches the threshold (Kibana's ``siem.thresholdRule``). docs/rules.md (threshold rules) has the
behaviour and where it differs from Kibana.

Runs outside the pass's shared ``_msearch`` (``probe`` is None): the probe reads a first page of *hits*, and a
threshold run reads no hits, only aggregations (one search when nothing matches, as cheap as a probe).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from job.backends import FieldTypes, KqlOrLucene
from job.rules.aggregation_params import threshold_problems
from job.rules.model import Rule, ThresholdRule
from job.rules.validation import Finding, grouping_findings, searched_findings
from job.ruletypes.contract import NotProbed, Outcome, PlanInputs, RunPlan, RunTools, SearchPlan
from job.ruletypes.threshold.execute import ThresholdSearch, execute
from job.ruletypes.threshold.history import history_request
from job.ruletypes.threshold.search import buckets_request, total_request
from job.search.aggregations import event_query
from job.search.coverage import coverage_warnings
from job.window import Window
from job.writing.suppressing import TRANSLATE_NOTE

# What ``translate`` says about the requests it prints.
NOTES = (
    "The time range is the rule's from/to as date math; a run sends the times of its window.",
    "A run adds to bool.must_not the rule's exception items and the clause that hides the rule's own alerts, "
    "and one clause per group of the signal history (its events already counted).",
)


class ThresholdType(KqlOrLucene, NotProbed):
    """Threshold rules: groups of events over a count (and a distinct count)."""

    name = "threshold"

    def check(self, rule: Rule, field_types: FieldTypes | None, compiled: Callable[[], Any]) -> list[Finding]:
        assert isinstance(rule, ThresholdRule)
        findings = searched_findings(rule, compiled)
        for key, message in threshold_problems(rule.threshold, rule.metadata.min_stack_version):
            label = ".".join(str(part) for part in ("threshold", *key) if not isinstance(part, int))
            findings.append(Finding(("rule", "threshold", *key), f"{label}: {message}"))
        findings += suppression_findings(rule)
        if field_types is not None:
            params = rule.threshold
            findings += grouping_findings(("rule", "threshold", "field"), params.field, field_types)
            counted = [params.counted_cardinality.field] if params.counted_cardinality else []
            findings += grouping_findings(("rule", "threshold", "cardinality"), counted, field_types)
        return findings

    def describe(self, rule: Rule, compiled: Any) -> str:
        assert isinstance(rule, ThresholdRule)
        query = event_query(rule, compiled, None, None)
        events, timestamps, params = query.for_date_math(rule.from_, rule.to), query.timestamps, rule.threshold
        if params.field:
            what = (
                "the groups: a composite aggregation, 10,000 groups a page (the next page after the previous "
                "page's after_key); the count and cardinality conditions are checked on each page"
            )
            body = buckets_request(params, events, timestamps)
        else:
            what = "the one group of all events: the count, and the cardinality when the rule has the condition"
            body = total_request(params, events, timestamps)
        history = history_request(rule.rule_id, "<space>", params.field, (rule.from_, rule.to))
        requests = [
            {"search": list(rule.index), "what": what, "body": body},
            {
                "search": "<the alerts alias>",
                "what": "the signal history, on the rule's first run (then kept in its execution record)",
                "body": history,
            },
        ]
        return json.dumps({"requests": requests, "notes": _notes(rule)}, indent=2)

    def plan(self, rule: Rule, window: Window, inputs: PlanInputs) -> SearchPlan:
        """The rule's events, from the ``_field_caps`` of its index patterns. Raises what compiling the query and
        planning the exceptions raise."""
        matches, warnings = coverage_warnings(rule, inputs.caps)
        if not matches:
            return ThresholdSearch(query=None, sort=[], warnings=warnings, exceptions_expired=())
        exceptions = inputs.exceptions().for_aggregations()
        events = event_query(rule, inputs.compiled(), exceptions.clause, inputs.alerts_alias)
        return ThresholdSearch(
            query=events.for_window(window),
            sort=[],
            warnings=(*warnings, *exceptions.warnings),
            exceptions_expired=exceptions.expired_ids,
            exceptions=exceptions,
            events=events,
        )

    def execute(self, rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
        return execute(rule, run, search, tools)


def suppression_findings(rule: ThresholdRule) -> list[Finding]:
    """Kibana's threshold rules suppress with a ``duration`` only: the threshold fields are the groups."""
    suppression = rule.alert_suppression
    if suppression is None:
        return []
    findings = []
    key = ("rule", "alert_suppression")
    if suppression.group_by or suppression.missing_fields_strategy is not None:
        message = "alert_suppression: a threshold rule groups by threshold.field; give only a duration"
        findings.append(Finding(key, message))
    if suppression.duration is None:
        findings.append(Finding(key, "alert_suppression.duration: a threshold rule suppresses over a duration"))
    return findings


def _notes(rule: Rule) -> list[str]:
    return [*NOTES, *([TRANSLATE_NOTE] if rule.alert_suppression is not None else [])]
