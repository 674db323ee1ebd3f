"""The execution record of a rule run: written ahead, finished, or marked interrupted by a later run.

* :func:`write_ahead` creates the record with status ``running`` before anything is searched;
* :func:`write_final` overwrites it (same id, the execution uuid) with the final status;
* :func:`mark_interrupted` turns another run's abandoned ``running`` record into ``failed``, with the
  sequence number it was read with, so it never overwrites a run that finished in the meantime.

None of these writes waits for a refresh: :func:`refresh` makes a whole pass's records searchable at
its end (see :mod:`job.run.history` for what a run sees of a pass that was killed).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from job.errors import JobError
from job.jsoncodec import document_bytes
from job.run.deadletter import one_line
from job.run.execlog import Execution, interrupted_update
from job.run.history import RunningRecord
from job.run.retry import RetryPolicy, describe

log = logging.getLogger(__name__)


def write_ahead(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution) -> None:
    """Create the ``running`` record. Raises if it cannot be written: a run must not search unrecorded."""
    document = execution.to_document()
    # A 409 is a retried create whose first attempt was stored: the record is ours.
    with contextlib.suppress(ConflictError):
        policy.call(lambda: es.create(index=index, id=execution.uuid, document=document))


def write_final(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution) -> Execution:
    """Write the finished record. A failed write is logged and noted on ``execution``, never raised; the
    ``running`` record written ahead then tells the next run that this one was interrupted."""
    document = execution.to_document()
    try:
        policy.call(lambda: es.index(index=index, id=execution.uuid, document=document))
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
                index=index,
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


# Batched records: a pass writes the ``running`` records of many rule runs in one ``_bulk`` request (each
# item is that run's write-ahead: the run searches nothing unless its item was stored), and their final
# records in another. ``filter_path`` keeps the answers small; it also tells the two requests apart.


def write_ahead_many(
    es: Elasticsearch, policy: RetryPolicy, index: str, executions: Sequence[Execution]
) -> dict[str, JobError | None]:
    """Create the ``running`` records; per execution uuid, None when stored, else why not."""
    return _bulk_records(es, policy, index, "create", executions)


def write_final_many(es: Elasticsearch, policy: RetryPolicy, index: str, executions: Sequence[Execution]) -> None:
    """Write the finished records; a record not written is logged and noted on its execution, as by
    :func:`write_final`."""
    outcome = _bulk_records(es, policy, index, "index", executions)
    for execution in executions:
        problem = outcome[execution.uuid]
        if problem is not None:
            log.error("rule %s: could not write its execution record: %s", execution.rule_id, problem)
            execution.errors.append(f"could not write the execution record: {problem}")


class RecordNotWritten(JobError):
    """An execution record Elasticsearch did not store."""


def _bulk_records(
    es: Elasticsearch, policy: RetryPolicy, index: str, op: str, executions: Sequence[Execution]
) -> dict[str, JobError | None]:
    outcome: dict[str, JobError | None] = {}
    pending = list(executions)
    attempt = 0
    started = time.monotonic()
    while pending:
        attempt += 1
        lines: list[bytes] = []
        for execution in pending:
            lines.append(document_bytes({op: {"_id": execution.uuid}}))
            lines.append(document_bytes(execution.to_document()))
        try:
            response = policy.call(
                lambda lines=lines: es.bulk(  # type: ignore[misc]
                    index=index, operations=lines, filter_path=[f"items.{op}.status", f"items.{op}.error"]
                )
            )
        except (ApiError, TransportError) as exc:
            for execution in pending:
                outcome[execution.uuid] = RecordNotWritten(describe(exc))
            return outcome
        rejected: list[Execution] = []
        for execution, item in zip(pending, response["items"], strict=True):
            result = item[op]
            status = result.get("status", 500)
            # A 409 on create is a retried create whose first attempt was stored: the record is ours.
            if status < 300 or (op == "create" and status == 409):
                outcome[execution.uuid] = None
            elif status == 429 and attempt < policy.attempts and time.monotonic() - started < policy.max_seconds:
                rejected.append(execution)
            else:
                error = result.get("error") or {}
                kind = error.get("type", "unknown") if isinstance(error, dict) else "unknown"
                reason = error.get("reason", "") if isinstance(error, dict) else ""
                outcome[execution.uuid] = RecordNotWritten(f"HTTP {status} {kind}: {one_line(str(reason), 300)}")
        pending = rejected
        if pending:
            time.sleep(policy.backoff(attempt))
    return outcome
