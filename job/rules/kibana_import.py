"""Kibana's rule export (``Export rules``: ndjson, one object per line) as rule and exception-list data.

Kept: every rule key of the detection-rules format (snake_case, as Kibana writes it).
Mapped: ``created_at`` / ``updated_at`` → ``[metadata]`` ``creation_date`` / ``updated_date``
(``YYYY/MM/DD``); ``new_terms_fields`` + ``history_window_start`` → the ``[rule.new_terms]`` table of
detection-rules; exception-list containers and items → one exception-list file per list.
Dropped: Kibana's own bookkeeping (``KIBANA_ONLY_KEYS``), null values and empty lists. Actions and
response actions are dropped with a warning (this job sends no notifications). Exception entries of type
``list`` are kept, with a warning saying how to load the list's values (an export does not hold them).
Skipped lines: action connectors and the final summary line (``exported_count``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from pydantic import ValidationError

from job.config.durations import shown
from job.rules.model import RuleType
from job.rules.parts import ExceptionItem
from job.rules.problems import validation_problems
from job.text.jsonlimits import JsonProblem
from job.text.jsonlimits import loads as bounded_json

KIBANA_ONLY_KEYS = frozenset(
    {
        "id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "immutable",
        "rule_source",
        "revision",
        "output_index",
        "meta",
        "actions",
        "throttle",
        "response_actions",
        "execution_summary",
        "outcome",
        "alias_target_id",
        "alias_purpose",
    }
)
_WARN_IF_SET = {
    "actions": "actions are not imported: this job sends no notifications",
    "response_actions": "response actions are not imported: this job runs no response actions",
}
_ITEM_BOOKKEEPING = frozenset(
    {"id", "_version", "meta", "created_at", "created_by", "updated_at", "updated_by", "tie_breaker_id"}
)
_CONTAINER_KEYS = ("list_id", "name", "description", "type", "namespace_type", "tags", "os_types")
_RULE_TYPES = frozenset(get_args(RuleType))
# One rule of Kibana's export is a few kilobytes; a rule file may hold at most 1 MB.
MAX_LINE_CHARS = 4 * 1024 * 1024
# File names stay far below the 255 bytes file systems allow, whatever the rule's name.
MAX_STEM_CHARS = 100


@dataclass
class Export:
    """The lines of an export, sorted by kind; every entry keeps its 1-based line number."""

    rules: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    containers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    items: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


def _kind(obj: Mapping[str, Any]) -> str:
    if "exported_count" in obj or "exported_rules_count" in obj:
        return "summary"
    if "item_id" in obj and "entries" in obj:
        return "item"
    if "list_id" in obj and "rule_id" not in obj:
        return "container"
    if "rule_id" in obj and obj.get("type") in _RULE_TYPES:
        return "rule"
    if "attributes" in obj or obj.get("type") == "action":
        return "connector"
    return "unknown"


def _lines(data: str | bytes) -> Iterator[tuple[int, str | None, str | None]]:
    """(number, text, problem) per line; bytes are decoded line by line, so one bad line spoils only itself."""
    too_long = f"over the limit of {MAX_LINE_CHARS} characters"
    if isinstance(data, str):
        for number, line in enumerate(data.split("\n"), start=1):
            yield (number, None, f"line is {too_long}") if len(line) > MAX_LINE_CHARS else (number, line, None)
        return
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if len(raw) > MAX_LINE_CHARS:
            yield number, None, f"line is {too_long}"
            continue
        try:
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8"), None
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 text (byte {exc.start + 1} of the line)"


def parse_export(data: str | bytes) -> Export:
    """Split an export into rules, exception-list containers and items; note what is skipped.

    Each line is decoded and parsed on its own, bounded (``MAX_LINE_CHARS``, ``job.text.jsonlimits``): a bad
    line is a problem of that line and the others still count. Lines end at ``\n`` only: JSON text may
    hold U+2028 and other characters that ``str.splitlines`` would break at.
    """
    export = Export()
    for number, line, problem in _lines(data):
        if problem is not None or line is None:
            export.problems.append((number, problem or "unreadable"))
            continue
        if not line.strip():
            continue
        try:
            obj = bounded_json(line)
        except JsonProblem as exc:
            export.problems.append((number, f"not a JSON object: {exc}"))
            continue
        if not isinstance(obj, dict):
            export.problems.append((number, "not a JSON object"))
            continue
        kind = _kind(obj)
        if kind == "rule":
            export.rules.append((number, obj))
        elif kind == "container":
            export.containers[str(obj["list_id"])] = (number, obj)
        elif kind == "item":
            export.items.append((number, obj))
        elif kind == "connector":
            export.skipped.append((number, "action connector skipped (this job sends no notifications)"))
        elif kind == "unknown":
            export.skipped.append((number, f"skipped: not a rule (type {obj.get('type')!r})"))
    return export


def _clean(value: Any) -> Any:
    """Without nulls and empty lists, which TOML cannot hold or which mean the default anyway."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_clean(v) for v in value if v is not None]
    return value


def _date(timestamp: Any) -> str | None:
    try:
        return datetime.fromisoformat(str(timestamp)).strftime("%Y/%m/%d")
    except ValueError:
        return None


def rule_document(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A rule object of the export as a rule-file document (``{"metadata", "rule"}``) and warnings."""
    warnings = [message for key, message in _WARN_IF_SET.items() if obj.get(key)]
    rule = _clean({key: value for key, value in obj.items() if key not in KIBANA_ONLY_KEYS})
    if "new_terms_fields" in rule or "history_window_start" in rule:
        rule["new_terms"] = {
            "field": "new_terms_fields",
            "value": rule.pop("new_terms_fields", []),
            "history_window_start": [{"field": "history_window_start", "value": rule.pop("history_window_start", "")}],
        }
    metadata = {}
    for source, target in (("created_at", "creation_date"), ("updated_at", "updated_date")):
        day = _date(obj.get(source)) if obj.get(source) else None
        if day:
            metadata[target] = day
    return ({"metadata": metadata, "rule": rule} if metadata else {"rule": rule}), warnings


def _value_lists(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(list id, list type) of every ``list`` entry of an item."""
    found = []
    entries = item.get("entries")
    for entry in entries if isinstance(entries, list) else []:
        ref = entry.get("list") if isinstance(entry, Mapping) and entry.get("type") == "list" else None
        if isinstance(ref, Mapping):
            found.append((str(ref.get("id")), str(ref.get("type"))))
    return found


def _item_problem(item: dict[str, Any]) -> str | None:
    """Why an exception item would not load, in one line, or None."""
    try:
        ExceptionItem.model_validate(item)
    except ValidationError as exc:
        found = validation_problems(exc, item, lambda loc: loc)
        detail = found[0][1] if found else "invalid"
        return f"exception item {shown(str(item.get('item_id')))}: {detail}; skipped"
    return None


def exception_list_documents(export: Export) -> tuple[dict[str, dict[str, Any]], list[tuple[int, str]]]:
    """Exception lists of the export (list_id → ``ExceptionList`` input) and warnings per line.

    An item that does not load is a problem of its line (added to ``export.problems``); the other
    items of its list are still imported.
    """
    lists: dict[str, dict[str, Any]] = {}
    warnings: list[tuple[int, str]] = []
    for list_id, (_, container) in export.containers.items():
        lists[list_id] = _clean({key: container[key] for key in _CONTAINER_KEYS if key in container})
        lists[list_id]["items"] = []
    for number, item in export.items:
        list_id = str(item.get("list_id", ""))
        for value_list, kind in _value_lists(item):
            message = (
                f"exception item {item.get('item_id')!r} uses value list {value_list!r}: the export does not hold "
                f"its values; load them with: detection-job lists import FILE --type {kind} --list-id {value_list}"
            )
            warnings.append((number, message))
        cleaned = _clean({k: v for k, v in item.items() if k not in _ITEM_BOOKKEEPING})
        problem = _item_problem(cleaned)
        if problem is not None:
            export.problems.append((number, problem))
            continue
        target = lists.setdefault(list_id, {"list_id": list_id, "items": []})
        target["items"].append(cleaned)
    return lists, warnings


def rule_filename(name: str) -> str:
    """The file name of a rule, as detection-rules derives it from the name (snake_case, ``.toml``)."""
    stem = re.sub(r"[^_a-z0-9]+", "_", name.strip().lower()).strip("_")[:MAX_STEM_CHARS].rstrip("_")
    return (stem or "rule") + ".toml"


def list_filename(list_id: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", list_id).strip("._")[:MAX_STEM_CHARS].rstrip("._")
    return (stem or "list") + ".toml"
