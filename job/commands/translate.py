"""``detection-job translate``: print the Elasticsearch DSL of a KQL query; with ``--language eql`` the DSL
Elasticsearch's EQL pushes down for each query of an EQL statement and what it leaves to the client; or with
``--rule FILE`` the requests that rule's runs send, as its rule type describes them (no cluster needed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from job.client.fieldcaps import field_types_from_caps
from job.config.settings import Settings
from job.eql import EqlError, describe, parse, plan
from job.eql.ast import Call, Compare, Field, In, Literal, Statement, statement_fields, statement_nodes
from job.errors import QueryError, RuleError
from job.kql import KqlSemanticError, KqlSyntaxError, to_dsl
from job.rules import read_rule
from job.ruletypes.registry import type_of
from job.text.jsonlimits import JsonProblem
from job.text.jsonlimits import loads as bounded_json
from job.text.redact import one_line
from job.text.safefile import FileProblem, decode_utf8, read_bounded

NAME = "translate"
HELP = (
    "print the Elasticsearch query DSL Kibana builds for a KQL query (or pushes down for an EQL one), or the "
    "requests a rule file's runs send"
)

EXIT_QUERY = 1
EXIT_FIELDS = 2
EXIT_USAGE = 2
# A saved _field_caps response of a large cluster runs to tens of megabytes.
MAX_FIELDS_BYTES = 256 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the KQL query, or EQL with --language eql (quote it for the shell)")
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
    parser.add_argument(
        "--language",
        choices=("kuery", "eql"),
        default="kuery",
        help="the query's language (default: kuery); eql prints each query's DSL and what runs on the client",
    )
    parser.add_argument(
        "--event-category-field",
        metavar="FIELD",
        default="event.category",
        help="EQL only: the event category field (a rule's event_category_override; default: event.category)",
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
    if args.language == "eql":
        return _eql(args.query, fields, args.event_category_field)
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


def assumed_fields(statement: Statement, category_field: str) -> dict[str, str]:
    """Without field types, the types the statement's use of each field suggests: the first argument of
    ``cidrMatch`` an ip, a field compared to a number a long (a double for a decimal), ``@timestamp`` a date,
    every other field a keyword."""
    types = dict.fromkeys([*(field.name for field in statement_fields(statement)), category_field], "keyword")
    for node in statement_nodes(statement):
        if isinstance(node, Call) and node.name == "cidrMatch" and node.args and isinstance(node.args[0], Field):
            types[node.args[0].name] = "ip"
        elif isinstance(node, Compare | In):
            left = node.left if isinstance(node, Compare) else node.value
            others = [node.right] if isinstance(node, Compare) else list(node.items)
            numbers = [o.value for o in others if isinstance(o, Literal) and isinstance(o.value, int | float)]
            if isinstance(left, Field) and numbers and not any(isinstance(value, bool) for value in numbers):
                types[left.name] = "double" if any(isinstance(value, float) for value in numbers) else "long"
    return {**types, "@timestamp": "date"}


def _eql(query: str, fields: dict[str, str] | None, category_field: str) -> int:
    try:
        statement = parse(query)
        if fields is None:
            fields = assumed_fields(statement, category_field)
            shown = ", ".join(f"{name}: {kind}" for name, kind in sorted(fields.items()))
            print(f"no --fields-json: field types taken from their use ({shown})", file=sys.stderr)
        planned = plan(statement, fields, category_field=category_field)
    except EqlError as exc:
        print(exc, file=sys.stderr)
        return EXIT_QUERY
    print(describe(planned))
    return 0
