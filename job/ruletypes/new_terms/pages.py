"""One window of a new_terms rule, with the search injected: the history window, the pages of new terms and
their would-be alerts (Kibana 8.19's ``execute_new_terms_aggregation_approach.ts``, ``multi_terms_composite.ts``).

``search`` takes a request body and returns the search response; an error it raises ends the window, except
Elasticsearch's "too many clauses" on a batch of several fields, which Kibana meets by halving the batch (500,
250, then 125 keys): here the batch that failed is split in two, down to 125 keys. (Kibana looks for
``query_shard_exception: failed to create query`` in its client's message; the Python client's message is
``BadRequestError(400, 'search_phase_execution_exception', 'failed to create query: maxClauseCount is set to
N')``, so :func:`too_many_clauses` reads Elasticsearch's own words.)

Alerts come page by page (:func:`new_terms_pages` is a generator): the caller writes a page, counts what it
created and stops iterating at its cap (Kibana's loop stops when a write was truncated, with the max-signals
warning). Several fields are checked in batches of 500 phase-1 keys, each batch a page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from job.alerts.objecthash import object_hash
from job.ruletypes.new_terms.phases import (
    PAGE_SIZE,
    Key,
    NewTermEvent,
    batch_clause,
    combination_events_request,
    combinations_request,
    first_events_request,
    key_of,
    new_values_request,
    parse_combinations,
    parse_first_events,
    parse_new_values,
    parse_recent_terms,
    recent_terms_request,
)
from job.search.aggregations import EventQuery, first_event
from job.window import Window
from job.writing.hit_alerts import HitAlert
from job.writing.writer import Candidate

Search = Callable[[dict[str, Any]], Mapping[str, Any]]
NEW_TERMS: Final = "kibana.alert.new_terms"
BATCH_SIZE: Final = 500
MIN_BATCH_SIZE: Final = 125
# How Elasticsearch says a query has too many clauses (``too_many_clauses``, ``maxClauseCount is set to N``, and
# since 8.x ``too_many_nested_clauses``), and the two texts Kibana looks for in its client's messages.
TOO_MANY_CLAUSES: Final = (
    "too_many_clauses",
    "too_many_nested_clauses",
    "maxClauseCount is set to",
    "query_shard_exception: failed to create query",
    "Query contains too many nested clauses;",
)


def alert_id(event: Mapping[str, Any], new_terms: Sequence[Any], rule_id: str, space_id: str) -> str:
    """object-hash of ``[event index, event id, "undefined", "<space>:<rule>", new terms]`` (Kibana's
    ``wrapNewTermsAlerts``; the event's ``_version`` is never read, so ``String(undefined)``)."""
    return object_hash(
        [str(event.get("_index")), str(event.get("_id")), "undefined", f"{space_id}:{rule_id}", list(new_terms)]
    )


def candidate(found: NewTermEvent, rule_id: str, space_id: str) -> Candidate:
    """The would-be alert of a new term: its earliest event's alert plus ``kibana.alert.new_terms``."""
    about = "the new term " + json.dumps(found.new_terms, ensure_ascii=False, default=str)
    alert = HitAlert(found.event, {NEW_TERMS: found.new_terms}, about)
    return Candidate(alert_id(found.event, found.new_terms, rule_id, space_id), alert)


@dataclass(frozen=True, slots=True)
class NewTermsPage:
    """The new terms of one phase-1 page (one field) or one batch of it (several fields), and the searches made."""

    found: tuple[NewTermEvent, ...]
    searches: int

    def candidates(self, rule_id: str, space_id: str) -> list[Candidate]:
        return [candidate(found, rule_id, space_id) for found in self.found]


@dataclass(frozen=True, slots=True)
class _Plan:
    search: Search
    fields: tuple[str, ...]
    query: EventQuery
    window: Window
    history: Window
    hit_fields: tuple[str, ...]


def new_terms_pages(
    search: Search,
    fields: Sequence[str],
    query: EventQuery,
    window: Window,
    history: Window,
    *,
    hit_fields: Sequence[str] = (),
    page_size: int = PAGE_SIZE,
    batch_size: int = BATCH_SIZE,
) -> Iterator[NewTermsPage]:
    """The new terms of ``window`` against ``history`` (:func:`history_window`), page by page. ``hit_fields`` are
    asked of each earliest event (the suppression fields and timestamps, read from the ``fields`` API)."""
    plan = _Plan(search, tuple(fields), query, window, history, tuple(hit_fields))
    after: Mapping[str, Any] | None = None
    while True:
        request = recent_terms_request(plan.fields, query.for_window(window), after=after, size=page_size)
        page = parse_recent_terms(search(request), page_size)
        if not page.buckets:
            yield NewTermsPage((), 1)
            return
        keys = [key_of(bucket.get("key") or {}, plan.fields) for bucket in page.buckets]
        phase_one = 1  # counted with the first page it leads to
        if len(plan.fields) == 1:
            found = _single_field(plan, [key[0] for key in keys if key[0] is not None])
            yield NewTermsPage(found.found, found.searches + phase_one)
        else:
            lower = after
            for start in range(0, len(keys), batch_size):
                batch = keys[start : start + batch_size]
                found = _batch(plan, batch, lower)
                yield NewTermsPage(found.found, found.searches + phase_one)
                phase_one = 0
                lower = dict(zip(plan.fields, batch[-1], strict=True))
        if page.after_key is None:
            return
        after = page.after_key


def _single_field(plan: _Plan, values: list[Any]) -> NewTermsPage:
    field, timestamps = plan.fields[0], plan.query.timestamps
    response = plan.search(new_values_request(field, values, plan.query.for_window(plan.history), timestamps))
    new = parse_new_values(response, plan.window.start)
    if not new:
        return NewTermsPage((), 1)
    request = first_events_request(field, new, plan.query.for_window(plan.window), timestamps, plan.hit_fields)
    return NewTermsPage(tuple(parse_first_events(plan.search(request))), 2)


def _batch(plan: _Plan, batch: list[Key], lower: Mapping[str, Any] | None) -> NewTermsPage:
    """Phases 2 and 3 of one batch; on "too many clauses", the two halves of the batch one after the other."""
    try:
        return _batch_once(plan, batch, lower)
    except Exception as error:
        if len(batch) <= MIN_BATCH_SIZE or not too_many_clauses(error):
            raise
    half = len(batch) // 2
    first = _batch(plan, batch[:half], lower)
    second = _batch(plan, batch[half:], dict(zip(plan.fields, batch[half - 1], strict=True)))
    return NewTermsPage(first.found + second.found, first.searches + second.searches)


def too_many_clauses(error: BaseException) -> bool:
    """Whether a search failed because its query has too many clauses (the message, or the client's error body)."""
    text = f"{error} {getattr(error, 'body', '')}"
    return any(marker in text for marker in TOO_MANY_CLAUSES)


def _pages(
    plan: _Plan, keys: list[Key], lower: Mapping[str, Any] | None, window: Window, new_since: datetime | None
) -> tuple[dict[Key, Mapping[str, Any]], int]:
    """The composite over the events holding ``keys`` in ``window``, paged until every key was seen."""
    wanted, seen, found = set(keys), set[Key](), dict[Key, Mapping[str, Any]]()
    query = plan.query.for_window(window, filters=[batch_clause(plan.fields, keys)])
    after, searches = lower, 0
    while seen != wanted:
        if new_since is not None:
            request = combinations_request(plan.fields, query, plan.query.timestamps, after=after, size=len(keys))
        else:
            request = combination_events_request(
                plan.fields, query, plan.query.timestamps, after=after, size=len(keys), hit_fields=plan.hit_fields
            )
        page = parse_combinations(plan.search(request), plan.fields, wanted, new_since, len(keys))
        searches += 1
        found.update(page.new)
        seen |= page.seen
        if page.after_key is None:
            break
        after = page.after_key
    return found, searches


def _batch_once(plan: _Plan, batch: list[Key], lower: Mapping[str, Any] | None) -> NewTermsPage:
    new, searches = _pages(plan, batch, lower, plan.history, plan.window.start)
    if not new:
        return NewTermsPage((), searches)
    ordered = [key for key in batch if key in new]
    events, more = _pages(plan, ordered, lower, plan.window, None)
    found = []
    for key in ordered:
        bucket = events.get(key)
        event = first_event(bucket) if bucket is not None else None
        if event is not None:
            found.append(NewTermEvent(list(key), event))
    return NewTermsPage(tuple(found), searches + more)
