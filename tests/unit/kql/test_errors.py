"""Bad input: every row is a KqlSyntaxError (or KqlSemanticError) with a position, never anything else."""

from __future__ import annotations

import json

import pytest

from job.kql import KqlSemanticError, KqlSyntaxError, parse, to_dsl
from job.kql.lexer import MAX_DEPTH
from tests.unit.kql.builders import FIELDS

KIBANA_ROWS: list[tuple[str, int, str]] = [
    # Kibana's own vectors (kuery_syntax_error.test.ts): query, 0-based offset, exact message
    ("response:", 9, 'Expected "(", "{", value, whitespace but end of input found.'),
    ("response:200 or ", 16, 'Expected "(", NOT, field name, value but end of input found.'),
    ("response:(200 or )", 17, 'Expected "(", NOT, value but ")" found.'),
    ("response:200 and not ", 21, 'Expected "(", field name, value but end of input found.'),
    ("response:(200 and not )", 22, 'Expected "(", value but ")" found.'),
    ('foo:"ba ', 4, 'Expected "(", "{", value, whitespace but """ found: unterminated quoted string.'),
    ('foo:"ba "r"', 9, 'Expected AND, OR, end of input but "r" found.'),
    ("foo:ba:r", 6, 'Expected AND, OR, end of input but ":" found.'),
    ("foo > ", 6, "Expected literal, whitespace but end of input found."),
    ("< 1000", 0, 'Expected "(", NOT, end of input, field name, value, whitespace but "<" found.'),
]


@pytest.mark.parametrize(("query", "offset", "message"), KIBANA_ROWS)
def test_kibana_error_vectors(query: str, offset: int, message: str) -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        parse(query)
    assert (caught.value.offset, caught.value.message) == (offset, message)


SYNTAX_ROWS: list[tuple[str, str, int, int, str]] = [
    # (id, query, line, column, message fragment) -- Kibana's own examples first
    ("unescaped colon in a value", "foo:ba:r", 1, 7, 'Expected AND, OR, end of input but ":" found.'),
    ("unescaped colon in a Windows path", r"file.path:C:\Windows", 1, 12, '":" found'),
    ("unbalanced open parenthesis", "(a:b", 1, 5, 'Expected ")", AND, OR but end of input found.'),
    ("unbalanced close parenthesis", "a:b)", 1, 4, '")" found'),
    ("unclosed value list", "a:(b or c", 1, 10, "end of input found"),
    ("unclosed nested group", "a:{ b:c", 1, 8, 'Expected "}", AND, OR but end of input found.'),
    ("unclosed quote", 'foo:"bar', 1, 5, "unterminated quoted string"),
    ("quote closed by an escaped quote", 'f:"a\\"', 1, 3, "unterminated quoted string"),
    ("§6.2 trailing and with a space", "a and ", 1, 7, 'Expected "(", NOT, field name, value but end of input found.'),
    ("trailing or with a space", "a:b or ", 1, 8, "end of input found"),
    ("trailing not", "a and not ", 1, 11, "end of input found"),
    ("not not is not allowed", "not not x", 1, 5, 'Expected "(", field name, value but "n" found.'),
    ("§6.3 not inside a word", "message:cannot be", 1, 12, 'Expected AND, OR, end of input but "n" found.'),
    ("negation after a colon needs parentheses", "f:not a", 1, 3, "found"),
    ("range takes one literal, not a list", "a < (b)", 1, 5, 'Expected literal, whitespace but "(" found.'),
    ("range without a value", "a <", 1, 4, "literal"),
    ("empty parentheses", "()", 1, 2, '")" found'),
    ("empty value list", "f:()", 1, 4, '")" found'),
    ("empty nested group", "n:{}", 1, 4, '"}" found'),
    ("two quoted strings", '"a" "b"', 1, 5, '""" found'),
    ("keyword glued after a quote", 'f:"x"or y', 1, 6, '"o" found'),
    ("unescaped special character", "a:b{c", 1, 4, '"{" found'),
    ("unescaped < in a value", "a:b<c", 1, 4, "<"),
    ("unknown escape", r"f:a\x", 1, 4, "invalid escape"),
    ("backslash-space", r"f:a\ b", 1, 4, "invalid escape"),
    ("backslash at the end", "f:a\\", 1, 4, "backslash at end of input"),
    ("invalid \\u escape", r"f:\u12", 1, 3, "invalid \\u escape"),
    ("\\U is not an escape", r"f:\U0041", 1, 3, "invalid escape"),
    ("lone surrogate escape", r"f:\ud800", 1, 3, "surrogate"),
    ("lone surrogate escape in quotes", r'f:"\udc00"', 1, 3, "surrogate"),
    ("NUL byte", "a:b\x00c", 1, 4, "NUL"),
    ("NUL byte inside quotes", 'a:"\x00"', 1, 4, "NUL"),
    ("error on a later line", "a:b and\nc:d:e", 2, 4, '":" found'),
    ("error after a tab", "a:b\tand\tc:(", 1, 12, "end of input found"),
]


@pytest.mark.parametrize(
    ("query", "line", "column", "fragment"), [r[1:] for r in SYNTAX_ROWS], ids=[r[0] for r in SYNTAX_ROWS]
)
def test_syntax_error_position_and_message(query: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        to_dsl(query)
    error = caught.value
    assert (error.line, error.column) == (line, column), str(error)
    assert fragment in error.message
    assert isinstance(error, ValueError)


def test_str_shows_message_line_and_caret() -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        parse("foo:ba:r")
    assert str(caught.value) == ('Expected AND, OR, end of input but ":" found. (line 1, column 7)\nfoo:ba:r\n------^')


def test_caret_on_the_offending_line_of_a_multi_line_query() -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        parse("a:b and\n\tc:d:e")
    assert str(caught.value).splitlines()[1:] == ["\tc:d:e", "\t---^"]


def test_caret_covers_the_offending_token() -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        parse("a:cannot be")
    assert str(caught.value).splitlines()[-1] == "-----^^^"


def test_expected_and_found_are_data() -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        parse("response:")
    assert caught.value.expected == frozenset({'"("', '"{"', "value", "whitespace"})
    assert caught.value.found is None


def test_long_lines_are_cut_around_the_error() -> None:
    query = "a:b and " * 2000 + "c:d:e"
    with pytest.raises(KqlSyntaxError) as caught:
        parse(query)
    rendered = str(caught.value)
    assert caught.value.column == len(query) - 1
    assert len(rendered) < 400
    assert rendered.splitlines()[1].startswith("...")


SEMANTIC_ROWS: list[tuple[str, str, int, str]] = [
    (
        "nested field outside a group",
        "nestedField.child:x",
        1,
        "nestedField.child is a nested field, but is not in a nested group in the KQL expression.",
    ),
    (
        "plain field inside a group",
        "host:{ name:x }",
        8,
        'host.name is not a nested field but is in nested group "host" in the KQL expression.',
    ),
    (
        "nested field under the wrong group",
        "nestedField:{ nestedChild.doublyNestedChild:x }",
        15,
        "Nested field nestedField.nestedChild.doublyNestedChild is being queried with the incorrect nested path. "
        "The correct path is nestedField.nestedChild.",
    ),
    ("range on a nested field outside a group", "x:1 and nestedField.child > 3", 9, "is a nested field"),
    ("exists on a nested field outside a group", "nestedField.child:*", 1, "is a nested field"),
    ("wildcard name inside a group is checked", "nestedField:{ nestedChild.d*:x }", 15, "incorrect nested path"),
]


@pytest.mark.parametrize(
    ("query", "column", "message"), [r[1:] for r in SEMANTIC_ROWS], ids=[r[0] for r in SEMANTIC_ROWS]
)
def test_nested_validation_errors(query: str, column: int, message: str) -> None:
    with pytest.raises(KqlSemanticError) as caught:
        to_dsl(query, FIELDS)
    assert message in caught.value.message
    assert (caught.value.line, caught.value.column) == (1, column)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "query",
    ["nestedField.child:x", "host:{ name:x }", "nestedField:{ nestedChild.doublyNestedChild:x }"],
)
def test_nested_checks_need_a_data_view(query: str) -> None:
    assert to_dsl(query)


def test_wildcard_names_outside_groups_skip_the_checks() -> None:
    assert to_dsl("nestedField.ch*:x", FIELDS)


# Robustness: big or hostile input is an error with a position, or a result; never a crash or a hang.


@pytest.mark.parametrize(
    "query",
    [
        "(" * 500 + "a" + ")" * 500,
        "a:{" * 500 + "b:c" + "}" * 500,
        "f:" + "(" * 500 + "a" + ")" * 500,
        "not (" * 500 + "a" + ")" * 500,
    ],
    ids=["parentheses", "nested groups", "value list", "negations"],
)
def test_nesting_500_deep_is_a_syntax_error(query: str) -> None:
    with pytest.raises(KqlSyntaxError) as caught:
        to_dsl(query)
    assert "deeper than" in caught.value.message
    assert query[caught.value.offset] in "({"


def test_nesting_limit_counts_open_groups_only() -> None:
    assert to_dsl(" and ".join(["(a:b)"] * 500))


@pytest.mark.parametrize(
    "query",
    [
        "(" * MAX_DEPTH + "a:b" + ")" * MAX_DEPTH,
        "not (" * MAX_DEPTH + "a" + ")" * MAX_DEPTH,
        "a:{" * MAX_DEPTH + "b:c" + "}" * MAX_DEPTH,
        "f:" + "(not " * MAX_DEPTH + "a" + ")" * MAX_DEPTH,
        "(x or y and not " * MAX_DEPTH + "a" + ")" * MAX_DEPTH,
    ],
    ids=["parentheses", "negations", "nested groups", "value list", "mixed"],
)
def test_nesting_at_the_limit_translates(query: str) -> None:
    assert json.loads(json.dumps(to_dsl(query)))


def test_a_100_kb_query_translates() -> None:
    clause = 'process.name:("cmd.exe" or "powershell.exe") and not user.name:SYSTEM*'
    query = " or ".join(f"({clause} and host.id:{i})" for i in range(1500))
    assert len(query) > 100_000
    dsl = to_dsl(query)
    assert len(dsl["bool"]["should"]) == 1500


def test_a_100_kb_query_with_an_error_at_the_end_reports_it() -> None:
    query = "a:b or " * 15000 + "c:"
    with pytest.raises(KqlSyntaxError) as caught:
        to_dsl(query)
    assert caught.value.column == len(query) + 1


def test_a_100_kb_unterminated_quote_is_reported_at_the_quote() -> None:
    query = 'a:"' + "x" * 100_000
    with pytest.raises(KqlSyntaxError) as caught:
        to_dsl(query)
    assert caught.value.column == 3


def test_non_string_query_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(b"a:b")  # type: ignore[arg-type]
