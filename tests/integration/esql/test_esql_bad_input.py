"""ES|QL queries the 8.19 engine refuses: ``validate`` gives one line per rule with Elasticsearch's reason at the
query's line in the file; ``run`` records the rule ``failed`` with that reason and runs the other rules. A query
the local engine never answers (``CATEGORIZE``: the node has no machine learning) is ended by the run's deadline,
and ``validate`` by its request timeout."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from job.cli import main as cli_main
from job.client.retry import RetryPolicy
from job.esql.inject import METADATA_ID_REQUIRED
from job.ruletypes.esql import errors
from job.writing import deadletter
from job.writing.deadletter import DeadLetter
from job.writing.deadletter_retry import not_retried
from tests.integration.esql.conftest import EsqlJob
from tests.integration.run.conftest import iso

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GOOD = 'FROM {events} METADATA _id\n| WHERE event.action == "login"'
# (case, query, the line of the query Elasticsearch names, the start of its reason)
REFUSED = [
    (  # the appended limit is in Elasticsearch's message, as in Kibana's
        "syntax",
        "FROM {events} METADATA _id\n| WHERE event.action ==",
        2,
        "parsing_exception: line 2:25: no viable alternative at input 'event.action == |'",
    ),
    (
        "unknown column",
        "FROM {events} METADATA _id\n| WHERE nope == 1",
        2,
        "verification_exception: Found 1 problem; line 2:9: Unknown column [nope]",
    ),
    (
        "unknown function",
        "FROM {events} METADATA _id\n| EVAL y = NOFUNC(message)",
        2,
        "verification_exception: Found 1 problem; line 2:12: Unknown function [NOFUNC]",
    ),
    (
        "a 9.x function (MV_CONTAINS)",
        'FROM {events} METADATA _id\n| WHERE MV_CONTAINS(user.name, "u1")',
        2,
        "verification_exception: Found 1 problem; line 2:9: Unknown function [MV_CONTAINS]",
    ),
    (
        "a 9.x command (INLINE STATS)",
        "FROM {events} METADATA _id\n| INLINE STATS c = COUNT(*) BY user.name",
        2,
        "parsing_exception: line 2:3: mismatched input 'INLINE'",
    ),
]


@pytest.fixture
def rules(esql_job: EsqlJob) -> dict[str, str]:
    """The refused rules, a rule Kibana would not save (no METADATA _id) and a good one, on two logins."""
    esql_job.index(
        [
            {"@timestamp": iso(NOW - timedelta(minutes=2)), "event": {"action": "login"}, "user": {"name": "u1"}},
            {"@timestamp": iso(NOW - timedelta(minutes=1)), "event": {"action": "login"}, "user": {"name": "u2"}},
        ]
    )
    ids = {case: esql_job.rule(query, name=case) for case, query, _, _ in REFUSED}
    ids["no METADATA _id"] = esql_job.rule('FROM {events}\n| WHERE event.action == "login"', name="no metadata")
    ids["good"] = esql_job.rule(GOOD, name="good")
    return ids


def _query_line(job: EsqlJob, rule_id: str) -> int:
    """The file line of the query's first line (the line after ``query = '''``)."""
    lines = (job.rules_dir / f"{rule_id}.toml").read_text().splitlines()
    return lines.index("query = '''") + 2


def test_validate_gives_elasticsearchs_reason_at_the_querys_line(
    esql_job: EsqlJob, rules: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["validate"]) == 1
    out = capsys.readouterr().out.splitlines()
    for case, _, line, reason in REFUSED:
        rule_id = rules[case]
        [problem] = [text for text in out if f"{rule_id}.toml:" in text]
        where = f"{rule_id}.toml:{_query_line(esql_job, rule_id) + line - 1}:"
        assert where in problem and f": {reason}" in problem and "warning" not in problem, (case, problem)
    [missing] = [text for text in out if f"{rules['no METADATA _id']}.toml:" in text]
    assert missing.endswith(METADATA_ID_REQUIRED)
    assert not [text for text in out if f"{rules['good']}.toml:" in text]
    assert out[-1] == f"{len(rules)} rules loaded: {len(REFUSED) + 1} problems, 0 warnings"


def test_validate_offline_reads_the_queries_and_says_what_it_left_out(
    esql_job: EsqlJob, rules: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["validate", "--offline"]) == 1
    captured = capsys.readouterr()
    problems = [line for line in captured.out.splitlines() if ".toml:" in line]
    assert len(problems) == 1 and f"{rules['no METADATA _id']}.toml:" in problems[0]
    assert f"--offline: {len(rules)} ES|QL queries were read without Elasticsearch" in captured.err


def test_run_records_each_refused_rule_failed_with_elasticsearchs_reason_and_runs_the_others(
    esql_job: EsqlJob, rules: dict[str, str]
) -> None:
    assert esql_job.run("--now", iso(NOW)) == 1
    for case, _, _, reason in REFUSED:
        record = esql_job.last(rules[case])
        assert record["execution"]["status"] == "failed", case
        [error] = record["execution"]["errors"]
        assert error.startswith(f'An error occurred during rule execution: message: "{reason}'), (case, error)
        assert "type_state" not in record  # a failed run keeps no state
    [refused] = esql_job.last(rules["no METADATA _id"])["execution"]["errors"]
    assert refused.startswith("Rule not run, it does not validate: ") and refused.endswith(METADATA_ID_REQUIRED)
    good = esql_job.last(rules["good"])
    assert good["execution"]["status"] == "succeeded" and good["metrics"]["alerts_created"] == 2


CATEGORIZE = "FROM {events}\n| STATS n = COUNT(*) BY CATEGORIZE(user.name)"
LOGIN = {"@timestamp": iso(NOW - timedelta(minutes=1)), "event": {"action": "login"}, "user": {"name": "u1"}}


def test_a_query_the_engine_never_answers_is_ended_by_the_runs_deadline(esql_job: EsqlJob) -> None:
    """The local engine has no machine learning, so CATEGORIZE never answers (nor confirms a cancel): the run
    deletes the query at its deadline and fails with Kibana's words, within its lease; the other rule runs."""
    esql_job.index([LOGIN])
    hung = esql_job.rule(CATEGORIZE, name="categorize")
    good = esql_job.rule(GOOD, name="good")
    esql_job.set(run_timeout="5s")
    started = time.monotonic()
    assert esql_job.run("--now", iso(NOW)) == 1
    took = time.monotonic() - started
    record = esql_job.last(hung)
    assert record["execution"]["errors"] == [
        f'An error occurred during rule execution: message: "{errors.CANCELLED_MESSAGE}"'
    ]
    assert record["execution"]["warnings"] == []  # it ended within its lease
    assert esql_job.last(good)["execution"]["status"] == "succeeded"
    assert took < 15, took
    answer = esql_job.es.perform_request("GET", "/_tasks", params={"actions": "indices:data/read/esql*"})
    tasks = answer.body["nodes"]
    running = [task for node in tasks.values() for task in node["tasks"].values()]
    assert all(task["cancelled"] for task in running), running  # gone, or cancelled if never confirmed


def test_validate_gives_up_on_a_query_the_engine_never_answers(
    esql_job: EsqlJob, capsys: pytest.CaptureFixture[str]
) -> None:
    esql_job.index([LOGIN])
    hung = esql_job.rule(CATEGORIZE, name="categorize")
    esql_job.set(es_request_timeout="3")
    assert cli_main(["validate"]) == 0
    [warning] = [line for line in capsys.readouterr().out.splitlines() if f"{hung}.toml:" in line]
    assert "query: not checked, Elasticsearch did not answer within 3s (DETECTION_ES_REQUEST_TIMEOUT)" in warning


def test_deadletter_retry_keeps_an_esql_rows_entry_and_says_why(
    esql_job: EsqlJob, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ES|QL alert is built from its row, which retry cannot read back (an aggregating row has no event)."""
    rule_id = esql_job.rule("FROM {events} | STATS n = COUNT(*) BY user.name", name="counts")
    assert cli_main(["setup"]) == 0
    letter = DeadLetter("", "row-alert-id", rule_id, "counts", "default", "x", "index", "refused", NOW)
    deadletter.write(esql_job.es, RetryPolicy(), esql_job.dead_letters, [letter])
    esql_job.es.indices.refresh(index=esql_job.dead_letters)
    assert cli_main(["deadletter", "retry"]) == 1
    out = capsys.readouterr().out
    assert f"still failing: rule {rule_id}, event /row-alert-id: {not_retried('esql')}" in out
    assert "0 alerts created, 0 already existed, 1 entries still failing" in out
