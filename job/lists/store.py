"""Reading value lists for rule runs: the one module of ``job.lists`` that talks to Elasticsearch on the
run path.

One ``ListStore`` serves one pass: each list is read once (its document, its item count, and its values
when a query clause needs them), however many rules and pages use it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.client.retry import RetryPolicy, describe
from job.lists.model import MAX_CLAUSE_ITEMS, ListInfo, ListLookupFailed
from job.lists.parse import value_text
from job.lists.plan import ExceptionPlan, lists_to_read, plan_exceptions
from job.lists.postfilter import H, Hit, filter_hits, lookup_requests, lookups, matched_values
from job.rules.parts import ExceptionItem
from job.search.pager import PitPager

READ_PAGE = 10_000


@dataclass
class ListStore:
    """The value lists in ``lists_index`` / ``items_index`` (Kibana's ``.lists-<space>`` / ``.items-<space>``
    shape), read once per instance."""

    es: Elasticsearch
    policy: RetryPolicy
    lists_index: str
    items_index: str
    _documents: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)
    _totals: dict[str, int] = field(default_factory=dict, repr=False)
    _values: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def document(self, list_id: str) -> dict[str, Any] | None:
        """The list's document (``_source``), or None when there is no such list (or no lists index)."""
        if list_id not in self._documents:
            response = self.policy.call(
                lambda: self.es.search(
                    index=self.lists_index,
                    query={"ids": {"values": [list_id]}},
                    size=1,
                    ignore_unavailable=True,
                    allow_no_indices=True,
                )
            )
            hits = response["hits"]["hits"]
            self._documents[list_id] = dict(hits[0]["_source"]) if hits else None
        return self._documents[list_id]

    def total(self, list_id: str) -> int:
        """How many items the list holds (duplicates count, as Kibana counts them)."""
        if list_id not in self._totals:
            response = self.policy.call(
                lambda: self.es.count(
                    index=self.items_index,
                    query={"term": {"list_id": list_id}},
                    ignore_unavailable=True,
                    allow_no_indices=True,
                )
            )
            self._totals[list_id] = int(response["count"])
        return self._totals[list_id]

    def items(self, list_id: str, sort: Sequence[dict[str, Any]] = ({"_shard_doc": "asc"},)) -> Iterator[Hit]:
        """Every item document of the list, paged with a point in time."""
        query = {"term": {"list_id": list_id}}
        pager = PitPager(self.es, self.policy, [self.items_index], query, list(sort), READ_PAGE)
        for page in pager.pages():
            yield from page

    def values(self, list_id: str) -> tuple[str, ...]:
        """Every item's value as Kibana reads it back (``"a-b"`` for a range), duplicates included."""
        if list_id not in self._values:
            found = (value_text(hit.get("_source") or {}) for hit in self.items(list_id))
            self._values[list_id] = tuple(value for value in found if value is not None)
        return self._values[list_id]

    def read(self, wanted: Mapping[str, bool]) -> dict[str, ListInfo]:
        """``ListInfo`` of every list in ``wanted`` that exists; values only where wanted and small enough."""
        found: dict[str, ListInfo] = {}
        for list_id, need_values in wanted.items():
            document = self.document(list_id)
            if document is None:
                continue
            total = self.total(list_id)
            values = self.values(list_id) if need_values and 0 < total <= MAX_CLAUSE_ITEMS else None
            found[list_id] = ListInfo(list_id, str(document.get("type", "")), total, () if total == 0 else values)
        return found

    def plan(self, items: Sequence[ExceptionItem], *, now: datetime) -> ExceptionPlan:
        """The exceptions of one rule run (``job.lists.plan``), reading the lists its items refer to."""
        return plan_exceptions(items, now=now, lists=self.read(lists_to_read(items, now)))

    def filter_page(self, plan: ExceptionPlan, hits: Sequence[H]) -> list[H]:
        """``hits`` without those the plan's large lists exclude (all of them when it has none to apply)."""
        if not plan.post_filter or not hits:
            return list(hits)
        matches: dict[tuple[str, str], set[str]] = {}
        try:
            for lookup in lookups(plan.post_filter, hits):
                found = matches.setdefault((lookup.list_id, lookup.list_type), set())
                for values, body in lookup_requests(lookup):
                    response = self.policy.call(
                        lambda body=body: self.es.search(  # type: ignore[misc]
                            index=self.items_index, ignore_unavailable=True, allow_no_indices=True, **body
                        )
                    )
                    found |= matched_values(response.body, values)
        except (ApiError, TransportError) as exc:
            raise ListLookupFailed(describe(exc)) from exc
        return filter_hits(plan.post_filter, hits, matches)
