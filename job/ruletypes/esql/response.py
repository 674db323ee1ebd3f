"""An ES|QL answer, read: columns and rows, partial results, the async envelope (pure).

Elasticsearch answers ``_query`` (and ``_query/async`` once done) with ``columns`` (name and type) and
``values`` (one list per row, aligned with ``columns``); with ``drop_null_columns=true`` ``columns`` keeps only
the columns with a value somewhere and ``all_columns`` lists every one. Kibana's ``rowToDocument`` turns a
row into ``{column: value}`` and leaves out null cells. Values stay as Elasticsearch wrote them: several
values as a list, dates as ISO text, numbers as numbers.

Anything else in the place of that shape is refused with :class:`EsqlResponseError`, naming what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_ROWS = 10_000  # esql.query.result_truncation_max_size's default; a page never holds more
METADATA_COLUMNS = ("_id", "_index", "_version")


class EsqlResponseError(ValueError):
    """The answer is not an ES|QL result."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class EsqlResult:
    """One answer. ``running``/``query_id``: an async query still under way (no rows yet)."""

    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...]
    is_partial: bool = False
    shard_failures: tuple[Any, ...] = ()
    running: bool = False
    query_id: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def _columns(raw: Any) -> tuple[Column, ...]:
    if not isinstance(raw, list):
        raise EsqlResponseError(f"columns is a {type(raw).__name__}, not a list")
    columns = []
    for position, column in enumerate(raw):
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str):
            raise EsqlResponseError(f"column {position} has no name")
        columns.append(Column(column["name"], str(column.get("type", ""))))
    return tuple(columns)


def _rows(columns: tuple[Column, ...], raw: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list):
        raise EsqlResponseError(f"values is a {type(raw).__name__}, not a list")
    if len(raw) > MAX_ROWS:
        raise EsqlResponseError(f"{len(raw)} rows, more than the {MAX_ROWS} a page can hold")
    rows = []
    for position, row in enumerate(raw):
        if not isinstance(row, list) or len(row) != len(columns):
            raise EsqlResponseError(f"row {position} does not have one value per column ({len(columns)})")
        rows.append({column.name: value for column, value in zip(columns, row, strict=True) if value is not None})
    return tuple(rows)


def _shard_failures(clusters: Any) -> tuple[Any, ...]:
    """Every ``_clusters.details.<cluster>.failures`` entry, cluster after cluster."""
    details = clusters.get("details") if isinstance(clusters, Mapping) else None
    if not isinstance(details, Mapping):
        return ()
    failures: list[Any] = []
    for cluster in details.values():
        found = cluster.get("failures") if isinstance(cluster, Mapping) else None
        if isinstance(found, list):
            failures.extend(found)
    return tuple(failures)


def parse_response(body: Any) -> EsqlResult:
    """The result in an answer of ``POST /_query``, ``POST /_query/async`` or ``GET /_query/async/<id>``."""
    if not isinstance(body, Mapping):
        raise EsqlResponseError(f"the answer is a {type(body).__name__}, not an object")
    query_id = body.get("id") if isinstance(body.get("id"), str) else None
    if body.get("is_running") is True:
        if query_id is None:
            raise EsqlResponseError("the async query is running but no query id was returned")
        return EsqlResult(columns=(), rows=(), running=True, query_id=query_id)
    columns = _columns(body.get("columns", []))
    return EsqlResult(
        columns=columns,
        rows=_rows(columns, body.get("values", [])),
        is_partial=body.get("is_partial") is True,
        shard_failures=_shard_failures(body.get("_clusters")),
        query_id=query_id,
    )


def split_metadata(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``_id``/``_index``/``_version`` of the row, every other column): Kibana takes the first apart."""
    metadata = {name: row[name] for name in METADATA_COLUMNS if name in row}
    return metadata, {name: value for name, value in row.items() if name not in METADATA_COLUMNS}


def partial_results_warning(failures: tuple[Any, ...]) -> str:
    """The warning of a run whose query skipped shards (``log_cluster_shard_failures_esql.ts``)."""
    listed = json.dumps(list(failures), separators=(",", ":"), ensure_ascii=False)
    return (
        "The ES|QL event query was only executed on the available shards. The query failed to run successfully "
        f"on the following shards: {listed}"
    )


def has_id_column(result: EsqlResult) -> bool:
    return "_id" in result.column_names


def missing_id_warning(result: EsqlResult) -> str | None:
    """9.4+: rows came back without an ``_id`` column, so alerts cannot be tied to their events.
    Kibana pushes a warning here (``check_missing_id_field_warning.ts``); its wording was not read, this is ours."""
    if not result.rows or has_id_column(result):
        return None
    return (
        "The ES|QL query returned rows without an _id column: alerts are not deduplicated by event. "
        "Keep _id in the query's output (FROM ... METADATA _id, and _id in every KEEP)."
    )
