"""Field types for KQL translation, from Elasticsearch's ``_field_caps`` (the job's data view).

:func:`field_types_from_caps` is pure; :func:`fetch_field_types` makes the one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from elasticsearch import Elasticsearch

# Not field types: "object" has sub-fields only, "unmapped" is what include_unmapped reports.
_SKIPPED_TYPES = frozenset({"object", "unmapped"})


def field_types_from_caps(response: Mapping[str, Any]) -> dict[str, str]:
    """``{name: type}`` from a ``_field_caps`` response, in the shape ``job.kql.to_dsl`` takes.

    A field with several types (a conflict between indices) maps to the types joined by commas in
    response order (``"keyword,text"``); nested paths keep their ``"nested"`` type; metadata fields
    (``_id``, ``_index``, ...) and plain objects are left out, as Kibana's data view leaves them out.
    """
    fields = response.get("fields")
    if not isinstance(fields, Mapping):
        raise ValueError("not a _field_caps response: no 'fields' object")
    types: dict[str, str] = {}
    for name, caps in fields.items():
        if not isinstance(caps, Mapping):
            raise ValueError(f"not a _field_caps response: field {name!r} has no types")
        if any(isinstance(cap, Mapping) and cap.get("metadata_field") for cap in caps.values()):
            continue
        kept = [str(kind) for kind in caps if kind not in _SKIPPED_TYPES]
        if kept:
            types[str(name)] = ",".join(kept)
    return types


def fetch_field_types(es: Elasticsearch, index: Sequence[str]) -> dict[str, str]:
    """Field types of every field in ``index`` (patterns allowed; missing indices are ignored)."""
    response = es.field_caps(index=list(index), fields="*", ignore_unavailable=True, allow_no_indices=True)
    return field_types_from_caps(response.body)
