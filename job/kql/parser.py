"""KQL text to :mod:`job.kql.ast` nodes: lark LALR over the tokens of :mod:`job.kql.lexer`.

The tree is built by lark's reduce callbacks while parsing (no recursion over the parse tree), and
every lark error becomes a :class:`KqlSyntaxError` with Kibana's wording.
"""

from __future__ import annotations

import dataclasses as dc
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput, UnexpectedToken

from job.kql.ast import MATCH_ALL, And, Is, Literal, Nested, Node, Not, Or, Range, RangeOp, Value
from job.kql.errors import KqlSyntaxError
from job.kql.lexer import SPACE, BadToken, KqlLexer, LexError, ValueToken, tokenize

# How Kibana names each token in "Expected ... but ... found." (QUOTED/UNQUOTED depend on context).
_NAMES: dict[str, tuple[str, ...]] = {
    "_OR": ("OR",),
    "_AND": ("AND",),
    "NOT": ("NOT",),
    "_LPAR": ('"("',),
    "_RPAR": ('")"',),
    "_LBRACE": ('"{"',),
    "_RBRACE": ('"}"',),
    "_COLON": ('":"',),
    "RANGE": ('"<"', '"<="', '">"', '">="'),
    "$END": ("end of input",),
}


_WHITESPACE_AFTER = frozenset({"_LPAR", "_LBRACE", "_COLON", "RANGE"})
_RANGE_OPS: dict[str, RangeOp] = {"<=": "lte", ">=": "gte", "<": "lt", ">": "gt"}


@dc.dataclass(frozen=True, slots=True)
class _ListNot:
    item: _ListItem


@dc.dataclass(frozen=True, slots=True)
class _ListAnd:
    items: tuple[_ListItem, ...]


@dc.dataclass(frozen=True, slots=True)
class _ListOr:
    items: tuple[_ListItem, ...]


_ListItem = Value | _ListNot | _ListAnd | _ListOr


def _distribute(field: Value | None, item: _ListItem, field_start: int) -> Node:
    """``f:(a or not b)`` becomes ``or(is(f,a), not(is(f,b)))``, as Kibana's partial functions do."""
    if isinstance(item, _ListOr):
        children = tuple(_distribute(field, each, field_start) for each in item.items)
        return Or(children, start=field_start, end=children[-1].end)
    if isinstance(item, _ListAnd):
        children = tuple(_distribute(field, each, field_start) for each in item.items)
        return And(children, start=field_start, end=children[-1].end)
    if isinstance(item, _ListNot):
        child = _distribute(field, item.item, field_start)
        return Not(child, start=field_start, end=child.end)
    return Is(field, item, start=field_start, end=item.end)


def _node_start(field: Value | None, token: Token) -> int:
    return field.start if field is not None else int(token.start_pos or 0)


class _Build(Transformer[Token, Any]):
    """Reduce callbacks; names are the rules and aliases of grammar.lark."""

    def start(self, children: list[Node]) -> Node:
        return children[0] if children else MATCH_ALL

    def or_query(self, children: list[Node]) -> Or:
        return Or(tuple(children), start=children[0].start, end=children[-1].end)

    def and_query(self, children: list[Node]) -> And:
        return And(tuple(children), start=children[0].start, end=children[-1].end)

    def not_query(self, children: list[Any]) -> Not:
        keyword, child = children
        return Not(child, start=keyword.start_pos, end=child.end)

    def nested(self, children: list[Any]) -> Nested:
        (path, path_token), query = children
        return Nested(path, query, start=_node_start(path, path_token), end=query.end)

    def range(self, children: list[Any]) -> Range:
        (field, field_token), operator, value = children
        op = _RANGE_OPS[operator.value]
        return Range(field, op, value, start=_node_start(field, field_token), end=value.end)

    def field_value(self, children: list[Any]) -> Node:
        (field, field_token), item = children
        return _distribute(field, item, _node_start(field, field_token))

    def free_text(self, children: list[Value]) -> Is:
        (value,) = children
        return Is(None, value, start=value.start, end=value.end)

    def list_or(self, children: list[_ListItem]) -> _ListOr:
        return _ListOr(tuple(children))

    def list_and(self, children: list[_ListItem]) -> _ListAnd:
        return _ListAnd(tuple(children))

    def list_not(self, children: list[Any]) -> _ListNot:
        return _ListNot(children[1])

    def field(self, children: list[ValueToken]) -> tuple[Value | None, Token]:
        token = children[0]
        node = token.node
        # An unquoted `null` field name is Kibana's null literal, the same as no field at all.
        if isinstance(node, Literal) and not node.quoted and node.value is None:
            return None, token
        return node, token

    def value(self, children: list[ValueToken]) -> Value:
        return children[0].node


@cache
def _parser() -> Lark:
    grammar = resources.files("job.kql").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer=KqlLexer, transformer=_Build(), maybe_placeholders=False)


def _state_before(query: str, offset: int) -> tuple[Any, Token | None]:
    """The parser right after the last token before ``offset``, and that token.

    LALR reduces on the failing token before noticing the error; Kibana's PEG reports what could
    follow the previous token, so the expectations are taken from a replay up to that point.
    """
    state = _parser().parse_interactive("")
    previous = None
    for token in tokenize(query):
        if int(token.start_pos or 0) >= offset:
            break
        state.feed_token(token)
        previous = token
    return state, previous


def _expected_names(query: str, offset: int) -> frozenset[str]:
    state, previous = _state_before(query, offset)
    before = previous.type if previous is not None else None
    accepted = state.accepts()
    names = {name for terminal in accepted for name in _NAMES.get(terminal, ())}
    # Kibana's named rules report where they start: OR/AND begin at whitespace that a quoted value
    # or a closing bracket leaves before the offending character, so there they are not listed.
    if before in ("QUOTED", "_RPAR", "_RBRACE") and offset > 0 and query[offset - 1] in SPACE:
        names -= {"AND", "OR"}
    # Kibana lists "whitespace" where one of its optional-whitespace rules was tried: at the start
    # and after ( { : and a range operator (not after AND/OR/NOT, which consume it themselves).
    if before is None or before in _WHITESPACE_AFTER:
        names.add("whitespace")
    if accepted & {"QUOTED", "UNQUOTED"}:
        if before == "RANGE":
            names.add("literal")
        else:
            names.add("value")
            state.feed_token(Token("UNQUOTED", "x"))
            if "_COLON" in state.accepts():
                names.add("field name")
    return frozenset(names)


def _syntax_error(query: str, error: UnexpectedToken) -> KqlSyntaxError:
    token = error.token
    if token.type == "$END":
        offset, found, width = len(query), None, 1
    else:
        offset = int(token.start_pos or 0)
        found = query[offset]
        width = max(1, len(str(token).rstrip()))
    expected = _expected_names(query, offset)
    listed = ", ".join(sorted(expected))
    shown = f'"{found}"' if found is not None else "end of input"
    message = f"Expected {listed} but {shown} found."
    if isinstance(token, BadToken):
        message = f"{message[:-1]}: {token.reason}."
    return KqlSyntaxError(message, query, offset, width, expected, found)


def parse(query: str) -> Node:
    """Parse a KQL query into its syntax tree. Raises :class:`KqlSyntaxError`."""
    if not isinstance(query, str):
        raise TypeError(f"a KQL query is a str, not {type(query).__name__}")
    try:
        node: Node = _parser().parse(query)  # type: ignore[assignment]  # built by _Build, not a Tree
    except UnexpectedToken as error:
        raise _syntax_error(query, error) from None
    except LexError as error:
        raise KqlSyntaxError(error.reason[0].upper() + error.reason[1:] + ".", query, error.offset) from None
    except UnexpectedInput as error:  # not raised with our lexer; kept so no lark error can escape
        raise KqlSyntaxError(str(error).splitlines()[0], query, int(error.pos_in_stream or 0)) from None
    return node
