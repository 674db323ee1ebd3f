"""``detection-job translate``: print the Elasticsearch DSL of a KQL query (no cluster needed).

``translate --rule PATH`` prints, for each rule file, what its rule type sends instead: the query DSL of a
KQL or Lucene rule, the ``_query`` request of an ES|QL rule (the first page of a run started now), each
under a ``#`` line naming the rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from job.errors import QueryError
from job.fieldcaps import field_types_from_caps
from job.jsonlimits import JsonProblem
from job.jsonlimits import loads as bounded_json
from job.kql import KqlSemanticError, KqlSyntaxError, to_dsl
from job.redact import one_line
from job.rules import load_rules
from job.ruletypes.registry import Compiler, type_of
from job.safefile import FileProblem, decode_utf8, read_bounded
from job.settings import Settings

NAME = "translate"
HELP = "print the Elasticsearch query DSL Kibana builds for a KQL query"

EXIT_QUERY = 1
EXIT_FIELDS = 2
# A saved _field_caps response of a large cluster runs to tens of megabytes.
MAX_FIELDS_BYTES = 256 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the KQL query (quote it for the shell)")
    parser.add_argument(
        "--rule",
        metavar="PATH",
        type=Path,
        action="append",
        help="a rule file or folder (repeatable): print the request each rule's type sends instead of a query's",
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


def _rules(paths: list[Path], fields: dict[str, str] | None) -> int:
    """Print what each rule's type sends; problems (a file that does not load, a type this job does not run, a
    query that does not compile) go to standard error, one line each."""
    result = load_rules(paths)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    compiler = Compiler(None if fields is None else (lambda index: fields))
    failed = bool(result.problems)
    for rule in result.rules:
        rule_type = type_of(rule)
        if rule_type is None:
            print(f"{rule.source}: {rule.rule_id}: {rule.refusal}", file=sys.stderr)
            failed = True
            continue
        try:
            text = rule_type.describe(rule, compiler.compile(rule))
        except QueryError as exc:
            print(f"{rule.source}: {rule.rule_id}: {one_line(exc.message)}", file=sys.stderr)
            failed = True
            continue
        print(f"# {rule.source}: {rule.rule_id} ({rule.type})\n{text}")
    return EXIT_QUERY if failed else 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    if (args.query is None) == (not args.rule):
        print("detection-job translate: give a KQL query or --rule PATH (not both)", file=sys.stderr)
        return EXIT_FIELDS
    fields = None
    if args.fields_json is not None:
        try:
            fields = load_fields(args.fields_json)
        except ValueError as exc:
            print(f"detection-job: {one_line(f'{args.fields_json}: {exc}')}", file=sys.stderr)
            return EXIT_FIELDS
    if args.rule:
        return _rules(args.rule, fields)
    try:
        dsl = to_dsl(args.query, fields)
    except (KqlSyntaxError, KqlSemanticError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_QUERY
    print(json.dumps(dsl, indent=2))
    return 0
