"""The EQL rule type, pure parts: compiling with the rule's keys, validate's findings at their places, the
search of a window (event query and sequence stream), the stream's order and the resume point."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from job.eql import EqlError
from job.lists.plan import ExceptionPlan
from job.rules.model import Rule
from job.rules.parts import ExceptionItem
from job.ruletypes.checks import validate_rule
from job.ruletypes.contract import PlanInputs
from job.ruletypes.eql.compiled import SAMPLE_REFUSAL, SEQUENCE_SUPPRESSION_REFUSAL, compile_query
from job.ruletypes.eql.rule_type import EqlType
from job.ruletypes.eql.search import EqlSearch, plan_search
from job.ruletypes.eql.sequences import SequenceRun
from job.ruletypes.eql.stream import Ties, event_of
from job.ruletypes.eql.suppressed import event_terms, event_time
from job.ruletypes.registry import Compiler
from job.search.clauses import timestamp_fields
from job.window import Window
from tests.alert_samples import NOW, SEED_RULE_FIELDS
from tests.unit.eql.fields import FIELDS

WINDOW = Window(datetime(2026, 5, 1, 11, 45, tzinfo=UTC), datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
SEQUENCE = (
    'sequence by host.id with maxspan=1m [process where process.name == "a" and length(user.name) > 1] '
    '[process where process.name == "b"] until [process where process.name == "z"]'
)
CAPS = {"indices": ["events-1"], "fields": {}}


def eql(query: str, **changes: Any) -> Rule:
    return Rule.model_validate({**SEED_RULE_FIELDS, "type": "eql", "language": "eql", "query": query, **changes})


def findings(rule: Rule, fields: dict[str, str] | None = FIELDS) -> list[tuple[str, tuple[int, int] | None]]:
    compiler = Compiler(lambda index: fields)
    found = validate_rule(rule, alerts_max=100_000, now=NOW, compiler=compiler, field_types=fields)
    return [(finding.message, finding.query_position) for finding in found if finding.error]


@pytest.mark.parametrize(
    ("query", "changes", "expected"),
    [
        ('process where process.name == "a"', {}, []),
        (
            "process where process.name = 1",
            {},
            [("query line 1, column 28: mismatched input '='", (1, 28))],
        ),
        (
            "process where\n  nope == 1 and process.pid : 3",
            {},
            [
                ("query line 2, column 3: Unknown column [nope]", (2, 3)),
                ("query line 2, column 17: first argument of [process.pid : 3] must be [string]", (2, 17)),
                ("query line 2, column 31: second argument of [process.pid : 3] must be [string]", (2, 31)),
            ],
        ),
        ('process where process.name == "a"', {"timestamp_field": "when"}, [("Unknown column [when]", None)]),
        (
            'process where process.name == "a"',
            {"event_category_override": "event.type"},
            [],
        ),
        ('process where process.name == "a"', {"event_category_override": "kind"}, [("Unknown column [kind]", None)]),
        ('process where process.name == "a"', {"tiebreaker_field": "process.pid"}, []),
        ("sample by host.id [process where true] [process where true]", {}, [(SAMPLE_REFUSAL, (1, 1))]),
        (
            SEQUENCE,
            {"alert_suppression": {"group_by": ["host.id"]}},
            [(SEQUENCE_SUPPRESSION_REFUSAL, None)],
        ),
        ('process where process.name == "a"', {"alert_suppression": {"group_by": ["host.id"]}}, []),
        ("", {}, [("query: an EQL rule needs a query", None)]),
    ],
)
def test_validate_reports_each_problem_at_its_place(
    query: str, changes: dict[str, Any], expected: list[tuple[str, tuple[int, int] | None]]
) -> None:
    found = findings(eql(query, **changes))
    assert len(found) == len(expected), found
    for (message, position), (wanted, wanted_position) in zip(found, expected, strict=True):
        assert wanted in message
        if wanted_position is not None:
            assert position == wanted_position


def test_offline_validate_only_parses() -> None:
    assert findings(eql("process where nope == 1"), fields=None) == []
    [(message, position)] = findings(eql("process where (a"), fields=None)
    assert message.startswith("query line 1, column 17:") and position == (1, 17)


def test_compiles_with_the_rule_s_keys() -> None:
    compiled = compile_query(eql("file where true", event_category_override="event.type"), FIELDS)
    assert compiled.plan is not None
    assert compiled.plan.stages[0].push.dsl == {"term": {"event.type": {"value": "file"}}}
    with pytest.raises(EqlError, match="Unknown column"):
        compile_query(eql("file where true", event_category_override="nope"), FIELDS)


def _inputs(rule: Rule, exceptions: ExceptionPlan | None = None) -> PlanInputs:
    return PlanInputs(CAPS, "alerts", lambda: compile_query(rule, FIELDS), lambda: exceptions or ExceptionPlan())


def test_an_event_query_is_searched_as_a_query_rule_with_its_residual() -> None:
    search = plan_search(eql("process where length(user.name) > 3"), WINDOW, _inputs(eql("process where true")))
    assert isinstance(search, EqlSearch) and not search.is_sequence
    assert search.query is not None
    assert search.query["bool"]["filter"][0] == {"term": {"event.category": {"value": "process"}}}
    assert search.sort[-1] == {"_shard_doc": "asc"}


def test_a_sequence_is_one_stream_of_named_stage_queries() -> None:
    rule = eql(SEQUENCE, tiebreaker_field="process.pid")
    item = ExceptionItem.model_validate(
        {
            "item_id": "x",
            "entries": [
                {
                    "field": "file.path",
                    "type": "list",
                    "operator": "included",
                    "list": {"id": "paths", "type": "keyword"},
                }
            ],
        }
    )
    search = plan_search(rule, WINDOW, _inputs(rule, ExceptionPlan(post_filter=(item,))))
    assert search.is_sequence and search.query is not None
    stream = search.query["bool"]["filter"][0]["bool"]
    assert stream["filter"] == [{"exists": {"field": "@timestamp"}}]
    assert [clause["bool"]["_name"] for clause in stream["should"]] == ["stage0", "stage1", "stage2"]
    assert {name: [stage.kind for stage in stages] for name, stages in search.names.items()} == {
        "stage0": ["positive"],
        "stage1": ["positive"],
        "stage2": ["until"],
    }
    assert search.sort == [
        {"@timestamp": {"order": "asc", "unmapped_type": "date", "numeric_type": "date_nanos"}},
        {"process.pid": {"order": "asc", "missing": "_last", "unmapped_type": "long"}},
        {"_shard_doc": "asc"},
    ]
    # the keys, the fields of a residual, the exception lists' fields: nothing else comes back
    assert set(search.source) == {"host.id", "process.name", "user.name", "event.category", "file.path"}


def _hit(
    doc_id: str, ns: int, stages: list[str], index: str = "i", tiebreaker: Any = None, host: str = "h"
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "event": {"category": "process"},
        "host": {"id": host},
        "process": {"name": "a"},
        "user": {"name": "bob"},
    }
    sort: list[Any] = [ns]
    if tiebreaker is not None:
        source["process"]["pid"] = tiebreaker
    sort += [tiebreaker, 0]
    return {"_index": index, "_id": doc_id, "_source": source, "sort": sort, "matched_queries": stages}


def _search(rule: Rule) -> EqlSearch:
    return plan_search(rule, WINDOW, _inputs(rule))


def test_ties_are_put_in_index_then_id_order_and_held_until_the_next_time() -> None:
    search = _search(eql(SEQUENCE, tiebreaker_field="process.pid"))
    hits = [_hit("b", 5, ["stage0"]), _hit("a", 5, ["stage0"], index="j"), _hit("c", 5, ["stage1"], index="a")]
    events = [event_of(hit, search.names, "process.pid") for hit in hits]
    ties = Ties()
    assert ties.add(events) == []  # one tie group, held
    later = event_of(_hit("d", 6, ["stage1"]), search.names, "process.pid")
    assert [event.doc_id for event in ties.add([later])] == ["c", "b", "a"]  # a/c, i/b, j/a
    assert [event.doc_id for event in ties.rest()] == ["d"]


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        (["stage0"], {0: ("h",)}),
        (["stage1", "stage2"], {1: ("h",), 2: ("h",)}),
        (["stageX"], None),  # not a stage of this query
        ([], None),
    ],
)
def test_an_event_belongs_to_the_stages_elasticsearch_matched(
    stages: list[str], expected: dict[int, tuple[str]] | None
) -> None:
    search = _search(eql(SEQUENCE))
    event = event_of(_hit("x", 1, stages), search.names, None)
    assert (event.stages if event is not None else None) == expected


def test_a_residual_fails_the_stage_on_the_client() -> None:
    search = _search(eql(SEQUENCE))
    hit = _hit("x", 1, ["stage0"])
    hit["_source"]["user"]["name"] = "b"  # length 1: the residual length(user.name) > 1 fails
    assert event_of(hit, search.names, None) is None


MS = 1_000_000


@pytest.mark.parametrize(
    ("query", "feed", "expected_ms"),
    [
        # a candidate from 10 ms in flight at the stop: restart there
        (SEQUENCE, [("a1", 10, ["stage0"]), ("other host", 20, ["stage0"])], 10),
        # ended by until: nothing in flight
        (SEQUENCE, [("a1", 10, ["stage0"]), ("z1", 20, ["stage2"])], 20),
        # nothing in flight: the last event fed
        (SEQUENCE, [("b1", 10, ["stage1"]), ("b2", 30, ["stage1"])], 30),
        # a candidate older than maxspan (1m) before the last event can no longer complete
        (SEQUENCE, [("a1", 10, ["stage0"]), ("b1", 70_000, ["stage1"]), ("a2", 80_000, ["stage0"])], 80_000),
        (SEQUENCE, [("a1", 10, ["stage0"]), ("x", 70_011, ["stage1"])], 70_011),
        # leading missing stage: maxspan earlier than the candidate
        (
            'sequence by host.id with maxspan=1s ![process where process.name == "m"] '
            '[process where process.name == "a"] [process where process.name == "b"]',
            [("a1", 5_000, ["stage1"])],
            4_000,
        ),
    ],
)
def test_the_resume_point_is_the_earliest_sequence_still_in_flight(
    query: str, feed: list[tuple[str, int, list[str]]], expected_ms: int
) -> None:
    run = SequenceRun(eql(query), _search(eql(query)))
    hosts = [doc_id.split()[-1] if " " in doc_id else "h" for doc_id, _, _ in feed]
    run.page([_hit(doc_id, ms * MS, stages, host=host) for (doc_id, ms, stages), host in zip(feed, hosts, strict=True)])
    run.feed(run.ties.rest())
    assert run.resume_ns([]) == expected_ms * MS


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"host": {"name": "ws-01"}}, (("host.name", ("ws-01",)),)),  # a list, as Kibana reads the fields API
        ({"host": {"name": ["b", "a"]}}, (("host.name", ("a", "b")),)),  # sorted
        ({"host.name": "dotted"}, (("host.name", ("dotted",)),)),
        ({}, (("host.name", None),)),
        ({"host": {"name": None}}, (("host.name", None),)),
    ],
)
def test_suppression_terms_of_an_event(source: dict[str, Any], expected: Any) -> None:
    assert event_terms(["host.name"], source) == expected


@pytest.mark.parametrize(
    ("override", "sort", "expected"),
    [
        (None, [1_000_000_000, 7], datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        ("event.ingested", [2_000_000_000, 1_000_000_000, 7], datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)),
        ("event.ingested", [2**63 - 1, 1_000_000_000, 7], datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),  # fallback
        (None, [2**63 - 1, 7], None),
    ],
)
def test_an_event_s_time_in_the_window_s_order(override: str | None, sort: list[int], expected: Any) -> None:
    rule = eql("process where true", timestamp_override=override)
    assert event_time({"sort": sort}, timestamp_fields(rule)) == expected


def test_a_suppressed_event_query_is_not_probed_but_a_sequence_is() -> None:
    rule_type = EqlType()
    suppressed = eql("process where true", alert_suppression={"group_by": ["host.id"]})
    assert rule_type.probe(suppressed, _search(suppressed)) is None
    sequence = eql(SEQUENCE)
    probe = rule_type.probe(sequence, _search(sequence))
    assert probe is not None and probe.query == _search(sequence).query
