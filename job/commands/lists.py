"""``detection-job lists import|show|delete``: manage value lists in DETECTION_LISTS_INDEX / _ITEMS_INDEX."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import ApiError, TransportError

from job.client.esclient import make_client
from job.client.retry import RetryPolicy
from job.commands.check import unavailable
from job.config.settings import Settings
from job.lists.admin import create_list, delete_list, ensure_indices, import_values
from job.lists.documents import import_description
from job.lists.model import LIST_TYPES, MAX_IMPORT_BYTES
from job.lists.parse import import_lines, value_text
from job.lists.store import ListStore

NAME = "lists"
HELP = "value lists for exception entries of type list: import a file, show or delete a list"

EXIT_OK, EXIT_PROBLEM = 0, 1
# The longest list id: Elasticsearch's limit on a document _id.
MAX_ID_BYTES = 512
# Refused values printed one per line; the rest are counted.
MAX_REFUSED_SHOWN = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = actions.add_parser("import", help="append the values of a file (one per line) to a list")
    load.add_argument("file", type=Path, metavar="FILE", help="one value per line (a Kibana list export works)")
    load.add_argument("--type", required=True, choices=LIST_TYPES, dest="list_type", help="the list's value type")
    load.add_argument("--list-id", metavar="ID", help="the list to append to or create (default: the file name)")
    show = actions.add_parser("show", help="print a list's values, one per line (its details go to stderr)")
    show.add_argument("list_id", metavar="ID")
    delete = actions.add_parser("delete", help="delete a list and all its values")
    delete.add_argument("list_id", metavar="ID")


def _fail(message: str) -> int:
    print(f"detection-job lists: {message}", file=sys.stderr)
    return EXIT_PROBLEM


def _read_file(path: Path) -> str:
    """The file's text; ``ValueError`` with the reason when it is unreadable, too large or not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise ValueError(f"{path}: over Kibana's import limit of {MAX_IMPORT_BYTES} bytes; split it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _import(args: argparse.Namespace, store: ListStore) -> int:
    try:
        text = _read_file(args.file)
    except ValueError as exc:
        return _fail(str(exc))
    list_id = args.list_id if args.list_id is not None else args.file.name
    if not list_id or len(list_id.encode("utf-8")) > MAX_ID_BYTES or list_id.startswith("_"):
        return _fail(f"list id {list_id!r}: must be 1 to {MAX_ID_BYTES} bytes and not start with '_'")
    lines = list(import_lines(text))
    now = datetime.now(UTC)
    ensure_indices(store)
    existing = store.document(list_id)
    if existing is None:
        description = import_description(args.file.name)
        create_list(store, list_id, list_type=args.list_type, name=list_id, description=description, now=now)
    elif existing.get("type") != args.list_type:
        return _fail(f"list {list_id!r} holds {existing.get('type')} values, not {args.list_type}")
    result = import_values(store, list_id, args.list_type, lines, now=now)
    for number, value, reason in result.refused[:MAX_REFUSED_SHOWN]:
        print(f"{args.file}:{number}: value {value!r} refused by Elasticsearch: {reason}", file=sys.stderr)
    if len(result.refused) > MAX_REFUSED_SHOWN:
        print(f"{args.file}: ... and {len(result.refused) - MAX_REFUSED_SHOWN} more refused values", file=sys.stderr)
    action = "created" if existing is None else "appended to"
    print(f"{action} list {list_id!r} ({args.list_type}): {result.stored} values stored, {len(result.refused)} refused")
    return EXIT_PROBLEM if result.refused else EXIT_OK


def _show(args: argparse.Namespace, store: ListStore) -> int:
    document = store.document(args.list_id)
    if document is None:
        return _fail(f"no list {args.list_id!r} in {store.lists_index}")
    total = store.total(args.list_id)
    for key in ("name", "type", "description"):
        print(f"{key}: {document.get(key, '')}", file=sys.stderr)
    print(f"items: {total}", file=sys.stderr)
    for hit in store.items(args.list_id, sort=({"tie_breaker_id": "asc"}, {"_shard_doc": "asc"})):
        value = value_text(hit.get("_source") or {})
        if value is not None:
            print(value)
    return EXIT_OK


def _delete(args: argparse.Namespace, store: ListStore) -> int:
    if store.document(args.list_id) is None:
        return _fail(f"no list {args.list_id!r} in {store.lists_index}")
    deleted = delete_list(store, args.list_id)
    print(f"deleted list {args.list_id!r} and {deleted} values")
    return EXIT_OK


def run(args: argparse.Namespace, settings: Settings) -> int:
    policy = RetryPolicy.from_settings(settings)
    action = {"import": _import, "show": _show, "delete": _delete}[args.action]
    try:
        with make_client(settings) as es:
            return action(args, ListStore(es, policy, settings.lists_index, settings.list_items_index))
    except (ApiError, TransportError) as exc:
        raise unavailable(settings, exc) from None
