"""An ES|QL query run on Elasticsearch within the run's deadline, and the events behind its rows fetched.

Kibana (8.19 and 9.x) sends ``POST /_query/async`` and, while the answer says ``is_running``, polls
``GET /_query/async/<id>``, asking ``shouldStopExecution()`` before each poll; it deletes the query
(``DELETE /_query/async/<id>``) when an id came back. Here the same calls, each one bounded:

* every request's client timeout and ``wait_for_completion_timeout`` end before the run's deadline
  (``RunTools.deadline``: when its lease says stop searching), and a poll waits at most :data:`POLL_SECONDS`,
  so a stop (SIGTERM, the lease) is seen within seconds rather than after Kibana's 4 minutes;
* ``keep_alive`` is the time left (at least a minute), so a query this job forgot (a killed pod) does not
  outlive the run by more than that;
* at the deadline, or on a stop, the query is deleted (which cancels it) and the run ends with Kibana's
  ``Rule execution cancelled due to timeout`` (or the stop's own error); the delete gets
  :data:`DELETE_SECONDS` and is not waited for beyond that (a query Elasticsearch cannot cancel, such as
  ``CATEGORIZE`` on a node without machine learning, never confirms its cancellation);
* a transient error (connection, 429, 5xx) is tried again after the retry policy's back-off, but never past
  the deadline.

A refusal (a syntax error, an unknown column, ...) is :class:`EsqlQueryError`, whose message is
Elasticsearch's reason on one line.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from elasticsearch import ApiError, Elasticsearch

from job import stop
from job.client.retry import RetryPolicy, describe, is_transient
from job.errors import JobError
from job.ruletypes.esql import errors
from job.ruletypes.esql.request import ASYNC_PATH, EsqlRequest, source_fetch_body
from job.ruletypes.esql.response import EsqlResult, parse_response
from job.ruletypes.esql.sources import FetchedEvent, fetched_events

log = logging.getLogger(__name__)
T = TypeVar("T")

# Elasticsearch's "compatible with 8" media type: the same answers from an 8.19 and a 9.x cluster.
HEADERS = {
    "accept": "application/vnd.elasticsearch+json; compatible-with=8",
    "content-type": "application/vnd.elasticsearch+json; compatible-with=8",
}
POLL_SECONDS = 5.0  # the longest a submit or a poll waits for the query before asking whether to stop
ANSWER_SECONDS = 10.0  # what a request is given beyond its wait to answer
MIN_CALL_SECONDS = 0.5  # a call with less time left than this is not made
DELETE_SECONDS = 1.0  # kept before the deadline for deleting a query given up on
MIN_KEEP_ALIVE_SECONDS = 60


class EsqlQueryError(JobError):
    """Elasticsearch refused the query; the message is its reason on one line (Kibana's full text: ``full``)."""

    def __init__(self, body: Any, status: int | None = None) -> None:
        self.body = body
        self.status = status
        self.full = errors.error_message(body)
        super().__init__(errors.reason(body))


class EsqlCancelled(JobError):
    """The run's deadline came before the query's answer."""

    def __init__(self) -> None:
        super().__init__(errors.CANCELLED_MESSAGE)


@dataclass
class Engine:
    """One run's calls to Elasticsearch for its ES|QL query, all ending by ``deadline`` (None: no limit)."""

    es: Elasticsearch
    policy: RetryPolicy
    clock: Callable[[], datetime]
    deadline: datetime | None
    should_stop: Callable[[], bool] = lambda: False
    request_timeout: float = 30.0
    search_ms: float = 0.0

    def left(self) -> float:
        """Seconds until the engine must be done (infinite without a deadline): the deadline less the time
        kept for deleting a query it gives up on."""
        if self.deadline is None:
            return math.inf
        return (self.deadline - self.clock()).total_seconds() - DELETE_SECONDS

    def _budget(self, wait: float) -> tuple[float, float]:
        """(how long Elasticsearch may wait for the query, the request's client timeout) for a call now."""
        left = self.left()
        if left < MIN_CALL_SECONDS:  # too little time for an answer: the deadline has come
            raise EsqlCancelled()
        answer = min(ANSWER_SECONDS, left / 2)
        wait = max(0.0, min(wait, left - answer))
        return wait, wait + answer

    def _attempts(self, call: Callable[[], T], *, polling: bool = False) -> T:
        """``call`` until it answers, tried again after a transient error as the retry policy says, but never
        past the deadline; searching time is counted. ``polling``: a poll of a kept query, which may come
        before Elasticsearch has stored it (its ``.async-search`` index does not exist yet: tried again)."""
        started = time.monotonic()
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    return call()
                except ApiError as exc:
                    if not is_transient(exc) and not (polling and _not_stored_yet(exc)):
                        raise EsqlQueryError(exc.body, exc.meta.status) from None
                    problem: Exception = exc
                    retry = True
                except Exception as exc:  # noqa: BLE001 - only transient ones are tried again
                    problem, retry = exc, is_transient(exc)
                pause = self.policy.backoff(attempt)
                if not retry or attempt >= self.policy.attempts:
                    raise problem
                if pause >= self.left():  # the deadline, not the error, ends the query
                    raise EsqlCancelled() from problem
                log.warning(
                    "transient Elasticsearch error (attempt %d), retrying in %.1fs: %s",
                    attempt,
                    pause,
                    describe(problem),
                )
                time.sleep(pause)
        finally:
            self.search_ms += (time.monotonic() - started) * 1000

    def query(self, request: EsqlRequest) -> EsqlResult:
        """The answer to ``request``, polled until done; the query is deleted if Elasticsearch kept it."""

        def submit() -> Any:
            wait, timeout = self._budget(POLL_SECONDS)
            body = {**request.body, "wait_for_completion_timeout": _millis(wait), "keep_alive": self._keep_alive()}
            return self.es.options(request_timeout=timeout).perform_request(
                "POST", request.path, params=request.params, headers=HEADERS, body=body
            )

        result = parse_response(self._attempts(submit).body)
        query_id = result.query_id
        try:
            while result.running:
                assert query_id is not None
                if self.should_stop():
                    stop.check()
                    raise EsqlCancelled()
                result = self._poll(query_id)
            return result
        finally:
            if query_id is not None:
                self._delete(query_id)

    def _poll(self, query_id: str) -> EsqlResult:
        def poll() -> Any:
            wait, timeout = self._budget(POLL_SECONDS)
            return self.es.options(request_timeout=timeout).perform_request(
                "GET",
                f"{ASYNC_PATH}/{query_id}",
                params={"wait_for_completion_timeout": _millis(wait)},
                headers=HEADERS,
            )

        return parse_response(self._attempts(poll, polling=True).body)

    def _delete(self, query_id: str) -> None:
        """Delete (and so cancel) a kept query. Elasticsearch marks it cancelled at once but answers only once it
        has stopped, which a query it cannot interrupt never does: one attempt of :data:`DELETE_SECONDS`, a
        failure only logged."""
        try:
            self.es.options(request_timeout=DELETE_SECONDS, ignore_status=404).perform_request(
                "DELETE", f"{ASYNC_PATH}/{query_id}", headers=HEADERS
            )
        except Exception as exc:  # noqa: BLE001 - the query is cancelled, or expires with its keep_alive
            log.warning("the ES|QL query %s was not confirmed deleted: %s", query_id, describe(exc))

    def _keep_alive(self) -> str:
        left = self.left()
        seconds = MIN_KEEP_ALIVE_SECONDS if math.isinf(left) else max(MIN_KEEP_ALIVE_SECONDS, math.ceil(left))
        return f"{seconds}s"

    def fetch(
        self, indices: Sequence[str], ids: Sequence[str], runtime_mappings: Mapping[str, Any] | None = None
    ) -> dict[str, list[FetchedEvent]]:
        """The events with these ids in the FROM indices (by ``_id``), one ``_search`` within the deadline."""
        if not ids:
            return {}
        body = source_fetch_body(ids, runtime_mappings)

        def search() -> Any:
            timeout = min(self.request_timeout, max(self.left(), 0.001))
            return self.es.options(request_timeout=timeout).search(
                index=list(indices), ignore_unavailable=True, allow_no_indices=True, **body
            )

        if self.left() <= 0:
            raise EsqlCancelled()
        return fetched_events(self._attempts(search).body)


def _not_stored_yet(exc: ApiError) -> bool:
    """A poll answered before Elasticsearch created the index that keeps async results."""
    return exc.meta.status == 404 and "index_not_found_exception" in str(exc.body) and ".async-search" in str(exc.body)


def _millis(seconds: float) -> str:
    return f"{max(0, int(seconds * 1000))}ms"
