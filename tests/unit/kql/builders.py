"""Short constructors for expected syntax trees and DSL in the KQL test tables, and their field map."""

from __future__ import annotations

from typing import Any

from job.kql.ast import And, Is, Literal, Nested, Node, Not, Or, Range, RangeOp, Value, Wildcard

# A data view covering every kind of field the tables need.
FIELDS: dict[str, str] = {
    "@timestamp": "date",
    "event.created": "date_nanos",
    "bytes": "long",
    "extension": "text",
    "extension.keyword": "keyword",
    "machine.os": "text",
    "machine.os.raw": "keyword",
    "machine.os.keyword": "keyword",
    "host.name": "keyword",
    "process.name": "keyword",
    "process.parent.name": "keyword",
    "message": "text",
    "source.ip": "ip",
    "is_admin": "boolean",
    "mixed": "keyword,text",
    "stamp_or_kw": "date,keyword",
    "both_dates": "date,date_nanos",
    "const": "constant_keyword",
    "wc": "wildcard",
    "literal*star": "keyword",
    "nestedField": "nested",
    "nestedField.child": "keyword",
    "nestedField.text": "text",
    "nestedField.nestedChild": "nested",
    "nestedField.nestedChild.doublyNestedChild": "keyword",
    "obj": "object",
    "obj.inner": "keyword",
}


def lit(value: str | bool | None) -> Literal:
    return Literal(value)


def quoted(value: str) -> Literal:
    return Literal(value, quoted=True)


def wild(pattern: str) -> Wildcard:
    """A wildcard node from a pattern where every ``*`` is a wildcard."""
    return Wildcard(tuple(pattern.split("*")))


def _value(value: Value | str | bool | None) -> Value:
    if isinstance(value, Literal | Wildcard):
        return value
    if isinstance(value, str) and "*" in value:
        return wild(value)
    return lit(value)


def is_(field: Value | str | None, value: Value | str | bool | None) -> Is:
    """``field:value``; plain strings become unquoted literals (wildcards when they hold ``*``)."""
    return Is(None if field is None else _value(field), _value(value))


def rng(field: str, op: RangeOp, value: Value | str) -> Range:
    return Range(_value(field), op, _value(value))


def and_(*children: Node) -> And:
    return And(children)


def or_(*children: Node) -> Or:
    return Or(children)


def not_(child: Node) -> Not:
    return Not(child)


def nested(path: str, query: Node) -> Nested:
    return Nested(_value(path), query)


def sh(*clauses: dict[str, Any]) -> dict[str, Any]:
    """Kibana's ``{"bool": {"should": [...], "minimum_should_match": 1}}``."""
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


def match(field: str, value: Any) -> dict[str, Any]:
    return sh({"match": {field: value}})


def phrase(field: str, value: str) -> dict[str, Any]:
    return sh({"match_phrase": {field: value}})


def term(field: str, value: Any) -> dict[str, Any]:
    return sh({"term": {field: {"value": value}}})


def filter_(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": list(clauses)}}


def must_not(clause: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": clause}}


def nested_dsl(path: str, query: dict[str, Any]) -> dict[str, Any]:
    return {"nested": {"path": path, "query": query, "score_mode": "none"}}
