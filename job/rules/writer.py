"""``Rule`` and ``ExceptionList`` back to TOML in the detection-rules layout, readable and loss-free.

Layout: ``[metadata]``, then ``[rule]`` with its simple keys sorted, the long texts (``query``, ``note``,
``setup`` and any multi-line string) as ``'''`` literal blocks, then the nested tables (``[[rule.threat]]``,
``[[rule.exceptions]]``, …) and ``[transform]``. ``tomli_w`` writes every value except the literal blocks.
Items resolved from exception-list files are not written (the rule keeps its ``exceptions_list``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import tomli_w

from job.rules.model import ExceptionList, Rule

_LONG_TEXT_LAST = ("query", "note", "setup")
# Characters a TOML literal string cannot hold (tab and newline are fine).
_NOT_LITERAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|'''|\r")


def _without_none(value: Any) -> Any:
    """TOML has no null: drop None values (Kibana filter objects carry ``alias: null`` and the like)."""
    if isinstance(value, Mapping):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_without_none(item) for item in value if item is not None]
    return value


def _literal_block(key: str, text: str) -> str | None:
    """``key = '''…'''`` keeping the text exactly, or None when a literal string cannot hold it."""
    if _NOT_LITERAL.search(text) or text.endswith("'"):
        return None
    # The newline after the opening quotes is dropped by TOML readers; a query gets one before the
    # closing quotes, as in detection-rules (the loader strips it again).
    closing = "\n'''" if key == "query" and not text.endswith("\n") else "'''"
    return f"{key} = '''\n{text}{closing}\n"


def _rule_section(table: dict[str, Any]) -> str:
    order = sorted(key for key in table if key not in _LONG_TEXT_LAST) + [k for k in _LONG_TEXT_LAST if k in table]
    simple: list[str] = []
    long_texts: list[str] = []
    tables: list[str] = []
    for key in order:
        value = table[key]
        block = _literal_block(key, value) if isinstance(value, str) and ("\n" in value or key == "query") else None
        if block is not None:
            (long_texts if key in _LONG_TEXT_LAST else simple).append(block)
            continue
        line = tomli_w.dumps({key: value}, multiline_strings=True)
        if line.startswith("["):  # tomli_w writes it as a table: put it under [rule] after the keys
            tables.append(tomli_w.dumps({"rule": {key: value}}, multiline_strings=True))
        else:
            simple.append(line)
    text = "[rule]\n" + "".join(simple)
    return "\n".join([text, *long_texts, *tables])


def rule_document(rule: Rule) -> dict[str, Any]:
    """The TOML document of a rule as plain data: ``{"metadata": …, "rule": …, "transform": …}``."""
    # Only what was set (written in the file, or given when the rule was built): defaults stay implicit.
    data = rule.model_dump(mode="python", by_alias=True, exclude_unset=True, exclude_none=True)
    data.pop("metadata", None)
    transform = data.pop("transform", None)
    data["exceptions"] = [
        item.model_dump(exclude_unset=True, exclude_none=True) for item in rule.exceptions if item.list_id is None
    ]
    if not data["exceptions"]:
        del data["exceptions"]
    document: dict[str, Any] = {}
    metadata = rule.metadata.model_dump(exclude_unset=True, exclude_none=True)
    if metadata:
        document["metadata"] = metadata
    document["rule"] = data
    if transform:
        document["transform"] = transform
    return _without_none(document)  # type: ignore[no-any-return]


def rule_to_toml(rule: Rule) -> str:
    """The TOML text of a rule; loading it gives back an equal ``Rule``."""
    document = rule_document(rule)
    parts = []
    if "metadata" in document:
        parts.append(tomli_w.dumps({"metadata": document["metadata"]}))
    parts.append(_rule_section(document["rule"]))
    if "transform" in document:
        parts.append(tomli_w.dumps({"transform": document["transform"]}))
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def exception_list_to_toml(exception_list: ExceptionList) -> str:
    """Our one-list-per-file shape (``list_id``, …, ``[[items]]``)."""
    data = exception_list.model_dump(exclude_unset=True, exclude_none=True)
    data["list_id"] = exception_list.list_id
    for item in data.get("items", []):
        item.pop("list_id", None)
    return tomli_w.dumps(_without_none(data), multiline_strings=True)
