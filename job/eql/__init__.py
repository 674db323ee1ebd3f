"""EQL, Elasticsearch's Event Query Language, as Elasticsearch runs it: pure (no Elasticsearch I/O, no clock).

* :func:`parse` -- text to a frozen syntax tree (:mod:`job.eql.ast`); :class:`EqlSyntaxError` with line,
  column and caret, worded as Elasticsearch words it.
"""

from __future__ import annotations

from job.eql.errors import EqlError, EqlRuntimeError, EqlSyntaxError, EqlVerificationError, Problem
from job.eql.parser import parse, parse_expression

__all__ = [
    "EqlError",
    "EqlRuntimeError",
    "EqlSyntaxError",
    "EqlVerificationError",
    "Problem",
    "parse",
    "parse_expression",
]
