"""9.4+ only: METADATA _id injected into a non-aggregating query (Kibana's injectMetadataId), as a rewrite of
the text. 8.19 and 9.0-9.3 run the saved query unchanged, so this is the only place it is tested."""

from __future__ import annotations

import pytest

from job.esql.inject import inject_metadata_id, metadata_id_problem, query_to_run


@pytest.mark.parametrize(
    ("saved", "runs"),
    [
        # Kibana's documented examples (inject_metadata_id.ts)
        ("FROM logs*", "FROM logs* METADATA _id"),
        ("FROM logs* METADATA _index", "FROM logs* METADATA _index, _id"),
        ("FROM logs* | KEEP host", "FROM logs* METADATA _id | KEEP host, _id"),
        ("FROM logs* | KEEP host, _id", "FROM logs* METADATA _id | KEEP host, _id"),
        ("FROM logs* METADATA _id", "FROM logs* METADATA _id"),
        ("FROM logs* | DROP _id | KEEP host", "FROM logs* METADATA _id | DROP _id | KEEP host"),
        ("FROM logs* | KEEP agent.*", "FROM logs* METADATA _id | KEEP agent.*, _id"),
        ('FROM logs* | DISSECT msg "%{a}" | KEEP x', 'FROM logs* METADATA _id | DISSECT msg "%{a}" | KEEP x'),
        # where the KEEP fix-ups stop
        ("FROM a | KEEP b | DROP _* | KEEP c", "FROM a METADATA _id | KEEP b, _id | DROP _* | KEEP c"),
        ("FROM a | RENAME _id AS x | KEEP x", "FROM a METADATA _id | RENAME _id AS x | KEEP x"),
        ('FROM a | EVAL _id = "x" | KEEP b', 'FROM a METADATA _id | EVAL _id = "x" | KEEP b'),
        ('FROM a | GROK m "%{WORD:w}" | KEEP w', 'FROM a METADATA _id | GROK m "%{WORD:w}" | KEEP w'),
        ("FROM a | EVAL y = 1 | KEEP y", "FROM a METADATA _id | EVAL y = 1 | KEEP y, _id"),
        # comments stay where they were, the insertions before them
        ("FROM a // c\n| KEEP b // d\n", "FROM a METADATA _id // c\n| KEEP b, _id // d\n"),
        # aggregating queries are left alone
        ("FROM a | STATS c = COUNT(*) BY h", "FROM a | STATS c = COUNT(*) BY h"),
    ],
)
def test_injection(saved: str, runs: str) -> None:
    assert inject_metadata_id(saved).query == runs
    assert inject_metadata_id(saved).failure is None


@pytest.mark.parametrize(
    ("saved", "reason"),
    [
        ("ROW a = 1", "no FROM source command"),
        ("FROM a [METADATA _index] | LIMIT 1", "bracketed METADATA"),
        ('FROM a | WHERE b == "open', "could not be read"),
    ],
)
def test_when_injection_fails_the_saved_query_runs_with_the_reason(saved: str, reason: str) -> None:
    injected = inject_metadata_id(saved)
    assert injected.query == saved
    assert injected.failure is not None and reason in injected.failure


@pytest.mark.parametrize(
    ("query", "injects", "refused"),
    [
        ("FROM logs-* | WHERE a == 1", False, True),
        ("FROM logs-* METADATA _index, _version | WHERE a == 1", False, True),  # only _id counts
        ("FROM logs-* METADATA _id | WHERE a == 1", False, False),
        ("FROM logs-* | STATS c = COUNT(*) BY h", False, False),
        ("FROM logs-* | WHERE a == 1", True, False),  # 9.4+: injected at run time
    ],
)
def test_metadata_id_required_before_9_4(query: str, injects: bool, refused: bool) -> None:
    problem = metadata_id_problem(query, injects=injects)
    assert (problem is not None) is refused
    if refused:
        assert problem is not None and problem.startswith("Queries that don\u2019t use the STATS...BY function")


@pytest.mark.parametrize(("injects", "runs"), [(False, "FROM a | KEEP b"), (True, "FROM a METADATA _id | KEEP b, _id")])
def test_query_to_run(injects: bool, runs: str) -> None:
    assert query_to_run("FROM a | KEEP b", injects=injects).query == runs
