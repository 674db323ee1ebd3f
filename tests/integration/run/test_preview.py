"""``detection-job preview``: a rule over a past range exactly as a backfill runs it, writing nothing.

The oracle is the job itself on the real node: a backfill of the same rule over the same range creates
exactly the documents preview printed, but for the fields a run stamps with its own clock and execution id
(:data:`RUN_TIME_FIELDS`). The variants cover what changes the documents or which events alert: overrides and
exceptions, the cap, and alert suppression per execution and over a duration (folding across windows).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from job.cli import main as cli_main
from job.ruletypes.registry import TYPES
from tests.integration.run.conftest import EVENT_MAPPING, JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

START = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)  # 3 windows of the rules' 10m interval, each with a 5m look-back
RANGE = ["--from", iso(START), "--to", iso(END)]
# What a run stamps with its own clock and execution: the only fields in which preview's documents differ.
GROUP_ID, BUILDING_BLOCK = "kibana.alert.group.id", "kibana.alert.building_block_type"
RUN_TIME_FIELDS = (
    "@timestamp",
    "kibana.alert.rule.execution.uuid",
    "kibana.alert.rule.execution.timestamp",
    "kibana.alert.intended_timestamp",
    "kibana.alert.start",
    "kibana.alert.last_detected",
)
OVERRIDES = """
rule_name_override = "rule.name"

[[rule.severity_mapping]]
field = "event.severity"
operator = "equals"
value = "99"
severity = "critical"
"""
EXCEPTION = """
[[rule.exceptions]]
item_id = "no-bob"
name = "bob is the backup account"

  [[rule.exceptions.entries]]
  field = "user.name"
  type = "match"
  operator = "included"
  value = "bob"
"""
PER_EXECUTION = '\n[rule.alert_suppression]\ngroup_by = ["host.name"]\n'
ONE_HOUR = PER_EXECUTION + 'duration = {value = 1, unit = "h"}\n'
THRESHOLD = '\n[rule.threshold]\nfield = ["host.name"]\nvalue = 2\n'
NEW_TERMS = (
    '\n[rule.new_terms]\nfield = "new_terms_fields"\nvalue = ["rule.name"]\n'
    '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "now-1h"\n'
)
# Kibana suppresses threshold rules over a duration only (no group_by: the threshold's own groups).
ONE_HOUR_THRESHOLD = '\n[rule.alert_suppression]\nduration = {value = 1, unit = "h"}\n'
NEW_TERMS_BY_HOST = PER_EXECUTION
EQL_EVENTS = 'any where event.action == "cred_theft_event" and user.name == "alice"'
EQL_SEQUENCE = 'sequence by host.name [any where user.name == "alice"] [any where user.name == "bob"]'
# name: (the rule's type, its extra TOML (an EQL rule: its query), its max_signals). Every type the job runs
# must be among them: a type that previews differently from how it backfills is what this file is for.
VARIANTS: dict[str, tuple[str, str, int]] = {
    "overrides and an exception": ("query", OVERRIDES + EXCEPTION, 10000),
    "cap": ("query", "", 2),
    "suppressed per execution": ("query", PER_EXECUTION, 10000),
    "suppressed for an hour": ("query", ONE_HOUR, 10000),
    "eql events": ("eql", EQL_EVENTS, 10000),
    "eql sequences": ("eql", EQL_SEQUENCE, 10000),
    "threshold": ("threshold", THRESHOLD, 10000),  # groups kept in its state from one window to the next
    "threshold suppressed for an hour": ("threshold", THRESHOLD + ONE_HOUR_THRESHOLD, 10000),
    "new terms": ("new_terms", NEW_TERMS, 10000),
    "new terms suppressed per execution": ("new_terms", NEW_TERMS + NEW_TERMS_BY_HOST, 10000),
}


def write_variant(job_env: JobEnv, name: str, index: str) -> str:
    kind, extra, max_signals = VARIANTS[name]
    if kind == "eql":
        return job_env.write_eql_rule(extra, name=name, max_signals=max_signals, index=index)
    rule_id = job_env.write_rule(name=name, extra=extra, max_signals=max_signals, index=index)
    path = job_env.rules_dir / f"{rule_id}.toml"
    path.write_text(path.read_text().replace('type = "query"', f'type = "{kind}"'))
    return rule_id


# Types whose rules run only on a node of their own: previewed against their backfills beside their other tests.
PREVIEWED_ELSEWHERE = {"esql": "tests/integration/esql/test_esql_preview.py"}


def test_every_rule_type_that_runs_is_previewed_here() -> None:
    missing = sorted(set(TYPES) - {kind for kind, _, _ in VARIANTS.values()} - set(PREVIEWED_ELSEWHERE))
    assert missing == [], f"add rules of {missing} to the variants of this file"


def _events() -> Iterator[dict[str, Any]]:
    """Every 2 minutes from 10 minutes before the range to 5 after it: three hosts, two users, a few that do
    not match, some with overrides."""
    for n in range(23):
        moment = START - timedelta(minutes=10) + timedelta(minutes=2 * n)
        event = cred_event(
            moment, _id=f"e{n:02d}", host={"name": f"ws-{n % 3}"}, user={"name": ["alice", "bob"][n % 2]}
        )
        if n % 5 == 0:
            event["event"]["action"] = "process_started"  # no match
        if n % 7 == 0:
            event["event"]["severity"] = 99
            event["rule"] = {"name": f"Renamed {n}"}
        yield event


@pytest.fixture(scope="module")
def events_index(es: Elasticsearch) -> Iterator[str]:
    """The events every test of this module searches (indexed once)."""
    index = f"preview-events-{uuid.uuid4().hex[:8]}"
    es.indices.create(index=index, mappings=EVENT_MAPPING)
    actions = [{"_index": index, "_id": event.pop("_id"), "_source": event} for event in _events()]
    helpers.bulk(es, actions, refresh=True)
    yield index
    es.indices.delete(index=index)


def json_lines(text: str) -> dict[str, dict[str, Any]]:
    documents = [json.loads(line) for line in text.splitlines()]
    assert all(set(document) == {"_id", "_source"} for document in documents)
    return {document["_id"]: document["_source"] for document in documents}


def stable(source: dict[str, Any]) -> dict[str, Any]:
    """The document without the fields a run stamps itself; a sequence's shell alert also takes its
    ``kibana.alert.original_time`` from the alert time (its first block's ``@timestamp``), as Kibana's does."""
    shell = GROUP_ID in source and BUILDING_BLOCK not in source
    skipped = (*RUN_TIME_FIELDS, *(["kibana.alert.original_time"] if shell else []))
    return {key: value for key, value in source.items() if key not in skipped}


def test_preview_prints_the_documents_a_backfill_of_the_range_creates(
    job_env: JobEnv, events_index: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every variant's rule previewed in one call, then each backfilled over the same range (one set of indices:
    the alerts of each rule are told apart by their rule_id)."""
    rules = {write_variant(job_env, name, events_index): name for name in VARIANTS}
    assert cli_main(["preview", *rules, "--json", *RANGE]) == 0
    out, err = capsys.readouterr()
    previewed: dict[str, dict[str, dict[str, Any]]] = {rule_id: {} for rule_id in rules}
    for doc_id, source in json_lines(out).items():
        previewed[source["kibana.alert.rule.rule_id"]][doc_id] = source
    for rule_id, name in rules.items():
        assert f"preview:   alerts        {len(previewed[rule_id])} would be created" in err, name
    for index in (job_env.alerts, job_env.executions, job_env.dead_letters):
        assert not job_env.es.indices.exists(index=index), f"preview created {index}"

    for rule_id, name in rules.items():
        capped = VARIANTS[name][2] == 2
        assert cli_main(["backfill", "--rule", rule_id, *RANGE]) == (1 if capped else 0), name  # 1: stopped at caps
        created = {doc.pop("_id"): doc for doc in job_env.alert_docs(rule_id)}
        assert previewed[rule_id] and sorted(previewed[rule_id]) == sorted(created), name
        for doc_id, source in created.items():
            assert stable(previewed[rule_id][doc_id]) == stable(source), (name, doc_id)
            assert set(previewed[rule_id][doc_id]) == set(source), (name, doc_id)
        capsys.readouterr()

        # Again, now that the alerts exist: each is a duplicate of an existing alert (a suppressed group's events
        # are counted already, so it makes no alert to be a duplicate of); nothing new but, under the cap, the
        # events the caps left out, as a second backfill would.
        assert cli_main(["preview", rule_id, *RANGE]) == 0
        out = capsys.readouterr().out
        assert ("  alerts        0 would be created" in out) != capped, name
        # Each event, and each sequence (its shell and blocks), is found again: a duplicate of its alert. A
        # suppressed group's events are counted already, so it makes no would-be alert (groups of the other
        # aggregating types are their types' business).
        if VARIANTS[name][0] in ("query", "eql"):
            existing = 0 if "suppressed" in name else len(created)
            assert f"  duplicates    {existing} would-be alerts exist already" in out, name


def test_a_scheduled_run_creates_what_preview_printed(
    job_env: JobEnv, events_index: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scheduled pass (rules in a batch, first pages in one _msearch, small runs written together) builds
    the documents preview builds, for the one window a run at END searches."""
    rule_id = job_env.write_rule(extra=OVERRIDES, index=events_index)
    assert cli_main(["preview", rule_id, "--json", "--from", iso(END - timedelta(minutes=10)), "--to", iso(END)]) == 0
    previewed = json_lines(capsys.readouterr().out)
    assert job_env.run("--now", iso(END)) == 0
    created = {doc.pop("_id"): doc for doc in job_env.alert_docs(rule_id)}
    assert previewed and sorted(previewed) == sorted(created)
    assert all(stable(previewed[doc_id]) == stable(source) for doc_id, source in created.items())


def test_the_table_counts_tops_and_warns_and_the_limit_lists(
    job_env: JobEnv, events_index: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rule_id = job_env.write_rule(max_signals=3, index=events_index)
    assert cli_main(["preview", rule_id, *RANGE, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].endswith("3 of 3 windows of 10m, look-back 5m00s")
    assert "  alerts        9 would be created" in lines  # 3 per window: the cap
    assert [line for line in lines if line.startswith("  max signals")] == [
        "  max signals   hit in 3 windows: This rule reached the maximum alert limit for the rule execution. "
        "Some alerts were not created."
    ]
    assert any(line.startswith("  host.name     ws-") for line in lines)
    assert {"  user.name     alice (5), bob (4)", "  user.name     bob (5), alice (4)"} & set(lines)
    assert "  process.name  lsass-reader.exe (9)" in lines
    assert "  the first 2 would-be alerts:" in lines
    assert lines[-1].strip().startswith("20")  # an original time
    assert cli_main(["preview", rule_id, *RANGE, "--json", "--limit", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_folds_into_an_existing_alert_are_reported_and_not_written(
    job_env: JobEnv, events_index: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rule_id = job_env.write_rule(extra=ONE_HOUR, index=events_index)
    half = START + timedelta(minutes=20)
    assert cli_main(["backfill", "--rule", rule_id, "--from", iso(START), "--to", iso(half)]) == 0
    before = {doc["_id"]: doc for doc in job_env.alert_docs(rule_id)}
    assert len(before) == 3  # one per host
    seq = {
        hit["_id"]: hit["_seq_no"]
        for hit in job_env.es.search(index=job_env.alerts, seq_no_primary_term=True)["hits"]["hits"]
    }
    capsys.readouterr()
    assert cli_main(["preview", rule_id, "--from", iso(half), "--to", iso(END), "--json"]) == 0
    out, err = capsys.readouterr()
    assert out == ""  # every group folds into its open alert: no new alert
    assert "3 existing alerts would take in later events" in err
    after = job_env.es.search(index=job_env.alerts, seq_no_primary_term=True)["hits"]["hits"]
    assert {hit["_id"]: hit["_seq_no"] for hit in after} == seq  # untouched


MACHINE_LEARNING = """\
[rule]
name = "ml"
rule_id = "ml"
type = "machine_learning"
description = "x"
risk_score = 1
severity = "low"
anomaly_threshold = 50
machine_learning_job_id = "job"
"""


@pytest.mark.parametrize(
    ("case", "code", "said"),
    [
        ("not TOML", 2, "not previewed: {bad}:1: invalid TOML"),
        ("machine learning", 2, "not previewed: {bad}: machine_learning rules alert on the results"),
        ("KQL syntax error", 2, "not previewed: {bad}:"),
        ("unknown value list", 1, "FAILED"),
        ("no such rule", 2, "not previewed: no-such-rule: no such rule file, and no rule with this rule_id"),
    ],
)
def test_exit_codes_and_the_other_rules_still_preview(
    job_env: JobEnv, events_index: str, capsys: pytest.CaptureFixture[str], case: str, code: int, said: str
) -> None:
    good = job_env.write_rule(name="good", index=events_index)
    bad = job_env.rules_dir / "bad.toml"
    wanted = [good, str(bad)]
    if case == "not TOML":
        bad.write_text("[rule\n")
    elif case == "machine learning":
        bad.write_text(MACHINE_LEARNING)
    elif case == "KQL syntax error":
        bad = job_env.rules_dir / f"{job_env.write_rule(query='event.action:(', index=events_index)}.toml"
        wanted[1] = str(bad)
    elif case == "unknown value list":
        extra = '\n[[rule.exceptions]]\nitem_id = "l"\nname = "l"\n[[rule.exceptions.entries]]\nfield = "user.name"\n'
        extra += 'type = "list"\noperator = "included"\nlist = { id = "nowhere.txt", type = "keyword" }\n'
        bad = job_env.rules_dir / f"{job_env.write_rule(extra=extra, index=events_index)}.toml"
        wanted[1] = str(bad)
    else:
        wanted[1] = "no-such-rule"
    assert cli_main(["preview", *wanted, *RANGE]) == code
    out, err = capsys.readouterr()
    assert "good (" in out and "would be created" in out  # the good rule still ran
    assert said.format(bad=bad) in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", iso(END), "--to", iso(START)], "--from: must lie before --to"),
        (["--from", "yesterday"], "--from: 'yesterday' is neither an ISO 8601 time nor date math"),
        (["--to", "now+1d"], "--to: lies in the future"),
        (["--limit", "-1"], "--limit: must be 0 or more"),
    ],
)
def test_a_bad_range_is_bad_input(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rule_id = job_env.write_rule()
    assert cli_main(["preview", rule_id, *args]) == 2
    assert message in capsys.readouterr().err
