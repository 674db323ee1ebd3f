"""The EQL parser: every construct of the grammar to its tree, and every refusal with its position."""

from __future__ import annotations

import time

import pytest

from job.eql import EqlSyntaxError, parse, parse_expression
from job.eql.ast import (
    And,
    Arith,
    Call,
    Compare,
    EventFilter,
    EventQuery,
    Expr,
    Field,
    In,
    Literal,
    MatchOp,
    Neg,
    Not,
    Or,
    Pipe,
    SampleQuery,
    SequenceQuery,
    Stage,
)
from job.eql.lexer import MAX_DEPTH

F, L = Field, Literal


def cond(text: str) -> Expr:
    return parse_expression(text)


EXPRESSIONS: list[tuple[str, Expr]] = [
    # comparisons, each operator
    ('a == "x"', Compare("==", F("a"), L("x"))),
    ("a != 1", Compare("!=", F("a"), L(1))),
    ("a < 1", Compare("<", F("a"), L(1))),
    ("a <= 1.5", Compare("<=", F("a"), L(1.5))),
    ("a > .5", Compare(">", F("a"), L(0.5))),
    ("a >= 1e3", Compare(">=", F("a"), L(1000.0))),
    ("a == null", Compare("==", F("a"), L(None))),
    ("a == true and b == false", And((Compare("==", F("a"), L(True)), Compare("==", F("b"), L(False))))),
    # precedence: not binds tighter than and, and tighter than or; chains stay flat
    ("not a == 1 and b == 2", And((Not(Compare("==", F("a"), L(1))), Compare("==", F("b"), L(2))))),
    ("a or b and c", Or((F("a"), And((F("b"), F("c")))))),
    ("a or b or c or d", Or((F("a"), F("b"), F("c"), F("d")))),
    ("(a or b) and c", And((Or((F("a"), F("b"))), F("c")))),
    ("not not a", Not(Not(F("a")))),
    # arithmetic: unary binds tighter than * which binds tighter than +
    ("a + b * c == 1", Compare("==", Arith("+", F("a"), Arith("*", F("b"), F("c"))), L(1))),
    ("-a * b == 1", Compare("==", Arith("*", Neg(F("a")), F("b")), L(1))),
    ("+a == 1", Compare("==", F("a"), L(1))),
    ("a % 2 - 1 == 0", Compare("==", Arith("-", Arith("%", F("a"), L(2)), L(1)), L(0))),
    ("a / 2 == 1", Compare("==", Arith("/", F("a"), L(2)), L(1))),
    # predicates bind to one primary: a + b : "x" applies ':' to b
    ('a + b : "x"', Arith("+", F("a"), MatchOp(":", F("b"), (L("x"),)))),
    ('length(x) : "3"', MatchOp(":", Call("length", (F("x"),)), (L("3"),))),
    # in / in~ / not in / not in~
    ("a in (1, 2, null)", In(F("a"), (L(1), L(2), L(None)))),
    ('a in~ ("x", "y")', In(F("a"), (L("x"), L("y")), insensitive=True)),
    ("a not in (1)", In(F("a"), (L(1),), negated=True)),
    ('a not in~ ("x")', In(F("a"), (L("x"),), insensitive=True, negated=True)),
    ("a in (b, length(c))", In(F("a"), (F("b"), Call("length", (F("c"),))))),
    # :, like, like~, regex, regex~ with one constant or a list
    ('a : "x*"', MatchOp(":", F("a"), (L("x*"),))),
    ('a : ("x", "y?")', MatchOp(":", F("a"), (L("x"), L("y?")))),
    ('a like "X*"', MatchOp("like", F("a"), (L("X*"),))),
    ('a like~ ("x*", "y")', MatchOp("like~", F("a"), (L("x*"), L("y")))),
    ('a regex "x.*"', MatchOp("regex", F("a"), (L("x.*"),))),
    ('a regex~ ("x", "y+")', MatchOp("regex~", F("a"), (L("x"), L("y+")))),
    # functions, with ~; optional fields; quoted and @ names
    ('startsWith(a, "x")', Call("startsWith", (F("a"), L("x")))),
    ('startsWith~(a, "x")', Call("startsWith", (F("a"), L("x")), insensitive=True)),
    ("concat()", Call("concat", ())),
    ("?a.b == 1", Compare("==", F("a.b", optional=True), L(1))),
    ("`my-field`.x == 1", Compare("==", F("my-field.x"), L(1))),
    ("`a``b` == 1", Compare("==", F("a`b"), L(1))),
    ("@timestamp > 0", Compare(">", F("@timestamp"), L(0))),
    ("?`odd name` == null", Compare("==", F("odd name", optional=True), L(None))),
    # strings: escapes, \u{...}, raw strings with trailing quotes, comments anywhere
    (r'a == "t\tn\nr\rq\"s\'b\\"', Compare("==", F("a"), L("t\tn\nr\rq\"s'b\\"))),
    (r'a == "\u{41}\u{1F600}"', Compare("==", F("a"), L("A\U0001f600"))),
    ('a == """C:\\raw\\path"""', Compare("==", F("a"), L("C:\\raw\\path"))),
    ('a == """say "hi""""', Compare("==", F("a"), L('say "hi"'))),
    ('a == """x"""""', Compare("==", F("a"), L('x""'))),
    ("a == 1 // to the end\n and b == 2", And((Compare("==", F("a"), L(1)), Compare("==", F("b"), L(2))))),
    ("a /* one /* nested */ comment */ == 1", Compare("==", F("a"), L(1))),
    # numbers: int, long, unsigned long, overflow to double
    ("a == 2147483648", Compare("==", F("a"), L(2147483648))),
    ("a == 18446744073709551616", Compare("==", F("a"), L(1.8446744073709552e19))),
    ("true", L(True)),
]


@pytest.mark.parametrize(("text", "expected"), EXPRESSIONS, ids=[row[0] for row in EXPRESSIONS])
def test_expressions(text: str, expected: Expr) -> None:
    assert cond(text) == expected


def _event(category: str | None, condition: Expr) -> EventFilter:
    return EventFilter(category, condition)


STATEMENTS: list[tuple[str, object]] = [
    ("process where a == 1", EventQuery(_event("process", Compare("==", F("a"), L(1))))),
    ("any where true", EventQuery(_event(None, L(True)))),
    ('"my-cat" where true', EventQuery(_event("my-cat", L(True)))),
    ('"""x.y""" where true', EventQuery(_event("x.y", L(True)))),
    (
        "sequence [a where true] [b where true]",
        SequenceQuery((), None, (Stage(_event("a", L(True))), Stage(_event("b", L(True))))),
    ),
    (
        "sequence by h with maxspan=30s [a where true] by x [b where true] by y",
        SequenceQuery(
            (F("h"),),
            30_000,
            (Stage(_event("a", L(True)), (F("x"),)), Stage(_event("b", L(True)), (F("y"),))),
            None,
            "30s",
        ),
    ),
    (
        "sequence with maxspan=2h [a where true] ![b where true] [c where true] with runs=3",
        SequenceQuery(
            (),
            7_200_000,
            (
                Stage(_event("a", L(True))),
                Stage(_event("b", L(True)), missing=True),
                Stage(_event("c", L(True)), runs=3),
            ),
            None,
            "2h",
        ),
    ),
    (
        "sequence by k [a where true] by x with runs=2 [b where true] by y until [c where true] by z",
        SequenceQuery(
            (F("k"),),
            None,
            (Stage(_event("a", L(True)), (F("x"),), runs=2), Stage(_event("b", L(True)), (F("y"),))),
            Stage(_event("c", L(True)), (F("z"),)),
        ),
    ),
    ("sequence [a where true] with runs=2", SequenceQuery((), None, (Stage(_event("a", L(True)), runs=2),))),
    (
        "sequence by ?k [a where true] [b where true]",
        SequenceQuery((F("k", optional=True),), None, (Stage(_event("a", L(True))), Stage(_event("b", L(True))))),
    ),
    (
        "sample by host [a where true] by os [b where true] by op_sys",
        SampleQuery(
            (F("host"),), (Stage(_event("a", L(True)), (F("os"),)), Stage(_event("b", L(True)), (F("op_sys"),)))
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), STATEMENTS, ids=[row[0] for row in STATEMENTS])
def test_statements(text: str, expected: object) -> None:
    assert parse(text).query == expected


@pytest.mark.parametrize(
    ("text", "pipes"),
    [
        ("any where true | head 5", (Pipe("head", 5),)),
        ("any where true | tail 2 | head 1", (Pipe("tail", 2), Pipe("head", 1))),
        ("any where true | head 2 + 3", (Pipe("head", 5),)),
        ("any where true | head 0", (Pipe("head", 0),)),
    ],
)
def test_pipes(text: str, pipes: tuple[Pipe, ...]) -> None:
    assert parse(text).pipes == pipes


@pytest.mark.parametrize(
    ("text", "unit_ms"), [("1ms", 1), ("2s", 2000), ("3m", 180_000), ("4h", 14_400_000), ("5d", 432_000_000)]
)
def test_maxspan_units(text: str, unit_ms: int) -> None:
    query = parse(f"sequence with maxspan={text} [a where true] [b where true]").query
    assert isinstance(query, SequenceQuery) and query.maxspan_ms == unit_ms


ERRORS: list[tuple[str, int, int, str]] = [
    # (query, line, column, message): Elasticsearch's texts where its sources give them
    ("process where a = 1", 1, 17, "mismatched input '=' expecting"),
    ("process where a == 1 == 2", 1, 22, "mismatched input '=='"),
    ("process where a !: 1", 1, 17, "token recognition error at: '!'"),
    ("process where", 1, 14, "mismatched input '<EOF>'"),
    ("process where a == 'x'", 1, 20, "Use double quotes [\"] to define string literals, not single quotes [']"),
    ('process where a == ?"x"', 1, 20, 'Use triple double quotes ["""] to define unescaped string literals, not [?"]'),
    (r'process where a == "\x"', 1, 21, "Invalid escape sequence [\\x] in string"),
    (r'process where a == "\u{1}"', 1, 21, "Unicode sequence should use [2-8] hex digits, [\\u{1}] has [1]"),
    (r'process where a == "\u{D800}"', 1, 21, "is a surrogate code"),
    ('process where a == "open', 1, 20, "Unterminated string"),
    ("process where a == 1 /* open", 1, 22, "Unterminated comment"),
    ("process where a[0] == 1", 1, 17, "Array indexes are not supported"),
    ("process where child of [a where true]", 1, 15, "Process relationships are not supported"),
    ("join [a where true] [b where true]", 1, 1, "Join is not supported"),
    ("any where true | count", 1, 16, "Pipe [count] is not supported"),
    ("any where true | heads 3", 1, 18, "Unrecognized pipe [heads], did you mean [head]?"),
    ("any where true | frob 3", 1, 18, "Unrecognized pipe [frob]"),
    ("any where true | head", 1, 16, "Pipe [head] expects exactly one argument but found [0]"),
    ("any where true | head -1", 1, 23, "Pipe [head] expects a positive integer but found [-1]"),
    ("any where true | tail x", 1, 23, "Pipe [tail] expects a positive integer but found"),
    (
        "sequence with maxspan=10 [a where true] [b where true]",
        1,
        23,
        "No time unit specified, did you mean [s] as in [10s]?",
    ),
    ("sequence with maxspan=1.5m [a where true] [b where true]", 1, 23, "Decimal time interval [1.5] not supported"),
    (
        "sequence with maxspan=0s [a where true] [b where true]",
        1,
        23,
        "A positive maxspan value is required; found [0]",
    ),
    ("sequence with maxspan=1y [a where true] [b where true]", 1, 24, "Unrecognized time unit [y] in [1y]"),
    (
        "sequence with maxspan=1s by k [a where true] [b where true]",
        1,
        26,
        "Please specify sequence [by] before [with] not after",
    ),
    (
        "sequence [a where true] by x [b where true]",
        1,
        30,
        "Inconsistent number of join keys specified; expected [1] but found [0]",
    ),
    ("sequence by k [a where true] [b where true] by x, y", 1, 48, "expected [0] but found [2]"),
    ("sequence [a where true]", 1, 1, "A sequence requires a minimum of 2 queries, found [1]"),
    ("sequence [a where true] ![b where true]", 1, 1, "requires [with maxspan]"),
    ("sequence with maxspan=1s ![a where true] ![b where true]", 1, 1, "at least one positive"),
    (
        "sequence [a where true] [b where true] with runs=0",
        1,
        50,
        "A [runs] value between [1] and [100] is required; found [0]",
    ),
    ("sequence [a where true] [b where true] with runs=101", 1, 50, "found [101]"),
    ("sequence [a where true] [b where true] with tries=2", 1, 45, "Unrecognized sequence parameter [tries]"),
    ("sequence [a where true] [b where true] until ![c where true]", 1, 46, "[until] cannot be a missing event"),
    ("sequence by length(x) [a where true] [b where true]", 1, 13, "Unsupported join key"),
    ("sample [a where true] [b where true]", 1, 1, "A sample requires join keys"),
    ("any where\n  a == 1 and\n  b ==", 3, 7, "mismatched input '<EOF>'"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), ERRORS, ids=[row[0] for row in ERRORS])
def test_errors_have_positions(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(EqlSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert message in error.message
    assert (error.line, error.column) == (line, column)
    assert "^" in str(error)  # the caret line


def test_a_diagnostic_per_problem_placed_in_the_file() -> None:
    with pytest.raises(EqlSyntaxError) as caught:
        parse("process where\n  a = 1")
    [diagnostic] = caught.value.diagnostics("rules/x.toml", first_line=10, first_column=9)
    assert (diagnostic.path, diagnostic.line, diagnostic.column) == ("rules/x.toml", 11, 5)
    assert str(diagnostic).startswith("rules/x.toml:11: mismatched input '='")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("any where " + "(" * 10_000 + "a" + ")" * 10_000, "parentheses"),
        ("any where " + "not " * 10_000 + "a", "not"),
        ("any where " + "-" * 10_000 + "a == 1", "unary minus"),
        ("any where a == " + " + ".join(["1"] * 10_000), "arithmetic"),
        ("any where " + "length(" * 10_000 + "a" + ")" * 10_000 + " == 1", "calls"),
    ],
    ids=lambda value: value if len(value) < 20 else "",
)
def test_deep_nesting_is_a_clean_error_fast(text: str, where: str) -> None:
    del where
    started = time.monotonic()
    with pytest.raises(EqlSyntaxError) as caught:
        parse(text)
    assert "EQL statement is too large" in caught.value.message
    assert time.monotonic() - started < 5


def test_nesting_within_the_limit_parses() -> None:
    depth = MAX_DEPTH - 1
    assert parse_expression("(" * depth + "a" + ")" * depth) == F("a")


def test_a_100000_value_list_parses_in_bounded_time() -> None:
    started = time.monotonic()
    listed = parse_expression("a in (" + ", ".join(str(i) for i in range(100_000)) + ")")
    assert isinstance(listed, In) and len(listed.items) == 100_000
    assert time.monotonic() - started < 30


def test_a_long_or_chain_stays_flat() -> None:
    chain = parse_expression(" or ".join(f"a == {i}" for i in range(5_000)))
    assert isinstance(chain, Or) and len(chain.children) == 5_000


def test_keywords_are_case_sensitive() -> None:
    assert cond("AND == 1") == Compare("==", F("AND"), L(1))
    with pytest.raises(EqlSyntaxError):
        parse("PROCESS WHERE true")


def test_the_tree_is_frozen() -> None:
    node = cond("a == 1")
    with pytest.raises(AttributeError):
        node.op = "!="  # type: ignore[misc]
