"""``detection-job import FILE --out DIR``: Kibana's rule export (ndjson) into rule files."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from job.config.settings import Settings
from job.errors import RuleError
from job.rules.exception_lists import load_exception_lists
from job.rules.files import EXCEPTIONS_DIR
from job.rules.kibana_import import exception_list_documents, list_filename, parse_export, rule_document, rule_filename
from job.rules.loader import RuleFileError, read_rule, rule_from_data
from job.rules.parts import ExceptionList
from job.rules.problems import failure
from job.rules.writer import exception_list_to_toml, rule_to_toml
from job.text.redact import one_line
from job.text.safefile import FileProblem, read_bounded

NAME = "import"
HELP = "convert a Kibana rule export (.ndjson) into one TOML rule file per rule"
# Exports of hundreds of rules run to a few megabytes.
MAX_EXPORT_BYTES = 64 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="the .ndjson file of Kibana's Export rules")
    parser.add_argument("--out", type=Path, help="folder to write the rule files to (default: DETECTION_RULES_DIR)")
    parser.add_argument("--force", action="store_true", help="overwrite files that already exist")


class _Report:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems = 0

    def problem(self, line: int | None, message: str, path: str | None = None) -> None:
        self.problems += 1
        print(RuleError(path or self.source, message, line), file=sys.stderr)

    def warning(self, line: int | None, message: str, path: str | None = None) -> None:
        print(RuleError(path or self.source, f"warning: {message}", line), file=sys.stderr)


def _write(path: Path, text: str, force: bool, written: set[Path]) -> str | None:
    """Write ``text`` to ``path``; the reason it was not written otherwise.

    Never through a link: an existing file or link is kept unless ``force``, and then replaced by a
    new file renamed over it (atomic; the link itself is replaced, never what it points to).
    """
    if path in written:
        return f"{path} was already written by an earlier line of this export; skipped"
    if path.is_symlink() and not force:
        return f"{path} is a symbolic link; import writes no file through links (--force replaces the link)"
    if os.path.lexists(path) and not force:
        return f"{path} exists; use --force to overwrite"
    try:
        replace_file(path, text)
    except OSError as exc:
        return f"{path}: cannot write: {exc.strerror or exc}"
    written.add(path)
    return None


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` into a new file beside ``path``, then rename it over ``path`` (a link there is replaced)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as a plainly created file would be, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _lists_folder(out: Path) -> Path:
    """``out/exceptions``, created if missing; ``OSError`` if it is a link or not a folder."""
    folder = out / EXCEPTIONS_DIR
    if folder.is_symlink():
        raise OSError(f"{folder} is a symbolic link; import writes no file through links")
    folder.mkdir(exist_ok=True)
    return folder


def _import_lists(
    export_lists: dict[str, dict[str, object]], out: Path, args: argparse.Namespace, report: _Report, written: set[Path]
) -> dict[str, ExceptionList]:
    lists: dict[str, ExceptionList] = {}
    for list_id, document in export_lists.items():
        try:
            found = ExceptionList.model_validate(document)
            text = exception_list_to_toml(found)
        except Exception as exc:  # noqa: BLE001 - one list's problem, whatever it is; the others go on
            report.problem(None, f"exception list {list_id!r}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            continue
        try:
            folder = _lists_folder(out)
        except OSError as exc:
            report.problem(None, f"exception list {list_id!r} not written: {exc.strerror or exc}")
            continue
        path = folder / list_filename(list_id)
        reason = _write(path, text, args.force, written)
        if reason:
            report.problem(None, reason)
        else:
            print(f"wrote {path}")
        lists[list_id] = found
    return lists


def _import_rule(
    number: int,
    obj: dict[str, Any],
    out: Path,
    args: argparse.Namespace,
    report: _Report,
    written: set[Path],
    existing: dict[str, ExceptionList],
) -> None:
    document, warnings = rule_document(obj)
    for message in warnings:
        report.warning(number, message)
    try:
        rule, rule_warnings = rule_from_data(
            document, source=str(args.file), lines={}, strict=False, exception_lists=existing
        )
    except RuleFileError as exc:
        for problem in exc.problems:
            report.problem(number, problem.message)
        return
    for warning in rule_warnings:
        report.warning(number, warning.message)
    path = out / rule_filename(rule.name)
    reason = _write(path, rule_to_toml(rule), args.force, written)
    if reason:
        report.problem(number, reason)
        return
    try:  # what was written must load as one of our own files
        read_rule(path, strict=True, exception_lists=existing)
    except RuleError as exc:
        report.problem(number, f"written file does not load: {exc}")
        return
    print(f"wrote {path}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    out: Path = args.out or settings.rules_dir
    report = _Report(str(args.file))
    try:
        export = parse_export(read_bounded(args.file, MAX_EXPORT_BYTES, what="rule exports"))
    except FileProblem as exc:
        print(RuleError(str(args.file), str(exc)), file=sys.stderr)
        return 1
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(one_line(f"{out}: cannot create folder: {exc.strerror or exc}"), file=sys.stderr)
        return 1
    export_lists, list_warnings = exception_list_documents(export)  # adds the problems of bad items
    for number, message in sorted(export.problems):
        report.problem(number, message)
    for number, message in export.skipped:
        report.warning(number, message)
    written: set[Path] = set()
    for number, message in list_warnings:
        report.warning(number, message)
    _import_lists(export_lists, out, args, report, written)
    existing, _ = load_exception_lists([out / EXCEPTIONS_DIR] if (out / EXCEPTIONS_DIR).is_dir() else [])
    for number, obj in export.rules:
        try:
            _import_rule(number, obj, out, args, report, written, existing)
        except Exception as exc:  # noqa: BLE001 - one line's problem, whatever it is; the next line goes on
            report.problem(number, failure(str(args.file), exc).message)
    print(f"imported {len(written)} files from {args.file}: {report.problems} problems", file=sys.stderr)
    return 1 if report.problems else 0
