"""``detection-job schedule``: every rule on its own cadence (its ``interval``) until stopped.

For hosts without a cron. One APScheduler job per rule of the rules folder, read once at start
(restart to reload): the first run of each rule comes at start plus a small delay that is stable
per rule (``job.run.selection.jitter``), then every ``interval`` (or ``DETECTION_SCHEDULE_INTERVAL``
when set). Rules share one Elasticsearch client and the metrics registry; at most one run of a rule
at a time, missed runs coalesced. With ``DETECTION_SHARD`` only that shard's rules are scheduled.
With ``DETECTION_HTTP_PORT`` it serves ``/healthz``, ``/readyz`` and ``/metrics`` (``job.httpserver``).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from elasticsearch import ApiError, Elasticsearch, TransportError

from job import httpserver
from job.commands import run as run_command
from job.esclient import make_client
from job.httpserver import Check
from job.metrics import RuleMetrics
from job.rules.model import Rule
from job.run.alert_template import TEMPLATE_VERSION
from job.run.install import install, installed_template_version
from job.run.lifecycle import maintain
from job.run.retry import RetryPolicy, describe
from job.run.runner import RunContext, record_refused, run_rule
from job.run.selection import cadence, jitter
from job.settings import Settings

NAME = "schedule"
HELP = "run each rule on its own interval until stopped"

log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 5.0
# Rollover and retention of the alert indices, and the template check, run at start and then this often.
MAINTENANCE_INTERVAL = timedelta(minutes=10)
# A run that could not start on time (every worker busy, the process paused) still starts this late at most.
MAX_MISFIRE_GRACE = timedelta(minutes=5)
INSTALL_RETRY_AFTER = 5.0  # seconds
WORKERS = 10  # rules executing at once; the others wait for a free worker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="schedule only the rules of shard I of N (default: DETECTION_SHARD, or JOB_COMPLETION_INDEX of "
        "DETECTION_SHARDS)",
    )


@dataclass
class Service:
    """What every rule's job shares: settings, one Elasticsearch client, the metrics."""

    settings: Settings
    es: Elasticsearch
    metrics: RuleMetrics
    policy: RetryPolicy
    installed: bool = False
    failed_at: float | None = None  # time.monotonic() of the last failed installation
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, *, again: bool = False) -> bool:
        """Install the indices (once, or ``again``) and roll over; False while Elasticsearch is unusable.

        One thread installs at a time; after a failure the others do not try again for
        ``INSTALL_RETRY_AFTER``, so an outage does not pile up attempts from every rule.
        """
        with self.lock:
            if self.installed and not again:
                return True
            if not again and self.failed_at is not None and time.monotonic() - self.failed_at < INSTALL_RETRY_AFTER:
                return False
            try:
                install(self.es, self.policy, self.settings.alerts_index, self.settings.executions_index)
            except (ApiError, TransportError) as exc:  # the cluster may be back at the next run
                log.error("Elasticsearch is not usable, the rules wait: %s", describe(exc))
                self.installed, self.failed_at = False, time.monotonic()
                return False
            self.installed, self.failed_at = True, None
            maintain(
                self.es,
                self.policy,
                self.settings.alerts_index,
                self.settings.alerts_rollover,
                self.settings.alerts_retention,
            )
            return True

    def run_rule(self, rule: Rule, problems: list[str]) -> None:
        """One scheduled execution of ``rule`` (a ``failed`` record when it does not validate)."""
        if not self.prepare():
            return
        context = RunContext(es=self.es, settings=self.settings, now=datetime.now(UTC), policy=self.policy)
        execution = record_refused(context, rule, problems) if problems else run_rule(context, rule)
        run_command.report(execution, self.metrics, cadence(rule, self.settings.schedule_interval))


def add_rule_jobs(scheduler: BlockingScheduler, service: Service, start: datetime) -> int:
    """One job per rule of this shard, from the rules folder as it is now; the number of jobs."""
    settings = service.settings
    shard = settings.shard
    loaded = run_command.load_wanted(settings, [])
    # Checked without the cluster's field types (it may not answer yet); each run translates with them.
    selection = run_command.select_rules(loaded, {}, start, shard, "all", settings=settings)
    for problem in selection.problems:
        log.error("not run, does not validate: %s", problem)
    for line in selection.skipped:
        log.info("skipped: %s", line)
    jobs: list[tuple[Rule, list[str]]] = [(rule, []) for rule in selection.runnable] + selection.refused
    for rule, problems in jobs:
        interval = cadence(rule, settings.schedule_interval)
        scheduler.add_job(
            service.run_rule,
            IntervalTrigger(seconds=interval.total_seconds(), start_date=start + jitter(rule.rule_id, interval)),
            args=[rule, problems],
            id=f"rule:{rule.rule_id}",
            name=f"{rule.name} ({rule.rule_id})",
            coalesce=True,  # after a pause, one run catches up from the execution log; not one per missed tick
            max_instances=1,  # never two runs of one rule at once
            misfire_grace_time=max(1, int(min(interval, MAX_MISFIRE_GRACE).total_seconds())),
        )
    log.info("scheduled %d rules%s", len(jobs), f" of shard {shard}" if shard else "")
    return len(jobs)


def _report(event: Any) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("a scheduled run of %s was missed; the next run catches up from the execution log", event.job_id)
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("%s is still running; its next run was skipped", event.job_id)
    else:
        log.error("a scheduled run of %s crashed: %s", event.job_id, event.exception)


def readiness(es: Elasticsearch, alias: str) -> Check:
    """Ready when Elasticsearch answers and the alert index template installed is this version's."""
    probe = es.options(request_timeout=READINESS_TIMEOUT_SECONDS)
    policy = RetryPolicy(attempts=1)

    def ready() -> tuple[bool, str]:
        try:
            version = installed_template_version(probe, policy, alias)
        except (ApiError, TransportError) as exc:
            log.warning("readiness: Elasticsearch is not usable: %s", describe(exc))
            return False, f"Elasticsearch is not usable ({type(exc).__name__})"
        if version != TEMPLATE_VERSION:
            return False, f"alert index template version {version}, expected {TEMPLATE_VERSION}"
        return True, "Elasticsearch reachable, alert index template current"

    return ready


def run(args: argparse.Namespace, settings: Settings) -> int:
    shard = run_command.pass_shard(settings, args.shard)
    settings = settings.model_copy(update={"shard": shard})
    scheduler = BlockingScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=WORKERS)})
    scheduler.add_listener(_report, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    with ExitStack() as stack:
        es = stack.enter_context(make_client(settings))
        service = Service(settings, es, RuleMetrics(), RetryPolicy.from_settings(settings))
        start = datetime.now(UTC)
        add_rule_jobs(scheduler, service, start)
        scheduler.add_job(
            service.prepare,
            IntervalTrigger(seconds=MAINTENANCE_INTERVAL.total_seconds(), start_date=start),
            kwargs={"again": True},
            id="maintenance",
            coalesce=True,
            max_instances=1,
        )
        if settings.http_port is not None:
            server = httpserver.start(
                settings.http_port,
                service.metrics.registry,
                live=lambda: (
                    bool(scheduler.running),
                    "scheduler running" if scheduler.running else "scheduler stopped",
                ),
                ready=readiness(es, settings.alerts_index),
                host=settings.http_host,
            )
            stack.callback(server.stop)
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            scheduler.shutdown(wait=False)
    return 0
