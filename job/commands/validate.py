"""``detection-job validate [PATH...] [--offline]``: load every rule file, check it, print one line per problem.

With a reachable cluster (the default), each rule's query is translated with the field types of its
indices (``_field_caps``), as ``run`` translates it, and ``required_fields`` the indices lack are reported;
an ES|QL query is run with `` | LIMIT 0`` (no rows read), and Elasticsearch's refusal (a syntax error, an
unknown column or function) is a problem at the query's line. Without a cluster (``--offline``, or none
reachable) an ES|QL query is only read, and the command says so.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import ApiError, Elasticsearch, TransportError

from job.backends import FieldTypes, FieldTypesSource
from job.client.esclient import make_client
from job.client.fieldcaps import field_types_from_caps
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.settings import Settings
from job.rules import Rule, load_rules
from job.rules.validation import split
from job.ruletypes.checks import check_rules
from job.ruletypes.contract import Cluster
from job.text.diagnostics import Diagnostic, sort_key

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
    parser.add_argument(
        "--offline",
        action="store_true",
        help="do not ask the cluster (queries are translated without field types, required_fields are not "
        "checked, ES|QL queries are read but not run)",
    )


def _shorter(path: Path) -> Path:
    """A path under the working folder as a relative path, so that messages stay short."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path


def cluster_field_types(es: Elasticsearch) -> FieldTypesSource:
    """Field types of index patterns from ``_field_caps``, asked once per set of patterns."""
    cache: dict[tuple[str, ...], FieldTypes] = {}

    def field_types(index: tuple[str, ...]) -> FieldTypes:
        if index not in cache:
            response = es.field_caps(index=list(index), fields="*", ignore_unavailable=True, allow_no_indices=True)
            cache[index] = field_types_from_caps(response.body)
        return cache[index]

    return field_types


def offline_note(rules: Sequence[Rule]) -> str | None:
    """What a check without a cluster leaves out of ES|QL queries (None without ES|QL rules)."""
    count = sum(1 for rule in rules if rule.type == "esql")
    if not count:
        return None
    return (
        f"{count} ES|QL queries were read without Elasticsearch (FROM, METADATA _id, the appended limit); "
        "their syntax, columns and functions are checked only with a reachable cluster"
    )


def _check(rules: Sequence[Rule], settings: Settings, offline: bool) -> list[Diagnostic]:
    now = datetime.now(UTC)
    if offline:
        note = offline_note(rules)
        if note:
            print(f"detection-job validate: --offline: {note}", file=sys.stderr)
        return check_rules(rules, alerts_max=settings.alerts_max, now=now)
    try:
        with make_client(settings) as es:
            cluster = Cluster(es, RetryPolicy.from_settings(settings), settings.es_request_timeout)
            return check_rules(
                rules, alerts_max=settings.alerts_max, now=now, field_types=cluster_field_types(es), cluster=cluster
            )
    except (ApiError, TransportError) as exc:
        reason = unavailable(settings, exc)
        note = offline_note(rules)
        print(
            f"detection-job validate: {reason}; checked without field types{f' ({note})' if note else ''} "
            "(use --offline to skip)",
            file=sys.stderr,
        )
        return check_rules(rules, alerts_max=settings.alerts_max, now=now)


def run(args: argparse.Namespace, settings: Settings) -> int:
    paths = [_shorter(path) for path in (args.paths or [settings.rules_dir])]
    result = load_rules(paths)
    checked, warned = split(_check(result.rules, settings, args.offline))
    problems = sorted([*result.problems, *checked], key=sort_key)
    warnings = sorted([*result.warnings, *warned], key=sort_key)
    for diagnostic in [*problems, *warnings]:
        print(diagnostic)
    print(f"{len(result.rules)} rules loaded: {len(problems)} problems, {len(warnings)} warnings")
    return 1 if problems else 0
