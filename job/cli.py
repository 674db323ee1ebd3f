"""``detection-job``: the command line. Turns every expected error into one line and an exit code.

Start-up is lazy: the parser lists every command from the ``NAME`` and ``HELP`` written in its module
(read from the module's source, not imported), and only the chosen command's module is imported, with
the client, settings and logging after the arguments parse. So ``--help`` and an argument error cost
little more than starting Python, and a CronJob pod imports only what its command uses.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from job import __version__
from job.commands import COMMANDS
from job.errors import ConfigError, ElasticsearchUnavailable
from job.text.redact import one_line, redact

EXIT_CONFIG = 2
EXIT_UNEXPECTED = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Command:
    module: str  # job.commands.<module>
    name: str
    help: str


def _constants(path: Path) -> dict[str, str]:
    """The module-level ``NAME = "..."`` and ``HELP = "..."`` of a command module's source."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("NAME", "HELP") and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found[name] = node.value.value
    return found


def commands() -> list[Command]:
    """Every command whose module exists, in ``COMMANDS`` order, without importing them."""
    found = []
    for module in COMMANDS:
        spec = importlib.util.find_spec(f"job.commands.{module}")
        if spec is None or spec.origin is None:
            continue
        constants = _constants(Path(spec.origin))
        found.append(Command(module, constants["NAME"], constants["HELP"]))
    return found


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; the arguments of a command are added when ``argv`` names it (or for every command when
    ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        prog="detection-job",
        description="Run Kibana-style detection rules against Elasticsearch and write alerts.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for command in commands():
        subparser = sub.add_parser(command.name, help=command.help, description=command.help)
        subparser.set_defaults(module_name=command.module)
        if chosen == command.name:
            importlib.import_module(f"job.commands.{command.module}").add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(words).parse_args(words)
    secrets: tuple[str, ...] = ()
    try:
        from job.config.secrets import secret_values
        from job.config.settings import load_settings
        from job.ops.logs import configure_logging
        from job.text.jsoncodec import allow_deep_documents

        allow_deep_documents()
        module = importlib.import_module(f"job.commands.{args.module_name}")
        settings = load_settings()
        secrets = secret_values(settings)
        configure_logging(settings)
        result: int = module.run(args, settings)
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
