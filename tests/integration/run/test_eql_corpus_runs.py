"""The EQL corpus on the real node: its 41 rules validate against the cluster's field types and run in one
pass on generated events; each event rule alerts on the event made for it and not on its near miss, each
sequence rule writes the one sequence made for it (a shell and its blocks, in order)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.cli import main as cli_main
from tests.eql_corpus import CORPUS, corpus_rules, field_types, mapping, near_miss, positives
from tests.integration.run.conftest import JobEnv, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def test_the_corpus_validates_and_runs_on_generated_events(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    rules = corpus_rules()
    events: list[dict[str, Any]] = []
    made: dict[str, tuple[list[str], str | None]] = {}
    for number, rule in enumerate(rules):
        at = NOW - timedelta(minutes=6) + timedelta(seconds=7 * number)
        mine = positives(rule, at, f"r{number}")
        sequence = rule.query.startswith("sequence")
        missed = None if sequence else near_miss(rule, mine[0])
        events += mine + ([missed] if missed else [])
        made[rule.rule_id] = ([event["_id"] for event in mine], missed["_id"] if missed else None)
        text = (CORPUS / f"{rule.source.rsplit('/', 1)[-1]}").read_text()
        text = re.sub(r"^index = .*$", f'index = ["{job_env.events_pattern}"]', text, count=1, flags=re.M)
        (job_env.rules_dir / f"{rule.rule_id}.toml").write_text(text)
    job_env.index_events(events, mapping=mapping(field_types(rules)))

    assert cli_main(["validate", str(job_env.rules_dir)]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.strip().endswith(f"{len(rules)} rules loaded: 0 problems, 0 warnings")
    assert job_env.run("--now", iso(NOW)) == 0
    for rule in rules:
        wanted, missed = made[rule.rule_id]
        docs = job_env.alert_docs(rule.rule_id)
        [record] = job_env.executions_docs(rule.rule_id)
        assert record["execution"]["status"] == "succeeded", (rule.name, record["execution"])
        if missed is not None:
            alerted = {doc["kibana.alert.ancestors"][0]["id"] for doc in docs}
            assert wanted[0] in alerted and missed not in alerted, rule.name
            continue
        shells = [doc for doc in docs if "kibana.alert.group.index" not in doc]
        sequences = []
        for shell in shells:
            blocks = [doc for doc in docs if doc.get("kibana.alert.group.id") == shell["_id"] and doc is not shell]
            blocks.sort(key=lambda doc: doc["kibana.alert.group.index"])
            sequences.append([doc["kibana.alert.ancestors"][0]["id"] for doc in blocks])
        assert wanted in sequences, (rule.name, sequences)
