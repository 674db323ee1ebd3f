"""The execution record of a rule run: written ahead, finished, or marked interrupted by a later run.

* :func:`write_ahead` creates the record with status ``running`` before anything is searched;
* :func:`write_final` overwrites it (same id, the execution uuid) with the final status;
* :func:`mark_interrupted` turns another run's abandoned ``running`` record into ``failed``, with the
  sequence number it was read with, so it never overwrites a run that finished in the meantime.

The execution log is a rollover alias: the record is created through it (in its write index), and the
final write and the marking go to the concrete index that holds the ``running`` record, so a rollover
in between never leaves a second document with the same id.

None of these writes waits for a refresh: :func:`refresh` makes a whole pass's records searchable at
its end (see :mod:`job.run.history` for what a run sees of a pass that was killed).
"""

from __future__ import annotations

import logging
from datetime import datetime

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from job.run.execlog import Execution, interrupted_update
from job.run.history import RunningRecord
from job.run.retry import RetryPolicy, describe

log = logging.getLogger(__name__)


def write_ahead(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution) -> None:
    """Create the ``running`` record. Raises if it cannot be written: a run must not search unrecorded."""
    document = execution.to_document()
    try:
        response = policy.call(lambda: es.create(index=index, id=execution.uuid, document=document))
        execution.record_index = str(response["_index"])
    except ConflictError as exc:  # a retried create whose first attempt was stored: the record is ours
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        found = error.get("index") if isinstance(error, dict) else None
        execution.record_index = found if isinstance(found, str) else None


def write_final(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution) -> Execution:
    """Write the finished record. A failed write is logged and noted on ``execution``, never raised; the
    ``running`` record written ahead then tells the next run that this one was interrupted."""
    document = execution.to_document()
    target = execution.record_index or index
    try:
        policy.call(lambda: es.index(index=target, id=execution.uuid, document=document))
    except (ApiError, TransportError) as exc:
        log.error("rule %s: could not write its execution record: %s", execution.rule_id, describe(exc))
        execution.errors.append(f"could not write the execution record: {describe(exc)}")
    return execution


def mark_interrupted(
    es: Elasticsearch, policy: RetryPolicy, index: str, record: RunningRecord, *, by: str, now: datetime
) -> bool:
    """Mark an abandoned run ``failed``; False when it changed since it was read (it finished, or another
    run marked it first)."""
    update = interrupted_update(now, by)
    try:
        policy.call(
            lambda: es.update(
                index=record.index or index,
                id=record.uuid,
                doc=update,
                if_seq_no=record.seq_no,
                if_primary_term=record.primary_term,
            )
        )
    except (ConflictError, NotFoundError):
        return False
    return True


def refresh(es: Elasticsearch, policy: RetryPolicy, index: str) -> None:
    """Make the records written so far searchable (best effort: the index refreshes on its own anyway)."""
    try:
        policy.call(lambda: es.indices.refresh(index=index, ignore_unavailable=True))
    except (ApiError, TransportError) as exc:
        log.warning("could not refresh %s: %s", index, describe(exc))
