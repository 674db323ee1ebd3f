"""Prometheus metrics of the rule executions, fed from execution-record documents.

A command makes one ``RuleMetrics`` (its own ``CollectorRegistry``, never the global default one)
and calls ``observe(document, interval)`` once per finished rule execution with the document the
execution log stores (``Execution.to_document()``): that shape is the only interface between the
runner and the metrics. ``schedule`` serves the registry on ``/metrics`` (``job.ops.httpserver``); a
``run`` pushes it to a Pushgateway (``push``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import basic_auth_handler, default_handler, push_to_gateway
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from job.execlog.last_runs import COMPLETED, SUCCESSFUL
from job.window import parse_timestamp
from job.writing.writer import MAX_ALERTS_WARNING

log = logging.getLogger(__name__)

LABELS = ("rule_id", "rule_name")
# Seconds; a rule's search or indexing takes from milliseconds to many minutes.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PUSH_JOB = "detection-job"
PUSH_TIMEOUT_SECONDS = 10.0


def _get(document: Mapping[str, Any], path: str) -> Any:
    node: Any = document
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _number(document: Mapping[str, Any], path: str) -> float:
    """A count or duration of the document; 0 when absent or not a number."""
    value = _get(document, path)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 0.0
    return float(value)


class RuleMetrics:
    """The metrics of every rule execution observed by this process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.last_failed = Gauge(
            "detection_rule_last_execution_failed", "1 when the rule's last execution failed", LABELS, registry=r
        )
        self.last_gap = Gauge(
            "detection_rule_last_gap_seconds", "Time the last execution could not search (gap)", LABELS, registry=r
        )
        self.last_max_alerts = Gauge(
            "detection_rule_last_max_alerts_reached",
            "1 when the last execution stopped at the alerts cap",
            LABELS,
            registry=r,
        )
        self.last_success = Gauge(
            "detection_rule_last_success_timestamp_seconds",
            "End of the last execution that searched its window (succeeded or partial failure)",
            LABELS,
            registry=r,
        )
        self.last_warnings = Gauge(
            "detection_rule_last_execution_warnings", "Warnings of the rule's last execution", LABELS, registry=r
        )
        self.interval = Gauge("detection_rule_interval_seconds", "The rule's interval", LABELS, registry=r)
        self.executions = Counter(
            "detection_rule_executions", "Rule executions by status", (*LABELS, "status"), registry=r
        )
        self.alerts_created = Counter("detection_rule_alerts_created", "Alerts written", LABELS, registry=r)
        self.duplicates = Counter(
            "detection_rule_duplicates_skipped", "Events that already had an alert", LABELS, registry=r
        )
        self.hits = Counter("detection_rule_hits", "Events the rule's query matched", LABELS, registry=r)
        self.dead_letters = Counter(
            "detection_rule_dead_letters", "Events that could not become alerts", LABELS, registry=r
        )
        self.search_seconds = Histogram(
            "detection_rule_search_seconds", "Search time per execution", LABELS, buckets=DURATION_BUCKETS, registry=r
        )
        self.indexing_seconds = Histogram(
            "detection_rule_indexing_seconds",
            "Indexing time per execution",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._gauges = (self.last_failed, self.last_gap, self.last_max_alerts, self.last_success, self.last_warnings)
        self._names: dict[str, str] = {}

    def observe(self, document: Mapping[str, Any], interval: timedelta | None = None) -> bool:
        """Count one finished execution; False (nothing counted) for a record that is not finished."""
        status = _get(document, "execution.status")
        rule_id, rule_name = _get(document, "rule.rule_id"), _get(document, "rule.name")
        if status not in COMPLETED or not isinstance(rule_id, str) or not isinstance(rule_name, str):
            return False
        self._forget_old_name(rule_id, rule_name)
        labels = (rule_id, rule_name)
        warnings = _get(document, "execution.warnings")
        warnings = warnings if isinstance(warnings, list) else []
        self.executions.labels(*labels, status).inc()
        self.last_failed.labels(*labels).set(1 if status == "failed" else 0)
        self.last_gap.labels(*labels).set(_number(document, "metrics.execution_gap_duration_s"))
        self.last_max_alerts.labels(*labels).set(1 if MAX_ALERTS_WARNING in warnings else 0)
        self.last_warnings.labels(*labels).set(len(warnings))
        if status in SUCCESSFUL:
            end = _get(document, "execution.end")
            try:
                self.last_success.labels(*labels).set(parse_timestamp(end).timestamp())
            except (TypeError, ValueError):
                log.warning("rule %s: execution record without a valid execution.end", rule_id)
        if interval is not None:
            self.interval.labels(*labels).set(interval.total_seconds())
        self.alerts_created.labels(*labels).inc(_number(document, "metrics.alerts_created"))
        self.duplicates.labels(*labels).inc(_number(document, "metrics.duplicates_skipped"))
        self.hits.labels(*labels).inc(_number(document, "metrics.hits"))
        self.dead_letters.labels(*labels).inc(_number(document, "metrics.dead_lettered"))
        self.search_seconds.labels(*labels).observe(_number(document, "metrics.total_search_duration_ms") / 1000)
        self.indexing_seconds.labels(*labels).observe(_number(document, "metrics.total_indexing_duration_ms") / 1000)
        return True

    def _forget_old_name(self, rule_id: str, rule_name: str) -> None:
        """A renamed rule's "last" gauges under its old name would otherwise stay (e.g. failed) forever."""
        old = self._names.get(rule_id)
        if old is not None and old != rule_name:
            for gauge in (*self._gauges, self.interval):
                with contextlib.suppress(KeyError):
                    gauge.remove(rule_id, old)
        self._names[rule_id] = rule_name

    def rule_ids(self) -> list[str]:
        return sorted(self._names)


class _OneRule(Collector):
    """The samples of one rule in ``source``, as a collector of their own (one Pushgateway group)."""

    def __init__(self, source: CollectorRegistry, rule_id: str) -> None:
        self.source, self.rule_id = source, rule_id

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            samples = [sample for sample in family.samples if sample.labels.get("rule_id") == self.rule_id]
            if samples:
                subset = Metric(family.name, family.documentation, family.type, family.unit)
                subset.samples = samples
                yield subset


def _without_credentials(url: str) -> str:
    """``url`` without user name, password, query and fragment; ValueError when it does not parse."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_url(url: str) -> str:
    """The URL without user name and password, for messages."""
    try:
        return _without_credentials(url)
    except ValueError:
        return "<malformed URL>"


def push(metrics: RuleMetrics, url: str, space_id: str, timeout: float = PUSH_TIMEOUT_SECONDS) -> bool:
    """Push every rule's metrics to the Pushgateway at ``url``, one group per rule; False if a push failed.

    Group ``job="detection-job", space_id, rule_id``: a pass that runs only some rules replaces only
    their groups, so the last values of the others stay. Credentials in the URL become basic auth
    and are never logged.
    """
    where = redact_url(url)
    try:
        gateway = _without_credentials(url)
        username, password = urlsplit(url).username, urlsplit(url).password
    except ValueError:
        log.error("DETECTION_PUSHGATEWAY_URL is not a valid URL; metrics not pushed")
        return False

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes) -> Any:
        if username is None:
            return default_handler(url, method, timeout, headers, data)
        return basic_auth_handler(url, method, timeout, headers, data, unquote(username), unquote(password or ""))

    for rule_id in metrics.rule_ids():
        try:
            push_to_gateway(
                gateway,
                job=PUSH_JOB,
                registry=_OneRule(metrics.registry, rule_id),
                grouping_key={"space_id": space_id, "rule_id": rule_id},
                timeout=timeout,
                handler=handler,
            )
        except (OSError, ValueError) as exc:
            log.error("could not push metrics to the Pushgateway at %s: %s", where, _reason(exc))
            return False
    log.info("pushed the metrics of %d rules to the Pushgateway at %s", len(metrics.rule_ids()), where)
    return True


def _reason(exc: BaseException) -> str:
    """The error without the URL (urllib puts the request URL in some messages)."""
    reason = getattr(exc, "reason", None)
    code = getattr(exc, "code", None)
    if code is not None:
        return f"HTTP {code} {reason or ''}".strip()
    return f"{type(exc).__name__}: {reason if reason is not None else exc}"
