"""The KQL syntax tree, shaped like Kibana's ``kuery`` AST.

Kibana's function nodes ``is``, ``range``, ``and``, ``or``, ``not`` and ``nested`` are the classes below;
its literal and wildcard nodes are :class:`Literal` and :class:`Wildcard`. Value lists are already
distributed (``f:(a or b)`` is ``Or(Is(f, a), Is(f, b))``), and a missing field is ``None``
(Kibana's ``null`` literal, which an unquoted ``null`` field name also produces).

``start``/``end`` are 0-based offsets into the query; they do not take part in equality.
"""

from __future__ import annotations

import dataclasses as dc
from typing import Literal as TypingLiteral
from typing import TypeAlias

RangeOp: TypeAlias = TypingLiteral["gt", "gte", "lt", "lte"]


@dc.dataclass(frozen=True, slots=True)
class Literal:
    """A quoted or unquoted literal. Unquoted ``true``/``false``/``null`` are Python True/False/None."""

    value: str | bool | None
    quoted: bool = False
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


@dc.dataclass(frozen=True, slots=True)
class Wildcard:
    """An unquoted literal with unescaped ``*``: the text pieces between the wildcards (two or more)."""

    parts: tuple[str, ...]
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)

    @property
    def is_lone(self) -> bool:
        """Exactly ``*`` (Kibana's ``isLoneWildcard``: one wildcard and nothing else)."""
        return self.parts == ("", "")

    @property
    def text(self) -> str:
        """The pattern with ``*`` for each wildcard (escaped stars are indistinguishable here)."""
        return "*".join(self.parts)


Value: TypeAlias = Literal | Wildcard


@dc.dataclass(frozen=True, slots=True)
class Is:
    """``field:value``, ``field:*`` (exists), free text (``field`` None) and ``*:*``."""

    field: Value | None
    value: Value
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


@dc.dataclass(frozen=True, slots=True)
class Range:
    """``field < value`` and the other comparison operators."""

    field: Value | None
    op: RangeOp
    value: Value
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


@dc.dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


@dc.dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


@dc.dataclass(frozen=True, slots=True)
class Not:
    child: Node
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


@dc.dataclass(frozen=True, slots=True)
class Nested:
    """``path:{ query }``; field names inside are relative to ``path``."""

    path: Value | None
    query: Node
    start: int = dc.field(default=0, compare=False)
    end: int = dc.field(default=0, compare=False)


Node: TypeAlias = Is | Range | And | Or | Not | Nested

MATCH_ALL = Is(Wildcard(("", "")), Wildcard(("", "")))
"""What the empty query parses to, as in Kibana (``is(*, *)``)."""


def js_string(value: Value | None) -> str:
    """The value as JavaScript's ``String()`` would print it (``null``, ``true``, the pattern with ``*``)."""
    if value is None:
        return "null"
    if isinstance(value, Wildcard):
        return value.text
    if isinstance(value.value, bool):
        return "true" if value.value else "false"
    if value.value is None:
        return "null"
    return value.value
