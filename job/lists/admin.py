"""Writing value lists: create the indices, import a file's values, delete a list (Elasticsearch I/O).

Unlike Kibana, which drops values Elasticsearch refuses without a word, every refused value is reported
with its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import ApiError

from job.lists.documents import ITEM_MAPPING, LIST_MAPPING, item_document, list_document
from job.lists.model import IMPORT_BATCH
from job.lists.parse import Line, item_value
from job.lists.store import ListStore


@dataclass
class ImportResult:
    """What an import stored, and the lines Elasticsearch refused (line number, value, reason)."""

    stored: int = 0
    refused: list[tuple[int, str, str]] = field(default_factory=list)


def ensure_indices(store: ListStore) -> None:
    """Create the lists and items indices with Kibana's mappings unless they exist (as indices, aliases or
    data streams, for instance Kibana's own). Two imports racing both find them created."""
    es, policy = store.es, store.policy
    for index, mapping in ((store.lists_index, LIST_MAPPING), (store.items_index, ITEM_MAPPING)):
        if not policy.call(lambda index=index: es.indices.exists(index=index)):  # type: ignore[misc]
            try:
                policy.call(lambda index=index, mapping=mapping: es.indices.create(index=index, mappings=mapping))  # type: ignore[misc]
            except ApiError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise


def create_list(store: ListStore, list_id: str, *, list_type: str, name: str, description: str, now: datetime) -> None:
    """Create the list document (``_id`` = list id); it must not exist yet."""
    document = list_document(list_type=list_type, name=name, description=description, now=now)
    store.policy.call(
        lambda: store.es.create(index=store.lists_index, id=list_id, document=document, refresh="wait_for")
    )


def import_values(
    store: ListStore, list_id: str, list_type: str, lines: Sequence[Line], *, now: datetime
) -> ImportResult:
    """Append one item per line, in bulk requests of Kibana's size; report what was refused."""
    result = ImportResult()
    for start in range(0, len(lines), IMPORT_BATCH):
        batch = lines[start : start + IMPORT_BATCH]
        operations: list[dict[str, Any]] = []
        for line in batch:
            value = item_value(list_type, line.text)
            operations.append({"create": {"_index": store.items_index}})
            operations.append(item_document(list_id=list_id, list_type=list_type, value=value, now=now))
        response = store.policy.call(lambda ops=operations: store.es.bulk(operations=ops))  # type: ignore[misc]
        for line, item in zip(batch, response["items"], strict=True):
            outcome = item["create"]
            if outcome.get("status") in (200, 201):
                result.stored += 1
            else:
                error = outcome.get("error") or {}
                reason = f"{error.get('type', 'error')}: {error.get('reason', '')}" if isinstance(error, dict) else ""
                result.refused.append((line.number, line.text, reason or f"HTTP {outcome.get('status')}"))
    store.policy.call(lambda: store.es.indices.refresh(index=store.items_index))
    return result


def delete_list(store: ListStore, list_id: str) -> int:
    """Delete the list's items (in bulk, by id: no ``_delete_by_query`` needed) and then the list; the number
    of items deleted."""
    deleted = 0
    batch: list[dict[str, Any]] = []
    for hit in store.items(list_id):
        batch.append({"delete": {"_index": hit["_index"], "_id": hit["_id"]}})
        if len(batch) == IMPORT_BATCH:
            deleted += _bulk_delete(store, batch)
            batch = []
    if batch:
        deleted += _bulk_delete(store, batch)
    response = store.policy.call(
        lambda: store.es.search(index=store.lists_index, query={"ids": {"values": [list_id]}}, size=1)
    )
    for hit in response["hits"]["hits"]:
        _bulk_delete(store, [{"delete": {"_index": hit["_index"], "_id": hit["_id"]}}])
    store.policy.call(lambda: store.es.indices.refresh(index=f"{store.lists_index},{store.items_index}"))
    return deleted


def _bulk_delete(store: ListStore, operations: list[dict[str, Any]]) -> int:
    response = store.policy.call(lambda: store.es.bulk(operations=operations))
    return sum(1 for item in response["items"] if item["delete"].get("status") == 200)
