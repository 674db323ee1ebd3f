"""One run's writer: would-be alerts in, written up to the run's cap through the shared steps of
:mod:`job.writing.writer`, with up to ``DETECTION_BULK_CONCURRENCY`` bulk requests in flight.

Each request carries about :data:`REQUEST_BYTES` of documents (the first holds :data:`FIRST_SLICE`
candidates, which tells the size of the run's alerts), so memory is bounded by what is in flight, never by
the window's size. The cap stays exact: units in flight count against it until their answer says how many
were created.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.config.settings import Settings
from job.writing.sink import ELASTICSEARCH, Sink
from job.writing.writer import Built, Candidate, RunWrites, build, dedupe, send

# Alerts per bulk request: about this many bytes (a page of 1,000 Endgame alerts is 17 MB), so requests in
# flight hold little memory and writing overlaps building at a finer grain; the first request of a run
# holds FIRST_SLICE candidates, which tells the size of its alerts.
REQUEST_BYTES = 4 * 1024 * 1024
FIRST_SLICE = 100


@dataclass
class AlertWriter:
    """One run's writer: new candidates in, written up to the cap, with requests in flight.

    Writes overlap with searching: up to ``DETECTION_BULK_CONCURRENCY`` requests are in flight while the next
    page is read and built. The cap stays exact: units in flight count against it until their answer says how
    many were created.
    """

    es: Elasticsearch
    policy: RetryPolicy
    settings: Settings
    run: RunWrites
    cap: int
    clock: Callable[[], datetime]
    sink: Sink = ELASTICSEARCH  # where it all goes: Elasticsearch, or preview's collector
    reserved: int = 0
    slice: int = FIRST_SLICE  # candidates per bulk request, adjusted to the size of their documents
    in_flight: deque[tuple[Future[None], Built]] = field(default_factory=deque)
    pool: ThreadPoolExecutor | None = None

    def new(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates that have neither an alert nor a dead-letter entry yet."""
        if not candidates:
            return []
        return dedupe(self.es, self.policy, self.settings, [(self.run, candidates)], self.sink)[0]

    @property
    def room(self) -> int:
        """Units the cap still allows, counting those in flight as created."""
        return self.cap - self.run.units - self.reserved

    def offer(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Write new candidates as far as the cap allows (waiting for answers in flight when it might be
        reached); the ones left over, in order."""
        rest = list(candidates)
        while rest:
            if self.room <= 0:
                if not self.in_flight:
                    break
                self.settle_oldest()  # units in flight that were not created give room back
                continue
            batch, rest = rest[: self.room], rest[self.room :]
            self.write(batch)
        return rest

    def write(self, batch: Sequence[Candidate]) -> None:
        """Build the batch here and send it, in requests of about :data:`REQUEST_BYTES`; the answers are awaited
        later (:meth:`settle_oldest`)."""
        start = 0
        while start < len(batch):
            part = batch[start : start + self.slice]
            start += len(part)
            self._write_part(part)

    def _write_part(self, candidates: Sequence[Candidate]) -> None:
        """A part is built only once fewer than ``DETECTION_BULK_CONCURRENCY`` are in flight, so at most that
        many requests' documents exist at once."""
        while len(self.in_flight) >= self.settings.bulk_concurrency:
            self.settle_oldest()
        built = build(self.run, candidates, self.clock())
        size = sum(len(write.body) for write in built.writes)
        if built.units:  # the next parts hold about REQUEST_BYTES of documents of this size
            self.slice = max(1, min(self.settings.page_size, REQUEST_BYTES * built.units // max(size, 1)))
        self.reserved += built.units
        if self.settings.bulk_concurrency <= 1:
            done: Future[None] = Future()
            try:
                send(self.es, self.policy, self.settings, [built], self.clock, self.sink)
                done.set_result(None)
            except BaseException as exc:  # noqa: BLE001 - raised where the answer is taken, as in a thread
                done.set_exception(exc)
            self.in_flight.append((done, built))
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.settings.bulk_concurrency, thread_name_prefix="bulk")
        # The worker logs with this rule's context (job.ops.logs keeps it in a ContextVar).
        context = contextvars.copy_context()
        future = self.pool.submit(
            context.run, send, self.es, self.policy, self.settings, [built], self.clock, self.sink
        )
        self.in_flight.append((future, built))

    def settle_oldest(self) -> None:
        """Wait for the oldest request in flight and count what it did; raises what writing it raised (its
        counts then hold only what was answered)."""
        future, built = self.in_flight.popleft()
        self.reserved -= built.units
        try:
            future.result()
        finally:
            built.merge()

    def settle_all(self) -> None:
        """Wait for every request in flight; the first error is raised once all have ended."""
        error: BaseException | None = None
        while self.in_flight:
            try:
                self.settle_oldest()
            except BaseException as exc:  # noqa: BLE001 - the others are still awaited and counted
                error = error or exc
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        if error is not None:
            raise error

    def refresh(self) -> None:
        """Make this run's alerts and dead letters visible to the next run's duplicate check."""
        stats = self.run.stats
        indices = [self.settings.alerts_index] if stats.created or stats.duplicates else []
        indices += [self.settings.dead_letter_index] if self.run.dead_lettered else []
        if indices:
            self.policy.call(lambda: self.es.indices.refresh(index=indices))
