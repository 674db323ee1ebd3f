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

from job.rules.model import Rule
from job.rules.parts import ExceptionList

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
    return f"{_key(key)} = '''\n{text}{closing}\n"


def _key(key: str) -> str:
    """A key as TOML spells it (bare, or quoted when it must be)."""
    return tomli_w.dumps({key: 0}).rsplit(" = ", 1)[0]


def _is_array_of_tables(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _value(key: str, value: Any) -> str:
    # Multi-line basic strings would turn \r\n into \n on reading: such strings stay escaped on one line.
    return tomli_w.dumps({key: value}, multiline_strings=isinstance(value, str) and "\r" not in value)


def _parts(name: str, table: Mapping[str, Any], literal: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The value lines of a table (``literal`` replaces some) and, apart, its sub-tables with their headers."""
    values: list[str] = []
    nested: list[str] = []
    for key, value in table.items():
        child = f"{name}.{_key(key)}" if name else _key(key)
        if key in literal:
            values.append(literal[key])
        elif isinstance(value, Mapping):
            nested += ["\n", *_table(child, value, f"[{child}]\n")]
        elif _is_array_of_tables(value):
            for item in value:
                nested += ["\n", *_table(child, item, f"[[{child}]]\n")]
        else:
            values.append(_value(key, value))
    return values, nested


def _table(name: str, table: Mapping[str, Any], header: str) -> list[str]:
    values, nested = _parts(name, table, {})
    return [header, *values, *nested]


def _rule_section(table: dict[str, Any]) -> str:
    """``[rule]``: simple keys sorted, then query, note and setup as literal blocks, then the sub-tables."""
    literal: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, str) and ("\n" in value or key == "query"):
            block = _literal_block(key, value)
            if block is not None:
                literal[key] = block
    long_keys = [key for key in _LONG_TEXT_LAST if key in literal]
    long_texts = [literal.pop(key) for key in long_keys]
    values, nested = _parts("rule", {key: table[key] for key in sorted(table) if key not in long_keys}, literal)
    return "\n".join(["[rule]\n" + "".join(values), *long_texts]) + "".join(nested)


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
        parts.append("".join(_table("metadata", document["metadata"], "[metadata]\n")))
    parts.append(_rule_section(document["rule"]))
    if "transform" in document:
        parts.append("".join(_table("transform", document["transform"], "[transform]\n")))
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def exception_list_to_toml(exception_list: ExceptionList) -> str:
    """Our one-list-per-file shape (``list_id``, …, ``[[items]]``)."""
    data = exception_list.model_dump(exclude_unset=True, exclude_none=True)
    data["list_id"] = exception_list.list_id
    for item in data.get("items", []):
        item.pop("list_id", None)
    return "".join(_table("", _without_none(data), "")).lstrip("\n")
