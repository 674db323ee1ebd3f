"""EQL event rules end to end on the real node, on the query rule's run path: one pass of a dozen rules
(paged two events at a time), then a second over an overlapping window (read whole by the probes).

* the alerts are Kibana's for EQL (``type: eql``, the EQL parameters), one per event Elasticsearch's EQL
  selects: the pushed-down query and, where it would run a script, the residual on the client;
* the cap counts only events that pass the residual, and a capped run is continued by the next one;
* ``event_category_override``, the timestamp override with its fallback, ``tiebreaker_field``;
* exceptions inline and from a value list applied per page, building blocks, severity overrides;
* alert suppression of event queries, per execution and over a duration (folded by the second pass);
* a rule that does not parse, one naming an unknown field and three hostile ones (nested 10,000 deep, a
  100,000-value list, a catastrophic regular expression) are each recorded ``failed`` or run, in bounded
  time, while the others run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.integration.run.conftest import JobEnv, iso, sandbox
from tests.integration.run.test_lists_command import import_list, use_lists

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
MAPPING: dict[str, Any] = {
    "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"ingested": {"type": "date"}}},
        "process": {"properties": {"pid": {"type": "long"}}},
        "destination": {"properties": {"port": {"type": "long"}, "ip": {"type": "ip"}}},
    },
}
USERS = ["alice", "bob", "svc", "administrator"]  # longer than 4: alice, administrator
NAMES = ["cmd.exe", "CMD.EXE", "powershell.exe"]


def _event(n: int, **fields: Any) -> dict[str, Any]:
    at = NOW - timedelta(minutes=12) + timedelta(seconds=30 * n)
    event: dict[str, Any] = {
        "_id": f"p{n}",
        "@timestamp": iso(at),
        "event": {"category": "process", "type": "start", "ingested": iso(at + timedelta(seconds=1))},
        "host": {"name": f"h{n % 2}"},
        "user": {"name": USERS[n % 4]},
        "process": {"name": NAMES[n % 3], "pid": 100 + n},
        "destination": {"port": 22 if n % 5 == 0 else 443, "ip": f"10.0.{n}.1"},
    }
    event.update(fields)
    return event


EVENTS = [_event(n) for n in range(16)]
EVENTS += [
    # file events, told apart by event.type (the category override) only
    {**_event(20, _id="f1"), "event": {"category": "process", "type": "file"}},
    {**_event(21, _id="f2"), "event": {"category": "process", "type": "file"}},
    # ingested late: its @timestamp is two hours old, its event.ingested in the window
    _event(22, _id="late", **{"@timestamp": iso(NOW - 120 * MINUTE)}),
    # no event.ingested: the window falls back to @timestamp
    {**_event(23, _id="no-ingested", user={"name": "bob"}), "event": {"category": "process", "type": "start"}},
]
PASSING = [f"p{n}" for n in range(16) if len(USERS[n % 4]) > 4]  # length(user.name) > 4
CMD = [f"p{n}" for n in range(16) if n % 3 in (0, 1)]


def _ids(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in docs)


RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "exact": ('process where process.name : "cmd.exe" and event.type == "start"', {"tiebreaker": "process.pid"}),
    "residual": ('process where length(user.name) > 4 and event.type == "start"', {}),
    "capped": ('process where length(user.name) > 4 and event.type == "start"', {"max_signals": 2}),
    "category": ("file where true", {"extra": 'event_category_override = "event.type"'}),
    "ingested": (
        'process where process.name : ("cmd.exe", "powershell.exe")',
        {"extra": 'timestamp_override = "event.ingested"'},
    ),
    "exceptions": (
        'process where process.name : "cmd.exe" and event.type == "start"',
        {
            "extra": '\n[[rule.exceptions]]\nitem_id = "svc"\nname = "svc"\n\n[[rule.exceptions.entries]]\n'
            'field = "user.name"\ntype = "match"\nvalue = "svc"\n\n[[rule.exceptions]]\nitem_id = "ports"\n'
            'name = "ports"\n\n[[rule.exceptions.entries]]\nfield = "destination.port"\ntype = "list"\n'
            'operator = "included"\nlist = { id = "ports.txt", type = "long" }\n'
        },
    ),
    "building block": (
        'process where process.name == "powershell.exe"',
        {
            "extra": 'building_block_type = "default"\n\n[[rule.severity_mapping]]\nfield = "user.name"\n'
            'operator = "equals"\nvalue = "alice"\nseverity = "critical"\n'
        },
    ),
    "suppressed": (
        'process where process.name : "cmd.exe" and event.type == "start"',
        {"extra": '\n[rule.alert_suppression]\ngroup_by = ["host.name"]\nduration = {value = 1, unit = "h"}\n'},
    ),
    "does not parse": ('process where process.name = "cmd.exe"', {}),
    "unknown field": ("process where nope == 1", {}),
    "nested 10,000 deep": ("process where " + "(" * 10_000 + "true" + ")" * 10_000, {}),
    "a 100,000-value list": (
        "process where process.pid in (" + ",".join(str(n) for n in range(1000, 101_000)) + ")",
        {},
    ),
    "a catastrophic regex": ('process where process.name regex "(a+)+b" or process.name regex "(.*a){25}"', {}),
}
REFUSED = ("does not parse", "unknown field", "nested 10,000 deep", "a 100,000-value list")


@pytest.fixture(scope="module")
def passes(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[JobEnv, dict[str, str], float]]:
    """Every rule run at NOW (paged two events at a time), then at NOW + 1m (read whole by the probes)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        env = sandbox(es, es_url, f"test-{uuid.uuid4().hex[:12]}", tmp_path_factory.mktemp("eqlrules"), monkeypatch)
        use_lists(env)
        assert import_list(env, "ports.txt", "long", ["22"]) == 0
        env.index_events([dict(event) for event in EVENTS], mapping=MAPPING)
        rules = {}
        for name, (query, options) in RULES.items():
            extra = options.get("extra", "")
            if "tiebreaker" in options:
                extra += f'\ntiebreaker_field = "{options["tiebreaker"]}"\ntimestamp_field = "@timestamp"'
            rules[name] = env.write_eql_rule(
                query, name=name, max_signals=options.get("max_signals", 10000), extra=extra
            )
        env.set(page_size="2")
        started = time.monotonic()
        assert env.run("--now", iso(NOW)) == 1  # the refused rules fail the pass
        took = time.monotonic() - started
        yield env, rules, took
        es.options(ignore_status=404).indices.delete_index_template(name=f"{env.alerts}-template")


def _record(env: JobEnv, rule_id: str, index: int = -1) -> dict[str, Any]:
    return env.executions_docs(rule_id)[index]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("exact", CMD),
        ("residual", PASSING),
        ("category", ["f1", "f2"]),
        ("ingested", sorted([f"p{n}" for n in range(16)] + ["f1", "f2", "late", "no-ingested"])),
        ("exceptions", sorted(i for i in CMD if USERS[int(i[1:]) % 4] != "svc" and int(i[1:]) % 5 != 0)),
        ("building block", sorted([f"p{n}" for n in range(16) if n % 3 == 2] + ["f1", "no-ingested"])),
    ],
)
def test_one_alert_per_event_eql_selects(
    passes: tuple[JobEnv, dict[str, str], float], name: str, expected: list[str]
) -> None:
    env, rules, _ = passes
    docs = env.alert_docs(rules[name])
    assert _ids(docs) == sorted(expected)
    record = _record(env, rules[name], 0)
    assert record["execution"]["status"] == "succeeded", record["execution"]
    assert record["metrics"]["alerts_created"] == len(expected)


def test_alerts_carry_kibana_s_eql_rule_fields(passes: tuple[JobEnv, dict[str, str], float]) -> None:
    env, rules, _ = passes
    doc = env.alert_docs(rules["exact"])[0]
    assert doc["kibana.alert.rule.type"] == "eql"
    assert doc["kibana.alert.rule.rule_type_id"] == "siem.eqlRule"
    assert doc["kibana.alert.rule.category"] == "Event Correlation Rule"
    parameters = doc["kibana.alert.rule.parameters"]
    assert parameters["language"] == "eql" and parameters["type"] == "eql"
    assert parameters["query"] == RULES["exact"][0]
    assert (parameters["tiebreaker_field"], parameters["timestamp_field"]) == ("process.pid", "@timestamp")
    assert "event_category_override" not in parameters
    category = env.alert_docs(rules["category"])[0]["kibana.alert.rule.parameters"]
    assert category["event_category_override"] == "event.type"
    assert doc["kibana.alert.reason"].startswith("process event with process ")
    blocks = env.alert_docs(rules["building block"])
    assert {d["kibana.alert.building_block_type"] for d in blocks} == {"default"}
    severities = {d["kibana.alert.ancestors"][0]["id"]: d["kibana.alert.severity"] for d in blocks}
    assert severities["p2"] == "medium" and severities["p8"] == "critical"  # alice: the severity mapping


def test_the_cap_counts_events_that_pass_and_the_next_run_continues(
    passes: tuple[JobEnv, dict[str, str], float],
) -> None:
    env, rules, _ = passes
    capped = rules["capped"]
    first = _ids(env.alert_docs(capped))
    assert first == sorted(PASSING[:2])  # the first two that pass, though others come between them
    record = _record(env, capped, 0)
    assert "maximum alert limit" in " ".join(record["execution"]["warnings"])
    assert record["window"]["searched_to"] < record["window"]["to"]


def test_refused_and_hostile_rules_fail_alone_in_bounded_time(passes: tuple[JobEnv, dict[str, str], float]) -> None:
    env, rules, took = passes
    assert took < 120
    for name in REFUSED:
        record = _record(env, rules[name], 0)
        assert record["execution"]["status"] == "failed", name
        assert "Rule not run, it does not validate" in record["execution"]["errors"][0], name
    errors = {name: _record(env, rules[name], 0)["execution"]["errors"] for name in REFUSED}
    assert "mismatched input '='" in errors["does not parse"][0]
    assert "Unknown column [nope]" in errors["unknown field"][0]
    assert "nesting deeper than 100 levels" in errors["nested 10,000 deep"][0]
    # Elasticsearch refuses more terms than index.max_terms_count (65,536) in its words; validate says so first
    assert "The number of terms [100000] used in the Terms Query" in errors["a 100,000-value list"][0]
    # a regular expression runs as an automaton, in Elasticsearch and on the client: linear time
    regex = _record(env, rules["a catastrophic regex"], 0)
    assert regex["execution"]["status"] == "succeeded", regex["execution"]
    assert env.alert_docs(rules["a catastrophic regex"]) == []


def test_suppression_one_alert_per_group_folded_by_the_next_run(passes: tuple[JobEnv, dict[str, str], float]) -> None:
    env, rules, _ = passes
    rule_id = rules["suppressed"]
    groups = {doc["kibana.alert.suppression.terms"][0]["value"][0]: doc for doc in env.alert_docs(rule_id)}
    per_host = {host: [i for i in CMD if f"h{int(i[1:]) % 2}" == host] for host in ("h0", "h1")}
    assert set(groups) == {"h0", "h1"}
    for host, doc in groups.items():
        assert doc["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": [host]}]  # Kibana's EQL
        assert doc["kibana.alert.suppression.docs_count"] == len(per_host[host]) - 1
        assert doc["kibana.alert.ancestors"][0]["id"] == min(per_host[host], key=lambda i: int(i[1:]))


def test_a_second_pass_over_an_overlapping_window(passes: tuple[JobEnv, dict[str, str], float]) -> None:
    env, rules, _ = passes
    before = {name: _ids(env.alert_docs(rule_id)) for name, rule_id in rules.items()}
    more = _event(30, _id="new")  # a new matching event for every cmd rule, in h0, after the first pass
    more["@timestamp"] = more["event"]["ingested"] = iso(NOW + timedelta(seconds=30))
    more["process"]["name"], more["user"]["name"], more["destination"]["port"] = "cmd.exe", "alice", 443
    env.index_events([more], mapping=MAPPING)
    for name in ("nested 10,000 deep", "a 100,000-value list"):  # parsing 100,000 values takes seconds a pass
        (env.rules_dir / f"{rules[name]}.toml").unlink()
    env.set(page_size="1000")
    assert env.run("--now", iso(NOW + MINUTE)) == 1
    after = {name: _ids(env.alert_docs(rule_id)) for name, rule_id in rules.items()}
    for name in ("exact", "residual", "exceptions", "ingested"):
        assert after[name] == sorted([*before[name], "new"]), name
        assert _record(env, rules[name])["metrics"]["alerts_created"] == 1, name
    assert after["capped"] == sorted(PASSING[:4])  # two more, the next two that pass
    suppressed = env.alert_docs(rules["suppressed"])
    assert len(suppressed) == 2  # the new event folded into h0's open alert
    h0 = next(doc for doc in suppressed if doc["kibana.alert.suppression.terms"][0]["value"] == ["h0"])
    assert h0["kibana.alert.suppression.docs_count"] == len([i for i in CMD if int(i[1:]) % 2 == 0])
    assert _record(env, rules["suppressed"])["metrics"]["alerts_updated"] == 1
