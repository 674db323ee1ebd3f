"""The ES|QL rule type's pure parts: reading the rule's query as Kibana's save-time check does, the search of a
window, what ``translate`` prints, the alert a row becomes, suppression's terms and times, and the engine's
time budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, ConnectionTimeout
from orjson import loads

from job.alerts.build import RunAlerts
from job.client.retry import RetryPolicy
from job.esql.inject import METADATA_ID_REQUIRED
from job.lists.plan import ExceptionPlan
from job.rules.model import Rule
from job.rules.parts import ExceptionItem
from job.ruletypes.esql.alerts import WouldBeAlert
from job.ruletypes.esql.compiled import EsqlQueryTextError, compile_query, plan_search
from job.ruletypes.esql.engine import DELETE_SECONDS, Engine, EsqlCancelled, EsqlQueryError
from job.ruletypes.esql.execute import once_each
from job.ruletypes.esql.maker import EsqlAlerts, filed_under
from job.ruletypes.esql.rule_type import EsqlType
from job.ruletypes.esql.suppressed import RowGroup, terms_of, time_of
from job.window import Window
from job.writing.grouped import ALERT_ID_KEY
from tests.alert_samples import SEED_RULE_FIELDS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(minutes=6), NOW)


def _rule(query: str, **changes: Any) -> Rule:
    fields = {key: value for key, value in SEED_RULE_FIELDS.items() if key != "index"}
    return Rule.model_validate({**fields, "type": "esql", "language": "esql", "query": query, **changes})


@pytest.mark.parametrize(
    ("query", "aggregating", "mv_expand", "indices"),
    [
        ("FROM logs-* METADATA _id", False, (), ("logs-*",)),
        ("from a, b metadata _id, _index | mv_expand x | mv_expand `y.z`", False, ("x", "y.z"), ("a", "b")),
        ("FROM logs-* | STATS c = COUNT(*) BY host.name", True, (), ("logs-*",)),
        ("FROM logs-* | INLINE STATS c = COUNT(*) | KEEP c", None, (), ("logs-*",)),  # no _id: refused
    ],
)
def test_the_query_read(query: str, aggregating: bool | None, mv_expand: tuple[str, ...], indices: tuple[str]) -> None:
    if aggregating is None:
        with pytest.raises(EsqlQueryTextError):
            compile_query(query)
        return
    compiled = compile_query(query)
    assert (compiled.aggregating, compiled.mv_expand, compiled.indices) == (aggregating, mv_expand, indices)
    assert compiled.text == query


@pytest.mark.parametrize(
    ("query", "position", "message"),
    [
        ("FROM logs-*\n| WHERE a == 1", (1, 1), METADATA_ID_REQUIRED),  # Kibana's save-time check, before 9.4
        ("ROW a = 1", (1, 1), "an ES|QL rule's query starts with FROM (its source command), not ROW"),
        ('FROM x METADATA _id\n| WHERE a == "b', (2, 14), "unterminated string at offset 33"),
        (
            "FROM x METADATA _id // the appended limit would be a comment",
            (1, 61),
            "the query ends in a // comment, which would comment out the appended | limit",
        ),
    ],
)
def test_a_query_kibana_would_not_run_is_refused_where_it_goes_wrong(
    query: str, position: tuple[int, int], message: str
) -> None:
    with pytest.raises(EsqlQueryTextError) as refused:
        compile_query(query)
    assert (refused.value.line, refused.value.column) == position
    assert refused.value.message == message


def test_the_search_of_a_window() -> None:
    rule = _rule("FROM logs-* METADATA _id", timestamp_override="event.ingested")
    caps = {"indices": ["logs-a"], "fields": {"event.ingested": {"date": {"type": "date"}}}}
    clause = {"bool": {"should": [{"term": {"user.name": "svc"}}], "minimum_should_match": 1}}
    large = ExceptionItem.model_validate(
        {
            "item_id": "big",
            "name": "Big list",
            "entries": [{"field": "a", "type": "list", "list": {"id": "l", "type": "keyword"}}],
        }
    )
    exceptions = ExceptionPlan(clause=clause, post_filter=(large,))
    search = plan_search(rule, compile_query(rule.query), WINDOW, caps, exceptions)
    assert search.query is not None and search.exception_clause == clause
    range_clause, exception_filter = search.query["bool"]["filter"]
    assert "should" in range_clause["bool"]  # the override, with @timestamp where it is missing
    assert exception_filter == {"bool": {"must": [], "filter": [], "should": [], "must_not": [clause]}}
    # Kibana applies no large value list to an ES|QL rule, and says so
    assert search.warnings == ("The following exceptions won't be applied to rule execution: Big list",)


def test_no_index_means_no_search_and_kibanas_warning() -> None:
    rule = _rule("FROM nothing-* METADATA _id")
    search = plan_search(rule, compile_query(rule.query), WINDOW, {"indices": []}, ExceptionPlan())
    assert search.query is None and 'no index matching: ["nothing-*"] was found' in search.warnings[0]


def test_translate_prints_the_first_request_of_a_run() -> None:
    rule = _rule("FROM logs-* | STATS c = COUNT(*) BY host.name", max_signals=10)
    first, body = EsqlType().describe(rule, compile_query(rule.query)).split("\n", 1)
    assert first == "POST /_query/async?drop_null_columns=true&allow_partial_results=false"
    request = json.loads(body)
    assert request["query"] == "FROM logs-* | STATS c = COUNT(*) BY host.name | limit 11"
    assert set(request) == {"query", "filter", "wait_for_completion_timeout"}


@pytest.mark.parametrize(("key", "value"), [("index", ["logs-*"]), ("filters", [{"query": {"match_all": {}}}])])
def test_keys_an_esql_rule_does_not_use_are_warned_about(key: str, value: Any) -> None:
    rule = _rule("FROM logs-* METADATA _id", **{key: value})
    [finding] = EsqlType().check(rule, None, lambda: compile_query(rule.query))
    assert not finding.error and finding.key == ("rule", key)


def _alert(source: dict[str, Any], fields: dict[str, Any] | None = None, *, event: str = "e1") -> WouldBeAlert:
    return WouldBeAlert(
        id=f"id-{event}", index="logs-a" if event else "", event_id=event, source=source, fields=fields, row=0
    )


def test_a_row_becomes_kibanas_alert_under_its_esql_id() -> None:
    rule = _rule("FROM logs-a METADATA _id")
    maker = EsqlAlerts(RunAlerts.for_run(rule, now=NOW, execution_uuid="x", space_id="default"))
    [write] = maker.documents(_alert({"@timestamp": "2026-05-01T11:59:00.000Z", "host.name": "h1"}), "id-e1", NOW)
    alert = loads(write.body)
    assert (write.doc_id, write.event_index, write.event_id) == ("id-e1", "logs-a", "e1")
    assert alert["kibana.alert.uuid"] == "id-e1" and alert["kibana.alert.rule.type"] == "esql"
    assert alert["kibana.alert.rule.indices"] == ["logs-a"] and alert["host.name"] == "h1"
    assert alert["kibana.alert.original_time"] == "2026-05-01T11:59:00.000Z"


def test_a_row_without_an_event_is_dead_lettered_under_its_alert_id() -> None:
    assert filed_under(_alert({}, event="")) == ("", "id-")
    assert filed_under(_alert({})) == ("logs-a", "e1")


@pytest.mark.parametrize(
    ("source", "fields", "terms"),
    [
        ({"host.name": "h1"}, {"host.name": ["h0"]}, (("host.name", "h1"),)),  # the column wins over the event
        ({"host": {"name": "h1"}}, {"host.name": ["h1"]}, (("host.name", ["h1"]),)),  # the event's fields
        ({"user.name": ["b", "a"]}, None, (("user.name", ["a", "b"]),)),  # several values sorted
        ({}, None, (("user.name", None),)),
    ],
)
def test_suppression_terms_read_the_columns_first(source: dict[str, Any], fields: Any, terms: Any) -> None:
    group_by = [name for name, _ in terms]
    assert terms_of(_alert(source, fields), group_by) == terms


@pytest.mark.parametrize(
    ("source", "fields", "fallback", "moment"),
    [
        ({"event.ingested": "2026-05-01T11:00:00Z"}, None, None, datetime(2026, 5, 1, 11, tzinfo=UTC)),
        ({}, {"event.ingested": ["2026-05-01T10:00:00Z"]}, None, datetime(2026, 5, 1, 10, tzinfo=UTC)),
        ({"@timestamp": "2026-05-01T09:00:00Z"}, None, "@timestamp", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        ({"@timestamp": "2026-05-01T09:00:00Z"}, None, None, NOW),  # no fallback: the alert's own time
        ({"event.ingested": "not a time"}, None, None, NOW),
    ],
)
def test_a_rows_suppression_time(source: dict[str, Any], fields: Any, fallback: str | None, moment: datetime) -> None:
    assert time_of(_alert(source, fields), "event.ingested", fallback, NOW) == moment


def test_a_group_keeps_only_the_rows_after_its_boundary_and_is_named_after_its_earliest_row() -> None:
    rows = tuple((NOW - timedelta(minutes=m), _alert({}, event=f"e{m}")) for m in (3, 2, 1))
    group = RowGroup((("host.name", "h1"),), rows)
    later = group.after(NOW - timedelta(minutes=2))
    assert later is not None and [alert.event_id for _, alert in later.rows] == ["e1"]
    assert group.after(NOW) is None and group.after(None) == group
    summary = group.group()
    assert (summary.count, summary.start, summary.end, summary.event["_id"]) == (3, rows[0][0], rows[-1][0], "e3")
    assert summary.event[ALERT_ID_KEY] == "id-e3"  # the group's alert takes its earliest row's id


def test_a_page_offers_each_id_once_per_run() -> None:
    offered = {"id-e1"}
    new, repeated = once_each([_alert({}), _alert({}, event="e2")], offered)
    assert [candidate.doc_id for candidate in new] == ["id-e2"] and repeated == 1


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(
    ("left", "wanted", "budget"),
    [
        (None, 5.0, (5.0, 15.0)),  # no deadline: the wait asked, and time to answer after it
        (100.0, 5.0, (5.0, 15.0)),
        (7.0, 5.0, (3.0, 6.0)),  # the last call ends by the deadline, a second kept for the delete
        (1.2, 5.0, None),  # too little left for a call
    ],
)
def test_every_call_ends_by_the_deadline(left: float | None, wanted: float, budget: tuple[float, float] | None) -> None:
    clock = _Clock()
    deadline = None if left is None else NOW + timedelta(seconds=left)
    engine = Engine(None, RetryPolicy(), clock, deadline)  # type: ignore[arg-type]  # no request is made
    if budget is None:
        with pytest.raises(EsqlCancelled):
            engine._budget(wanted)
        return
    assert engine._budget(wanted) == pytest.approx(budget)
    if left is not None:
        assert budget[1] <= left - DELETE_SECONDS


def _api_error(status: int, body: Any) -> ApiError:
    meta = ApiResponseMeta(
        status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0, node=NodeConfig("http", "h", 1)
    )
    return ApiError("error", meta=meta, body=body)


NOT_STORED = {"error": {"type": "index_not_found_exception", "reason": "no such index [.async-search]"}, "status": 404}
REFUSED = {"error": {"type": "verification_exception", "reason": "Found 1 problem\nline 1:1: Unknown column [x]"}}


@pytest.mark.parametrize(
    ("failures", "polling", "outcome"),
    [
        ([ConnectionTimeout("timed out")] * 2, False, "answer"),  # transient: tried again
        ([_api_error(400, REFUSED)], False, "verification_exception: Found 1 problem; line 1:1: Unknown column [x]"),
        ([_api_error(404, NOT_STORED)], True, "answer"),  # a poll before the query was stored
        ([_api_error(404, NOT_STORED)], False, "index_not_found_exception: no such index [.async-search]"),
        ([ConnectionTimeout("timed out")] * 50, False, EsqlCancelled),  # until the deadline, which ends it
    ],
)
def test_a_call_is_tried_again_only_for_what_passes_and_never_past_the_deadline(
    failures: list[Exception], polling: bool, outcome: Any
) -> None:
    clock = _Clock()
    engine = Engine(None, RetryPolicy(attempts=100, initial_wait=0.0, max_wait=0.0), clock, NOW + timedelta(seconds=20))  # type: ignore[arg-type]
    left = list(failures)

    def call() -> str:
        clock.now += timedelta(seconds=0.5)  # each attempt takes half a second
        if left:
            raise left.pop(0)
        return "answer"

    if isinstance(outcome, type):
        with pytest.raises(outcome):
            engine._attempts(call, polling=polling)
    elif outcome == "answer":
        assert engine._attempts(call, polling=polling) == "answer"
    else:
        with pytest.raises(EsqlQueryError) as refused:
            engine._attempts(call, polling=polling)
        assert str(refused.value) == outcome
