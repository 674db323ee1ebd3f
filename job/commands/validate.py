"""``detection-job validate [PATH...]``: load every rule file, check it, print one line per problem."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from job.errors import RuleError
from job.rules import load_rules, validate_rule
from job.rules.files import read_text
from job.rules.positions import KeyPath, key_lines, line_of
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


class _Lines:
    """Line numbers of keys, per file, read once."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[KeyPath, int]] = {}

    def of(self, path: str, key: KeyPath) -> int | None:
        if path not in self._cache:
            try:
                self._cache[path] = key_lines(read_text(Path(path)))
            except RuleError:
                self._cache[path] = {}
        return line_of(self._cache[path], key)


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
    problems = list(result.problems)
    warnings = list(result.warnings)
    lines = _Lines()
    now = datetime.now(UTC)
    for rule in result.rules:
        for finding in validate_rule(rule, alerts_max=settings.alerts_max, now=now):
            error = RuleError(rule.source, finding.message, lines.of(rule.source, finding.key))
            (problems if finding.error else warnings).append(error)
    for error in sorted(problems, key=_sort_key):
        print(error)
    for error in sorted(warnings, key=_sort_key):
        print(RuleError(error.path, f"warning: {error.message}", error.line))
    print(f"{len(result.rules)} rules loaded: {len(problems)} problems, {len(warnings)} warnings")
    return 1 if problems else 0
