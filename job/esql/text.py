"""Reading an ES|QL query's pipeline without a full parser (pure).

Kibana decides what kind of ES|QL rule it runs from the query's syntax tree: a query is aggregating when
one of its top-level commands is ``STATS``; ``MV_EXPAND`` commands change the alert ids; ``FROM``'s
``METADATA`` must hold ``_id`` (before 9.4) and its index list becomes ``kibana.alert.rule.indices``.
Those are all facts about the top-level commands, so a scanner that splits the query at the pipes that
lie outside strings, quoted identifiers and comments answers them; the engine itself judges the rest.

``INLINE STATS`` is no ``STATS``: Kibana's syntax tree names it ``inline_stats`` (8.19's engine refuses it
as a syntax error; 9.x runs it), so a query whose only aggregation is an ``INLINE STATS`` is non-aggregating.

Lexical rules followed (ES|QL's grammar): strings are ``"..."`` with backslash escapes or ``\"\"\"...\"\"\"``
without; identifiers may be quoted with backquotes (a doubled backquote inside is one backquote);
``//`` comments run to the end of the line and ``/* ... */`` comments nest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_LENGTH = 100_000  # characters; a longer rule query is refused before it is scanned


class QueryTextError(ValueError):
    """The query cannot be split into commands (an unterminated string, quoted name or comment); ``offset``
    is where the unterminated part starts, when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Command:
    """One top-level command of the pipeline: its text (without the pipes) and where it lies in the query.

    ``content_end`` is the end of its last token that is not whitespace or a comment, so text inserted
    there lands inside the command even when it ends with a ``//`` comment.
    """

    text: str
    start: int
    end: int
    content_end: int
    words: tuple[str, ...]  # its bare words outside strings and comments, lower-cased, in order

    @property
    def name(self) -> str:
        """``from``, ``where``, ``stats``, ...; ``inline stats`` for the two-word command (9.x)."""
        if len(self.words) > 1 and self.words[0] == "inline" and self.words[1] == "stats":
            return "inline stats"
        return self.words[0] if self.words else ""


_WORD = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@*-]*")
_LEADING_KEYWORD = re.compile(r"(?:\s|//[^\n]*(?:\n|$)|/\*.*?\*/)*[A-Za-z_]+", re.DOTALL)


def _skip_string(query: str, at: int) -> int:
    """The offset after the string that starts at ``at``."""
    if query.startswith('"""', at):
        close = query.find('"""', at + 3)
        if close < 0:
            raise QueryTextError(f"unterminated triple-quoted string at offset {at}", at)
        return close + 3
    index = at + 1
    while index < len(query):
        char = query[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            return index + 1
        if char == "\n":
            break
        index += 1
    raise QueryTextError(f"unterminated string at offset {at}", at)


def _skip_quoted_name(query: str, at: int) -> int:
    index = at + 1
    while True:
        close = query.find("`", index)
        if close < 0:
            raise QueryTextError(f"unterminated quoted name at offset {at}", at)
        if query.startswith("``", close):
            index = close + 2
            continue
        return close + 1


def _skip_block_comment(query: str, at: int) -> int:
    depth, index = 0, at
    while index < len(query):
        if query.startswith("/*", index):
            depth += 1
            index += 2
        elif query.startswith("*/", index):
            depth -= 1
            index += 2
            if depth == 0:
                return index
        else:
            index += 1
    raise QueryTextError(f"unterminated comment at offset {at}", at)


def split_commands(query: str) -> list[Command]:
    """The query's top-level commands, in order. QueryTextError if it cannot be scanned."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryTextError(f"the query is {len(query)} characters long, more than {MAX_QUERY_LENGTH}")
    commands: list[Command] = []
    start, content_end, words = 0, None, []  # type: tuple[int, int | None, list[str]]
    index = 0

    def close(end: int) -> None:
        if content_end is not None:
            commands.append(Command(query[start:end], start, end, content_end, tuple(words)))

    while index < len(query):
        char = query[index]
        if char == "|":
            close(index)
            start, content_end, words = index + 1, None, []
            index += 1
        elif char == '"':
            index = _skip_string(query, index)
            content_end = index
        elif char == "`":
            after = _skip_quoted_name(query, index)
            words.append(query[index + 1 : after - 1].replace("``", "`").lower())
            index = content_end = after
        elif query.startswith("//", index):
            newline = query.find("\n", index)
            index = len(query) if newline < 0 else newline + 1
        elif query.startswith("/*", index):
            index = _skip_block_comment(query, index)
        elif char.isspace():
            index += 1
        else:
            word = _WORD.match(query, index)
            if word is not None:
                words.append(word.group().lower())
                index = word.end()
            else:
                index += 1
            content_end = index
    close(len(query))
    return commands


def is_aggregating(query: str) -> bool:
    """Kibana's test: any top-level command is ``STATS`` (``INLINE STATS`` and ``INLINESTATS`` are not)."""
    return any(command.name == "stats" for command in split_commands(query))


def source_command(query: str) -> Command | None:
    """The ``FROM`` command (the first command, when it is one)."""
    commands = split_commands(query)
    return commands[0] if commands and commands[0].name == "from" else None


def _from_parts(command: Command) -> tuple[str, str | None]:
    """(the index list text, the METADATA list text or None) of a FROM command."""
    keyword = _LEADING_KEYWORD.match(command.text)
    body = command.text[keyword.end() if keyword else 0 :]
    metadata = metadata_keyword(body)
    if metadata is None:
        return body, None
    return body[: metadata.start()], body[metadata.end() :]


def metadata_keyword(text: str) -> re.Match[str] | None:
    """The METADATA keyword of a FROM body, outside quotes (``[METADATA`` in the old bracket form)."""
    quotes = backquotes = seen = 0
    for found in re.finditer(r"\[?\s*\bmetadata\b", text, re.IGNORECASE):
        quotes += text.count('"', seen, found.start())
        backquotes += text.count("`", seen, found.start())
        seen = found.start()
        if quotes % 2 == 0 and backquotes % 2 == 0:
            return found
    return None


def _names(text: str) -> list[str]:
    names = []
    for part in re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL).replace("]", " ").split(","):
        name = part.strip()
        if len(name) >= 2 and name[0] == name[-1] and name[0] in '"`':
            name = name[1:-1]
        if name:
            names.append(name)
    return names


def index_patterns(query: str) -> list[str]:
    """``kibana.alert.rule.indices``: FROM's sources split on commas and trimmed ([] without FROM)."""
    command = source_command(query)
    return [] if command is None else _names(_from_parts(command)[0])


def metadata_fields(query: str) -> list[str]:
    """The fields of FROM's ``METADATA`` option, in order ([] without one)."""
    command = source_command(query)
    if command is None:
        return []
    metadata = _from_parts(command)[1]
    return [] if metadata is None else _names(metadata)


def has_metadata_id(query: str) -> bool:
    return "_id" in metadata_fields(query)


def mv_expand_fields(query: str) -> list[str]:
    """The column of each top-level ``MV_EXPAND``, in query order (quoted names unquoted)."""
    fields = (_column_argument(command) for command in split_commands(query) if command.name == "mv_expand")
    return [field for field in fields if field]


def _column_argument(command: Command) -> str:
    """The first argument of a one-argument command, with its case kept and backquotes removed."""
    rest = command.text.lstrip()
    rest = rest[len(rest.split(None, 1)[0]) :].strip()
    rest = re.sub(r"//[^\n]*|/\*.*?\*/", " ", rest, flags=re.DOTALL).strip()
    if rest.startswith("`"):
        return rest[1 : _skip_quoted_name(rest, 0) - 1].replace("``", "`")
    found = _WORD.match(rest)
    return found.group() if found else ""
