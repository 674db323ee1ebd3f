"""Push-down: the DSL Elasticsearch builds for every operator and function, the residual where it would
run a script, and the verification errors it gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from job.eql import EqlVerificationError, describe, plan, push_down
from tests.unit.eql.fields import FIELDS

ROOT = Path(__file__).resolve().parents[3]
MATCH_ALL: dict[str, Any] = {"match_all": {}}
MATCH_NONE: dict[str, Any] = {"match_none": {}}


def term(field: str, value: Any, ci: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"value": value}
    if ci:
        params["case_insensitive"] = True
    return {"term": {field: params}}


def kind(query: str, field: str, value: str, ci: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {"value": value}
    if ci:
        params["case_insensitive"] = True
    return {query: {field: params}}


def must_not(query: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": [query]}}


def rng(field: str, **bounds: Any) -> dict[str, Any]:
    return {"range": {field: bounds}}


EXISTS = {"exists": {"field": "process.name"}}

# (condition, exact DSL, the client-side predicates' text -- None when the DSL is exact)
ROWS: list[tuple[str, dict[str, Any], list[str] | None]] = [
    # comparisons
    ('process.name == "cmd.exe"', term("process.name", "cmd.exe"), None),
    ('process.name != "cmd.exe"', must_not(term("process.name", "cmd.exe")), None),
    ("process.pid < 5", rng("process.pid", lt=5), None),
    ("process.pid <= 5", rng("process.pid", lte=5), None),
    ("process.pid > 5", rng("process.pid", gt=5), None),
    ("process.pid >= 5", rng("process.pid", gte=5), None),
    ("5 < process.pid", rng("process.pid", gt=5), None),  # literals go to the right
    ("not process.pid < 5", rng("process.pid", gte=5), None),  # not is pushed into the comparison
    ("not process.pid == 5", must_not(term("process.pid", 5)), None),
    ("process.pid > 1 and process.pid <= 9", rng("process.pid", gt=1, lte=9), None),  # one range
    ("process.pid > 1 and process.pid > 3", rng("process.pid", gt=3), None),
    ('@timestamp > "2024-01-01"', rng("@timestamp", gt="2024-01-01", time_zone="Z"), None),
    ("score == 1.5", term("score", 1.5), None),
    ('source.ip == "10.0.0.1"', term("source.ip", "10.0.0.1"), None),
    ('source.ip == "10.0.0.0/8"', term("source.ip", "10.0.0.0/8"), None),
    ("is_admin == true", term("is_admin", True), None),
    ("is_admin", term("is_admin", True), None),
    ('ck == "x"', term("ck", "x"), None),
    # null checks and optional fields
    ("process.name == null", must_not(EXISTS), None),
    ("process.name != null", EXISTS, None),
    ("null == process.name", must_not(EXISTS), None),
    ("?missing.field == null", MATCH_ALL, None),
    ("?missing.field != null", MATCH_NONE, None),
    ('?missing.field == "x"', MATCH_NONE, None),
    ('?process.name == "x"', term("process.name", "x"), None),
    # in, not in, in~
    ('process.name in ("a", "b", null)', {"terms": {"process.name": ["a", "b"]}}, None),
    ('process.name not in ("a")', must_not({"terms": {"process.name": ["a"]}}), None),
    (
        'process.name in~ ("A", "b")',
        {"bool": {"should": [term("process.name", "A", True), term("process.name", "b", True)]}},
        None,
    ),
    ('process.name not in~ ("A")', must_not(term("process.name", "A", True)), None),
    ("process.pid in (1, 2)", {"terms": {"process.pid": [1, 2]}}, None),
    ("process.name in (null)", MATCH_NONE, None),
    ('process.name == "a" or process.name == "b"', {"terms": {"process.name": ["a", "b"]}}, None),
    ('process.name == "a" and process.name == "b"', MATCH_NONE, None),  # PropagateEquals
    ("process.pid == 5 and process.pid > 1", term("process.pid", 5), None),
    # ':' and like, like~, regex, regex~
    ('process.name : "CMD.exe"', term("process.name", "CMD.exe", True), None),
    ('process.name : "cmd*"', kind("wildcard", "process.name", "cmd*", True), None),
    ('process.name : "cm?.exe"', kind("wildcard", "process.name", "cm?.exe", True), None),
    (
        'process.name : ("a", "b*")',
        {"bool": {"should": [term("process.name", "a", True), kind("wildcard", "process.name", "b*", True)]}},
        None,
    ),
    ('process.name : "*"', EXISTS, None),
    ('not process.name : "a"', must_not(term("process.name", "a", True)), None),
    ('process.name like "C:\\\\*"', kind("wildcard", "process.name", "C:\\\\*"), None),
    ('process.name like~ "a?c"', kind("wildcard", "process.name", "a?c", True), None),
    (
        'process.name like ("a*", "b*")',
        {"bool": {"should": [kind("wildcard", "process.name", "a*"), kind("wildcard", "process.name", "b*")]}},
        None,
    ),
    ('process.name like "abc"', term("process.name", "abc"), None),
    ('process.name like~ "abc"', term("process.name", "abc", True), None),
    ('process.name like "**"', EXISTS, None),
    ('not process.name like "a*"', must_not(kind("wildcard", "process.name", "a*")), None),
    ('process.name regex "a.*"', kind("regexp", "process.name", "a.*"), None),
    ('process.name regex~ "a.*"', kind("regexp", "process.name", "a.*", True), None),
    ('process.name regex ("a.c", "b+")', kind("regexp", "process.name", "a.c|b+"), None),
    ('process.name regex "abc"', term("process.name", "abc"), None),
    ('process.name regex~ "abc"', term("process.name", "abc", True), None),
    ('process.name regex ".*"', EXISTS, None),
    # text fields: exact matches on the keyword sub-field, ranges and exists on the field itself
    ('message == "hello"', term("message.keyword", "hello"), None),
    ('message : "hello"', term("message.keyword", "hello", True), None),
    ('message < "m"', rng("message", lt="m"), None),
    ("message != null", {"exists": {"field": "message"}}, None),
    # functions Elasticsearch pushes down
    ('startsWith(process.name, "cmd")', kind("prefix", "process.name", "cmd"), None),
    ('startsWith~(process.name, "CMD")', kind("prefix", "process.name", "CMD", True), None),
    ('endsWith(file.path, ".exe")', kind("wildcard", "file.path", "*.exe"), None),
    ('endsWith~(file.path, ".EXE")', kind("wildcard", "file.path", "*.EXE", True), None),
    ('stringContains(file.path, "sys")', kind("wildcard", "file.path", "*sys*"), None),
    ('stringContains~(file.path, "SYS")', kind("wildcard", "file.path", "*SYS*", True), None),
    ('endsWith(file.path, "a*b")', kind("wildcard", "file.path", "*a*b"), None),  # unescaped, as ES
    ('startsWith(message, "he")', kind("prefix", "message.keyword", "he"), None),
    (
        'cidrMatch(source.ip, "10.0.0.0/8", "192.168.0.0/16")',
        {"terms": {"source.ip": ["10.0.0.0/8", "192.168.0.0/16"]}},
        None,
    ),
    ('startsWith(process.name, "a") == false', must_not(kind("prefix", "process.name", "a")), None),
    # arithmetic on integers folded into the comparison (SimplifyComparisonsArithmetics)
    ("process.pid + 1 == 2", term("process.pid", 1), None),
    ("1 + process.pid == 2", term("process.pid", 1), None),
    ("process.pid - 1 > 5", rng("process.pid", gt=6), None),
    ("10 - process.pid > 4", rng("process.pid", lt=6), None),
    ("2 * process.pid == 4", term("process.pid", 2), None),
    ("-2 * process.pid >= 4", rng("process.pid", lte=-2), None),
    ("-process.pid < 3", rng("process.pid", gt=-3), None),
    ("score + 1 == 2", MATCH_ALL, ["score + 1 == 2"]),  # a double field: not simplified
    ("process.pid / 2 == 1", MATCH_ALL, ["process.pid / 2 == 1"]),  # integer division: not simplified
    # constants
    ("true", MATCH_ALL, None),
    ("false", MATCH_NONE, None),
    ("1 == 1", MATCH_ALL, None),
    ('concat("a", "b") == "ab"', MATCH_ALL, None),
    ("null", MATCH_NONE, None),
    # scripts: match_all in the DSL, the predicate on the client
    ("length(process.name) > 3", MATCH_ALL, ["length(process.name) > 3"]),
    ("length(process.name) > 3 and process.pid == 1", term("process.pid", 1), ["length(process.name) > 3"]),
    ("length(process.name) > 3 or process.pid == 1", MATCH_ALL, ["length(process.name) > 3"]),
    (
        "not (length(process.name) > 3 or process.pid == 1)",
        must_not(term("process.pid", 1)),
        ["length(process.name) > 3"],  # now <= 3, shown at its source
    ),
    (
        'not startsWith(concat(process.name, "x"), "a") and process.pid == 1',
        term("process.pid", 1),
        ['not startsWith(concat(process.name, "x"), "a")'],
    ),
    (
        'not (startsWith(concat(process.name, "x"), "a") and process.pid == 1)',
        MATCH_ALL,
        ['startsWith(concat(process.name, "x"), "a")'],
    ),
    (
        'process.name : "a" and length(file.path) == 2 or process.pid > 3',
        {"bool": {"should": [term("process.name", "a", True), rng("process.pid", gt=3)]}},
        ["length(file.path) == 2"],
    ),
    ('concat(process.name, "x") : "ax"', MATCH_ALL, ['concat(process.name, "x") : "ax"']),
    ('concat(process.name, "x") like "a*"', MATCH_ALL, ['concat(process.name, "x") like "a*"']),
    ('between(file.path, "a", "b") == "x"', MATCH_ALL, ['between(file.path, "a", "b") == "x"']),
    (
        'process.name == "a" and cidrMatch(source.ip, "10.0.0.0/8") and indexOf(file.path, "x") == 2',
        {"bool": {"must": [term("process.name", "a"), {"terms": {"source.ip": ["10.0.0.0/8"]}}]}},
        ['indexOf(file.path, "x") == 2'],
    ),
]


@pytest.mark.parametrize(("condition", "dsl", "client"), ROWS, ids=[row[0] for row in ROWS])
def test_push_down(condition: str, dsl: dict[str, Any], client: list[str] | None) -> None:
    planned = push_down(condition, FIELDS)
    assert planned.dsl == dsl
    if client is None:
        assert planned.residual is None
    else:
        assert planned.residual is not None
        text = "any where " + condition  # offsets are into the statement push_down parses
        assert [text[p.start : p.end] for p in planned.residual.predicates] == client


def test_category_term_and_request_shape() -> None:
    planned = push_down('process.name == "a"', FIELDS, category="process")
    assert planned.dsl == {"bool": {"must": [term("event.category", "process"), term("process.name", "a")]}}
    other = push_down("true", FIELDS, category="process", category_field="event.type")
    assert other.dsl == term("event.type", "process")


ERRORS: list[tuple[str, str, int]] = [
    # (condition, message, 1-based column in "any where <condition>")
    ("nope == 1", "Unknown column [nope]", 11),
    ("process.nam == 1", "Unknown column [process.nam], did you mean any of [process.name, process.pid]?", 11),
    (
        'title == "x"',
        '[title == "x"] cannot operate on first argument field of data type [text]: No keyword/multi-field defined '
        "exact matches for [title]; define one or use MATCH/QUERY instead",
        11,
    ),
    (
        'startsWith(title, "x")',
        '[startsWith(title, "x")] cannot operate on first argument field of data type [text]',
        22,
    ),
    (
        "process.name == user.name",
        "Comparisons against fields are not (currently) supported; offender [user.name] in [==]",
        27,
    ),
    ("length(process.name) == length(user.name)", "offender [length(user.name)] in [==]", 35),
    ("process.name in (user.name)", "offender [user.name] in [process.name in (user.name)]", 28),
    (
        'process.pid in (1, "2")',
        '2nd argument of [process.pid in (1, "2")] must be [long], found value ["2"] type [keyword]',
        30,
    ),
    (
        'source.ip in ("10.0.0.1")',
        '1st argument of [source.ip in ("10.0.0.1")] must be [ip], found value ["10.0.0.1"] type',
        25,
    ),
    ('title like "x*"', '[title like "x*"] cannot operate on field of data type [text]: No keyword/multi-field', 11),
    ('string(title) == "x"', "[string(title)] cannot operate on field of data type [text]: No keyword", 18),
    (
        'process.pid : "5"',
        'first argument of [process.pid : "5"] must be [string], found value [process.pid] type [long]',
        11,
    ),
    ("process.name : 5", "second argument of [process.name : 5] must be [string], found value [5] type [integer]", 26),
    ("length(process.pid) > 1", "argument of [length(process.pid)] must be [string], found value [process.pid]", 18),
    (
        'cidrMatch(process.name, "10.0.0.0/8")',
        'first argument of [cidrMatch(process.name, "10.0.0.0/8")] must be [ip]',
        21,
    ),
    ('cidrMatch("10.1.1.1", "10.0.0.0/8")', 'first argument of [cidrMatch("10.1.1.1", "10.0.0.0/8")] must be [ip]', 21),
    (
        "number(process.name, process.pid) == 1",
        "second argument of [number(process.name, process.pid)] must be a constant",
        32,
    ),
    ('wildcard(process.name, "a*")', "Unknown function [wildcard]", 11),
    ("length~(process.name) > 1", "Function [length] does not support case-(in)sensitivity", 11),
    ("length() > 1", "error building [length]: expects exactly one argument", 11),
    ('substring(process.name) == "a"', "error building [substring]: expects two or three arguments", 11),
    ('tags.key == "x"', "Cannot use field [tags.key] type [keyword] with unsupported nested type in hierarchy", 11),
    ("tags == 1", "Cannot use field [tags] type [nested] due to nested fields not being supported yet", 11),
    ("host == 1", "Cannot use field [host] type [object] only its subfields", 11),
    ("geo == 1", "Cannot use field [geo] with unsupported type [geo_point]", 11),
    (
        'mixed == "x"',
        "Cannot use field [mixed] due to ambiguities being mapped as [2] incompatible types: [keyword], [text]",
        11,
    ),
    ('process.pid == "abc"', 'failed to create query: For input string: "abc"', 26),
    ('source.ip == "nope"', "'nope' is not an IP string literal.", 24),
    ('@timestamp > "yesterday"', "failed to parse date field [yesterday]", 24),
    ('is_admin == "maybe"', "Can't parse boolean value [maybe], expected [true] or [false]", 23),
    ("process.name", "Condition expression needs to be boolean, found [KEYWORD]", 11),
    ('process.name regex "a&b"', "the intersection operator [&] is not supported", 11),
    ('process.name regex "' + "a" * 1000 + '.*"', "exceeded the allowed maximum of [1000]", 11),
    ('number("x") == 1', "Unable to convert [x] to number of base [10]", 11),
]


@pytest.mark.parametrize(("condition", "message", "column"), ERRORS, ids=[row[0][:60] for row in ERRORS])
def test_verification_errors(condition: str, message: str, column: int) -> None:
    with pytest.raises(EqlVerificationError) as caught:
        push_down(condition, FIELDS)
    assert message in caught.value.message
    assert caught.value.column == column


def test_every_problem_is_reported() -> None:
    with pytest.raises(EqlVerificationError) as caught:
        push_down("nope == 1 and nada == 2", FIELDS)
    assert caught.value.message == (
        "Found 2 problems\nline 1:11: Unknown column [nope]\nline 1:25: Unknown column [nada]"
    )
    assert [d.column for d in caught.value.diagnostics("r.toml")] == [11, 25]


def test_too_many_terms_is_elasticsearch_error() -> None:
    values = ", ".join(f'"v{i}"' for i in range(65_537))
    with pytest.raises(EqlVerificationError) as caught:
        push_down(f"process.name in ({values})", FIELDS)
    assert "The number of terms [65537] used in the Terms Query request has exceeded" in caught.value.message


SEQUENCE = (
    "sequence by host.id with maxspan=1m "
    '[process where process.name == "a" and host.id == "h1"] by user.name '
    "[network where length(process.name) > 3] by ?user.nope with runs=2 "
    '![file where file.path : "x*"] by user.name '
    "[process where true] by user.name "
    'until [process where event.type == "stop"] by user.name'
)


def test_a_sequence_plan() -> None:
    planned = plan(SEQUENCE, FIELDS)
    assert [stage.kind for stage in planned.stages] == ["positive", "positive", "positive", "missing", "positive"]
    assert [stage.source_position for stage in planned.stages] == [0, 1, 1, 2, 3]
    assert planned.until is not None and planned.until.kind == "until"
    assert planned.maxspan_ms == 60_000
    first, second = planned.stages[0].push, planned.stages[1].push
    assert first.dsl == {
        "bool": {
            "must": [
                term("event.category", "process"),
                term("process.name", "a"),
                term("host.id", "h1"),
                {"exists": {"field": "host.id"}},
                {"exists": {"field": "user.name"}},
            ]
        }
    }
    # the constraint on the sequence key is copied to the other stages; no exists on an optional key
    assert second.dsl == {
        "bool": {"must": [term("event.category", "network"), term("host.id", "h1"), {"exists": {"field": "host.id"}}]}
    }
    assert second.residual is not None
    assert planned.stages[1].keys[1].value is None  # type: ignore[union-attr]  # ?user.nope is unmapped: null
    assert planned.until.push.dsl["bool"]["must"][1] == term("event.type", "stop")
    shown = describe(planned)
    assert "stage 2 (runs=2): [network where length(process.name) > 3]" in shown
    assert "evaluated on the client: length(process.name) > 3" in shown
    assert "missing stage 3" in shown and "until 5" in shown


def test_stage_keys() -> None:
    planned = plan(SEQUENCE, FIELDS)
    first, second = planned.stages[0], planned.stages[1]
    assert first.key({"host": {"id": "h"}, "user": {"name": "u"}}) == ("h", "u")
    assert first.key({"host": {"id": "h"}}) is None  # a null key never joins
    assert second.key({"host.id": "h"}) == ("h", None)  # an optional key may be null
    assert first.key({"host": {"id": ["a", "b"]}, "user": {"name": "u"}}) == (("a", "b"), "u")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('process where process.name == "a"', "Unknown column [@timestamp]"),
        ("sequence [a where true] [b where nope == 1]", "Unknown column [nope]"),
    ],
)
def test_plan_verification(query: str, message: str) -> None:
    fields = {k: v for k, v in FIELDS.items() if k != "@timestamp"}
    with pytest.raises(EqlVerificationError) as caught:
        plan(query, fields)
    assert message in caught.value.message


def test_samples_need_no_timestamp() -> None:
    fields = {k: v for k, v in FIELDS.items() if k != "@timestamp"}
    planned = plan("sample by host.id [process where true] [network where true]", fields)
    assert planned.kind == "sample" and len(planned.stages) == 2


def test_describe_an_event_query() -> None:
    shown = describe(plan('process where process.name == "a" and length(user.name) > 2', FIELDS))
    assert shown.splitlines()[0] == 'event query: process where process.name == "a" and length(user.name) > 2'
    assert '"term": {' in shown
    assert shown.endswith("evaluated on the client: length(user.name) > 2")


def test_the_package_is_pure() -> None:
    """No Elasticsearch client, no clock, nothing of the run path: job.eql imports none of them."""
    code = (
        "import sys, job.eql; "
        "print(sorted(m for m in sys.modules if m.startswith(('job.run', 'elasticsearch', 'job.rules'))))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert found.stdout.strip() == "[]"
    for module in (ROOT / "job" / "eql").glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert ".now(" not in text and "time.time(" not in text and "monotonic(" not in text, module.name
