"""The sequence matcher: Elasticsearch's own expected results (test_missing_events.toml and its data, the
documentation's state-machine example), keys with nulls, maxspan at equality, until, missing events in
every place, runs, and memory that stays flat however many events come."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from job.eql import plan
from job.eql.query import event_timestamp_ns, sequence_spec, stage_matches
from job.eql.sequence import SampleCollector, SequenceMatcher, SequenceSpec, limit, pick_distinct

MISSING_FIELDS = {
    "@timestamp": "date",
    "event_type": "keyword",
    "tag": "keyword",
    "k1": "keyword",
    "k2": "keyword",
    "sequence": "long",
    "other": "long",
    "user.name": "keyword",
    "process.name": "keyword",
    "ID": "keyword",
    "name": "keyword",
    "event.category": "keyword",
}


def _events(kind: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{"@timestamp": ts, "event_type": kind, "tag": tag, "sequence": n, **extra} for n, ts, tag, extra in rows]


# x-pack/plugin/eql/qa/common/src/main/resources/data/missing-events.data (facts: timestamps, tags, keys)
TEST1 = _events(
    "test1", [(1, "1", "normal", {}), (2, "2", "normal", {}), (3, "3", "missing", {}), (4, "4", "normal", {})]
)
TEST2 = _events(
    "test2",
    [
        (1, "2022-05-04T12:00:00.000Z", "normal", {}),
        (2, "2022-05-04T12:00:00.001Z", "normal", {}),
        (3, "2022-05-04T12:00:00.002Z", "missing", {}),
        (4, "2022-05-04T12:00:00.003Z", "normal", {}),
        (5, "2022-05-04T12:00:00.004Z", "normal", {}),
        (6, "2022-05-04T12:00:00.005Z", "missing", {}),
        (7, "2022-05-04T12:02:00.006Z", "missing2", {}),
        (8, "2022-05-04T12:03:00.006Z", "missing2", {}),
    ],
)
TEST3 = _events(
    "test3",
    [
        (1, "2022-05-04T12:00:00.000Z", "missing", {}),
        (2, "2022-05-04T12:10:00.001Z", "normal", {}),
        (3, "2022-05-04T12:20:00.001Z", "missing", {}),
        (4, "2022-05-04T12:21:00.001Z", "normal", {}),
        (5, "2022-05-04T12:29:00.001Z", "normal", {}),
        (6, "2022-05-04T12:31:00.001Z", "normal", {}),
    ],
)
TAGS4 = ("A", "B", "M1", "B", "C", "M2", "D", "M1", "C", "B", "C", "D", "A", "B", "M3", "C", "D", "M4")
TEST4 = _events("test4", [(n, str(n), tag, {}) for n, tag in enumerate(TAGS4, start=1)])
TEST5 = _events(
    "test5",
    [
        (1, "2022-01-01T00:00:00.000Z", "normal", {"k1": "foo", "k2": "foo", "other": 1}),
        (2, "2022-01-01T00:00:00.001Z", "normal", {"k1": "foo", "k2": "foo"}),
        (3, "2022-01-01T00:00:00.003Z", "missing", {"k1": "foo", "k2": "foo"}),
        (4, "2022-01-01T00:00:00.004Z", "normal", {"k1": "foo", "k2": "foo"}),
        (5, "2022-01-01T00:00:00.005Z", "normal", {"k1": "foo", "k2": "foo", "other": 1}),
        (6, "2022-01-01T00:00:00.006Z", "normal", {"k1": "foo", "k2": "foo"}),
        (7, "2022-01-01T00:00:00.007Z", "missing", {"k1": "foo", "k2": "bar"}),
        (8, "2022-01-01T00:00:00.008Z", "normal", {"k1": "foo", "k2": "foo"}),
        (9, "2022-01-01T00:00:00.009Z", "normal", {"k1": "baz", "k2": "baz", "other": 1}),
        (10, "2022-01-01T00:00:00.010Z", "normal", {"k1": "baz", "k2": "baz"}),
        (11, "2022-01-01T00:00:00.011Z", "missing", {"k1": "baz", "k2": "foo"}),
        (12, "2022-01-01T00:00:00.012Z", "normal", {"k1": "baz", "k2": "baz"}),
    ],
)
DATA = {"test1": TEST1, "test2": TEST2, "test3": TEST3, "test4": TEST4, "test5": TEST5}


def run(
    query: str,
    events: list[dict[str, Any]],
    fields: dict[str, str] = MISSING_FIELDS,
    category_field: str = "event_type",
    ref: str = "sequence",
) -> list[list[Any]]:
    """Plan, feed every event in order, apply the pipes; each sequence as its events' refs (-1: missing)."""
    planned = plan(query, fields, category_field=category_field)
    matcher = SequenceMatcher(sequence_spec(planned))
    found = []
    for number, source in enumerate(events):
        timestamp = event_timestamp_ns(source)
        assert timestamp is not None
        found += matcher.feed(source[ref], timestamp, stage_matches(planned, source), surrogate=(number,))
    found += matcher.finish()
    selected = limit(found, planned.head, planned.tail)
    return [[-1 if event is None else event for event in match.events] for match in selected]


def flat(sequences: list[list[Any]]) -> list[Any]:
    return [event for sequence in sequences for event in sequence]


# (name, query, data, expected_event_ids) -- Elasticsearch's test_missing_events.toml, in the shipped ![ syntax
MISSING_EVENTS: list[tuple[str, str, str, list[int]]] = [
    (
        "missingInBetween_noMatches",
        'sequence with maxspan=1s [test1 where tag == "normal"] ![test1 where tag == "nonexisting"] '
        '[test1 where tag == "normal"]',
        "test1",
        [1, -1, 2, 2, -1, 4],
    ),
    (
        "missingInBetween_noMatches_head",
        'sequence with maxspan=1s [test1 where tag == "normal"] ![test1 where tag == "nonexisting"] '
        '[test1 where tag == "normal"] | head 1',
        "test1",
        [1, -1, 2],
    ),
    (
        "missingInBetween_noMatches_tail",
        'sequence with maxspan=1s [test1 where tag == "normal"] ![test1 where tag == "nonexisting"] '
        '[test1 where tag == "normal"] | tail 1',
        "test1",
        [2, -1, 4],
    ),
    (
        "missingInBetween_match",
        'sequence with maxspan=1s [test1 where tag == "normal"] ![test1 where tag == "missing"] '
        '[test1 where tag == "normal"]',
        "test1",
        [1, -1, 2],
    ),
    (
        "positivePlusMissing",
        'sequence with maxspan=1s [test1 where tag == "normal"] ![test1 where tag == "missing"]',
        "test1",
        [4, -1],
    ),
    (
        "skipFirstMatchAndPickSecondCandidate",
        'sequence with maxspan=1s [test2 where tag == "normal"] [test2 where tag == "normal"] '
        '![test2 where tag == "missing"] [test2 where tag == "normal"]',
        "test2",
        [2, 4, -1, 5],
    ),
    (
        "leadingSimple",
        'sequence with maxspan=3m ![test3 where tag == "missing"] [test3 where tag == "normal"]',
        "test3",
        [-1, 2, -1, 5, -1, 6],
    ),
    (
        "leadingAndTrailingExcluded1",
        'sequence with maxspan=19m ![test3 where tag == "missing"] [test3 where tag == "normal"] '
        '![test3 where tag == "missing"]',
        "test3",
        [-1, 2, -1, -1, 4, -1, -1, 5, -1, -1, 6, -1],
    ),
    (
        "leadingAndTrailingExcluded2",
        'sequence with maxspan=21m ![test3 where tag == "missing"] [test3 where tag == "normal"] '
        '![test3 where tag == "missing"]',
        "test3",
        [-1, 4, -1, -1, 5, -1, -1, 6, -1],
    ),
    (
        "multipleMissing1",
        'sequence with maxspan=1s [test4 where tag == "A"] [test4 where tag == "B"] ![test4 where tag == "M1"] '
        '[test4 where tag == "C"] ![test4 where tag == "M2"] [test4 where tag == "D"]',
        "test4",
        [13, 14, -1, 16, -1, 17],
    ),
    (
        "multipleMissing2",
        'sequence with maxspan=1s [test4 where tag == "A"] [test4 where tag == "B"] ![test4 where tag == "M1"] '
        '[test4 where tag == "C"] [test4 where tag == "D"]',
        "test4",
        [13, 14, -1, 16, 17],
    ),
    (
        "multipleMissing3",
        'sequence with maxspan=1s [test4 where tag == "A"] [test4 where tag == "B"] [test4 where tag == "C"] '
        '![test4 where tag == "M2"] [test4 where tag == "D"]',
        "test4",
        [13, 14, 16, -1, 17],
    ),
    (
        "multipleMissing4",
        'sequence with maxspan=1s [test4 where tag == "A"] [test4 where tag == "B"] ![test4 where tag == "M1"] '
        '[test4 where tag == "C"] ![test4 where tag == "M2"] [test4 where tag == "D"] ![test4 where tag == "M4"]',
        "test4",
        [],
    ),
    (
        "multipleMissing5",
        'sequence with maxspan=1s [test4 where tag == "A"] [test4 where tag == "B"] ![test4 where tag == "none"] '
        '[test4 where tag == "C"] ![test4 where tag == "none"] [test4 where tag == "D"]',
        "test4",
        [1, 2, -1, 5, -1, 7, 13, 14, -1, 16, -1, 17],
    ),
    (
        "multipleMissing6",
        'sequence with maxspan=1s [test4 where tag == "A"] [test4 where tag == "B"] [test4 where tag == "C"] '
        '![test4 where tag == "M2"] [test4 where tag == "D"] ![test4 where tag == "none"]',
        "test4",
        [13, 14, 16, -1, 17, -1],
    ),
    (
        "multipleMissing7",
        'sequence with maxspan=1s ![test4 where tag == "none"] [test4 where tag == "A"] [test4 where tag == "B"] '
        '[test4 where tag == "C"] ![test4 where tag == "M2"] [test4 where tag == "D"]',
        "test4",
        [-1, 13, 14, 16, -1, 17],
    ),
    (
        "withByKey1",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] [test5 where tag == "normal"] '
        '![test5 where tag == "missing"] [test5 where tag == "normal"]',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6],
    ),
    (
        "withByKey2",
        'sequence with maxspan=1s [test5 where tag == "normal"] by k1 [test5 where tag == "normal"] by k1 '
        '![test5 where tag == "missing"] by k1 [test5 where tag == "normal"] by k1',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6],
    ),
    (
        "withByKey3",
        'sequence with maxspan=1s [test5 where tag == "normal"] by k1 [test5 where tag == "normal"] by k1 '
        '![test5 where tag == "missing"] by k2 [test5 where tag == "normal"] by k1',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6, 5, 6, -1, 8, 9, 10, -1, 12],
    ),
    (
        "withByKey4",
        'sequence by k2 with maxspan=1s [test5 where tag == "normal"] [test5 where tag == "normal"] '
        '![test5 where tag == "missing"] [test5 where tag == "normal"]',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6, 5, 6, -1, 8, 9, 10, -1, 12],
    ),
    (
        "withByKey5",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] by k2 [test5 where tag == "normal"] by k2 '
        '![test5 where tag == "missing"] by k2 [test5 where tag == "normal"] by k2',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6, 5, 6, -1, 8, 9, 10, -1, 12],
    ),
    (
        "withByKey6",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] by k2 [test5 where tag == "normal"] by k2 '
        '![test5 where tag == "missing" and `sequence` > 10] by k2 [test5 where tag == "normal"] by k2',
        "test5",
        [1, 2, -1, 4, 2, 4, -1, 5, 4, 5, -1, 6, 5, 6, -1, 8, 9, 10, -1, 12],
    ),
    (
        "withByKey_tail",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] by k2 [test5 where tag == "normal"] by k2 '
        '![test5 where tag == "missing" and `sequence` > 10] by k2 [test5 where tag == "normal"] by k2 | tail 2',
        "test5",
        [5, 6, -1, 8, 9, 10, -1, 12],
    ),
    (
        "withByKey_head",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] by k2 [test5 where tag == "normal"] by k2 '
        '![test5 where tag == "missing"] by k2 [test5 where tag == "normal"] by k2 | head 2',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6],
    ),
    (
        "withByKey_runs",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] by k2 with runs=2 '
        '![test5 where tag == "missing"] by k2 [test5 where tag == "normal"] by k2',
        "test5",
        [2, 4, -1, 5, 4, 5, -1, 6, 5, 6, -1, 8, 9, 10, -1, 12],
    ),
    (
        "withByKey_runsOnMissing",
        'sequence by k1 with maxspan=1s [test5 where tag == "normal"] by k2 with runs=2 '
        '![test5 where tag == "missing"] by k2 with runs=2 [test5 where tag == "normal"] by k2',
        "test5",
        [2, 4, -1, -1, 5, 4, 5, -1, -1, 6, 5, 6, -1, -1, 8, 9, 10, -1, -1, 12],
    ),
]


@pytest.mark.parametrize(("name", "query", "data", "expected"), MISSING_EVENTS, ids=[row[0] for row in MISSING_EVENTS])
def test_elasticsearch_missing_event_cases(name: str, query: str, data: str, expected: list[int]) -> None:
    del name
    assert flat(run(query, DATA[data])) == expected


# the documentation's state-machine example ("How sequence queries handle matches")
DOCS = [
    ("root", "attrib"),
    ("root", "attrib"),
    ("elkbee", "bash"),
    ("root", "bash"),
    ("root", "bash"),
    ("elkbee", "attrib"),
    ("root", "attrib"),
    ("elkbee", "bash"),
    ("root", "cat"),
    ("elkbee", "cat"),
    ("root", "cat"),
]


def test_the_documentation_state_machine() -> None:
    events = [
        {"@timestamp": n, "event": {"category": "process"}, "user": {"name": user}, "process": {"name": name}, "id": n}
        for n, (user, name) in enumerate(DOCS, start=1)
    ]
    query = (
        'sequence by user.name [process where process.name == "attrib"] [process where process.name == "bash"] '
        '[process where process.name == "cat"]'
    )
    assert run(query, events, category_field="event.category", ref="id") == [[2, 4, 9], [6, 8, 10]]


def _series(rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"@timestamp": n, "event_type": "e", "ID": key, "name": name, "sequence": n}
        for n, (key, name) in enumerate(rows, start=1)
    ]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("1", "A"), ("1", "B")], [[1, 2]]),
        ([("1", "A"), ("1", "B"), ("1", "C")], [[1, 2]]),  # until after the last stage: still a match
        ([("1", "A"), ("1", "C"), ("1", "B")], []),  # until between the stages ends it
        ([("1", "A"), ("2", "C"), ("1", "B")], [[1, 3]]),  # another key's until does not
        ([("1", "A"), ("1", "C"), ("1", "A"), ("1", "B")], [[3, 4]]),  # a new start after until is fine
    ],
)
def test_until(rows: list[tuple[str, str]], expected: list[list[int]]) -> None:
    query = 'sequence by ID [e where name == "A"] [e where name == "B"] until [e where name == "C"]'
    assert run(query, _series(rows)) == expected


def test_until_on_the_same_event_as_a_stage() -> None:
    query = 'sequence [e where name == "A"] [e where name in ("B", "C")] until [e where name == "C"]'
    assert run(query, _series([("1", "A"), ("1", "C")])) == [[1, 2]]


@pytest.mark.parametrize(
    ("query", "keys", "expected"),
    [
        # a non-optional null key never joins (Elasticsearch's exists filter on each stage)
        ('sequence by ID [e where name == "A"] [e where name == "B"]', [None, None], []),
        ('sequence by ID [e where name == "A"] [e where name == "B"]', ["x", None], []),
        # an optional key may be null, and null joins null
        ('sequence by ?ID [e where name == "A"] [e where name == "B"]', [None, None], [[1, 2]]),
        ('sequence by ?ID [e where name == "A"] [e where name == "B"]', ["x", None], []),
        ('sequence by ?ID [e where name == "A"] [e where name == "B"]', ["x", "x"], [[1, 2]]),
        # an optional key no index maps is null for every event
        ('sequence by ?nope [e where name == "A"] [e where name == "B"]', ["x", "y"], [[1, 2]]),
    ],
)
def test_keys_with_nulls(query: str, keys: list[str | None], expected: list[list[int]]) -> None:
    events = [
        {"@timestamp": n, "event_type": "e", "name": name, "sequence": n, **({"ID": key} if key else {})}
        for n, (key, name) in enumerate(zip(keys, ["A", "B"], strict=True), start=1)
    ]
    assert run(query, events) == expected


@pytest.mark.parametrize(("gap_ms", "expected"), [(1000, [[1, 2]]), (1001, []), (999, [[1, 2]])])
def test_maxspan_is_inclusive(gap_ms: int, expected: list[list[int]]) -> None:
    query = 'sequence with maxspan=1s [e where name == "A"] [e where name == "B"]'
    events = [
        {"@timestamp": 5000, "event_type": "e", "name": "A", "sequence": 1},
        {"@timestamp": 5000 + gap_ms, "event_type": "e", "name": "B", "sequence": 2},
    ]
    assert run(query, events) == expected


def test_maxspan_counts_from_the_first_event() -> None:
    query = 'sequence with maxspan=1s [e where name == "A"] [e where name == "B"] [e where name == "C"]'
    events = [
        {"@timestamp": ts, "event_type": "e", "name": name, "sequence": ts}
        for ts, name in [(0, "A"), (600, "B"), (1100, "C"), (1200, "A"), (1300, "B"), (2200, "C")]
    ]
    assert run(query, events) == [[1200, 1300, 2200]]


def test_runs_expand() -> None:
    query = 'sequence [e where name == "A"] with runs=3 [e where name == "B"]'
    events = _series([("1", "A"), ("1", "A"), ("1", "B"), ("1", "A"), ("1", "A"), ("1", "A"), ("1", "A"), ("1", "B")])
    assert run(query, events) == [[5, 6, 7, 8]]


def test_an_event_can_continue_one_sequence_and_start_another() -> None:
    query = 'sequence [e where name == "n"] [e where name == "n"]'
    assert run(query, _series([("1", "n"), ("1", "n"), ("1", "x"), ("1", "n")])) == [[1, 2], [2, 4]]


def test_ties_break_on_the_tiebreaker_then_the_surrogate() -> None:
    matcher = SequenceMatcher(SequenceSpec(("positive", "positive")))
    assert matcher.feed("b", 10, {1: ()}, tiebreaker=2) == []
    with pytest.raises(ValueError, match="events must be fed in order"):
        matcher.feed("a", 10, {0: ()}, tiebreaker=1)
    ordered = SequenceMatcher(SequenceSpec(("positive", "positive")))
    ordered.feed("a", 10, {0: ()}, tiebreaker=1)
    assert [m.events for m in ordered.feed("b", 10, {1: ()}, tiebreaker=None)] == [("a", "b")]  # null sorts last


@pytest.mark.parametrize(("kinds", "maxspan"), [(("missing", "missing"), 1000), (("positive", "missing"), None)])
def test_bad_specs(kinds: tuple[Any, ...], maxspan: int | None) -> None:
    with pytest.raises(ValueError):
        SequenceSpec(kinds, maxspan)


def test_a_million_stage_zero_events_keep_the_state_flat() -> None:
    """1,000,000 events each starting a sequence under its own key, none completing: the state held stays
    bounded by the candidates within maxspan (here 1,000 events' worth), not by the events fed."""
    matcher = SequenceMatcher(SequenceSpec(("positive", "positive", "positive"), maxspan_ms=1))
    sizes = []
    for i in range(1_000_000):
        matcher.feed(i, i * 1_000, {0: (i,)})  # one event per microsecond: 1,000 within a millisecond
        if i % 100_000 == 99_999:
            sizes.append(matcher.state_size())
    assert max(sizes) <= 3 * 1_001 + 1_024  # live candidates, their heap (compacted), slack
    assert sizes[-1] <= sizes[0] + 10


def test_memory_is_flat_by_tracemalloc() -> None:
    matcher = SequenceMatcher(SequenceSpec(("positive", "positive"), maxspan_ms=1))
    tracemalloc.start()
    try:
        for i in range(20_000):
            matcher.feed(i, i * 1_000, {0: (i,)})
        early = tracemalloc.get_traced_memory()[0]
        for i in range(20_000, 80_000):
            matcher.feed(i, i * 1_000, {0: (i,)})
        late, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert late < early * 1.2 + 50_000
    assert peak < early * 1.5 + 100_000


def test_without_maxspan_one_candidate_per_key() -> None:
    matcher = SequenceMatcher(SequenceSpec(("positive", "positive")))
    for i in range(10_000):
        matcher.feed(i, i, {0: (i % 10,)})
    assert matcher.state_size() == 10


def test_pending_trailing_decisions_are_emitted_when_time_passes() -> None:
    matcher = SequenceMatcher(SequenceSpec(("positive", "missing"), maxspan_ms=10))
    assert matcher.feed("a", 0, {0: ()}) == []
    assert [m.events for m in matcher.feed("x", 11_000_000, {})] == [("a", None)]
    assert matcher.finish() == []


@pytest.mark.parametrize(
    ("lists", "picked"),
    [
        # SampleIterator's own examples
        ([["doc1", "doc2", "doc3"], ["doc4", "doc5"], ["doc4", "doc5", "doc3"]], ["doc1", "doc4", "doc5"]),
        ([["doc1", "doc1"], ["doc1", "doc1", "doc1"], ["doc1", "doc1", "doc3"]], None),
        ([["a", "b"], ["a"]], ["b", "a"]),  # backtracks
        ([["a"], []], None),
    ],
)
def test_pick_distinct(lists: list[list[str]], picked: list[str] | None) -> None:
    assert pick_distinct(lists) == picked


def test_samples_by_key() -> None:
    fields = {
        "host": "keyword",
        "os": "keyword",
        "op_sys": "keyword",
        "uptime": "long",
        "port": "long",
        "bool": "boolean",
        "event.category": "keyword",
        "id": "keyword",
    }
    query = "sample by host [any where uptime > 0] by os [any where port > 5] by op_sys [any where bool == true] by os"
    planned = plan(query, fields)
    events = [
        {"id": "e1", "host": "H1", "os": "win10", "uptime": 5},
        {"id": "e2", "host": "H1", "op_sys": "win10", "port": 10},
        {"id": "e3", "host": "H1", "os": "win10", "bool": True},
        {"id": "e4", "host": "H2", "os": "linux", "uptime": 1, "bool": True},  # one event cannot fill two filters
        {"id": "e5", "host": "H0", "os": "mac", "op_sys": "mac", "uptime": 3, "port": 7, "bool": True},
        {"id": "e6", "host": ["H3", "H4"], "os": "bsd", "op_sys": "bsd", "uptime": 3, "port": 9},
        {"id": "e7", "host": "H4", "os": "bsd", "bool": True},
        {"id": "e8", "host": "H4", "os": "bsd", "uptime": 1},
    ]
    collector = SampleCollector(len(planned.stages))
    for source in events:
        collector.add(source["id"], stage_matches(planned, source))
    found = collector.samples(size=10)
    assert [(s.key, s.events) for s in found] == [
        (("H1", "win10"), ("e1", "e2", "e3")),
        (("H4", "bsd"), ("e8", "e6", "e7")),  # e6 is H3 and H4: taken once, e8 fills the first filter
    ]
    assert collector.samples(size=1) == found[:1]
