"""``detection-job setup``: install or upgrade the alert index template, write index and execution log."""

from __future__ import annotations

import argparse

from elasticsearch import ApiError, TransportError

from job.commands.check import unavailable
from job.esclient import make_client
from job.run.alert_template import template_name
from job.run.install import install
from job.run.retry import RetryPolicy
from job.settings import Settings

NAME = "setup"
HELP = "install or upgrade the alert index template and write index, the execution log and the dead-letter index"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    del args
    try:
        with make_client(settings) as es:
            result = install(
                es,
                RetryPolicy.from_settings(settings),
                settings.alerts_index,
                settings.executions_index,
                settings.dead_letter_index,
            )
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    print(f"index template {template_name(settings.alerts_index)}: {result.template}")
    print(f"alert alias {settings.alerts_index}: write index {result.write_index}")
    print(f"execution log {settings.executions_index}: ready")
    print(f"dead-letter index {settings.dead_letter_index}: ready")
    return 0
