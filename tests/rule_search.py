"""What the threshold and new_terms integration tests share: the run's clock and window, the timestamps, and a
search function over an index pattern as the run path will give the rule types."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers

from job.search.clauses import TimestampFields
from job.window import Window

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PLAIN = TimestampFields("@timestamp", None)
OVERRIDE = TimestampFields("event.ingested", "@timestamp")
KEYWORD = {"type": "keyword"}
Search = Callable[[dict[str, Any]], Mapping[str, Any]]


def window(minutes: float) -> Window:
    """The window of a run at ``NOW`` that looks back ``minutes``."""
    return Window(NOW - timedelta(minutes=minutes), NOW)


def searcher(es: Elasticsearch, index: str) -> Search:
    """A request body in, the search response of ``index`` (a pattern) out, as a rule search sends it."""

    def search(body: dict[str, Any]) -> Mapping[str, Any]:
        return es.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True).body

    return search


def bulk_index(es: Elasticsearch, actions: Iterable[dict[str, Any]]) -> None:
    """Index ``actions`` (bulk actions with ``_index``), then refresh those indices once (a ``wait_for`` per chunk
    would wait a refresh interval per 500 documents)."""
    indices: set[str] = set()

    def each() -> Iterator[dict[str, Any]]:
        for action in actions:
            indices.add(action["_index"])
            yield action

    helpers.bulk(es, each(), chunk_size=2000)
    if indices:
        es.indices.refresh(index=",".join(sorted(indices)))
