"""``detection-job``: the command line. Turns every expected error into one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from job import __version__
from job.commands import COMMANDS
from job.errors import ConfigError, ElasticsearchUnavailable
from job.jsoncodec import allow_deep_documents
from job.logs import configure_logging
from job.redact import one_line, redact
from job.settings import load_settings, secret_values

EXIT_CONFIG = 2
EXIT_UNEXPECTED = 1

log = logging.getLogger(__name__)


def _command_modules() -> list[ModuleType]:
    modules = []
    for name in COMMANDS:
        try:
            modules.append(importlib.import_module(f"job.commands.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"job.commands.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detection-job",
        description="Run Kibana-style detection rules against Elasticsearch and write alerts.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    allow_deep_documents()
    args = build_parser().parse_args(argv)
    secrets: tuple[str, ...] = ()
    try:
        settings = load_settings()
        secrets = secret_values(settings)
        configure_logging(settings)
        result: int = args.module.run(args, settings)
        return result
    except (ConfigError, ElasticsearchUnavailable) as exc:
        print(f"detection-job: {one_line(redact(str(exc), secrets))}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("detection-job: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback in the debug log
        log.debug("unexpected error", exc_info=True)
        message = one_line(redact(f"{type(exc).__name__}: {exc}", secrets))
        print(f"detection-job: unexpected error: {message}", file=sys.stderr)
        return EXIT_UNEXPECTED
