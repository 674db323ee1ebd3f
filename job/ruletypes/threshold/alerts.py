"""A threshold bucket as Kibana 8.19 turns it into an alert (``bulk_create_threshold_signals.ts``, ``utils.ts``,
``wrap_suppressed_threshold_alerts.ts``), pure: the run's clock, rule and space are arguments.

* **Synthetic hit.** ``_index`` the rule's index patterns joined by ``,``; ``_id`` a UUID v5 in the namespace
  ``0684ec03-7201-4ee0-8ee0-3a3f6b2479b2`` of ``rule_id + startedAt (ISO) + fields joined by "," + the key's
  values sorted as JavaScript's default sort does, joined by ","``; ``_source`` holds ``@timestamp`` (the
  bucket's latest timestamp), each group-by value under its dotted field name, and ``threshold_result``.
* **``kibana.alert.threshold_result``** ``{terms: [{field, value}], count, from, cardinality?}``; ``from`` is the
  bucket's earliest timestamp, or the window start when it has none.
* **Alert id.** The ordinary alert of the synthetic hit: SHA-256 of ``index + id + "undefined" +
  "<space>:<rule>"``, with the ``rule_id`` where Kibana has the rule's saved-object id (the variable part, the
  UUID, has a fixed length, so this concatenation cannot be read two ways within a rule). With suppression:
  object-hash of ``[index, id, "<space>:<rule>"]``, and the group ``kibana.alert.instance.id`` object-hash of
  ``[key values sorted by lodash sortBy, rule, space]``; ``docs_count`` 0, start and end the bucket's timestamps.

One difference: Kibana's UUID name sorts the values across fields and joins them with commas, so the buckets
``(a, b)`` and ``(b, a)`` of two fields, or values holding commas, can get one UUID in one run, and Kibana then
writes one alert of the two. Here the second bucket of a run whose UUID is taken gets the UUID of the same name
followed by the bucket's key as JSON: every bucket gets its alert, and all others keep Kibana's id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from job.alerts.jsorder import js_default_sort, js_string, lodash_sort_by
from job.alerts.objecthash import object_hash
from job.alerts.suppression import Suppression, instance_hash
from job.rules.aggregation_params import ThresholdParams
from job.ruletypes.threshold.search import ThresholdBucket
from job.window import Window, isoformat
from job.writing.hit_alerts import HitAlert
from job.writing.writer import Candidate

NAMESPACE: Final = uuid.UUID("0684ec03-7201-4ee0-8ee0-3a3f6b2479b2")
THRESHOLD_RESULT: Final = "kibana.alert.threshold_result"


def uuid_name(rule_id: str, started_at: datetime, fields: Sequence[str], values: Sequence[Any]) -> str:
    """Kibana's UUID name of a bucket: rule, start of the run, fields, the values in JavaScript's default order."""
    sorted_values = ",".join(js_string(value) for value in js_default_sort(values))
    return f"{rule_id}{isoformat(started_at)}{','.join(fields)}{sorted_values}"


def bucket_uuid(name: str) -> str:
    """``uuidv5(name, NAMESPACE)`` (the UTF-8 of ``name``, as the uuid package hashes a string)."""
    return str(uuid.uuid5(NAMESPACE, name))


def alert_id(index: str, doc_id: str, rule_id: str, space_id: str) -> str:
    """The alert id of the synthetic hit (Kibana's ``generateId`` with ``_version`` undefined)."""
    text = f"{index}{doc_id}undefined{space_id}:{rule_id}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def suppressed_alert_id(index: str, doc_id: str, rule_id: str, space_id: str) -> str:
    """The alert id of the synthetic hit when the rule suppresses (``wrapSuppressedThresholdALerts``)."""
    return object_hash([index, doc_id, f"{space_id}:{rule_id}"])


def threshold_result(bucket: ThresholdBucket, params: ThresholdParams, window: Window) -> dict[str, Any]:
    """``kibana.alert.threshold_result`` (``cardinality`` only when the rule has the condition)."""
    result: dict[str, Any] = {
        "terms": [{"field": field, "value": value} for field, value in bucket.terms],
        "count": bucket.count,
        "from": isoformat(bucket.first or window.start),
    }
    condition = params.counted_cardinality
    if condition is not None:
        result["cardinality"] = [{"field": condition.field, "value": bucket.cardinality}]
    return result


def synthetic_hit(bucket: ThresholdBucket, result: dict[str, Any], index: str, doc_id: str) -> dict[str, Any]:
    """The search hit Kibana builds the alert from; without timestamps (never for a counted bucket) it has no
    ``@timestamp``, as Kibana's ``value_as_string`` is then undefined."""
    source: dict[str, Any] = {} if bucket.last is None else {"@timestamp": isoformat(bucket.last)}
    source.update(bucket.terms)
    source["threshold_result"] = result
    return {"_index": index, "_id": doc_id, "_source": source}


def bucket_suppression(bucket: ThresholdBucket, rule_id: str, space_id: str, now: datetime) -> Suppression:
    """The group of a bucket's alert when the rule suppresses: its key's values sorted by lodash ``sortBy``
    hashed with the rule and space, its earliest and latest events (``now`` when it has none)."""
    return Suppression(
        instance=instance_hash(lodash_sort_by(bucket.values), rule_id, space_id),
        terms=[{"field": field, "value": value} for field, value in bucket.terms],
        start=bucket.first or now,
        end=bucket.last or now,
    )


def _about(bucket: ThresholdBucket) -> str:
    terms = ", ".join(f"{field}={value!r}" for field, value in bucket.terms)
    return f"the group {terms or 'of all events'} ({bucket.count} events)"


@dataclass(frozen=True, slots=True)
class BucketAlerts:
    """How one run's buckets become would-be alerts: the rule's parameters, index patterns, id and space, the
    run's start (Kibana's execution start, the same for every window of the run) and its searched window."""

    params: ThresholdParams
    index_patterns: Sequence[str]
    rule_id: str
    space_id: str
    started_at: datetime
    window: Window

    def candidates(self, buckets: Sequence[ThresholdBucket]) -> list[Candidate]:
        """The would-be alert of each bucket, in order."""
        index = ",".join(self.index_patterns)
        return [
            Candidate(alert_id(index, doc_id, self.rule_id, self.space_id), alert)
            for _, doc_id, alert in self._alerts(buckets, index)
        ]

    def grouped(self, buckets: Sequence[ThresholdBucket]) -> list[tuple[Candidate, Suppression]]:
        """:meth:`candidates` of a rule that suppresses (a ``duration``): each under its suppressed id, with its
        group (the alert gets the suppression fields once the run's alerts of its group are folded into it)."""
        index = ",".join(self.index_patterns)
        return [
            (
                Candidate(suppressed_alert_id(index, doc_id, self.rule_id, self.space_id), alert),
                bucket_suppression(bucket, self.rule_id, self.space_id, self.started_at),
            )
            for bucket, doc_id, alert in self._alerts(buckets, index)
        ]

    def _alerts(
        self, buckets: Sequence[ThresholdBucket], index: str
    ) -> Iterator[tuple[ThresholdBucket, str, HitAlert]]:
        """Each bucket, its synthetic hit's id (a second bucket of one UUID name gets a UUID of its own) and its
        would-be alert."""
        taken: set[str] = set()
        for bucket in buckets:
            name = uuid_name(self.rule_id, self.started_at, self.params.field, bucket.values)
            doc_id = bucket_uuid(name)
            if doc_id in taken:
                doc_id = bucket_uuid(name + json.dumps(bucket.values, separators=(",", ":"), ensure_ascii=False))
            taken.add(doc_id)
            result = threshold_result(bucket, self.params, self.window)
            hit = synthetic_hit(bucket, result, index, doc_id)
            yield bucket, doc_id, HitAlert(hit, {THRESHOLD_RESULT: result}, _about(bucket))
