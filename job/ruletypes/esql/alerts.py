"""The rows of one page turned into would-be alerts: an id and the hit an alert is built from (pure).

As Kibana's ES|QL executor (``esql.ts``, ``wrap_esql_alerts.ts``, ``utils/generate_alert_id.ts``):

* A row's ``_id``/``_index``/``_version`` are taken apart; every other column is merged into the event's
  ``_source`` as a flat dotted key (``merge.py``). A non-aggregating row with an ``_id`` brings its event
  (fetched by id: ``sources.py``; Kibana deep-copies it per row, here only the objects the merge changes are
  copied); an aggregating row, or one without ``_id``, is its
  columns alone. The hit's ``_index`` is the row's, else the event's, else ``""``; its ``fields`` are the
  event's.
* The id is npm ``object-hash`` of
  ``[_id, _version (undefined), _index, "<space>:<rule>", ...expanded values]`` for a non-aggregating row with
  an ``_id``: the expanded values are, with ``MV_EXPAND`` in the query, the value of each expanded column in
  the merged source (falsy ones dropped), or the whole hit when one of those columns is not in the answer;
  and of ``[from + to (ISO), <query as saved>, "<space>:<rule>", <row number in the page>]`` otherwise, which
  changes every run: aggregating alerts are never deduplicated across runs.
* Rows of one page that get the same id are kept once (the first).

``rule_key`` is Kibana's ``"<space>:<rule saved-object id>"``; this job names a rule by its ``rule_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from job.alerts.objecthash import UNDEFINED, object_hash
from job.esql.text import mv_expand_fields
from job.ruletypes.esql.merge import js_truthy, merge_row, robust_get
from job.ruletypes.esql.response import EsqlResult, split_metadata
from job.ruletypes.esql.sources import FetchedEvent, event_of
from job.window import Window, isoformat


@dataclass(frozen=True, slots=True)
class WouldBeAlert:
    """An alert before the shared builder: its ``_id``, and the hit it is built from."""

    id: str
    index: str  # the event's concrete index, "" for an aggregating row
    event_id: str  # the event's _id, "" for an aggregating row
    source: dict[str, Any]  # the event merged with the row's columns (the columns alone when aggregating)
    fields: dict[str, Any] | None  # the event's ``fields`` (None without an event)
    row: int  # the row's place in the page


def rule_key(space_id: str, rule_id: str) -> str:
    return f"{space_id}:{rule_id}"


def expanded_columns(query: str, columns: Sequence[str]) -> list[str] | None:
    """The ``MV_EXPAND`` columns an id hashes: None without ``MV_EXPAND``; [] when one is not in the answer
    (renamed or dropped: the whole hit is hashed instead)."""
    fields = mv_expand_fields(query)
    if not fields:
        return None
    return [] if any(field not in columns for field in fields) else fields


def _hit(alert_source: dict[str, Any], fields: dict[str, Any] | None, doc_id: str, index: str) -> dict[str, Any]:
    """The synthetic hit as Kibana's id sees it (``_version`` and a missing ``fields`` are undefined)."""
    return {
        "_source": alert_source,
        "fields": UNDEFINED if fields is None else fields,
        "_id": doc_id,
        "_index": index,
        "_version": UNDEFINED,
    }


def alert_id(
    *,
    row_id: str,
    index: str,
    hit: Mapping[str, Any],
    expanded: list[str] | None,
    window: Window,
    query: str,
    key: str,
    row: int,
    aggregating: bool,
) -> str:
    """Kibana's ``generateAlertId``."""
    if not aggregating and js_truthy(row_id):
        values: list[Any] = []
        if expanded is not None:
            source = hit["_source"]
            values = [hit] if not expanded else [v for f in expanded if js_truthy(v := robust_get(source, f))]
        return object_hash([row_id, UNDEFINED, index, key, *values])
    return object_hash([isoformat(window.start) + isoformat(window.end), query, key, row])


def rows_to_alerts(
    result: EsqlResult,
    events: Mapping[str, list[FetchedEvent]],
    *,
    query: str,
    aggregating: bool,
    window: Window,
    key: str,
) -> list[WouldBeAlert]:
    """The would-be alerts of one page, ids unique (the first row of an id wins). ``query`` is the rule's
    query as saved; ``events`` the fetched events by ``_id`` (empty for an aggregating query)."""
    expanded = expanded_columns(query, result.column_names)
    alerts: list[WouldBeAlert] = []
    seen: set[str] = set()
    for number, row in enumerate(result.rows):
        metadata, columns = split_metadata(row)
        row_id = metadata.get("_id")
        row_id = row_id if isinstance(row_id, str) else ""
        event = None if aggregating or not row_id else event_of(events, row)
        source = merge_row(event.source if event else None, columns)
        row_index = metadata.get("_index")
        index = row_index if isinstance(row_index, str) and row_index else (event.index if event else "")
        fields = event.fields if event else None
        hit = _hit(source, fields, row_id, index)
        new_id = alert_id(
            row_id=row_id,
            index=index,
            hit=hit,
            expanded=expanded,
            window=window,
            query=query,
            key=key,
            row=number,
            aggregating=aggregating,
        )
        if new_id in seen:
            continue
        seen.add(new_id)
        alerts.append(WouldBeAlert(new_id, index, row_id, source, fields, number))
    return alerts
