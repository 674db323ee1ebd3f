"""Pydantic validation errors as short messages that name the TOML key (``rule.risk_score: ...``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from job.config.durations import shown
from job.rules.positions import KeyPath, PathPart, line_of
from job.text.diagnostics import Diagnostic, Severity
from job.text.diagnostics import error as error_at

# Maps a location in the model's input to the key path in the TOML document.
LocMapper = Callable[[KeyPath], KeyPath]
_MAX_KEY_CHARS = 60


def dotted(path: Sequence[PathPart]) -> str:
    """``("rule", "threat", 0, "tactic")`` → ``rule.threat[0].tactic``."""
    text = ""
    for part in path:
        if isinstance(part, str) and len(part) > _MAX_KEY_CHARS:  # a key can be as long as the file
            part = f"{part[:_MAX_KEY_CHARS]}...({len(part)} characters)"
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _child(current: Any, part: PathPart) -> tuple[bool, Any]:
    if isinstance(current, Mapping) and part in current:
        return True, current[part]
    if isinstance(current, list | tuple) and isinstance(part, int) and 0 <= part < len(current):
        return True, current[part]
    return False, None


def _clean_loc(loc: Sequence[PathPart], data: Any, keep_last_unmatched: bool) -> KeyPath:
    """Keep the parts of a pydantic location that index the input (drops union-member tags like ``str``)."""
    path: list[PathPart] = []
    current = data
    for position, part in enumerate(loc):
        found, child = _child(current, part)
        if found:
            current = child
        elif not (keep_last_unmatched and position == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def _text(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    if kind in ("value_error", "assertion_error"):
        message = message.split(", ", 1)[1] if message.startswith(("Value error, ", "Assertion failed, ")) else message
        return message
    message = message[:1].lower() + message[1:]
    if "input" in error and not isinstance(error["input"], dict | list):
        message += f" (got {shown(error['input']) if isinstance(error['input'], str) else _short_repr(error['input'])})"
    return message


def _short_repr(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:  # repr of a huge integer is slow and long
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def validation_problems(exc: ValidationError, data: Any, to_toml: LocMapper) -> list[tuple[KeyPath, str, bool]]:
    """(TOML key path, message, is-unknown-key) per distinct problem, in pydantic's order."""
    errors = [
        (_clean_loc(e["loc"], data, keep_last_unmatched=e["type"] in ("missing", "extra_forbidden")), e)
        for e in exc.errors()
    ]
    locs = [loc for loc, _ in errors]
    found: list[tuple[KeyPath, str, bool]] = []
    seen: set[KeyPath] = set()
    for loc, error in errors:
        if loc in seen:  # a union reports once per member; the first says enough
            continue
        if any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
            continue  # a consequence of a deeper problem ("entries should have at least 1 item")
        seen.add(loc)
        path = to_toml(loc)
        found.append((path, f"{dotted(path)}: {_text(error)}", error["type"] == "extra_forbidden"))
    return found


def at(
    path: str, lines: Mapping[KeyPath, int], key: Sequence[PathPart], message: str, severity: Severity = "error"
) -> Diagnostic:
    """A diagnostic on the line of ``key`` (or of its closest enclosing table)."""
    return Diagnostic(path, line_of(lines, key), None, severity, message)


def failure(path: str, exc: BaseException) -> Diagnostic:
    """The problem of a file whose loading raised unexpectedly (a recursion, an overflow...): one line."""
    detail = str(exc)
    detail = detail if len(detail) <= 200 else detail[:200] + "..."
    return error_at(path, f"cannot load: {type(exc).__name__}" + (f": {detail}" if detail else ""))
