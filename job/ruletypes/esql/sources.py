"""The events behind a page's rows, read from the ``_search`` answer to :func:`request.source_fetch_body` (pure).

Only non-aggregating rows with an ``_id`` have an event. One ``_id`` may be found in several indices; the
row's ``_index`` picks among them, else the first found is used (Kibana's ``getSourceDocument``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FetchedEvent:
    index: str
    id: str
    source: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] | None = None


def row_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``_id`` of every row that has one (a non-empty text), in order, once each."""
    return list(dict.fromkeys(row["_id"] for row in rows if isinstance(row.get("_id"), str) and row["_id"]))


def fetched_events(search_answer: Any) -> dict[str, list[FetchedEvent]]:
    """The hits of the fetch, by ``_id`` (a hit without a text ``_id`` or ``_index`` is skipped)."""
    hits = search_answer.get("hits", {}).get("hits", []) if isinstance(search_answer, Mapping) else []
    events: dict[str, list[FetchedEvent]] = {}
    for hit in hits if isinstance(hits, list) else []:
        if (
            not isinstance(hit, Mapping)
            or not isinstance(hit.get("_id"), str)
            or not isinstance(hit.get("_index"), str)
        ):
            continue
        source = hit.get("_source")
        fields = hit.get("fields")
        event = FetchedEvent(
            index=hit["_index"],
            id=hit["_id"],
            source=dict(source) if isinstance(source, Mapping) else {},
            fields=dict(fields) if isinstance(fields, Mapping) else None,
        )
        events.setdefault(event.id, []).append(event)
    return events


def event_of(events: Mapping[str, list[FetchedEvent]], row: Mapping[str, Any]) -> FetchedEvent | None:
    """The event behind ``row``: same ``_id``, and the row's ``_index`` when it has one."""
    found = events.get(row.get("_id") or "", [])
    index = row.get("_index")
    if index:
        for event in found:
            if event.index == index:
                return event
    return found[0] if found else None
