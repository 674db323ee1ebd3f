"""Throwaway indices for rule tests on the configured cluster: the alert alias (with its index template), the
execution log and the dead-letter index of ``detection-test-<random>``, and one events index per test (kept
until the end: deleting them all at once costs one request).

Rules run there through the pass's own steps (:func:`job.run.steps.run_rule` over backfill's windows), so a
test exercises what ``run`` does; the real alerts, records and dead letters are never touched. Leaving the
``with`` block deletes everything the sandbox created, by name (a cluster refuses wildcard deletes by
default), also when the block ends with an error, Ctrl-C or SIGTERM; a second Ctrl-C does not cut the clean-up
short.
"""

from __future__ import annotations

import logging
import secrets
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.client.retry import RetryPolicy, describe
from job.config.indexnames import template_name
from job.config.settings import Settings
from job.errors import JobError
from job.execlog.execution import Execution
from job.indices.install import install
from job.rules.model import Rule
from job.ruletests.fixtures import Event
from job.run.steps import RunContext, run_rule
from job.text.diagnostics import Diagnostic, error
from job.text.jsoncodec import document_bytes
from job.window import Window
from job.writing import bulk

log = logging.getLogger(__name__)

PREFIX = "detection-test"
INDEX = "_index"  # where an alert read back keeps the index that holds it
MAX_ALERTS = 10_000


class MappingRefused(JobError):
    """Elasticsearch refused a test's mappings."""


class Stopped(BaseException):
    """SIGTERM during a rule test: leave as Ctrl-C does, cleaning up first."""


@contextmanager
def stops_cleanly() -> Iterator[None]:
    """SIGTERM raises :class:`Stopped` (so ``finally`` blocks run) while the block runs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Sandbox:
    """The throwaway indices of one ``detection-job test``."""

    def __init__(self, es: Elasticsearch, policy: RetryPolicy, settings: Settings) -> None:
        self.es = es
        self.policy = policy
        self.prefix = f"{PREFIX}-{secrets.token_hex(4)}"
        self.settings = settings.model_copy(
            update={
                "alerts_index": f"{self.prefix}-alerts",
                "executions_index": f"{self.prefix}-executions",
                "dead_letter_index": f"{self.prefix}-deadletter",
            }
        )
        self._events = 0

    def __enter__(self) -> Sandbox:
        try:
            settings = self.settings
            install(self.es, self.policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
        except BaseException:
            self.delete(quiet=True)  # what a failed install made; the error that ended it is the one to tell
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave indices behind
        try:
            self.delete()
        finally:
            signal.signal(signal.SIGINT, previous)

    def delete(self, *, quiet: bool = False) -> None:
        """Delete every index and the template of the sandbox; what cannot be deleted is said (unless ``quiet``),
        never raised."""
        try:
            names = self.policy.call(
                lambda: self.es.indices.get(index=f"{self.prefix}-*", expand_wildcards="all", ignore_unavailable=True)
            )
            if names:
                self.policy.call(lambda: self.es.indices.delete(index=",".join(names)))
            template = template_name(self.settings.alerts_index)
            self.policy.call(lambda: self.es.options(ignore_status=404).indices.delete_index_template(name=template))
        except (ApiError, TransportError) as exc:
            level = logging.DEBUG if quiet else logging.ERROR
            log.log(level, "could not delete the rule tests' indices %s-*: %s", self.prefix, describe(exc))

    def new_index(self) -> str:
        """The name of the next test's events index (every one is deleted with the sandbox)."""
        self._events += 1
        return f"{self.prefix}-events-{self._events}"

    def load(self, index: str, mappings: Mapping[str, Any], events: Sequence[Event]) -> list[Diagnostic]:
        """The events index ``index`` made with ``mappings`` and holding ``events``; the events Elasticsearch
        refused, each at its line. :class:`MappingRefused` when it refuses the mappings."""
        try:
            self.policy.call(lambda: self.es.indices.create(index=index, mappings=dict(mappings)))
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            raise MappingRefused(f"mapping: Elasticsearch refused it: {describe(exc)}") from None
        lines = [
            line
            for event in events
            for line in (
                document_bytes({"create": {"_index": index, "_id": event.doc_id}}),
                document_bytes(event.source),
            )
        ]
        # One request, searchable when answered; a fixture is small (job.ruletests.fixtures bounds it).
        response = self.policy.call(
            lambda: self.es.bulk(operations=lines, refresh=True, filter_path="items.*.status,items.*.error")  # type: ignore[arg-type]
        )
        answers = [next(iter(item.values())) for item in response.get("items", [])]
        return [
            error(event.path, f"Elasticsearch refused this event: {_refusal(answer)}", event.line)
            for event, answer in zip(events, answers, strict=True)
            if answer.get("status", 500) >= 300
        ]

    def context(self) -> RunContext:
        return RunContext(es=self.es, settings=self.settings, now=datetime.now(UTC), policy=self.policy)

    def run(self, context: RunContext, rule: Rule, windows: Sequence[Window]) -> list[Execution]:
        """The rule run over each window, as ``backfill`` runs it (each run makes its alerts searchable)."""
        return [run_rule(context, rule, window=window) for window in windows]

    def alerts(self, rule_id: str) -> list[dict[str, Any]]:
        """The rule's alerts (each with its ``_id`` and, under :data:`INDEX`, the index that holds it), oldest
        event first."""
        response = self.policy.call(
            lambda: self.es.search(
                index=self.settings.alerts_index,
                query={"term": {"kibana.alert.rule.rule_id": rule_id}},
                size=MAX_ALERTS,
                sort=[
                    {"kibana.alert.original_time": {"order": "asc", "unmapped_type": "date"}},
                    {"kibana.alert.uuid": "asc"},
                ],
            )
        )
        return [{"_id": hit["_id"], INDEX: hit["_index"], **hit["_source"]} for hit in response["hits"]["hits"]]

    def forget(self, alerts: Sequence[Mapping[str, Any]], dead_letters: bool) -> None:
        """Delete one test's alerts (and, if it wrote any, every dead letter): the next test of the same rule must
        not find them, nor count its events as counted. By id: a node may lack delete-by-query."""
        items = [
            bulk.Item(document_bytes({"delete": {"_index": alert[INDEX], "_id": alert["_id"]}})) for alert in alerts
        ]
        if dead_letters:
            response = self.policy.call(
                lambda: self.es.search(index=self.settings.dead_letter_index, size=MAX_ALERTS, source=False)
            )
            items += [
                bulk.Item(document_bytes({"delete": {"_index": hit["_index"], "_id": hit["_id"]}}))
                for hit in response["hits"]["hits"]
            ]
        if items:
            bulk.send(self.es, self.policy, items, op="delete")
            indices = [self.settings.alerts_index, self.settings.dead_letter_index]
            self.policy.call(lambda: self.es.indices.refresh(index=indices))


def _refusal(answer: Mapping[str, Any]) -> str:
    reason = answer.get("error")
    if not isinstance(reason, Mapping):
        return f"HTTP {answer.get('status')}"
    return f"HTTP {answer.get('status')} {reason.get('type', 'unknown')}: {reason.get('reason', '')}"
