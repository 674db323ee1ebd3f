"""Elasticsearch's rewrites of a resolved condition, the ones that change what a query selects.

In Elasticsearch's order: the parser's desugaring (``in~`` and ``:`` lists into ORs, ``regex`` lists
joined with ``|``), then the substitution batch (``ReplaceWildcards``: ``:`` with ``*``/``?`` becomes
``like~``; ``ReplaceRegexMatch``: a pattern matching everything becomes ``IsNotNull`` and one matching a
single string an equality; ``ReplaceNullChecks``), then the operator batch to a fixpoint: constant
folding, boolean simplification (``not`` is pushed into comparisons: ``not x < 5`` is ``x >= 5``, De
Morgan through ``and``/``or``), literals moved to the right, ``f(x) == true`` into ``f(x)``,
``PropagateEquals`` and ``PropagateNullable`` contradictions, ``CombineBinaryComparisons`` (two bounds
on one value into one range), ``CombineDisjunctionsToIn`` and ``SimplifyComparisonsArithmetics``
(``x + 1 == 2`` into ``x == 1`` on integers). Rewrites that never change a result (common-factor
extraction, ``or`` of overlapping ranges) are left out.
"""

from __future__ import annotations

import dataclasses as dc
from typing import Any

from job.eql.ast import (
    And,
    Arith,
    Call,
    Compare,
    CompareOp,
    Expr,
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
    map_children,
)
from job.eql.errors import EqlError, Problem, verification_error
from job.eql.evaluate import compare, fold
from job.eql.leaves import like_exact, wildcard_is_total
from job.eql.regexp import regex_exact, regex_is_total
from job.eql.resolve import data_type, is_foldable

_NEGATE: dict[str, CompareOp] = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_SWAP: dict[str, CompareOp] = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_MAX_PASSES = 20


def _or(parts: list[Expr], template: Expr) -> Expr:
    return parts[0] if len(parts) == 1 else Or(tuple(parts), start=template.start, end=template.end)


# -- desugaring and substitutions (once) ---------------------------------------------------------------


def _desugar(node: Expr) -> Expr:
    node = map_children(node, _desugar)
    if isinstance(node, Compare) and node.op == "!=":
        return Not(_null_check(dc.replace(node, op="==")), start=node.start, end=node.end)
    if isinstance(node, In):
        if node.insensitive:
            eqs: list[Expr] = [InsensitiveEq(node.value, item, start=node.start, end=node.end) for item in node.items]
            result = _or(eqs, node)
        else:
            result = In(node.value, node.items, start=node.start, end=node.end)
        return Not(result, start=node.start, end=node.end) if node.negated else result
    if isinstance(node, MatchOp):
        parts: list[Expr] = []
        if node.op in ("regex", "regex~"):
            joined = "|".join(str(pattern.value) for pattern in node.patterns)
            return _substitute(Regex(node.value, joined, node.op == "regex~", start=node.start, end=node.end))
        for pattern in node.patterns:
            text = pattern.value
            if node.op == ":" and not (isinstance(text, str) and ("*" in text or "?" in text)):
                parts.append(InsensitiveEq(node.value, pattern, start=node.start, end=node.end))
            else:
                like = Like(node.value, str(text), node.op != "like", start=node.start, end=node.end)
                parts.append(_substitute(like))
        return _or(parts, node)
    return _null_check(node)


def _null_check(node: Expr) -> Expr:
    """ReplaceNullChecks: ``x == null`` (either side) is ``IsNull(x)``."""
    if isinstance(node, Compare) and node.op == "==":
        for side, other in ((node.right, node.left), (node.left, node.right)):
            if isinstance(side, Literal) and side.value is None:
                return IsNull(other, start=node.start, end=node.end)
    return node


def _substitute(node: Like | Regex) -> Expr:
    """ReplaceRegexMatch: everything matches -> IsNotNull; exactly one string -> an equality."""
    total = wildcard_is_total(node.pattern) if isinstance(node, Like) else regex_is_total(node.pattern)
    if total:
        return IsNotNull(node.value, start=node.start, end=node.end)
    exact = like_exact(node.pattern) if isinstance(node, Like) else regex_exact(node.pattern)
    if exact is None:
        return node
    literal = Literal(exact, start=node.start, end=node.end)
    if node.insensitive:
        return InsensitiveEq(node.value, literal, start=node.start, end=node.end)
    return Compare("==", node.value, literal, start=node.start, end=node.end)


# -- the operator batch --------------------------------------------------------------------------------


def negate(node: Expr) -> Expr:
    """``Not.negate``: the negatable forms negate themselves, anything else is wrapped in ``not``."""
    if isinstance(node, Compare):
        return dc.replace(node, op=_NEGATE[node.op])
    if isinstance(node, IsNull):
        return IsNotNull(node.operand, start=node.start, end=node.end)
    if isinstance(node, IsNotNull):
        return IsNull(node.operand, start=node.start, end=node.end)
    if isinstance(node, InsensitiveEq):
        return dc.replace(node, negated=not node.negated)
    if isinstance(node, And):
        return Or(tuple(negate(child) for child in node.children), start=node.start, end=node.end)
    if isinstance(node, Or):
        return And(tuple(negate(child) for child in node.children), start=node.start, end=node.end)
    if isinstance(node, Not):
        return node.operand
    if isinstance(node, Literal) and isinstance(node.value, bool):
        return dc.replace(node, value=not node.value)
    return Not(node, start=node.start, end=node.end)


def _fold(node: Expr) -> Expr:
    if isinstance(node, Literal) or not is_foldable(node) or isinstance(node, MatchOp):
        return node
    try:
        return Literal(fold(node), start=node.start, end=node.end)
    except EqlError as exc:
        raise verification_error(exc.problems[0].message, node.start, max(1, node.end - node.start)) from None


def _flatten(node: And | Or) -> list[Expr]:
    parts: list[Expr] = []
    for child in node.children:
        parts.extend(child.children if isinstance(child, And | Or) and type(child) is type(node) else [child])
    return list(dict.fromkeys(parts))


def _simplify_logic(node: And | Or) -> Expr:
    parts = _flatten(node)
    absorbing, neutral = (False, True) if isinstance(node, And) else (True, False)
    kept: list[Expr] = []
    for part in parts:
        if isinstance(part, Literal):
            if part.value is absorbing:
                return Literal(absorbing, start=node.start, end=node.end)
            if part.value is neutral:
                continue
            if part.value is None:  # PruneFilters: null in an and is null; in an or it is dropped
                if isinstance(node, And):
                    return Literal(None, start=node.start, end=node.end)
                continue
        kept.append(part)
    if not kept:
        return Literal(None if any(isinstance(p, Literal) and p.value is None for p in parts) else neutral)
    if isinstance(node, And):
        kept = _propagate_equals(kept, node) or []
        if not kept:
            return Literal(False, start=node.start, end=node.end)
        kept = _combine_ranges(kept)
    else:
        kept = _combine_to_in(kept)
    if len(kept) == 1:
        return kept[0]
    return dc.replace(node, children=tuple(kept))


def _propagate_equals(parts: list[Expr], node: Expr) -> list[Expr] | None:
    """PropagateEquals and PropagateNullable over one conjunction; None when it is a contradiction."""
    equals: dict[Expr, Any] = {}
    for part in parts:
        if isinstance(part, Compare) and part.op == "==" and isinstance(part.right, Literal):
            if part.left in equals and compare(equals[part.left], part.right.value) not in (0, None):
                return None
            equals.setdefault(part.left, part.right.value)
    nulls = {part.operand for part in parts if isinstance(part, IsNull)}
    if any(isinstance(part, IsNotNull) and part.operand in nulls for part in parts):
        return None
    kept: list[Expr] = []
    for part in parts:
        if isinstance(part, Compare) and part.op != "==" and part.left in equals and isinstance(part.right, Literal):
            outcome = compare(equals[part.left], part.right.value)
            if outcome is not None:
                holds = {"!=": outcome != 0, "<": outcome < 0, "<=": outcome <= 0, ">": outcome > 0, ">=": outcome >= 0}
                if not holds[part.op]:
                    return None
                continue  # implied by the equality
        kept.append(part)
    return kept


def _combine_ranges(parts: list[Expr]) -> list[Expr]:
    """CombineBinaryComparisons: a lower and an upper bound on one value in a conjunction become a range."""
    bounds: dict[Expr, dict[str, Compare]] = {}
    order: list[Expr] = []
    for part in parts:
        if isinstance(part, Compare) and part.op in ("<", "<=", ">", ">=") and isinstance(part.right, Literal):
            side = "lower" if part.op in (">", ">=") else "upper"
            slots = bounds.setdefault(part.left, {})
            current = slots.get(side)
            if current is None:
                slots[side] = part
                if part.left not in order:
                    order.append(part.left)
                continue
            outcome = compare(part.right.value, current.right.value)  # type: ignore[union-attr]
            if outcome is None:
                return parts
            stricter = outcome > 0 if side == "lower" else outcome < 0
            if stricter or (outcome == 0 and part.op in ("<", ">")):
                slots[side] = part
            continue
    if not bounds:
        return parts
    result: list[Expr] = []
    emitted: set[int] = set()
    for part in parts:
        if isinstance(part, Compare) and part.left in bounds and part.op in ("<", "<=", ">", ">="):
            if id(bounds[part.left]) in emitted:
                continue
            emitted.add(id(bounds[part.left]))
            slots = bounds[part.left]
            if "lower" in slots and "upper" in slots:
                low, high = slots["lower"], slots["upper"]
                combined = Range(part.left, low.right, low.op == ">=", high.right, high.op == "<=")
                result.append(dc.replace(combined, start=low.start, end=high.end))
            else:
                result.append(next(iter(slots.values())))
            continue
        result.append(part)
    return result


def _combine_to_in(parts: list[Expr]) -> list[Expr]:
    """CombineDisjunctionsToIn: equalities (and ``in``) of one value with constants become one ``in``."""
    groups: dict[Expr, list[Expr]] = {}
    for part in parts:
        if isinstance(part, Compare) and part.op == "==" and isinstance(part.right, Literal):
            groups.setdefault(part.left, []).append(part.right)
        elif isinstance(part, In) and all(isinstance(item, Literal) for item in part.items):
            groups.setdefault(part.value, []).extend(part.items)
    combined = {key for key, values in groups.items() if len(values) > 1}
    if not combined:
        return parts
    result: list[Expr] = []
    done: set[Expr] = set()
    for part in parts:
        key = part.left if isinstance(part, Compare) else (part.value if isinstance(part, In) else None)
        if key is not None and key in combined and (isinstance(part, In) or part.op == "=="):  # type: ignore[union-attr]
            if key not in done:
                done.add(key)
                unique = {(type(item.value), item.value): item for item in groups[key] if isinstance(item, Literal)}
                result.append(In(key, tuple(unique.values()), start=part.start, end=part.end))
            continue
        result.append(part)
    return result


def _simplify_arithmetic(node: Compare) -> Expr:
    """SimplifyComparisonsArithmetics on integers: ``e + 1 == 2`` -> ``e == 1``, ``-e < 3`` -> ``e > -3``."""
    right = node.right
    if not isinstance(right, Literal) or isinstance(right.value, bool) or not isinstance(right.value, int):
        return node
    left = node.left
    if isinstance(left, Neg):
        return Compare(_SWAP[node.op], left.operand, Literal(-right.value), start=node.start, end=node.end)
    if not isinstance(left, Arith) or left.op in ("/", "%"):
        return node

    def integral(expr: Expr) -> bool:
        return data_type(expr) in ("integer", "long", "short", "byte", "unsigned_long")

    constant, other, constant_first = None, None, False
    if isinstance(left.right, Literal) and integral(left.right) and integral(left.left):
        constant, other = left.right.value, left.left
    elif isinstance(left.left, Literal) and integral(left.left) and integral(left.right):
        constant, other, constant_first = left.left.value, left.right, True
    if not isinstance(constant, int) or isinstance(constant, bool) or other is None:
        return node
    k, op = right.value, node.op
    value: int
    if left.op == "+":
        value = k - constant
    elif left.op == "-":
        if constant_first:  # c - e OP k  <=>  e SWAP(OP) c - k
            value, op = constant - k, _SWAP[op]
        else:
            value = k + constant
    else:  # "*": only when the division stays integral, direction flips for a negative factor
        if constant == 0 or k % constant != 0:
            return node
        value = k // constant
        if constant < 0:
            op = _SWAP[op]
    if not -(2**63) <= value < 2**63:
        return node
    return Compare(op, other, Literal(value), start=node.start, end=node.end)


def _operators(node: Expr) -> Expr:
    node = map_children(node, _operators)
    node = _fold(node)
    if isinstance(node, Not):
        inner = node.operand
        if isinstance(inner, Literal):
            return Literal(None if inner.value is None else not inner.value, start=node.start, end=node.end)
        return negate(inner)
    if isinstance(node, And | Or):
        return _simplify_logic(node)
    if isinstance(node, InsensitiveEq) and isinstance(node.left, Literal) and not isinstance(node.right, Literal):
        return dc.replace(node, left=node.right, right=node.left)
    if isinstance(node, Compare):
        if isinstance(node.left, Literal) and not isinstance(node.right, Literal):
            node = Compare(_SWAP[node.op], node.right, node.left, start=node.start, end=node.end)
        function_equals = node.op in ("==", "!=") and isinstance(node.left, Call)
        if function_equals and isinstance(node.right, Literal) and isinstance(node.right.value, bool):
            keep = node.right.value == (node.op == "==")  # BooleanFunctionEqualsElimination
            return node.left if keep else negate(node.left)
        return _simplify_arithmetic(node)
    return node


def optimize(condition: Expr) -> Expr:
    """The condition Elasticsearch translates, from a resolved one (raises ``EqlVerificationError`` when a
    constant part cannot be computed, as Elasticsearch fails the query)."""
    node = _desugar(condition)
    for _ in range(_MAX_PASSES):
        following = _operators(node)
        if following == node:
            break
        node = following
    if isinstance(node, Literal) and node.value is not None and not isinstance(node.value, bool):
        raise verification_error(
            f"Condition expression needs to be boolean, found [{data_type(node).upper()}]", node.start
        )
    return node


def check_boolean(condition: Expr, text: str) -> list[Problem]:
    """Problems of a condition that is not boolean (a bare keyword field, ``1 + 2``)."""
    kind = data_type(condition)
    if kind in ("boolean", "null", "unknown"):
        return []
    return [Problem(f"Condition expression needs to be boolean, found [{kind.upper()}]", condition.start)]
