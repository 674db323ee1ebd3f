"""Reading the ES|QL pipeline: commands, aggregating or not, FROM's indices and METADATA, MV_EXPAND."""

from __future__ import annotations

import pytest

from job.esql import text


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("FROM a | WHERE b == 1 | STATS c = COUNT(*) BY d", ["from", "where", "stats"]),
        ('FROM a | WHERE msg == "x | y" | KEEP msg', ["from", "where", "keep"]),
        ('FROM a | WHERE msg == """x | "y" | z""" | KEEP msg', ["from", "where", "keep"]),
        ('FROM a | WHERE msg == "a \\" | b" | KEEP msg', ["from", "where", "keep"]),
        ("FROM a // a | comment\n| LIMIT 1", ["from", "limit"]),
        ("FROM a /* a | /* nested | */ comment */ | LIMIT 1", ["from", "limit"]),
        ("FROM a | KEEP `we|ird`, `back``tick|` | LIMIT 1", ["from", "keep", "limit"]),
        ("from a | inline stats c = count(*) by d", ["from", "inline stats"]),
        ("FROM a | INLINESTATS c = COUNT(*)", ["from", "inlinestats"]),
        ("  FROM a |  | LIMIT 1 ", ["from", "limit"]),  # an empty command is skipped
        ("ROW a = 1", ["row"]),
    ],
)
def test_split_commands(query: str, names: list[str]) -> None:
    assert [command.name for command in text.split_commands(query)] == names


@pytest.mark.parametrize(
    "query",
    [
        'FROM a | WHERE b == "open',
        'FROM a | WHERE b == """open',
        "FROM a | KEEP `open",
        "FROM a /* open",
        "x" * 100_001,
    ],
)
def test_unreadable_queries_are_refused(query: str) -> None:
    with pytest.raises(text.QueryTextError):
        text.split_commands(query)


@pytest.mark.parametrize(
    ("query", "aggregating"),
    [
        ("FROM logs-* | STATS c = COUNT(*) BY host.name", True),
        ("from logs-* | stats count(*)", True),
        ("FROM logs-* METADATA _id | WHERE a == 1", False),
        ('FROM logs-* | WHERE msg == "| STATS c = COUNT(*)"', False),  # in a string
        ("FROM logs-* // | STATS c = COUNT(*)\n| LIMIT 1", False),  # in a comment
        ("FROM logs-* | INLINE STATS c = COUNT(*) BY host.name", False),  # not a top-level STATS
        ("FROM logs-* | INLINESTATS c = COUNT(*) BY host.name", False),
        ("FROM logs-* | EVAL stats = 1 | KEEP stats", False),  # a column named stats
        ("FROM logs-* | STATS c = COUNT(*) BY h | WHERE c > 5 | SORT c", True),
    ],
)
def test_is_aggregating(query: str, aggregating: bool) -> None:
    assert text.is_aggregating(query) is aggregating


@pytest.mark.parametrize(
    ("query", "indices", "metadata"),
    [
        ("from ecs_compliant metadata _id, _index | where a == 1", ["ecs_compliant"], ["_id", "_index"]),
        ("FROM logs-*, winlogbeat-* METADATA _id", ["logs-*", "winlogbeat-*"], ["_id"]),
        ('FROM "logs-*", `weird` METADATA `_id`', ["logs-*", "weird"], ["_id"]),
        ("FROM a [METADATA _id, _version, _index] | LIMIT 1", ["a"], ["_id", "_version", "_index"]),
        ("FROM a | WHERE metadata == 1", ["a"], []),
        ("/* lead */ FROM a METADATA _index // tail\n| LIMIT 1", ["a"], ["_index"]),
        ("ROW a = 1", [], []),
    ],
)
def test_from_indices_and_metadata(query: str, indices: list[str], metadata: list[str]) -> None:
    assert text.index_patterns(query) == indices
    assert text.metadata_fields(query) == metadata
    assert text.has_metadata_id(query) is ("_id" in metadata)


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("FROM a METADATA _id | MV_EXPAND dns.answers.name", ["dns.answers.name"]),
        ("FROM a | mv_expand `process.args` | MV_EXPAND Tags", ["process.args", "Tags"]),
        ("FROM a | MV_EXPAND /* c */ x // d\n| LIMIT 1", ["x"]),
        ("FROM a | WHERE x == 1", []),
    ],
)
def test_mv_expand_fields(query: str, fields: list[str]) -> None:
    assert text.mv_expand_fields(query) == fields


def test_content_end_leaves_a_trailing_comment_out() -> None:
    query = "FROM a // c\n| KEEP b /* d */ "
    commands = text.split_commands(query)
    assert [query[c.start : c.content_end] for c in commands] == ["FROM a", " KEEP b"]


def test_a_from_with_many_metadata_words_in_quotes_is_read_in_linear_time() -> None:
    query = "FROM " + ", ".join(['"metadata"'] * 8_000) + " METADATA _id"
    assert text.metadata_fields(query) == ["_id"]
