"""The EQL rule corpus of tests/fixtures/eql_corpus and events generated to match its rules.

The corpus holds 41 EQL rule files of our own, shaped like the endpoint rules of elastic/detection-rules:
categories and ``any``, optional ``?`` fields, wildcard lists with ``:``, ``like~``, ``regex~``, the string
functions, ``cidrMatch``, ``in`` lists of numbers, ``length`` (a residual), ``event_category_override``,
``event.ingested`` as the timestamp override, and sequences by ``host.id``, ``process.entity_id`` and
per-stage keys with ``maxspan``, a missing event, ``runs`` and ``until``.

:func:`positives` builds, from a rule's parsed query, the events that must alert: for an event query one
event holding every ``and`` branch, the first ``or`` branch and nothing a ``not`` names; for a sequence one
event per positive stage (``runs`` repeated), in order, a second apart, sharing the join keys' values.
"""

from __future__ import annotations

import copy
import ipaddress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from job.eql import parse
from job.eql.ast import (
    And,
    Call,
    Compare,
    EventQuery,
    Expr,
    Field,
    In,
    Literal,
    MatchOp,
    Not,
    Or,
    SequenceQuery,
    Stage,
    statement_fields,
)
from job.rules import load_rules
from job.rules.model import EqlRule

CORPUS = Path(__file__).resolve().parent / "fixtures" / "eql_corpus"
# Fields of the corpus that are not keywords (every other field the corpus names is mapped as a keyword).
TYPED = {
    "@timestamp": "date",
    "event.ingested": "date",
    "process.pid": "long",
    "process.args_count": "long",
    "destination.port": "long",
    "source.port": "long",
    "destination.ip": "ip",
    "source.ip": "ip",
    "process.code_signature.trusted": "boolean",
}
# What the generator cannot derive from a condition (a regular expression's match).
EXAMPLES = {"process.name regex~": "qwertyui.exe"}


def corpus_rules() -> list[EqlRule]:
    result = load_rules([CORPUS])
    assert not result.problems, result.problems
    rules = sorted(result.rules, key=lambda rule: rule.rule_id)
    assert all(isinstance(rule, EqlRule) for rule in rules)
    return [rule for rule in rules if isinstance(rule, EqlRule)]


def field_types(rules: list[EqlRule]) -> dict[str, str]:
    """The corpus's fields as the corpus index maps them."""
    names: dict[str, str] = {}
    for rule in rules:
        statement = parse(rule.query)
        for field in statement_fields(statement):
            names[field.name] = TYPED.get(field.name, "keyword")
        names[rule.event_category_override or "event.category"] = "keyword"
    return {**names, **TYPED}


def mapping(types: dict[str, str]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, kind in types.items():
        node = properties
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = {"type": kind}
    return {"dynamic": "false", "properties": properties}


def put(event: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted field as nested objects; a second value for the same field makes it a list."""
    *parents, leaf = path.split(".")
    node = event
    for part in parents:
        node = node.setdefault(part, {})
    if leaf in node and node[leaf] != value:
        held = node[leaf] if isinstance(node[leaf], list) else [node[leaf]]
        node[leaf] = [*held, value] if value not in held else held
    else:
        node[leaf] = value


def _pattern(text: str) -> str:
    return text.replace("*", "x").replace("?", "y")


def _number(value: Any, op: str) -> Any:
    return value + (1 if op in (">", ">=") else -1 if op in ("<", "<=") else 0)


def _fill(node: Expr, event: dict[str, Any]) -> None:
    """Put into ``event`` what makes ``node`` true (the subset of EQL the corpus uses)."""
    if isinstance(node, And):
        for child in node.children:
            _fill(child, event)
    elif isinstance(node, Or):
        _fill(node.children[0], event)
    elif isinstance(node, Not):
        return  # whatever it names stays absent
    elif isinstance(node, Compare) and isinstance(node.left, Field) and isinstance(node.right, Literal):
        if node.op != "!=":
            put(event, node.left.name, _number(node.right.value, node.op) if node.op != "==" else node.right.value)
    elif isinstance(node, Compare) and isinstance(node.left, Call) and node.left.name == "length":
        [target] = node.left.args
        assert isinstance(target, Field) and isinstance(node.right, Literal) and isinstance(node.right.value, int)
        put(event, target.name, "x" * (node.right.value + 1))
    elif isinstance(node, MatchOp) and isinstance(node.value, Field):
        key = f"{node.value.name} {node.op}"
        value = EXAMPLES.get(key)
        put(event, node.value.name, value if value is not None else _pattern(str(node.patterns[0].value)))
    elif isinstance(node, In) and isinstance(node.value, Field) and not node.negated:
        first = node.items[0]
        assert isinstance(first, Literal)
        put(event, node.value.name, first.value)
    elif isinstance(node, Call) and isinstance(node.args[0], Field):
        _call(node, event)
    else:
        raise ValueError(f"the corpus generator does not handle {node!r}")


def _call(node: Call, event: dict[str, Any]) -> None:
    target, *rest = node.args
    assert isinstance(target, Field)
    literal = rest[0]
    assert isinstance(literal, Literal)
    text = str(literal.value)
    if node.name == "cidrMatch":
        network = ipaddress.ip_network(text, strict=False)
        put(event, target.name, str(network.network_address + 1))
    elif node.name == "startsWith":
        put(event, target.name, text + "tool.exe")
    elif node.name == "endsWith":
        put(event, target.name, "file" + text)
    elif node.name == "stringContains":
        put(event, target.name, f"before {text} after")
    else:
        raise ValueError(f"the corpus generator does not handle {node.name}")


def _stage_event(rule: EqlRule, stage: Stage, keys: list[Expr], key_value: str) -> dict[str, Any]:
    event: dict[str, Any] = {}
    category = stage.filter.category
    if category is not None:
        put(event, rule.event_category_override or "event.category", category)
    _fill(stage.filter.condition, event)
    for key in keys:
        assert isinstance(key, Field)
        if not key.optional:  # an optional key is left null: nulls join
            put(event, key.name, "10.20.30.40" if TYPED.get(key.name) == "ip" else key_value)
    return event


def positives(rule: EqlRule, at: datetime, prefix: str) -> list[dict[str, Any]]:
    """The events that must alert (a sequence's in order); ids ``<prefix>-<n>``, times from ``at`` on."""
    query = parse(rule.query).query
    if isinstance(query, EventQuery):
        events = [_stage_event(rule, _stage(query), [], "")]
    else:
        assert isinstance(query, SequenceQuery)
        events = []
        for stage in query.stages:
            if stage.missing:
                continue
            keys = list(query.keys) + list(stage.keys)
            events += [_stage_event(rule, stage, keys, f"key-{prefix}") for _ in range(stage.runs)]
    for n, event in enumerate(events):
        moment = at + timedelta(seconds=n)
        event["_id"] = f"{prefix}-{n}"
        event["@timestamp"] = moment.isoformat().replace("+00:00", "Z")
        put(event, "event.ingested", (moment + timedelta(seconds=2)).isoformat().replace("+00:00", "Z"))
    return events


def _stage(query: EventQuery) -> Stage:
    return Stage(query.filter)


def near_miss(rule: EqlRule, event: dict[str, Any]) -> dict[str, Any]:
    """The first positive event in another category (of an ``any`` query: with another action): no alert."""
    missed = copy.deepcopy(event)
    missed["_id"] = f"{event['_id']}-miss"
    query = parse(rule.query).query
    if isinstance(query, EventQuery) and query.filter.category is None:
        missed["event"]["action"] = "something_else"
    else:
        *parents, leaf = (rule.event_category_override or "event.category").split(".")
        node = missed
        for part in parents:
            node = node[part]
        node[leaf] = "nothing_of_the_kind"
    return missed


__all__ = ["CORPUS", "corpus_rules", "field_types", "mapping", "near_miss", "positives"]
