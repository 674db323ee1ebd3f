"""The ES|QL rule type: a pipeline run by Elasticsearch's ``_query`` API, one alert per row (with the row's
event when the query does not aggregate). Kibana's ``esql`` rules, as its 8.19 executor runs them.

It runs outside the pass's shared ``_msearch`` (``probe`` gives None): an ES|QL query is no search that an
``_msearch`` can carry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from job.backends import FieldTypes
from job.lists.plan import ExceptionPlan
from job.rules.exceptions import item_clauses, should_of, split_expired
from job.rules.model import Rule
from job.rules.validation import Finding, compile_findings
from job.ruletypes.contract import Cluster, NotProbed, Outcome, PlanInputs, RunPlan, RunTools, SearchPlan
from job.ruletypes.esql.compiled import EsqlQuery, EsqlSearch, compile_query, plan_search
from job.ruletypes.esql.engine import Engine, EsqlCancelled, EsqlQueryError
from job.ruletypes.esql.execute import execute
from job.ruletypes.esql.request import EsqlRequest, build_request, page_size
from job.ruletypes.esql.suppressed import execute_suppressed
from job.search.clauses import timestamp_fields
from job.window import Window, rule_window

# Where Elasticsearch's reason says which line and column of the query it refuses.
_AT = re.compile(r"\bline (\d+):(\d+)\b")
# Statuses of a cluster that does not serve ES|QL (the path is read as an index that takes no POST, say).
_NO_ESQL = frozenset({404, 405, 410})


def cluster_findings(rule: Rule, compiled: EsqlQuery, cluster: Cluster) -> list[Finding]:
    """Elasticsearch's verdict on the query, from running it with `` | LIMIT 0`` (no rows are read): a
    refusal is a problem at the query line Elasticsearch names; an index that does not exist yet is a warning
    (a run would find nothing and say so); ``alert_suppression.group_by`` fields that are no column of the
    result are warnings."""
    deadline = datetime.now(UTC) + timedelta(seconds=cluster.timeout)
    engine = Engine(cluster.es, cluster.policy, lambda: datetime.now(UTC), deadline)
    try:
        result = engine.query(EsqlRequest(params={}, body={"query": f"{compiled.text} | LIMIT 0"}))
    except EsqlCancelled:
        within = f"{cluster.timeout:g}s (DETECTION_ES_REQUEST_TIMEOUT)"
        message = f"query: not checked, Elasticsearch did not answer within {within}"
        return [Finding(("rule", "query"), message, error=False)]
    except EsqlQueryError as exc:
        status = exc.status
        if status in _NO_ESQL:
            return [Finding(("rule", "query"), f"query: not checked, the cluster does not run ES|QL ({exc})", False)]
        if "Unknown index" in str(exc) or "index_not_found_exception" in str(exc):
            return [Finding(("rule", "query"), f"query: {exc}", error=False)]
        found = _AT.search(str(exc))
        if found is None:
            return [Finding(("rule", "query"), f"query: {exc}")]
        where = (int(found.group(1)), int(found.group(2)))
        return [Finding(("rule", "query"), f"query line {where[0]}, column {where[1]}: {exc}", query_position=where)]
    findings = []
    columns = set(result.column_names)
    for number, name in enumerate(rule.alert_suppression.group_by if rule.alert_suppression else ()):
        if name not in columns:
            message = f'alert_suppression.group_by: Field "{name}" is not a column of the query\'s result'
            findings.append(Finding(("rule", "alert_suppression", "group_by", number), message, error=False))
    return findings


def inline_exception_clause(rule: Rule, now: datetime) -> dict[str, Any] | None:
    """The clause of the rule's exception items that need no value list (what ``translate`` can show offline)."""
    active, _ = split_expired(rule.exceptions, now)
    clauses = [
        clause
        for item in active
        if not any(entry.type == "list" for entry in item.entries)
        for clause in item_clauses(item, {})
    ]
    return should_of(clauses)


class EsqlType(NotProbed):
    """ES|QL, with and without alert suppression; never probed: an ES|QL query is no search the pass's shared
    ``_msearch`` can carry."""

    name = "esql"

    def compile_key(self, rule: Rule) -> Hashable:
        return (rule.query,)

    def compile(self, rule: Rule, field_types: FieldTypes | None) -> EsqlQuery:
        del field_types  # Elasticsearch checks the fields (validate, with a cluster)
        return compile_query(rule.query)

    def check(self, rule: Rule, field_types: FieldTypes | None, compiled: Callable[[], Any]) -> list[Finding]:
        findings = compile_findings(compiled)
        for key in ("index", "filters"):
            if getattr(rule, key):
                message = f"{key}: an ES|QL rule searches the indices its query's FROM names, and has no {key}"
                findings.append(Finding(("rule", key), f"{message}; it is not used", error=False))
        return findings

    def check_on_cluster(self, rule: Rule, cluster: Cluster) -> list[Finding]:
        try:
            compiled = compile_query(rule.query)
        except ValueError:
            return []  # the compile finding says why
        return cluster_findings(rule, compiled, cluster)

    def describe(self, rule: Rule, compiled: Any) -> str:
        """The first request of a run started now: ``POST /_query/async`` with its parameters and body (later
        pages add the events already alerted on to the filter's ``must_not``). Exception items of value lists
        are left out: their values are read from the cluster at run time."""
        query: EsqlQuery = compiled
        now = datetime.now(UTC)
        window = rule_window(rule, now)
        request = build_request(
            query.text,
            window,
            timestamp_fields(rule),
            inline_exception_clause(rule, now),
            page_size(rule.max_signals),
            aggregating=query.aggregating,
        )
        parameters = "&".join(f"{key}={value}" for key, value in request.params.items())
        return f"POST {request.path}?{parameters}\n{json.dumps(request.body, indent=2, ensure_ascii=False)}"

    def plan(self, rule: Rule, window: Window, inputs: PlanInputs) -> SearchPlan:
        compiled: EsqlQuery = inputs.compiled()
        if not inputs.caps.get("indices"):
            return plan_search(rule, compiled, window, inputs.caps, ExceptionPlan())
        return plan_search(rule, compiled, window, inputs.caps, inputs.exceptions())

    def execute(self, rule: Rule, run: RunPlan, search: SearchPlan, tools: RunTools) -> Outcome:
        assert isinstance(search, EsqlSearch)
        if rule.alert_suppression is not None:
            return execute_suppressed(rule, run, search, tools)
        return execute(rule, run, search, tools)
