"""Problems found in rule files, exception lists and value lists, as plain records.

A ``Diagnostic`` is data, not an exception: loading and validation collect them (errors and warnings
alike) and the commands print them. Exceptions (``job.errors``) are for stopping; diagnostics are for
reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from job.text.redact import one_line

Severity = Literal["error", "warning"]
# A message quoting a value as long as the file is cut here.
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where (file, 1-based line and column when known), how bad, and what.

    ``str()`` is ``FILE:LINE: message`` (``FILE: message`` without a line), with ``warning: `` before the
    message of a warning: the line format every command prints. It is always one line, whatever a file
    name or a value quoted in the message holds (newlines, bidirectional controls), and bounded.
    """

    path: str
    line: int | None
    column: int | None
    severity: Severity
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{one_line(self.path)}:{self.line}" if self.line is not None else one_line(self.path)
        prefix = "" if self.is_error else "warning: "
        message = self.message
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} characters)"
        return f"{where}: {prefix}{one_line(message)}"


def error(path: str, message: str, line: int | None = None, column: int | None = None) -> Diagnostic:
    return Diagnostic(path, line, column, "error", message)


def warning(path: str, message: str, line: int | None = None, column: int | None = None) -> Diagnostic:
    return Diagnostic(path, line, column, "warning", message)


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int]:
    """File, then line, then column: the order in which commands print diagnostics."""
    return diagnostic.path, diagnostic.line or 0, diagnostic.column or 0
