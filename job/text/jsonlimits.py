"""JSON from files we do not control (``--fields-json``, the lines of a rule export), bounded.

``json.loads`` recurses once per ``[`` or ``{``: a line of 100,000 ``[`` is a ``RecursionError``. A
linear pre-scan counts the nesting outside strings first and refuses anything deeper than
``MAX_DEPTH``; the text's size is bounded by the caller (the file limit). Strings must be Unicode
text: a lone surrogate (``"\\ud800"``) cannot be written to a UTF-8 file or printed, so it is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Kibana's rules nest a dozen levels at most (filters holding bool queries); 64 leaves room and stays
# far below Python's recursion limit in everything that walks the data afterwards.
MAX_DEPTH = 64

_TOKEN = re.compile(r'["\[\]{}]')
_STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)


class JsonProblem(ValueError):
    """Why a JSON text is refused; one line."""


def json_depth(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The offset where ``text`` first nests deeper than ``limit``, or None. Linear in the text's length."""
    depth, i = 0, 0
    while (match := _TOKEN.search(text, i)) is not None:
        char, i = match.group(), match.end()
        if char == '"':
            end = _STRING_END.match(text, i)
            if end is None:  # an unterminated string: json.loads reports it
                return None
            i = end.end()
        elif char in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        else:
            depth = max(0, depth - 1)
    return None


def _check_text(value: Any) -> None:
    """``JsonProblem`` if a key or string holds a lone surrogate (iterative: the depth is already bounded)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(item[exc.start])
                message = f"a string holds a lone surrogate (\\u{code:04x}), which is not Unicode text"
                raise JsonProblem(message) from None
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the nesting bounded and text checked; ``JsonProblem`` (one line) otherwise."""
    position = json_depth(text, max_depth)
    if position is not None:
        raise JsonProblem(f"nested more than {max_depth} levels deep (at character {position + 1}); not parsed")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # cannot happen below the bound; kept so that nothing escapes as a traceback
        raise JsonProblem(f"nested too deeply (more than {max_depth} levels)") from None
    except ValueError as exc:
        raise JsonProblem(str(exc)) from None
    _check_text(value)
    return value
