"""Write a rule run's execution record (one document per run, id = the execution uuid)."""

from __future__ import annotations

import logging

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.run import execlog
from job.run.execlog import Execution
from job.run.retry import RetryPolicy, describe

log = logging.getLogger(__name__)


def write_final(es: Elasticsearch, policy: RetryPolicy, index: str, execution: Execution) -> Execution:
    """Write the finished record. A failed write is logged and noted on ``execution``, never raised."""
    try:
        execlog.write(es, policy, index, execution)
    except (ApiError, TransportError) as exc:
        log.error("rule %s: could not write its execution record: %s", execution.rule_id, describe(exc))
        execution.errors.append(f"could not write the execution record: {describe(exc)}")
    return execution
