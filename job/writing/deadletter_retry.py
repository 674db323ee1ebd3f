"""Re-attempt dead-lettered events: fetch each event again, build its alert with the current rule file,
create it, and delete the entry once the alert exists (also when it already existed).

An entry that still fails keeps its place, with the new reason and time, and is reported. The entry of an
EQL sequence (filed under its first event) is not rebuilt from that one event: the rule's next run over
the sequence's time (a backfill) finds the sequence again and writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.client.retry import RetryPolicy
from job.eql import is_sequence
from job.rules.model import EqlRule, Rule
from job.writing import deadletter
from job.writing.bulk import AlertWrite, WriteStats, bulk_create
from job.writing.deadletter import DeadLetter
from job.writing.writer import build_writes

CHUNK = 200
# The rule types whose dead-lettered alert is the ordinary alert of the one event an entry names (for EQL, an
# event query's; a sequence's alerts are checked below). A threshold group's alert is built from a synthetic
# event, a new term's carries the term: their entries stay, listed.
RETRIED_TYPES = frozenset({"query", "eql"})


def not_retried(rule_type: str) -> str:
    return f"deadletter retry rebuilds one event's alert; a {rule_type} rule's alert is not one (the entry stays)"


SEQUENCE_NOT_RETRIED = (
    "the alerts of an EQL sequence are not rebuilt from one event: run the rule again over the event's time "
    "(detection-job backfill), which writes the sequence"
)


@dataclass
class RetryReport:
    created: int = 0  # alerts created now
    existed: int = 0  # alerts that already existed (the entry was stale)
    failing: list[DeadLetter] = field(default_factory=list)  # entries still failing, with their new reason


def _fetch(es: Elasticsearch, policy: RetryPolicy, letters: Sequence[DeadLetter]) -> list[dict[str, Any] | None]:
    """The events of these entries, as search hits (None where an event no longer exists)."""
    if not letters:  # Elasticsearch refuses an mget of no documents
        return []
    docs = [{"_index": letter.event_index, "_id": letter.event_id} for letter in letters]
    response = policy.call(lambda: es.mget(docs=docs))
    return [doc if doc.get("found") else None for doc in response["docs"]]


def _attempt(
    es: Elasticsearch,
    policy: RetryPolicy,
    alias: str,
    letters: Sequence[DeadLetter],
    rules: Mapping[str, Rule],
    now: datetime,
    report: RetryReport,
) -> tuple[list[str], list[DeadLetter]]:
    """Try one chunk; the entry ids to delete and the entries still failing."""
    writes: list[AlertWrite] = []
    by_id: dict[str, DeadLetter] = {}
    failing: list[DeadLetter] = []
    retried = []
    for letter in letters:
        rule = rules.get(letter.rule_id)
        if rule is not None and rule.type not in RETRIED_TYPES:
            failing.append(replace(letter, reason=not_retried(rule.type), time=now))
        else:
            retried.append(letter)
    letters = retried
    for letter, hit in zip(letters, _fetch(es, policy, letters), strict=True):
        rule = rules.get(letter.rule_id)
        if rule is None:
            failing.append(replace(letter, reason="the rule is not in DETECTION_RULES_DIR", time=now))
            continue
        if hit is None:
            failing.append(replace(letter, reason="the event no longer exists", time=now))
            continue
        if isinstance(rule, EqlRule) and is_sequence(rule.query):
            failing.append(replace(letter, reason=SEQUENCE_NOT_RETRIED, time=now))
            continue
        built, failed = build_writes(
            rule, [(letter.id, hit)], now=now, execution_uuid=letter.execution_uuid, space_id=letter.space_id
        )
        writes += built
        by_id.update((write.doc_id, letter) for write in built)
        failing += [replace(letter, stage="build", reason=reason, time=now) for _, reason in failed]
    stats = WriteStats()
    result = bulk_create(es, policy, alias, writes, stats)
    refused = result.refused
    report.created += stats.created
    report.existed += stats.duplicates + len(result.ambiguous)  # there now, whoever wrote it
    refused_ids = {item.write.doc_id for item in refused}
    failing += [replace(by_id[item.write.doc_id], stage="index", reason=item.reason, time=now) for item in refused]
    done = [doc_id for doc_id in by_id if doc_id not in refused_ids]
    return done, failing


def retry_dead_letters(
    es: Elasticsearch,
    policy: RetryPolicy,
    *,
    alias: str,
    index: str,
    letters: Iterable[DeadLetter],
    rules: Mapping[str, Rule],
    clock: Callable[[], datetime],
) -> RetryReport:
    """Re-attempt every entry of ``letters`` (read from ``index`` by :func:`deadletter.scan`, which is not
    disturbed by the deletes and rewrites done here) with ``rules`` (by rule_id)."""
    report = RetryReport()
    attempted = False
    for chunk in _chunks(letters, CHUNK):
        attempted = True
        done, failing = _attempt(es, policy, alias, chunk, rules, clock(), report)
        deadletter.delete(es, policy, index, done)
        deadletter.write(es, policy, index, failing, overwrite=True)
        report.failing += failing
    if attempted:
        policy.call(lambda: es.indices.refresh(index=[alias, index], ignore_unavailable=True))
    return report


def _chunks(letters: Iterable[DeadLetter], size: int) -> Iterator[list[DeadLetter]]:
    chunk: list[DeadLetter] = []
    for letter in letters:
        chunk.append(letter)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
