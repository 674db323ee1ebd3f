"""``detection-job setup``: install or upgrade the alert index template, write index and execution log."""

from __future__ import annotations

import argparse
import sys

from elasticsearch import ApiError, TransportError

from job.commands.check import unavailable
from job.esclient import make_client
from job.run.alert_template import template_name
from job.run.install import install
from job.run.lifecycle import maintain
from job.run.retry import RetryPolicy
from job.settings import Settings

NAME = "setup"
HELP = (
    "install or upgrade the alert index template and write index, the execution log and the dead-letter "
    "index; apply the alert index rollover and retention"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    del args
    try:
        with make_client(settings) as es:
            policy = RetryPolicy.from_settings(settings)
            result = install(
                es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index
            )
            lifecycle = maintain(es, policy, settings.alerts_index, settings.alerts_rollover, settings.alerts_retention)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    print(f"index template {template_name(settings.alerts_index)}: {result.template}")
    print(f"alert alias {settings.alerts_index}: write index {result.write_index}")
    if lifecycle.rolled_over_to:
        print(f"alert alias {settings.alerts_index}: rolled over to {lifecycle.rolled_over_to}")
    for index in lifecycle.deleted:
        print(f"alert index {index}: deleted (older than DETECTION_ALERTS_RETENTION)")
    print(f"execution log {settings.executions_index}: ready")
    print(f"dead-letter index {settings.dead_letter_index}: ready")
    for error in lifecycle.errors:
        print(f"detection-job: {error}", file=sys.stderr)
    return 1 if lifecycle.errors else 0
