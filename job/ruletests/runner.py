"""Rule tests, run: each test file's rule found and loaded, each test's fixtures read and checked, loaded into
the sandbox, the rule run over their time range as ``backfill`` runs it, and its alerts compared.

A result is *passed*, *failed* (the rule did not do what the test expects, or a window's run failed) or an
*error*: bad input, one line each at its file and line (a fixture that is not JSON, a rule file that does not
load or validate, a test that names no rule, an expectation on a field no alert of the rule can have); the
other tests still run.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from elasticsearch import ApiError, TransportError

from job.alerts.build import RunAlerts
from job.client.retry import describe
from job.rules import load_rules
from job.rules.model import Rule
from job.ruletests.ecs import ecs_mapping
from job.ruletests.expect import can_have, compare, paths_of
from job.ruletests.fixtures import Fixture, read_events, read_events_file, time_range
from job.ruletests.sandbox import MappingRefused, Sandbox
from job.ruletests.spec import Case, TestFile, read_test_file
from job.ruletypes.checks import check_rules
from job.run.backfill import MAX_WINDOWS, backfill_windows, window_count
from job.text.diagnostics import Diagnostic, error
from job.text.jsonlimits import JsonProblem
from job.text.jsonlimits import loads as bounded_json
from job.text.safefile import FileProblem, read_bounded

Outcome = Literal["passed", "failed", "error"]
MAX_MAPPING_BYTES = 1024 * 1024


@dataclass
class Result:
    file: str
    name: str
    line: int | None
    outcome: Outcome
    lines: list[str] = field(default_factory=list)  # why it failed, or its bad input (FILE:LINE: ...)
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


class Rules:
    """Rule files loaded once per folder, for tests that name a rule by its rule_id."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, Rule]] = {}

    def by_id(self, folder: Path) -> dict[str, Rule]:
        if folder not in self._folders:
            self._folders[folder] = {rule.rule_id: rule for rule in load_rules([folder]).rules}
        return self._folders[folder]


def rule_of(test_file: TestFile, rules: Rules) -> tuple[Rule | None, list[Diagnostic]]:
    """The rule a test file names: a rule file relative to it, or a rule_id of the rules beside its folder."""
    reference, where, line = test_file.rule or "", str(test_file.path), test_file.rule_line
    path = Path(os.path.normpath(test_file.path.parent / reference))
    if path.is_file() or reference.endswith(".toml"):
        loaded = load_rules([path])
        errors = [problem for problem in loaded.problems if problem.is_error]
        if errors:
            return None, errors[:1]
        if len(loaded.rules) != 1:
            return None, [error(where, f"rule: {reference} holds {len(loaded.rules)} rules, not one", line)]
        rule = loaded.rules[0]
    else:
        folder = test_file.path.parent.parent if test_file.path.parent.name == "tests" else test_file.path.parent
        found = rules.by_id(folder).get(reference)
        if found is None:
            message = f"rule: no rule file {reference!r} beside this file, and no rule with that rule_id in {folder}"
            return None, [error(where, message, line)]
        rule = found
    if not rule.supported:
        return None, [error(rule.source, rule.refusal or f"rule type {rule.type!r} is not run by this job")]
    return rule, []


# An ES|QL query's source command: FROM, its index patterns, then METADATA, the next command or the end.
_FROM = re.compile(r"^(\s*from\s+)(.+?)(\s+metadata\b|\s*\||\s*$)", re.IGNORECASE | re.DOTALL)


def retarget(rule: Rule, index: str) -> Rule:
    """The rule searching the test's events index instead of its own: its index patterns, or the ones its
    ES|QL query's FROM names (then ``kibana.alert.rule.indices`` and the query in the alerts name it too)."""
    if rule.type == "esql":
        match = _FROM.match(rule.query)
        if match is not None:
            return rule.model_copy(
                update={"query": f"{match.group(1)}{index}{match.group(3)}{rule.query[match.end() :]}"}
            )
    return rule.model_copy(update={"index": (index,)})


def fixture_of(case: Case) -> Fixture:
    if case.events is not None:
        return read_events(case.events, str(case.file), case.events_line)
    assert case.events_file is not None
    return read_events_file(case.events_file)


def mapping_of(case: Case, fixture: Fixture) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """The events index's mappings: the test's (a table, or a JSON file relative to it), else ECS types."""
    where = str(case.file)
    if case.mapping is None:
        return ecs_mapping(fixture.fields()), []
    if isinstance(case.mapping, dict):
        return case.mapping, []
    path = case.file.parent / case.mapping
    try:
        value = bounded_json(read_bounded(path, MAX_MAPPING_BYTES, what="mapping files").decode("utf-8-sig"))
    except (FileProblem, JsonProblem, UnicodeDecodeError) as exc:
        return None, [error(where, f"mapping: {path}: {exc}", case.mapping_line)]
    if not isinstance(value, dict):
        return None, [error(where, f"mapping: {path}: not a JSON object", case.mapping_line)]
    return value.get("mappings", value), []


def impossible_fields(rule: Rule, case: Case, fixture: Fixture) -> list[Diagnostic]:
    """The expected fields no alert of this rule can have (built from the fixtures, as a run builds them)."""
    known = fixture.fields()
    alerts = RunAlerts.for_run(rule, now=datetime.now(UTC), execution_uuid="test", space_id="default")
    for event in fixture.events:
        try:
            known |= paths_of(
                alerts.build({"_index": "events", "_id": event.doc_id, "_source": event.source}, now=datetime.now(UTC))
            )
        except Exception:  # noqa: BLE001, S112 - an event whose alert cannot be built: the run will say so
            continue
    return [
        error(str(case.file), f"{name}: no alert of this rule can have this field", line)
        for table in case.alerts
        for name, (_, line) in table.fields.items()
        if not can_have(name, known)
    ]


def run_case(box: Sandbox, rule: Rule, case: Case) -> Result:
    """One test: its bad input, or how the rule did."""
    started = time.monotonic()
    result = Result(str(case.file), case.name, case.line, "error")
    fixture = fixture_of(case) if not case.problems else Fixture()
    problems = [*case.problems, *fixture.problems]
    mappings, mapping_problems = mapping_of(case, fixture) if not problems else (None, [])
    problems += mapping_problems
    problems += impossible_fields(rule, case, fixture) if not problems else []
    span = time_range(rule, fixture.events) if not problems else None
    if not problems and span is None:
        problems.append(error(str(case.file), "no event has a time on the rule's timestamp field", case.events_line))
    if not problems and span is not None and window_count(rule, *span) > MAX_WINDOWS:
        problems.append(
            error(str(case.file), f"the events span more than {MAX_WINDOWS} windows of the rule", case.line)
        )
    if problems or mappings is None or span is None:
        result.lines = [str(problem) for problem in problems]
        return result
    index = box.new_index()
    try:
        try:
            refused = box.load(index, mappings, fixture.events)
        except MappingRefused as exc:
            refused = [error(str(case.file), str(exc), case.mapping_line)]
        if refused:
            result.lines = [str(problem) for problem in refused]
            return result
        _run(box, retarget(rule, index), case, span, result)
    finally:
        result.seconds = time.monotonic() - started
    return result


def _run(box: Sandbox, rule: Rule, case: Case, span: tuple[datetime, datetime], result: Result) -> None:
    context = box.context()
    invalid = [
        problem
        for problem in check_rules(
            [rule],
            alerts_max=box.settings.alerts_max,
            now=context.now,
            compiler=context.compiler,
            field_types=context.field_types,
        )
        if problem.is_error
    ]
    if invalid:
        result.lines = [str(problem) for problem in invalid]
        return
    executions = box.run(context, rule, backfill_windows(rule, *span))
    failed = [execution for execution in executions if execution.status == "failed"]
    if failed:
        box.forget(box.alerts(rule.rule_id), dead_letters=True)
        result.outcome = "failed"
        result.lines = [f"the run of window {execution.window} failed: {execution.message}" for execution in failed[:3]]
        return
    alerts = box.alerts(rule.rule_id)
    box.forget(alerts, dead_letters=any(execution.metrics.dead_lettered for execution in executions))
    verdict = compare(alerts, case.count, case.alerts)
    result.outcome = "passed" if verdict.passed else "failed"
    result.lines = verdict.lines
    warnings = sorted({warning for execution in executions for warning in execution.warnings})
    if not verdict.passed and warnings:
        result.lines += [f"(the run warned: {warning})" for warning in warnings]


def run_tests(box: Sandbox, paths: Sequence[Path], done: Callable[[Result], None]) -> list[Result]:
    """Every test of every test file, in order; ``done`` is told each result as it comes."""
    rules = Rules()
    results: list[Result] = []

    def finish(result: Result) -> None:
        results.append(result)
        done(result)

    for path in paths:
        test_file = read_test_file(path)
        rule, problems = (None, []) if test_file.problems else rule_of(test_file, rules)
        problems = [*test_file.problems, *problems]
        if problems or rule is None:
            finish(Result(str(path), "(file)", None, "error", [str(problem) for problem in problems]))
            continue
        for case in test_file.cases:
            try:
                finish(run_case(box, rule, case))
            except (ApiError, TransportError) as exc:
                finish(Result(str(case.file), case.name, case.line, "failed", [f"Elasticsearch: {describe(exc)}"]))
    return results
