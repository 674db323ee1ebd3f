"""Plain-text tables for commands that print to a terminal, safe for text taken from events and rule files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with newlines, terminal escapes and other control characters shown as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def clip(text: str, width: int) -> str:
    """At most ``width`` characters, ``…`` marking a cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def human_duration(seconds: float) -> str:
    """``0s``, ``0.4s``, ``12s``, ``3m05s``, ``2h10m``, ``3d04h``."""
    if seconds < 10:
        return f"{seconds:.1f}s" if seconds % 1 else f"{int(seconds)}s"
    whole = round(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // sub_size:02d}{sub}"
    return f"{whole}s"


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    width: int  # the most characters a cell shows
    right: bool = False  # numbers


def render(columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> str:
    """Rows under a header line, each cell printable and clipped to its column's width."""
    cells = [
        [
            clip(printable("" if cell is None else str(cell)), column.width)
            for column, cell in zip(columns, row, strict=True)
        ]
        for row in rows
    ]
    widths = [max([len(column.header), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)]
    lines = []
    for row in [[column.header for column in columns], *cells]:
        parts = [
            cell.rjust(width) if column.right else cell.ljust(width)
            for column, cell, width in zip(columns, row, widths, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
