"""Errors of the EQL language package, worded as Elasticsearch words them where its sources give the text.

Three kinds, as Elasticsearch has them:

* :class:`EqlSyntaxError` -- the query does not parse (Elasticsearch's ``parsing_exception``);
* :class:`EqlVerificationError` -- it parses but does not fit the fields or the language rules
  (``verification_exception``: unknown column, ``:`` on a number, a field compared to a field, ...); it
  holds every problem found, as Elasticsearch's verifier does (``Found 2 problems``);
* :class:`EqlRuntimeError` -- an event cannot be evaluated (``number("x")``, an integer overflow): where
  Elasticsearch's script fails on a shard, the caller decides what the event counts as.

Offsets are 0-based positions in the query text; ``line`` and ``column`` are 1-based. ``str()`` shows the
message, the offending line and a caret under it; :meth:`diagnostics` turns the problems into the job's
``Diagnostic`` records for a rule file.
"""

from __future__ import annotations

import dataclasses as dc

from job.errors import QueryError
from job.kql.errors import line_and_column, render_caret
from job.text.diagnostics import Diagnostic, error


@dc.dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where (0-based offset into the query, None when unknown), how wide, and what."""

    message: str
    offset: int | None = None
    width: int = 1


class EqlError(QueryError):
    """Base of the EQL errors: a query text and the problems found in it (the first one is ``line``/``column``)."""

    kind = "EQL error"

    def __init__(self, problems: list[Problem] | Problem, query: str = "") -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        if not self.problems:
            raise ValueError("an EQL error needs at least one problem")
        self.query = query
        first = self.problems[0]
        self.offset = first.offset
        self.width = first.width
        if first.offset is None or not query:
            self.line, self.column = None, None
        else:
            self.line, self.column = line_and_column(query, min(first.offset, len(query)))
        super().__init__(self._summary())

    def _where(self, problem: Problem) -> str:
        if problem.offset is None or not self.query:
            return ""
        line, column = line_and_column(self.query, min(problem.offset, len(self.query)))
        return f"line {line}:{column}: "

    def _summary(self) -> str:
        if len(self.problems) == 1:
            return self._where(self.problems[0]) + self.problems[0].message
        lines = [f"Found {len(self.problems)} problems"]
        lines += [self._where(problem) + problem.message for problem in self.problems]
        return "\n".join(lines)

    def with_query(self, query: str) -> EqlError:
        """The same error placed in ``query`` (errors raised below the parser know offsets, not the text)."""
        return type(self)(self.problems, query)

    def diagnostics(self, path: str, first_line: int = 1, first_column: int = 1) -> list[Diagnostic]:
        """One error ``Diagnostic`` per problem, placed in a file whose query text starts at ``first_line``
        (1-based) and, on that first line, at ``first_column``."""
        found = []
        for problem in self.problems:
            line = column = None
            if problem.offset is not None and self.query:
                query_line, query_column = line_and_column(self.query, min(problem.offset, len(self.query)))
                line = first_line + query_line - 1
                column = query_column + (first_column - 1 if query_line == 1 else 0)
            found.append(error(path, problem.message, line, column))
        return found

    def __str__(self) -> str:
        text = self._summary()
        first = self.problems[0]
        if first.offset is None or not self.query:
            return text
        return f"{text}\n{render_caret(self.query, min(first.offset, len(self.query)), first.width)}"


class EqlSyntaxError(EqlError):
    """The query is not EQL (Elasticsearch's ``parsing_exception``)."""

    kind = "parsing_exception"


class EqlVerificationError(EqlError):
    """The query parses but cannot run against these fields (Elasticsearch's ``verification_exception``)."""

    kind = "verification_exception"


class EqlRuntimeError(EqlError):
    """An event cannot be evaluated: Elasticsearch's script would fail on the shard holding it."""

    kind = "script_exception"


def syntax_error(message: str, offset: int | None, width: int = 1) -> EqlSyntaxError:
    """A one-problem syntax error (the query text is attached by the parser)."""
    return EqlSyntaxError(Problem(message, offset, width))


def verification_error(message: str, offset: int | None, width: int = 1) -> EqlVerificationError:
    return EqlVerificationError(Problem(message, offset, width))


class PatternError(ValueError):
    """A wildcard or regular expression this engine (or Elasticsearch) cannot run; the message says why."""
