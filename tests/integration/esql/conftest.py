"""Fixtures of the ES|QL tests: a client of the session's ES|QL node, event indices on it, and the I/O that
carries the pure modules' requests there (what the run path will do once ES|QL rules are wired in)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch, helpers

from job.esql import text
from job.ruletypes.esql import errors, excluded, request, response, sources
from job.ruletypes.esql.alerts import WouldBeAlert, rows_to_alerts
from job.search.clauses import TimestampFields
from job.window import Window

JSON = {
    "accept": "application/vnd.elasticsearch+json; compatible-with=8",
    "content-type": "application/vnd.elasticsearch+json; compatible-with=8",
}
DEFAULT_TIMESTAMPS = TimestampFields("@timestamp", None)
MAPPING = {
    "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
    "properties": {"@timestamp": {"type": "date"}, "event": {"properties": {"ingested": {"type": "date"}}}},
}


class EsqlFailure(Exception):
    """Elasticsearch refused the query: the message Kibana would show, and the one-line reason."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.message = errors.error_message(body)
        self.reason = errors.reason(body)
        super().__init__(self.message)


@pytest.fixture(scope="session")
def esql(esql_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(esql_url, request_timeout=60)
    yield client
    client.close()


@pytest.fixture
def events(esql: Elasticsearch) -> Iterator[Callable[[Sequence[Mapping[str, Any]]], str]]:
    """Makes an index ``esql-<random>`` (strings as keywords) holding the given events, ids ``e0``, ``e1``, ..."""
    made: list[str] = []

    def make(docs: Sequence[Mapping[str, Any]], mapping: Mapping[str, Any] = MAPPING) -> str:
        name = f"esql-{uuid.uuid4().hex[:12]}"
        esql.indices.create(index=name, mappings=dict(mapping))
        actions = [{"_op_type": "create", "_index": name, "_id": f"e{i}", "_source": d} for i, d in enumerate(docs)]
        helpers.bulk(esql, actions, refresh=True)
        made.append(name)
        return name

    yield make
    for name in made:
        esql.indices.delete(index=name)


def send(es: Elasticsearch, call: request.EsqlRequest, *, sync: bool = False) -> response.EsqlResult:
    """One ``_query`` call as built (the async endpoint unless ``sync``); EsqlFailure with ES's message."""
    try:
        answer = es.perform_request(
            "POST",
            request.SYNC_PATH if sync else call.path,
            params=call.params,
            headers=JSON,
            body=call.sync_body() if sync else call.body,
        )
    except ApiError as exc:
        raise EsqlFailure(exc.body) from exc
    return response.parse_response(answer.body)


def run_query(es: Elasticsearch, query: str, *, size: int = 100) -> response.EsqlResult:
    """``query`` over all time, no exceptions."""
    window = Window(
        datetime.fromisoformat("2000-01-01T00:00:00+00:00"), datetime.fromisoformat("2100-01-01T00:00:00+00:00")
    )
    call = request.build_request(query, window, DEFAULT_TIMESTAMPS, None, size, aggregating=text.is_aggregating(query))
    return send(es, call)


def fetch_events(
    es: Elasticsearch, query: str, rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[sources.FetchedEvent]]:
    ids = sources.row_ids(rows)
    if not ids:
        return {}
    answer = es.search(
        index=",".join(text.index_patterns(query)), ignore_unavailable=True, body=request.source_fetch_body(ids)
    )
    return sources.fetched_events(answer.body)


@dataclass
class RunOutcome:
    alerts: list[WouldBeAlert] = field(default_factory=list)
    pages: int = 0
    warnings: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


def run_rule(
    es: Elasticsearch,
    query: str,
    window: Window,
    *,
    max_signals: int,
    state: Mapping[str, Any] | None = None,
    timestamps: TimestampFields = DEFAULT_TIMESTAMPS,
    exception_clause: Mapping[str, Any] | None = None,
    rule_key: str = "default:rule-1",
    existing: set[str] | None = None,
) -> RunOutcome:
    """One run of an ES|QL rule as Kibana's loop (``esql.ts``) pages it: pages of ``max_signals + 1`` rows,
    the events already alerted on excluded, at most ``max_signals`` alerts; the state for the next run.
    ``existing``: ids already in the alert index (the writer's pre-check drops them; updated in place)."""
    aggregating = text.is_aggregating(query)
    has_mv_expand = bool(text.mv_expand_fields(query))
    size = request.page_size(max_signals)
    kept = excluded.initial_excluded(
        state, query=query, aggregating=aggregating, has_mv_expand=has_mv_expand, window_start=window.start
    )
    outcome = RunOutcome()
    created: set[str] = existing if existing is not None else set()
    while len(outcome.alerts) <= max_signals:
        if excluded.over_limit(kept):
            outcome.warnings.append(excluded.EXCLUDED_LIMIT_WARNING)
            break
        call = request.build_request(
            query, window, timestamps, exception_clause, size, excluded.ids_by_index(kept), aggregating=aggregating
        )
        result = send(es, call)
        outcome.pages += 1
        found = {} if aggregating else fetch_events(es, query, result.rows)
        page = rows_to_alerts(result, found, query=query, aggregating=aggregating, window=window, key=rule_key)
        room = max_signals - len(outcome.alerts)
        fresh = [alert for alert in page if alert.id not in created]
        written, truncated = fresh[:room], len(fresh) > room
        outcome.alerts.extend(written)
        created.update(alert.id for alert in written)
        exhausted = len(result.rows) < size
        excluded.update_excluded(
            kept,
            [event for events in found.values() for event in events],
            result.rows,
            aggregating=aggregating,
            exhausted=exhausted,
            timestamp_field=timestamps.primary,
        )
        if truncated:
            outcome.warnings.append(errors.MAX_SIGNALS_WARNING)
            break
        if exhausted:
            break
    outcome.state = excluded.final_state(state, kept, query=query, has_mv_expand=has_mv_expand)
    return outcome
