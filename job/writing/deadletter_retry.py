"""Re-attempt dead-lettered events: fetch each event again, build its alert with the current rule file,
create it, and delete the entry once the alert exists (also when it already existed). An ES|QL rule's
entries are kept, with the reason: its alert needs the query's row, not only the event.

An entry that still fails keeps its place, with the new reason and time, and is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from job.retry import RetryPolicy
from job.rules.model import Rule
from job.writing import deadletter
from job.writing.bulk import AlertWrite, WriteStats, bulk_create
from job.writing.deadletter import DeadLetter
from job.writing.writer import build_writes

CHUNK = 200
# An ES|QL alert is built from its query's row, which is not kept: the event alone does not rebuild it.
ESQL_NOT_RETRIED = (
    "an ES|QL rule's alert is built from its query's row, which retry cannot read back; a run whose window "
    "holds the row writes it"
)


@dataclass
class RetryReport:
    created: int = 0  # alerts created now
    existed: int = 0  # alerts that already existed (the entry was stale)
    failing: list[DeadLetter] = field(default_factory=list)  # entries still failing, with their new reason


def _fetch(es: Elasticsearch, policy: RetryPolicy, letters: Sequence[DeadLetter]) -> list[dict[str, Any] | None]:
    """The events of these entries, as search hits (None where an event no longer exists)."""
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
    retried: list[DeadLetter] = []
    for letter in letters:
        rule = rules.get(letter.rule_id)
        if rule is None:
            failing.append(replace(letter, reason="the rule is not in DETECTION_RULES_DIR", time=now))
        elif rule.type == "esql":
            failing.append(replace(letter, reason=ESQL_NOT_RETRIED, time=now))
        else:
            retried.append(letter)
    for letter, hit in zip(retried, _fetch(es, policy, retried) if retried else [], strict=True):
        rule = rules[letter.rule_id]
        if hit is None:
            failing.append(replace(letter, reason="the event no longer exists", time=now))
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
