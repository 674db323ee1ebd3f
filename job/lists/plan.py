"""How a rule's exception items apply to one run, given the value lists they refer to (pure).

Kibana's detection engine sorts the active items (those not expired) in three:

1. Items without ``list`` entries, and items whose every list is small enough, become one clause of the
   search's ``bool.must_not`` (``job.rules.exceptions``). Small enough: the entry's list type is keyword,
   ip or ip_range, the list holds at most 65,536 items (duplicates count), and an ip_range list has at
   most 200 dash ranges.
2. The other items whose entries are *all* ``list`` entries are applied after each page of hits
   (``job.lists.postfilter``).
3. The other items (a large list mixed with other entries) cannot be applied. Kibana drops them
   silently on query rules; we warn, with the words Kibana uses where it does warn.

A list that does not exist fails the run with Kibana's ``Cannot find list`` error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from job.lists.clauses import TooManyRanges
from job.lists.model import CLAUSE_TYPES, MAX_CLAUSE_ITEMS, ListInfo, ListNotFound
from job.rules.exceptions import item_clauses, should_of, split_expired
from job.rules.parts import ExceptionEntry, ExceptionItem


@dataclass(frozen=True)
class ExceptionPlan:
    """The exceptions of one run: a ``must_not`` clause, items to apply per page, and what is left out."""

    clause: dict[str, Any] | None = None
    post_filter: tuple[ExceptionItem, ...] = ()
    not_applied: tuple[ExceptionItem, ...] = ()
    expired: tuple[ExceptionItem, ...] = ()

    @property
    def expired_ids(self) -> tuple[str, ...]:
        return tuple(item.item_id for item in self.expired)

    def for_aggregations(self) -> ExceptionPlan:
        """This plan for a search that counts events in aggregations (threshold, new terms): the items that were
        to be applied to each page of hits cannot apply to buckets, so they are not applied (Kibana's warning
        names them, as for the items that never apply)."""
        return replace(self, post_filter=(), not_applied=(*self.post_filter, *self.not_applied))

    @property
    def warnings(self) -> list[str]:
        """Kibana's warning for exceptions it does not apply (it gives it for aggregating rule types only)."""
        if not self.not_applied:
            return []
        names = ", ".join(item.name or item.item_id for item in self.not_applied)
        return [f"The following exceptions won't be applied to rule execution: {names}"]


def list_entries(item: ExceptionItem) -> list[ExceptionEntry]:
    return [entry for entry in item.entries if entry.type == "list" and entry.list is not None]


def lists_to_read(items: Iterable[ExceptionItem], now: datetime) -> dict[str, bool]:
    """The lists the active items refer to: list id -> whether some entry may need all its values.

    Only an entry whose type fits a clause needs the values (and only if the list is small enough,
    which the reader learns from the count first).
    """
    wanted: dict[str, bool] = {}
    active, _ = split_expired(items, now)
    for item in active:
        for entry in list_entries(item):
            assert entry.list is not None
            wanted[entry.list.id] = wanted.get(entry.list.id, False) or entry.list.type in CLAUSE_TYPES
    return wanted


def _fits_clause(entry: ExceptionEntry, lists: Mapping[str, ListInfo]) -> bool:
    assert entry.list is not None
    info = lists[entry.list.id]
    return entry.list.type in CLAUSE_TYPES and info.total <= MAX_CLAUSE_ITEMS and info.values is not None


def plan_exceptions(items: Iterable[ExceptionItem], *, now: datetime, lists: Mapping[str, ListInfo]) -> ExceptionPlan:
    """Sort the items for one run. ``lists`` holds every list the active items refer to (``ListNotFound``
    for one that is missing), with the values of those small enough for a clause."""
    active, expired = split_expired(items, now)
    clauses: list[dict[str, Any]] = []
    post_filter: list[ExceptionItem] = []
    not_applied: list[ExceptionItem] = []
    values = {info.list_id: info.values for info in lists.values() if info.values is not None}
    for item in active:
        entries = list_entries(item)
        for entry in entries:
            assert entry.list is not None
            if entry.list.id not in lists:
                raise ListNotFound(entry.list.id)
        if entries and not all(_fits_clause(entry, lists) for entry in entries):
            (post_filter if len(entries) == len(item.entries) else not_applied).append(item)
            continue
        try:
            clauses.extend(item_clauses(item, values))
        except TooManyRanges:
            (post_filter if len(entries) == len(item.entries) else not_applied).append(item)
    return ExceptionPlan(should_of(clauses), tuple(post_filter), tuple(not_applied), expired)
