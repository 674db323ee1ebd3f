"""Exception entries of type list through whole runs: small lists as query clauses, large or other lists
applied to each page, ``included`` and ``excluded``, mixed items, missing lists, Kibana's own documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import helpers

from job.lists.documents import ITEM_MAPPING, LIST_MAPPING
from tests.integration.run.conftest import ECS_EVENT_MAPPING, JobEnv, cred_event, iso
from tests.integration.run.test_lists_command import import_list, use_lists

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def list_item(item_id: str, *entries: tuple[str, str, str, str], extra: str = "") -> str:
    """An inline exception item with ``list`` entries (field, list id, list type, operator) and more TOML."""
    text = f'\n[[rule.exceptions]]\nitem_id = "{item_id}"\nname = "{item_id} item"\n'
    for field, list_id, list_type, operator in entries:
        text += (
            f'\n[[rule.exceptions.entries]]\nfield = "{field}"\ntype = "list"\noperator = "{operator}"\n'
            f'list = {{ id = "{list_id}", type = "{list_type}" }}\n'
        )
    return text + extra


def _event(doc_id: str, **fields: Any) -> dict[str, Any]:
    return cred_event(NOW - timedelta(minutes=2), _id=doc_id, **fields)


EVENTS = [
    _event("scanner", source={"ip": "10.0.0.5"}, process={"name": "nmap.exe"}, destination={"port": 22}),
    _event("cidr", source={"ip": "192.168.7.7"}, process={"name": "ssh.exe"}, destination={"port": 3389}),
    _event("single", source={"ip": "172.16.0.1"}, process={"name": "psexec.exe"}, destination={"port": 445}),
    _event("outside", source={"ip": "8.8.8.8"}, process={"name": "cmd.exe"}, destination={"port": 443}),
    _event("no-ip", process={"name": "powershell.exe"}, message="mimikatz-INVOKE"),
]
ALL = sorted(event["_id"] for event in EVENTS)


def _alerted(job_env: JobEnv, rule_id: str) -> list[str]:
    return sorted(doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id))


def _seed(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    use_lists(job_env)
    assert import_list(job_env, "ranges.txt", "ip_range", ["10.0.0.1-10.0.0.9", "192.168.0.0/16", "172.16.0.1"]) == 0
    many = [f"10.200.{n // 256}.{n % 256}" for n in range(200)] + ["10.0.0.1-10.0.0.9", "192.168.0.0/16"]
    assert import_list(job_env, "many-ranges.txt", "ip_range", many) == 0  # 201 dash ranges: per page
    assert import_list(job_env, "tools.txt", "keyword", ["nmap.exe", "psexec.exe"]) == 0
    assert import_list(job_env, "ports.txt", "long", ["22", "445"]) == 0
    assert import_list(job_env, "phrases.txt", "text", ["Invoke Mimikatz now", "unrelated words"]) == 0
    capsys.readouterr()
    job_env.index_events([dict(event) for event in EVENTS], mapping=ECS_EVENT_MAPPING)


CASES = [
    # (name, exception entries, events that alert)
    ("ip_range clause, included", [("source.ip", "ranges.txt", "ip_range", "included")], ["no-ip", "outside"]),
    ("ip_range clause, excluded", [("source.ip", "ranges.txt", "ip_range", "excluded")], ["cidr", "scanner", "single"]),
    (
        "ip_range per page, included",
        [("source.ip", "many-ranges.txt", "ip_range", "included")],
        ["no-ip", "outside", "single"],
    ),
    ("ip_range per page, excluded", [("source.ip", "many-ranges.txt", "ip_range", "excluded")], ["cidr", "scanner"]),
    ("keyword clause, included", [("process.name", "tools.txt", "keyword", "included")], ["cidr", "no-ip", "outside"]),
    ("keyword clause, excluded", [("process.name", "tools.txt", "keyword", "excluded")], ["scanner", "single"]),
    ("long per page, included", [("destination.port", "ports.txt", "long", "included")], ["cidr", "no-ip", "outside"]),
    ("long per page, excluded", [("destination.port", "ports.txt", "long", "excluded")], ["scanner", "single"]),
    ("text per page, included", [("message", "phrases.txt", "text", "included")], sorted(set(ALL) - {"no-ip"})),
    (
        "two entries are ANDed",
        [("process.name", "tools.txt", "keyword", "included"), ("destination.port", "ports.txt", "long", "included")],
        ["cidr", "no-ip", "outside"],
    ),
    (
        # Dropped: source.ip in the ranges and destination.port not in the ports (only "cidr").
        "clause and per-page entries together",
        [("source.ip", "ranges.txt", "ip_range", "included"), ("destination.port", "ports.txt", "long", "excluded")],
        ["no-ip", "outside", "scanner", "single"],
    ),
]


def test_value_list_exceptions(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    """One rule per case, all in one run (the lists are read once for all of them), two hits per page."""
    _seed(job_env, capsys)
    job_env.set(page_size="2")
    rules = {name: job_env.write_rule(name=name, extra=list_item("lists", *entries)) for name, entries, _ in CASES}
    assert job_env.run("--now", iso(NOW)) == 0
    for name, _, alerted in CASES:
        assert _alerted(job_env, rules[name]) == alerted, name
        [execution] = job_env.executions_docs(rules[name])
        assert execution["execution"]["status"] == "succeeded", (name, execution)


def test_a_large_list_and_a_mixed_item(job_env: JobEnv) -> None:
    """65,537 items: applied per page when it is the item's only entry; not applied (and reported) when it is
    mixed with another entry, where Kibana drops the item without a word."""
    use_lists(job_env)
    job_env.index_events([dict(event) for event in EVENTS], mapping=ECS_EVENT_MAPPING)
    hashes = [f"{n:064x}" for n in range(65_536)] + ["nmap.exe"]
    assert import_list(job_env, "big.txt", "keyword", hashes) == 0
    mixed = list_item(
        "mixed",
        ("process.name", "big.txt", "keyword", "included"),
        extra='\n[[rule.exceptions.entries]]\nfield = "user.name"\ntype = "match"\nvalue = "alice"\n',
    )
    rule_id = job_env.write_rule(extra=list_item("big", ("process.name", "big.txt", "keyword", "included")) + mixed)
    assert job_env.run("--now", iso(NOW)) == 0
    assert _alerted(job_env, rule_id) == sorted(set(ALL) - {"scanner"})
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert (
        "The following exceptions won't be applied to rule execution: mixed item" in execution["execution"]["warnings"]
    )


def test_a_missing_list_fails_the_rule_with_kibanas_message(job_env: JobEnv) -> None:
    use_lists(job_env)
    job_env.index_events([dict(event) for event in EVENTS], mapping=ECS_EVENT_MAPPING)
    rule_id = job_env.write_rule(extra=list_item("gone", ("source.ip", "deleted.txt", "ip", "included")))
    other = job_env.write_rule(name="Other rule")
    assert job_env.run("--now", iso(NOW)) == 1
    executions = {doc["rule"]["rule_id"]: doc for doc in job_env.executions_docs()}
    assert executions[rule_id]["execution"]["status"] == "failed"
    assert executions[rule_id]["execution"]["errors"] == [
        'An error occurred during rule execution: message: "Cannot find list: "deleted.txt""'
    ]
    assert executions[other]["execution"]["status"] == "succeeded"  # one rule's list never stops the others
    assert _alerted(job_env, rule_id) == []


def test_lists_written_by_kibana_are_read(job_env: JobEnv) -> None:
    """Documents exactly as Kibana's lists plugin writes them, in indices named like Kibana's."""
    lists, items = f"{job_env.prefix}-.lists-default", f"{job_env.prefix}-.items-default"
    job_env.set(lists_index=lists, list_items_index=items)
    job_env.es.indices.create(index=lists, mappings=LIST_MAPPING)
    job_env.es.indices.create(index=items, mappings=ITEM_MAPPING)
    stamp = {"created_at": "2026-04-01T00:00:00.000Z", "created_by": "elastic", "updated_by": "elastic"}
    job_env.es.index(
        index=lists,
        id="scanners",
        refresh=True,
        document={
            "@timestamp": "2026-04-01T00:00:00.000Z",
            **stamp,
            "updated_at": "2026-04-01T00:00:00.000Z",
            "name": "Scanners",
            "description": "Vulnerability scanners",
            "type": "ip_range",
            "tie_breaker_id": "6a1f6f4c-0b3e-4d3a-8f7e-2b1d9f0c0001",
            "immutable": False,
            "version": 1,
            "serializer": None,
            "deserializer": None,
        },
    )
    values = [{"gte": "10.0.0.1", "lte": "10.0.0.9"}, "192.168.0.0/16"]
    actions = [
        {
            "_op_type": "create",
            "_index": items,
            "_source": {
                "@timestamp": "2026-04-01T00:00:00.000Z",
                **stamp,
                "updated_at": "2026-04-01T00:00:00.000Z",
                "list_id": "scanners",
                "tie_breaker_id": f"6a1f6f4c-0b3e-4d3a-8f7e-2b1d9f0c010{n}",
                "deserializer": None,
                "serializer": None,
                "ip_range": value,
            },
        }
        for n, value in enumerate(values)
    ]
    helpers.bulk(job_env.es, actions, refresh=True)
    job_env.index_events([dict(event) for event in EVENTS], mapping=ECS_EVENT_MAPPING)
    rule_id = job_env.write_rule(extra=list_item("scan", ("source.ip", "scanners", "ip_range", "included")))
    assert job_env.run("--now", iso(NOW)) == 0
    assert _alerted(job_env, rule_id) == ["no-ip", "outside", "single"]
