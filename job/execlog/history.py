"""What the execution log says about each rule of a pass, read with one request for all of them.

Per rule (and space) the job needs:

* ``searched_to``: the furthest point up to which a completed run searched everything;
* ``completed_from``: the earliest point completed runs vouch for (searched, or reported as a gap);
* ``unfinished_from``: the earliest window start of runs that never completed (``running`` or
  ``failed``, so without ``searched_to``);
* the ``running`` records, with the sequence numbers needed to mark abandoned ones ``failed`` without
  ever overwriting a run that just finished;
* the state its type kept (:class:`job.execlog.execution.TypeState`), when the next run can trust it: the latest
  run (by start) ended without error, kept a state, and saw everything the runs before it wrote, because none
  of them was still running when it started. That holds when no record is ``running`` and no other record
  (scheduled or backfill) ended after the latest one started (a run marked interrupted counts as ending when
  it was marked). Otherwise the state is None, and the type rebuilds what it needs (a threshold rule reads its
  signal history from the alerts index, as on its first run).

A range that an unfinished run meant to search and that starts before anything a completed run
covered is *uncovered*: the next window starts there (see :func:`job.window.plan_window`). That
repairs a rule's killed first run, and two first runs that started so close together that neither
saw the other's record.

The search sees what the executions index has refreshed: the records of a finished pass are
refreshed at its end (see :func:`job.run.runner.run_rules`); those of a killed pass become visible
within the index's refresh interval (1 s by default). A run that reads the log before then plans as
if the killed run had not started: its window may start later than the killed run's, but the
uncovered range stays in the log and the next run that sees it searches it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.execlog.execution import BACKFILL, TypeState
from job.execlog.lease import Runner
from job.window import parse_timestamp

log = logging.getLogger(__name__)

RULES_PER_REQUEST = 500
RUNNING_PER_RULE = 20  # abandoned records beyond these are marked by later runs


@dataclass(frozen=True, slots=True)
class RunningRecord:
    """A ``running`` record of some earlier or concurrent run."""

    uuid: str
    seq_no: int
    primary_term: int
    lease_expires: datetime | None
    runner: Runner | None
    index: str | None = None  # the concrete index holding it (the execution log is a rollover alias)


@dataclass(frozen=True, slots=True)
class RuleHistory:
    searched_to: datetime | None = None
    completed_from: datetime | None = None
    unfinished_from: datetime | None = None
    running: tuple[RunningRecord, ...] = ()
    state: TypeState | None = None  # what the latest run kept for its type, when it can be trusted

    @property
    def uncovered_from(self) -> datetime | None:
        """The start of a range some run began and no completed run covered, if there is one."""
        if self.unfinished_from is None:
            return None
        if self.completed_from is not None and self.completed_from <= self.unfinished_from:
            return None
        return self.unfinished_from


def plan_aggregations() -> dict[str, Any]:
    """Per rule, what planning reads (under a bucket of the rule's records): see :func:`plan_history`."""
    no_searched_to = {"bool": {"must_not": [{"exists": {"field": "window.searched_to"}}]}}
    return {
        "searched_to": {"max": {"field": "window.searched_to"}},
        "completed": {
            "filter": {"exists": {"field": "window.searched_to"}},
            "aggs": {
                "covered_from": {"min": {"field": "window.covered_from"}},
                "from": {"min": {"field": "window.from"}},  # records written before covered_from
            },
        },
        "unfinished": {"filter": no_searched_to, "aggs": {"from": {"min": {"field": "window.from"}}}},
        "running": {
            "filter": {"term": {"execution.status": "running"}},
            "aggs": {
                "records": {
                    "top_hits": {
                        "size": RUNNING_PER_RULE,
                        "sort": [{"execution.start": {"order": "asc"}}],
                        "seq_no_primary_term": True,
                        "_source": {
                            "includes": [
                                "execution.uuid",
                                "execution.lease_expires",
                                "execution.host",
                                "execution.pid",
                            ]
                        },
                    }
                }
            },
        },
        "latest": _top(1, "execution.start", ["execution.uuid", "execution.start", "execution.status", "type_state"]),
    }


def trust_aggregations() -> dict[str, Any]:
    """Per rule, over all its records (scheduled and backfill): the two that ended last, which tell whether the
    latest run saw the others' writes (:func:`plan_history`)."""
    return {"last_ended": _top(2, "execution.end", ["execution.uuid", "execution.end"])}


def _top(size: int, field: str, includes: list[str]) -> dict[str, Any]:
    """The ``size`` records latest by ``field`` (records without it last)."""
    sort = [{field: {"order": "desc", "missing": "_last", "unmapped_type": "date"}}]
    return {"top_hits": {"size": size, "sort": sort, "_source": {"includes": includes}}}


def _aggregations(rule_count: int, kind: dict[str, Any]) -> dict[str, Any]:
    aggregations = {"kind": {"filter": kind, "aggs": plan_aggregations()}, **trust_aggregations()}
    return {"rules": {"terms": {"field": "rule.rule_id", "size": rule_count}, "aggs": aggregations}}


def _time(aggregation: Mapping[str, Any] | None) -> datetime | None:
    text = aggregation.get("value_as_string") if isinstance(aggregation, Mapping) else None
    try:
        return parse_timestamp(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def _running_record(hit: Mapping[str, Any]) -> RunningRecord | None:
    execution = (hit.get("_source") or {}).get("execution") or {}
    host, pid, lease = execution.get("host"), execution.get("pid"), execution.get("lease_expires")
    try:
        lease_expires = parse_timestamp(lease) if isinstance(lease, str) else None
    except ValueError:
        lease_expires = None
    runner = Runner(host, pid) if isinstance(host, str) and isinstance(pid, int) else None
    if not isinstance(hit.get("_seq_no"), int) or not isinstance(hit.get("_primary_term"), int):
        return None
    index = hit.get("_index")
    return RunningRecord(
        str(hit["_id"]),
        hit["_seq_no"],
        hit["_primary_term"],
        lease_expires,
        runner,
        index if isinstance(index, str) else None,
    )


def plan_history(bucket: Mapping[str, Any], every: Mapping[str, Any]) -> RuleHistory:
    """A rule's history from its bucket of :func:`plan_aggregations` and its bucket of all its records with
    :func:`trust_aggregations`."""
    completed = bucket.get("completed", {})
    running_hits = bucket.get("running", {}).get("records", {}).get("hits", {}).get("hits", [])
    running = tuple(record for record in map(_running_record, running_hits) if record is not None)
    return RuleHistory(
        searched_to=_time(bucket.get("searched_to")),
        completed_from=_earliest(_time(completed.get("covered_from")), _time(completed.get("from"))),
        unfinished_from=_time(bucket.get("unfinished", {}).get("from")),
        running=running,
        state=None if running else _trusted_state(_hits(bucket.get("latest")), _hits(every.get("last_ended"))),
    )


def _hits(aggregation: Any) -> list[Mapping[str, Any]]:
    hits = aggregation.get("hits", {}).get("hits", []) if isinstance(aggregation, Mapping) else []
    return [hit.get("_source") or {} for hit in hits if isinstance(hit, Mapping)]


def _execution(source: Mapping[str, Any], key: str) -> Any:
    execution = source.get("execution")
    return execution.get(key) if isinstance(execution, Mapping) else None


def _moment(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _trusted_state(latest: Sequence[Mapping[str, Any]], last_ended: Sequence[Mapping[str, Any]]) -> TypeState | None:
    """The latest run's state, when it ended without error and no other run was in flight when it started: it
    is also the run that ended last, and the one that ended before it did so before it started."""
    if not latest or _execution(latest[0], "status") not in ("succeeded", "partial failure"):
        return None
    uuid, start = _execution(latest[0], "uuid"), _moment(_execution(latest[0], "start"))
    if start is None or not last_ended or _execution(last_ended[0], "uuid") != uuid:
        return None
    if len(last_ended) > 1:
        before = _moment(_execution(last_ended[1], "end"))
        if before is None or before > start:
            return None
    return TypeState.from_document(latest[0].get("type_state"))


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def kind_filter(backfill: bool) -> dict[str, Any]:
    """The records of scheduled runs (``backfill`` False: also records written before ``execution.type`` existed),
    or those of backfill windows. Backfills never move the scheduled runs' windows or cadence."""
    clause = {"term": {"execution.type": BACKFILL}}
    return {"bool": {"filter": [clause]}} if backfill else {"bool": {"must_not": [clause]}}


def read_histories(
    es: Elasticsearch,
    policy: RetryPolicy,
    index: str,
    rule_ids: Iterable[str],
    space_id: str,
    *,
    backfill: bool = False,
) -> dict[str, RuleHistory]:
    """The history of every rule in ``rule_ids`` (one search per 500 rules); rules never run are absent.

    Only scheduled runs' records count, or with ``backfill`` only backfill windows' (whose ``running`` records
    a backfill marks when abandoned)."""
    unique = sorted(set(rule_ids))
    histories: dict[str, RuleHistory] = {}
    for chunk in _chunks(unique, RULES_PER_REQUEST):
        filters = [{"terms": {"rule.rule_id": chunk}}, {"term": {"space_id": space_id}}]
        response = policy.call(
            lambda filters=filters, chunk=chunk: es.search(  # type: ignore[misc]
                index=index,
                size=0,
                query={"bool": {"filter": filters}},
                aggs=_aggregations(len(chunk), kind_filter(backfill)),
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        )
        buckets = (response.body.get("aggregations") or {}).get("rules", {}).get("buckets", [])
        for bucket in buckets:
            if (bucket.get("kind") or {}).get("doc_count"):  # rules with records of the other kind only are absent
                histories[str(bucket["key"])] = plan_history(bucket["kind"], bucket)
    return histories
