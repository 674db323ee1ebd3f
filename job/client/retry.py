"""Retries of transient Elasticsearch errors: connection errors, timeouts, 429 and 502/503/504.

Exponential backoff with jitter, bounded both in attempts and in total time. The client's own
retries are off (``job.client.esclient``) so the two layers never multiply.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from elasticsearch import ApiError, ConnectionError, ConnectionTimeout
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from job.client.eserrors import describe as describe  # one line per error, with Elasticsearch's reason
from job.config.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """True for errors worth trying again: the cluster is busy, restarting or unreachable for a moment."""
    if isinstance(exc, ConnectionError | ConnectionTimeout):
        return True
    return isinstance(exc, ApiError) and exc.meta.status in TRANSIENT_STATUSES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    max_seconds: float = 120.0
    initial_wait: float = 0.5
    max_wait: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)

    def _log(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "transient Elasticsearch error (attempt %d of %d), retrying in %.1fs: %s",
            state.attempt_number,
            self.attempts,
            wait,
            describe(exc),
        )

    def retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_seconds),
            wait=wait_exponential_jitter(multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait),
            before_sleep=self._log,
            reraise=True,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with jitter."""
        exponential: float = self.initial_wait * 2.0 ** (attempt - 1)
        return min(self.max_wait, exponential) + random.uniform(0, self.initial_wait)

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` until it succeeds, fails permanently, or the attempts/time run out."""
        result: T = self.retrying()(fn)
        return result
