"""Create an index of the job's own (execution log, dead letters) with its mapping, or upgrade it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch

from job.retry import RetryPolicy


def ensure_index(
    es: Elasticsearch,
    policy: RetryPolicy,
    index: str,
    mappings: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
) -> None:
    """Create ``index`` with ``mappings``, or add the fields a newer version maps (safe to race: a 400 for an
    index another process just created is ignored)."""
    if policy.call(lambda: es.indices.exists(index=index)):
        policy.call(
            lambda: es.options(ignore_status=400).indices.put_mapping(index=index, properties=mappings["properties"])
        )
        return
    policy.call(
        lambda: es.options(ignore_status=400).indices.create(index=index, mappings=mappings, settings=settings)
    )
