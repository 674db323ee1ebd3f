"""``detection-job translate``: print the Elasticsearch DSL of a KQL query, or with ``--rule FILE`` the requests
that rule's runs send, as its rule type describes them (no cluster needed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from job.errors import QueryError, RuleError
from job.fieldcaps import field_types_from_caps
from job.jsonlimits import JsonProblem
from job.jsonlimits import loads as bounded_json
from job.kql import KqlSemanticError, KqlSyntaxError, to_dsl
from job.redact import one_line
from job.rules import read_rule
from job.ruletypes.registry import type_of
from job.safefile import FileProblem, decode_utf8, read_bounded
from job.settings import Settings

NAME = "translate"
HELP = "print the Elasticsearch query DSL Kibana builds for a KQL query, or the requests a rule file's runs send"

EXIT_QUERY = 1
EXIT_FIELDS = 2
EXIT_USAGE = 2
# A saved _field_caps response of a large cluster runs to tens of megabytes.
MAX_FIELDS_BYTES = 256 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the KQL query (quote it for the shell)")
    parser.add_argument(
        "--rule",
        metavar="FILE",
        type=Path,
        help="instead of a query: the requests the runs of this rule file send (any rule type this job runs)",
    )
    parser.add_argument(
        "--fields-json",
        metavar="FILE",
        type=Path,
        help='field types as {"name": "keyword", ...} or a saved _field_caps response',
    )


def load_fields(path: Path) -> dict[str, str]:
    """The field map in ``path``: a name -> type object, or a ``_field_caps`` response. ValueError if neither.

    Read like any file we do not control: bounded in size and nesting, never blocking on a FIFO.
    """
    try:
        data: Any = bounded_json(decode_utf8(read_bounded(path, MAX_FIELDS_BYTES, what="field maps")))
    except FileProblem as exc:
        raise ValueError(str(exc)) from None
    except JsonProblem as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError("expected a JSON object of field name -> type")
    if isinstance(data.get("fields"), Mapping) and all(isinstance(v, Mapping) for v in data["fields"].values()):
        return field_types_from_caps(data)
    bad = next((name for name, kind in data.items() if not isinstance(kind, str)), None)
    if bad is not None:
        raise ValueError(f"the type of field {bad!r} is not a string")
    return dict(data)


def run(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    if (args.query is None) == (args.rule is None):
        print("detection-job translate: give a KQL query or --rule FILE, not both", file=sys.stderr)
        return EXIT_USAGE
    fields = None
    if args.fields_json is not None:
        try:
            fields = load_fields(args.fields_json)
        except ValueError as exc:
            print(f"detection-job: {one_line(f'{args.fields_json}: {exc}')}", file=sys.stderr)
            return EXIT_FIELDS
    if args.rule is not None:
        return describe_rule(args.rule, fields)
    try:
        dsl = to_dsl(args.query, fields)
    except (KqlSyntaxError, KqlSemanticError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_QUERY
    print(json.dumps(dsl, indent=2))
    return 0


def describe_rule(path: Path, fields: dict[str, str] | None) -> int:
    """Print what the rule's type says its runs send; exit 1, with the reason, for a rule that does not load, is
    of a type this job does not run, or whose query does not compile."""
    try:
        rule, _ = read_rule(path)
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return EXIT_QUERY
    rule_type = type_of(rule)
    if rule_type is None:
        print(f"{path}: {rule.refusal or f'rule type {rule.type!r} is not run by this job'}", file=sys.stderr)
        return EXIT_QUERY
    try:
        compiled = rule_type.compile(rule, fields)
    except QueryError as exc:
        print(exc, file=sys.stderr)
        return EXIT_QUERY
    print(rule_type.describe(rule, compiled))
    return 0
