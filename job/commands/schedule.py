"""``detection-job schedule``: every rule on its own cadence (its ``interval``) until stopped.

For hosts without a cron. One APScheduler job per rule of the rules folder, read once at start
(restart to reload): the first run of each rule comes at start plus a small delay that is stable
per rule (``job.run.selection.jitter``), then every ``interval`` (or ``DETECTION_SCHEDULE_INTERVAL``
when set). Rules share one Elasticsearch client and the metrics registry; at most one run of a rule
at a time, missed runs coalesced. With ``DETECTION_SHARD`` only that shard's rules are scheduled.
With ``DETECTION_HTTP_PORT`` it serves ``/healthz``, ``/readyz`` and ``/metrics`` (``job.ops.httpserver``).

It installs nothing (least privilege): at start it checks that ``setup`` ran for this version and exits 2
if not (``DETECTION_AUTO_SETUP`` installs instead, and then also rolls over and applies retention every
10 minutes). On SIGTERM or SIGINT it starts no further run, lets the running ones finish within
``DETECTION_SHUTDOWN_GRACE``, then asks them to stop (:mod:`job.stop`; their records end ``failed``
with ``Run interrupted by SIGTERM``) and exits 143 (130 for SIGINT). A second signal stops them at once.
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
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from elasticsearch import ApiError, Elasticsearch, TransportError

from job import stop
from job.client.esclient import make_client
from job.client.retry import RetryPolicy, describe
from job.commands import run as run_command
from job.config.settings import Settings
from job.indices import preflight
from job.ops import httpserver
from job.ops.httpserver import Check
from job.ops.metrics import RuleMetrics
from job.rules.model import Rule
from job.run.runner import RunContext, record_refused, run_rule
from job.run.selection import cadence, jitter

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
SIGNAL_POLL_SECONDS = 0.2  # how often the main thread looks for a signal (a handler takes no lock)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="schedule only the rules of shard I of N (default: DETECTION_SHARD, or JOB_COMPLETION_INDEX of "
        "DETECTION_SHARDS)",
    )


@dataclass
class Service:
    """What every rule's job shares: settings, one Elasticsearch client, the metrics, and the running runs."""

    settings: Settings
    es: Elasticsearch
    metrics: RuleMetrics
    policy: RetryPolicy
    prepared: bool = False
    failed_at: float | None = None  # time.monotonic() of the last failed preparation
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Rule runs under way, and whether new ones may start (not once shutting down).
    active: int = 0
    accepting: bool = True
    runs: threading.Condition = field(default_factory=threading.Condition)

    def prepare(self, *, again: bool = False) -> bool:
        """Check that ``setup`` ran (or with ``DETECTION_AUTO_SETUP`` install, roll over and apply retention),
        once or ``again``; False while Elasticsearch is unusable or not set up.

        One thread prepares at a time; after a failure the others do not try again for
        ``INSTALL_RETRY_AFTER``, so an outage does not pile up attempts from every rule.
        """
        with self.lock:
            if self.prepared and not again:
                return True
            if not again and self.failed_at is not None and time.monotonic() - self.failed_at < INSTALL_RETRY_AFTER:
                return False
            try:
                preflight.prepare(self.es, self.policy, self.settings)
            except preflight.SetupNeeded as exc:
                log.error("the rules wait: %s", exc)
                self.prepared, self.failed_at = False, time.monotonic()
                return False
            except (ApiError, TransportError) as exc:  # the cluster may be back at the next run
                log.error("Elasticsearch is not usable, the rules wait: %s", describe(exc))
                self.prepared, self.failed_at = False, time.monotonic()
                return False
            self.prepared, self.failed_at = True, None
            return True

    def run_rule(self, rule: Rule, problems: list[str]) -> None:
        """One scheduled execution of ``rule`` (a ``failed`` record when it does not validate)."""
        with self.runs:
            if not self.accepting:
                return
            self.active += 1
        try:
            if not self.prepare():
                return
            context = RunContext(es=self.es, settings=self.settings, now=datetime.now(UTC), policy=self.policy)
            execution = record_refused(context, rule, problems) if problems else run_rule(context, rule)
            run_command.report(execution, self.metrics, cadence(rule, self.settings.schedule_interval))
        finally:
            with self.runs:
                self.active -= 1
                self.runs.notify_all()

    def close(self) -> int:
        """Start no further run; the number of runs still under way."""
        with self.runs:
            self.accepting = False
            return self.active

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no run is under way (True), or ``timeout`` seconds pass (False)."""
        with self.runs:
            return self.runs.wait_for(lambda: self.active == 0, timeout)


def add_rule_jobs(scheduler: BackgroundScheduler, service: Service, start: datetime) -> int:
    """One job per rule of this shard, from the rules folder as it is now; the number of jobs."""
    settings = service.settings
    shard = settings.shard
    loaded = run_command.load_wanted(settings, [], shard)
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


def readiness(es: Elasticsearch, settings: Settings) -> Check:
    """Ready when Elasticsearch answers and this version's ``setup`` has run (:func:`job.indices.preflight.problems`:
    the alert indices carry this template version, the execution log and dead-letter index are current)."""
    probe = es.options(request_timeout=READINESS_TIMEOUT_SECONDS)
    policy = RetryPolicy(attempts=1)

    def ready() -> tuple[bool, str]:
        try:
            found = preflight.problems(probe, policy, settings)
        except (ApiError, TransportError) as exc:
            log.warning("readiness: Elasticsearch is not usable: %s", describe(exc))
            return False, f"Elasticsearch is not usable ({type(exc).__name__})"
        if found:
            return False, f"not set up for this version ({len(found)} problems; see the log)"
        return True, "Elasticsearch reachable, the indices set up for this version"

    return ready


def shut_down(service: Service, signal_name: str, grace: timedelta) -> None:
    """Let the runs under way finish within ``grace``, then ask them to stop and wait for their records."""
    running = service.close()
    log.info("%s: starting no further run; %d rules running, waiting up to %s for them", signal_name, running, grace)
    if service.wait_idle(grace.total_seconds()):
        return
    log.warning(
        "%s: the shutdown grace (DETECTION_SHUTDOWN_GRACE=%s) expired with %d rules running; stopping them",
        signal_name,
        grace,
        service.active,
    )
    stop.request(signal_name)
    service.wait_idle(None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    shard = run_command.pass_shard(settings, args.shard)
    settings = settings.model_copy(update={"shard": shard})
    received: list[str] = []  # the signals received, in order (appending takes no lock a handler could wait on)

    def on_signal(signal_name: str) -> None:
        if received:  # a second signal: stop the runs now, without waiting for the grace
            stop.request(signal_name)
        received.append(signal_name)

    scheduler = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=WORKERS)})
    scheduler.add_listener(_report, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    with ExitStack() as stack:
        stack.enter_context(stop.handled(on_signal))
        es = stack.enter_context(make_client(settings))
        service = Service(settings, es, RuleMetrics(), RetryPolicy.from_settings(settings))
        try:
            preflight.prepare(es, service.policy, settings)  # not set up: exit 2 now, not later in every rule
            service.prepared = True
        except (ApiError, TransportError) as exc:  # not reachable yet: the rules wait for it
            log.error("Elasticsearch is not usable yet, the rules wait: %s", describe(exc))
        start = datetime.now(UTC)
        add_rule_jobs(scheduler, service, start)
        if settings.auto_setup:
            scheduler.add_job(
                service.prepare,
                IntervalTrigger(seconds=MAINTENANCE_INTERVAL.total_seconds(), start_date=start + MAINTENANCE_INTERVAL),
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
                ready=readiness(es, settings),
                host=settings.http_host,
            )
            stack.callback(server.stop)
        scheduler.start()
        try:
            while not received:
                time.sleep(SIGNAL_POLL_SECONDS)
            scheduler.pause()
            shut_down(service, received[0], settings.shutdown_grace)
        finally:
            scheduler.shutdown(wait=False)
        return stop.exit_code(received[0])
