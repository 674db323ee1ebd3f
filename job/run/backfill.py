"""A backfill: one rule over a past range, in the rule's own windows, oldest first.

The range ``[from, to]`` is cut into ``interval``-sized steps; each window covers its step plus the rule's
look-back before it (``from`` − ``to`` − ``interval``, as a scheduled run's window does), and the last
one ends at ``to``. Each window is one rule run (:func:`job.run.runner.run_rule` with that window): a
``running`` record first, the rule's cap, dedupe against every alert already written, a final record.
Those records carry ``execution.type: backfill``: the scheduled runs never plan from them
(:func:`job.execlog.history.kind_filter`), so a backfill never moves their ``searched_to`` or cadence.

A window is *done* when a completed backfill record of the rule has exactly its bounds and searched it
to its end (``succeeded``, or a ``partial failure`` that did not stop early: a window cut short by the
alerts cap or the run timeout is run again, and dedupe makes that write only what is missing). A rerun of
the same backfill skips the done windows, so a backfill that was killed resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.execlog.history import kind_filter
from job.rules.model import Rule
from job.window import Window, isoformat, look_back, parse_timestamp

# More windows than this is a mistake (a year of 5-minute windows is about 105,000).
MAX_WINDOWS = 200_000
PAGE = 5000


def backfill_windows(rule: Rule, start: datetime, end: datetime) -> list[Window]:
    """The windows of a backfill of ``rule`` over ``[start, end]`` (``start`` before ``end``), oldest first."""
    interval = rule.interval_delta
    overlap = look_back(rule, start)
    count = math.ceil((end - start) / interval)
    return [Window(start + step * interval - overlap, min(start + (step + 1) * interval, end)) for step in range(count)]


def window_count(rule: Rule, start: datetime, end: datetime) -> int:
    """How many windows :func:`backfill_windows` makes, without making them."""
    return math.ceil((end - start) / rule.interval_delta)


def _time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def done_windows(
    es: Elasticsearch, policy: RetryPolicy, index: str, rule_id: str, space_id: str, windows: Sequence[Window]
) -> set[Window]:
    """The ``windows`` that completed backfill records of the rule searched to their end."""
    if not windows:
        return set()
    wanted = set(windows)
    query = {
        "bool": {
            "filter": [
                {"term": {"rule.rule_id": rule_id}},
                {"term": {"space_id": space_id}},
                {"terms": {"execution.status": ["succeeded", "partial failure"]}},
                {"range": {"window.from": {"gte": isoformat(windows[0].start), "lte": isoformat(windows[-1].start)}}},
                kind_filter(True),
            ]
        }
    }
    done: set[Window] = set()
    after: list[Any] | None = None
    while True:
        response = policy.call(
            lambda after=after: es.search(  # type: ignore[misc]
                index=index,
                query=query,
                size=PAGE,
                sort=[{"window.from": "asc"}, {"execution.uuid": "asc"}],
                search_after=after,
                source_includes=["window.from", "window.to", "window.searched_to"],
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        )
        hits = response["hits"]["hits"]
        for hit in hits:
            window = (hit.get("_source") or {}).get("window") or {}
            start, end, searched_to = (_time(window.get(key)) for key in ("from", "to", "searched_to"))
            if start is None or end is None or searched_to is None or searched_to < end:
                continue
            if Window(start, end) in wanted:
                done.add(Window(start, end))
        if len(hits) < PAGE:
            return done
        after = hits[-1]["sort"]
