"""The ``_query`` request of one page of an ES|QL rule run, and the source-document fetch after it (pure).

As Kibana's executor sends it (8.19 and 9.x, ``build_esql_search_request.ts`` and ``esql.ts``):

* the rule query with `` | limit <size>`` appended, ``size`` being ``max_signals + 1`` (one more row than
  can become alerts tells that more may follow). No newline is put before the pipe, as in Kibana, so a query
  ending in a ``//`` comment would comment the limit out: :func:`build_request` refuses such a query instead;
* ``filter``: ``bool.filter`` = [the time range on the timestamp override with its ``@timestamp``
  fallback, the empty-query filter that carries the exceptions as ``must_not``], and a ``must_not`` with
  the documents excluded so far, one clause per concrete index;
* query-string ``drop_null_columns=true`` and ``allow_partial_results`` = not aggregating (kibana#223198);
* for the async endpoint (``POST /_query/async``): ``wait_for_completion_timeout: 4m``, and ``keep_alive``
  only when a rule-execution timeout is given.

The synchronous ``POST /_query`` takes the same parameters and body without the two async keys
(:meth:`EsqlRequest.sync_body`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from job.esql.text import split_commands
from job.search.clauses import TimestampFields, range_clause
from job.window import Window

ASYNC_PATH = "/_query/async"
SYNC_PATH = "/_query"
WAIT_FOR_COMPLETION = "4m"  # the alerting framework and the ES proxy cap a request at 5 minutes
MAX_FETCH = 10_000  # index.max_result_window's default: a larger source fetch would be refused


@dataclass(frozen=True, slots=True)
class EsqlRequest:
    """One ``_query`` call: its query-string parameters and its body (async form)."""

    params: dict[str, str]
    body: dict[str, Any]
    path: str = ASYNC_PATH
    async_keys: tuple[str, ...] = field(default=("wait_for_completion_timeout", "keep_alive"))

    def sync_body(self) -> dict[str, Any]:
        """The body for ``POST /_query``, which has no async keys."""
        return {key: value for key, value in self.body.items() if key not in self.async_keys}


def page_size(max_signals: int) -> int:
    """Rows asked per page: one more than the alerts one page may create."""
    return max_signals + 1


def empty_query_filter(exception_clause: Mapping[str, Any] | None) -> dict[str, Any]:
    """Kibana's ``getQueryFilter`` of an empty query, no rule filters, and the exceptions (``must_not``)."""
    return {
        "bool": {
            "must": [],
            "filter": [],
            "should": [],
            "must_not": [dict(exception_clause)] if exception_clause else [],
        }
    }


def excluded_clauses(excluded: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Kibana's ``convertExternalIdsToDSL``: per index, its ids and a ``term`` on ``_index`` (none for "")."""
    clauses = []
    for index, ids in excluded.items():
        if not ids:
            continue
        parts: list[dict[str, Any]] = [{"ids": {"values": list(ids)}}]
        if index:
            parts.append({"term": {"_index": index}})
        clauses.append({"bool": {"filter": parts}})
    return clauses


def limited_query(query: str, size: int) -> str:
    """The query with `` | limit <size>`` appended, as Kibana does. ValueError when the query cannot be read
    (``text.QueryTextError``) or when a trailing ``//`` comment would swallow the limit (Kibana would then
    run the query without one)."""
    limited = f"{query} | limit {size}"
    commands = split_commands(limited)
    if not commands or commands[-1].text.strip() != f"limit {size}":
        raise ValueError("the query ends in a // comment, which would comment out the appended | limit")
    return limited


def build_request(
    query: str,
    window: Window,
    timestamps: TimestampFields,
    exception_clause: Mapping[str, Any] | None,
    size: int,
    excluded: Mapping[str, Sequence[str]] | None = None,
    *,
    aggregating: bool,
    keep_alive: str | None = None,
) -> EsqlRequest:
    """The request of one page. ``excluded`` maps a concrete index to the ids already alerted on there;
    ``keep_alive`` is the rule-execution timeout (``"5m"``), sent only when given."""
    bool_query: dict[str, Any] = {"filter": [range_clause(timestamps, window), empty_query_filter(exception_clause)]}
    must_not = excluded_clauses(excluded or {})
    if must_not:
        bool_query["must_not"] = must_not
    body: dict[str, Any] = {
        "query": limited_query(query, size),
        "filter": {"bool": bool_query},
        "wait_for_completion_timeout": WAIT_FOR_COMPLETION,
    }
    if keep_alive:
        body["keep_alive"] = keep_alive
    params = {"drop_null_columns": "true", "allow_partial_results": "false" if aggregating else "true"}
    return EsqlRequest(params=params, body=body)


def source_fetch_body(ids: Sequence[str], runtime_mappings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``_search`` body that fetches the events behind a page's rows (``fetch_source_documents.ts``), sent
    to the FROM index patterns with ``ignore_unavailable=true``: an ``ids`` filter, ``_source`` and every field.
    No ``version``, so a fetched event's ``_version`` is undefined, as in Kibana.

    The body read at Kibana commit bc9c0391 (dated to 8.19) sets no ``size`` (Elasticsearch's default, 10:
    past ten rows the events would go unfetched); later Kibana asks for twice as many hits as ids (one id may
    live in several indices) and picks each row's event by ``_index``. That later form is the one built here."""
    unique = list(dict.fromkeys(ids))
    body: dict[str, Any] = {
        "query": {"bool": {"filter": {"ids": {"values": unique}}}},
        "_source": True,
        "fields": ["*"],
        "size": min(2 * len(unique), MAX_FETCH),
    }
    if runtime_mappings:
        body["runtime_mappings"] = dict(runtime_mappings)
    return body
