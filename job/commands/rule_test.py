"""``detection-job test [PATH...] [--junit FILE]``: rule tests, run on throwaway indices of the configured
cluster through the same steps as ``run`` (:mod:`job.ruletests`).

A PATH is a test file, or a folder: every ``*.toml`` under a folder named ``tests`` (default: the rules
folder). Prints a line per test as it ends, then every failure with its reasons; ``--junit FILE`` writes a JUnit
XML report. Exit code 0 when every test passed; 1 when one failed; 2 on bad input (each one line,
``FILE:LINE: ...``, on stderr; the other tests still run) or when the cluster cannot be reached. Needs a key
that may create and delete indices and index templates named ``detection-test-*``: meant for CI, against a
cluster of its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from elasticsearch import ApiError, TransportError

from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.settings import Settings
from job.errors import ConfigError
from job.ruletests.report import ending, junit, line
from job.ruletests.runner import Result, run_tests
from job.ruletests.sandbox import Sandbox, Stopped, stops_cleanly
from job.ruletests.spec import discover

NAME = "test"
HELP = "run rule tests: fixture events and the alerts a rule must give for them, on throwaway indices"

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_SIGTERM = 0, 1, 2, 143


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="test files, or folders: every *.toml under a folder named tests (default: DETECTION_RULES_DIR)",
    )
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report to FILE")


def _done(result: Result) -> None:
    if result.outcome == "error":
        for text in result.lines:
            print(text, file=sys.stderr, flush=True)
    print(line(result), flush=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    files, missing = discover(list(args.paths) or [settings.rules_dir])
    for problem in missing:
        print(problem, file=sys.stderr)
    if not files:
        raise ConfigError(f"no rule tests under {', '.join(map(str, args.paths or [settings.rules_dir]))}")
    started = time.monotonic()
    policy = RetryPolicy.from_settings(settings)
    try:
        with stops_cleanly(), make_client(settings) as es, Sandbox(es, policy, settings) as box:
            print(f"{len(files)} rule test files; throwaway indices {box.prefix}-*", flush=True)
            results = run_tests(box, files, _done)
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
    except Stopped:
        print("detection-job: stopped by SIGTERM; the throwaway indices are deleted", file=sys.stderr)
        return EXIT_SIGTERM
    seconds = time.monotonic() - started
    print(ending(results, seconds))
    if args.junit is not None:
        junit(results, seconds, args.junit)
    if missing or any(result.outcome == "error" for result in results):
        return EXIT_BAD_INPUT
    return EXIT_FAILED if any(result.outcome == "failed" for result in results) else EXIT_OK
