"""The EQL syntax tree: frozen records, surface forms as parsed and the internal forms the optimizer makes.

Surface forms (what :func:`job.eql.parse` returns): :class:`Literal`, :class:`Field`, :class:`Call`,
:class:`Compare` (``!=`` included), :class:`Arith`, :class:`Neg`, :class:`Not`, :class:`And`, :class:`Or`
(n-ary, so a long chain of ``or`` stays shallow), :class:`In` (``in``, ``in~``, ``not in``) and
:class:`MatchOp` (``:``, ``like``, ``like~``, ``regex``, ``regex~`` with their constants).

Internal forms, as Elasticsearch's optimizer rewrites the surface ones (``job.eql.optimize``):
:class:`IsNull`, :class:`IsNotNull`, :class:`InsensitiveEq` (``:`` without wildcards, ``in~``),
:class:`Like` (a wildcard pattern) and :class:`Regex`.

``start``/``end`` are 0-based offsets into the query text; they take no part in equality, so two trees
are equal when they mean the same thing wherever they were written.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Callable
from typing import Literal as TypingLiteral
from typing import TypeAlias

Value: TypeAlias = None | bool | int | float | str
CompareOp: TypeAlias = TypingLiteral["==", "!=", "<", "<=", ">", ">="]
ArithOp: TypeAlias = TypingLiteral["+", "-", "*", "/", "%"]
MatchKind: TypeAlias = TypingLiteral[":", "like", "like~", "regex", "regex~"]


@dc.dataclass(frozen=True, slots=True)
class Literal:
    """A constant. Integers keep Java's int/long/double distinction only through their Python value."""

    value: Value
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Field:
    """A field reference; ``optional`` for ``?name``. Resolution fills ``es_type`` (the mapping's type) and
    ``exact`` (the name searched for exact matches: the field itself, or a text field's keyword sub-field)."""

    name: str
    optional: bool = False
    es_type: str | None = None
    exact: str | None = None
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``insensitive`` for the ``~`` form (``startsWith~(...)``)."""

    name: str
    args: tuple[Expr, ...]
    insensitive: bool = False
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Arith:
    op: ArithOp
    left: Expr
    right: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Neg:
    """Unary minus (a unary plus is dropped by the parser, as Elasticsearch's builder drops it)."""

    operand: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class And:
    children: tuple[Expr, ...]
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Expr, ...]
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class In:
    """``value in (items)``; ``insensitive`` for ``in~``, ``negated`` for ``not in``."""

    value: Expr
    items: tuple[Expr, ...]
    insensitive: bool = False
    negated: bool = False
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class MatchOp:
    """``value : "x"``, ``value like~ ("a*", "b?")``, ``value regex "r"``: the operator and its constants."""

    op: MatchKind
    value: Expr
    patterns: tuple[Literal, ...]
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class IsNotNull:
    operand: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class InsensitiveEq:
    """Case-insensitive equality (``:`` without a wildcard, each item of ``in~``); ``negated`` for its
    negation (Elasticsearch's ``InsensitiveNotEquals``, what ``not x : "a"`` becomes)."""

    left: Expr
    right: Expr
    negated: bool = False
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Like:
    """A wildcard match: ``*`` any run of characters, ``?`` one character, every other character literal."""

    value: Expr
    pattern: str
    insensitive: bool = False
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Regex:
    """A regular expression (Lucene syntax, matched against the whole value); a list is joined with ``|``."""

    value: Expr
    pattern: str
    insensitive: bool = False
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Range:
    """``lower < value < upper`` (each bound inclusive or not): two comparisons of one value combined."""

    value: Expr
    lower: Expr
    lower_inclusive: bool
    upper: Expr
    upper_inclusive: bool
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


Expr: TypeAlias = (
    Literal
    | Field
    | Call
    | Compare
    | Arith
    | Neg
    | Not
    | And
    | Or
    | In
    | MatchOp
    | IsNull
    | IsNotNull
    | InsensitiveEq
    | Like
    | Regex
    | Range
)


@dc.dataclass(frozen=True, slots=True)
class EventFilter:
    """``category where condition``; ``category`` is None for ``any``."""

    category: str | None
    condition: Expr
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class Stage:
    """One ``[ ... ]`` of a sequence or sample: its filter, its own ``by`` keys, ``![`` and ``with runs=N``."""

    filter: EventFilter
    keys: tuple[Expr, ...] = ()
    missing: bool = False
    runs: int = 1
    start: int = dc.field(default=0, compare=False, repr=False)
    end: int = dc.field(default=0, compare=False, repr=False)


@dc.dataclass(frozen=True, slots=True)
class EventQuery:
    filter: EventFilter


@dc.dataclass(frozen=True, slots=True)
class SequenceQuery:
    """``sequence [by keys] [with maxspan=N unit] stage+ [until stage]``; ``maxspan_ms`` is None without one."""

    keys: tuple[Expr, ...]
    maxspan_ms: int | None
    stages: tuple[Stage, ...]
    until: Stage | None = None
    maxspan_text: str | None = None


@dc.dataclass(frozen=True, slots=True)
class SampleQuery:
    keys: tuple[Expr, ...]
    stages: tuple[Stage, ...]


@dc.dataclass(frozen=True, slots=True)
class Pipe:
    """``| head N`` or ``| tail N``."""

    kind: TypingLiteral["head", "tail"]
    count: int
    start: int = dc.field(default=0, compare=False, repr=False)


Query: TypeAlias = EventQuery | SequenceQuery | SampleQuery


@dc.dataclass(frozen=True, slots=True)
class Statement:
    """A whole query: what it selects and its pipes; ``text`` is the source (for error positions)."""

    query: Query
    pipes: tuple[Pipe, ...] = ()
    text: str = dc.field(default="", compare=False, repr=False)


def stage_keys(sequence_keys: tuple[Expr, ...], stage: Stage) -> tuple[Expr, ...]:
    """A stage's join keys as Elasticsearch combines them: the sequence-level keys, then the stage's own."""
    return sequence_keys + stage.keys


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr`` (in source order)."""
    if isinstance(expr, Literal | Field):
        return ()
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Compare | Arith):
        return (expr.left, expr.right)
    if isinstance(expr, InsensitiveEq):
        return (expr.left, expr.right)
    if isinstance(expr, Neg | Not | IsNull | IsNotNull):
        return (expr.operand,)
    if isinstance(expr, And | Or):
        return expr.children
    if isinstance(expr, In):
        return (expr.value, *expr.items)
    if isinstance(expr, MatchOp):
        return (expr.value, *expr.patterns)
    if isinstance(expr, Range):
        return (expr.value, expr.lower, expr.upper)
    return (expr.value,)


def map_children(node: Expr, function: Callable[[Expr], Expr]) -> Expr:
    """``node`` with ``function`` applied to each direct sub-expression (one level)."""
    if isinstance(node, Literal | Field):
        return node
    if isinstance(node, And | Or):
        return dc.replace(node, children=tuple(function(child) for child in node.children))
    if isinstance(node, Call):
        return dc.replace(node, args=tuple(function(arg) for arg in node.args))
    if isinstance(node, In):
        return dc.replace(node, value=function(node.value), items=tuple(function(item) for item in node.items))
    if isinstance(node, MatchOp | Like | Regex):
        return dc.replace(node, value=function(node.value))
    if isinstance(node, Range):
        return dc.replace(node, value=function(node.value), lower=function(node.lower), upper=function(node.upper))
    if isinstance(node, Compare | Arith):
        return dc.replace(node, left=function(node.left), right=function(node.right))
    if isinstance(node, InsensitiveEq):
        return dc.replace(node, left=function(node.left), right=function(node.right))
    return dc.replace(node, operand=function(node.operand))


def any_node(expr: Expr, predicate: Callable[[Expr], bool]) -> bool:
    """Whether ``predicate`` holds for ``expr`` or any expression below it (iterative: any depth)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if predicate(node):
            return True
        stack.extend(children(node))
    return False


def fields_in(expr: Expr) -> list[Field]:
    """Every field reference in ``expr``, in source order (iterative: any depth)."""
    found: list[Field] = []
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Field):
            found.append(node)
        else:
            stack.extend(reversed(children(node)))
    return found


def _roots(statement: Statement) -> list[Expr]:
    query = statement.query
    if isinstance(query, EventQuery):
        return [query.filter.condition]
    stages = [*query.stages, *([query.until] if isinstance(query, SequenceQuery) and query.until else [])]
    roots = list(query.keys)
    for stage in stages:
        roots += [stage.filter.condition, *stage.keys]
    return roots


def statement_fields(statement: Statement) -> list[Field]:
    """Every field reference of a statement: its conditions and its join keys, in source order."""
    return [field for root in _roots(statement) for field in fields_in(root)]


def statement_nodes(statement: Statement) -> list[Expr]:
    """Every expression of a statement's conditions and join keys (iterative: any depth)."""
    found: list[Expr] = []
    stack = list(reversed(_roots(statement)))
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(children(node)))
    return found
