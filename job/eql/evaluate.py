"""Client-side evaluation of EQL expressions over an event's ``_source``, with Elasticsearch's two semantics.

* **Script semantics** (what Elasticsearch runs as a painless script, :func:`script_filter`): three-valued
  logic (a comparison with null is null; ``null and false`` is false, ``null or true`` is true), and the
  multi-value rewrite of ``MultiValueAwareScriptQuery``: every field occurrence iterates its doc values
  (a missing field gives one null), the event matches if some combination gives true. That rewrite
  lifts every ``not`` out of the expression and negates the whole ("no combination is true"), so a
  negated script matches an event without the field.
* **Push-down semantics** (what a ``term``/``range``/``wildcard``/... query selects, :func:`leaf_matches`):
  two-valued, true when any indexed value of the field satisfies the leaf; a missing field satisfies
  nothing (so ``must_not`` around it matches events without the field).

:func:`evaluate` is the plain three-valued value of a condition (multi-valued fields: true if some
combination is true, else null if some is null, else false), for callers that want EQL's null logic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from job.eql.ast import (
    And,
    Arith,
    Call,
    Compare,
    Expr,
    Field,
    In,
    InsensitiveEq,
    IsNotNull,
    IsNull,
    Like,
    Literal,
    MatchOp,
    Neg,
    Not,
    Or,
    Range,
    Regex,
    fields_in,
    map_children,
)
from job.eql.errors import EqlRuntimeError, PatternError, Problem
from job.eql.functions import FUNCTIONS, arithmetic, call, negate, utf16
from job.eql.leaves import like_to_wildcard, wildcard_match
from job.eql.regexp import compile_regex
from job.eql.values import doc_values, source_values

MAX_COMBINATIONS = 100_000
"""Most combinations of multi-valued field values one script evaluation tries (painless has a loop limit too)."""


def _runtime(message: str) -> EqlRuntimeError:
    return EqlRuntimeError(Problem(message))


# -- comparisons as QL's Comparisons ------------------------------------------------------------------


def compare(left: Any, right: Any) -> int | None:
    """-1/0/1, or None when either side is null or they are not comparable (a string and a number)."""
    if left is None or right is None:
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, bool) and isinstance(right, bool):
            return (left > right) - (left < right)
        return None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return (left > right) - (left < right)
    if isinstance(left, str) and isinstance(right, str):
        a, b = utf16(left), utf16(right)  # String.compareTo: UTF-16 code units
        return (a > b) - (a < b)
    try:
        return int((left > right) - (left < right))
    except TypeError:
        return None


def _compare_op(op: str, left: Any, right: Any) -> bool | None:
    result = compare(left, right)
    if result is None:
        return None
    outcomes = {"==": result == 0, "!=": result != 0, "<": result < 0, "<=": result <= 0, ">": result > 0}
    return outcomes[op] if op != ">=" else result >= 0


def _equals_ignore_case(left: Any, right: Any) -> bool | None:
    """Java's ``equalsIgnoreCase`` per UTF-16 unit (upper then lower case compared)."""
    if left is None or right is None:
        return None
    if not (isinstance(left, str) and isinstance(right, str)):
        return _compare_op("==", left, right)
    a, b = utf16(left), utf16(right)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x != y and x.upper() != y.upper() and x.upper().lower() != y.upper().lower():
            return False
    return True


def _kleene_not(value: Any) -> bool | None:
    return None if value is None else not value


# -- one evaluation with one value per field occurrence ------------------------------------------------


def _eval(node: Expr, values: Iterator[Any]) -> Any:
    """The value of ``node`` taking field values from ``values`` in occurrence order (all children always
    evaluated, so the occurrences stay aligned)."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        return next(values)
    if isinstance(node, And | Or):
        results = [_eval(child, values) for child in node.children]
        if isinstance(node, And):
            return False if False in results else (None if None in results else True)
        return True if True in results else (None if None in results else False)
    if isinstance(node, Not):
        return _kleene_not(_eval(node.operand, values))
    if isinstance(node, Compare):
        left, right = _eval(node.left, values), _eval(node.right, values)
        return _compare_op(node.op, left, right)
    if isinstance(node, Arith):
        return arithmetic(node.op, _eval(node.left, values), _eval(node.right, values))
    if isinstance(node, Neg):
        return negate(_eval(node.operand, values))
    if isinstance(node, IsNull | IsNotNull):
        value = _eval(node.operand, values)
        return (value is None) == isinstance(node, IsNull)
    if isinstance(node, InsensitiveEq):
        result = _equals_ignore_case(_eval(node.left, values), _eval(node.right, values))
        return _kleene_not(result) if node.negated else result
    if isinstance(node, In):
        value = _eval(node.value, values)
        items = [_eval(item, values) for item in node.items]
        if value is None:
            return None
        compare_item = _equals_ignore_case if node.insensitive else (lambda a, b: _compare_op("==", a, b))
        outcomes = [compare_item(value, item) for item in items]
        result = True if True in outcomes else (None if None in outcomes else False)
        return _kleene_not(result) if node.negated else result
    if isinstance(node, Like):
        value = _eval(node.value, values)
        if value is None:
            return None
        text = str(value)
        return wildcard_match(
            like_to_wildcard(node.pattern), text, insensitive=node.insensitive, ascii_only=True, any_newline=False
        )
    if isinstance(node, Regex):
        value = _eval(node.value, values)
        if value is None:
            return None
        try:
            return compile_regex(node.pattern, node.insensitive).matches(str(value))
        except PatternError as exc:
            raise _runtime(str(exc)) from None
    if isinstance(node, Range):
        value = _eval(node.value, values)
        lower, upper = _eval(node.lower, values), _eval(node.upper, values)
        low = _compare_op(">=" if node.lower_inclusive else ">", value, lower)
        high = _compare_op("<=" if node.upper_inclusive else "<", value, upper)
        return False if False in (low, high) else (None if None in (low, high) else True)
    if isinstance(node, Call):
        args = [_eval(arg, values) for arg in node.args]
        definition = FUNCTIONS.get(node.name)
        if definition is None:
            raise _runtime(f"Unknown function [{node.name}]")
        return call(definition, args, node.insensitive)
    if isinstance(node, MatchOp):
        raise _runtime("a surface ':'/like/regex reached evaluation without the optimizer")
    raise _runtime(f"cannot evaluate {type(node).__name__}")


def fold(node: Expr) -> Any:
    """The value of an expression without fields (constant folding)."""
    return _eval(node, iter(()))


def _occurrence_values(node: Expr, source: Mapping[str, Any]) -> list[list[Any]]:
    lists = []
    for field in fields_in(node):
        if field.es_type is None:
            found = list(source_values(source, field.name))
        else:
            found = list(doc_values(source, field.name, field.es_type))
        lists.append(found or [None])
    return lists


def _combinations(lists: list[list[Any]]) -> Iterator[tuple[Any, ...]]:
    total = 1
    for values in lists:
        total *= len(values)
    if total > MAX_COMBINATIONS:
        raise _runtime(f"too many combinations of multi-valued field values ({total}, at most {MAX_COMBINATIONS})")
    return itertools.product(*lists)


def _strip_nots(node: Expr) -> tuple[Expr, int]:
    """``node`` with every ``not`` removed, and how many there were (the script rewrite does exactly this)."""
    count = 0

    def strip(current: Expr) -> Expr:
        nonlocal count
        while isinstance(current, Not):
            count += 1
            current = current.operand
        return map_children(current, strip)

    stripped = strip(node)
    return (stripped, count) if count else (node, 0)


def script_filter(node: Expr, source: Mapping[str, Any]) -> bool:
    """Whether Elasticsearch's script query for ``node`` selects the event (see the module's docstring)."""
    body, nots = _strip_nots(node)
    hit = False
    for combination in _combinations(_occurrence_values(body, source)):
        if _eval(body, iter(combination)) is True:
            hit = True
            break
    return not hit if nots else hit


def evaluate(node: Expr, source: Mapping[str, Any]) -> bool | None:
    """The three-valued value of a condition over an event (multi-valued fields: any combination true)."""
    seen_null = False
    for combination in _combinations(_occurrence_values(node, source)):
        value = _eval(node, iter(combination))
        if value is True:
            return True
        if value is None:
            seen_null = True
    return None if seen_null else False
