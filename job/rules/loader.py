"""Rule files (elastic/detection-rules TOML) into ``Rule`` models, with the file and line of every problem."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from job.errors import RuleError
from job.rules.exception_lists import load_exception_lists
from job.rules.files import EXCEPTIONS_DIR, collect, parse_toml, read_text
from job.rules.model import TYPE_KEYS, Rule
from job.rules.parts import ExceptionList
from job.rules.positions import KeyPath, key_lines
from job.rules.problems import at, dotted, failure, validation_problems
from job.text.diagnostics import Diagnostic, error

log = logging.getLogger(__name__)

# Top-level tables of a rule file; everything else at the top is unknown.
_TABLES = ("metadata", "rule", "transform")
# Field names of the model that are not [rule] keys.
_NOT_RULE_KEYS = frozenset({"metadata", "transform", "source"})
_MAX_PASSES = 8


class RuleFileError(RuleError):
    """A rule file that does not load: the first problem, and all of them in ``problems``."""

    def __init__(self, problems: Sequence[Diagnostic]) -> None:
        first = problems[0]
        super().__init__(first.path, first.message, first.line)
        self.problems = tuple(problems)


@dataclass(frozen=True)
class LoadResult:
    """Rules that loaded (unsupported types included, so callers can report them) and every problem."""

    rules: tuple[Rule, ...]
    problems: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...] = ()
    passed_over: int = 0  # files whose rule_id ``keep`` refused (read, not loaded)


# A rule_id as rule files write it: a plain basic string on a line of its own. Only such a line is trusted by
# the pre-scan; anything else (an escape, a literal string, two of them) means the file is loaded to find out.
_RULE_ID_LINE = re.compile(r'^[ \t]*rule_id[ \t]*=[ \t]*"([^"\\\n]*)"[ \t]*(?:#[^\n]*)?$', re.MULTILINE)


def prescan_rule_id(text: str) -> str | None:
    """The rule_id of a rule file's text, read without parsing it, when it can be read for sure; else None."""
    found = _RULE_ID_LINE.findall(text)
    return found[0] if len(found) == 1 and found[0] else None


def _to_toml(loc: KeyPath) -> KeyPath:
    return loc if loc and loc[0] in ("metadata", "transform") else ("rule", *loc)


def _model_input(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[KeyPath, str, bool]]]:
    """The flat input of ``Rule`` (``[rule]`` keys plus metadata and transform), and shape problems."""
    problems: list[tuple[KeyPath, str, bool]] = []
    for key in data:
        if key not in _TABLES:
            message = f"{dotted((key,))}: unknown top-level key (expected [metadata], [rule], [transform])"
            problems.append(((key,), message, True))
    rule = data.get("rule")
    if not isinstance(rule, dict):
        problem = (
            (("rule",), "rule: expected a [rule] table", False)
            if "rule" in data
            else ((), "missing [rule] table", False)
        )
        problems.append(problem)
        return {}, problems
    body = dict(rule)
    for key in _NOT_RULE_KEYS & set(rule):
        problems.append((("rule", key), f"{dotted(('rule', key))}: unknown key", True))
        del body[key]
    for table in ("metadata", "transform"):
        if table in data:
            body[table] = data[table]
    kind = rule.get("type")
    for other, keys in TYPE_KEYS.items():
        for key in sorted(keys & set(rule)):
            if other != kind:
                problems.append(
                    (("rule", key), f"rule.{key}: only {other} rules take this key, not {kind} rules", False)
                )
                body.pop(key, None)  # reported here, not again as a key the rule's type does not know
    inline = rule.get("exceptions")
    for position, item in enumerate(inline if isinstance(inline, list) else []):
        if isinstance(item, dict) and "list_id" in item:
            message = "inline exception items belong to the rule and take no list_id (lists live in exceptions/)"
            problems.append((("rule", "exceptions", position, "list_id"), message, False))
    return body, problems


def _remove(data: Any, loc: KeyPath) -> None:
    for part in loc[:-1]:
        data = data[part]
    if isinstance(data, dict):
        data.pop(loc[-1], None)


def _validate(
    body: dict[str, Any], strict: bool
) -> tuple[Rule | None, list[tuple[KeyPath, str]], list[tuple[KeyPath, str]]]:
    """Validate; unknown keys are problems when strict, otherwise warnings (and dropped)."""
    warnings: list[tuple[KeyPath, str]] = []
    body = copy.deepcopy(body)  # unknown keys are removed from it, never from the caller's data
    for _ in range(_MAX_PASSES):
        try:
            return Rule.model_validate(body), [], warnings
        except ValidationError as exc:
            found = validation_problems(exc, body, _to_toml)
            extras = [(key, message) for key, message, unknown in found if unknown]
            if strict or not extras:
                return None, [(key, message) for key, message, _ in found], warnings
            for key, message in extras:
                warnings.append((key, message + " (ignored)"))
                _remove(body, key[1:] if key[0] == "rule" else key)
    return None, [((), "too many unknown keys")], warnings


def _resolve_lists(rule: Rule, lists: Mapping[str, ExceptionList] | None, warn: Callable[[KeyPath, str], None]) -> Rule:
    if not rule.exceptions_list or lists is None:
        return rule
    items = list(rule.exceptions)
    for position, ref in enumerate(rule.exceptions_list):
        found = lists.get(ref["list_id"])
        if found is None:
            warn(
                ("rule", "exceptions_list", position, "list_id"),
                f"exception list {ref['list_id']!r} not found in exceptions/; it adds no exceptions",
            )
            continue
        items.extend(found.items)
    return rule.model_copy(update={"exceptions": tuple(items)})


def rule_from_data(
    data: Mapping[str, Any],
    *,
    source: str,
    lines: Mapping[KeyPath, int],
    strict: bool = True,
    exception_lists: Mapping[str, ExceptionList] | None = None,
) -> tuple[Rule, tuple[Diagnostic, ...]]:
    """A parsed rule document as a ``Rule`` plus warnings; ``RuleFileError`` lists every problem."""
    body, shape = _model_input(data)
    problems = [at(source, lines, key, message) for key, message, unknown in shape if strict or not unknown]
    warnings = [
        at(source, lines, key, message + " (ignored)", "warning")
        for key, message, unknown in shape
        if unknown and not strict
    ]
    rule, found, unknown = _validate(body, strict) if body else (None, [], [])
    problems += [at(source, lines, key, message) for key, message in found]
    warnings += [at(source, lines, key, message, "warning") for key, message in unknown]
    if problems or rule is None:
        raise RuleFileError(problems or [error(source, "the rule did not load")])

    def warn(key: KeyPath, message: str) -> None:
        warnings.append(at(source, lines, key, message, "warning"))

    rule = _resolve_lists(rule.model_copy(update={"source": source}), exception_lists, warn)
    return rule, tuple(warnings)


def _read(
    path: Path, strict: bool, exception_lists: Mapping[str, ExceptionList] | None, text: str | None = None
) -> tuple[Rule, tuple[Diagnostic, ...], dict[KeyPath, int]]:
    try:
        return _read_file(path, strict, exception_lists, text)
    except RuleError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a file does to the loader is that file's problem
        raise RuleFileError([failure(str(path), exc)]) from None


def _read_file(
    path: Path, strict: bool, exception_lists: Mapping[str, ExceptionList] | None, text: str | None = None
) -> tuple[Rule, tuple[Diagnostic, ...], dict[KeyPath, int]]:
    if text is None:
        text = read_text(path)
    data = parse_toml(path, text)
    if exception_lists is None:
        folder = path.parent / EXCEPTIONS_DIR
        exception_lists, list_problems = load_exception_lists([folder] if folder.is_dir() else [])
        if list_problems:
            raise RuleFileError(list_problems)
    lines = key_lines(text)
    rule, warnings = rule_from_data(data, source=str(path), lines=lines, strict=strict, exception_lists=exception_lists)
    return rule, warnings, lines


def read_rule(
    path: Path, *, strict: bool = True, exception_lists: Mapping[str, ExceptionList] | None = None
) -> tuple[Rule, tuple[Diagnostic, ...]]:
    """Load one rule file: the rule and its warnings. Lists default to the ``exceptions/`` folder beside it."""
    rule, warnings, _ = _read(path, strict, exception_lists)
    return rule, warnings


def load_rule(path: Path, *, strict: bool = True) -> Rule:
    """Load one rule file; raise ``RuleError`` (``FILE:LINE: message``) if it is invalid. Warnings are logged."""
    rule, warnings = read_rule(path, strict=strict)
    for warning in warnings:
        log.warning("%s", warning)
    return rule


def load_rules(
    paths: Sequence[Path], *, strict: bool = True, keep: Callable[[str], bool] | None = None
) -> LoadResult:
    """Load every rule file under ``paths`` (files or folders, walked recursively).

    One bad file never stops the others: each problem is one ``Diagnostic`` in ``problems``. Exception
    lists come from every ``exceptions/`` folder found. A rule_id seen twice keeps the first file (in
    path order) and reports the others. ``keep`` (a shard's ``rule_id`` test): a file whose rule_id the
    pre-scan reads and ``keep`` refuses is passed over unparsed (counted in ``passed_over``).
    """
    found = collect(paths)
    lists, list_problems = load_exception_lists(found.exception_dirs)
    problems = [problem.diagnostic for problem in found.problems] + list_problems
    rules: dict[str, Rule] = {}
    warnings: list[Diagnostic] = []
    passed_over = 0
    for path in found.rule_files:
        try:
            text = read_text(path)
            if keep is not None:
                rule_id = prescan_rule_id(text)
                if rule_id is not None and not keep(rule_id):
                    passed_over += 1
                    continue
            rule, rule_warnings, lines = _read(path, strict, lists, text)
        except RuleFileError as exc:
            problems.extend(exc.problems)
            continue
        except RuleError as exc:
            problems.append(exc.diagnostic)
            continue
        if rule.rule_id in rules:
            message = (
                f"duplicate rule_id {rule.rule_id!r} (also in {rules[rule.rule_id].source}); this file is not used"
            )
            problems.append(at(str(path), lines, ("rule", "rule_id"), message))
            continue
        rules[rule.rule_id] = rule
        warnings.extend(rule_warnings)
    return LoadResult(tuple(rules.values()), tuple(problems), tuple(warnings), passed_over)
