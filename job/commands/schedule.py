"""``detection-job schedule``: run all rules now and then every ``DETECTION_SCHEDULE_INTERVAL``.

For hosts without a cron. In Kubernetes prefer the chart's CronJob running ``detection-job run``:
each run is a fresh process, and the execution log carries what the next run needs.
With ``DETECTION_HTTP_PORT`` it serves ``/healthz``, ``/readyz`` and ``/metrics`` (``job.httpserver``).
"""

from __future__ import annotations

import argparse
import logging
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.schedulers.blocking import BlockingScheduler
from elasticsearch import ApiError, Elasticsearch, TransportError

from job import httpserver
from job.commands import run as run_command
from job.errors import JobError
from job.esclient import make_client
from job.httpserver import Check
from job.metrics import RuleMetrics
from job.run.alert_template import TEMPLATE_VERSION
from job.run.install import installed_template_version
from job.run.retry import RetryPolicy, describe
from job.settings import Settings

NAME = "schedule"
HELP = "run the rules now and then every DETECTION_SCHEDULE_INTERVAL until stopped"

log = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _one_pass(settings: Settings, metrics: RuleMetrics) -> None:
    try:
        code = run_command.run_pass(settings, [], datetime.now(UTC), metrics)
    except JobError as exc:  # the cluster may be back at the next tick
        log.error("run failed: %s", exc)
        return
    log.info("run finished with exit code %d", code)


def _report(event: Any) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("a scheduled run was missed; the next run catches up from the execution log")
    else:
        log.error("a scheduled run crashed: %s", event.exception)


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
    del args
    metrics = RuleMetrics()
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        _one_pass,
        "interval",
        args=[settings, metrics],
        seconds=settings.schedule_interval.total_seconds(),
        next_run_time=datetime.now(UTC),
        coalesce=True,  # after a pause, one run catches up; not one per missed tick
        max_instances=1,  # never two passes at once
        misfire_grace_time=int(settings.schedule_interval.total_seconds()),
    )
    scheduler.add_listener(_report, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    log.info("running the rules every %s", settings.schedule_interval)
    with ExitStack() as stack:
        if settings.http_port is not None:
            es = stack.enter_context(make_client(settings))
            server = httpserver.start(
                settings.http_port,
                metrics.registry,
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
