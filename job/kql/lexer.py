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
from typing import Any, TypeVar

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

_RE_OPERATOR = re.compile(f"{_WS}+({_OR}|{_AND}){_WS}+")
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
_RE_UNQUOTED_PIECE = re.compile(rf"\\([trn])|\\([{_SPECIAL}])|\\u([0-9a-fA-F]{{4}})|\\({_OR}|{_AND}|{_NOT})|(\*)")
# One token at a position, in the order Kibana tries them. The quoted body is possessive: a PEG never
# backtracks into a repetition, so "a\" is an unterminated string, not one ending in a backslash.
_RE_TOKEN = re.compile(
    f"(?P<space>{_WS}+)"
    f"|(?P<not>{_NOT}{_WS}+)"
    r"|(?P<punctuation>[(){}:])"
    r"|(?P<range>[<>]=?)"
    r'|(?P<quoted>"(?P<quoted_body>(?:\\[trn]|\\u[0-9a-fA-F]{4}|\\[\\"]|[^"])*+)")'
    # Runs of characters that can neither be special nor start a keyword go in one step (speed only).
    f"|(?P<unquoted>(?:[^{_SPECIAL} \t\r\n\u00a0nN]+|{_UNQUOTED_UNIT})+)"
)
_RE_QUOTED_ESCAPE = re.compile(r'\\([trn])|\\u([0-9a-fA-F]{4})|\\([\\"])')
_RE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = {"t": "\t", "r": "\r", "n": "\n"}
_KEYWORD_VALUES: dict[str, str | bool | None] = {"null": None, "true": True, "false": False}
_PUNCTUATION = {"(": "_LPAR", ")": "_RPAR", "{": "_LBRACE", "}": "_RBRACE", ":": "_COLON"}
_T = TypeVar("_T", bound=Token)


class LexError(ValueError):
    """Input refused before parsing: a NUL character, nesting beyond MAX_DEPTH, a lone surrogate."""

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
    if "\\" not in run and "*" not in run and not _RE_SURROGATE.search(run):
        text = run.strip(JS_TRIM)
        return Literal(_KEYWORD_VALUES.get(text, text), quoted=False, start=start, end=end)
    parts: list[str] = []
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
    if any(_RE_SURROGATE.search(part) for part in parts):
        parts = [_join_surrogates(part, start) for part in parts]
    parts[0] = parts[0].lstrip(JS_TRIM)
    parts[-1] = parts[-1].rstrip(JS_TRIM)
    if len(parts) > 1:
        return Wildcard(tuple(parts), start=start, end=end)
    text = parts[0]
    return Literal(_KEYWORD_VALUES.get(text, text), quoted=False, start=start, end=end)


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
        match = _RE_TOKEN.match(text, pos)
        if match is None:
            yield _bad(text, pos)
            return
        group = match.lastgroup
        end = match.end()
        if group == "space":
            operator = _RE_OPERATOR.match(text, pos) if operand_end else None
            if operator is not None:
                word = operator.group(1)
                kind = "_OR" if len(word) == 2 else "_AND"
                yield _token(kind, word, operator.start(1), operator.end(1))
                pos, operand_end = operator.end(), False
            else:
                pos = end
            continue
        if group == "unquoted":
            run = match.group()
            yield _value_token("UNQUOTED", run, pos, decode_unquoted(run, pos, end))
            operand_end = True
        elif group == "quoted":
            yield _value_token("QUOTED", match.group(), pos, decode_quoted(match.group(group + "_body"), pos, end))
            operand_end = True
        elif group == "punctuation":
            char = match.group()
            if char in "({":
                depth += 1
                if depth > MAX_DEPTH:
                    raise LexError(f"the query nests parentheses and braces deeper than {MAX_DEPTH} levels", pos)
            elif char in ")}" and depth:
                depth -= 1
            yield _token(_PUNCTUATION[char], char, pos, end)
            operand_end = char in ")}"
        elif group == "range":
            yield _token("RANGE", match.group(), pos, end)
            operand_end = False
        else:  # "not"
            yield _token("NOT", match.group(), pos, end)
            operand_end = False
        pos = end


def _token(kind: str, raw: str, start: int, end: int, cls: type[_T] = Token) -> _T:  # type: ignore[assignment]
    # Token() runs lark's keyword-compatibility shim on every call; the parser only needs these slots.
    token = str.__new__(cls, raw)
    token.type, token.value, token.start_pos, token.end_pos = kind, raw, start, end
    token.line = token.column = token.end_line = token.end_column = None
    return token


def _value_token(kind: str, raw: str, start: int, node: Value) -> ValueToken:
    token = _token(kind, raw, start, start + len(raw), ValueToken)
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
