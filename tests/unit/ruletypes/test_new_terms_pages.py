"""A new_terms window: the history window, the ids, and the order of searches (the semantics run on the real node,
tests/integration/test_new_terms_es.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.ruletypes.new_terms.history import (
    HISTORY_WINDOW_TOO_SMALL,
    history_problems,
    history_window,
    history_window_problem,
)
from job.ruletypes.new_terms.pages import (
    NEW_TERMS,
    alert_id,
    candidate,
    new_terms_pages,
    too_many_clauses,
)
from job.ruletypes.new_terms.phases import NewTermEvent
from job.search.aggregations import EventQuery
from job.search.clauses import TimestampFields
from job.window import Window

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
HW_NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(minutes=9), NOW)
QUERY = EventQuery(({"match_all": {}},), (), TimestampFields("@timestamp", None))


@pytest.mark.parametrize(
    ("expression", "window", "own_start", "start"),
    [
        ("now-14d", WINDOW, WINDOW.start, NOW - timedelta(days=14)),
        ("now-7d/d", WINDOW, WINDOW.start, datetime(2025, 1, 8, tzinfo=UTC)),
        ("2024-12-01T00:00:00Z", WINDOW, WINDOW.start, datetime(2024, 12, 1, tzinfo=UTC)),
        # a run catching up 3 hours: the window starts 3 hours before the rule's own from, so does the history
        ("now-7d", Window(WINDOW.start - timedelta(hours=3), NOW), WINDOW.start, NOW - timedelta(days=7, hours=3)),
    ],
)
def test_history_window(expression: str, window: Window, own_start: datetime, start: datetime) -> None:
    assert history_window(expression, window, own_start) == Window(start, NOW)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("now-9m", HISTORY_WINDOW_TOO_SMALL),
        ("now-5m", HISTORY_WINDOW_TOO_SMALL),
        ("now+1d", HISTORY_WINDOW_TOO_SMALL),
        ("someday", "Failed to parse 'historyWindowStart'"),
    ],
)
def test_history_window_refused(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        history_window(expression, WINDOW, WINDOW.start)
    assert str(caught.value) == message


def test_the_specs_alert_id_vector() -> None:
    event = {"_index": ".ds-logs-x-2025.01.01-000001", "_id": "AbC123"}
    assert alert_id(event, ["h1"], "4f1e", "default") == "68bb5065b0ad9a024fc4dd619cc50f2bc0ee15d6"


def test_one_event_with_two_new_values_gives_two_alerts() -> None:
    event = {"_index": "logs", "_id": "1", "_source": {"host": {"ip": ["10.0.0.1", "10.0.0.2"]}}}
    first = candidate(NewTermEvent(["10.0.0.1"], event), "r", "default")
    second = candidate(NewTermEvent(["10.0.0.2"], event), "r", "default")
    assert first.item.hit is second.item.hit is event
    assert first.doc_id != second.doc_id
    assert (first.item.fields, second.item.fields) == ({NEW_TERMS: ["10.0.0.1"]}, {NEW_TERMS: ["10.0.0.2"]})
    assert first.item.about == 'the new term ["10.0.0.1"]'


S = (NOW - timedelta(minutes=9) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1)


class Answers:
    """Canned responses by kind of request (phase 1 pages in order; phases 2 and 3 computed from the request)."""

    def __init__(self, phase_one: list[dict[str, Any]], new: set[Any], fail_above: int | None = None) -> None:
        self.phase_one = list(phase_one)
        self.new = new
        self.fail_above = fail_above
        self.requests: list[tuple[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Mapping[str, Any]:
        aggregation = body["aggs"]["new_terms"]
        clauses = [c for c in body["query"]["bool"]["filter"] if "should" in c.get("bool", {})]
        batch = (
            [
                tuple(m["match"][f] for m, f in zip(c["bool"]["must"], ("a", "b"), strict=False))
                for c in clauses[0]["bool"]["should"]
            ]
            if clauses
            else None
        )
        if "terms" in aggregation:  # one field, phase 2 or 3
            phase = 3 if "first_event" in aggregation["aggs"] else 2
            self.requests.append((f"terms{phase}", aggregation["terms"]["include"]))
            buckets = [self._bucket(value, {"key": value}, phase) for value in aggregation["terms"]["include"]]
            return {"aggregations": {"new_terms": {"buckets": [b for b in buckets if b]}}}
        if batch is None:  # phase 1
            self.requests.append(("recent", aggregation["composite"].get("after")))
            return self.phase_one.pop(0)
        phase = 3 if "first_event" in aggregation["aggs"] else 2
        self.requests.append((f"batch{phase}", (len(batch), aggregation["composite"].get("after"))))
        if self.fail_above is not None and len(batch) > self.fail_above:
            raise RuntimeError(
                "BadRequestError(400, 'search_phase_execution_exception', "
                "'failed to create query: maxClauseCount is set to 1024')"
            )
        buckets = [self._bucket(key, {"key": {"a": key[0], "b": key[1]}}, phase) for key in batch]
        return {"aggregations": {"new_terms": {"buckets": [b for b in buckets if b]}}}

    def _bucket(self, value: Any, bucket: dict[str, Any], phase: int) -> dict[str, Any] | None:
        if phase == 2:
            return {**bucket, "min_timestamp": {"value": S + 1 if value in self.new else S - 1}}
        if value not in self.new:
            return None
        return {**bucket, "first_event": {"hits": {"hits": [{"_index": "i", "_id": str(value), "sort": [1]}]}}}


def _phase_one(keys: list[Any], after: Any) -> dict[str, Any]:
    aggregation: dict[str, Any] = {"buckets": [{"key": key, "doc_count": 1} for key in keys]}
    if after is not None:
        aggregation["after_key"] = after
    return {"aggregations": {"new_terms": aggregation}}


def test_one_field_pages() -> None:
    answers = Answers(
        [_phase_one([{"a": "x"}, {"a": "y"}], {"a": "y"}), _phase_one([{"a": "z"}], {"a": "z"}), _phase_one([], None)],
        new={"y", "z"},
    )
    history = Window(NOW - timedelta(days=7), NOW)
    pages = list(new_terms_pages(answers, ["a"], QUERY, WINDOW, history, page_size=2))
    # the second page holds 1 term of the 2 asked: the last (no search for the empty page Kibana asks for)
    assert [[found.new_terms for found in page.found] for page in pages] == [[["y"]], [["z"]]]
    assert [page.searches for page in pages] == [3, 3]
    assert answers.requests == [
        ("recent", None),
        ("terms2", ["x", "y"]),
        ("terms3", ["y"]),
        ("recent", {"a": "y"}),
        ("terms2", ["z"]),
        ("terms3", ["z"]),
    ]


def _keys(count: int) -> list[dict[str, Any]]:
    return [{"a": f"k{i:04d}", "b": i} for i in range(count)]


def test_several_fields_go_in_batches_each_after_the_last() -> None:
    keys = _keys(5)
    answers = Answers([_phase_one(keys, keys[-1]), _phase_one([], None)], new={("k0001", 1), ("k0004", 4)})
    pages = list(
        new_terms_pages(
            answers, ["a", "b"], QUERY, WINDOW, Window(NOW - timedelta(days=7), NOW), batch_size=2, page_size=5
        )
    )
    assert [[found.new_terms for found in page.found] for page in pages] == [[["k0001", 1]], [], [["k0004", 4]], []]
    assert answers.requests == [
        ("recent", None),
        ("batch2", (2, None)),
        ("batch3", (1, None)),
        ("batch2", (2, {"a": "k0001", "b": 1})),
        ("batch2", (1, {"a": "k0003", "b": 3})),
        ("batch3", (1, {"a": "k0003", "b": 3})),
        ("recent", keys[-1]),
    ]


def test_too_many_clauses_splits_the_batch() -> None:
    keys = _keys(500)
    answers = Answers([_phase_one(keys, keys[-1]), _phase_one([], None)], new={("k0499", 499)}, fail_above=250)
    pages = list(new_terms_pages(answers, ["a", "b"], QUERY, WINDOW, Window(NOW - timedelta(days=7), NOW)))
    assert [[found.new_terms for found in page.found] for page in pages] == [[["k0499", 499]]]
    sizes = [(kind, size) for kind, (size, _) in (r for r in answers.requests if r[0] != "recent")]
    assert sizes == [("batch2", 500), ("batch2", 250), ("batch2", 250), ("batch3", 1)]


@pytest.mark.parametrize(
    ("fail_above", "message"),
    [
        (100, "failed to create query"),  # still too many at 125 keys: the error ends the window
        (None, "shard failure"),
    ],
)
def test_other_errors_end_the_window(fail_above: int | None, message: str) -> None:
    keys = _keys(500)
    answers = Answers([_phase_one(keys, keys[-1])], new=set(), fail_above=fail_above)
    if fail_above is None:

        def failing(body: dict[str, Any]) -> Mapping[str, Any]:
            if "should" in str(body["query"]):
                raise RuntimeError("shard failure")
            return answers(body)

        search: Any = failing
    else:
        search = answers
    with pytest.raises(RuntimeError, match=message):
        list(new_terms_pages(search, ["a", "b"], QUERY, WINDOW, Window(NOW - timedelta(days=7), NOW)))


def test_a_caller_at_its_cap_stops_the_searches() -> None:
    """The writer takes a page, reaches the rule's cap and stops iterating: no further search is made."""
    answers = Answers([_phase_one([{"a": "x"}], {"a": "x"}), _phase_one([{"a": "y"}], {"a": "y"})], new={"x", "y"})
    pages = new_terms_pages(answers, ["a"], QUERY, WINDOW, Window(NOW - timedelta(days=7), NOW))
    first = next(pages)
    pages.close()
    assert [found.new_terms for found in first.found] == [["x"]]
    assert [kind for kind, _ in answers.requests] == ["recent", "terms2", "terms3"]


class ClientError(Exception):
    """An error as the Elasticsearch client raises it: a message, and the response body."""

    def __init__(self, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.body = body


ROOT = {"type": "query_shard_exception", "reason": "failed to create query: maxClauseCount is set to 15824"}


@pytest.mark.parametrize(
    ("error", "too_many"),
    [
        (
            ClientError(
                "BadRequestError(400, 'search_phase_execution_exception', 'failed to create query: maxClauseCount is "
                "set to 15824')",
                {"error": {"root_cause": [ROOT], "caused_by": {"type": "too_many_clauses"}}},
            ),
            True,
        ),
        (ClientError("x", {"error": {"caused_by": {"type": "too_many_nested_clauses"}}}), True),
        (ClientError("query_shard_exception: failed to create query: [bool] ..."), True),  # Kibana's text
        (ClientError("Query contains too many nested clauses; maxClauseCount is set to 4096"), True),
        (
            ClientError("search_phase_execution_exception", {"error": {"root_cause": [{"type": "parse_exception"}]}}),
            False,
        ),
        (TimeoutError("timed out"), False),
    ],
)
def test_too_many_clauses(error: BaseException, too_many: bool) -> None:
    assert too_many_clauses(error) is too_many


@pytest.mark.parametrize(
    ("history_window_start", "from_", "problem"),
    [
        ("now-14d", "now-9m", None),
        ("now-10m", "now-9m", None),
        ("now-9m", "now-9m", HISTORY_WINDOW_TOO_SMALL),  # the same instant is not earlier
        ("now-5m", "now-6m", HISTORY_WINDOW_TOO_SMALL),
        ("now", "now-6m", HISTORY_WINDOW_TOO_SMALL),
        ("now/d", "now-6m", None),  # midnight lies before 11:54
        ("2026-05-01T11:53:00Z", "now-6m", None),
        ("2026-05-01T11:54:00Z", "now-6m", HISTORY_WINDOW_TOO_SMALL),
        ("yesterday", "now-6m", "Failed to parse 'historyWindowStart'"),
        ("now-7d", "soon", "Failed to parse 'from'"),
    ],
)
def test_history_window_problem(history_window_start: str, from_: str, problem: str | None) -> None:
    assert history_window_problem(history_window_start, from_, HW_NOW) == problem


def test_history_problems() -> None:
    assert history_problems("now-5m", "now-6m", HW_NOW) == [(("history_window_start",), HISTORY_WINDOW_TOO_SMALL)]
    assert history_problems("", "now-6m", HW_NOW) == []  # an empty start is the parameters' problem
    assert history_problems("now-7d", "now-6m", HW_NOW) == []
