"""Exception-list files: the ``exceptions/`` folder of a rules directory.

Two shapes are read, one or more lists per file, keyed by ``list_id``:

* ours, one list per file::

      list_id = "endgame-admin-tools"
      name = "Known admin tools"
      [[items]]
      item_id = "backup-agent"
      [[items.entries]]
      field = "process.name"
      type = "match"
      value = "backup.exe"

* elastic/detection-rules' exception files (``[metadata]`` plus ``[[exceptions]]`` tables, each with an
  ``[exceptions.container]`` and ``[[exceptions.items]]``), so that lists exported there load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from job.errors import RuleError
from job.rules.files import read_toml, toml_files
from job.rules.parts import ExceptionList
from job.rules.positions import KeyPath, key_lines
from job.rules.problems import at, failure, validation_problems
from job.text.diagnostics import Diagnostic, error

# Keys of a detection-rules container or item that belong to Kibana's bookkeeping, not to the list.
_KIBANA_KEYS = frozenset(
    {"id", "_version", "meta", "created_at", "created_by", "updated_at", "updated_by", "tie_breaker_id", "version"}
)


def _drop_kibana_keys(table: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in table.items() if key not in _KIBANA_KEYS and key != "immutable"}


def _shape_problem(data: Mapping[str, Any]) -> tuple[KeyPath, str] | None:
    """Where a detection-rules exception file is not made of tables (each block, container and item)."""
    blocks = data["exceptions"]
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        return ("exceptions",), "exceptions: expected [[exceptions]] tables"
    for position, block in enumerate(blocks):
        if not isinstance(block.get("container", {}), dict):
            return ("exceptions", position, "container"), f"exceptions[{position}].container: expected a table"
        items = block.get("items", [])
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return (
                "exceptions",
                position,
                "items",
            ), f"exceptions[{position}].items: expected [[exceptions.items]] tables"
    return None


def _candidates(data: dict[str, Any]) -> Iterable[tuple[dict[str, Any], KeyPath]]:
    """(model input, TOML prefix) for every list in a parsed file; detection-rules' [metadata] is not needed."""
    if "exceptions" not in data:
        yield data, ()
        return
    for position, block in enumerate(data["exceptions"]):
        container = _drop_kibana_keys(block.get("container", {}))
        items = [_drop_kibana_keys(item) for item in block.get("items", [])]
        yield {**container, "items": items}, ("exceptions", position)


def _to_toml(prefix: KeyPath, detection_rules_shape: bool) -> Callable[[KeyPath], KeyPath]:
    def mapper(loc: KeyPath) -> KeyPath:
        if detection_rules_shape and (not loc or loc[0] != "items"):
            return (*prefix, "container", *loc)
        return (*prefix, *loc)

    return mapper


def _validate(
    path: Path, lines: Mapping[KeyPath, int], body: dict[str, Any], prefix: KeyPath, shape: bool
) -> tuple[ExceptionList | None, list[Diagnostic]]:
    try:
        found = ExceptionList.model_validate(body)
    except ValidationError as exc:
        problems = validation_problems(exc, body, _to_toml(prefix, shape))
        return None, [at(str(path), lines, key, message) for key, message, _ in problems]
    wrong = [
        at(
            str(path),
            lines,
            (*prefix, "items", n, "list_id"),
            f"item list_id {item.list_id!r} is not {found.list_id!r}",
        )
        for n, item in enumerate(found.items)
        if item.list_id not in (None, found.list_id)
    ]
    items = tuple(item.model_copy(update={"list_id": found.list_id}) for item in found.items)
    return found.model_copy(update={"items": items}), wrong


def load_list_file(path: Path) -> tuple[list[ExceptionList], list[Diagnostic]]:
    """The lists of one file, and the problems that kept lists or items from loading (never raises)."""
    try:
        return _load_list_file(path)
    except RuleError as exc:
        return [], [exc.diagnostic]
    except Exception as exc:  # noqa: BLE001 - whatever a file does to the loader is that file's problem
        return [], [failure(str(path), exc)]


def _load_list_file(path: Path) -> tuple[list[ExceptionList], list[Diagnostic]]:
    text, data = read_toml(path)
    lines = key_lines(text)
    shape = "exceptions" in data
    problem = _shape_problem(data) if shape else None
    if problem:
        return [], [at(str(path), lines, *problem)]
    lists: list[ExceptionList] = []
    problems: list[Diagnostic] = []
    for body, prefix in _candidates(data):
        found, found_problems = _validate(path, lines, body, prefix, shape)
        problems.extend(found_problems)
        if found is not None and not found_problems:
            lists.append(found)
    return lists, problems


def load_exception_lists(directories: Iterable[Path]) -> tuple[dict[str, ExceptionList], list[Diagnostic]]:
    """Every list of every ``*.toml`` file in ``directories``; a ``list_id`` defined twice is a problem."""
    lists: dict[str, ExceptionList] = {}
    origin: dict[str, Path] = {}
    problems: list[Diagnostic] = []
    for directory in directories:
        try:
            paths = list(toml_files(directory))
        except OSError as exc:
            problems.append(error(str(directory), f"cannot read directory: {exc.strerror or exc}"))
            continue
        for path in paths:
            found, file_problems = load_list_file(path)
            problems.extend(file_problems)
            for exception_list in found:
                if exception_list.list_id in lists:
                    message = (
                        f"exception list {exception_list.list_id!r} is also defined in {origin[exception_list.list_id]}"
                    )
                    problems.append(error(str(path), message))
                    continue
                lists[exception_list.list_id] = exception_list
                origin[exception_list.list_id] = path
    return lists, problems
