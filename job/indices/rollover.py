"""The lifecycle of a rollover alias without ILM: rollover by conditions, retention by deleting old backing indices.

Used for the alerts alias and the execution log. Only core APIs (``_rollover``, ``_alias``, a search,
index delete), so it works on every cluster, including ones without ILM. The alias ``<alias>`` writes
to ``<alias>-000001``, then ``-000002`` after a rollover, and so on; readers search the alias, so
they span every backing index.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.client.retry import RetryPolicy, describe
from job.config.rollover import RolloverConditions
from job.config.settings import Settings
from job.execlog import lifecycle as execution_log
from job.window import isoformat

log = logging.getLogger(__name__)


@dataclass
class LifecycleResult:
    rolled_over_to: str | None = None  # the new write index, when a rollover happened
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def rollover_conditions(conditions: RolloverConditions) -> dict[str, str | int]:
    """The ``conditions`` of the ``_rollover`` request; an empty write index is never rolled over."""
    body = dict(conditions)
    body.setdefault("min_docs", 1)
    return body


def rollover(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    conditions: RolloverConditions,
    *,
    what: str = "alert",
    new_index: Mapping[str, Any] | None = None,
) -> str | None:
    """Roll ``alias`` over to a new backing index when a condition is met; the new index's name, or None.

    ``new_index``: the ``mappings`` and ``settings`` of the new index, for an alias no index template covers.
    """
    if not conditions:
        return None
    response = policy.call(
        lambda: es.options(ignore_status=400).indices.rollover(
            alias=alias, conditions=rollover_conditions(conditions), **dict(new_index or {})
        )
    )
    if response.meta.status == 400:
        error = response.body.get("error", {}) if isinstance(response.body, Mapping) else {}
        if error.get("type") == "resource_already_exists_exception" and error.get("index"):
            _, write = backing_indices(es, policy, alias)
            if write == error["index"]:
                return None  # another process rolled over to that index at the same moment
        raise ApiError(message=str(error.get("reason", "rollover refused")), meta=response.meta, body=response.body)
    if not response.get("rolled_over"):
        return None
    new_name = str(response["new_index"])
    met = sorted(name for name, hit in response.get("conditions", {}).items() if hit)
    log.info("%s alias %s rolled over from %s to %s (%s)", what, alias, response["old_index"], new_name, ", ".join(met))
    return new_name


def backing_indices(es: Elasticsearch, policy: RetryPolicy, alias: str) -> tuple[list[str], str | None]:
    """The alias's indices that the job created (``<alias>-NNNNNN``), and its write index."""
    response = policy.call(lambda: es.options(ignore_status=404).indices.get_alias(name=alias))
    if response.meta.status == 404:
        return [], None
    members: dict[str, Any] = dict(response.body)
    flagged = [name for name, meta in members.items() if meta["aliases"][alias].get("is_write_index")]
    write = flagged[0] if flagged else (next(iter(members)) if len(members) == 1 else None)
    ours = re.compile(rf"^{re.escape(alias)}-[0-9]+$")
    return sorted(name for name in members if ours.match(name)), write


def due_for_deletion(
    newest: Mapping[str, datetime | None], created: Mapping[str, datetime], cutoff: datetime
) -> list[str]:
    """Indices whose newest alert (or, when empty, whose creation) is before ``cutoff``."""
    return sorted(name for name, moment in newest.items() if (moment or created[name]) < cutoff)


def expired_indices(
    es: Elasticsearch, policy: RetryPolicy, alias: str, retention: timedelta, now: datetime
) -> list[str]:
    """The backing indices whose newest document is older than ``retention``; never the write index."""
    indices, write = backing_indices(es, policy, alias)
    if write is None:
        if indices:
            log.warning("alias %s has no write index; retention skipped", alias)
        return []
    candidates = [name for name in indices if name != write]
    if not candidates:
        return []
    response = policy.call(
        lambda: es.search(
            index=",".join(candidates),
            size=0,
            aggs={
                "indices": {
                    "terms": {"field": "_index", "size": len(candidates)},
                    "aggs": {"newest": {"max": {"field": "@timestamp"}}},
                }
            },
            ignore_unavailable=True,
        )
    )
    newest: dict[str, datetime | None] = dict.fromkeys(candidates)
    for bucket in response["aggregations"]["indices"]["buckets"]:
        value = bucket["newest"].get("value")
        if bucket["key"] in newest and value is not None:
            newest[bucket["key"]] = datetime.fromtimestamp(value / 1000, tz=UTC)
    settings = policy.call(
        lambda: es.indices.get_settings(index=",".join(candidates), name="index.creation_date", flat_settings=True)
    )
    created = {
        name: datetime.fromtimestamp(int(body["settings"]["index.creation_date"]) / 1000, tz=UTC)
        for name, body in settings.items()
    }
    newest = {name: moment for name, moment in newest.items() if name in created}
    return due_for_deletion(newest, created, now - retention)


# Called with the indices about to be deleted, before they are: it may save what must outlive them.
BeforeDelete = Callable[[list[str]], None]


def apply_retention(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    retention: timedelta | None,
    now: datetime,
    deleted: list[str],
    *,
    what: str = "alert",
    before_delete: BeforeDelete | None = None,
) -> None:
    """Delete the backing indices past ``retention`` (None: keep forever), adding their names to ``deleted``."""
    if retention is None:
        return
    # What was written in the last second counts too: an index that just got a document is not old (a run's
    # final record goes to the backing index that holds its running record, which may no longer be the write
    # index), and the execution records carried forward must be the newest.
    policy.call(lambda: es.indices.refresh(index=alias))
    doomed = expired_indices(es, policy, alias, retention, now)
    if doomed and before_delete is not None:
        before_delete(doomed)
    for name in doomed:
        policy.call(lambda name=name: es.options(ignore_status=404).indices.delete(index=name))  # type: ignore[misc]
        log.info(
            "deleted %s index %s: its newest document is older than %s (before %s)",
            what,
            name,
            retention,
            isoformat(now - retention),
        )
        deleted.append(name)


def maintain(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    conditions: RolloverConditions,
    retention: timedelta | None,
    now: datetime | None = None,
    *,
    what: str = "alert",
    new_index: Mapping[str, Any] | None = None,
    before_delete: BeforeDelete | None = None,
) -> LifecycleResult:
    """Rollover, then retention. Errors are returned (and logged), never raised: detection goes on.

    ``what`` names the indices in messages (``alert``, ``execution log``); ``new_index`` and
    ``before_delete`` as for :func:`rollover` and :func:`apply_retention`.
    """
    result = LifecycleResult()
    try:
        result.rolled_over_to = rollover(es, policy, alias, conditions, what=what, new_index=new_index)
    except (ApiError, TransportError) as exc:
        result.errors.append(_failed(what, "rollover", exc))
    try:
        apply_retention(
            es,
            policy,
            alias,
            retention,
            now or datetime.now(UTC),
            result.deleted,
            what=what,
            before_delete=before_delete,
        )
    except (ApiError, TransportError) as exc:
        result.errors.append(_failed(what, "retention", exc))
    return result


def _failed(what: str, step: str, exc: ApiError | TransportError) -> str:
    message = f"{what} index {step} failed: {describe(exc)}"
    log.error("%s", message)
    return message


def maintain_log(es: Elasticsearch, policy: RetryPolicy, settings: Settings) -> LifecycleResult:
    """Rollover and retention of the execution log (``DETECTION_EXECUTIONS_ROLLOVER`` / ``_RETENTION``)."""
    alias = settings.executions_index
    return maintain(
        es,
        policy,
        alias,
        settings.executions_rollover,
        settings.executions_retention,
        what="execution log",
        new_index=execution_log.new_index_body(),
        before_delete=execution_log.carry_forward(es, policy, alias),
    )
