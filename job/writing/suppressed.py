"""The alerts-index side of alert suppression: how far each group was counted, the open alert a group
updates, and the conditional updates themselves (no scripts: a partial document with ``if_seq_no`` and
``if_primary_term``, so an alert changed since it was read is never overwritten), followed to their end
(:meth:`SuppressionStore.settle`: an alert changed meanwhile is read again and the caller decides anew; a
409 to a retried request that had been applied is recognised as that very update)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from job.alerts.suppression import (
    DOCS_COUNT,
    INSTANCE_ID,
    LAST_DETECTED,
    OpenAlert,
    boundaries_request,
    open_alert,
    open_alerts_request,
    parse_boundaries,
)
from job.client.retry import RetryPolicy
from job.errors import JobError
from job.text.jsoncodec import document_bytes
from job.window import Window
from job.writing import bulk

# Instance ids per lookup request.
LOOKUP_CHUNK = 1000
# Conditional updates of one alert a run tries before it gives up (the alert keeps changing under it).
CONFLICT_ATTEMPTS = 3


class SuppressionConflict(JobError):
    """An alert kept changing under this run's updates; the run fails and the next one counts again."""


@dataclass(frozen=True, slots=True)
class Update:
    """Fold a group into an alert: the alert as read, and the partial document."""

    alert: OpenAlert
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Current:
    """An alert read by id, now: as an :class:`OpenAlert` and its ``_source``."""

    alert: OpenAlert
    source: Mapping[str, Any]


# What to do about an update refused because its alert changed (or went away: None): the update to try now,
# or None when the caller has dealt with the group otherwise (a new alert, or nothing left to count).
Again = Callable[[Current | None], Update | None]


@dataclass(frozen=True, slots=True)
class Settled:
    """How a conditional update ended: ``applied`` (the update, or the retry, that was applied), ``refused``
    (Elasticsearch refused it for another reason than a change of the alert: the group is dead-lettered), or
    neither (the caller dealt with the group otherwise)."""

    applied: Update | None = None
    refused: bulk.Answer | None = None


def own_update(answer: bulk.Answer, update: Update, source: Mapping[str, Any]) -> bool:
    """Whether a 409 answered to ``update`` is that very update, applied by an earlier attempt of its request."""
    return answer.ambiguous and all(source.get(key) == update.document.get(key) for key in (LAST_DETECTED, DOCS_COUNT))


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass
class SuppressionStore:
    """Reads and conditional updates of one rule's suppressed alerts in the alerts alias."""

    es: Elasticsearch
    policy: RetryPolicy
    alias: str
    rule_id: str
    space_id: str
    search_ms: float = 0.0
    indexing_ms: float = 0.0

    def refresh(self) -> None:
        """Make every alert written so far searchable (a run killed a moment ago included)."""
        self.policy.call(lambda: self.es.indices.refresh(index=self.alias, ignore_unavailable=True))

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        try:
            response = self.policy.call(
                lambda: self.es.search(index=self.alias, ignore_unavailable=True, allow_no_indices=True, **body)
            )
        finally:
            self.search_ms += (time.monotonic() - started) * 1000
        return dict(response.body)

    def boundaries(self, instance_ids: Sequence[str], window: Window) -> dict[str, datetime]:
        """For each of these groups that an alert reaching into ``window`` counted: the latest end counted."""
        found: dict[str, datetime] = {}
        for chunk in _chunks(instance_ids, LOOKUP_CHUNK):
            found.update(parse_boundaries(self._search(boundaries_request(self.rule_id, self.space_id, chunk, window))))
        return found

    def open_alerts(self, instance_ids: Sequence[str], since: datetime) -> dict[str, OpenAlert]:
        """For each of these groups, the latest alert that is not closed and started at or after ``since``."""
        found: dict[str, OpenAlert] = {}
        for chunk in _chunks(instance_ids, LOOKUP_CHUNK):
            response = self._search(open_alerts_request(self.rule_id, self.space_id, chunk, since))
            for hit in response["hits"]["hits"]:
                found[str(hit["fields"][INSTANCE_ID][0])] = open_alert(hit)  # the collapse key
        return found

    def current(self, alert: OpenAlert) -> Current | None:
        """The alert as it is now (a real-time get), or None when it no longer exists."""
        try:
            response = self.policy.call(lambda: self.es.get(index=alert.index, id=alert.doc_id))
        except NotFoundError:
            return None
        hit = dict(response.body)
        return Current(open_alert(hit), hit.get("_source") or {})

    def update(self, updates: Sequence[Update]) -> list[bulk.Answer]:
        """Apply each update if its alert is unchanged since it was read: per update, Elasticsearch's answer
        (200, or 409 when the alert changed, 404 when it is gone, ...; ``ambiguous`` when an earlier attempt
        of the request may have been applied)."""
        if not updates:
            return []
        items = []
        for update in updates:
            alert = update.alert
            action = {"_index": alert.index, "_id": alert.doc_id, "if_seq_no": alert.seq_no}
            action["if_primary_term"] = alert.primary_term
            items.append(bulk.Item(document_bytes({"update": action}), document_bytes({"doc": update.document})))
        started = time.monotonic()
        try:
            return bulk.send(self.es, self.policy, items, op="update")
        finally:
            self.indexing_ms += (time.monotonic() - started) * 1000

    def update_one(self, update: Update) -> bulk.Answer:
        """:meth:`update` for one alert."""
        try:
            return self.update([update])[0]
        except ApiError as exc:  # a refusal of the whole request: answer it as the item's status
            return bulk.Answer(exc.meta.status, "", str(exc.message))

    def settle(self, update: Update, answer: bulk.Answer, again: Again) -> Settled:
        """Follow one conditional update to its end. A changed (409), busy (429) or vanished (404) alert is
        read again (real time) and ``again`` says what to try now; a 409 to a retried request that had been
        applied is that update. :class:`SuppressionConflict` after :data:`CONFLICT_ATTEMPTS` tries."""
        for _ in range(CONFLICT_ATTEMPTS):
            if answer.status == 200:
                return Settled(applied=update)
            if answer.status not in (404, 409, 429):
                return Settled(refused=answer)
            current = self.current(update.alert) if answer.status != 404 else None
            if current is not None and answer.status == 409 and own_update(answer, update, current.source):
                return Settled(applied=update)
            retry = again(current)
            if retry is None:
                return Settled()
            update = retry
            answer = self.update_one(update)
        doc_id = update.alert.doc_id
        raise SuppressionConflict(f"alert {doc_id} changed under {CONFLICT_ATTEMPTS} updates of this run")
