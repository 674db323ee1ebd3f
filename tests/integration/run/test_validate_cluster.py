"""validate and run with the cluster's field types: the same translation, required_fields warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from job.cli import main as cli_main
from tests.integration.run.conftest import JobEnv, cred_event, iso

pytestmark = pytest.mark.integration

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"kind": {"type": "keyword"}, "action": {"type": "keyword"}}},
        "process": {"properties": {"name": {"type": "keyword"}, "pid": {"type": "long"}}},
        "users": {"type": "nested", "properties": {"name": {"type": "keyword"}}},
    }
}
REQUIRED = """
[[rule.required_fields]]
name = "process.name"
type = "keyword"
ecs = true

[[rule.required_fields]]
name = "process.pid"
type = "keyword"

[[rule.required_fields]]
name = "file.path"
type = "keyword"
"""


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = cli_main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_required_fields_the_indices_lack_are_warned_about(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    job_env.index_events([cred_event(NOW)], mapping=MAPPING)
    job_env.write_rule(extra=REQUIRED)
    code, lines, err = _validate(capsys)
    assert (code, err) == (0, "")
    warnings = [line.split(": warning: ", 1)[1] for line in lines if ": warning: " in line]
    assert warnings == [
        'required_fields: Field "process.pid" with type "keyword" is not found within the rule\'s specified index '
        "patterns",
        'required_fields: Field "file.path" is not found within the rule\'s specified index patterns',
    ]
    code, lines, err = _validate(capsys, "--offline")
    assert (code, lines, err) == (0, ["1 rules loaded: 0 problems, 0 warnings"], "")


def test_a_nested_field_error_shows_in_validate_and_run_refuses_the_rule(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    job_env.index_events([cred_event(NOW - timedelta(minutes=1), users=[{"name": "bob"}])], mapping=MAPPING)
    bad = job_env.write_rule(query="users.name:bob")
    good = job_env.write_rule(query="users:{ name:bob }", name="Nested group")
    expected = "users.name is a nested field, but is not in a nested group in the KQL expression."
    code, lines, _ = _validate(capsys)
    assert code == 1
    [problem] = [line for line in lines if expected in line]
    text = (job_env.rules_dir / f"{bad}.toml").read_text().splitlines()
    query_line = text.index("users.name:bob") + 1  # the query's own line, not the line of "query ="
    assert problem == f"rules/{bad}.toml:{query_line}: query line 1, column 1: {expected}"
    # Without field types the query translates (Kibana's data view decides), so --offline cannot see it.
    assert _validate(capsys, "--offline")[0] == 0

    assert job_env.run("--now", iso(NOW)) == 1
    executions = {doc["rule"]["rule_id"]: doc for doc in job_env.executions_docs()}
    assert executions[bad]["execution"]["status"] == "failed"
    assert expected in executions[bad]["execution"]["errors"][0]
    assert executions[bad]["execution"]["errors"][0].startswith("Rule not run, it does not validate: ")
    assert executions[good]["execution"]["status"] == "succeeded"
    assert len(job_env.alert_docs(good)) == 1


def test_validate_without_a_cluster_says_so_and_checks_offline(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    job_env.write_rule(extra=REQUIRED)
    job_env.set(es_hosts="http://127.0.0.1:9", retry_attempts="1")
    code, lines, err = _validate(capsys)
    assert (code, lines) == (0, ["1 rules loaded: 0 problems, 0 warnings"])
    assert "cannot use Elasticsearch at http://127.0.0.1:9" in err
    assert "checked without field types (use --offline to skip)" in err
