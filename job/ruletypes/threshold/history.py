"""The signal history of a threshold rule, pure: which groups were alerted on, up to which event time, so that
overlapping windows and reruns never count an event into two alerts (Kibana's ``signalHistory`` rule state,
``get_threshold_signal_history.ts``, ``build_signal_history.ts``, ``get_threshold_bucket_filters.ts``).

* **An entry** is a group's terms and ``last``: the ``original_time`` of its latest alert, which is the bucket's
  latest event time. Entries are keyed by Kibana's ``getThresholdTermsHash`` (SHA-256 of the terms sorted by
  field, ``field:value`` joined by ``,``); two different groups with one hash (values holding ``,`` and ``:``)
  keep both, the second under the hash of its terms as JSON.
* **Recognising an alerted bucket.** Nothing compares buckets: each entry excludes from the search the group's
  events at or before ``last`` (``must_not`` of ``range <= last`` and one ``term`` per field, the value as text;
  with no fields, every event up to ``last``). A bucket seen again counts only its events after its alert, and is
  alerted again only if those reach the threshold.
* **Kept.** Entries whose ``last`` is at or before the window start exclude nothing and are dropped
  (:meth:`SignalHistory.for_window`, Kibana's rule at the next run); after the write, the buckets alerted on are
  added (:meth:`SignalHistory.with_buckets`). :meth:`SignalHistory.to_record` is the execution record's part.
* **Read** from the alerts index when no record has it (the first run, Kibana's ``initialized: false``;
  :func:`read_history`): the rule's alerts in the space whose ``original_time`` lies in the window, whose group
  began before the window's end and whose threshold fields are the rule's, 10,000 a page (Kibana reads one
  page), sorted so that pages follow with ``search_after``. With suppression, an alert that later groups were
  folded into has counted up to its ``suppression.end``: that is its entry's ``last``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from job.alerts.jsorder import js_string
from job.alerts.overrides import lodash_get
from job.ruletypes.threshold.search import Terms, ThresholdBucket
from job.search.aggregations import EPOCH
from job.search.clauses import TimestampFields
from job.window import Window, isoformat, parse_timestamp

HISTORY_PAGE: Final = 10_000
_RESULT: Final = "kibana.alert.threshold_result"
_ORIGINAL_TIME: Final = "kibana.alert.original_time"
_FROM: Final = "kibana.alert.threshold_result.from"
_SUPPRESSION_END: Final = "kibana.alert.suppression.end"
_UUID: Final = "kibana.alert.uuid"


def terms_hash(terms: Terms) -> str:
    """Kibana's ``getThresholdTermsHash``: SHA-256 (hex) of ``field:value`` sorted by field, joined by ``,``."""
    ordered = sorted(terms, key=lambda term: term[0].encode("utf-16-be", "surrogatepass"))
    text = ",".join(f"{field}:{js_string(value)}" for field, value in ordered)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _json_hash(terms: Terms) -> str:
    text = json.dumps([list(term) for term in sorted(terms, key=lambda term: term[0])], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    terms: Terms
    last: datetime


@dataclass(frozen=True, slots=True)
class SignalHistory:
    """The entries of a rule's signal history, by key."""

    entries: Mapping[str, HistoryEntry]

    @classmethod
    def empty(cls) -> SignalHistory:
        return cls({})

    def with_entries(self, entries: Iterable[HistoryEntry]) -> SignalHistory:
        """This history with ``entries`` added; an entry of a group already held keeps the later ``last``."""
        merged = dict(self.entries)
        for entry in entries:
            key = terms_hash(entry.terms)
            held = merged.get(key)
            if held is not None and held.terms != entry.terms:
                key = _json_hash(entry.terms)
                held = merged.get(key)
            if held is None or held.last < entry.last:
                merged[key] = entry
        return SignalHistory(merged)

    def with_buckets(self, buckets: Iterable[ThresholdBucket]) -> SignalHistory:
        """This history with the buckets alerted on (their latest event time, the alert's ``original_time``)."""
        return self.with_entries(HistoryEntry(bucket.terms, bucket.last) for bucket in buckets if bucket.last)

    def merged(self, other: SignalHistory) -> SignalHistory:
        return self.with_entries(other.entries.values())

    def of_fields(self, fields: Sequence[str]) -> SignalHistory:
        """The entries of groups by ``fields`` (a rule whose threshold fields changed keeps none of the others)."""
        wanted = list(fields)
        return SignalHistory(
            {key: entry for key, entry in self.entries.items() if [field for field, _ in entry.terms] == wanted}
        )

    def for_window(self, window: Window) -> SignalHistory:
        """The entries that still exclude events of ``window`` (``last`` after its start)."""
        return SignalHistory({key: entry for key, entry in self.entries.items() if entry.last > window.start})

    def exclusions(self, timestamps: TimestampFields) -> list[dict[str, Any]]:
        """One ``must_not`` clause per entry: the group's events at or before its ``last``."""
        return [
            {
                "bool": {
                    "filter": [
                        _until(timestamps, entry.last),
                        *({"term": {field: js_string(value)}} for field, value in entry.terms),
                    ]
                }
            }
            for entry in self.entries.values()
        ]

    def to_record(self) -> dict[str, Any]:
        """The history as the execution record keeps it (Kibana's state shape)."""
        return {
            key: {
                "terms": [{"field": field, "value": value} for field, value in entry.terms],
                "lastSignalTimestamp": _millis(entry.last),
            }
            for key, entry in self.entries.items()
        }

    @classmethod
    def from_record(cls, record: Any) -> SignalHistory:
        """The history a record kept; malformed entries (a hand-edited or foreign record) are skipped."""
        entries = []
        for value in record.values() if isinstance(record, Mapping) else ():
            last = value.get("lastSignalTimestamp") if isinstance(value, Mapping) else None
            terms = _terms(value.get("terms")) if isinstance(value, Mapping) else None
            if terms is not None and isinstance(last, int) and not isinstance(last, bool):
                try:
                    entries.append(HistoryEntry(terms, EPOCH + timedelta(milliseconds=last)))
                except OverflowError:
                    continue
        return cls.empty().with_entries(entries)


def _until(timestamps: TimestampFields, moment: datetime) -> dict[str, Any]:
    """Events whose (combined) timestamp is at or before ``moment``."""
    primary = {"range": {timestamps.primary: {"lte": isoformat(moment), "format": "strict_date_optional_time"}}}
    if timestamps.fallback is None:
        return primary
    fallback = {"range": {timestamps.fallback: {"lte": isoformat(moment), "format": "strict_date_optional_time"}}}
    lacking = {"bool": {"filter": [fallback], "must_not": [{"exists": {"field": timestamps.primary}}]}}
    return {"bool": {"should": [primary, lacking], "minimum_should_match": 1}}


def _terms(raw: Any) -> Terms | None:
    if not isinstance(raw, list):
        return None
    terms = []
    for term in raw:
        if not isinstance(term, Mapping) or not isinstance(term.get("field"), str):
            return None
        value = term.get("value")
        if isinstance(value, dict | list):
            return None
        terms.append((term["field"], value))
    return tuple(terms)


def history_request(
    rule_id: str,
    space_id: str,
    fields: Sequence[str],
    bounds: tuple[str, str],
    *,
    after: Sequence[Any] | None = None,
    size: int = HISTORY_PAGE,
) -> dict[str, Any]:
    """One page of the rule's alerts in the space whose ``original_time`` (or, for an alert other groups were
    folded into, ``suppression.end``) lies in the window ``bounds`` (ISO times, or date math as ``translate``
    prints it) and whose rule grouped by ``fields`` (Kibana requires each field in
    ``parameters.threshold.field``)."""
    start, end = bounds
    reaching = [
        {"range": {field: {"gte": start, "format": "strict_date_optional_time"}}}
        for field in (_ORIGINAL_TIME, _SUPPRESSION_END)
    ]
    filters: list[dict[str, Any]] = [
        {"term": {"kibana.alert.rule.rule_id": rule_id}},
        {"term": {"kibana.space_ids": space_id}},
        {"bool": {"should": reaching, "minimum_should_match": 1}},
        # Not the alerts of groups that began after the window (a later run's, read by a backfill): their
        # exclusion would hide this window's events of the group, which they did not count.
        {"range": {_FROM: {"lte": end, "format": "strict_date_optional_time"}}},
        *({"term": {"kibana.alert.rule.parameters.threshold.field": field}} for field in fields),
    ]
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"filter": filters}},
        "sort": [{_ORIGINAL_TIME: "desc"}, {_UUID: "asc"}],
        "_source": [_RESULT, _ORIGINAL_TIME, _SUPPRESSION_END],
    }
    if after is not None:
        body["search_after"] = list(after)
    return body


def parse_history_page(
    response: Mapping[str, Any], fields: Sequence[str], until: datetime, size: int = HISTORY_PAGE
) -> tuple[list[HistoryEntry], list[Any] | None]:
    """The entries of one page of alerts, and the ``search_after`` of the next page (None: the last page).
    An entry's ``last`` is the alert's ``original_time``, or its ``suppression.end`` when later groups were
    folded into it and that lies at or before ``until`` (the window's end: a later run's fold, read by a
    backfill, says nothing of the window). An alert whose terms are not exactly the rule's fields, or without a
    readable ``original_time``, is skipped."""
    hits = [hit for hit in (response.get("hits") or {}).get("hits") or () if isinstance(hit, Mapping)]
    entries = []
    for hit in hits:
        source = hit.get("_source") or {}
        result = lodash_get(source, _RESULT)
        terms = _terms(result.get("terms")) if isinstance(result, Mapping) else None
        original = _moment(lodash_get(source, _ORIGINAL_TIME))
        if terms is None or [field for field, _ in terms] != list(fields) or original is None:
            continue
        folded = _moment(lodash_get(source, _SUPPRESSION_END))
        last = folded if folded is not None and original < folded <= until else original
        entries.append(HistoryEntry(terms, last))
    after = hits[-1].get("sort") if len(hits) >= size and hits else None
    return entries, after if isinstance(after, list) else None


def _moment(value: Any) -> datetime | None:
    """An alert's time (an ISO string) to the millisecond, as Kibana's history holds it; None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_timestamp(value)
    except ValueError:
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def read_history(
    search: Callable[[dict[str, Any]], Mapping[str, Any]],
    rule_id: str,
    space_id: str,
    fields: Sequence[str],
    window: Window,
    *,
    size: int = HISTORY_PAGE,
) -> SignalHistory:
    """The history the rule's alerts in the space hold for ``window``, every page of them (``search`` sends a
    request body to the alerts alias, refreshed first so that what a run wrote a moment ago is seen)."""
    history, after = SignalHistory.empty(), None
    bounds = (isoformat(window.start), isoformat(window.end))
    while True:
        entries, after = parse_history_page(
            search(history_request(rule_id, space_id, fields, bounds, after=after, size=size)), fields, window.end, size
        )
        history = history.with_entries(entries)
        if after is None:
            return history.for_window(window)
