"""``detection-job schedule``: run all rules now and then every ``DETECTION_SCHEDULE_INTERVAL``.

For hosts without a cron. In Kubernetes prefer the chart's CronJob running ``detection-job run``:
each run is a fresh process, and the execution log carries what the next run needs.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.schedulers.blocking import BlockingScheduler

from job.commands import run as run_command
from job.errors import JobError
from job.settings import Settings

NAME = "schedule"
HELP = "run the rules now and then every DETECTION_SCHEDULE_INTERVAL until stopped"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _one_pass(settings: Settings) -> None:
    try:
        code = run_command.run(argparse.Namespace(rule=[], now=None), settings)
    except JobError as exc:  # the cluster may be back at the next tick
        log.error("run failed: %s", exc)
        return
    log.info("run finished with exit code %d", code)


def _report(event: Any) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("a scheduled run was missed; the next run catches up from the execution log")
    else:
        log.error("a scheduled run crashed: %s", event.exception)


def run(args: argparse.Namespace, settings: Settings) -> int:
    del args
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        _one_pass,
        "interval",
        args=[settings],
        seconds=settings.schedule_interval.total_seconds(),
        next_run_time=datetime.now(UTC),
        coalesce=True,  # after a pause, one run catches up; not one per missed tick
        max_instances=1,  # never two passes at once
        misfire_grace_time=int(settings.schedule_interval.total_seconds()),
    )
    scheduler.add_listener(_report, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    log.info("running the rules every %s", settings.schedule_interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
    return 0
