"""Which rules a pass runs: due, shard, --all, --rule; and the stable first-run delay of ``schedule``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from job.commands.status import COLUMNS, RuleStatus, as_json, schedule_of, table_row
from job.config.shards import Shard, shard_of
from job.execlog.last_runs import NEVER_RAN, LastRuns
from job.rules.model import Rule
from job.run.selection import MAX_JITTER, Mode, cadence, choose, is_due, jitter, last_start, next_due
from job.text.table import Column
from tests.alert_samples import seed_rule

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def completed(
    minutes_ago: float | None, *, status: str = "succeeded", scheduled: bool = True, interrupted: bool = False
) -> LastRuns:
    """A history whose last completed execution started ``minutes_ago`` (logical time); ``interrupted``: a
    later run found it abandoned and marked it failed, so it did not end by itself."""
    if minutes_ago is None:
        return NEVER_RAN
    logical = NOW - timedelta(minutes=minutes_ago)
    execution: dict[str, Any] = {"status": status, "start": (logical + timedelta(seconds=40)).isoformat()}
    if scheduled:
        execution["scheduled_at"] = logical.isoformat()
    record = {"execution": execution}
    return LastRuns(latest=None, completed=record, last_success=None, finished=None if interrupted else record)


@pytest.mark.parametrize(
    ("interval", "minutes_ago", "due"),
    [
        ("10m", None, True),  # never ran
        ("10m", 10, True),
        ("10m", 9, True),  # a tenth of the interval early is still due
        ("10m", 8.9, False),
        ("10m", 5, False),
        ("10m", 0, False),
        ("5m", 4.5, True),
        ("5m", 4.4, False),
        ("1h", 55, False),  # at most a minute early: passes every 5 minutes do not run it every 55
        ("1h", 58.9, False),
        ("1h", 59, True),
        ("1h", 120, True),  # overdue after downtime
        ("10m", -30, False),  # a run with a later --now (a backfill ahead) counts from its own time
    ],
)
def test_due_when_the_last_start_plus_the_interval_has_come(
    interval: str, minutes_ago: float | None, due: bool
) -> None:
    rule = seed_rule(interval=interval)
    last = last_start(completed(minutes_ago))
    assert is_due(last, rule.interval_delta, NOW) is due
    assert (rule in choose([rule], {rule.rule_id: completed(minutes_ago)}, NOW).run) is due


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (NEVER_RAN, None),
        (completed(10), NOW - timedelta(minutes=10)),  # execution.scheduled_at, not the wall-clock start
        (completed(10, scheduled=False), NOW - timedelta(minutes=10) + timedelta(seconds=40)),  # older records
        (completed(10, status="failed"), NOW - timedelta(minutes=10)),  # a failed run counts: Kibana's cadence
        (completed(10, status="failed", interrupted=True), None),  # killed: its work was not done, so it is due
        (
            LastRuns(None, None, None, {"execution": {"scheduled_at": "soon", "start": "2026-05-01T11:00:00Z"}}),
            NOW - timedelta(hours=1),
        ),
        (LastRuns(None, None, None, {"execution": "garbage"}), None),
        (LastRuns({"execution": {"status": "running", "scheduled_at": NOW.isoformat()}}, None, None), None),
    ],
)
def test_last_start(history: LastRuns, expected: datetime | None) -> None:
    assert last_start(history) == expected


def test_next_due_is_the_nominal_time() -> None:
    assert next_due(None, timedelta(minutes=10)) is None
    assert next_due(NOW, timedelta(minutes=10)) == NOW + timedelta(minutes=10)


def rules_of_intervals(*intervals: str) -> list[Rule]:
    return [seed_rule(rule_id=f"rule-{i}-{interval}", interval=interval) for i, interval in enumerate(intervals)]


def names(rules: tuple[Rule, ...]) -> list[str]:
    return [rule.rule_id for rule in rules]


@pytest.mark.parametrize(
    ("mode", "override", "run", "not_due"),
    [
        ("due", None, ["rule-0-5m", "rule-2-1h"], ["rule-1-10m"]),
        ("all", None, ["rule-0-5m", "rule-1-10m", "rule-2-1h"], []),
        ("named", None, ["rule-0-5m", "rule-1-10m", "rule-2-1h"], []),
        # DETECTION_SCHEDULE_INTERVAL=30m: every rule's cadence, in place of its interval
        ("due", timedelta(minutes=30), ["rule-2-1h"], ["rule-0-5m", "rule-1-10m"]),
    ],
)
def test_choose_by_mode(mode: Mode, override: timedelta | None, run: list[str], not_due: list[str]) -> None:
    rules = rules_of_intervals("5m", "10m", "1h")
    histories = {"rule-0-5m": completed(5), "rule-1-10m": completed(5)}  # the 1h rule never ran
    choice = choose(rules, histories, NOW, mode=mode, override=override)
    assert names(choice.run) == run
    assert [rule.rule_id for rule, _ in choice.not_due] == not_due
    assert choice.other_shards == ()


def test_not_due_rules_carry_their_next_due_time() -> None:
    [rule] = rules_of_intervals("10m")
    choice = choose([rule], {rule.rule_id: completed(3)}, NOW)
    assert choice.not_due == ((rule, NOW + timedelta(minutes=7)),)


def test_cadence_is_the_interval_unless_overridden() -> None:
    rule = seed_rule(interval="10m")
    assert cadence(rule) == timedelta(minutes=10)
    assert cadence(rule, timedelta(seconds=2)) == timedelta(seconds=2)


@pytest.mark.parametrize("mode", ["due", "all"])
def test_shards_split_the_rules_and_named_rules_ignore_them(mode: Mode) -> None:
    rules = [seed_rule(rule_id=f"sharded-{i}") for i in range(30)]
    runs = [choose(rules, {}, NOW, shard=Shard(i, 3), mode=mode) for i in (1, 2, 3)]
    for index, choice in enumerate(runs, start=1):
        assert all(shard_of(rule.rule_id, 3) == index for rule in choice.run)
        assert len(choice.run) + len(choice.other_shards) == 30
    assert sorted(rule.rule_id for choice in runs for rule in choice.run) == sorted(r.rule_id for r in rules)
    named = choose(rules[:2], {}, NOW, shard=Shard(1, 3), mode="named")
    assert names(named.run) == ["sharded-0", "sharded-1"]


def test_due_applies_within_the_shard() -> None:
    rules = [seed_rule(rule_id=f"sharded-{i}", interval="10m") for i in range(12)]
    histories = {rule.rule_id: completed(2) for rule in rules[:6]}
    choice = choose(rules, histories, NOW, shard=Shard(2, 2))
    mine = [rule for rule in rules if shard_of(rule.rule_id, 2) == 2]
    assert names(choice.run) == [rule.rule_id for rule in mine if rule.rule_id not in histories]
    assert [rule.rule_id for rule, _ in choice.not_due] == [rule.rule_id for rule in mine if rule.rule_id in histories]


@pytest.mark.parametrize(
    ("interval", "bound"),
    [
        (timedelta(seconds=2), timedelta(milliseconds=200)),  # a tenth of the interval
        (timedelta(minutes=1), timedelta(seconds=6)),
        (timedelta(minutes=10), MAX_JITTER),  # at most a few seconds
        (timedelta(hours=24), MAX_JITTER),
    ],
)
def test_jitter_is_stable_and_bounded(interval: timedelta, bound: timedelta) -> None:
    delays = [jitter(f"rule-{i}", interval) for i in range(1000)]
    assert all(timedelta(0) <= delay < bound for delay in delays)
    assert delays == [jitter(f"rule-{i}", interval) for i in range(1000)]  # the same on every start
    # Spread out: 1,000 rules do not start within the same tenth of the bound.
    assert len({int(delay / bound * 10) for delay in delays}) == 10


@pytest.mark.parametrize(
    ("changes", "history", "next_due_at", "due", "cell"),
    [
        ({}, NEVER_RAN, NOW, True, "now"),
        ({}, completed(4), NOW + timedelta(minutes=6), False, "2026-05-01T12:06:00Z"),
        ({}, completed(9.5), NOW + timedelta(seconds=30), True, "now"),
        ({"interval": "1h"}, completed(4), NOW + timedelta(minutes=56), False, "2026-05-01T12:56:00Z"),
        ({"enabled": False}, completed(4), None, False, "-"),
    ],
)
def test_status_shows_when_each_rule_is_next_due(
    changes: dict[str, Any], history: LastRuns, next_due_at: datetime | None, due: bool, cell: str
) -> None:
    rule = seed_rule(**{"interval": "10m", **changes})
    assert schedule_of(rule, history, NOW, rule.interval_delta) == (next_due_at, due)
    view = as_json(RuleStatus(rule, history, "ok", next_due_at, due))
    assert view["due"] is due
    assert table_row(view)[COLUMNS.index(Column("next due", 20))] == cell
