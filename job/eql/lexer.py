"""Tokens of Elasticsearch's EQL (the lexer rules of ``EqlBase.g4``), cut before the LALR parse.

Keywords are lower case and case-sensitive (``AND`` is an identifier). ``in~``, ``like~`` and ``regex~``
are operators; any other letter-first identifier followed by ``~`` is a case-insensitive function name.
Strings are double-quoted with the escapes ``\\b \\t \\n \\f \\r \\" \\' \\\\`` and ``\\u{XX..XXXXXXXX}``,
or raw (``\"\"\"...\"\"\"`` on one line, up to two more quotes at its end belonging to the text). The old
single-quoted and ``?"..."`` forms are lexed only to be refused with Elasticsearch's message. Comments
(``//`` to the end of the line, ``/* */`` nested) and whitespace are skipped.

``[`` right after a field name and followed by digits is the array-index syntax, one ARRAY_INDEX token (so
that ``by name [ next stage ]`` needs no lookahead in the parser); it is refused later, as Elasticsearch
refuses it. Bracket nesting deeper than :data:`MAX_DEPTH` stops the lexer with an error, in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.lexer import Lexer

from job.eql.errors import EqlSyntaxError, syntax_error

MAX_DEPTH = 100
"""Deepest nesting of ``(``, ``[`` and of the other nested forms (``not``, unary minus, arithmetic) accepted.
Elasticsearch's own parser gives up with "EQL statement is too large" somewhere deeper; every walk of the
tree here stays far from Python's recursion limit."""

MAX_QUERY_CHARS = 10_000_000
"""Longest query text read (a list of 100,000 values is about a megabyte)."""

KEYWORDS = {
    word: word.upper()
    for word in (
        *("and", "any", "by", "false", "in", "join", "like", "maxspan", "not", "null", "of", "or", "regex"),
        *("sample", "sequence", "true", "until", "where", "with"),
    )
}
_INSENSITIVE = {"in": "IN_INSENSITIVE", "like": "LIKE_INSENSITIVE", "regex": "REGEX_INSENSITIVE"}
_OPERATORS = {
    "==": "EQ",
    "!=": "NEQ",
    "<=": "LTE",
    ">=": "GTE",
    "![": "MISSING_EVENT_OPEN",
    ":": "SEQ",
    "=": "ASGN",
    "<": "LT",
    ">": "GT",
    "+": "PLUS",
    "-": "MINUS",
    "*": "ASTERISK",
    "/": "SLASH",
    "%": "PERCENT",
    ".": "DOT",
    ",": "COMMA",
    "[": "LB",
    "]": "RB",
    "(": "LP",
    ")": "RP",
    "|": "PIPE",
    "?": "OPTIONAL",
}
_OPENING = frozenset({"LB", "LP", "MISSING_EVENT_OPEN"})
_CLOSING = frozenset({"RB", "RP"})
_NAME_END = frozenset({"IDENTIFIER", "QUOTED_IDENTIFIER", "ARRAY_INDEX"})

_RE_SPACE = re.compile(r"[ \t\r\n]+")
_RE_NUMBER = re.compile(r"(?:\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)|(\d+)")
_RE_WORD = re.compile(r"[A-Za-z_@][A-Za-z0-9_]*")
_RE_STRING = re.compile(r'"((?:\\[btnfr"\'\\]|\\u\{[0-9A-Fa-f]+\}|[^\r\n"\\])*)"')
_RE_RAW = re.compile(r'"""([^\r\n]*?)"""("{0,2})')
_RE_SINGLE = re.compile(r"'(?:\\[btnfr\"'\\]|[^\r\n'\\])*'")
_RE_QMARK = re.compile(r"\?(?:\"(?:\\\"|[^\"\r\n])*\"|'(?:\\'|[^'\r\n])*')")
_RE_QUOTED_ID = re.compile(r"`((?:[^`]|``)*)`")
_RE_ARRAY_INDEX = re.compile(r"\[[ \t\r\n]*\d+(?:[ \t\r\n]+\d+)*[ \t\r\n]*\]")
_RE_ESCAPE = re.compile(r"\\(?:([btnfr\"'\\])|u\{([0-9A-Fa-f]+)\})")
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


class ValueToken(Token):
    """A STRING, number or identifier token carrying its decoded value."""

    decoded: Any


def _token(kind: str, raw: str, start: int, value: Any = None) -> ValueToken:
    # Token() runs lark's keyword-compatibility shim on every call; the parser needs only these slots.
    token = str.__new__(ValueToken, raw)
    token.type, token.value, token.start_pos, token.end_pos = kind, raw, start, start + len(raw)
    token.line = token.column = token.end_line = token.end_column = None
    token.decoded = value
    return token


def _unescape(body: str, start: int) -> str:
    """A double-quoted string's text; ``start`` is the offset of the body, for errors in \\u{...}."""
    if "\\" not in body:
        return body

    def piece(match: re.Match[str]) -> str:
        simple, hex_digits = match.groups()
        if simple:
            return _SIMPLE_ESCAPES[simple]
        where = start + match.start()
        if not 2 <= len(hex_digits) <= 8:
            raise syntax_error(
                f"Unicode sequence should use [2-8] hex digits, [{match.group()}] has [{len(hex_digits)}]",
                where,
                len(match.group()),
            )
        code = int(hex_digits, 16)
        if 0xD800 <= code <= 0xDFFF:
            raise syntax_error(f"Invalid unicode character code, [{hex_digits}] is a surrogate code", where)
        if code > 0x10FFFF:
            raise syntax_error(f"Invalid unicode character code [{hex_digits}]", where, len(match.group()))
        return chr(code)

    return _RE_ESCAPE.sub(piece, body)


def _bad_escape(text: str, start: int) -> EqlSyntaxError:
    """Why a double-quoted string starting at ``start`` did not lex."""
    position = start + 1
    while position < len(text) and text[position] not in '"\r\n':
        if text[position] == "\\":
            if text.startswith("\\u{", position):
                close = text.find("}", position)
                if close < 0 or not re.fullmatch(r"[0-9A-Fa-f]+", text[position + 3 : close]):
                    return syntax_error("Invalid unicode escape sequence, expected [\\u{XX..XXXXXXXX}]", position)
                position = close + 1
                continue
            if position + 1 >= len(text) or text[position + 1] not in "btnfr\"'\\":
                escape = text[position : position + 2]
                return syntax_error(f"Invalid escape sequence [{escape}] in string", position, len(escape))
            position += 2
            continue
        position += 1
    return syntax_error('Unterminated string; strings are enclosed in double quotes ["]', start)


def _skip_comment(text: str, pos: int) -> int:
    """The end of the comment starting at ``pos`` (``/*`` comments nest, as the grammar's rule does)."""
    if text.startswith("//", pos):
        end = text.find("\n", pos)
        return len(text) if end < 0 else end + 1
    depth, position = 0, pos
    while position < len(text):
        if text.startswith("/*", position):
            depth += 1
            position += 2
        elif text.startswith("*/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    raise syntax_error("Unterminated comment [/*]", pos, 2)


def tokenize(text: str) -> Iterator[ValueToken]:
    """The tokens of ``text``; raises :class:`EqlSyntaxError` (without the query attached) where none fits."""
    if len(text) > MAX_QUERY_CHARS:
        raise syntax_error(f"EQL statement is too large: {len(text)} characters, at most {MAX_QUERY_CHARS}", 0)
    pos, length, depth = 0, len(text), 0
    previous = ""
    while pos < length:
        char = text[pos]
        if char in " \t\r\n":
            match = _RE_SPACE.match(text, pos)
            assert match is not None
            pos = match.end()
            continue
        if text.startswith("//", pos) or text.startswith("/*", pos):
            pos = _skip_comment(text, pos)
            continue
        token = _next_token(text, pos, previous)
        kind = token.type
        if kind in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise syntax_error(f"EQL statement is too large: nesting deeper than {MAX_DEPTH} levels", pos)
        elif kind in _CLOSING and depth:
            depth -= 1
        previous = kind
        pos = int(token.end_pos or 0)
        yield token


def _next_token(text: str, pos: int, previous: str) -> ValueToken:
    char = text[pos]
    if char == '"':
        raw = _RE_RAW.match(text, pos)
        if raw is not None:
            return _token("STRING", raw.group(), pos, raw.group(1) + raw.group(2))
        match = _RE_STRING.match(text, pos)
        if match is None:
            raise _bad_escape(text, pos)
        return _token("STRING", match.group(), pos, _unescape(match.group(1), pos + 1))
    if char == "'":
        match = _RE_SINGLE.match(text, pos)
        width = match.end() - pos if match else 1
        raise syntax_error("Use double quotes [\"] to define string literals, not single quotes [']", pos, width)
    if char == "?":
        match = _RE_QMARK.match(text, pos)
        if match is not None:
            raise syntax_error(
                f'Use triple double quotes ["""] to define unescaped string literals, not [?{text[pos + 1]}]',
                pos,
                match.end() - pos,
            )
    if char.isdigit() or (char == "." and pos + 1 < len(text) and text[pos + 1].isdigit()):
        match = _RE_NUMBER.match(text, pos)
        assert match is not None
        kind = "INTEGER_VALUE" if match.group(1) else "DECIMAL_VALUE"
        return _token(kind, match.group(), pos)
    if char == "`":
        match = _RE_QUOTED_ID.match(text, pos)
        if match is None:
            raise syntax_error("Unterminated quoted identifier; identifiers are enclosed in backquotes [`]", pos)
        return _token("QUOTED_IDENTIFIER", match.group(), pos, match.group(1).replace("``", "`"))
    if char.isascii() and (char.isalpha() or char in "_@"):
        word = _RE_WORD.match(text, pos)
        assert word is not None
        name = word.group()
        if char.isalpha() and text.startswith("~", word.end()):
            kind = _INSENSITIVE.get(name, "TILDE_IDENTIFIER")
            return _token(kind, name + "~", pos, name)
        return _token(KEYWORDS.get(name, "IDENTIFIER"), name, pos, name)
    if char == "[" and previous in _NAME_END:
        match = _RE_ARRAY_INDEX.match(text, pos)
        if match is not None:
            return _token("ARRAY_INDEX", match.group(), pos)
    two = text[pos : pos + 2]
    if two in _OPERATORS:
        return _token(_OPERATORS[two], two, pos)
    if char in _OPERATORS:
        return _token(_OPERATORS[char], char, pos)
    raise syntax_error(f"token recognition error at: '{char}'", pos)


class EqlLexer(Lexer):
    """Adapter that lets lark's LALR parser pull tokens from :func:`tokenize`."""

    def __init__(self, lexer_conf: Any) -> None:
        del lexer_conf

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]  # lark's interface 0: the text
        return tokenize(text)
