"""The threshold search: Kibana's composite request, the conditions applied to each page, paging and the cap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from job.rules.aggregation_params import ThresholdParams
from job.ruletypes.threshold.search import (
    MISSING_AGGREGATIONS,
    ThresholdBucket,
    buckets_request,
    find_buckets,
    parse_page,
    parse_total,
    total_request,
)
from job.search.clauses import TimestampFields

PLAIN = TimestampFields("@timestamp", None)
QUERY = {"match_all": {}}
T0 = 1735689600000.0


def _params(fields: Sequence[str], value: int, cardinality: tuple[str, int] | None = None) -> ThresholdParams:
    data: dict[str, Any] = {"field": list(fields), "value": value}
    if cardinality:
        data["cardinality"] = [{"field": cardinality[0], "value": cardinality[1]}]
    return ThresholdParams.model_validate(data)


def test_buckets_request_is_kibanas_composite() -> None:
    params = _params(["host.name", "user.name"], 25, ("source.ip", 3))
    assert buckets_request(params, QUERY, PLAIN, after={"host.name": "h", "user.name": "u"}, size=500) == {
        "size": 0,
        "query": QUERY,
        "aggs": {
            "thresholdTerms": {
                "composite": {
                    "sources": [
                        {"host.name": {"terms": {"field": "host.name"}}},
                        {"user.name": {"terms": {"field": "user.name"}}},
                    ],
                    "size": 500,
                    "after": {"host.name": "h", "user.name": "u"},
                },
                "aggs": {
                    "min_timestamp": {"min": {"field": "@timestamp"}},
                    "max_timestamp": {"max": {"field": "@timestamp"}},
                    "cardinality_count": {"cardinality": {"field": "source.ip"}},
                },
            }
        },
    }


def test_total_request_counts_every_hit() -> None:
    assert total_request(_params([], 5), QUERY, PLAIN) == {
        "size": 0,
        "track_total_hits": True,
        "query": QUERY,
        "aggs": {"min_timestamp": {"min": {"field": "@timestamp"}}, "max_timestamp": {"max": {"field": "@timestamp"}}},
    }


def _bucket(key: dict[str, Any], count: int, cardinality: int | None = None) -> dict[str, Any]:
    bucket: dict[str, Any] = {
        "key": key,
        "doc_count": count,
        "min_timestamp": {"value": T0},
        "max_timestamp": {"value": T0 + 60_000},
    }
    if cardinality is not None:
        bucket["cardinality_count"] = {"value": cardinality}
    return bucket


def _page(buckets: list[dict[str, Any]], after: dict[str, Any] | None = None) -> dict[str, Any]:
    aggregation: dict[str, Any] = {"buckets": buckets}
    if after is not None:
        aggregation["after_key"] = after
    return {"aggregations": {"thresholdTerms": aggregation}}


@pytest.mark.parametrize(
    ("params", "buckets", "kept"),
    [
        (_params(["h"], 3), [_bucket({"h": "a"}, 2), _bucket({"h": "b"}, 3), _bucket({"h": "c"}, 9)], ["b", "c"]),
        (_params(["h"], 1, ("u", 2)), [_bucket({"h": "a"}, 5, 1), _bucket({"h": "b"}, 5, 2)], ["b"]),
        (_params(["h"], 1, ("u", 0)), [_bucket({"h": "a"}, 1, 0)], ["a"]),
        (_params(["h"], 1, ("u", 1)), [_bucket({"h": "a"}, 1)], []),  # no cardinality value counts as 0
    ],
)
def test_each_page_keeps_the_buckets_kibanas_selectors_keep(
    params: ThresholdParams, buckets: list[dict[str, Any]], kept: list[str]
) -> None:
    passing, after = parse_page(_page(buckets, {"h": "z"}), params)
    assert [bucket.terms[0][1] for bucket in passing] == kept
    assert after == {"h": "z"}


def test_a_bucket_parsed() -> None:
    params = _params(["host.name", "port"], 1, ("user.name", 1))
    [bucket], _ = parse_page(_page([_bucket({"host.name": "h1", "port": 443}, 7, 2)]), params)
    assert bucket == ThresholdBucket(
        terms=(("host.name", "h1"), ("port", 443)),
        count=7,
        first=datetime(2025, 1, 1, tzinfo=UTC),
        last=datetime(2025, 1, 1, 0, 1, tzinfo=UTC),
        cardinality=2,
    )
    assert bucket.values == ["h1", 443]


@pytest.mark.parametrize(
    ("response", "params", "count"),
    [
        ({"hits": {"total": {"value": 12, "relation": "eq"}}, "aggregations": {}}, _params([], 12), 12),
        ({"hits": {"total": {"value": 11, "relation": "eq"}}, "aggregations": {}}, _params([], 12), None),
        (
            {"hits": {"total": {"value": 20}}, "aggregations": {"cardinality_count": {"value": 4}}},
            _params([], 1, ("user.name", 5)),
            None,
        ),
        (
            {"hits": {"total": {"value": 20}}, "aggregations": {"cardinality_count": {"value": 5}}},
            _params([], 1, ("user.name", 5)),
            20,
        ),
    ],
)
def test_parse_total(response: dict[str, Any], params: ThresholdParams, count: int | None) -> None:
    bucket = parse_total(response, params)
    assert (None if bucket is None else bucket.count) == count
    if bucket is not None:
        assert bucket.terms == ()


@pytest.mark.parametrize("response", [{}, {"aggregations": {"other": {}}}])
def test_missing_aggregations(response: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"^{MISSING_AGGREGATIONS}$"):
        parse_page(response, _params(["h"], 1))
    if "aggregations" not in response:
        with pytest.raises(ValueError, match=f"^{MISSING_AGGREGATIONS}$"):
            parse_total(response, _params([], 1))


class FakeSearch:
    """Answers the requests in order with the given responses, and keeps the requests."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Mapping[str, Any]:
        self.requests.append(body)
        return self.responses.pop(0)


def _keys(page: int, count: int, passing: int) -> list[dict[str, Any]]:
    return [_bucket({"h": f"p{page}-{i}"}, 5 if i < passing else 1) for i in range(count)]


@pytest.mark.parametrize(
    ("pages", "max_signals", "searches", "found", "warned"),
    [
        # (buckets on the page, of which passing), then the pages end
        ([(3, 3)], 10, 1, 3, False),  # 3 buckets of the 4 asked: the last page, though it has an after_key
        ([(4, 3)], 10, 2, 3, False),  # a full page: one more search finds the next one empty
        ([(4, 2), (4, 2)], 10, 3, 4, False),
        ([(4, 4), (4, 4)], 4, 2, 4, True),  # 4 passing are not more than 4: the second page is asked
        ([(4, 4), (4, 4)], 3, 1, 3, True),  # 4 > 3 after the first page: stop
        ([(4, 0), (4, 0), (4, 1)], 1, 4, 1, False),
    ],
)
def test_find_buckets_pages_until_more_than_max_signals(
    pages: list[tuple[int, int]], max_signals: int, searches: int, found: int, warned: bool
) -> None:
    responses = [_page(_keys(n, count, passing), {"h": f"p{n}-last"}) for n, (count, passing) in enumerate(pages)]
    responses.append(_page([]))
    search = FakeSearch(responses)
    result = find_buckets(search, _params(["h"], 5), QUERY, PLAIN, max_signals=max_signals, page_size=4)
    assert (result.searches, len(result.buckets), result.more, result.stopped) == (searches, found, warned, False)
    afters = [request["aggs"]["thresholdTerms"]["composite"].get("after") for request in search.requests]
    assert afters == [None, *({"h": f"p{n}-last"} for n in range(len(afters) - 1))]
    # The buckets kept are the first in composite order.
    expected = [f"p{n}-{i}" for n, (count, passing) in enumerate(pages) for i in range(passing)][:max_signals]
    assert [bucket.terms[0][1] for bucket in result.buckets] == expected[: len(result.buckets)]


@pytest.mark.parametrize(("stop_after", "searches", "found"), [(1, 1, 2), (2, 2, 4), (9, 3, 4)])
def test_find_buckets_stops_between_pages_when_asked(stop_after: int, searches: int, found: int) -> None:
    responses = [_page(_keys(n, 4, 2), {"h": f"p{n}-last"}) for n in range(2)] + [_page([])]
    search = FakeSearch(responses)
    result = find_buckets(
        search,
        _params(["h"], 5),
        QUERY,
        PLAIN,
        max_signals=10,
        page_size=4,
        should_stop=lambda: len(search.requests) >= stop_after,
    )
    assert (result.searches, len(result.buckets), result.stopped) == (searches, found, stop_after < 3)


def test_find_buckets_without_fields_is_one_search() -> None:
    search = FakeSearch([{"hits": {"total": {"value": 30}}, "aggregations": {"max_timestamp": {"value": T0}}}])
    result = find_buckets(search, _params([], 30), QUERY, PLAIN, max_signals=1)
    assert (result.searches, [bucket.count for bucket in result.buckets], result.more) == (1, [30], False)
    assert search.requests[0]["track_total_hits"] is True


def test_a_search_on_no_shard_finds_no_bucket() -> None:
    no_shard = {"_shards": {"total": 0}, "hits": {"total": {"value": 0}, "hits": []}}
    assert parse_page(no_shard, _params(["h"], 1)) == ([], None)
    assert parse_total(no_shard, _params([], 1)) is None
