"""Client-side evaluation: the functions (the examples of Elasticsearch's function reference), EQL's null
logic, the script semantics over multi-valued and missing fields, and what each pushed-down query leaf
selects."""

from __future__ import annotations

import time
from typing import Any

import pytest

from job.eql import EqlRuntimeError, EqlVerificationError, evaluate, parse_expression, push_down
from job.eql.leaves import ci_equal, wildcard_match
from job.eql.optimize import optimize
from job.eql.regexp import compile_regex
from job.eql.resolve import resolve
from tests.unit.eql.fields import FIELDS

PATH = r"C:\\Windows\\System32\\cmd.exe"  # an EQL string: C:\Windows\System32\cmd.exe

FUNCTIONS: list[tuple[str, Any]] = [
    ("add(4, 5)", 9),
    ("add(4, 0.5)", 4.5),
    ("add(-2, -2)", -4),
    ("add(null, 4)", None),
    (f'between("{PATH}", "System32\\\\", ".exe")', "cmd"),
    (f'between("{PATH}", "system32\\\\", ".exe")', ""),
    (f'between~("{PATH}", "system32\\\\", ".exe")', "cmd"),
    (f'between("{PATH}", "\\\\", "\\\\", false)', "Windows"),
    (f'between("{PATH}", "\\\\", "\\\\", true)', "Windows\\System32"),
    ('between("", "", "")', ""),
    ('between(null, "a", "b")', None),
    ('cidrMatch("192.168.152.12", "192.168.0.0/16")', True),  # (the verifier wants an ip field there)
    ('cidrMatch("192.168.152.12", "10.0.0.0/8", "10.128.0.0/9")', False),
    ('cidrMatch("192.168.152.12", null)', None),
    ('concat("process is ", "regsvr32.exe")', "process is regsvr32.exe"),
    ('concat("regsvr32.exe", " ", 42)', "regsvr32.exe 42"),
    ('concat("regsvr32.exe", " ", 42.5)', "regsvr32.exe 42.5"),
    ('concat("regsvr32.exe", " ", true)', "regsvr32.exe true"),
    ("concat(null)", None),
    ("divide(4, 2)", 2),
    ("divide(4, 3)", 1),
    ("divide(4, 3.0)", 4 / 3),
    ("divide(-4, 3)", -1),  # Java truncates toward zero
    ("divide(0.5, 0.25)", 2.0),
    ('endsWith("regsvr32.exe", ".exe")', True),
    ('endsWith("regsvr32.exe", ".EXE")', False),
    ('endsWith~("regsvr32.exe", ".EXE")', True),
    ('endsWith("", "")', True),
    ('endsWith("", null)', None),
    ('indexOf("subdomain.example.com", "d")', 3),
    ('indexOf("subdomain.example.com", "D")', None),
    ('indexOf~("subdomain.example.com", "D")', 3),
    ('indexOf("subdomain.example.com", ".", 10)', 17),
    ('indexOf("subdomain.example.com", ".", -6)', 9),
    ('indexOf("subdomain.example.com", "", 10)', 10),
    ('indexOf("subdomain.example.com", ".", 30)', None),
    ('indexOf("subdomain.example.com", ".", null)', None),
    ('indexOf("", "")', 0),
    ('length("explorer.exe")', 12),
    ('length("")', 0),
    ('length("\U0001f600")', 2),  # UTF-16 code units, as Java counts
    ("modulo(10, 6)", 4),
    ("modulo(-10, 6)", -4),
    ("modulo(10, -6)", 4),
    ("modulo(10, 0.5)", 0.0),
    ("multiply(-2, 2)", -4),
    ("multiply(0.5, 2)", 1.0),
    ('number("1337")', 1337),
    ('number("42.5")', 42.5),
    ('number("deadbeef", 16)', 3735928559),
    ('number("0xdeadbeef")', 3735928559),
    ('number("0xdeadbeef", null)', 3735928559),
    ('number("+1337")', 1337),
    ('number("-1337")', -1337),
    ('number("  1337  ")', 1337),
    ("number(null)", None),
    ('startsWith("regsvr32.exe", "regsvr32")', True),
    ('startsWith("regsvr32.exe", "Regsvr32")', False),
    ('startsWith~("regsvr32.exe", "Regsvr32")', True),
    ('startsWith("", "")', True),
    ("string(42)", "42"),
    ("string(42.5)", "42.5"),
    ("string(true)", "true"),
    ("string(1.0E7)", "1.0E7"),
    ("string(null)", None),
    ('stringContains("start regsvr32.exe", "regsvr32")', True),
    ('stringContains~("start regsvr32.exe", "Regsvr32")', True),
    ('stringContains("", "")', False),
    ('stringContains("abc", "")', False),
    ('substring("start regsvr32.exe", 6)', "regsvr32.exe"),
    ('substring("start regsvr32.exe", 0, 5)', "start"),
    ('substring("start regsvr32.exe", -4)', ".exe"),
    ('substring("start regsvr32.exe", -4, -1)', ".ex"),
    ('substring("start", 9)', ""),
    ("subtract(10, 2)", 8),
    ("subtract(1, 0.5)", 0.5),
    # operators
    ("7 / 2", 3),
    ("7 % -3", 1),
    ("2 + 3 * 4", 14),
    ("-(3)", -3),
]


@pytest.mark.parametrize(("text", "expected"), FUNCTIONS, ids=[row[0] for row in FUNCTIONS])
def test_functions(text: str, expected: Any) -> None:
    from job.eql.evaluate import fold

    assert fold(parse_expression(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('number("x")', "Unable to convert [x] to number of base [10]"),
        ('number("")', "Unable to convert [] to number of base [10]"),
        ('number("12", 2)', "Unable to convert [12] to number of base [2]"),
        ("divide(1, 0)", "/ by zero"),
        ("modulo(1, 0)", "/ by zero"),
        ("9223372036854775807 + 1", "long overflow"),
    ],
)
def test_runtime_errors(text: str, message: str) -> None:
    from job.eql.evaluate import fold

    with pytest.raises(EqlRuntimeError) as caught:
        fold(parse_expression(text))
    assert message in caught.value.message


NULL_LOGIC: list[tuple[str, bool | None]] = [
    ("null and false", False),
    ("null and true", None),
    ("null or true", True),
    ("null or false", None),
    ("not null", None),
    ("null == null", None),
    ("1 == null", None),
    ("1 < 2", True),
    ('"a" < "b"', True),
    ('"B" < "a"', True),  # case-sensitive order
    ('"a" == 1', None),  # not comparable
    ("1 == 1.0", True),
    ("1 in (2, null)", None),
    ("1 in (1, null)", True),
    ("null in (1)", None),
]


@pytest.mark.parametrize(("text", "expected"), NULL_LOGIC, ids=[row[0] for row in NULL_LOGIC])
def test_three_valued_logic(text: str, expected: bool | None) -> None:
    assert evaluate(parse_expression(text), {}) is expected


def resolved(text: str) -> Any:
    return optimize(resolve(parse_expression(text), FIELDS))


SCRIPTS: list[tuple[str, dict[str, Any], bool | None]] = [
    # (condition, _source, evaluate(): EQL's three-valued value)
    ("length(process.name) > 3", {"process": {"name": "cmd.exe"}}, True),
    ("length(process.name) > 3", {}, None),
    ("length(process.name) > 3", {"process": {"name": ["ab", "abcdef"]}}, True),
    ("length(process.name) > 3", {"process.name": ["ab", "abc"]}, False),
    ('concat(user.name, "@", host.id) == "u@h"', {"user": {"name": "u"}, "host": {"id": ["x", "h"]}}, True),
    ('endsWith~(concat(file.path, ""), ".EXE")', {"file": {"path": "a.exe"}}, True),
    ("process.pid + 1 > 10", {"process": {"pid": "12"}}, True),  # "12" indexes as 12 in a long
]


@pytest.mark.parametrize(("text", "source", "expected"), SCRIPTS, ids=[f"{r[0]} {r[1]}" for r in SCRIPTS])
def test_evaluate_over_sources(text: str, source: dict[str, Any], expected: bool | None) -> None:
    assert evaluate(resolved(text), source) is expected


# (condition, _source, whether Elasticsearch selects the event: DSL leaves two-valued, scripts rewritten)
SELECTS: list[tuple[str, dict[str, Any], bool]] = [
    # a negated comparison stays a query: missing fields and any value matter
    ('process.name != "a"', {}, True),
    ('process.name != "a"', {"process": {"name": ["a", "b"]}}, False),
    ('not process.name : "A"', {"process": {"name": "a"}}, False),
    ('process.name not in ("a")', {}, True),
    # not over a comparison is the opposite comparison: a range excludes a missing field
    ("not process.pid < 5", {}, False),
    ("not process.pid < 5", {"process": {"pid": 7}}, True),
    # scripts: not pushed into a comparison excludes a missing field; not over a function includes it
    ("not length(process.name) > 3", {}, False),
    ("not length(process.name) > 3", {"process": {"name": "ab"}}, True),
    ('not startsWith(concat(process.name, ""), "a")', {}, True),
    ('not startsWith(concat(process.name, ""), "a")', {"process": {"name": ["a", "b"]}}, False),
    ('not startsWith(concat(process.name, ""), "a")', {"process": {"name": "b"}}, True),
    # multi-valued: any value, for queries and scripts
    ('process.name == "b"', {"process": {"name": ["a", "b"]}}, True),
    ("process.pid > 1 and process.pid < 5", {"process": {"pid": [0, 10]}}, False),  # one range, not two
    ("length(process.name) == 1", {"process": [{"name": "a"}, {"name": "bb"}]}, True),
    # case-insensitive term folds each character both ways (Lucene's rule), wildcards too
    ('process.name : "CMD.EXE"', {"process": {"name": "cmd.exe"}}, True),
    ('process.name : "c*.EXE"', {"process": {"name": "cmd.exe"}}, True),
    ('process.name : "straße"', {"process": {"name": "STRASSE"}}, False),
    ('startsWith~(process.name, "CM")', {"process": {"name": "cmd.exe"}}, True),
    # dates: a day covers the whole day in a term, and rounds the bounds of a range
    ('@timestamp == "2024-01-01"', {"@timestamp": "2024-01-01T23:59:59.999Z"}, True),
    ('@timestamp > "2024-01-01"', {"@timestamp": "2024-01-01T23:00:00Z"}, False),
    ('@timestamp >= "2024-01-01"', {"@timestamp": "2024-01-01T00:00:00Z"}, True),
    ("@timestamp < 1704067200001", {"@timestamp": 1704067200000}, True),
    # ips: CIDR terms, addresses ordered as IPv6
    ('source.ip == "10.0.0.0/8"', {"source": {"ip": "10.1.2.3"}}, True),
    ('cidrMatch(source.ip, "10.0.0.0/8", "fe80::/10")', {"source": {"ip": "fe80::1"}}, True),
    ('source.ip > "9.255.255.255"', {"source": {"ip": "10.0.0.1"}}, True),
    # keyword ranges compare UTF-8 bytes; numbers in a keyword index as text
    ('process.name > "Z"', {"process": {"name": "a"}}, True),
    ('process.name == "5"', {"process": {"name": 5}}, True),
    # endsWith/stringContains on a field: Elasticsearch's unescaped wildcard (a * in the constant matches anything)
    ('endsWith(file.path, "a*b")', {"file": {"path": "xa-anything-b"}}, True),
    ('endsWith(concat(file.path, ""), "a*b")', {"file": {"path": "xa-anything-b"}}, False),
    # text fields search their keyword sub-field
    ('message == "Hello World"', {"message": "Hello World"}, True),
    ('message : "hello world"', {"message": "Hello World"}, True),
    # optional fields that no index maps are null
    ("?nope == null", {"nope": "x"}, True),
]


@pytest.mark.parametrize(("text", "source", "selected"), SELECTS, ids=[f"{r[0]} {r[1]}" for r in SELECTS])
def test_what_elasticsearch_selects(text: str, source: dict[str, Any], selected: bool) -> None:
    planned = push_down(text, FIELDS)
    assert planned.matches(source) is selected
    if planned.residual is not None:
        assert planned.residual.matches(source) is selected


def test_date_math_is_pushed_down_but_not_evaluated_here() -> None:
    planned = push_down('@timestamp > "now-1d"', FIELDS)
    assert planned.dsl == {"range": {"@timestamp": {"gt": "now-1d", "time_zone": "Z"}}}
    with pytest.raises(EqlRuntimeError):
        planned.matches({"@timestamp": "2024-01-01"})


def test_constant_errors_are_verification_errors() -> None:
    with pytest.raises(EqlVerificationError):
        push_down("divide(1, 0) == 1", FIELDS)


REGEX: list[tuple[str, str, bool]] = [
    ("ab.*c", "abxxc", True),
    ("a.c", "a\nc", True),  # Lucene's . matches a newline
    ("[a-c]+", "abca", True),
    ("[^a]x", "ax", False),
    ("a{2,3}", "aaa", True),
    ("a{2,3}", "aaaa", False),
    ("a{2,}", "aaaaa", True),
    ('"a.b"', "a.b", True),
    ('"a.b"', "axb", False),
    ("<1-10>", "7", True),
    ("<1-10>", "11", False),
    ("@", "anything", True),
    ("#", "", False),
    ("cmd\\.exe", "cmd.exe", True),
    ("\\d+", "123", True),
    ("(ab)*", "abab", True),
    ("ab", "xaby", False),  # anchored to the whole value
    ("^a$", "^a$", True),  # ^ and $ are plain characters
]


@pytest.mark.parametrize(("pattern", "text", "matches"), REGEX, ids=[f"{r[0]} {r[1]!r}" for r in REGEX])
def test_lucene_regex(pattern: str, text: str, matches: bool) -> None:
    assert compile_regex(pattern).matches(text) is matches


def test_catastrophic_patterns_run_in_linear_time() -> None:
    started = time.monotonic()
    assert not compile_regex("(a+)+b").matches("a" * 20_000)
    assert not compile_regex("(a|aa)*c").matches("a" * 20_000)
    assert not wildcard_match("*a*a*a*a*a*a*b", "a" * 5_000)
    planned = push_down('concat(process.name, "") regex "(a+)+b"', FIELDS)
    assert not planned.matches({"process": {"name": "a" * 5_000}})
    assert time.monotonic() - started < 10


def test_automata_are_bounded() -> None:
    from job.eql.errors import PatternError

    with pytest.raises(PatternError):
        compile_regex("(a{1000}){1000}")


@pytest.mark.parametrize(
    ("text", "pattern", "equal"),
    [
        ("cmd.exe", "CMD.EXE", True),
        ("Σ", "σ", True),
        ("ς", "Σ", False),
        ("STRASSE", "straße", False),
        ("ab", "a", False),
    ],
)
def test_lucene_case_folding(text: str, pattern: str, equal: bool) -> None:
    assert ci_equal(text, pattern) is equal
