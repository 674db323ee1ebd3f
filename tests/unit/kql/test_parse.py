"""Grammar rows (spec §2, §6): KQL text -> syntax tree, one row per construct and per Kibana rule."""

from __future__ import annotations

import pytest

from job.kql import parse
from job.kql.ast import MATCH_ALL, Is, Literal, Node, Wildcard
from tests.unit.kql.builders import and_, is_, nested, not_, or_, quoted, rng, wild

AST_ROWS: list[tuple[str, str, Node]] = [
    # §2 structure and precedence
    ("empty query is is(*,*)", "", MATCH_ALL),
    ("whitespace-only query is is(*,*)", " \t\r\n\u00a0 ", MATCH_ALL),
    ("single literal is free text", "foo", is_(None, "foo")),
    ("outer whitespace ignored", "  foo ", is_(None, "foo")),
    ("free text is not split on whitespace", "foo bar", is_(None, "foo bar")),
    ("and", "foo and bar", and_(is_(None, "foo"), is_(None, "bar"))),
    ("or", "foo or bar", or_(is_(None, "foo"), is_(None, "bar"))),
    ("and is n-ary, not nested pairs", "a and b and c", and_(is_(None, "a"), is_(None, "b"), is_(None, "c"))),
    ("or is n-ary, not nested pairs", "a or b or c", or_(is_(None, "a"), is_(None, "b"), is_(None, "c"))),
    (
        "and binds tighter than or",
        "foo or bar and baz or qux",
        or_(is_(None, "foo"), and_(is_(None, "bar"), is_(None, "baz")), is_(None, "qux")),
    ),
    (
        "parentheses override precedence",
        "(foo or bar) and baz",
        and_(or_(is_(None, "foo"), is_(None, "bar")), is_(None, "baz")),
    ),
    (
        "grouping keeps levels: (a and b) and c",
        "(a and b) and c",
        and_(and_(is_(None, "a"), is_(None, "b")), is_(None, "c")),
    ),
    ("redundant parentheses vanish", "((((foo))))", is_(None, "foo")),
    ("not negates a group", "not (foo or bar)", not_(or_(is_(None, "foo"), is_(None, "bar")))),
    ("not applies to the next sub-query only", "not a:b and c:d", and_(not_(is_("a", "b")), is_("c", "d"))),
    ("double negation needs parentheses", "not (not x)", not_(not_(is_(None, "x")))),
    (
        "keywords are case-insensitive",
        "a AND b Or c aNd NoT d",
        or_(and_(is_(None, "a"), is_(None, "b")), and_(is_(None, "c"), not_(is_(None, "d")))),
    ),
    (
        "tab, CR, LF and NBSP are whitespace around keywords",
        "a\tand\rb\nor\u00a0c",
        or_(and_(is_(None, "a"), is_(None, "b")), is_(None, "c")),
    ),
    ("nbsp after a keyword", "foo and\u00a0bar", and_(is_(None, "foo"), is_(None, "bar"))),
    ("several spaces around keywords", "a   or   b", or_(is_(None, "a"), is_(None, "b"))),
    # §2 field:value, ranges, nested
    ("field:value", "foo:bar", is_("foo", "bar")),
    ("whitespace around the colon", "foo  :  bar", is_("foo", "bar")),
    ("value keeps inner whitespace", "foo:bar baz", is_("foo", "bar baz")),
    ("quoted value is a phrase literal", 'foo:"bar baz"', is_("foo", quoted("bar baz"))),
    ("quoted field name", '"foo bar":baz', is_(quoted("foo bar"), "baz")),
    ("unquoted field name with a space", "script string:foo", is_("script string", "foo")),
    ("wildcard field name", "machine*:osx", is_(wild("machine*"), "osx")),
    ("wildcard value", "foo:ba*", is_("foo", wild("ba*"))),
    ("field:* is is(field, *) (exists)", "foo:*", is_("foo", wild("*"))),
    ("*:* is is(*, *)", "*:*", MATCH_ALL),
    ("bare * is free-text wildcard", "*", is_(None, wild("*"))),
    ("** is a wildcard, not a lone one", "f:**", is_("f", Wildcard(("", "", "")))),
    ("range >", "bytes > 1000", rng("bytes", "gt", "1000")),
    ("range <", "bytes < 8000", rng("bytes", "lt", "8000")),
    ("range >=", "bytes >= 1000", rng("bytes", "gte", "1000")),
    ("range <=", "bytes <= 8000", rng("bytes", "lte", "8000")),
    ("range without whitespace", "bytes>=1000", rng("bytes", "gte", "1000")),
    ("range with quoted value", 'd < "2020-01-01"', rng("d", "lt", quoted("2020-01-01"))),
    ("range value keeps *", "f < a*b", rng("f", "lt", wild("a*b"))),
    ("range `< =` is < with value =b", "f < =b", rng("f", "lt", "=b")),
    ("value may contain =", "f:=b", is_("f", "=b")),
    (
        "ranges combined",
        "bytes > 1000 and bytes < 8000",
        and_(rng("bytes", "gt", "1000"), rng("bytes", "lt", "8000")),
    ),
    ("nested group", "nestedField:{ childOfNested: foo }", nested("nestedField", is_("childOfNested", "foo"))),
    ("nested group without spaces", "n:{c:x}", nested("n", is_("c", "x"))),
    ("nested group with spaces around colon", "n : { c:x }", nested("n", is_("c", "x"))),
    (
        "nested group in an and",
        "response:200 and nestedField:{ childOfNested:foo or childOfNested:bar }",
        and_(
            is_("response", "200"), nested("nestedField", or_(is_("childOfNested", "foo"), is_("childOfNested", "bar")))
        ),
    ),
    (
        "nested groups inside parentheses",
        "response:200 and ( nestedField:{ childOfNested:foo } or nestedField:{ childOfNested:bar } )",
        and_(
            is_("response", "200"),
            or_(nested("nestedField", is_("childOfNested", "foo")), nested("nestedField", is_("childOfNested", "bar"))),
        ),
    ),
    (
        "nested inside nested",
        "nestedField:{ nestedChild:{ doublyNestedChild:foo } }",
        nested("nestedField", nested("nestedChild", is_("doublyNestedChild", "foo"))),
    ),
    ("range inside nested", "n:{ c > 3 }", nested("n", rng("c", "gt", "3"))),
    # §2 value lists
    ("value list distributes the field", "foo:(bar or baz)", or_(is_("foo", "bar"), is_("foo", "baz"))),
    (
        "value list with and, not and grouping",
        "foo:((bar or baz) and not qux)",
        and_(or_(is_("foo", "bar"), is_("foo", "baz")), not_(is_("foo", "qux"))),
    ),
    ("value list precedence: and over or", "f:(a or b and c)", or_(is_("f", "a"), and_(is_("f", "b"), is_("f", "c")))),
    ("negation inside a value list", "f:(not a)", not_(is_("f", "a"))),
    ("single value in parentheses", "f:(a)", is_("f", "a")),
    (
        "quoted values in a list",
        'p:("cmd.exe" or "powershell.exe")',
        or_(is_("p", quoted("cmd.exe")), is_("p", quoted("powershell.exe"))),
    ),
    ("§6.1 field:a or b makes b free text", "field:a or b", or_(is_("field", "a"), is_(None, "b"))),
    # §2 keyword-needs-whitespace rules (§6.2)
    ("trailing and without space is part of the value", "foo and", is_(None, "foo and")),
    ("trailing or without space is part of the value", "a:b or", is_("a", "b or")),
    ("leading or is part of the field name", "or foo:bar", is_("or foo", "bar")),
    ("leading and is part of the free text", "and a", is_(None, "and a")),
    ("or right after ( is a literal", "( or b)", is_(None, "or b")),
    ("or right after a colon is a literal", "a: or b", is_("a", "or b")),
    ("or after an operator is a literal", "a or or b", or_(is_(None, "a"), is_(None, "or b"))),
    ("not without following whitespace is a word", "nothing", is_(None, "nothing")),
    ("a lone not is a word", "not", is_(None, "not")),
    ("keyword glued to a word is not a keyword", "a orb and", is_(None, "a orb and")),
    ("or inside a field name before a colon", "a or:b", is_("a or", "b")),
]


@pytest.mark.parametrize(("query", "expected"), [row[1:] for row in AST_ROWS], ids=[row[0] for row in AST_ROWS])
def test_query_parses_to_kibana_ast(query: str, expected: Node) -> None:
    assert parse(query) == expected


LITERAL_ROWS: list[tuple[str, str, str | bool | None | Wildcard]] = [
    # §2 literals: numbers stay strings, true/false/null become JSON literals (lower case only)
    ("integer stays a string", "200", "200"),
    ("leading zero kept", "070", "070"),
    ("negative number", "-4", "-4"),
    ("fraction", "0.8", "0.8"),
    ("large integer keeps precision", "96565646732345", "96565646732345"),
    ("text number-likes", "..4", "..4"),
    ("true", "true", True),
    ("false", "false", False),
    ("null", "null", None),
    ("TRUE stays a string", "TRUE", "TRUE"),
    ("true after trimming", "  true ", True),
    ("quoted true is a string", '"true"', "true"),
    # unquoted escapes
    ("escaped special characters", r"\\\(\)\:\<\>\"\*\{\}", '\\():<>"*{}'),
    ("escaped \\t \\r \\n", r"a\tb\rc\nd", "a\tb\rc\nd"),
    ("\\uXXXX escape", r"\u0041\u00e9", "Aé"),
    ("\\uXXXX hex digits any case", r"\u00E9", "é"),
    ("escaped backslash before u is not a \\u escape", r"\\u00A0", "\\u00A0"),
    ("escaped keywords", r"\and \or \NOT x", "and or NOT x"),
    ("escaped keyword in any case", r"\AnD \oR \Not", "AnD oR Not"),
    ("quirk: \\not is a newline then ot", r"a\not", "a\not"),
    ("escaped * is an ordinary star", r"a\*b", "a*b"),
    ("escaped whitespace at the ends is trimmed", r"\tabc\n", "abc"),
    ("surrogate pair escapes join", r"\ud83d\ude00", "\U0001f600"),
    ("other Unicode spaces are trimmed like JavaScript does", "\u2003abc\u3000", "abc"),
    ("inner Unicode spaces are kept", "a\u2003b", "a\u2003b"),
    # quoted escapes
    ("quoted: escaped quote and backslash", r'"a\"b\\c"', 'a"b\\c'),
    ("quoted: \\t \\r \\n \\uXXXX", r'"\t\r\n\u0041"', "\t\r\nA"),
    ("quoted: other backslashes are kept", r'"C:\Users"', "C:\\Users"),
    ("quoted: C:\\temp holds a TAB", r'"C:\temp"', "C:\temp"),
    ("quoted: C:\\new holds a newline", r'"C:\new"', "C:\new"),
    ("quoted: doubled backslashes", r'"C:\\Windows\\temp"', "C:\\Windows\\temp"),
    ("quoted: * is ordinary", '"a*b"', "a*b"),
    ("quoted: invalid \\u is kept as text", r'"\u12"', "\\u12"),
    ("quoted: special characters need no escape", '"():<>*{}"', "():<>*{}"),
    ("quoted: keywords are text", '"a or b and not c"', "a or b and not c"),
    ("quoted: whitespace is not trimmed", '" a "', " a "),
    ("quoted: escaped backslash only", r'"\\"', "\\"),
    # wildcards
    ("unescaped * makes a wildcard", "foo*bar", Wildcard(("foo", "bar"))),
    ("escaped star stays inside a wildcard", r"a\**", Wildcard(("a*", ""))),
    ("wildcard keeps inner whitespace", "*S3 Browser*", Wildcard(("", "S3 Browser", ""))),
    ("leading wildcards are allowed", "*foo", Wildcard(("", "foo"))),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in LITERAL_ROWS], ids=[row[0] for row in LITERAL_ROWS])
def test_value_literal(text: str, expected: str | bool | None | Wildcard) -> None:
    node = parse(f"f:{text}")
    assert isinstance(node, Is)
    if isinstance(expected, Wildcard):
        assert node.value == expected
    else:
        assert isinstance(node.value, Literal)
        assert node.value.value == expected
        assert node.value.quoted == text.startswith('"')


def test_unquoted_null_field_name_is_no_field() -> None:
    # Kibana builds the null literal for both; they translate alike.
    assert parse("null:x") == parse("x")


def test_positions_point_into_the_query() -> None:
    node = parse("a:b and c < 5")
    assert (node.start, node.end) == (0, 13)
    first, second = node.children  # type: ignore[union-attr]
    assert isinstance(first, Is) and first.value.start == 2
    assert second.start == 8
