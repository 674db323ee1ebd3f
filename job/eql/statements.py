"""The statement level of the parser: sequences, samples, stages, maxspan, runs and pipes.

Each function takes the children of one grammar rule (tokens and built pieces) and returns the piece, with
the checks Elasticsearch's ``LogicalPlanBuilder`` makes while it builds the plan, worded as it words them
where its sources give the text (maxspan, pipes, join keys, ``join``). The limits of the newer syntax whose
messages the sources read did not show are worded here: ``with runs`` outside 1..100 or not ``runs``, a
missing stage without ``with maxspan``, a sequence of missing stages only, ``until`` as a missing stage or
with ``runs``, a sample without join keys, and "A sequence requires a minimum of 2 queries".
"""

from __future__ import annotations

import dataclasses as dc
import math
from typing import Any

from lark import Token

from job.eql.ast import (
    Arith,
    EventFilter,
    EventQuery,
    Expr,
    Field,
    Literal,
    Neg,
    Pipe,
    SampleQuery,
    SequenceQuery,
    Stage,
    Statement,
)
from job.eql.errors import syntax_error

MAX_RUNS = 100
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
SUPPORTED_PIPES = ("count", "filter", "head", "sort", "tail", "unique", "unique_count")
_LONG_MAX = 2**63 - 1
_UNSIGNED_LONG_MAX = 2**64 - 1


@dc.dataclass(frozen=True, slots=True)
class Keys:
    exprs: tuple[Expr, ...]
    start: int
    end: int


@dc.dataclass(frozen=True, slots=True)
class Subquery:
    filter: EventFilter
    missing: bool
    start: int
    end: int


@dc.dataclass(frozen=True, slots=True)
class Until:
    term: Stage
    start: int


@dc.dataclass(frozen=True, slots=True)
class _Runs:
    count: int
    start: int


@dc.dataclass(frozen=True, slots=True)
class _Header:
    keys: Keys | None
    maxspan_ms: int | None
    maxspan_text: str | None


def _start(item: Any) -> int:
    return int(item.start_pos or 0) if isinstance(item, Token) else int(item.start)


def number(token: Any) -> int | float:
    """A numeric literal as Elasticsearch reads it: int or long, an unsigned long, else a double."""
    text = str(token)
    if token.type == "INTEGER_VALUE":
        value = int(text)
        if value <= _UNSIGNED_LONG_MAX:
            return value
    parsed = float(text)
    if math.isinf(parsed):
        raise syntax_error(f"Number [{text}] is too large", _start(token), len(text))
    return parsed


def _similar(name: str, candidates: tuple[str, ...]) -> list[str]:
    """Lucene's Levenshtein similarity (1 - distance / longer length) of at least 0.5, best first."""
    scored = []
    for candidate in candidates:
        score = similarity(name, candidate)
        if score >= 0.5:
            scored.append((-score, candidate))
    return [candidate for _, candidate in sorted(scored)]


def similarity(left: str, right: str) -> float:
    """1 - edit distance / length of the longer string (Lucene's ``LevenshteinDistance``)."""
    if not left and not right:
        return 1.0
    previous = list(range(len(right) + 1))
    for i, char in enumerate(left, 1):
        current = [i]
        for j, other in enumerate(right, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return 1.0 - previous[-1] / max(len(left), len(right))


def did_you_mean(message: str, name: str, candidates: tuple[str, ...]) -> str:
    """``message`` plus Elasticsearch's suggestion (``, did you mean [x]?`` / ``any of [a, b]?``)."""
    similar = _similar(name, candidates)
    if not similar:
        return message
    shown = f"[{similar[0]}]" if len(similar) == 1 else f"any of [{', '.join(similar)}]"
    return f"{message}, did you mean {shown}?"


def _fold_int(expr: Any) -> int | None:
    """The integer a pipe argument folds to (a literal, a negation, integer arithmetic), else None."""
    if isinstance(expr, Literal) and isinstance(expr.value, int) and not isinstance(expr.value, bool):
        return expr.value
    if isinstance(expr, Neg):
        inner = _fold_int(expr.operand)
        return None if inner is None else -inner
    if isinstance(expr, Arith):
        left, right = _fold_int(expr.left), _fold_int(expr.right)
        if left is None or right is None or (expr.op in "/%" and right == 0):
            return None
        if expr.op == "/":
            return int(left / right)
        if expr.op == "%":
            return int(math.fmod(left, right))
        return {"+": left + right, "-": left - right, "*": left * right}[expr.op]
    return None


def pipe(items: list[Any]) -> Pipe:
    bar, name = items[0], items[1]
    arguments = items[2::2]
    if name not in SUPPORTED_PIPES:
        message = did_you_mean(f"Unrecognized pipe [{name}]", str(name), SUPPORTED_PIPES)
        raise syntax_error(message, _start(name), len(name))
    if name not in ("head", "tail"):
        raise syntax_error(f"Pipe [{name}] is not supported", _start(bar))
    if len(arguments) != 1:
        raise syntax_error(f"Pipe [{name}] expects exactly one argument but found [{len(arguments)}]", _start(bar))
    argument = arguments[0]
    count = _fold_int(argument)
    if count is None or count < 0 or count > 2**31 - 1:
        shown = getattr(argument, "value", None)
        text = str(count if count is not None else shown)
        raise syntax_error(f"Pipe [{name}] expects a positive integer but found [{text}]", _start(argument))
    return Pipe("head" if name == "head" else "tail", count, start=_start(bar))


def maxspan(items: list[Any]) -> tuple[int, str, int]:
    """``with maxspan=N unit`` as (milliseconds, the text, offset); LogicalPlanBuilder's checks and texts."""
    number_literal: Literal = items[3]
    unit = items[4] if len(items) > 4 else None
    value = number_literal.value
    start = number_literal.start
    shown = str(value)
    if isinstance(value, float):
        raise syntax_error(
            f"Decimal time interval [{shown}] not supported; please use an positive integer", start, len(shown)
        )
    assert isinstance(value, int)
    if value <= 0:
        raise syntax_error(f"A positive maxspan value is required; found [{value}]", start, len(shown))
    if unit is None:
        raise syntax_error(f"No time unit specified, did you mean [s] as in [{value}s]?", start, len(shown))
    if unit not in _UNITS_MS:
        raise syntax_error(
            f"Unrecognized time unit [{unit}] in [{value}{unit}], please specify one of [ms, s, m, h, d]",
            _start(unit),
            len(unit),
        )
    return value * _UNITS_MS[str(unit)], f"{value}{unit}", start


def header(items: list[Any], keys_first: bool) -> _Header:
    keys = next((item for item in items if isinstance(item, Keys)), None)
    span = next((item for item in items if isinstance(item, tuple)), None)
    if not keys_first and keys is not None:
        raise syntax_error("Please specify sequence [by] before [with] not after", keys.start)
    return _Header(keys, span[0] if span else None, span[1] if span else None)


def runs(items: list[Any]) -> _Runs:
    key, value = items[1], items[3]
    if key != "runs":
        raise syntax_error(f"Unrecognized sequence parameter [{key}], only [runs] is supported", _start(key), len(key))
    count = value.value
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RUNS:
        raise syntax_error(f"A [runs] value between [1] and [{MAX_RUNS}] is required; found [{count}]", value.start)
    return _Runs(count, _start(items[0]))


def term(items: list[Any]) -> Stage:
    subquery: Subquery = items[0]
    keys = next((item for item in items[1:] if isinstance(item, Keys)), None)
    repeat = next((item for item in items[1:] if isinstance(item, _Runs)), None)
    end = subquery.end if keys is None else keys.end
    return Stage(
        subquery.filter,
        keys.exprs if keys is not None else (),
        subquery.missing,
        repeat.count if repeat is not None else 1,
        start=subquery.start,
        end=end,
    )


def _check_keys(keys: tuple[Expr, ...]) -> None:
    for key in keys:
        if not isinstance(key, Field):
            raise syntax_error("Unsupported join key ", key.start, max(1, key.end - key.start))


def _check_arity(parent: tuple[Expr, ...], stages: list[Stage]) -> None:
    expected = None
    for stage in stages:
        count = len(parent) + len(stage.keys)
        if expected is None:
            expected = count
        elif count != expected:
            where = stage.keys[0].start if stage.keys else stage.start
            raise syntax_error(
                "Inconsistent number of join keys specified; "
                f"expected [{expected - len(parent)}] but found [{count - len(parent)}]",
                where,
            )


def sequence(items: list[Any]) -> SequenceQuery:
    head = next((item for item in items if isinstance(item, _Header)), _Header(None, None, None))
    terms = [item for item in items if isinstance(item, Stage)]
    until = next((item for item in items if isinstance(item, Until)), None)
    parent = head.keys.exprs if head.keys else ()
    _check_keys(parent)
    for stage in terms + ([until.term] if until else []):
        _check_keys(stage.keys)
    _check_arity(parent, terms + ([until.term] if until else []))
    start = _start(items[0])
    if sum(stage.runs for stage in terms) < 2:
        raise syntax_error(f"A sequence requires a minimum of 2 queries, found [{len(terms)}]", start)
    if all(stage.missing for stage in terms):
        raise syntax_error("A sequence requires at least one positive (non-missing) event query", start)
    if any(stage.missing for stage in terms) and head.maxspan_ms is None:
        raise syntax_error("A sequence with missing event queries ![...] requires [with maxspan]", start)
    if until is not None:
        if until.term.missing:
            raise syntax_error("[until] cannot be a missing event query ![...]", until.term.start, 2)
        if until.term.runs != 1:
            raise syntax_error("[runs] is not supported on [until]", until.term.start)
    return SequenceQuery(parent, head.maxspan_ms, tuple(terms), until.term if until else None, head.maxspan_text)


def sample(items: list[Any]) -> SampleQuery:
    keys = next((item for item in items if isinstance(item, Keys)), None)
    terms = [item for item in items if isinstance(item, Stage)]
    parent = keys.exprs if keys else ()
    _check_keys(parent)
    for stage in terms:
        _check_keys(stage.keys)
        if stage.missing:
            raise syntax_error("Missing event queries ![...] are not supported in samples", stage.start, 2)
    _check_arity(parent, terms)
    if not parent and not any(stage.keys for stage in terms):
        raise syntax_error("A sample requires join keys ([by] at the sample or at every query)", _start(items[0]))
    return SampleQuery(parent, tuple(terms))


def statement(query: Any, pipes: list[Pipe]) -> Statement:
    if isinstance(query, EventFilter):
        query = EventQuery(query)
    return Statement(query, tuple(pipes))
