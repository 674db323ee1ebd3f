"""The searches of the aggregating rule types (threshold, new terms): a request body in, the response out,
counted and timed for the run's metrics.

Every search refuses partial results (an aggregation over some shards only would count too little, and a
run that counts too little can miss a group or call an old term new); the rule's indices may vanish
between its preflight and its searches (``ignore_unavailable``, ``allow_no_indices``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy


@dataclass
class Searcher:
    """Searches of ``index`` through the retry policy; ``searches`` and ``search_ms`` add up what they took."""

    es: Elasticsearch
    policy: RetryPolicy
    index: Sequence[str]
    searches: int = 0
    search_ms: float = 0.0

    def __call__(self, body: dict[str, Any]) -> Mapping[str, Any]:
        started = time.monotonic()
        try:
            response = self.policy.call(
                lambda: self.es.search(
                    index=list(self.index),
                    body=body,
                    ignore_unavailable=True,
                    allow_no_indices=True,
                    allow_partial_search_results=False,
                )
            )
        finally:
            self.searches += 1
            self.search_ms += (time.monotonic() - started) * 1000
        return dict(response.body)
