"""``detection-job validate [PATH...]``: load every rule file, check it, print one line per problem."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from job.errors import RuleError
from job.rules import load_rules
from job.rules.validation import check_rules
from job.settings import Settings

NAME = "validate"
HELP = "check rule files (schema, query translation, duplicate rule_ids); one line per problem"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="rule files or folders (walked recursively); default: DETECTION_RULES_DIR",
    )


def _shorter(path: Path) -> Path:
    """A path under the working folder as a relative path, so that messages stay short."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path


def _sort_key(error: RuleError) -> tuple[str, int]:
    return error.path, error.line or 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    paths = [_shorter(path) for path in (args.paths or [settings.rules_dir])]
    result = load_rules(paths)
    checked, warned = check_rules(result.rules, alerts_max=settings.alerts_max, now=datetime.now(UTC))
    problems = [*result.problems, *checked]
    warnings = [*result.warnings, *warned]
    for error in sorted(problems, key=_sort_key):
        print(error)
    for error in sorted(warnings, key=_sort_key):
        print(RuleError(error.path, f"warning: {error.message}", error.line))
    print(f"{len(result.rules)} rules loaded: {len(problems)} problems, {len(warnings)} warnings")
    return 1 if problems else 0
