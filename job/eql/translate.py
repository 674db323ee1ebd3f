"""Push-down: an optimized condition as Elasticsearch translates it, DSL where it emits DSL, a residual
predicate (evaluated on the client) where it would run a painless script.

Elasticsearch's rule (``TranslatorHandler.wrapFunctionQuery``): a predicate becomes a query only when its
subject is a bare field; anything else (``length(x) > 3``, ``x + 1 == y``...) becomes a script. ``and``/
``or`` become ``bool`` whatever their children are; a ``not`` over a script is a script, a ``not`` over a
query is ``must_not``. So the result is a tree of query leaves and script leaves under bool nodes. The DSL
sent is that tree with each script leaf replaced by ``match_all`` where it stands positively and by
``match_none`` under an odd number of ``not`` -- a superset of what Elasticsearch selects. The residual
is the whole tree, evaluated with query semantics at the query leaves and script semantics at the script
leaves (:mod:`job.eql.evaluate`); it is None when the DSL is exact.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Mapping
from typing import Any, TypeAlias
from typing import Literal as TypingLiteral

from job.eql.ast import (
    And,
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
    Not,
    Or,
    Range,
    Regex,
)
from job.eql.errors import EqlVerificationError, PatternError, Problem
from job.eql.evaluate import script_filter
from job.eql.leaves import check_literal, leaf_matches, like_to_wildcard
from job.eql.regexp import compile_regex
from job.eql.values import DATE_TYPES
from job.kql.errors import line_and_column

Dsl = dict[str, Any]
MAX_TERMS = 65_536
"""Elasticsearch's ``index.max_terms_count`` default: a longer ``terms`` list fails the search."""


@dc.dataclass(frozen=True, slots=True)
class QueryLeaf:
    """A predicate Elasticsearch runs as this query."""

    expr: Expr
    dsl: Dsl


@dc.dataclass(frozen=True, slots=True)
class ScriptLeaf:
    """A predicate Elasticsearch runs as a painless script (here: on the client)."""

    expr: Expr


@dc.dataclass(frozen=True, slots=True)
class BoolNode:
    op: TypingLiteral["and", "or"]
    children: tuple[Tree, ...]


@dc.dataclass(frozen=True, slots=True)
class NotNode:
    child: Tree


@dc.dataclass(frozen=True, slots=True)
class Const:
    """A condition folded to a constant (``where true``; false or null selects nothing)."""

    value: bool


Tree: TypeAlias = QueryLeaf | ScriptLeaf | BoolNode | NotNode | Const


class _Translator:
    def __init__(self, text: str) -> None:
        self.problems: list[Problem] = []
        self.text = text

    def fail(self, message: str, node: Expr) -> Const:
        self.problems.append(Problem(message, node.start, max(1, node.end - node.start)))
        return Const(False)

    def exact(self, field: Field) -> str | None:
        if field.exact is None:
            reason = "define one or use MATCH/QUERY instead"
            self.fail(f"No keyword/multi-field defined exact matches for [{field.name}]; {reason}", field)
        return field.exact

    def against_fields(self, op: str, right: Expr) -> bool:
        if isinstance(right, Literal):
            return False
        name = right.name if isinstance(right, Field) else self.text[right.start : right.end] or "?"
        line, column = line_and_column(self.text, right.start) if self.text else (1, right.start + 1)
        self.fail(
            f"Line {line}:{column}: Comparisons against fields are not (currently) supported; "
            f"offender [{name}] in [{op}]",
            right,
        )
        return True

    def translate(self, node: Expr) -> Tree:
        if isinstance(node, Literal):
            return Const(node.value is True)
        if isinstance(node, And | Or):
            return BoolNode("and" if isinstance(node, And) else "or", tuple(self.translate(c) for c in node.children))
        if isinstance(node, Not):
            child = self.translate(node.operand)
            return ScriptLeaf(node) if isinstance(child, ScriptLeaf) else NotNode(child)
        leaf = self.leaf(node)
        return leaf if leaf is not None else ScriptLeaf(node)

    def leaf(self, node: Expr) -> Tree | None:
        """The query for a predicate on a bare field, None for a script."""
        if isinstance(node, Compare):
            if self.against_fields(node.op, node.right):
                return Const(False)
            return self.compare(node) if isinstance(node.left, Field) else None
        if isinstance(node, InsensitiveEq):
            if self.against_fields(":", node.right):
                return Const(False)
            if not isinstance(node.left, Field) or not isinstance(node.right, Literal):
                return None
            name = self.exact(node.left)
            query: Dsl = {"term": {name: {"value": node.right.value, "case_insensitive": True}}}
            return QueryLeaf(node, _must_not(query) if node.negated else query)
        if isinstance(node, IsNull | IsNotNull):
            if not isinstance(node.operand, Field):
                return None
            exists: Dsl = {"exists": {"field": node.operand.name}}
            return QueryLeaf(node, exists if isinstance(node, IsNotNull) else _must_not(exists))
        if isinstance(node, Like | Regex):
            return self.pattern(node) if isinstance(node.value, Field) else None
        if isinstance(node, In):
            return self.terms(node)
        if isinstance(node, Range):
            if not isinstance(node.value, Field):
                return None
            return self.range(node, node.value)
        if isinstance(node, Call):
            return self.function(node)
        if isinstance(node, Field):
            if node.es_type != "boolean":
                found = (node.es_type or "").upper()
                return self.fail(f"Condition expression needs to be boolean, found [{found}]", node)
            return QueryLeaf(node, {"term": {node.name: {"value": True}}})
        return None

    def compare(self, node: Compare) -> Tree:
        field, value = node.left, node.right
        assert isinstance(field, Field) and isinstance(value, Literal)
        problem = check_literal(field.es_type, value.value, range_query=node.op not in ("==", "!="))
        if problem:
            return self.fail(problem, value)
        if node.op in ("==", "!="):
            name = self.exact(field)
            term: Dsl = {"term": {name: {"value": value.value}}}
            return QueryLeaf(node, term if node.op == "==" else _must_not(term))
        key = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[node.op]
        return QueryLeaf(node, {"range": {field.name: _with_zone({key: value.value}, field)}})

    def range(self, node: Range, field: Field) -> Tree:
        bounds: Dsl = {}
        sides = ((node.lower, node.lower_inclusive, True), (node.upper, node.upper_inclusive, False))
        for bound, inclusive, low in sides:
            if not isinstance(bound, Literal):
                return self.fail("Comparisons against fields are not (currently) supported", bound)
            problem = check_literal(field.es_type, bound.value, range_query=True)
            if problem:
                return self.fail(problem, bound)
            bounds[("gte" if inclusive else "gt") if low else ("lte" if inclusive else "lt")] = bound.value
        return QueryLeaf(node, {"range": {field.name: _with_zone(bounds, field)}})

    def pattern(self, node: Like | Regex) -> Tree:
        field = node.value
        assert isinstance(field, Field)
        name = self.exact(field)
        if isinstance(node, Like):
            params: Dsl = {"value": like_to_wildcard(node.pattern)}
            kind = "wildcard"
        else:
            try:
                compile_regex(node.pattern, node.insensitive)
            except PatternError as exc:
                return self.fail(str(exc), node)
            params, kind = {"value": node.pattern}, "regexp"
        if node.insensitive:
            params["case_insensitive"] = True
        return QueryLeaf(node, {kind: {name: params}})

    def terms(self, node: In) -> Tree | None:
        for item in node.items:
            if self.against_fields("in", item):
                return Const(False)
        if not isinstance(node.value, Field):
            return None
        field = node.value
        unique: dict[tuple[type, Any], Any] = {}
        for item in node.items:
            assert isinstance(item, Literal)
            if item.value is None:
                continue  # null literals are skipped when the terms are built
            problem = check_literal(field.es_type, item.value, range_query=False)
            if problem:
                return self.fail(problem, item)
            unique.setdefault((type(item.value), item.value), item.value)
        values = list(unique.values())
        if len(values) > MAX_TERMS:
            return self.fail(
                f"The number of terms [{len(values)}] used in the Terms Query request has exceeded the allowed "
                f"maximum of [{MAX_TERMS}]. This maximum can be set by changing the [index.max_terms_count] index "
                "level setting.",
                node,
            )
        if not values:
            return QueryLeaf(node, {"match_none": {}})
        return QueryLeaf(node, {"terms": {self.exact(field): values}})

    def function(self, node: Call) -> Tree | None:
        if not node.args or not isinstance(node.args[0], Field):
            return None
        field, rest = node.args[0], node.args[1:]
        if not rest or not all(isinstance(arg, Literal) and isinstance(arg.value, str) for arg in rest):
            return None
        constant = rest[0].value  # type: ignore[union-attr]
        params: Dsl
        if node.name == "startsWith":
            kind, params = "prefix", {"value": constant}
        elif node.name in ("endsWith", "stringContains"):
            # Elasticsearch puts the constant between stars without escaping it: mirrored
            kind = "wildcard"
            params = {"value": f"*{constant}" if node.name == "endsWith" else f"*{constant}*"}
        elif node.name == "cidrMatch":
            blocks: list[Any] = []
            for arg in rest:
                value = arg.value  # type: ignore[union-attr]
                if value not in blocks:
                    blocks.append(value)
            return QueryLeaf(node, {"terms": {self.exact(field): blocks}})
        else:
            return None
        if node.insensitive:
            params["case_insensitive"] = True
        return QueryLeaf(node, {kind: {self.exact(field): params}})


def _must_not(query: Dsl) -> Dsl:
    return {"bool": {"must_not": [query]}}


def _with_zone(params: Dsl, field: Field) -> Dsl:
    if field.es_type in DATE_TYPES:
        params["time_zone"] = "Z"
    return params


def translate(condition: Expr, text: str = "") -> Tree:
    """The query/script tree of an optimized condition; ``EqlVerificationError`` for what Elasticsearch
    refuses while translating (fields compared to fields, text without keyword, bad literals)."""
    translator = _Translator(text)
    tree = translator.translate(condition)
    if translator.problems:
        raise EqlVerificationError(translator.problems, text)
    return tree


# -- from the tree: the DSL, the residual, the client-side decision ------------------------------------


def _dsl(tree: Tree, positive: bool) -> Dsl | bool:
    if isinstance(tree, Const):
        return tree.value
    if isinstance(tree, QueryLeaf):
        return tree.dsl
    if isinstance(tree, ScriptLeaf):
        return positive  # the superset: everything where it counts for, nothing where it counts against
    if isinstance(tree, NotNode):
        negated = _dsl(tree.child, not positive)
        return (not negated) if isinstance(negated, bool) else _must_not(negated)
    parts = [_dsl(child, positive) for child in tree.children]
    absorbing = tree.op == "or"  # true absorbs an or, false absorbs an and
    if absorbing in parts:
        return absorbing
    queries = [part for part in parts if not isinstance(part, bool)]
    if not queries:
        return not absorbing
    if len(queries) == 1:
        return queries[0]
    key = "must" if tree.op == "and" else "should"
    flat: list[Dsl] = []
    for query in queries:
        inner: Any = query.get("bool")
        if isinstance(inner, dict) and list(inner) == [key]:
            flat.extend(inner[key])
        else:
            flat.append(query)
    return {"bool": {key: flat}}


def to_dsl(tree: Tree) -> Dsl:
    """The query sent: exact where the tree has no script leaf, else the smallest superset this shape allows."""
    result = _dsl(tree, True)
    if result is True:
        return {"match_all": {}}
    if result is False:
        return {"match_none": {}}
    return result


def has_scripts(tree: Tree) -> bool:
    if isinstance(tree, ScriptLeaf):
        return True
    if isinstance(tree, NotNode):
        return has_scripts(tree.child)
    if isinstance(tree, BoolNode):
        return any(has_scripts(child) for child in tree.children)
    return False


def script_leaves(tree: Tree) -> list[Expr]:
    """The predicates evaluated on the client, in order."""
    if isinstance(tree, ScriptLeaf):
        return [tree.expr]
    if isinstance(tree, NotNode):
        return script_leaves(tree.child)
    if isinstance(tree, BoolNode):
        return [leaf for child in tree.children for leaf in script_leaves(child)]
    return []


def tree_matches(tree: Tree, source: Mapping[str, Any]) -> bool:
    """Whether Elasticsearch selects the event: query semantics at query leaves, script semantics at scripts."""
    if isinstance(tree, Const):
        return tree.value
    if isinstance(tree, QueryLeaf):
        return leaf_matches(tree.expr, source)
    if isinstance(tree, ScriptLeaf):
        return script_filter(tree.expr, source)
    if isinstance(tree, NotNode):
        return not tree_matches(tree.child, source)
    if tree.op == "and":
        return all(tree_matches(child, source) for child in tree.children)
    return any(tree_matches(child, source) for child in tree.children)
