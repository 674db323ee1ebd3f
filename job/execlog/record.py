"""The execution record of a rule run: written ahead, finished, or marked interrupted by a later run.

* :func:`write_ahead` creates the record with status ``running`` before anything is searched;
* :func:`write_final` overwrites it (same id, the execution uuid) with the final status;
* :func:`mark_interrupted` turns another run's abandoned ``running`` record into ``failed``, with the
  sequence number it was read with, so it never overwrites a run that finished in the meantime.

The execution log is a rollover alias: the record is created through it (in its write index), and the
final write and the marking go to the concrete index that holds the ``running`` record, so a rollover
in between never leaves a second document with the same id.

None of these writes waits for a refresh: :func:`refresh` makes a whole pass's records searchable at
its end (see :mod:`job.execlog.history` for what a run sees of a pass that was killed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from job.client.retry import RetryPolicy, describe
from job.errors import JobError
from job.execlog.execution import Execution, interrupted_update
from job.execlog.history import RunningRecord
from job.text.jsoncodec import document_bytes
from job.window import isoformat
from job.writing import bulk

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


def renew_lease(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution, now: datetime) -> None:
    """Start the run's lease again at ``now`` (a run of a batch that starts after its batch did): its record's
    ``lease_expires`` moves, so no other run takes it for abandoned while it still has its whole lease. A
    lease that cannot be renewed is kept, with a warning (the run then stops searching as that lease says)."""
    if execution.lease_expires is None or execution.runner is None:
        return
    lease_expires = now + (execution.lease_expires - execution.start)
    if lease_expires <= execution.lease_expires:
        return
    update = {"execution": {"lease_expires": isoformat(lease_expires)}}
    try:
        policy.call(lambda: es.update(index=execution.record_index or index, id=execution.uuid, doc=update))
    except (ApiError, TransportError) as exc:
        execution.warnings.append(f"could not renew the run's lease in its execution record: {describe(exc)}")
        return
    execution.lease_expires = lease_expires


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


# Batched records: a pass writes the ``running`` records of many rule runs in one ``_bulk`` request (each
# item is that run's write-ahead: the run searches nothing unless its item was stored), and their final
# records in another. ``filter_path`` keeps the answers small; it also tells the two requests apart. As
# with one record, each final record goes to the concrete index its ``running`` record was stored in.


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
    items: list[bulk.Item] = []
    for execution in executions:
        action = {"_id": execution.uuid}
        if op == "index" and execution.record_index is not None:
            action["_index"] = execution.record_index
        items.append(bulk.Item(document_bytes({op: action}), document_bytes(execution.to_document())))
    try:
        answers = bulk.send(es, policy, items, index=index, op=op)
    except (ApiError, TransportError) as exc:
        return {execution.uuid: RecordNotWritten(describe(exc)) for execution in executions}
    outcome: dict[str, JobError | None] = {}
    for execution, answer in zip(executions, answers, strict=True):
        # A 409 on create is a retried create whose first attempt was stored: the record is ours.
        if answer.status < 300 or (op == "create" and answer.status == 409):
            outcome[execution.uuid] = None
            if op == "create":  # a 409's error names the index that holds the record too
                execution.record_index = answer.index
        else:
            outcome[execution.uuid] = RecordNotWritten(answer.line)
    return outcome
