"""Pages through every hit of a search with a point in time and ``search_after``.

The sort ends with ``_shard_doc``, so hits with equal timestamps are never skipped or repeated at
page boundaries (the failure Kibana's engine is known for). An expired point in time is reopened
and paging resumes after the last hit seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from job.client.retry import RetryPolicy

log = logging.getLogger(__name__)

KEEP_ALIVE = "5m"


def is_pit_gone(exc: ApiError) -> bool:
    """The point in time expired or its node restarted."""
    return exc.meta.status == 404 and "search_context_missing" in str(exc.body)


@dataclass
class PageStats:
    pages: int = 0
    hits: int = 0
    search_ms: float = 0.0
    pit_reopened: int = 0


@dataclass
class PitPager:
    es: Elasticsearch
    policy: RetryPolicy
    indices: Sequence[str]
    query: dict[str, Any]
    sort: list[dict[str, Any]]
    page_size: int
    stats: PageStats = field(default_factory=PageStats)
    # The ``_source`` fields each hit carries (None: the whole ``_source``; empty: none).
    source: Sequence[str] | None = None
    search_after: list[Any] | None = None
    _pit: str | None = None

    def _open(self) -> None:
        started = time.monotonic()
        response = self.policy.call(
            lambda: self.es.open_point_in_time(index=list(self.indices), keep_alive=KEEP_ALIVE, ignore_unavailable=True)
        )
        self.stats.search_ms += (time.monotonic() - started) * 1000
        self._pit = str(response["id"])

    def _close(self) -> None:
        if self._pit is None:
            return
        pit, self._pit = self._pit, None
        try:
            self.es.close_point_in_time(id=pit)
        except Exception as exc:  # noqa: BLE001 - it expires on its own; a failed close only warns
            log.warning("could not close point in time: %s", type(exc).__name__)

    def _search(self) -> dict[str, Any]:
        assert self._pit is not None
        # Never accept a page that silently lacks some shards' hits: fail, and the window is retried.
        response = self.es.search(
            pit={"id": self._pit, "keep_alive": KEEP_ALIVE},
            query=self.query,
            sort=self.sort,
            size=self.page_size,
            search_after=self.search_after,
            track_total_hits=False,
            allow_partial_search_results=False,
            source=None if self.source is None else ({"includes": list(self.source)} if self.source else False),
        )
        return dict(response.body)

    def _next_page(self) -> list[dict[str, Any]]:
        started = time.monotonic()
        try:
            response = self.policy.call(self._search)
        except ApiError as exc:
            if not is_pit_gone(exc):
                raise
            log.warning("point in time expired; reopening and resuming at the last timestamp seen")
            self.stats.pit_reopened += 1
            self._pit = None
            self._open()
            if self.search_after is not None:
                # _shard_doc values belong to the old point in time: restart the last timestamp from
                # its first hit. Hits seen twice are dropped later as duplicates; none are skipped.
                self.search_after = [*self.search_after[:-1], -1]
            response = self.policy.call(self._search)
        finally:
            self.stats.search_ms += (time.monotonic() - started) * 1000
        self._pit = str(response.get("pit_id", self._pit))
        hits: list[dict[str, Any]] = response["hits"]["hits"]
        return hits

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """Yield non-empty pages in sort order; the point in time is closed at the end, also on error."""
        self._open()
        try:
            while True:
                hits = self._next_page()
                if not hits:
                    return
                self.stats.pages += 1
                self.stats.hits += len(hits)
                self.search_after = hits[-1]["sort"]
                yield hits
        finally:
            self._close()
