"""An ES|QL rule's query as the job reads it before Elasticsearch does, and the search of one window (pure).

Elasticsearch parses and verifies the query itself (``validate`` asks it when a cluster is reachable). Before
that, :func:`compile_query` checks what Kibana checks when it saves the rule and what the run needs to know:

* the pipeline can be split into commands and starts with ``FROM`` (its indices are the rule's);
* Kibana's save-time check (8.19, and every release before 9.4): a non-aggregating query must name ``_id``
  in FROM's ``METADATA``, with Kibana's text;
* the `` | limit <n>`` Kibana appends must not fall into a trailing ``//`` comment.

:func:`plan_search` gives the search of one window: the filter on the time range and the exceptions (the
events already alerted on are added per page), or no search when FROM matches no index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from job.errors import QueryError
from job.esql.inject import metadata_id_problem
from job.esql.text import QueryTextError, index_patterns, is_aggregating, mv_expand_fields, split_commands
from job.lists.plan import ExceptionPlan
from job.rules.model import Rule
from job.ruletypes.contract import SearchPlan
from job.ruletypes.esql.request import empty_query_filter, limited_query
from job.search.clauses import TimestampFields, range_clause, timestamp_fields
from job.search.coverage import matches_no_index, missing_timestamp_warning, no_index_message
from job.window import Window


class EsqlQueryTextError(QueryError):
    """The query cannot be read, or Kibana would not save it; ``line``/``column`` where known (1-based)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class EsqlQuery:
    """The rule's query, read: what it is, and what the run does differently because of it."""

    text: str  # as saved: it is sent, and aggregating alert ids hash it
    aggregating: bool  # a top-level STATS: one alert per row, no events, no excluded events
    mv_expand: tuple[str, ...]  # the MV_EXPAND columns (alert ids; the excluded events are kept per query)
    indices: tuple[str, ...]  # FROM's patterns: the source events are fetched there


def position(query: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of ``offset`` in ``query``."""
    before = query[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def compile_query(query: str) -> EsqlQuery:
    """The rule's query, read; :class:`EsqlQueryTextError` for one the run cannot send as Kibana would."""
    try:
        commands = split_commands(query)
        limited_query(query, 1)
    except QueryTextError as exc:
        where = position(query, exc.offset) if exc.offset is not None else (None, None)
        raise EsqlQueryTextError(str(exc), *where) from None
    except ValueError as exc:  # the appended limit would be commented out
        raise EsqlQueryTextError(str(exc), *position(query, len(query))) from None
    if not commands or commands[0].name != "from":
        found = commands[0].name.upper() if commands else "nothing"
        raise EsqlQueryTextError(f"an ES|QL rule's query starts with FROM (its source command), not {found}", 1, 1)
    problem = metadata_id_problem(query, injects=False)
    if problem is not None:
        raise EsqlQueryTextError(problem, *position(query, commands[0].start))
    return EsqlQuery(
        text=query,
        aggregating=is_aggregating(query),
        mv_expand=tuple(mv_expand_fields(query)),
        indices=tuple(index_patterns(query)),
    )


@dataclass(frozen=True, slots=True)
class EsqlSearch(SearchPlan):
    """The search of one window: ``query`` is the ``filter`` of every page (time range and exceptions), None
    when no index matches; the query and the exception clause to build each page's request from."""

    compiled: EsqlQuery | None = None
    window: Window | None = None
    timestamps: TimestampFields | None = None
    exception_clause: Mapping[str, Any] | None = None


def unapplied_exceptions_warning(exceptions: ExceptionPlan) -> list[str]:
    """Kibana applies no exception item of a large value list to an ES|QL rule; its warning names them."""
    return ExceptionPlan(not_applied=exceptions.post_filter + exceptions.not_applied).warnings


def plan_search(
    rule: Rule, compiled: EsqlQuery, window: Window, caps: Mapping[str, Any], exceptions: ExceptionPlan
) -> EsqlSearch:
    """The search of ``window``, from the ``_field_caps`` of FROM's patterns and the planned exceptions."""
    if matches_no_index(caps):
        return EsqlSearch(query=None, sort=[], warnings=(no_index_message(compiled.indices),), exceptions_expired=())
    timestamp_warning = missing_timestamp_warning(rule, caps)
    fields = timestamp_fields(rule)
    filter_ = {"bool": {"filter": [range_clause(fields, window), empty_query_filter(exceptions.clause)]}}
    warnings = [*([timestamp_warning] if timestamp_warning else []), *unapplied_exceptions_warning(exceptions)]
    return EsqlSearch(
        query=filter_,
        sort=[],
        warnings=tuple(warnings),
        exceptions_expired=tuple(item.item_id for item in exceptions.expired),
        exceptions=exceptions,
        compiled=compiled,
        window=window,
        timestamps=fields,
        exception_clause=exceptions.clause,
    )
