"""One window of a threshold rule, with the search injected: the would-be alerts, and the history to keep.

``search`` takes a request body and returns the search response (the run path sends it to the rule's index
patterns with ``ignore_unavailable``/``allow_no_indices``, as every rule search); nothing else here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from job.rules.aggregation_params import ThresholdParams
from job.ruletypes.aggsearch import EventQuery, WouldBeAlert
from job.ruletypes.threshold.alerts import would_be_alerts
from job.ruletypes.threshold.history import SignalHistory
from job.ruletypes.threshold.search import PAGE_SIZE, Search, ThresholdBucket, find_buckets
from job.window import Window


@dataclass(frozen=True, slots=True)
class ThresholdWindow:
    """What one window found: the alerts (in composite order, at most ``max_signals``), their buckets (same
    order), the number of searches, Kibana's max-signals warning if more buckets passed, and the history the
    search excluded (the entries still in force; add the buckets whose alerts were written or already existed,
    :meth:`SignalHistory.with_buckets`, and keep it)."""

    alerts: tuple[WouldBeAlert, ...]
    buckets: tuple[ThresholdBucket, ...]
    searches: int
    warning: str | None
    history: SignalHistory


def execute_window(
    search: Search,
    params: ThresholdParams,
    query: EventQuery,
    window: Window,
    history: SignalHistory,
    *,
    max_signals: int,
    index_patterns: Sequence[str],
    rule_id: str,
    space_id: str,
    started_at: datetime,
    suppressing: bool = False,
    page_size: int = PAGE_SIZE,
) -> ThresholdWindow:
    """Search ``window`` for buckets over the threshold, minus the events ``history`` says were counted, and
    turn them into would-be alerts."""
    in_force = history.for_window(window)
    body_query = query.for_window(window, must_not=in_force.exclusions(query.timestamps))
    found = find_buckets(search, params, body_query, query.timestamps, max_signals=max_signals, page_size=page_size)
    alerts = would_be_alerts(
        found.buckets,
        params,
        index_patterns=index_patterns,
        rule_id=rule_id,
        space_id=space_id,
        started_at=started_at,
        window=window,
        suppressing=suppressing,
    )
    return ThresholdWindow(tuple(alerts), found.buckets, found.searches, found.warning, in_force)
