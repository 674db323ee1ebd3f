"""Hostile events mixed into one page with good ones, on the real node: every good event gets its alert,
every hostile one ends as a correct alert or a dead-letter entry, the window advances, and the next run
is clean."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.alerts.ids import alert_id
from job.cli import main as cli_main
from tests.faultproxy import FaultProxy, bulk_items_answer, refusing_bulk
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MOMENT = NOW - timedelta(minutes=3)
NESTING_LIMIT = 1000  # Elasticsearch's document nesting limit (the root object counts as one level)

EVENT_MAPPING: dict[str, Any] = {
    "dynamic": False,  # everything else is kept in _source unparsed, at any depth up to the limit
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"kind": {"type": "keyword"}, "action": {"type": "keyword"}}},
    },
}


def _deep(depth: int, *, array: bool = False) -> str:
    """JSON text of a value nested ``depth`` levels (objects or arrays)."""
    return ("[" * depth + "1" + "]" * depth) if array else ('{"a":' * depth + "1" + "}" * depth)


def _event_json(**raw_fields: str) -> str:
    """A matching event as JSON text, with extra fields given as raw JSON (values Python cannot write)."""
    base = json.dumps(cred_event(MOMENT))[:-1]
    return base + "".join(f",{json.dumps(name)}:{value}" for name, value in raw_fields.items()) + "}"


# id -> (raw JSON of the event, expected outcome). Outcomes: "alert" (a correct alert is written) or
# "dead letter" (no alert; one dead-letter entry).
HOSTILE: dict[str, tuple[str, str]] = {
    "object-500-deep": (_event_json(x=_deep(500)), "alert"),
    "object-999-deep": (_event_json(x=_deep(NESTING_LIMIT - 1)), "alert"),  # the deepest the node accepts
    "array-999-deep": (_event_json(x=_deep(NESTING_LIMIT - 1, array=True)), "alert"),
    "event-object-998-deep": (
        _event_json()[:-1].replace('"category": "process"}', '"category": "process", "x": ' + _deep(997) + "}")
        + "}",
        "alert",
    ),
    "infinity": (_event_json(x="1e400", y="[1, -1e400, 2]", source='{"port": 1e400, "ip": "10.0.0.1"}'), "alert"),
    "huge-string": (_event_json(message=json.dumps("A" * 5_000_000)), "alert"),
    "five-thousand-fields": (_event_json(wide=json.dumps({f"f{i}": i for i in range(5000)})), "alert"),
    "timestamp-array": (
        _event_json().replace(json.dumps(iso(MOMENT)), json.dumps([iso(MOMENT), iso(MOMENT + timedelta(seconds=1))])),
        "alert",
    ),
    "forged-nested": (
        _event_json(
            kibana='{"alert": {"workflow_status": "closed", "severity": "low", "rule": {"name": "x"}}}',
            signal='{"status": "closed", "rule": {"id": "forged"}}',
        ),
        "alert",
    ),
    "forged-dotted": (
        _event_json(**{
            "kibana.alert.workflow_status": '"closed"',
            "kibana.alert.rule.rule_id": '"forged"',
            "signal.status": '"closed"',
            "kibana.space_ids": '["other"]',
        }),
        "alert",
    ),
    "unicode": (
        _event_json(
            lone='"\\ud800 \\udfff"',
            controls='"nul\\u0000 bell\\u0007 esc\\u001b[31m"',
            bidi='"\\u202egnp.exe"',
            emoji='"\\ud83d\\ude00"',
            nonchar='"\\uffff\\ufffe"',
        )[:-1]
        + ',"\\ufeffbom":1}',
        "alert",
    ),
    # Elasticsearch 8.19 stores a lone surrogate in a field name; 9.x refuses the event at ingest.
    "surrogate-key": (_event_json()[:-1] + ',"\\udc00key":"a lone surrogate in a key"}', "alert"),
    "refused": (_event_json(), "dead letter"),  # Elasticsearch refuses its alert (through the proxy)
}
INVALID_UTF8_ID = "invalid-utf8"  # raw bytes Elasticsearch keeps as they came: an overlong NUL
INVALID_UTF8 = _event_json().encode()[:-1] + b',"raw":"\xc0\x80"}'


def _put(es_url: str, index: str, doc_id: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"{es_url}/{index}/_doc/{doc_id}", data=body, method="PUT", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, dict | list) and value:
        value = value["a"] if isinstance(value, dict) else value[0]
        depth += 1
    return depth


# Events a release refuses at ingest (so no rule ever sees them there), by major version.
REFUSED_AT_INGEST = {"8": frozenset(), "9": frozenset({"surrogate-key"})}


def test_hostile_events_in_a_page_of_good_ones(job_env: JobEnv, es_url: str, es_version: str) -> None:
    rule_id = job_env.write_rule()
    index = job_env.events_index()
    job_env.es.indices.create(index=index, mappings=EVENT_MAPPING)
    # The node's own limit: one level deeper than the deepest hostile event is refused at ingest.
    assert _put(es_url, index, "too-deep", _event_json(x=_deep(NESTING_LIMIT)).encode()) == 400
    refused_at_ingest = REFUSED_AT_INGEST[es_version.split(".")[0]]
    for doc_id, (body, _) in HOSTILE.items():
        assert _put(es_url, index, doc_id, body.encode()) == (400 if doc_id in refused_at_ingest else 201), doc_id
    assert _put(es_url, index, INVALID_UTF8_ID, INVALID_UTF8) == 201
    job_env.index_events([cred_event(MOMENT, _id=f"good-{i}") for i in range(40)], mapping=EVENT_MAPPING)

    refused_alert = alert_id(index, "refused", rule_id, "default")
    with FaultProxy(es_url) as proxy:
        proxy.fail(r"^/_bulk", times=10, status=200, respond=refusing_bulk(es_url, {refused_alert}))
        job_env.set(es_hosts=proxy.url)
        assert job_env.run("--now", iso(NOW)) == 1  # the dead letter makes the exit code 1
    job_env.set(es_hosts=es_url)

    alerts = {doc["kibana.alert.ancestors"][0]["id"]: doc for doc in job_env.alert_docs(rule_id)}
    expected_alerts = {f"good-{i}" for i in range(40)} | {INVALID_UTF8_ID}
    expected_alerts |= {
        doc_id for doc_id, (_, outcome) in HOSTILE.items() if outcome == "alert" and doc_id not in refused_at_ingest
    }
    assert set(alerts) == expected_alerts

    assert _depth(alerts["object-500-deep"]["x"]) == 500
    assert _depth(alerts["object-999-deep"]["x"]) == NESTING_LIMIT - 1
    assert _depth(alerts["array-999-deep"]["x"]) == NESTING_LIMIT - 1
    [original] = [k for k in alerts["event-object-998-deep"] if k.startswith("kibana.alert.original_event.x.")]
    assert original.count(".") == 3 + 997
    infinity = alerts["infinity"]
    assert "x" not in infinity and infinity["y"] == [1, 2] and infinity["source"] == {"ip": "10.0.0.1"}
    assert len(alerts["huge-string"]["message"]) == 5_000_000
    assert len(alerts["five-thousand-fields"]["wide"]) == 5000
    assert alerts["timestamp-array"]["@timestamp"] == alerts["good-0"]["@timestamp"]  # the alert time
    for forged in ("forged-nested", "forged-dotted"):
        alert = alerts[forged]
        assert alert["kibana.alert.workflow_status"] == "open"
        assert alert["kibana.alert.rule.rule_id"] == rule_id
        assert alert["kibana.space_ids"] == ["default"]
        assert "kibana" not in alert and "signal" not in alert and "signal.status" not in alert
    event = job_env.es.get(index=index, id="unicode")["_source"]
    unicode_alert = alerts["unicode"]
    for field in ("lone", "controls", "bidi", "emoji", "nonchar", "\ufeffbom"):
        assert unicode_alert[field] == event[field], field
    if "surrogate-key" not in refused_at_ingest:
        assert alerts["surrogate-key"]["\udc00key"] == "a lone surrogate in a key"
    assert unicode_alert["lone"] == "\ud800 \udfff"
    assert alerts[INVALID_UTF8_ID]["raw"] == "\udcc0\udc80"  # each invalid byte kept as an escape

    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "partial failure"
    assert execution["window"]["searched_to"] == iso(NOW)  # the window advanced past the dead letter
    assert execution["metrics"]["dead_lettered"] == 1
    assert execution["metrics"]["alerts_created"] == len(expected_alerts)
    assert execution["metrics"]["pages"] == 1

    [entry] = [hit["_source"] for hit in job_env.es.search(index=job_env.dead_letters)["hits"]["hits"]]
    assert entry["event"] == {"index": index, "id": "refused"}
    assert entry["rule"]["rule_id"] == rule_id
    assert entry["space_id"] == "default"
    assert entry["execution"]["uuid"] == execution["execution"]["uuid"]
    assert entry["stage"] == "index"
    assert entry["reason"] == "HTTP 400 document_parsing_exception: refused by the test proxy over two lines"
    datetime.fromisoformat(entry["@timestamp"].replace("Z", "+00:00"))

    # The next run is clean: everything in its look-back already has an alert or an entry.
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0
    second = job_env.executions_docs(rule_id)[-1]
    assert second["execution"]["status"] == "succeeded"
    assert second["metrics"]["dead_letters_skipped"] == 1
    assert second["metrics"]["alerts_created"] == 0
    assert job_env.es.count(index=job_env.dead_letters)["count"] == 1


def test_deadletter_list_and_retry_round_trip(
    job_env: JobEnv, es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rule_id = job_env.write_rule()
    other_rule = job_env.write_rule(name="Other rule")
    job_env.index_events(
        [cred_event(MOMENT, _id=f"e{i}") for i in range(3)] + [cred_event(MOMENT, _id="\u202eevil\x1b[2J")]
    )
    with FaultProxy(es_url) as proxy:
        proxy.fail(r"^/_bulk", times=2, status=200, respond=bulk_items_answer(400, "mapper_parsing_exception"))
        job_env.set(es_hosts=proxy.url)
        assert job_env.run("--now", iso(NOW)) == 1
    job_env.set(es_hosts=es_url)
    assert job_env.alert_docs() == []
    capsys.readouterr()

    assert cli_main(["deadletter", "list", "--rule", rule_id]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["time", "rule", "event", "(index/id)", "reason"]
    assert len(table) == 1 + 4 + 1 and table[-1] == f"4 dead-lettered events in {job_env.dead_letters}"
    assert all(rule_id in line for line in table[1:5])
    assert any("\\u202eevil\\x1b[2J" in line for line in table)  # shown escaped, never sent to the terminal
    assert not any("\x1b" in line or "\u202e" in line for line in table)

    assert cli_main(["deadletter", "list", "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(entries) == 8
    assert {entry["rule"]["rule_id"] for entry in entries} == {rule_id, other_rule}
    assert all(entry["stage"] == "index" and entry["reason"].startswith("HTTP 400") for entry in entries)

    # An entry whose alert already exists is only deleted; one whose rule file is gone stays.
    job_env.run("--rule", rule_id, "--now", iso(NOW + timedelta(minutes=1)))  # skips them: still dead letters
    (job_env.rules_dir / f"{other_rule}.toml").unlink()
    already = [entry for entry in entries if entry["rule"]["rule_id"] == rule_id][0]
    existing_alert = job_env.es.get(index=already["event"]["index"], id=already["event"]["id"])["_source"]
    job_env.es.index(index=job_env.alerts, id=already["alert_id"], document={"placeholder": existing_alert["user"]})
    assert cli_main(["deadletter", "retry"]) == 1
    out = capsys.readouterr().out
    assert "3 alerts created, 1 already existed, 4 entries still failing" in out
    assert out.count(f"still failing: rule {other_rule}") == 4
    assert "the rule is not in DETECTION_RULES_DIR" in out
    remaining = [json.loads(line) for line in _list_json(capsys)]
    assert {entry["rule"]["rule_id"] for entry in remaining} == {other_rule}
    assert {entry["reason"] for entry in remaining} == {"the rule is not in DETECTION_RULES_DIR"}
    alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)}
    assert alerted == {"e0", "e1", "e2", "\u202eevil\x1b[2J"} - {already["event"]["id"]}
    for doc in job_env.alert_docs(rule_id):
        assert doc["kibana.alert.rule.execution.uuid"] == job_env.executions_docs(rule_id)[0]["execution"]["uuid"]

    # With the rule file back, the rest succeed and the command exits 0.
    job_env.write_rule(rule_id=other_rule, name="Other rule")
    assert cli_main(["deadletter", "retry", "--rule", other_rule]) == 0
    assert "4 alerts created, 0 already existed, 0 entries still failing" in capsys.readouterr().out
    assert _list_json(capsys) == []


def _list_json(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert cli_main(["deadletter", "list", "--json"]) == 0
    return capsys.readouterr().out.splitlines()


def test_an_event_that_cannot_be_dead_lettered_keeps_the_window_open(job_env: JobEnv, es_url: str) -> None:
    rule_id = job_env.write_rule()
    job_env.index_events([cred_event(MOMENT, _id="stuck")])
    with FaultProxy(es_url) as proxy:
        proxy.reject_bulk_items(times=1, status=400, kind="mapper_parsing_exception")
        proxy.fail(rf"^/{job_env.dead_letters}/_bulk", times=100, status=503)
        job_env.set(es_hosts=proxy.url, retry_attempts="2")
        assert job_env.run("--now", iso(NOW)) == 1
    job_env.set(es_hosts=es_url)
    [execution] = job_env.executions_docs(rule_id)
    assert execution["execution"]["status"] == "failed"
    assert "could not write 1 dead-letter entries" in execution["execution"]["message"]
    assert execution["window"]["searched_to"] is None
    assert job_env.run("--now", iso(NOW + timedelta(minutes=10))) == 0  # searched again: now it gets its alert
    assert [doc["kibana.alert.ancestors"][0]["id"] for doc in job_env.alert_docs(rule_id)] == ["stuck"]
    assert str(uuid.UUID(execution["execution"]["uuid"])) == execution["execution"]["uuid"]


def test_deadletter_retry_that_cannot_write_says_so_in_one_line(
    job_env: JobEnv, es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job_env.write_rule()
    job_env.index_events([cred_event(MOMENT, _id="e1")])
    with FaultProxy(es_url) as proxy:
        proxy.fail(r"^/_bulk", times=1, status=200, respond=bulk_items_answer(400, "mapper_parsing_exception"))
        job_env.set(es_hosts=proxy.url)
        assert job_env.run("--now", iso(NOW)) == 1
        capsys.readouterr()
        # The alert is refused again, and its entry cannot be rewritten: reported, never a traceback.
        proxy.fail(r"^/_bulk", times=1, status=200, respond=bulk_items_answer(400, "mapper_parsing_exception"))
        proxy.fail(rf"^/{job_env.dead_letters}/_bulk", times=1, status=200, respond=bulk_items_answer(400, "x"))
        assert cli_main(["deadletter", "retry"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # the last line: log lines come first
    assert err.startswith("detection-job: deadletter retry: could not write 1 dead-letter entries: HTTP 400 x")
    assert "\n" not in err and "Traceback" not in err
