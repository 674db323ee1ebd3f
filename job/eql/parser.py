"""EQL text to :mod:`job.eql.ast`: lark LALR over the tokens of :mod:`job.eql.lexer`.

The tree is built by lark's reduce callbacks while parsing (no recursion over a parse tree). The checks
that Elasticsearch's ``LogicalPlanBuilder`` and ``ExpressionBuilder`` make while building the plan happen
here too, with their messages: maxspan units, pipes, the number of join keys per stage, ``with runs``,
array indexes, ``join`` and process relationships. Every lark error becomes an :class:`EqlSyntaxError`
worded as ANTLR words it (``mismatched input 'x' expecting {...}``).
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from job.eql import statements
from job.eql.ast import (
    And,
    Arith,
    Call,
    Compare,
    EventFilter,
    EventQuery,
    Expr,
    Field,
    In,
    Literal,
    MatchOp,
    Neg,
    Not,
    Or,
    SequenceQuery,
    Statement,
)
from job.eql.errors import EqlError, EqlSyntaxError, syntax_error
from job.eql.lexer import MAX_DEPTH, EqlLexer, ValueToken

_LITERAL_NAMES = {
    "EQ": "'=='",
    "NEQ": "'!='",
    "LT": "'<'",
    "LTE": "'<='",
    "GT": "'>'",
    "GTE": "'>='",
    "SEQ": "':'",
    "ASGN": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "ASTERISK": "'*'",
    "SLASH": "'/'",
    "PERCENT": "'%'",
    "DOT": "'.'",
    "COMMA": "','",
    "LB": "'['",
    "RB": "']'",
    "LP": "'('",
    "RP": "')'",
    "PIPE": "'|'",
    "OPTIONAL": "'?'",
    "MISSING_EVENT_OPEN": "'!['",
    "IN_INSENSITIVE": "'in~'",
    "LIKE_INSENSITIVE": "'like~'",
    "REGEX_INSENSITIVE": "'regex~'",
    "$END": "<EOF>",
}


def _display(name: str) -> str:
    if name in _LITERAL_NAMES:
        return _LITERAL_NAMES[name]
    if name.isupper() and name.lower() in {"and", "any", "by", "false", "in", "join", "like", "maxspan", "not"}:
        return f"'{name.lower()}'"
    if name.isupper() and name.lower() in {"null", "of", "or", "regex", "sample", "sequence", "true"}:
        return f"'{name.lower()}'"
    if name.isupper() and name.lower() in {"until", "where", "with"}:
        return f"'{name.lower()}'"
    return name


class _Pending(list[Expr]):
    """The children of an ``and``/``or`` chain still being read (appending keeps long chains linear)."""

    kind: type[And] | type[Or]
    start: int
    end: int


def _done(node: Any) -> Any:
    if isinstance(node, _Pending):
        return node.kind(tuple(node), start=node.start, end=node.end)
    return node


def _start(node: Any) -> int:
    if isinstance(node, Token):
        return int(node.start_pos or 0)
    return int(node.start)


def _end(node: Any) -> int:
    if isinstance(node, Token):
        return int(node.end_pos or 0)
    return int(node.end)


class _Build(Transformer[Token, Any]):
    """Reduce callbacks; names are the rules and aliases of grammar.lark."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: dict[int, int] = {}

    def _deep(self, node: Expr, *parts: Any) -> Expr:
        depth = 1 + max((self.depth.get(id(part), 1) for part in parts if not isinstance(part, Token)), default=0)
        if depth > MAX_DEPTH:
            raise syntax_error(f"EQL statement is too large: nesting deeper than {MAX_DEPTH} levels", node.start)
        if depth > 1:
            self.depth[id(node)] = depth
        return node

    # statement level: the structure is built in job.eql.statements
    def start(self, items: list[Any]) -> Statement:
        return statements.statement(_done(items[0]), items[1:])

    def sequence(self, items: list[Any]) -> Any:
        return statements.sequence(items)

    def keys_then_params(self, items: list[Any]) -> Any:
        return statements.header(items, keys_first=True)

    def params_then_keys(self, items: list[Any]) -> Any:
        return statements.header(items, keys_first=False)

    def seq_params(self, items: list[Any]) -> Any:
        return statements.maxspan(items)

    def until(self, items: list[Any]) -> Any:
        return statements.Until(items[1], _start(items[0]))

    def sequence_term(self, items: list[Any]) -> Any:
        return statements.term(items)

    def runs(self, items: list[Any]) -> Any:
        return statements.runs(items)

    def sample(self, items: list[Any]) -> Any:
        return statements.sample(items)

    def join(self, items: list[Any]) -> Any:
        raise syntax_error("Join is not supported", _start(items[0]), len("join"))

    def join_term(self, items: list[Any]) -> Any:
        return statements.term(items)

    def subquery(self, items: list[Any]) -> Any:
        return statements.Subquery(items[1], False, _start(items[0]), _end(items[2]))

    def missing_subquery(self, items: list[Any]) -> Any:
        return statements.Subquery(items[1], True, _start(items[0]), _end(items[2]))

    def event_filter(self, items: list[Any]) -> EventFilter:
        first, condition = items[0], _done(items[2])
        category = None if first.type == "ANY" else first.decoded
        return EventFilter(category, condition, start=_start(first), end=_end(condition))

    def join_keys(self, items: list[Any]) -> Any:
        return statements.Keys(tuple(_done(item) for item in items[1::2]), _start(items[0]), _end(items[-1]))

    def pipe(self, items: list[Any]) -> Any:
        return statements.pipe(items)

    # expressions
    def _chain(self, items: list[Any], kind: type[And] | type[Or]) -> _Pending:
        left, right = items[0], _done(items[2])
        if isinstance(left, _Pending) and left.kind is kind:
            left.append(right)
            left.end = _end(right)
            self.depth[id(left)] = max(self.depth.get(id(left), 1), self.depth.get(id(right), 1) + 1)
            return left
        chain = _Pending([_done(left), right])
        chain.kind, chain.start, chain.end = kind, _start(left), _end(right)
        self.depth[id(chain)] = 1 + max(self.depth.get(id(part), 1) for part in chain)
        return chain

    def or_(self, items: list[Any]) -> _Pending:
        return self._chain(items, Or)

    def and_(self, items: list[Any]) -> _Pending:
        return self._chain(items, And)

    def not_(self, items: list[Any]) -> Expr:
        operand = _done(items[1])
        return self._deep(Not(operand, start=_start(items[0]), end=_end(operand)), operand)

    def process_check(self, items: list[Any]) -> Expr:
        raise syntax_error("Process relationships are not supported", _start(items[0]), len(items[0]))

    def comparison(self, items: list[Any]) -> Expr:
        left, op, right = _done(items[0]), items[1], _done(items[2])
        node = Compare(op.value, left, right, start=_start(left), end=_end(right))
        return self._deep(node, left, right)

    def comparison_op(self, items: list[Any]) -> Token:
        return items[0]  # type: ignore[no-any-return]

    def arith(self, items: list[Any]) -> Expr:
        left, op, right = _done(items[0]), items[1], _done(items[2])
        return self._deep(Arith(op.value, left, right, start=_start(left), end=_end(right)), left, right)

    def unary(self, items: list[Any]) -> Expr:
        sign, operand = items[0], _done(items[1])
        if sign.type == "PLUS":
            return operand  # type: ignore[no-any-return]
        return self._deep(Neg(operand, start=_start(sign), end=_end(operand)), operand)

    def in_predicate(self, items: list[Any]) -> Expr:
        value = _done(items[0])
        negated = isinstance(items[1], Token) and items[1].type == "NOT"
        op = items[2] if negated else items[1]
        listed = tuple(_done(item) for item in items[(4 if negated else 3) : -1 : 2])
        node = In(value, listed, op.type == "IN_INSENSITIVE", negated, start=_start(value), end=_end(items[-1]))
        return self._deep(node, value, *listed)

    def match_predicate(self, items: list[Any]) -> Expr:
        value, op = _done(items[0]), items[1]
        constants = tuple(item for item in items[2:] if isinstance(item, Literal))
        node = MatchOp(op.value, value, constants, start=_start(value), end=_end(items[-1]))
        return self._deep(node, value)

    def match_op(self, items: list[Any]) -> Token:
        return items[0]  # type: ignore[no-any-return]

    def parenthesized(self, items: list[Any]) -> Expr:
        return _done(items[1])  # type: ignore[no-any-return]

    def function_call(self, items: list[Any]) -> Expr:
        name = items[0]
        args = tuple(_done(item) for item in items[2:-1:2])
        node = Call(name.decoded, args, name.type == "TILDE_IDENTIFIER", start=_start(name), end=_end(items[-1]))
        return self._deep(node, *args)

    def qualified_name(self, items: list[Any]) -> Field:
        optional = isinstance(items[0], Token) and items[0].type == "OPTIONAL"
        parts: list[str] = []
        for item in items[1 if optional else 0 :]:
            if isinstance(item, Token) and item.type == "ARRAY_INDEX":
                digits = item.lstrip("[ \t\r\n")
                raise syntax_error("Array indexes are not supported", _start(item) + len(item) - len(digits))
            if isinstance(item, ValueToken) and item.type in ("IDENTIFIER", "QUOTED_IDENTIFIER"):
                parts.append(item.decoded)
        return Field(".".join(parts), optional, start=_start(items[0]), end=_end(items[-1]))

    def identifier(self, items: list[Any]) -> ValueToken:
        return items[0]  # type: ignore[no-any-return]

    def constant(self, items: list[Any]) -> Literal:
        token = items[0]
        if isinstance(token, Literal):
            return token
        values: dict[str, Any] = {"NULL": None, "TRUE": True, "FALSE": False}
        value = token.decoded if token.type == "STRING" else values[token.type]
        return Literal(value, start=_start(token), end=_end(token))

    def number(self, items: list[Any]) -> Literal:
        token = items[0]
        return Literal(statements.number(token), start=_start(token), end=_end(token))


@cache
def _parser() -> Lark:
    grammar = resources.files("job.eql").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=EqlLexer, transformer=_Build(), maybe_placeholders=False)


def _syntax_error(text: str, error: UnexpectedToken) -> EqlSyntaxError:
    token = error.token
    expected = ", ".join(sorted({_display(name) for name in error.expected}))
    if token.type == "$END":
        return syntax_error(f"mismatched input '<EOF>' expecting {{{expected}}}", len(text))
    offset = int(token.start_pos or 0)
    shown = str(token)
    return syntax_error(f"mismatched input '{shown}' expecting {{{expected}}}", offset, max(1, len(shown)))


def parse(text: str) -> Statement:
    """Parse an EQL query. Raises :class:`EqlSyntaxError` (with ``line``/``column``) when it is not EQL."""
    if not isinstance(text, str):
        raise TypeError(f"an EQL query is a str, not {type(text).__name__}")
    with _LOCK:
        return _parse_locked(text)


_LOCK = threading.Lock()


def _parse_locked(text: str) -> Statement:
    try:
        parsed: Statement = _parser().parse(text)  # type: ignore[assignment]  # built by _Build
    except EqlError as exc:
        raise exc.with_query(text) from None
    except VisitError as exc:  # a callback raised: unwrap our own errors
        if isinstance(exc.orig_exc, EqlError):
            raise exc.orig_exc.with_query(text) from None
        raise
    except UnexpectedToken as exc:
        raise _syntax_error(text, exc).with_query(text) from None
    except (UnexpectedCharacters, UnexpectedInput) as exc:
        raise syntax_error(str(exc).splitlines()[0], int(exc.pos_in_stream or 0)).with_query(text) from None
    finally:
        transformer = _parser().options.transformer
        if isinstance(transformer, _Build):
            transformer.depth.clear()
    return Statement(parsed.query, parsed.pipes, text)


def parse_expression(text: str) -> Expr:
    """Parse a bare condition (``a == 1 and b : "x"``), as the part after ``where``; for tests and tools.
    Offsets are into the full statement ``any where <text>`` (:data:`EXPRESSION_PREFIX` characters more)."""
    statement = parse(EXPRESSION_PREFIX + text)
    query = statement.query
    if statement.pipes or not isinstance(query, EventQuery):
        raise syntax_error("not a bare expression", 0).with_query(text)
    return query.filter.condition


EXPRESSION_PREFIX = "any where "


def is_sequence(text: str) -> bool:
    """Whether ``text`` is an EQL sequence (False when it does not parse)."""
    try:
        return isinstance(parse(text).query, SequenceQuery)
    except EqlError:
        return False
