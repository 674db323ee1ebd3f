"""EQL sequences end to end on the real node: rules run by ``detection-job run`` write the alerts of exactly
the sequences Elasticsearch's EQL returns -- every worked example of Elasticsearch's own missing-events
tests (leading, middle and trailing missing events, several, keys mapped by position, runs, head and tail),
the documentation's state machine, ``until``, join keys with nulls, maxspan at equality, runs -- each as a
shell and one building block per event. A second pass over overlapping windows (read whole by its probe,
where the first was paged two events at a time) writes nothing twice; a rule capped at one sequence per
run catches up run by run, losing none.

Each data set is shifted in time to lie in the rules' window, keeping its millisecond spacing; each rule
reads one index holding them all, its category field ``event_type`` telling the data sets apart.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from job.cli import main as cli_main
from job.eql import plan
from job.ruletypes.eql.sequence_alerts import sequence_ids
from job.window import parse_timestamp
from job.writing.deadletter_retry import SEQUENCE_NOT_RETRIED
from tests.faultproxy import FaultProxy, refusing_bulk
from tests.integration.run.conftest import JobEnv, iso, sandbox
from tests.unit.eql.test_sequence import DATA, MISSING_EVENTS, MISSING_FIELDS

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = NOW - timedelta(minutes=40)  # every data set starts here
MINUTE = timedelta(minutes=1)
CATEGORY = 'event_category_override = "event_type"'
FIELDS = {**MISSING_FIELDS, "user.name": "keyword", "process.name": "keyword", "ID": "keyword"}


def _shifted(name: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The data set's events from BASE on, their spacing kept (test1 and test4 count milliseconds)."""
    times = [_millis(event["@timestamp"]) for event in events]
    first = min(times)
    return [
        {**event, "@timestamp": iso(BASE + timedelta(milliseconds=at - first)), "_id": f"{name}-{event['sequence']}"}
        for event, at in zip(events, times, strict=True)
    ]


def _millis(value: str) -> int:
    if value.isdigit():
        return int(value)
    return int(parse_timestamp(value).timestamp() * 1000)


def _series(name: str, rows: list[tuple[int, int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Events of a data set of ours: (number, milliseconds after BASE, tag, more fields)."""
    return [
        {
            "_id": f"{name}-{n}",
            "@timestamp": iso(BASE + timedelta(milliseconds=ms)),
            "event_type": name,
            "tag": tag,
            "sequence": n,
            **extra,
        }
        for n, ms, tag, extra in rows
    ]


ATTRIB = [
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
OURS = {
    # the documentation's state machine ("How sequence queries handle matches")
    "docs": _series(
        "docs", [(n, n, "x", {"user": {"name": u}, "process": {"name": p}}) for n, (u, p) in enumerate(ATTRIB, 1)]
    ),
    # until (docs): A,B and A,B,C match; A,C,B does not
    "halt": _series(
        "halt",
        [
            (1, 1, "A", {"ID": "s1"}),
            (2, 2, "B", {"ID": "s1"}),
            (3, 3, "A", {"ID": "s2"}),
            (4, 4, "B", {"ID": "s2"}),
            (5, 5, "C", {"ID": "s2"}),
            (6, 6, "A", {"ID": "s3"}),
            (7, 7, "C", {"ID": "s3"}),
            (8, 8, "B", {"ID": "s3"}),
        ],
    ),
    # join keys with nulls: k1 missing on 1-2, explicit null on 3-4 (both null: they join as optional keys)
    "nulls": _series(
        "nulls",
        [
            (1, 1, "A", {}),
            (2, 2, "B", {}),
            (3, 3, "A", {"k1": None}),
            (4, 4, "B", {"k1": None}),
            (5, 5, "A", {"k1": "x"}),
            (6, 6, "B", {"k1": "x"}),
        ],
    ),
    # maxspan=1s at equality: 1 -> 2 exactly 1000 ms later matches, 3 -> 4 1001 ms later does not
    "span": _series(
        "span",
        [
            (1, 0, "A", {"k1": "a"}),
            (2, 1000, "B", {"k1": "a"}),
            (3, 5000, "A", {"k1": "b"}),
            (4, 6001, "B", {"k1": "b"}),
        ],
    ),
    # runs: A A B (the two As must be distinct events)
    "runs": _series("runs", [(1, 1, "A", {}), (2, 2, "B", {}), (3, 3, "A", {}), (4, 4, "A", {}), (5, 5, "B", {})]),
}
OUR_CASES: list[tuple[str, str, list[list[int]]]] = [
    (
        "docs state machine",
        'sequence by user.name [docs where process.name == "attrib"] [docs where process.name == "bash"] '
        '[docs where process.name == "cat"]',
        [[2, 4, 9], [6, 8, 10]],
    ),
    (
        "until",
        'sequence by ID [halt where tag == "A"] [halt where tag == "B"] until [halt where tag == "C"]',
        [[1, 2], [3, 4]],
    ),
    ("null key never joins", 'sequence by k1 [nulls where tag == "A"] [nulls where tag == "B"]', [[5, 6]]),
    (
        "optional null key joins null",
        'sequence by ?k1 [nulls where tag == "A"] [nulls where tag == "B"]',
        [[1, 2], [3, 4], [5, 6]],
    ),
    (
        "maxspan is inclusive",
        'sequence by k1 with maxspan=1s [span where tag == "A"] [span where tag == "B"]',
        [[1, 2]],
    ),
    ("runs", 'sequence [runs where tag == "A"] with runs=2 [runs where tag == "B"]', [[3, 4, 5]]),
]


def _expected(query: str, flat: list[int]) -> list[list[int]]:
    """Elasticsearch's flat expected list (-1 for a missing event) as sequences of real events."""
    size = len(plan(query, FIELDS, category_field="event_type").stages)
    chunks = [flat[start : start + size] for start in range(0, len(flat), size)]
    return [[event for event in chunk if event != -1] for chunk in chunks]


CASES = [(name, query, _expected(query, flat)) for name, query, _, flat in MISSING_EVENTS] + OUR_CASES
_BY_KEY_6 = next(row for row in MISSING_EVENTS if row[0] == "withByKey6")  # five sequences
CAPPED = ("capped at one a run", _BY_KEY_6[1])


@pytest.fixture(scope="module")
def run_env(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[JobEnv, dict[str, str]]]:
    """One pass of every rule at NOW, paged two events at a time; the rule ids by case name."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        env = sandbox(es, es_url, f"test-{uuid.uuid4().hex[:12]}", tmp_path_factory.mktemp("eqlseq"), monkeypatch)
        properties = {name: {"type": kind} for name, kind in FIELDS.items() if "." not in name}
        properties |= {"user": {"properties": {"name": {"type": "keyword"}}}}
        properties |= {"process": {"properties": {"name": {"type": "keyword"}}}}
        events = [event for name, data in DATA.items() for event in _shifted(name, data)]
        events += [event for data in OURS.values() for event in data]
        env.index_events(events, mapping={"properties": properties})
        rules = {
            name: env.write_eql_rule(query, name=name, from_="now-60m", extra=CATEGORY) for name, query, _ in CASES
        }
        rules[CAPPED[0]] = env.write_eql_rule(CAPPED[1], name=CAPPED[0], from_="now-60m", max_signals=1, extra=CATEGORY)
        env.set(page_size="2")
        assert env.run("--now", iso(NOW)) == 0
        yield env, rules
        es.options(ignore_status=404).indices.delete_index_template(name=f"{env.alerts}-template")


def sequences(env: JobEnv, rule_id: str) -> list[list[int]]:
    """The rule's sequences as the numbers of their events, from the alerts: one shell per sequence, its blocks
    in order; every block points to its shell, and every shell has its blocks."""
    alerts = env.alert_docs(rule_id)
    shells = {doc["_id"]: doc for doc in alerts if "kibana.alert.group.index" not in doc}
    blocks: dict[str, list[dict[str, Any]]] = {shell_id: [] for shell_id in shells}
    for doc in alerts:
        if "kibana.alert.group.index" in doc:
            assert doc["kibana.alert.building_block_type"] == "default"
            blocks[doc["kibana.alert.group.id"]].append(doc)
    found = []
    for shell_id, shell in shells.items():
        assert shell["kibana.alert.group.id"] == shell_id == shell["kibana.alert.uuid"]
        group = sorted(blocks[shell_id], key=lambda doc: doc["kibana.alert.group.index"])
        assert [doc["kibana.alert.group.index"] for doc in group] == list(range(len(group)))
        events = [int(doc["kibana.alert.ancestors"][0]["id"].rsplit("-", 1)[1]) for doc in group]
        assert [a["id"].rsplit("-", 1)[-1] for a in shell["kibana.alert.ancestors"][::2]] == [str(e) for e in events]
        found.append(events)
    return sorted(found)


@pytest.mark.parametrize(("name", "query", "expected"), CASES, ids=[case[0] for case in CASES])
def test_each_rule_writes_the_sequences_elasticsearch_returns(
    run_env: tuple[JobEnv, dict[str, str]], name: str, query: str, expected: list[list[int]]
) -> None:
    del query
    env, rules = run_env
    assert sequences(env, rules[name]) == sorted(expected)
    [record] = env.executions_docs(rules[name])
    assert record["execution"]["status"] == "succeeded", record
    assert record["metrics"]["alerts_created"] == sum(len(events) + 1 for events in expected)


def test_overlapping_windows_write_no_shell_or_block_twice_and_a_capped_rule_catches_up(
    run_env: tuple[JobEnv, dict[str, str]],
) -> None:
    env, rules = run_env
    capped = rules[CAPPED[0]]
    before = {doc["_id"] for doc in env.alert_docs() if doc["kibana.alert.rule.rule_id"] != capped}
    written = [sequences(env, capped)]
    env.set(page_size="1000")  # read whole by the probe this time
    # a minute apart, so every window still holds every data set whole (a missing event that left the window
    # can no longer be found, which may accept a sequence: as in Elasticsearch, whose request filter is the window)
    for minutes in range(1, 6):
        assert env.run("--now", iso(NOW + timedelta(minutes=minutes))) == 0
        written.append(sequences(env, capped))
    after = env.alert_docs()
    ids = Counter(doc["_id"] for doc in after)
    assert max(ids.values()) == 1
    assert {doc["_id"] for doc in after if doc["kibana.alert.rule.rule_id"] != capped} == before
    # the capped rule: one more sequence per run, never one twice, until all five are written
    expected = sorted(_expected(CAPPED[1], _BY_KEY_6[3]))
    assert [len(found) for found in written] == [1, 2, 3, 4, 5, 5]
    assert written[-1] == expected
    records = env.executions_docs(capped)
    assert [r["metrics"]["alerts_created"] for r in records] == [4, 4, 4, 4, 4, 0]  # a shell and 3 blocks
    assert all("maximum alert limit" in " ".join(r["execution"]["warnings"]) for r in records[:4])
    # the others' second passes (read whole by their probe) found just what their first (paged) found
    for name, rule_id in rules.items():
        if name != CAPPED[0]:
            records = env.executions_docs(rule_id)
            assert [r["execution"]["status"] for r in records] == ["succeeded"] * 6, name
            assert all(r["metrics"]["alerts_created"] == 0 for r in records[1:]), name


def test_a_refused_shell_is_dead_lettered_then_completed_by_the_next_run(
    job_env: JobEnv, es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Elasticsearch refuses a sequence's shell: the sequence is dead-lettered under its first event (its
    blocks, created, leave the unit half written), the window advances; ``deadletter retry`` does not make a
    query-rule alert of that one event; the next run over the sequence's time writes the missing shell."""
    events = [
        {"_id": "a", "@timestamp": iso(NOW - 5 * MINUTE), "event_type": "x", "tag": "A", "k1": "h"},
        {"_id": "b", "@timestamp": iso(NOW - 4 * MINUTE), "event_type": "x", "tag": "B", "k1": "h"},
    ]
    job_env.index_events(events)
    rule_id = job_env.write_eql_rule('sequence by k1 [x where tag == "A"] [x where tag == "B"]', extra=CATEGORY)
    refs = [(job_env.events_index(), "a"), (job_env.events_index(), "b")]
    shell, blocks = sequence_ids(refs, rule_id, "default")
    with FaultProxy(es_url) as proxy:
        proxy.always(r"^/_bulk", refusing_bulk(es_url, {shell}))
        job_env.set(es_hosts=proxy.url)
        assert job_env.run("--now", iso(NOW)) == 1
    job_env.set(es_hosts=es_url)
    record = job_env.executions_docs(rule_id)[-1]
    assert record["execution"]["status"] == "partial failure"
    assert record["window"]["searched_to"] == iso(NOW)
    assert sorted(doc["_id"] for doc in job_env.alert_docs(rule_id)) == sorted(blocks)
    [letter] = [hit["_source"] for hit in job_env.es.search(index=job_env.dead_letters)["hits"]["hits"]]
    assert letter["event"] == {"index": job_env.events_index(), "id": "a"}
    assert letter["reason"].startswith(f"the alerts of the sequence of 2 events ({job_env.events_index()}/a, ")

    capsys.readouterr()
    assert cli_main(["deadletter", "retry"]) == 1
    assert SEQUENCE_NOT_RETRIED in capsys.readouterr().out
    assert sorted(doc["_id"] for doc in job_env.alert_docs(rule_id)) == sorted(blocks)

    assert job_env.run("--now", iso(NOW + MINUTE)) == 0  # the window overlaps: the unit is completed
    assert sorted(doc["_id"] for doc in job_env.alert_docs(rule_id)) == sorted([shell, *blocks])
    assert job_env.executions_docs(rule_id)[-1]["metrics"]["alerts_created"] == 1
