"""Tokens of KQL, following the literal rules of Kibana's grammar (``grammar.peggy``).

Kibana's parser is a PEG whose literals are greedy runs of characters; where a run ends depends
only on the characters, so it can be cut into tokens before an LALR parse. The one piece of context
is whether the previous token ended an operand: only then can whitespace + ``or``/``and`` +
whitespace be an operator (after ``(``, ``:`` or ``not`` Kibana skips the whitespace and ``or b``
is a literal).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.lexer import Lexer

from job.kql.ast import Literal, Value, Wildcard

MAX_DEPTH = 50
"""Deepest nesting of parentheses and braces accepted (keeps every later walk far from Python's limits)."""

SPACE = " \t\r\n\u00a0"
_WS = "[ \t\r\n\u00a0]"
_SPECIAL = r'\\():<>"*{}'
_OR = "[oO][rR]"
_AND = "[aA][nN][dD]"
_NOT = "[nN][oO][tT]"

# JavaScript's String.prototype.trim() removes these (WhiteSpace, LineTerminator and category Zs).
JS_TRIM = (
    "\t\n\u000b\u000c\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_RE_SPACES = re.compile(f"{_WS}+")
_RE_OR = re.compile(f"{_WS}+{_OR}{_WS}+")
_RE_AND = re.compile(f"{_WS}+{_AND}{_WS}+")
_RE_NOT = re.compile(f"{_NOT}{_WS}+")
# One unquoted character, in Kibana's order: escaped whitespace, escaped special character, \uXXXX,
# escaped keyword, wildcard, then any character that is neither special nor the start of a keyword.
_UNQUOTED_UNIT = (
    r"\\[trn]"
    rf"|\\[{_SPECIAL}]"
    r"|\\u[0-9a-fA-F]{4}"
    rf"|\\(?:{_OR}|{_AND}|{_NOT})"
    r"|\*"
    rf"|(?![{_SPECIAL}]|{_NOT}{_WS}|{_WS}(?:{_OR}|{_AND}){_WS})[\s\S]"
)
_RE_UNQUOTED = re.compile(f"(?:{_UNQUOTED_UNIT})+")
_RE_UNQUOTED_PIECE = re.compile(rf"\\([trn])|\\([{_SPECIAL}])|\\u([0-9a-fA-F]{{4}})|\\({_OR}|{_AND}|{_NOT})|(\*)")
# Possessive: a PEG never backtracks into the repetition, so "a\" is not a string ending in a backslash.
_RE_QUOTED = re.compile(r'"((?:\\[trn]|\\u[0-9a-fA-F]{4}|\\[\\"]|[^"])*+)"')
_RE_QUOTED_ESCAPE = re.compile(r'\\([trn])|\\u([0-9a-fA-F]{4})|\\([\\"])')
_RE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = {"t": "\t", "r": "\r", "n": "\n"}
_RANGE_OPS = {"<=": "lte", ">=": "gte", "<": "lt", ">": "gt"}
_PUNCTUATION = {"(": "_LPAR", ")": "_RPAR", "{": "_LBRACE", "}": "_RBRACE", ":": "_COLON"}
_OPERAND_END = frozenset({"_RPAR", "_RBRACE", "QUOTED", "UNQUOTED"})


class LexError(ValueError):
    """A character sequence no token can start with (reported by the parser with what it expected)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class ValueToken(Token):
    """A QUOTED or UNQUOTED token carrying its decoded :class:`Literal` or :class:`Wildcard`."""

    node: Value


class BadToken(Token):
    """A token no rule accepts; ``reason`` says why it is not a literal."""

    reason: str


def _quoted_piece(match: re.Match[str]) -> str:
    control, hex_digits, escaped = match.groups()
    if control:
        return _CONTROL[control]
    if hex_digits:
        return chr(int(hex_digits, 16))
    return str(escaped)


def _join_surrogates(text: str, offset: int) -> str:
    """Pair up UTF-16 surrogates written as \\uXXXX escapes; a lone one has no UTF-8 form."""
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise LexError("a \\u escape is half of a surrogate pair", offset) from None


def decode_quoted(body: str, start: int, end: int) -> Literal:
    """The literal between the quotes: \\" \\\\ \\t \\r \\n \\uXXXX are escapes, other backslashes stay."""
    value = _RE_QUOTED_ESCAPE.sub(_quoted_piece, body) if "\\" in body else body
    if _RE_SURROGATE.search(value):
        value = _join_surrogates(value, start)
    return Literal(value, quoted=True, start=start, end=end)


def decode_unquoted(run: str, start: int, end: int) -> Value:
    """The literal or wildcard for one run of unquoted characters (trimmed, then true/false/null)."""
    parts: list[str] = []
    if "\\" in run or "*" in run:
        current: list[str] = []
        position = 0
        for match in _RE_UNQUOTED_PIECE.finditer(run):
            current.append(run[position : match.start()])
            position = match.end()
            control, special, hex_digits, keyword, star = match.groups()
            if star:
                parts.append("".join(current))
                current = []
            elif control:
                current.append(_CONTROL[control])
            elif hex_digits:
                current.append(chr(int(hex_digits, 16)))
            else:
                current.append(special or keyword)
        current.append(run[position:])
        parts.append("".join(current))
    else:
        parts.append(run)
    if any(_RE_SURROGATE.search(part) for part in parts):
        parts = [_join_surrogates(part, start) for part in parts]
    parts[0] = parts[0].lstrip(JS_TRIM)
    parts[-1] = parts[-1].rstrip(JS_TRIM)
    if len(parts) > 1:
        return Wildcard(tuple(parts), start=start, end=end)
    text = parts[0]
    value: str | bool | None = {"null": None, "true": True, "false": False}.get(text, text)
    return Literal(value, quoted=False, start=start, end=end)


def _bad_reason(text: str, pos: int) -> str:
    if text[pos] == '"':
        return "unterminated quoted string"
    if text.startswith("\\u", pos):
        return "invalid \\u escape (four hex digits needed)"
    return f"invalid escape {text[pos : pos + 2]!r}" if pos + 1 < len(text) else "backslash at end of input"


def tokenize(text: str) -> Iterator[Token]:
    """Tokens of ``text``; stops after a :class:`BadToken`. Raises LexError for NUL and deep nesting."""
    nul = text.find("\x00")
    if nul >= 0:
        raise LexError("the query contains a NUL character", nul)
    pos, length, depth = 0, len(text), 0
    operand_end = False
    while pos < length:
        char = text[pos]
        if char in SPACE:
            if operand_end:
                match = _RE_OR.match(text, pos) or _RE_AND.match(text, pos)
                if match:
                    word = match.group().strip(SPACE)
                    start = text.index(word, pos)
                    kind = "_OR" if word in ("or", "oR", "Or", "OR") else "_AND"
                    yield Token(kind, word, start_pos=start, end_pos=start + len(word))
                    pos, operand_end = match.end(), False
                    continue
            pos = _RE_SPACES.match(text, pos).end()  # type: ignore[union-attr]
            continue
        kind = ""
        if char in "nN" and (match := _RE_NOT.match(text, pos)):
            yield Token("NOT", match.group(), start_pos=pos, end_pos=match.end())
            pos, operand_end = match.end(), False
            continue
        if char in _PUNCTUATION:
            kind = _PUNCTUATION[char]
            if char in "({":
                depth += 1
                if depth > MAX_DEPTH:
                    raise LexError(f"the query nests parentheses and braces deeper than {MAX_DEPTH} levels", pos)
            elif char in ")}":
                depth = max(0, depth - 1)
            yield Token(kind, char, start_pos=pos, end_pos=pos + 1)
            pos += 1
        elif char in "<>":
            op = text[pos : pos + 2] if text.startswith("=", pos + 1) else char
            kind = "RANGE"
            yield Token(kind, _RANGE_OPS[op], start_pos=pos, end_pos=pos + len(op))
            pos += len(op)
        elif char == '"':
            quoted = _RE_QUOTED.match(text, pos)
            if quoted is None:
                yield _bad(text, pos)
                return
            kind = "QUOTED"
            yield _value_token(kind, quoted.group(), pos, decode_quoted(quoted.group(1), pos, quoted.end()))
            pos = quoted.end()
        else:
            run = _RE_UNQUOTED.match(text, pos)
            if run is None:
                yield _bad(text, pos)
                return
            kind = "UNQUOTED"
            yield _value_token(kind, run.group(), pos, decode_unquoted(run.group(), pos, run.end()))
            pos = run.end()
        operand_end = kind in _OPERAND_END


def _value_token(kind: str, raw: str, start: int, node: Value) -> ValueToken:
    token = ValueToken(kind, raw, start_pos=start, end_pos=start + len(raw))
    token.node = node
    return token


def _bad(text: str, pos: int) -> BadToken:
    token = BadToken("BAD", text[pos], start_pos=pos, end_pos=pos + 1)
    token.reason = _bad_reason(text, pos)
    return token


class KqlLexer(Lexer):
    """Adapter that lets lark's LALR parser pull tokens from :func:`tokenize`."""

    def __init__(self, lexer_conf: Any) -> None:
        del lexer_conf

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]  # lark's interface 0: the text
        return tokenize(text)
