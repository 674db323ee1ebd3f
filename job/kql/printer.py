"""Syntax tree back to KQL text that parses to the same tree (used by tests and for messages).

Operators are written in lower case with parentheses around every nested ``and``/``or``; literals are
escaped so that Kibana's grammar reads them back unchanged. Some literal values have no KQL spelling
(an unquoted string with leading or trailing whitespace, or the unquoted strings ``true``, ``false``
and ``null``); for those :func:`to_kql` raises ValueError.
"""

from __future__ import annotations

from job.kql.ast import And, Nested, Node, Not, Or, Range, Value, Wildcard
from job.kql.lexer import JS_TRIM, SPACE

_SPECIAL = '\\():<>"*{}'
_ESCAPED_CONTROL = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\x00": "\\u0000"}
_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_STAR = object()


def _quoted(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "\\u0000")
    return f'"{body}"'


def _keyword_at(chars: list[str | object], index: int) -> int:
    """Length of an or/and/not at ``index`` that the grammar would read as an operator (0 if none)."""

    def text(i: int, n: int) -> str:
        piece = chars[i : i + n]
        return "".join(c for c in piece if isinstance(c, str)).lower() if _STAR not in piece else ""

    def is_space(i: int) -> bool:
        char = chars[i]
        return isinstance(char, str) and char in SPACE

    def space_or_end(i: int) -> bool:
        return i >= len(chars) or is_space(i)

    if text(index, 3) == "not" and space_or_end(index + 3):
        return 3
    before = index > 0 and is_space(index - 1)
    for word in ("or", "and"):
        if before and text(index, len(word)) == word and space_or_end(index + len(word)):
            return len(word)
    return 0


def _unquoted(chars: list[str | object]) -> str:
    out: list[str] = []
    index = 0
    while index < len(chars):
        char = chars[index]
        length = _keyword_at(chars, index)
        if length:
            word = "".join(str(c) for c in chars[index : index + length])
            # `\n` wins over `\not` in the grammar, so a lower-case "not" starts with \u006e.
            out.append("\\u006e" + word[1:] if word[0] == "n" else "\\" + word)
            index += length
            continue
        if char is _STAR:
            out.append("*")
        elif isinstance(char, str) and char in _SPECIAL:
            out.append("\\" + char)
        else:
            out.append(_ESCAPED_CONTROL.get(str(char), str(char)))
        index += 1
    return "".join(out) or "\\t"


def literal_to_kql(value: Value) -> str:
    """One literal or wildcard as KQL. ValueError if no KQL spelling reads back as this value."""
    if isinstance(value, Wildcard):
        chars: list[str | object] = []
        for i, part in enumerate(value.parts):
            if i:
                chars.append(_STAR)
            chars.extend(part)
        text = value.text
    elif value.quoted:
        if not isinstance(value.value, str):
            raise ValueError("a quoted literal is always a string")
        return _quoted(value.value)
    elif not isinstance(value.value, str):
        return {True: "true", False: "false", None: "null"}[value.value]
    else:
        text = value.value
        if text in ("true", "false", "null"):
            raise ValueError(f"the unquoted string {text!r} reads back as a JSON literal")
        chars = list(text)
    if text != text.strip(JS_TRIM):
        raise ValueError(f"an unquoted literal cannot start or end with whitespace: {text!r}")
    return _unquoted(chars)


def _field(field: Value | None) -> str:
    return "null" if field is None else literal_to_kql(field)


def _operand(node: Node) -> str:
    text = to_kql(node)
    return f"({text})" if isinstance(node, And | Or | Not) else text


def to_kql(node: Node) -> str:
    """KQL text for ``node``; parsing it gives an equal tree."""
    if isinstance(node, Or):
        return " or ".join(_operand(child) for child in node.children)
    if isinstance(node, And):
        return " and ".join(_operand(child) for child in node.children)
    if isinstance(node, Not):
        return f"not {_operand(node.child)}"
    if isinstance(node, Nested):
        return f"{_field(node.path)}:{{ {to_kql(node.query)} }}"
    if isinstance(node, Range):
        return f"{_field(node.field)} {_OPERATORS[node.op]} {literal_to_kql(node.value)}"
    if node.field is None:
        return literal_to_kql(node.value)
    return f"{_field(node.field)}:{literal_to_kql(node.value)}"
