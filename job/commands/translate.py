"""``detection-job translate``: print the Elasticsearch DSL of a KQL query (no cluster needed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from job.fieldcaps import field_types_from_caps
from job.jsonlimits import JsonProblem
from job.jsonlimits import loads as bounded_json
from job.kql import KqlSemanticError, KqlSyntaxError, to_dsl
from job.redact import one_line
from job.safefile import FileProblem, decode_utf8, read_bounded
from job.settings import Settings

NAME = "translate"
HELP = "print the Elasticsearch query DSL Kibana builds for a KQL query"

EXIT_QUERY = 1
EXIT_FIELDS = 2
# A saved _field_caps response of a large cluster runs to tens of megabytes.
MAX_FIELDS_BYTES = 256 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="the KQL query (quote it for the shell)")
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
    fields = None
    if args.fields_json is not None:
        try:
            fields = load_fields(args.fields_json)
        except ValueError as exc:
            print(f"detection-job: {one_line(f'{args.fields_json}: {exc}')}", file=sys.stderr)
            return EXIT_FIELDS
    try:
        dsl = to_dsl(args.query, fields)
    except (KqlSyntaxError, KqlSemanticError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_QUERY
    print(json.dumps(dsl, indent=2))
    return 0
