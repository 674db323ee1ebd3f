"""Errors of the KQL translator: a query that does not parse, or one the data view rejects.

Offsets are 0-based positions in the query string; ``line`` and ``column`` are 1-based and count
characters (code points). ``str()`` shows the message, the offending line and a caret under the token.
"""

from __future__ import annotations

from job.errors import QueryError

# Long lines (a 100 KB one-line query) are cut around the error so the message stays readable.
_CONTEXT = 60


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of ``offset`` in ``text``; lines end at ``\\n``."""
    line = text.count("\n", 0, offset) + 1
    line_start = text.rfind("\n", 0, offset) + 1
    return line, offset - line_start + 1


def render_caret(text: str, offset: int, width: int = 1) -> str:
    """The line holding ``offset`` and a ``---^`` line under it (tabs kept so the caret lines up)."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end == -1:
        line_end = len(text)
    line = text[line_start:line_end].rstrip("\r")
    column = offset - line_start
    head = ""
    if column > _CONTEXT:
        cut = column - _CONTEXT
        line, column, head = line[cut:], _CONTEXT, "..."
    tail = "..." if len(line) > column + _CONTEXT else ""
    line = line[: column + _CONTEXT]
    width = max(1, min(width, len(line) - column))
    pointer = "".join("\t" if ch == "\t" else "-" for ch in line[:column]) + "^" * width
    pad = "-" * len(head)
    return f"{head}{line}{tail}\n{pad}{pointer}"


class _PositionedError(QueryError):
    def __init__(self, message: str, query: str, offset: int | None, width: int = 1) -> None:
        self.query = query
        self.offset = offset
        self.width = width
        if offset is None:
            self.line = None
            self.column = None
        else:
            self.line, self.column = line_and_column(query, offset)
        super().__init__(message)

    def __str__(self) -> str:
        if self.offset is None:
            return self.message
        where = f" (line {self.line}, column {self.column})"
        return f"{self.message}{where}\n{render_caret(self.query, self.offset, self.width)}"


class KqlSyntaxError(_PositionedError):
    """The query is not valid KQL. ``line``/``column`` (1-based) point at the offending token.

    ``expected`` holds the Kibana names of what would have been accepted there (``"("``, ``value``,
    ``AND``, ``end of input``, ...); ``found`` is the offending character, or ``None`` at the end.
    """

    offset: int

    def __init__(
        self,
        message: str,
        query: str,
        offset: int,
        width: int = 1,
        expected: frozenset[str] = frozenset(),
        found: str | None = None,
    ) -> None:
        self.expected = expected
        self.found = found
        super().__init__(message, query, offset, width)


class KqlSemanticError(_PositionedError):
    """The query parses but cannot be translated against the given fields (Kibana's nested checks)."""
