"""The first page of many rule runs in one ``_msearch``, so that rules matching little cost one search.

Most rule runs of a pass find nothing or a handful of events. Reading their window with one search of
many in one ``_msearch`` (no point in time) replaces a point in time, a search and its close per rule.
A window holding fewer hits than the probe size was read whole by that one search, which sees one
consistent view of each shard, as a point in time would. A rule whose probe comes back full, or whose
search failed, is paged with a point in time as before (:class:`job.search.pager.PitPager`), from the start
of its window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy

# Hits read per rule by the probe; a window with at least this many is paged with a point in time.
PROBE_SIZE = 100
# Rule searches per ``_msearch`` request (bounds the response: at most this many probes of hits).
SEARCHES_PER_REQUEST = 50


@dataclass(frozen=True, slots=True)
class FirstPage:
    """Every hit of a rule's window (fewer than the probe size), in sort order, and the time it took."""

    hits: list[dict[str, Any]]
    search_ms: float


@dataclass(frozen=True, slots=True)
class Probe:
    """One rule's search: its index patterns, query and sort (the sort of its paging, ``_shard_doc`` aside)."""

    indices: Sequence[str]
    query: dict[str, Any]
    sort: list[dict[str, Any]]


def probe_size(page_size: int) -> int:
    return min(PROBE_SIZE, page_size)


def _body(probe: Probe, size: int) -> dict[str, Any]:
    # Without a point in time there is no _shard_doc; a window read whole needs no tiebreaker to page.
    sort = [clause for clause in probe.sort if "_shard_doc" not in clause]
    return {"query": probe.query, "sort": sort, "size": size, "track_total_hits": False}


def read_first_pages(
    es: Elasticsearch, policy: RetryPolicy, probes: Sequence[Probe], page_size: int
) -> list[FirstPage | None]:
    """Per probe, its window's hits when they number fewer than the probe size; None when the window must
    be paged (full probe) or its search failed (paging retries it and reports its error)."""
    size = probe_size(page_size)
    results: list[FirstPage | None] = []
    for start in range(0, len(probes), SEARCHES_PER_REQUEST):
        chunk = probes[start : start + SEARCHES_PER_REQUEST]
        lines: list[dict[str, Any]] = []
        for probe in chunk:
            # Never accept a window that silently lacks some shards' hits.
            lines.append(
                {"index": list(probe.indices), "ignore_unavailable": True, "allow_partial_search_results": False}
            )
            lines.append(_body(probe, size))
        started = time.monotonic()
        response = policy.call(lambda lines=lines: es.msearch(searches=lines))  # type: ignore[misc]
        share = (time.monotonic() - started) * 1000 / len(chunk)
        for item in response["responses"]:
            hits = item.get("hits", {}).get("hits") if "error" not in item else None
            if not isinstance(hits, list) or len(hits) >= size or item.get("timed_out") or _partial(item):
                results.append(None)
            else:
                results.append(FirstPage(hits, share))
    return results


def _partial(item: dict[str, Any]) -> bool:
    shards = item.get("_shards") or {}
    return bool(shards.get("failed")) or shards.get("successful", 0) != shards.get("total", 0)
