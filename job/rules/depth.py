"""How deeply a TOML text nests, measured before it is parsed, in one pass.

``tomllib`` parses nested arrays and inline tables by recursion, and everything downstream (the rule
model, copies, the query) walks the document recursively too: ``a = [[[[...`` 100,000 deep is a
``RecursionError``, and a header ``[transform.a.a.a...]`` thousands of parts long takes minutes. So the
text is scanned first, and a file nested deeper than ``MAX_DEPTH`` is refused with the line where it
goes too deep.

Depth counts the containers around a value: each part of a table header (``[[x.y]]`` one more, for the
array), each part of a dotted key but the last, each open ``[`` and ``{``. Text in strings and comments
does not count. ``MAX_DEPTH`` is the same bound as for JSON inputs (``job.text.jsonlimits``), so a rule
imported from Kibana's JSON fits when written as TOML.
"""

from __future__ import annotations

import re

from job.text.jsonlimits import MAX_DEPTH

_VALUE_TOKEN = re.compile(r"\"\"\"|'''|[\"'\[\]{},#\n]")
_KEY_TOKEN = re.compile(r"[\"'.=#\n}]")
_HEADER_TOKEN = re.compile(r"[\"'.\]#\n]")
_BASIC_END = re.compile(r'(?:[^"\\\n]|\\.)*"')
_LITERAL_END = re.compile(r"[^'\n]*'")
_ML_BASIC_END = re.compile(r'(?:[^"\\]|\\[\s\S]|"(?!""))*"""')
_BLANK = re.compile(r"[ \t\r\n]*")


class _TooDeep(Exception):
    def __init__(self, position: int) -> None:
        self.position = position


def _skip_string(text: str, i: int) -> int:
    """The position after the string that starts at ``i`` (len(text) if it never ends)."""
    if text.startswith('"""', i):
        match = _ML_BASIC_END.match(text, i + 3)
        end = match.end() if match else len(text)
        while end < len(text) and text[end] == '"' and end - (match.end() if match else end) < 2:
            end += 1
        return end
    if text.startswith("'''", i):
        found = text.find("'''", i + 3)
        if found == -1:
            return len(text)
        end = found + 3
        while end < len(text) and text[end] == "'" and end - found < 5:
            end += 1
        return end
    match = (_BASIC_END if text[i] == '"' else _LITERAL_END).match(text, i + 1)
    return match.end() if match else len(text)


class _Scan:
    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.table = 0  # depth of the keys under the current header
        self.stack: list[tuple[str, int]] = []  # open [ and {, with the depth before each

    def check(self, depth: int, position: int) -> int:
        if depth > self.limit:
            raise _TooDeep(position)
        return depth

    def run(self) -> None:
        text, i = self.text, 0
        while i < len(text):
            blank = _BLANK.match(text, i)
            i = blank.end() if blank else i
            if i >= len(text):
                return
            if text[i] == "#":
                i = self._line_end(i)
            elif text[i] == "[":
                i = self._header(i)
            else:
                i, depth, is_key = self._key(i, self.table)
                i = self._value(i, depth) if is_key else self._line_end(i - 1)

    def _line_end(self, i: int) -> int:
        found = self.text.find("\n", i)
        return len(self.text) if found == -1 else found + 1

    def _header(self, i: int) -> int:
        array = self.text.startswith("[[", i)
        i += 2 if array else 1
        parts = 1
        while (match := _HEADER_TOKEN.search(self.text, i)) is not None:
            char, i = match.group(), match.end()
            if char in "\"'":
                i = _skip_string(self.text, match.start())
            elif char == ".":
                parts += 1
            else:  # "]", or a header that does not close (tomllib reports it)
                break
        self.table = self.check(parts + (1 if array else 0), i)
        return self._line_end(i - 1)

    def _key(self, i: int, base: int) -> tuple[int, int, bool]:
        """Scan a (dotted) key up to its ``=``: the position after it, the depth of its value, and whether
        it was a key at all (if not, tomllib reports the line)."""
        parts = 1
        while (match := _KEY_TOKEN.search(self.text, i)) is not None:
            char, i = match.group(), match.end()
            if char in "\"'":
                i = _skip_string(self.text, match.start())
            elif char == ".":
                parts += 1
                self.check(base + parts - 1, i)
            elif char == "=":
                return i, self.check(base + parts - 1, i), True
            elif char == "}" and self.stack:  # an empty inline table
                return match.start(), base, True
            else:
                return i, base, False
        return len(self.text), base, False

    def _value(self, i: int, depth: int) -> int:
        """Scan values from ``i`` until the end of the key/value line; the position after it."""
        text = self.text
        while (match := _VALUE_TOKEN.search(text, i)) is not None:
            char, i = match.group(), match.end()
            if char[0] in "\"'":
                i = _skip_string(text, match.start())
            elif char == "#":
                i = self._line_end(i - 1)
                if not self.stack:
                    return i
            elif char == "\n":
                if not self.stack:
                    return i
            elif char in "[{":
                self.stack.append((char, depth))
                depth = self.check(depth + 1, i)
                if char == "{":
                    i, depth, _ = self._key(i, depth)
            elif char in "]}":
                if self.stack:
                    _, depth = self.stack.pop()
            elif char == "," and self.stack:
                opened, before = self.stack[-1]
                depth = before + 1
                if opened == "{":
                    i, depth, _ = self._key(i, depth)
        return len(text)


def toml_depth_problem(text: str, limit: int = MAX_DEPTH) -> tuple[int, str] | None:
    """``(line, message)`` if ``text`` nests deeper than ``limit``, else None. Linear in the text's length."""
    try:
        _Scan(text, limit).run()
    except _TooDeep as exc:
        line = text.count("\n", 0, min(exc.position, len(text))) + 1
        return line, (
            f"nested more than {limit} levels deep (tables, dotted keys, arrays and inline tables count); "
            "the file is not parsed"
        )
    return None
