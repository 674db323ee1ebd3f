"""Where each key of a TOML text sits. ``tomllib`` parses without positions, so a small scan finds them.

``key_lines(text)`` maps key paths to 1-based line numbers. A path names tables, keys and the indices of
arrays of tables as they appear in the parsed document: ``("rule", "risk_score")`` is the line of
``risk_score =`` under ``[rule]``; ``("rule", "threat", 1, "tactic")`` is the line of the second
``[[rule.threat]]``'s ``[rule.threat.tactic]`` header. Text inside strings (an investigation guide
with ``key = value`` lines in it) and inside multi-line arrays is never taken for a key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

PathPart = str | int
KeyPath = tuple[PathPart, ...]

_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_PART_RE = re.compile(_PART)


def _split_key(dotted: str) -> list[str]:
    parts = []
    for match in _PART_RE.finditer(dotted):
        part = match.group(0)
        if part[0] == '"':
            try:
                part = str(json.loads(part))
            except ValueError:
                part = part[1:-1]
        elif part[0] == "'":
            part = part[1:-1]
        parts.append(part)
    return parts


class _Scanner:
    """Tracks strings and brackets across lines, so that only real keys and headers are recorded."""

    def __init__(self) -> None:
        self.open_string: str | None = None  # the delimiter of a multi-line string still open
        self.depth = 0  # open [ and { of values

    def at_top(self) -> bool:
        return self.open_string is None and self.depth == 0

    def consume(self, line: str, start: int = 0) -> None:
        i = start
        while i < len(line):
            if self.open_string is not None:
                i = self._close(line, i)
                continue
            char = line[i]
            if char == "#":
                return
            if line.startswith('"""', i) or line.startswith("'''", i):
                self.open_string = line[i : i + 3]
                i += 3
            elif char in "\"'":
                i = self._skip_single(line, i)
            elif char in "[{":
                self.depth += 1
                i += 1
            elif char in "]}":
                self.depth = max(0, self.depth - 1)
                i += 1
            else:
                i += 1

    def _close(self, line: str, i: int) -> int:
        delimiter = self.open_string or ""
        while True:
            found = line.find(delimiter, i)
            if found == -1:
                return len(line)
            backslashes = 0
            while found - backslashes > 0 and line[found - backslashes - 1] == "\\":
                backslashes += 1
            if delimiter == '"""' and backslashes % 2 == 1:  # an escaped quote
                i = found + 1
                continue
            # Up to two quotes right before the closing delimiter belong to the string.
            end = found + 3
            while end < len(line) and line[end] == delimiter[0] and end - found < 5:
                end += 1
            self.open_string = None
            return end

    @staticmethod
    def _skip_single(line: str, i: int) -> int:
        quote = line[i]
        i += 1
        while i < len(line) and line[i] != quote:
            i += 2 if quote == '"' and line[i] == "\\" else 1
        return i + 1


class _Document:
    def __init__(self) -> None:
        self.lines: dict[KeyPath, int] = {}
        self.arrays: dict[KeyPath, int] = {}  # path of an array of tables -> index of its last table
        self.table: KeyPath = ()

    def record(self, path: KeyPath, number: int) -> None:
        self.lines.setdefault(path, number)

    def resolve(self, parts: Sequence[str]) -> list[KeyPath]:
        """Each prefix of a dotted header name, with each array of tables replaced by its current (last) table."""
        path: KeyPath = ()
        prefixes = []
        for part in parts:
            path = (*path, part)
            if path in self.arrays:
                path = (*path, self.arrays[path])
            prefixes.append(path)
        return prefixes

    def array_header(self, parts: Sequence[str], number: int) -> None:
        prefixes = self.resolve(parts[:-1])
        for prefix in prefixes:
            self.record(prefix, number)
        array = (*(prefixes[-1] if prefixes else ()), parts[-1])
        index = self.arrays.get(array, -1) + 1
        self.arrays[array] = index
        self.table = (*array, index)
        self.record(array, number)
        self.record(self.table, number)

    def table_header(self, parts: Sequence[str], number: int) -> None:
        prefixes = self.resolve(parts)
        for prefix in prefixes:  # [a.b.c] also defines a and a.b
            self.record(prefix, number)
        self.table = prefixes[-1] if prefixes else ()

    def key(self, parts: Sequence[str], number: int) -> None:
        for end in range(1, len(parts) + 1):
            self.record((*self.table, *parts[:end]), number)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every table header and key of ``text`` to its 1-based line (first occurrence wins)."""
    doc = _Document()
    scanner = _Scanner()
    # Lines end at "\n" only, as tomllib counts them (str.splitlines would also break at U+2028, U+0085...).
    for number, line in enumerate(text.split("\n"), start=1):
        if not scanner.at_top():
            scanner.consume(line)
            continue
        if match := _ARRAY_HEADER.match(line):
            doc.array_header(_split_key(match.group(1)), number)
            scanner.consume(line, match.end())
        elif match := _TABLE_HEADER.match(line):
            doc.table_header(_split_key(match.group(1)), number)
            scanner.consume(line, match.end())
        elif match := _KEY.match(line):
            doc.key(_split_key(match.group(1)), number)
            scanner.consume(line, match.end())
        else:
            scanner.consume(line)
    return doc.lines


def line_of(lines: Mapping[KeyPath, int], path: Sequence[PathPart]) -> int | None:
    """The line of ``path``, or of its closest enclosing key or table that has one."""
    key = tuple(path)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None
