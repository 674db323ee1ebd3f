"""Value lists (pure parts): import parsing, read-back, query clauses, the plan, and the per-page filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.lists.model import MAX_CLAUSE_DASH_RANGES, MAX_CLAUSE_ITEMS, ListInfo, ListNotFound
from job.lists.parse import import_lines, item_value, value_text
from job.lists.plan import lists_to_read, plan_exceptions
from job.lists.postfilter import filter_hits, lookup_requests, lookup_value, lookups, matched_values, value_key
from job.rules.exceptions import build_exception_filter
from job.rules.parts import ExceptionItem

NOW = datetime(2026, 5, 1, tzinfo=UTC)


# --- import parsing (spec 9.1) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("list_type", "line", "stored"),
    [
        ("ip_range", "10.0.0.1-10.0.0.9", {"gte": "10.0.0.1", "lte": "10.0.0.9"}),
        ("ip_range", "10.0.0.0/8", "10.0.0.0/8"),
        ("ip_range", "10.1.1.1", {"gte": "10.1.1.1", "lte": "10.1.1.1"}),
        ("ip_range", "a-b-c", {"gte": "a-b", "lte": "c"}),  # the greedy split: at the last dash
        ("ip_range", "10.0.0.1 - 10.0.0.9", {"gte": "10.0.0.1", "lte": "10.0.0.9"}),
        ("ip_range", "fe80::1-fe80::ff", {"gte": "fe80::1", "lte": "fe80::ff"}),
        ("ip_range", "-x", {"gte": "-x", "lte": "-x"}),  # no text before the dash: not a range
        ("keyword", "a,b", "a,b"),  # a .csv is not split
        ("keyword", "10.0.0.1-10.0.0.9", "10.0.0.1-10.0.0.9"),
        ("ip", "10.0.0.0/8", "10.0.0.0/8"),  # Elasticsearch refuses it, and the import reports it
        ("long", "42", "42"),
        ("date", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("text", "invoke mimikatz", "invoke mimikatz"),
    ],
)
def test_item_value(list_type: str, line: str, stored: Any) -> None:
    assert item_value(list_type, line) == stored


def test_import_lines_are_trimmed_deduplicated_and_numbered() -> None:
    text = "a\r\n  b  \n\n\t\nc\rb\na\n\u00a0d\u00a0"
    assert [(line.number, line.text) for line in import_lines(text)] == [(1, "a"), (2, "b"), (5, "c"), (8, "d")]


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ({"ip_range": {"gte": "10.0.0.1", "lte": "10.0.0.9"}}, "10.0.0.1-10.0.0.9"),
        ({"ip_range": {"gte": "1.2.3.4", "lte": "1.2.3.4"}}, "1.2.3.4-1.2.3.4"),  # a single IP reads as a range
        ({"ip_range": "10.0.0.0/8"}, "10.0.0.0/8"),
        ({"list_id": "x", "keyword": "evil.exe"}, "evil.exe"),
        ({"long": 42}, "42"),
        ({"list_id": "x"}, None),
    ],
)
def test_value_text(source: dict[str, Any], text: str | None) -> None:
    assert value_text(source) == text


# --- the plan and the clauses (spec 9.3) --------------------------------------------------------------


def _item(item_id: str, *entries: dict[str, Any], **extra: Any) -> ExceptionItem:
    return ExceptionItem.model_validate({"item_id": item_id, "name": item_id.title(), "entries": entries, **extra})


def _in(field: str, list_id: str, list_type: str, operator: str = "included") -> dict[str, Any]:
    return {"field": field, "type": "list", "operator": operator, "list": {"id": list_id, "type": list_type}}


MATCH = {"field": "user.name", "type": "match", "value": "svc"}


def _info(list_id: str, values: list[str], kind: str = "keyword", total: int | None = None) -> ListInfo:
    size = len(values) if total is None else total
    return ListInfo(list_id, kind, size, tuple(values) if size <= MAX_CLAUSE_ITEMS else None)


@pytest.mark.parametrize(
    ("list_type", "operator", "clause"),
    [
        ("keyword", "included", {"bool": {"filter": {"terms": {"f": ["a", "b"]}}}}),
        ("keyword", "excluded", {"bool": {"must_not": {"terms": {"f": ["a", "b"]}}}}),
        ("ip", "included", {"bool": {"filter": {"terms": {"f": ["a", "b"]}}}}),
    ],
)
def test_keyword_and_ip_lists_become_terms(list_type: str, operator: str, clause: dict[str, Any]) -> None:
    plan = plan_exceptions(
        [_item("x", _in("f", "l", list_type, operator))], now=NOW, lists={"l": _info("l", ["a", "b"])}
    )
    assert plan.clause == {"bool": {"should": [clause]}}
    assert (plan.post_filter, plan.not_applied, plan.warnings) == ((), (), [])


def test_spec_ip_range_example_150_cidrs_and_60_single_ips() -> None:
    cidrs = [f"10.{n}.0.0/16" for n in range(150)]
    singles = [f"192.168.0.{n}-192.168.0.{n}" for n in range(60)]
    item = _item("x", _in("source.ip", "ranges", "ip_range"))
    plan = plan_exceptions([item], now=NOW, lists={"ranges": _info("ranges", singles + cidrs, "ip_range")})
    (clause,) = plan.clause["bool"]["should"]  # type: ignore[index]
    should = clause["bool"]["should"]
    assert len(should) == 61 and clause["bool"]["minimum_should_match"] == 1
    assert should[0] == {"range": {"source.ip": {"gte": "192.168.0.0", "lte": "192.168.0.0"}}}
    assert should[-1] == {"terms": {"source.ip": cidrs}}


def test_an_excluded_ip_range_entry_puts_the_ranges_under_must_not() -> None:
    item = _item("x", _in("ip", "r", "ip_range", "excluded"))
    plan = plan_exceptions([item], now=NOW, lists={"r": _info("r", ["1.1.1.1-1.1.1.9"], "ip_range")})
    assert plan.clause == {
        "bool": {
            "should": [
                {
                    "bool": {
                        "must_not": [{"range": {"ip": {"gte": "1.1.1.1", "lte": "1.1.1.9"}}}],
                        "minimum_should_match": 1,
                    }
                }
            ]
        }
    }


@pytest.mark.parametrize(
    ("dashes", "post_filtered"), [(MAX_CLAUSE_DASH_RANGES, False), (MAX_CLAUSE_DASH_RANGES + 1, True)]
)
def test_200_dash_ranges_fit_a_clause_201_do_not(dashes: int, post_filtered: bool) -> None:
    values = [f"10.0.{n // 256}.{n % 256}-10.0.{n // 256}.{n % 256}" for n in range(dashes)] + ["172.16.0.0/12"]
    item = _item("x", _in("source.ip", "r", "ip_range"))
    plan = plan_exceptions([item], now=NOW, lists={"r": _info("r", values, "ip_range")})
    assert (plan.post_filter == (item,)) is post_filtered
    assert (plan.clause is None) is post_filtered


@pytest.mark.parametrize(("total", "post_filtered"), [(MAX_CLAUSE_ITEMS, False), (MAX_CLAUSE_ITEMS + 1, True)])
def test_65536_items_fit_a_clause_65537_do_not(total: int, post_filtered: bool) -> None:
    item = _item("x", _in("process.hash.sha256", "hashes", "keyword"))
    info = _info("hashes", [f"h{n}" for n in range(total)])
    plan = plan_exceptions([item], now=NOW, lists={"hashes": info})
    assert (plan.post_filter == (item,)) is post_filtered
    if not post_filtered:
        assert len(plan.clause["bool"]["should"][0]["bool"]["filter"]["terms"]["process.hash.sha256"]) == total  # type: ignore[index]


@pytest.mark.parametrize("list_type", ["text", "long", "date"])
def test_other_list_types_are_always_applied_per_page(list_type: str) -> None:
    item = _item("x", _in("f", "l", list_type))
    plan = plan_exceptions([item], now=NOW, lists={"l": ListInfo("l", list_type, 3)})
    assert (plan.clause, plan.post_filter) == (None, (item,))


def test_a_mixed_item_with_a_large_list_is_not_applied_and_warned_about() -> None:
    mixed = _item("mixed-one", _in("ip", "big", "ip"), MATCH, name="Jump hosts of svc")
    small = _item("small", _in("ip", "small", "ip"), MATCH)
    lists = {"big": _info("big", ["x"], "ip", total=MAX_CLAUSE_ITEMS + 1), "small": _info("small", ["10.0.0.1"], "ip")}
    plan = plan_exceptions([mixed, small], now=NOW, lists=lists)
    assert plan.not_applied == (mixed,) and plan.post_filter == ()
    assert plan.warnings == ["The following exceptions won't be applied to rule execution: Jump hosts of svc"]
    assert plan.clause == {
        "bool": {
            "should": [
                {
                    "bool": {
                        "filter": [
                            {"bool": {"filter": {"terms": {"ip": ["10.0.0.1"]}}}},
                            {"bool": {"should": [{"match_phrase": {"user.name": "svc"}}], "minimum_should_match": 1}},
                        ]
                    }
                }
            ]
        }
    }


def test_items_without_lists_and_expired_items() -> None:
    old = _item("old", _in("ip", "missing", "ip"), expire_time=NOW - timedelta(days=1))
    plain = _item("plain", MATCH)
    plan = plan_exceptions([old, plain], now=NOW, lists={})
    assert plan.expired == (old,)  # an expired item's list is never needed
    assert plan.clause == build_exception_filter([plain], now=NOW)[0]
    assert lists_to_read([old, plain], NOW) == {}


def test_a_missing_list_fails_with_kibanas_words() -> None:
    with pytest.raises(ListNotFound, match='^Cannot find list: "gone"$'):
        plan_exceptions([_item("x", _in("ip", "gone", "ip"))], now=NOW, lists={})


def test_lists_to_read_wants_values_only_for_clause_types() -> None:
    items = [_item("a", _in("f", "k", "keyword")), _item("b", _in("f", "t", "text")), _item("c", _in("g", "t", "ip"))]
    assert lists_to_read(items, NOW) == {"k": True, "t": True}
    assert lists_to_read(items[1:2], NOW) == {"t": False}


def test_os_types_wrap_list_clauses_like_the_other_entries() -> None:
    item = _item("x", _in("ip", "l", "ip"), os_types=["windows"])
    plan = plan_exceptions([item], now=NOW, lists={"l": _info("l", ["10.0.0.1"], "ip")})
    branches = plan.clause["bool"]["should"]  # type: ignore[index]
    assert [b["bool"]["filter"][0]["bool"]["should"][0]["match_phrase"] for b in branches] == [
        {"host.os.type": "windows"},
        {"host.os.name.caseless": "windows"},
    ]


# --- the per-page filter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("list_type", "value", "looked_up"),
    [
        ("ip", "10.0.0.1", "10.0.0.1"),
        ("ip", "::1", "::1"),
        ("ip", "n/a", None),
        ("ip", 167772161, None),
        ("ip", "fe80::1%eth0", None),
        ("ip_range", "10.0.0.1", "10.0.0.1"),
        ("long", 42, 42),
        ("long", 42.0, 42),
        ("long", "42", 42),
        ("long", "4.2", None),
        ("long", True, None),
        ("long", 2**63, None),
        ("date", "2026-01-01", "2026-01-01T00:00:00.000Z"),
        ("date", "yesterday", None),
        ("keyword", 5, 5),
        ("text", "a b", "a b"),
    ],
)
def test_lookup_value(list_type: str, value: Any, looked_up: Any) -> None:
    assert lookup_value(list_type, value) == looked_up


def _hit(doc_id: str, **source: Any) -> dict[str, Any]:
    return {"_id": doc_id, "_source": source}


HITS = [
    _hit("listed", source={"ip": "10.0.0.1"}),
    _hit("listed-in-array", source={"ip": ["192.168.9.9", "10.0.0.1"]}),
    _hit("not-listed", source={"ip": "10.0.0.2"}),
    _hit("missing"),
    _hit("garbage", source={"ip": "n/a"}),
]
LISTED = {("ips", "ip"): {value_key("10.0.0.1")}}


@pytest.mark.parametrize(
    ("operator", "kept"),
    [
        # "is in list": drop the events whose field is in the list; keep the rest, missing fields included.
        ("included", ["not-listed", "missing", "garbage"]),
        # "is not in list": drop the events whose field is missing or not in the list.
        ("excluded", ["listed", "listed-in-array"]),
    ],
)
def test_filter_hits(operator: str, kept: list[str]) -> None:
    item = _item("x", _in("source.ip", "ips", "ip", operator))
    assert [hit["_id"] for hit in filter_hits([item], HITS, LISTED)] == kept


def test_entries_of_one_item_are_anded_and_items_ored() -> None:
    both = _item("both", _in("source.ip", "ips", "ip"), _in("user.name", "users", "keyword"))
    hits = [
        _hit("ip-and-user", source={"ip": "10.0.0.1"}, user={"name": "bob"}),
        _hit("ip-only", source={"ip": "10.0.0.1"}, user={"name": "eve"}),
        _hit("user-only", source={"ip": "10.9.9.9"}, user={"name": "bob"}),
    ]
    matches = {("ips", "ip"): {value_key("10.0.0.1")}, ("users", "keyword"): {value_key("bob")}}
    assert [h["_id"] for h in filter_hits([both], hits, matches)] == ["ip-only", "user-only"]
    user_item = _item("user", _in("user.name", "users", "keyword"))
    assert [h["_id"] for h in filter_hits([both, user_item], hits, matches)] == ["ip-only"]


def test_lookups_collect_distinct_usable_values_per_list() -> None:
    items = [_item("x", _in("source.ip", "ips", "ip")), _item("y", _in("destination.ip", "ips", "ip"))]
    hits = [*HITS, _hit("d", destination={"ip": "10.0.0.1"}), _hit("e", destination={"ip": "10.7.7.7"})]
    (lookup,) = lookups(items, hits)
    assert (lookup.list_id, lookup.list_type) == ("ips", "ip")
    assert sorted(map(str, lookup.values)) == ["10.0.0.1", "10.0.0.2", "10.7.7.7", "192.168.9.9"]


def test_lookup_requests_and_their_answers() -> None:
    items = [_item("x", _in("message", "phrases", "text")), _item("y", _in("port", "ports", "long"))]
    hits = [_hit("a", message="run mimikatz now", port="443"), _hit("b", message="hello", port=443)]
    text, ports = lookups(items, hits)
    ((values, body),) = list(lookup_requests(text))
    assert values == ("run mimikatz now", "hello")
    assert body == {
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"list_id": "phrases"}}]}},
        "aggs": {
            "values": {
                "filters": {
                    "filters": {
                        "0": {"match": {"text": {"query": "run mimikatz now", "operator": "and"}}},
                        "1": {"match": {"text": {"query": "hello", "operator": "and"}}},
                    }
                }
            }
        },
    }
    ((port_values, port_body),) = list(lookup_requests(ports))
    assert port_values == (443,) and port_body["aggs"]["values"]["filters"]["filters"] == {"0": {"term": {"long": 443}}}
    response = {"aggregations": {"values": {"buckets": {"0": {"doc_count": 2}, "1": {"doc_count": 0}}}}}
    assert matched_values(response, values) == {value_key("run mimikatz now")}


def test_lookup_requests_are_chunked() -> None:
    items = [_item("x", _in("n", "nums", "long"))]
    hits = [_hit(str(n), n=n) for n in range(2500)]
    chunks = list(lookup_requests(lookups(items, hits)[0]))
    assert [len(values) for values, _ in chunks] == [1000, 1000, 500]
    assert chunks[2][1]["aggs"]["values"]["filters"]["filters"]["499"] == {"term": {"long": 2499}}
