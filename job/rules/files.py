"""Finding and reading rule files: size limit before reading, symlink loops, one clear line per failure."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from job.errors import RuleError
from job.rules.depth import toml_depth_problem
from job.text.redact import one_line
from job.text.safefile import FileProblem, read_bounded

# Real rule files are a few kilobytes; the largest detection-rules file is about 40 KB.
MAX_FILE_BYTES = 1024 * 1024
EXCEPTIONS_DIR = "exceptions"
TESTS_DIR = "tests"
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def read_text(path: Path, *, limit: int = MAX_FILE_BYTES, what: str = "rule files") -> str:
    """The UTF-8 text of ``path`` (a leading byte order mark dropped); ``RuleError`` if it is missing, not a
    regular file (a FIFO never blocks), too large, unreadable or not UTF-8."""
    try:
        data = read_bounded(path, limit, what=what)
    except FileProblem as exc:
        raise RuleError(str(path), str(exc)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RuleError(str(path), f"not UTF-8 text (byte {exc.start})", line) from None


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """Parse TOML; a syntax error becomes ``RuleError`` with tomllib's line and column.

    The nesting is bounded first (``job.rules.depth``), so that no file can exhaust the recursion limit
    of the parser or of anything that walks the document afterwards.
    """
    too_deep = toml_depth_problem(text)
    if too_deep is not None:
        raise RuleError(str(path), too_deep[1], too_deep[0])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if match := _TOML_POSITION.search(message):
            detail = _TOML_POSITION.sub("", message)
            where = f"column {match.group(2)}"
            raise RuleError(str(path), f"invalid TOML: {detail} ({where})", int(match.group(1))) from None
        if _TOML_END.search(message):
            detail = _TOML_END.sub("", message)
            raise RuleError(str(path), f"invalid TOML: {detail} (at end of file)", text.count("\n") + 1) from None
        raise RuleError(str(path), f"invalid TOML: {message}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. an integer of 5,000 digits
        raise RuleError(str(path), f"invalid TOML: {one_line(str(exc)) or type(exc).__name__}") from None


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    text = read_text(path)
    return text, parse_toml(path, text)


@dataclass
class Collected:
    """Rule files and exception-list folders found under some paths, and what could not be walked."""

    rule_files: list[Path] = field(default_factory=list)
    exception_dirs: list[Path] = field(default_factory=list)
    problems: list[RuleError] = field(default_factory=list)


def collect(paths: Sequence[Path]) -> Collected:
    """Walk files and folders (recursively, following links, never looping) for ``*.toml`` rule files.

    A folder named ``exceptions`` holds exception-list files, and one named ``tests`` rule tests: never rules.
    For a file argument, the ``exceptions`` folder next to it is used.
    """
    found = Collected()
    seen: set[tuple[int, int]] = set()
    for path in paths:
        if path.is_dir():
            _walk(path, found, seen, ancestors=())
        elif path.exists() or path.is_symlink():
            found.rule_files.append(path)
            sibling = path.parent / EXCEPTIONS_DIR
            if sibling.is_dir() and sibling not in found.exception_dirs:
                found.exception_dirs.append(sibling)
        else:
            found.problems.append(RuleError(str(path), "no such file or directory"))
    return found


def _identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def _walk(
    directory: Path, found: Collected, seen: set[tuple[int, int]], ancestors: tuple[tuple[int, int], ...]
) -> None:
    try:
        identity = _identity(directory)
    except OSError as exc:
        found.problems.append(RuleError(str(directory), f"cannot read directory: {exc.strerror or exc}"))
        return
    if identity in ancestors:
        found.problems.append(RuleError(str(directory), "symbolic link loop: this folder contains itself; skipped"))
        return
    if identity in seen:  # the same folder reached twice through links: read it once
        return
    seen.add(identity)
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        found.problems.append(RuleError(str(directory), f"cannot read directory: {exc.strerror or exc}"))
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            # Hidden entries are not rules: editors' and git's files, and the ``..data`` /
            # ``..<timestamp>`` folders of a Kubernetes ConfigMap volume, whose files the
            # visible links already name.
            continue
        if _is_dir(entry):
            if entry.name == EXCEPTIONS_DIR:
                found.exception_dirs.append(path)
            elif entry.name == TESTS_DIR:
                continue  # rule tests (``detection-job test``), never rules
            else:
                _walk(path, found, seen, (*ancestors, identity))
        elif entry.name.endswith(".toml"):
            found.rule_files.append(path)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop between files: reported when the file is read
        return False


def toml_files(directory: Path) -> Iterator[Path]:
    """The ``*.toml`` files directly in ``directory``, sorted."""
    yield from sorted(p for p in directory.iterdir() if p.suffix == ".toml" and not p.name.startswith("."))
