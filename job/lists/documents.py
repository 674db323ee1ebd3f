"""Kibana's value-list documents and index mappings (pure).

A list is one document whose ``_id`` is the list id; each value is one item document with a random
``_id``, the ``list_id``, and one value field named after the list type. Both mappings are ``strict``, as
Kibana's, so a document of another shape is refused rather than silently mapped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from job.alerts.timestamps import format_timestamp
from job.lists.model import LIST_TYPES

# Who wrote a list or item (Kibana writes the user's name).
AUTHOR: Final = "detection-job"

_COMMON: Final[dict[str, Any]] = {
    "@timestamp": {"type": "date"},
    "tie_breaker_id": {"type": "keyword"},
    "meta": {"type": "object", "enabled": False},
    "created_at": {"type": "date"},
    "updated_at": {"type": "date"},
    "created_by": {"type": "keyword"},
    "updated_by": {"type": "keyword"},
    "serializer": {"type": "keyword"},
    "deserializer": {"type": "keyword"},
}
LIST_MAPPING: Final[dict[str, Any]] = {
    "dynamic": "strict",
    "properties": {
        **_COMMON,
        "name": {"type": "keyword"},
        "description": {"type": "keyword"},
        "type": {"type": "keyword"},
        "version": {"type": "keyword"},
        "immutable": {"type": "boolean"},
    },
}
# The value fields are mapped with the Elasticsearch type of the same name; this job writes only the
# types it imports (Kibana's item mapping also has the numeric, range, geo and shape types).
ITEM_MAPPING: Final[dict[str, Any]] = {
    "dynamic": "strict",
    "properties": {**_COMMON, "list_id": {"type": "keyword"}, **{kind: {"type": kind} for kind in LIST_TYPES}},
}


def _stamps(now: datetime) -> dict[str, Any]:
    moment = format_timestamp(now)
    return {
        "@timestamp": moment,
        "created_at": moment,
        "created_by": AUTHOR,
        "updated_at": moment,
        "updated_by": AUTHOR,
        "tie_breaker_id": str(uuid.uuid4()),
    }


def list_document(*, list_type: str, name: str, description: str, now: datetime) -> dict[str, Any]:
    """The list document (its ``_id`` is the list id), as Kibana's import creates it."""
    return {
        **_stamps(now),
        "name": name,
        "description": description,
        "type": list_type,
        "immutable": False,
        "version": 1,
    }


def item_document(*, list_id: str, list_type: str, value: Any, now: datetime) -> dict[str, Any]:
    """One item: the list id and the value under the field named after the list type."""
    return {**_stamps(now), "list_id": list_id, list_type: value}


def import_description(filename: str) -> str:
    """Kibana's description of a list created by importing a file."""
    return f"File uploaded from file system of {filename}"
