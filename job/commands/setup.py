"""``detection-job setup``: install or upgrade the indices, then roll over and apply retention.

The only command that creates indices or changes mappings (the setup role); ``run`` and ``schedule``
check its result (:mod:`job.indices.preflight`). Idempotent, so it is also the maintenance step: run it
regularly (the Helm chart's maintenance CronJob does, daily) to roll the alerts alias and the
execution log over and delete what is past their retention.
"""

from __future__ import annotations

import argparse
import sys

from elasticsearch import ApiError, TransportError

from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.indexnames import template_name
from job.config.settings import Settings
from job.indices.install import install
from job.indices.rollover import maintain, maintain_log

NAME = "setup"
HELP = (
    "install or upgrade the alert index template and write index, the execution log and the dead-letter "
    "index; roll the alerts alias and the execution log over and apply their retention"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    del args
    try:
        with make_client(settings) as es:
            policy = RetryPolicy.from_settings(settings)
            result = install(es, policy, settings.alerts_index, settings.executions_index, settings.dead_letter_index)
            alerts = maintain(es, policy, settings.alerts_index, settings.alerts_rollover, settings.alerts_retention)
            executions = maintain_log(es, policy, settings)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    print(f"index template {template_name(settings.alerts_index)}: {result.template}")
    print(f"alert alias {settings.alerts_index}: write index {result.write_index}")
    if alerts.rolled_over_to:
        print(f"alert alias {settings.alerts_index}: rolled over to {alerts.rolled_over_to}")
    for index in alerts.deleted:
        print(f"alert index {index}: deleted (older than DETECTION_ALERTS_RETENTION)")
    print(f"execution log {settings.executions_index}: {_log_state(result.execution_log)}")
    if executions.rolled_over_to:
        print(f"execution log {settings.executions_index}: rolled over to {executions.rolled_over_to}")
    for index in executions.deleted:
        print(f"execution log index {index}: deleted (older than DETECTION_EXECUTIONS_RETENTION)")
    print(f"dead-letter index {settings.dead_letter_index}: ready")
    errors = [*alerts.errors, *executions.errors]
    for error in errors:
        print(f"detection-job: {error}", file=sys.stderr)
    return 1 if errors else 0


def _log_state(state: str) -> str:
    return {
        "created": "created (a rollover alias)",
        "converted": "converted from the plain index of an earlier version into a rollover alias",
    }.get(state, "ready")
