"""DSL rows (spec §3, §4, §6): KQL -> the DSL Kibana emits, without and with a data view."""

from __future__ import annotations

from typing import Any

import pytest

from job.kql import lucene_to_dsl, parse, to_dsl
from job.kql.ast import Wildcard
from job.kql.dsl import DslOptions, build_dsl, query_string_pattern
from job.kql.fields import DataView, FieldSpec
from tests.unit.kql.builders import FIELDS, filter_, match, must_not, nested_dsl, phrase, sh, term

TZ = "Zulu"

NO_FIELDS_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    # §3 boolean operators
    ("and is bool.filter", "a:1 and b:2", filter_(match("a", "1"), match("b", "2"))),
    ("or is should + minimum_should_match", "a:1 or b:2", sh(match("a", "1"), match("b", "2"))),
    ("not is must_not with an object", "not a:1", must_not(match("a", "1"))),
    ("n-ary and stays flat", "a:1 and b:2 and c:3", filter_(match("a", "1"), match("b", "2"), match("c", "3"))),
    (
        "§6.10 grouping is not flattened",
        "(a:1 and b:2) and c:3",
        filter_(filter_(match("a", "1"), match("b", "2")), match("c", "3")),
    ),
    (
        "value list is a should of should blocks",
        'process.name:("cmd.exe" or "powershell.exe")',
        sh(phrase("process.name", "cmd.exe"), phrase("process.name", "powershell.exe")),
    ),
    ("value list with not", "f:(a and not b)", filter_(match("f", "a"), must_not(match("f", "b")))),
    # §3 is: match_all, free text
    ("*:* is match_all", "*:*", {"match_all": {}}),
    ("empty query is match_all", "", {"match_all": {}}),
    ("blank query is match_all", "   ", {"match_all": {}}),
    ("bare * is query_string, not match_all", "*", {"query_string": {"query": "*"}}),
    ("free-text wildcard is query_string", "jpg*", {"query_string": {"query": "jpg*"}}),
    ("free-text wildcard is escaped", "a:b*", sh({"query_string": {"fields": ["a"], "query": "b*"}})),
    (
        "free text is multi_match best_fields",
        "foo",
        {"multi_match": {"type": "best_fields", "query": "foo", "lenient": True}},
    ),
    (
        "quoted free text is multi_match phrase",
        '"foo bar"',
        {"multi_match": {"type": "phrase", "query": "foo bar", "lenient": True}},
    ),
    (
        "free-text number stays a string",
        "200",
        {"multi_match": {"type": "best_fields", "query": "200", "lenient": True}},
    ),
    (
        "free-text true is a JSON literal",
        "true",
        {"multi_match": {"type": "best_fields", "query": True, "lenient": True}},
    ),
    (
        "§6.1 field:a or b",
        "field:a or b",
        sh(match("field", "a"), {"multi_match": {"type": "best_fields", "query": "b", "lenient": True}}),
    ),
    # §3 is: one field
    ("match for unquoted value", "extension:jpg", match("extension", "jpg")),
    ("match_phrase for quoted value", 'extension:"jpg"', phrase("extension", "jpg")),
    ("exists for field:*", "extension:*", sh({"exists": {"field": "extension"}})),
    (
        "wildcard value is query_string with fields",
        "extension:jpg*",
        sh({"query_string": {"fields": ["extension"], "query": "jpg*"}}),
    ),
    ("§6.6 numbers stay strings", "bytes:070", match("bytes", "070")),
    (
        "§6.6 true/false/null are JSON literals",
        "f:(true or false or null)",
        sh(match("f", True), match("f", False), match("f", None)),
    ),
    ("TRUE is a string", "f:TRUE", match("f", "TRUE")),
    ("unknown wildcard field name is passed through", "machine*:osx", match("machine*", "osx")),
    ("escaped star in field name is a literal name", r"literal\*star:x", match("literal*star", "x")),
    ("*:value without data view is a field named *", "*:200", match("*", "200")),
    ("null field name is free text", "null:x", {"multi_match": {"type": "best_fields", "query": "x", "lenient": True}}),
    ("true field name becomes the key true", "true:x", match("true", "x")),
    # §3 wildcard escaping
    (
        "§6.7 whitespace is not escaped in query_string",
        "a:*S3 Browser*",
        sh({"query_string": {"fields": ["a"], "query": "*S3 Browser*"}}),
    ),
    (
        "? is escaped (no single-character wildcard)",
        "a:ab?c*",
        sh({"query_string": {"fields": ["a"], "query": "ab\\?c*"}}),
    ),
    ("escaped star is escaped for query_string", r"a:x\**", sh({"query_string": {"fields": ["a"], "query": "x\\**"}})),
    ("backslash is escaped", r"a:*\\*", sh({"query_string": {"fields": ["a"], "query": "*\\\\*"}})),
    (
        "path separators are escaped",
        r"f:C\:/Windows/*",
        sh({"query_string": {"fields": ["f"], "query": "C\\:\\/Windows\\/*"}}),
    ),
    # §3 range
    ("range gt with string value", "bytes > 1000", sh({"range": {"bytes": {"gt": "1000"}}})),
    ("range gte", "bytes >= 1000", sh({"range": {"bytes": {"gte": "1000"}}})),
    ("range lt", "bytes < 1000", sh({"range": {"bytes": {"lt": "1000"}}})),
    ("range lte", "bytes <= 1000", sh({"range": {"bytes": {"lte": "1000"}}})),
    ("* in a range value is text", "f < a*b", sh({"range": {"f": {"lt": "a*b"}}})),
    (
        "no time_zone without a data view",
        "@timestamp >= 2020-01-01",
        sh({"range": {"@timestamp": {"gte": "2020-01-01"}}}),
    ),
    ("no range for dates without a data view", '@timestamp:"2020-01-01"', phrase("@timestamp", "2020-01-01")),
    ("range with a JSON literal", "f < true", sh({"range": {"f": {"lt": True}}})),
    # §3 nested
    ("nested query", "n:{ c:x }", nested_dsl("n", match("n.c", "x"))),
    ("nested inside nested prefixes paths", "a:{ b:{ c:x } }", nested_dsl("a", nested_dsl("a.b", match("a.b.c", "x")))),
    ("range inside nested", "n:{ c > 3 }", nested_dsl("n", sh({"range": {"n.c": {"gt": "3"}}}))),
    ("free text inside nested becomes path.null", "n:{ x }", nested_dsl("n", match("n.null", "x"))),
    ("wildcard field inside nested", "n:{ c*:x }", nested_dsl("n", match("n.c*", "x"))),
    ("exists inside nested", "n:{ c:* }", nested_dsl("n", sh({"exists": {"field": "n.c"}}))),
    ("match_all inside nested", "n:{ *:* }", nested_dsl("n", {"match_all": {}})),
]


@pytest.mark.parametrize(("query", "expected"), [r[1:] for r in NO_FIELDS_ROWS], ids=[r[0] for r in NO_FIELDS_ROWS])
def test_dsl_without_field_types(query: str, expected: dict[str, Any]) -> None:
    assert to_dsl(query) == expected


def test_empty_field_map_is_no_data_view() -> None:
    assert to_dsl("@timestamp:x and a*:b", {}) == to_dsl("@timestamp:x and a*:b")


WITH_FIELDS_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    # §3 keyword-only fields
    ("keyword field gives term", "host.name:web-1", term("host.name", "web-1")),
    ("§6.8 quoted value on keyword is term, not match_phrase", 'host.name:"web 1"', term("host.name", "web 1")),
    (
        "keyword wildcard is a wildcard query",
        "machine.os.keyword:win*",
        sh({"wildcard": {"machine.os.keyword": {"value": "win*"}}}),
    ),
    (
        "keyword wildcard keeps whitespace in one pattern",
        "process.name:*S3 Browser*",
        sh({"wildcard": {"process.name": {"value": "*S3 Browser*"}}}),
    ),
    (
        "keyword wildcard escapes backslashes",
        r"process.name:*\\*",
        sh({"wildcard": {"process.name": {"value": "*\\\\*"}}}),
    ),
    ("keyword exists", "host.name:*", sh({"exists": {"field": "host.name"}})),
    ("keyword JSON literal value", "host.name:true", term("host.name", True)),
    # other types
    ("text field gives match", "message:error", match("message", "error")),
    ("text wildcard is query_string", "message:err*", sh({"query_string": {"fields": ["message"], "query": "err*"}})),
    ("long field gives match", "bytes:42", match("bytes", "42")),
    ("ip field gives match", "source.ip:10.0.0.1", match("source.ip", "10.0.0.1")),
    ("boolean field gives match", "is_admin:true", match("is_admin", True)),
    ("conflict keyword,text is not keyword-only", "mixed:x", match("mixed", "x")),
    (
        "conflict keyword,text wildcard is query_string",
        "mixed:x*",
        sh({"query_string": {"fields": ["mixed"], "query": "x*"}}),
    ),
    ("constant_keyword is not keyword", "const:x", match("const", "x")),
    ("wildcard type is not keyword", "wc:x*", sh({"query_string": {"fields": ["wc"], "query": "x*"}})),
    ("unknown field gets the generic treatment", "nosuch:x", match("nosuch", "x")),
    ("unknown field quoted", 'nosuch:"x y"', phrase("nosuch", "x y")),
    ("literal star in a known field name", r"literal\*star:x", term("literal*star", "x")),
    # §3 date fields (§6.9)
    (
        "date exact value is range gte=lte with time_zone",
        '@timestamp:"2018-04-03T19:04:17"',
        sh({"range": {"@timestamp": {"gte": "2018-04-03T19:04:17", "lte": "2018-04-03T19:04:17", "time_zone": TZ}}}),
    ),
    (
        "unquoted date value too",
        "@timestamp:2018-04-03",
        sh({"range": {"@timestamp": {"gte": "2018-04-03", "lte": "2018-04-03", "time_zone": TZ}}}),
    ),
    (
        "epoch digits get no time_zone",
        "@timestamp:1522782257000",
        sh({"range": {"@timestamp": {"gte": "1522782257000", "lte": "1522782257000"}}}),
    ),
    (
        "date_nanos is a date",
        "event.created:2020-01-01",
        sh({"range": {"event.created": {"gte": "2020-01-01", "lte": "2020-01-01", "time_zone": TZ}}}),
    ),
    (
        "date,date_nanos is still a date",
        "both_dates:2020",
        sh({"range": {"both_dates": {"gte": "2020", "lte": "2020"}}}),
    ),
    ("date,keyword conflict is not a date", "stamp_or_kw:2020", match("stamp_or_kw", "2020")),
    (
        "date wildcard is query_string",
        "@timestamp:2020*",
        sh({"query_string": {"fields": ["@timestamp"], "query": "2020*"}}),
    ),
    ("date exists", "@timestamp:*", sh({"exists": {"field": "@timestamp"}})),
    (
        "date range gets time_zone",
        "@timestamp >= now-1d",
        sh({"range": {"@timestamp": {"gte": "now-1d", "time_zone": TZ}}}),
    ),
    (
        "date range with epoch gets none",
        "@timestamp < 1522782257000",
        sh({"range": {"@timestamp": {"lt": "1522782257000"}}}),
    ),
    ("non-date range gets none", "bytes > 10", sh({"range": {"bytes": {"gt": "10"}}})),
    # §4 wildcard field names
    (
        "wildcard field name expands in data-view order",
        "machine*:osx",
        sh(
            {"match": {"machine.os": "osx"}},
            {"term": {"machine.os.keyword": {"value": "osx"}}},
            {"term": {"machine.os.raw": {"value": "osx"}}},
        ),
    ),
    (
        "wildcard field name crosses dots",
        "process.*:cmd",
        sh({"term": {"process.name": {"value": "cmd"}}}, {"term": {"process.parent.name": {"value": "cmd"}}}),
    ),
    ("wildcard field name matching nothing is passed through", "zzz*:x", match("zzz*", "x")),
    (
        "wildcard field name with wildcard value",
        "ext*:jp*",
        sh(
            {"query_string": {"fields": ["extension"], "query": "jp*"}},
            {"wildcard": {"extension.keyword": {"value": "jp*"}}},
        ),
    ),
    (
        "wildcard field name exists",
        "ext*:*",
        sh({"exists": {"field": "extension"}}, {"exists": {"field": "extension.keyword"}}),
    ),
    (
        "wildcard field name range",
        "ext* > 5",
        sh({"range": {"extension": {"gt": "5"}}}, {"range": {"extension.keyword": {"gt": "5"}}}),
    ),
    ("object paths are not fields", "obj*:x", term("obj.inner", "x")),
    (
        "wildcard reaching a nested field wraps it",
        "*doublyNested*:foo",
        sh(
            nested_dsl(
                "nestedField.nestedChild", {"term": {"nestedField.nestedChild.doublyNestedChild": {"value": "foo"}}}
            )
        ),
    ),
    (
        "wildcard range reaching a nested field wraps it",
        "nestedField.c* > 1",
        sh(nested_dsl("nestedField", {"range": {"nestedField.child": {"gt": "1"}}})),
    ),
    (
        "*:value covers every field, each by its type",
        "*:1",
        sh(
            {"range": {"@timestamp": {"gte": "1", "lte": "1"}}},
            {"range": {"both_dates": {"gte": "1", "lte": "1"}}},
            {"match": {"bytes": "1"}},
            {"match": {"const": "1"}},
            {"range": {"event.created": {"gte": "1", "lte": "1"}}},
            {"match": {"extension": "1"}},
            {"term": {"extension.keyword": {"value": "1"}}},
            {"term": {"host.name": {"value": "1"}}},
            {"match": {"is_admin": "1"}},
            {"term": {"literal*star": {"value": "1"}}},
            {"match": {"machine.os": "1"}},
            {"term": {"machine.os.keyword": {"value": "1"}}},
            {"term": {"machine.os.raw": {"value": "1"}}},
            {"match": {"message": "1"}},
            {"match": {"mixed": "1"}},
            nested_dsl("nestedField", {"term": {"nestedField.child": {"value": "1"}}}),
            nested_dsl(
                "nestedField.nestedChild", {"term": {"nestedField.nestedChild.doublyNestedChild": {"value": "1"}}}
            ),
            nested_dsl("nestedField", {"match": {"nestedField.text": "1"}}),
            {"term": {"obj.inner": {"value": "1"}}},
            {"term": {"process.name": {"value": "1"}}},
            {"term": {"process.parent.name": {"value": "1"}}},
            {"match": {"source.ip": "1"}},
            {"match": {"stamp_or_kw": "1"}},
            {"match": {"wc": "1"}},
        ),
    ),
    # §3 nested with a data view
    (
        "nested group with typed child",
        "nestedField:{ child:x }",
        nested_dsl("nestedField", term("nestedField.child", "x")),
    ),
    (
        "doubly nested groups",
        "nestedField:{ nestedChild:{ doublyNestedChild:foo } }",
        nested_dsl(
            "nestedField",
            nested_dsl("nestedField.nestedChild", term("nestedField.nestedChild.doublyNestedChild", "foo")),
        ),
    ),
    (
        "wildcard inside a group is not wrapped again",
        "nestedField:{ ch*:x }",
        nested_dsl("nestedField", term("nestedField.child", "x")),
    ),
    (
        "unknown field inside a group is not validated",
        "nestedField:{ nosuch:x }",
        nested_dsl("nestedField", match("nestedField.nosuch", "x")),
    ),
    ("mixed query", "host.name:a and not message:b", filter_(term("host.name", "a"), must_not(match("message", "b")))),
]


@pytest.mark.parametrize(("query", "expected"), [r[1:] for r in WITH_FIELDS_ROWS], ids=[r[0] for r in WITH_FIELDS_ROWS])
def test_dsl_with_field_types(query: str, expected: dict[str, Any]) -> None:
    assert to_dsl(query, FIELDS) == expected


ESCAPE_ROWS = [(char, "\\" + char) for char in '+-=&|><!(){}[]^"~*?:\\/'] + [(" ", " "), ("a", "a"), (".", ".")]


@pytest.mark.parametrize(("char", "escaped"), ESCAPE_ROWS)
def test_query_string_escaping_of_each_character(char: str, escaped: str) -> None:
    assert query_string_pattern(Wildcard((char, char))) == f"{escaped}*{escaped}"


LUCENE_ROWS = [
    (
        "query_string with the detection engine's options",
        "process.name:cmd.exe AND NOT user.name:SYSTEM",
        {
            "query_string": {
                "query": "process.name:cmd.exe AND NOT user.name:SYSTEM",
                "analyze_wildcard": True,
                "time_zone": "Zulu",
            }
        },
    ),
    (
        "query text is passed through untouched",
        "  a:b  ",
        {"query_string": {"query": "  a:b  ", "analyze_wildcard": True, "time_zone": "Zulu"}},
    ),
    ("empty lucene query is match_all", "", {"match_all": {}}),
    ("blank lucene query is match_all", " \t\n", {"match_all": {}}),
]


@pytest.mark.parametrize(("query", "expected"), [r[1:] for r in LUCENE_ROWS], ids=[r[0] for r in LUCENE_ROWS])
def test_lucene_query(query: str, expected: dict[str, Any]) -> None:
    assert lucene_to_dsl(query) == expected


OPTION_ROWS: list[tuple[str, str, DslOptions, dict[str, Any]]] = [
    (
        "filtersInMustClause makes and a must",
        "a:1 and b:2",
        DslOptions(filters_in_must_clause=True),
        {"bool": {"must": [match("a", "1"), match("b", "2")]}},
    ),
    (
        "caseInsensitive on term",
        "host.name:Web",
        DslOptions(case_insensitive=True),
        sh({"term": {"host.name": {"value": "Web", "case_insensitive": True}}}),
    ),
    (
        "caseInsensitive false is sent too",
        "host.name:w*",
        DslOptions(case_insensitive=False),
        sh({"wildcard": {"host.name": {"value": "w*", "case_insensitive": False}}}),
    ),
    ("caseInsensitive leaves match alone", "message:Web", DslOptions(case_insensitive=True), match("message", "Web")),
    (
        "nestedIgnoreUnmapped on a nested group",
        "nestedField:{ child:x }",
        DslOptions(nested_ignore_unmapped=True),
        {
            "nested": {
                "path": "nestedField",
                "query": term("nestedField.child", "x"),
                "score_mode": "none",
                "ignore_unmapped": True,
            }
        },
    ),
    (
        "nestedIgnoreUnmapped on an automatic nested query",
        "nestedField.ch*:x",
        DslOptions(nested_ignore_unmapped=False),
        sh(
            {
                "nested": {
                    "path": "nestedField",
                    "query": {"term": {"nestedField.child": {"value": "x"}}},
                    "score_mode": "none",
                    "ignore_unmapped": False,
                }
            }
        ),
    ),
    (
        "another dateFormatTZ",
        "@timestamp:2020-01-01",
        DslOptions(date_format_tz="America/Phoenix"),
        sh({"range": {"@timestamp": {"gte": "2020-01-01", "lte": "2020-01-01", "time_zone": "America/Phoenix"}}}),
    ),
    (
        "no dateFormatTZ, no time_zone",
        "@timestamp > 2020",
        DslOptions(date_format_tz=None),
        sh({"range": {"@timestamp": {"gt": "2020"}}}),
    ),
]


@pytest.mark.parametrize(
    ("query", "options", "expected"), [r[1:] for r in OPTION_ROWS], ids=[r[0] for r in OPTION_ROWS]
)
def test_kibana_query_options(query: str, options: DslOptions, expected: dict[str, Any]) -> None:
    assert build_dsl(parse(query), DataView(FIELDS), query, options) == expected


def test_detection_engine_options_are_the_default() -> None:
    assert DslOptions() == DslOptions(date_format_tz="Zulu", case_insensitive=None, nested_ignore_unmapped=None)


RESOLUTION_ROWS: list[tuple[str, dict[str, str], str, list[str]]] = [
    # (id, field map, wildcard pattern, matched field names in order)
    ("* crosses dots", {"a.b.c": "keyword", "a": "keyword", "b": "keyword"}, "a*", ["a", "a.b.c"]),
    ("* matches newlines in names", {"a\nb": "keyword"}, "a*b", ["a\nb"]),
    ("other regex characters are literal", {"a.b": "keyword", "axb": "keyword"}, "a.*", ["a.b"]),
    (
        "order is by UTF-16 code unit",
        {"\U0001f600": "keyword", "\uffff": "keyword", "Z": "keyword", "a": "keyword"},
        "*",
        ["Z", "a", "\U0001f600", "\uffff"],
    ),
    ("object and nested paths are not fields", {"o": "object", "n": "nested", "n.x": "long"}, "*", ["n.x"]),
]


@pytest.mark.parametrize(
    ("fields", "pattern", "names"), [r[1:] for r in RESOLUTION_ROWS], ids=[r[0] for r in RESOLUTION_ROWS]
)
def test_wildcard_field_resolution(fields: dict[str, str], pattern: str, names: list[str]) -> None:
    assert [spec.name for spec in DataView(fields).matching(tuple(pattern.split("*")))] == names


TYPE_ROWS: list[tuple[str, str, bool, bool]] = [
    # (es type string, keyword-only, date)
    ("keyword", True, False),
    ("keyword,keyword", True, False),
    ("keyword,text", False, False),
    ("text", False, False),
    ("match_only_text", False, False),
    ("constant_keyword", False, False),
    ("wildcard", False, False),
    ("date", False, True),
    ("date_nanos", False, True),
    ("date,date_nanos", False, True),
    ("date,keyword", False, False),
]


@pytest.mark.parametrize(("types", "keyword", "date"), TYPE_ROWS)
def test_keyword_and_date_tests(types: str, keyword: bool, date: bool) -> None:
    spec = DataView({"f": types}).get("f")
    assert spec is not None
    assert (spec.is_keyword, spec.is_date) == (keyword, date)


def test_nested_path_is_the_closest_nested_parent() -> None:
    view = DataView({"a": "nested", "a.b": "object", "a.b.c": "nested", "a.b.c.d": "keyword", "a.x": "keyword"})
    assert view.get("a.b.c.d") == FieldSpec("a.b.c.d", ("keyword",), "a.b.c")
    assert view.get("a.x") == FieldSpec("a.x", ("keyword",), "a")


def test_field_map_values_must_be_strings() -> None:
    with pytest.raises(TypeError):
        to_dsl("a:b", {"a": ["keyword"]})  # type: ignore[dict-item]
