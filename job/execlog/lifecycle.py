"""The execution log as a rollover alias: created (or converted from a plain index), rolled over, and
trimmed by retention without losing what the next run needs to plan.

``DETECTION_EXECUTIONS_INDEX`` names an alias whose write index is ``<name>-000001``, then ``-000002``
after a rollover, like the alerts alias (:mod:`job.indices.rollover` rolls both over and applies retention,
with :func:`carry_forward` as the log's hook). No index template is needed: the rollover request carries the
mapping of the new index.

**Earlier versions** kept the log in a plain index of that name. :func:`ensure_log` converts it in
place: it blocks writes to it, clones it to ``<name>-000001`` (the ``_clone`` API copies the
segments: fast, ids and documents unchanged), then in one ``_aliases`` request deletes the plain index
and points the alias ``<name>`` at the clone. A conversion cut short is finished by the next ``setup``.

**Retention** deletes whole backing indices whose newest record is older than
``DETECTION_EXECUTIONS_RETENTION``, never the write index. Before that, :func:`carry_forward` copies
into the write index (same id) the records of each rule that planning reads and that only the doomed
indices hold: the record with the furthest ``window.searched_to``, the newest completed record and the
newest one that ended by itself. A rule that has not run for longer than the retention therefore still
plans its catch-up and reports its gap, and ``status`` still shows its last run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from job.client.retry import RetryPolicy
from job.execlog.execution import EXECUTIONS_MAPPING

log = logging.getLogger(__name__)

EXECUTIONS_SETTINGS: dict[str, Any] = {"index.mapping.ignore_malformed": True}
COMPLETED = ("succeeded", "partial failure", "failed")
RULES_PER_PAGE = 500


def first_index(name: str) -> str:
    return f"{name}-000001"


def new_index_body() -> dict[str, Any]:
    """The ``mappings`` and ``settings`` of a new backing index (creation and rollover)."""
    return {"mappings": EXECUTIONS_MAPPING, "settings": EXECUTIONS_SETTINGS}


def _add_fields(es: Elasticsearch, policy: RetryPolicy, name: str) -> None:
    """Map the fields this version writes on every backing index (new fields only; safe to repeat)."""
    properties = EXECUTIONS_MAPPING["properties"]
    policy.call(lambda: es.options(ignore_status=400).indices.put_mapping(index=name, properties=properties))


def _convert(es: Elasticsearch, policy: RetryPolicy, name: str) -> None:
    """Turn the plain index ``name`` of an earlier version into the alias ``name`` over its clone."""
    target = first_index(name)
    log.info("execution log %s: converting the plain index of an earlier version into a rollover alias", name)
    policy.call(lambda: es.indices.add_block(index=name, block="write"))
    if not policy.call(lambda: es.indices.exists(index=target)):
        policy.call(
            lambda: es.indices.clone(
                index=name, target=target, settings={"index.blocks.write": False}, wait_for_active_shards="1"
            )
        )
    policy.call(
        lambda: es.indices.update_aliases(
            actions=[
                {"remove_index": {"index": name}},
                {"add": {"index": target, "alias": name, "is_write_index": True}},
            ]
        )
    )


def ensure_log(es: Elasticsearch, policy: RetryPolicy, name: str) -> str:
    """Make ``name`` a rollover alias with the current mapping: ``created``, ``converted`` or ``exists``."""
    if policy.call(lambda: es.indices.exists_alias(name=name)):
        _add_fields(es, policy, name)
        return "exists"
    if policy.call(lambda: es.indices.exists(index=name)):
        # A plain index of an earlier version, or the alias another process has created since the check
        # above (several shard pods installing at once): only the first is converted.
        if name in policy.call(lambda: es.indices.get(index=name)).body:
            _convert(es, policy, name)
            _add_fields(es, policy, name)
            return "converted"
        _add_fields(es, policy, name)
        return "exists"
    created = policy.call(
        lambda: es.options(ignore_status=400).indices.create(
            index=first_index(name), aliases={name: {"is_write_index": True}}, **new_index_body()
        )
    )
    if created.meta.status != 200:  # another process created it at the same moment
        _add_fields(es, policy, name)
        return "exists"
    return "created"


def _needed_aggregations() -> dict[str, Any]:
    def newest(sort_field: str) -> dict[str, Any]:
        return {"top_hits": {"size": 1, "sort": [{sort_field: {"order": "desc"}}]}}

    completed = {"terms": {"execution.status": list(COMPLETED)}}
    return {
        "searched": {
            "filter": {"exists": {"field": "window.searched_to"}},
            "aggs": {"top": newest("window.searched_to")},
        },
        "completed": {"filter": completed, "aggs": {"top": newest("execution.start")}},
        "finished": {
            "filter": {
                "bool": {"filter": [completed], "must_not": [{"exists": {"field": "execution.interrupted_by"}}]}
            },
            "aggs": {"top": newest("execution.start")},
        },
    }


def needed_records(es: Elasticsearch, policy: RetryPolicy, alias: str) -> Iterator[dict[str, Any]]:
    """Per rule and space, the records planning reads (see the module docstring), as search hits."""
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {
            "size": RULES_PER_PAGE,
            "sources": [{"rule": {"terms": {"field": "rule.rule_id"}}}, {"space": {"terms": {"field": "space_id"}}}],
        }
        if after is not None:
            composite["after"] = after
        response = policy.call(
            lambda composite=composite: es.search(  # type: ignore[misc]
                index=alias,
                size=0,
                query={"bool": {"must_not": [{"term": {"execution.type": "backfill"}}]}},
                aggs={"rules": {"composite": composite, "aggs": _needed_aggregations()}},
            )
        )
        rules = response["aggregations"]["rules"]
        for bucket in rules["buckets"]:
            for name in ("searched", "completed", "finished"):
                yield from bucket[name]["top"]["hits"]["hits"]
        after = rules.get("after_key")
        if not rules["buckets"] or after is None:
            return


def carry_forward(es: Elasticsearch, policy: RetryPolicy, alias: str) -> Callable[[list[str]], None]:
    """The retention hook: copy the records planning needs out of the indices about to be deleted."""

    def save(doomed: list[str]) -> None:
        keep = {hit["_id"]: hit for hit in needed_records(es, policy, alias) if hit["_index"] in doomed}
        if not keep:
            return
        operations: list[dict[str, Any]] = []
        for doc_id, hit in sorted(keep.items()):
            operations += [{"index": {"_id": doc_id}}, hit["_source"]]
        response = policy.call(lambda: es.bulk(index=alias, operations=operations, refresh="wait_for"))
        if response.get("errors"):
            raise ApiError(
                message="copying execution records before retention failed", meta=response.meta, body=response.body
            )
        log.info(
            "execution log %s: kept %d records that runs still plan from (the last of their rules)", alias, len(keep)
        )

    return save
