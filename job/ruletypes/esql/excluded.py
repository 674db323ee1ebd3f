"""Events already alerted on, kept between runs and excluded from the query (pure).

Kibana's ES|QL executor cannot page; it asks for ``max_signals + 1`` rows and, on the next page or the
next run, excludes the events it has already turned into alerts with a ``must_not`` (``request.py``). The
rule state keeps them: ``excludedDocuments: {<concrete index>: [{id, timestamp}]}`` and ``lastQuery``.

* At run start (``initiate_excluded_documents.ts``) the state is ignored when the query aggregates, when
  there is none, or when the query uses ``MV_EXPAND`` and is not the ``lastQuery`` it was kept for;
  otherwise each entry whose ``timestamp`` is at or after the window's start (an ISO text comparison) stays.
* After each page (``update_excluded_documents.ts``; nothing for an aggregating query) every fetched event is
  added, except the one behind the page's last row, whose other ``MV_EXPAND`` rows (or rows cut by the
  max-signals cap) may come on the next page; that exception does not apply when exactly one event was
  fetched or the search is exhausted. The ``timestamp`` is the event's ``fields[<timestamp field>][0]``.
* Past 100,000 excluded events the run stops with a warning.
* At the end the state is ``{..., excludedDocuments, lastQuery: <query if MV_EXPAND else None>}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from job.ruletypes.esql.sources import FetchedEvent
from job.window import isoformat

MAX_EXCLUDED_DOCUMENTS = 100_000
EXCLUDED_LIMIT_WARNING = (
    f"Excluded documents exceeded the limit of {MAX_EXCLUDED_DOCUMENTS}, some alerts might not have been created. "
    "Consider reducing the lookback time for the rule."
)


@dataclass(frozen=True, slots=True)
class ExcludedDocument:
    id: str
    timestamp: str | None


Excluded = dict[str, list[ExcludedDocument]]


def _entries(raw: Any) -> list[ExcludedDocument]:
    if not isinstance(raw, list):
        return []
    entries = []
    for item in raw:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            timestamp = item.get("timestamp")
            entries.append(ExcludedDocument(item["id"], timestamp if isinstance(timestamp, str) else None))
    return entries


def initial_excluded(
    state: Mapping[str, Any] | None, *, query: str, aggregating: bool, has_mv_expand: bool, window_start: datetime
) -> Excluded:
    """The excluded events a run starts with, from the state the previous run left."""
    state = state if isinstance(state, Mapping) else {}
    kept = state.get("excludedDocuments")
    # The flat list of earlier Kibana versions (before the state was keyed by index) is dropped.
    if aggregating or not isinstance(kept, Mapping) or (has_mv_expand and query != state.get("lastQuery")):
        return {}
    since = isoformat(window_start)
    return {
        str(index): [entry for entry in _entries(entries) if entry.timestamp and entry.timestamp >= since]
        for index, entries in kept.items()
    }


def count(excluded: Mapping[str, Sequence[ExcludedDocument]]) -> int:
    return sum(len(entries) for entries in excluded.values())


def over_limit(excluded: Mapping[str, Sequence[ExcludedDocument]]) -> bool:
    """True when the run must stop before the next page (:data:`EXCLUDED_LIMIT_WARNING`)."""
    return count(excluded) > MAX_EXCLUDED_DOCUMENTS


def ids_by_index(excluded: Mapping[str, Sequence[ExcludedDocument]]) -> dict[str, list[str]]:
    """What :func:`request.build_request` takes."""
    return {index: [entry.id for entry in entries] for index, entries in excluded.items() if entries}


def update_excluded(
    excluded: Excluded,
    fetched: Iterable[FetchedEvent],
    rows: Sequence[Mapping[str, Any]],
    *,
    aggregating: bool,
    exhausted: bool,
    timestamp_field: str,
) -> None:
    """Add the events of one page to ``excluded`` (in place)."""
    if aggregating:
        return
    events = list(fetched)
    last_id = rows[-1].get("_id") if rows else None
    keep_last = len(events) == 1 or exhausted
    for event in events:
        if event.id == last_id and not keep_last:
            continue
        values = (event.fields or {}).get(timestamp_field)
        timestamp = values[0] if isinstance(values, list) and values and isinstance(values[0], str) else None
        excluded.setdefault(event.index, []).append(ExcludedDocument(event.id, timestamp))


def newest(excluded: Mapping[str, Sequence[ExcludedDocument]], limit: int) -> Excluded:
    """At most ``limit`` of the excluded events, the latest by timestamp (those without one go first)."""
    entries = sorted(
        ((entry.timestamp or "", index, entry) for index, found in excluded.items() for entry in found),
        key=lambda item: item[0],
    )
    kept: Excluded = {}
    for _, index, entry in entries[max(len(entries) - limit, 0) :] if limit > 0 else []:
        kept.setdefault(index, []).append(entry)
    return kept


def final_state(
    state: Mapping[str, Any] | None,
    excluded: Mapping[str, Sequence[ExcludedDocument]],
    *,
    query: str,
    has_mv_expand: bool,
) -> dict[str, Any]:
    """The rule state a run leaves for the next one."""
    return {
        **(dict(state) if isinstance(state, Mapping) else {}),
        "excludedDocuments": {
            index: [{"id": entry.id, "timestamp": entry.timestamp} for entry in entries]
            for index, entries in excluded.items()
        },
        "lastQuery": query if has_mv_expand else None,
    }
