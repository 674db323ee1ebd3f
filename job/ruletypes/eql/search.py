"""The search of one window of an EQL rule (pure): what Kibana's request ``filter`` holds (the window on the
timestamp override with its fallback, the rule's filters, the exceptions), and the query of each stage.

* An **event query** is one search: the pushed-down condition in the request filter, sorted like a query
  rule's (the window's timestamp, then ``_shard_doc``), so that it pages, resumes and probes as they do.
* A **sequence** is one stream: each stage's pushed-down query is a named clause (``_name``), and the search
  returns the events any stage selects, each with the names of the stages whose query it matched
  (``matched_queries``): Elasticsearch itself says which stage an event belongs to, the client evaluates only
  the residuals. The stream is sorted as Elasticsearch orders sequence events: ``timestamp_field``, then
  ``tiebreaker_field`` (a missing value last), then ``_shard_doc``; events tied on both are put in a stable
  order (index, id) by :mod:`job.ruletypes.eql.stream`. Events lacking ``timestamp_field`` have no place in
  that order and take no part in a sequence (an ``exists`` filter). Only the fields the client reads
  (keys, residuals, exception lists applied per page) come back; whole events are read for the sequences
  that complete.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Mapping
from typing import Any

from job.eql import QueryPlan, StagePlan
from job.eql.ast import fields_in
from job.lists.plan import ExceptionPlan
from job.rules.model import EqlRule
from job.ruletypes.contract import PlanInputs, SearchPlan
from job.ruletypes.eql.compiled import Compiled, eql_rule, tiebreaker_field, timestamp_field
from job.search.clauses import build_query, build_sort, own_alerts_clause
from job.search.coverage import matches_no_index, missing_timestamp_warning, no_index_message
from job.window import Window


@dc.dataclass(frozen=True, slots=True)
class EqlSearch(SearchPlan):
    """The search of one window; ``plan`` is None when there is nothing to search. For a sequence, ``names``
    maps each named stage clause to the stages (``runs`` copies, ``until``) it selects events for, and
    ``source`` lists the fields the stream reads."""

    plan: QueryPlan | None = None
    names: Mapping[str, tuple[StagePlan, ...]] = dc.field(default_factory=dict)
    source: tuple[str, ...] = ()
    timestamp_field: str = "@timestamp"
    tiebreaker_field: str | None = None

    @property
    def is_sequence(self) -> bool:
        return self.plan is not None and self.plan.kind == "sequence"


def stage_name(stage: StagePlan) -> str:
    return f"stage{stage.source_position}"


def _stages(planned: QueryPlan) -> list[StagePlan]:
    return [*planned.stages, *([planned.until] if planned.until else [])]


def stream_clause(planned: QueryPlan, timestamp: str) -> dict[str, Any]:
    """Events of any stage (each stage's query named after it), with a timestamp to order them by."""
    named: dict[str, dict[str, Any]] = {}
    for stage in _stages(planned):
        named.setdefault(stage_name(stage), {"bool": {"filter": [stage.push.dsl], "_name": stage_name(stage)}})
    should = list(named.values())
    return {"bool": {"filter": [{"exists": {"field": timestamp}}], "should": should, "minimum_should_match": 1}}


def sequence_sort(timestamp: str, tiebreaker: str | None, types: Mapping[str, str]) -> list[dict[str, Any]]:
    """Elasticsearch's order of sequence events: timestamp, tiebreaker (missing last), ``_shard_doc``."""
    sort: list[dict[str, Any]] = [
        {timestamp: {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}},
    ]
    if tiebreaker is not None:
        kind = types.get(tiebreaker, "keyword").split(",")[0]
        sort.append({tiebreaker: {"order": "asc", "missing": "_last", "unmapped_type": kind}})
    sort.append({"_shard_doc": "asc"})
    return sort


def source_fields(planned: QueryPlan, exceptions: ExceptionPlan) -> tuple[str, ...]:
    """The fields a sequence stream reads on the client: join keys, residual conditions, exception entries."""
    names: dict[str, None] = {}
    for stage in _stages(planned):
        for key in stage.keys:
            names.update((field.name, None) for field in fields_in(key))
        if stage.push.residual is not None:
            names.update((field.name, None) for field in fields_in(stage.push.condition))
    for item in exceptions.post_filter:
        for entry in item.entries:
            names[entry.field] = None
    return tuple(names)


def plan_search(rule: EqlRule, window: Window, inputs: PlanInputs) -> EqlSearch:
    """The search of ``window``, from the ``_field_caps`` of the rule's index patterns."""
    if matches_no_index(inputs.caps):
        return EqlSearch(query=None, sort=[], warnings=(no_index_message(rule.index),), exceptions_expired=())
    compiled: Compiled = inputs.compiled()
    if compiled.plan is None:  # the indices map no field at all: no event can match
        return EqlSearch(query=None, sort=[], warnings=(), exceptions_expired=())
    timestamp_warning = missing_timestamp_warning(rule, inputs.caps)
    exceptions = inputs.exceptions()
    own_alerts = own_alerts_clause(inputs.alerts_alias, rule.rule_id)
    planned = compiled.plan
    timestamp, tiebreaker = timestamp_field(rule), tiebreaker_field(rule)
    common: dict[str, Any] = {
        "warnings": tuple([*([timestamp_warning] if timestamp_warning else []), *exceptions.warnings]),
        "exceptions_expired": tuple(item.item_id for item in exceptions.expired),
        "exceptions": exceptions,
        "plan": planned,
        "timestamp_field": timestamp,
        "tiebreaker_field": tiebreaker,
    }
    if planned.kind == "event":
        query = build_query(rule, planned.stages[0].push.dsl, window, exceptions.clause, [own_alerts])
        return EqlSearch(query=query, sort=build_sort(rule), **common)
    names: dict[str, tuple[StagePlan, ...]] = {}
    for stage in _stages(planned):
        names[stage_name(stage)] = (*names.get(stage_name(stage), ()), stage)
    query = build_query(rule, stream_clause(planned, timestamp), window, exceptions.clause, [own_alerts])
    return EqlSearch(
        query=query,
        sort=sequence_sort(timestamp, tiebreaker, compiled.field_types),
        names=names,
        source=source_fields(planned, exceptions),
        **common,
    )


def rule_of(rule: Any) -> EqlRule:
    return eql_rule(rule)
