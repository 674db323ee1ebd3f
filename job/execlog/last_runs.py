"""Reads the execution log back for operators and for due-ness: per rule, its newest record, newest completed
record and last success. Only scheduled runs count for these (a backfill never makes a rule look run or due);
the newest backfill window is read beside them, for ``status`` to show. A pass that chooses the rules that are
due reads in the same request what planning needs (:mod:`job.execlog.history`), so it reads the log once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.execlog.history import RuleHistory, kind_filter, plan_aggregations, plan_history, trust_aggregations

COMPLETED = ("succeeded", "partial failure", "failed")
SUCCESSFUL = ("succeeded", "partial failure")  # the rule searched its window
# Rules per request: one terms bucket each, well under the search.max_buckets default.
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class LastRuns:
    latest: dict[str, Any] | None  # the newest record, whatever its status (``running`` included)
    completed: dict[str, Any] | None  # the newest record of a finished execution
    last_success: datetime | None  # the end of the newest succeeded or partial-failure execution
    # The newest record of an execution that ended by itself: one a later run found interrupted and
    # marked failed did not finish its work, so the rule's cadence does not count from it.
    finished: dict[str, Any] | None = None
    last_backfill: dict[str, Any] | None = None  # the newest backfill window's record (shown, never planned from)
    history: RuleHistory | None = None  # what planning reads, when asked for


NEVER_RAN = LastRuns(None, None, None)


def _top(bucket: dict[str, Any]) -> dict[str, Any] | None:
    hits = bucket["hits"]["hits"]
    return dict(hits[0]["_source"]) if hits else None


def _newest_first() -> dict[str, Any]:
    return {"size": 1, "sort": [{"execution.start": {"order": "desc"}}, {"@timestamp": {"order": "desc"}}]}


def _scheduled_aggregations() -> dict[str, Any]:
    completed = {"terms": {"execution.status": list(COMPLETED)}}
    return {
        "latest": {"top_hits": _newest_first()},
        "completed": {"filter": completed, "aggs": {"latest": {"top_hits": _newest_first()}}},
        "finished": {
            "filter": {
                "bool": {"filter": [completed], "must_not": [{"exists": {"field": "execution.interrupted_by"}}]}
            },
            "aggs": {"latest": {"top_hits": _newest_first()}},
        },
        "success": {
            "filter": {"terms": {"execution.status": list(SUCCESSFUL)}},
            "aggs": {"end": {"max": {"field": "execution.end"}}},
        },
    }


def last_runs(
    es: Elasticsearch,
    policy: RetryPolicy,
    index: str,
    rule_ids: Sequence[str],
    space_id: str,
    *,
    with_history: bool = False,
) -> dict[str, LastRuns]:
    """The last runs of each rule in ``rule_ids`` that has one (one search per thousand rules); with
    ``with_history``, also what planning reads of each (``LastRuns.history``)."""
    aggregations = _scheduled_aggregations()
    if with_history:
        aggregations["history"] = {"filter": {"match_all": {}}, "aggs": plan_aggregations()}
    found: dict[str, LastRuns] = {}
    for start in range(0, len(rule_ids), CHUNK):
        chunk = list(rule_ids[start : start + CHUNK])
        response = policy.call(
            lambda chunk=chunk: es.search(  # type: ignore[misc]
                index=index,
                size=0,
                query={"bool": {"filter": [{"terms": {"rule.rule_id": chunk}}, {"term": {"space_id": space_id}}]}},
                aggs={
                    "rules": {
                        "terms": {"field": "rule.rule_id", "size": len(chunk)},
                        "aggs": {
                            "scheduled": {"filter": kind_filter(False), "aggs": aggregations},
                            "backfill": {
                                "filter": kind_filter(True),
                                "aggs": {"latest": {"top_hits": _newest_first()}},
                            },
                            **(trust_aggregations() if with_history else {}),
                        },
                    }
                },
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        )
        for bucket in response.get("aggregations", {}).get("rules", {}).get("buckets", []):
            scheduled = bucket["scheduled"]
            if not scheduled["doc_count"] and not bucket["backfill"]["doc_count"]:
                continue
            success = scheduled["success"]["end"].get("value")
            found[str(bucket["key"])] = LastRuns(
                latest=_top(scheduled["latest"]),
                completed=_top(scheduled["completed"]["latest"]),
                last_success=datetime.fromtimestamp(success / 1000, tz=UTC) if success is not None else None,
                finished=_top(scheduled["finished"]["latest"]),
                last_backfill=_top(bucket["backfill"]["latest"]),
                history=plan_history(scheduled["history"], bucket) if with_history else None,
            )
    return found
